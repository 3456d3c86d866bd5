/**
 * Which FUSE transports o2fuse has: asked of its own option parser
 * (bin/options.ts), so a transport added there is benchmarked without a
 * change here. Names tried: the ones the parser's refusal message quotes,
 * plus the likely names of the raw /dev/fuse transport.
 */
import { parseMountOptions } from '../bin/options';

const LIKELY_NAMES = ['libfuse', 'kernel', 'lowlevel', 'low-level', 'devfuse', 'dev-fuse', 'raw', 'native', 'direct'];

function accepts(name: string): boolean {
  try {
    parseMountOptions([`transport=${name}`]);
    return true;
  } catch {
    return false;
  }
}

export function o2fuseTransports(): string[] {
  const names = new Set(LIKELY_NAMES);
  try {
    parseMountOptions(['transport=~no-such-transport~']);
  } catch (err) {
    // e.g. `transport=x: only "libfuse" exists` or `expected libfuse or kernel`
    for (const m of (err as Error).message.matchAll(/"([a-z0-9_-]+)"|\b([a-z][a-z0-9_-]+)\b/g)) names.add(m[1] ?? m[2]);
  }
  const found = [...names].filter(accepts);
  // libfuse first: the ratios against the libfuse passthrough are about it.
  return found.sort((a, b) => (a === 'libfuse' ? -1 : b === 'libfuse' ? 1 : a.localeCompare(b)));
}
