/**
 * When a large indexed directory is worth scanning into a map.
 *
 * Name lookups (fs/dir.ts) and entry changes (fs/dirUpdate.ts) each keep a
 * per-directory map built by one scan of every block: afterwards each use
 * is a Map.get. An indexed directory can answer the same questions through
 * its dx index instead, reading the root, one leaf and a dir block (~15 us
 * warm in a 100,000-name directory, a few blocks cold). For a directory of
 * up to SCAN_MAX_BLOCKS blocks the scan is cheap and the map is built at
 * once. Above it the index is used until the directory has had as many
 * index uses as it has blocks: a scan would by then have cost about what
 * those uses did, and the map pays for itself from there (rent or buy: at
 * most twice the better choice made in hindsight). A directory used now
 * and then never holds its names in memory, and the first stat or unlink
 * after a mount reads a few blocks, not the whole directory.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Inode } from './inode';
import type { Dinode } from './format/dinode';
import { isIndexed } from './dxIndex';

const trace = createDebug('o2fuse:dir');

/** 64 blocks hold 6,000-12,000 short names at 4 KiB: a scan of a few milliseconds. */
export const SCAN_MAX_BLOCKS = 64;

export class ScanOrIndex {
  /** Index uses per directory since its map was last missing (an evicted Inode takes its count with it). */
  private readonly uses = new WeakMap<Inode, number>();

  /** `what`: the map this rule decides about, for the trace. */
  constructor(private readonly what: string) {}

  /**
   * Whether this use of `dir` (whose committed dinode is `di`, and which has
   * no current map) goes through the dx index; false means: scan, build the
   * map. Counts the use.
   */
  useIndex(ctx: VolumeContext, dir: Inode, di: Dinode): boolean {
    if (!isIndexed(di) || di.data || di.i_dx_root === 0) return false;
    if (ctx.dirLookups === 'index') return true;
    const blocks = di.i_size / ctx.geo.blockSize;
    if (blocks <= SCAN_MAX_BLOCKS) return false;
    const n = (this.uses.get(dir) ?? 0) + 1;
    if (n > blocks) {
      trace('directory %d: %d uses of its index; building the %s', dir.ino, n - 1, this.what);
      this.uses.delete(dir);
      return false;
    }
    this.uses.set(dir, n);
    return true;
  }
}
