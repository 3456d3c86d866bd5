/**
 * Reading an extent tree: from a root extent list (an inode's id2, a dx root,
 * ...) down through extent blocks to the leaf records that map file clusters
 * to disk blocks.
 *
 * A corrupt tree must not hang or crash the daemon: every step down must lose
 * exactly one level of l_tree_depth, a block is never visited twice in one
 * walk, records must be sorted and non-overlapping, and physical ranges must
 * lie on the volume. Any violation is EIO naming the owner and the block.
 */
import type { VolumeContext } from './context';
import type { ExtentList } from './format/extent';
import { OCFS2_EXT_UNWRITTEN } from './format/constants';
import { readExtentBlock } from './blocks';
import { FsError } from './errors';

/** A leaf extent: `clusters` clusters of the file starting at cluster `cpos` live at block `blkno`. */
export interface Extent {
  cpos: number;
  clusters: number;
  blkno: number;
  flags: number;
}

/** Deepest tree the walk accepts; the kernel's trees stay far below this. */
export const MAX_TREE_DEPTH = 12;

export function isUnwritten(e: Extent): boolean {
  return (e.flags & OCFS2_EXT_UNWRITTEN) !== 0;
}

/** Every leaf extent of the tree, in cpos order. */
export async function leafExtents(ctx: VolumeContext, root: ExtentList, owner: string): Promise<Extent[]> {
  const out: Extent[] = [];
  const visited = new Set<number>();
  await walk(ctx, root, owner, visited, out, root.l_tree_depth, `${owner} root`);
  for (let i = 1; i < out.length; i++) {
    const prev = out[i - 1];
    if (out[i].cpos < prev.cpos + prev.clusters) {
      throw new FsError('EIO', `${owner}: extent at cpos ${out[i].cpos} overlaps the one at cpos ${prev.cpos} (+${prev.clusters})`);
    }
  }
  return out;
}

async function walk(ctx: VolumeContext, list: ExtentList, owner: string, visited: Set<number>, out: Extent[],
  expectDepth: number, where: string): Promise<void> {
  if (list.l_tree_depth !== expectDepth) {
    throw new FsError('EIO', `${owner}: ${where} has l_tree_depth ${list.l_tree_depth}, expected ${expectDepth}`);
  }
  if (expectDepth > MAX_TREE_DEPTH) throw new FsError('EIO', `${owner}: extent tree depth ${expectDepth} exceeds ${MAX_TREE_DEPTH}`);
  const { bpc } = ctx.geo;
  const volBlocks = ctx.device.size / ctx.geo.blockSize;
  for (let i = 0; i < list.l_next_free_rec; i++) {
    const rec = list.l_recs[i];
    if (expectDepth === 0) {
      const clusters = rec.e_leaf_clusters;
      if (clusters === 0) continue; // an empty leaf record: the kernel leaves these at the left edge
      if (rec.e_blkno === 0 || rec.e_blkno + clusters * bpc > volBlocks) {
        throw new FsError('EIO', `${owner}: ${where} record ${i} maps ${clusters} clusters at block ${rec.e_blkno}, outside the volume`);
      }
      out.push({ cpos: rec.e_cpos, clusters, blkno: rec.e_blkno, flags: rec.e_flags });
    } else {
      const child = rec.e_blkno;
      if (child === 0) throw new FsError('EIO', `${owner}: ${where} record ${i} points to block 0`);
      if (visited.has(child)) throw new FsError('EIO', `${owner}: extent block ${child} appears twice in the tree (loop)`);
      visited.add(child);
      const eb = await readExtentBlock(ctx, child);
      await walk(ctx, eb.h_list, owner, visited, out, expectDepth - 1, `extent block ${child}`);
    }
  }
}

/**
 * The extent covering cluster `cpos`, or the hole around it: `{ hole: [start, end) }`
 * in clusters (end = Infinity past the last extent).
 */
export function findExtent(extents: readonly Extent[], cpos: number): Extent | { holeStart: number; holeEnd: number } {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = extents[mid];
    if (cpos < e.cpos) hi = mid - 1;
    else if (cpos >= e.cpos + e.clusters) lo = mid + 1;
    else return e;
  }
  const holeStart = hi >= 0 ? extents[hi].cpos + extents[hi].clusters : 0;
  const holeEnd = lo < extents.length ? extents[lo].cpos : Infinity;
  return { holeStart, holeEnd };
}
