/**
 * The daemon's V8 heap settings that follow its memory budget (cache_size).
 *
 * The young generation. Each metadata operation allocates ~45 KiB of
 * short-lived objects (decoded inodes, block copies' views, promises), and
 * a scavenge comes every time a semi-space fills: with 2 MiB semi-spaces,
 * every ~25 operations through FUSE, a 0.4-0.8 ms pause landing inside
 * one request, ~16 us per operation in all. Larger semi-spaces scavenge
 * less often and let more of each operation's objects die young; they cost
 * twice their size in memory. So the semi-space follows cache_size: 1/32 of
 * it, from 2 MiB (cache_size=64M and below, what the memory-bounded
 * streaming test runs) to 16 MiB (V8's own default, from cache_size=512M):
 * the default cache gets 8 MiB, which made 5,000 unlinks through FUSE 3-4 %
 * faster and creates 2-4 % (4 alternating runs each: unlinks 5,095-5,306 ->
 * 5,092-5,406/s, medians 5,134 -> 5,295; creates medians 3,477 -> 3,607),
 * for up to 12 MiB more RSS.
 *
 * The launcher runs node with a small young generation (bin/o2fuse), so that
 * a daemon's memory is its page cache plus a steady overhead. After a full
 * collection V8 sets the old generation's next limit not far above what
 * survived it, and a metadata workload (each create or unlink leaves a few
 * KiB of decoded inodes and directory views behind in the old generation)
 * reaches it every few hundred operations: a mark-compact with ~8 ms of
 * marking on the event loop and more on a helper thread, which on a small
 * machine takes a CPU from the clients, landing inside requests.
 *
 * `--initial-old-space-size` is a floor under that limit. The daemon gets a
 * quarter of its cache_size, at most 64 MiB: the default cache (256M) gets
 * the 64 MiB floor, which made 5,000 unlinks through FUSE 13-15 % faster on
 * this project's 2-CPU machines when the launcher still capped the old
 * generation at 192 MiB (6 alternating pairs: 4,177-4,787 -> 5,005-5,565 per
 * second), and 3-6 % faster without the cap, where V8 grows the limit further
 * itself (3 alternating pairs: 5,646-6,201 -> 5,919-6,446 per second, 12-15
 * MiB more peak RSS); cache_size=64M gets 16 MiB, below the limit V8 picks itself, so
 * a daemon with a small budget (the memory-bounded streaming test's) runs as
 * before. The floor costs at most that much memory, garbage the collector
 * may leave uncollected, on top of the cache the user chose.
 *
 * The mount command works the flags out once, from the options it parsed,
 * and spawns the background daemon with them; `mount -f`, whose daemon would
 * run in the process the launcher started, runs it in a child started with
 * them instead (detach.ts). A floor given in O2FUSE_NODE_OPTIONS is left
 * alone.
 */
import { DEFAULT_CACHE_BYTES } from '../fs/volume';

const MiB = 1024 * 1024;
/** The floor's ceiling, in MiB. */
export const OLD_SPACE_FLOOR_MAX_MIB = 64;
const FLAG = '--initial-old-space-size';
/** The semi-space's bounds, in MiB (see the module comment). */
export const SEMI_SPACE_MIN_MIB = 2;
export const SEMI_SPACE_MAX_MIB = 16;
const SEMI_FLAG = '--max-semi-space-size';

/**
 * Extra node flags for a daemon whose page cache is `cacheSizeBytes` (the parsed cache_size; undefined: the
 * default), given the flags the launcher already set.
 */
export function heapFlagsFor(cacheSizeBytes: number | undefined, execArgv: readonly string[]): string[] {
  const cacheMib = (cacheSizeBytes ?? DEFAULT_CACHE_BYTES) / MiB;
  const flags: string[] = [];
  const floor = Math.min(OLD_SPACE_FLOOR_MAX_MIB, Math.floor(cacheMib / 4));
  if (!givenFlag(execArgv, FLAG) && floor >= 1) flags.push(`${FLAG}=${floor}`);
  const semi = Math.max(SEMI_SPACE_MIN_MIB, Math.min(SEMI_SPACE_MAX_MIB, Math.floor(cacheMib / 32)));
  if (!givenFlag(execArgv, SEMI_FLAG)) flags.push(`${SEMI_FLAG}=${semi}`);
  return flags;
}

/** Whether `flag` (--name) is among the node flags, with or without a value; V8 reads `_` for `-` too. */
export function givenFlag(execArgv: readonly string[], flag: string): boolean {
  return execArgv.some((a) => a.replace(/_/g, '-').split('=')[0] === flag);
}
