/**
 * The /dev/fuse poll reader (native/fusepoll.c, built into
 * dist/native/fusepoll.node by scripts/build-native.sh): the main thread
 * waits for requests in its own event loop and reads them itself, instead of
 * worker threads reading and handing each request over (see channel.ts).
 *
 * Optional by design: a machine without a C compiler or node's headers gets
 * the worker-thread reader, and says why (`unavailableReason`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DevPoll {
  /** Calls `onReadable` on the main thread whenever `fd` is readable (level-triggered); status < 0 is a libuv error. */
  watch(fd: number, onReadable: (status: number) => void): unknown;
  /** Stops a watch; idempotent. */
  unwatch(handle: unknown): void;
  /** read(2) into `buf`: bytes read, or minus the errno (-EAGAIN when nothing is queued). */
  readInto(fd: number, buf: Buffer): number;
  /**
   * Like readInto, but an empty queue is read again for up to `budgetNs`
   * before -EAGAIN (the thread stays awake; see spin.ts).
   */
  spinRead(fd: number, buf: Buffer, budgetNs: number): number;
  /** Sets O_NONBLOCK on `fd`: 0, or minus the errno. */
  setNonblocking(fd: number): number;
}

/** Where the build puts the addon: dist/native, beside dist/fs. */
export const DEV_POLL_ADDON = path.join(__dirname, '..', '..', '..', 'native', 'fusepoll.node');

let loaded: DevPoll | undefined;
let failure: string | undefined;

/** The addon, or undefined (then `unavailableReason()` says why). Loaded once. */
export function devPoll(): DevPoll | undefined {
  if (loaded || failure !== undefined) return loaded;
  if (process.env.O2FUSE_NATIVE === '0') {
    failure = 'O2FUSE_NATIVE=0 is set';
    return undefined;
  }
  if (!fs.existsSync(DEV_POLL_ADDON)) {
    failure = `${DEV_POLL_ADDON} is not built (scripts/build-native.sh needs a C compiler and node's headers)`;
    return undefined;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require(DEV_POLL_ADDON) as Partial<DevPoll>;
    const missing = (['watch', 'unwatch', 'readInto', 'spinRead', 'setNonblocking'] as const).filter((f) => typeof addon[f] !== 'function');
    if (missing.length) failure = `${DEV_POLL_ADDON} is out of date (no ${missing.join(', ')}): rebuild it with npm run build`;
    else loaded = addon as DevPoll;
  } catch (err) {
    failure = `${DEV_POLL_ADDON} does not load: ${(err as Error).message}`;
  }
  return loaded;
}

export function unavailableReason(): string | undefined {
  devPoll();
  return failure;
}
