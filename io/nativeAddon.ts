/**
 * The project's one native addon (native/fusepoll.c, built into
 * dist/native/fusepoll.node by scripts/build-native.sh), loaded once for
 * whichever layer uses it: the /dev/fuse poll reader (fs/fuse/lowlevel/
 * devPoll.ts) and reads served from the host's page cache (cachedRead.ts).
 *
 * Optional by design: without a C compiler or node's headers it is not
 * built, and every user has a pure-Node path; `nativeAddon` then says why.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where the build puts the addon: dist/native, beside dist/io. */
export const NATIVE_ADDON = path.join(__dirname, '..', 'native', 'fusepoll.node');

let loaded: Record<string, unknown> | undefined;
let failure: string | undefined;

/**
 * The addon's exports, with each of `functions` checked to be there; or the reason it cannot be used
 * (not built, O2FUSE_NATIVE=0, does not load, or built from an older source).
 */
export function nativeAddon(functions: readonly string[]): { addon: Record<string, unknown> } | { failure: string } {
  if (!loaded && failure === undefined) {
    if (process.env.O2FUSE_NATIVE === '0') failure = 'O2FUSE_NATIVE=0 is set';
    else if (!fs.existsSync(NATIVE_ADDON)) failure = `${NATIVE_ADDON} is not built (scripts/build-native.sh needs a C compiler and node's headers)`;
    else {
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        loaded = require(NATIVE_ADDON) as Record<string, unknown>;
      } catch (err) {
        failure = `${NATIVE_ADDON} does not load: ${(err as Error).message}`;
      }
    }
  }
  if (!loaded) return { failure: failure! };
  const missing = functions.filter((f) => typeof loaded![f] !== 'function');
  if (missing.length) return { failure: `${NATIVE_ADDON} is out of date (no ${missing.join(', ')}): rebuild it with npm run build` };
  return { addon: loaded };
}
