/**
 * Freeing what an inode's extended attributes hold, as part of freeing the
 * inode (the kernel's ocfs2_xattr_remove, called from ocfs2_wipe_inode).
 *
 * o2fuse does not write xattrs, but the volumes it mounts carry the kernel's,
 * and deleting such a file must give back everything they took:
 *
 * - a value over OCFS2_XATTR_INLINE_SIZE bytes lives outside its entry, in
 *   clusters mapped by a value tree (an extent list rooted beside the name),
 *   whether the entry is in the inode's inline area, in an xattr block or in
 *   a bucket;
 * - an inode with more than its inline area holds has an xattr block
 *   (i_xattr_loc), suballocated from an extent allocator;
 * - an indexed xattr block roots a tree of bucket clusters, each bucket
 *   (OCFS2_XATTR_BUCKET_SIZE bytes) a region of entries of its own.
 *
 * Left in place, those clusters and bits stay allocated to nobody, which is
 * what fsck.ocfs2 reports as "marked in the bitmap but not in use".
 * A value the kernel shared with a reflink (its extents flagged refcounted,
 * counted in the inode's refcount tree) is let go of as the file's data is:
 * its clusters count one fewer, and only those nobody shares any more are
 * freed (releaseRuns, fs/refcountDecrease.ts).
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import type { Dinode } from './format/dinode';
import type { ExtentList } from './format/extent';
import { decodeInlineXattr, OCFS2_XATTR_BUCKET_SIZE, type XattrRegion, type XattrValueRoot } from './format/xattr';
import { OCFS2_HAS_XATTR_FL, OCFS2_INLINE_XATTR_FL } from './format/constants';
import { ExtentTree, MAX_CPOS, MAX_LEAF_CLUSTERS, releaseRuns, type ExtentRoot } from './extentTree';
import { leafExtents } from './extentMap';
import { asEio, readXattrBlock, readXattrBucket } from './blocks';
import { FsError } from './errors';

const trace = createDebug('o2fuse:xattr');

/** Frees every value tree, bucket and xattr block of `di` (the transaction's copy of a dying inode). */
export async function freeXattrs(ctx: VolumeContext, tx: Transaction, di: Dinode): Promise<void> {
  const owner = `inode ${di.i_blkno}`;
  let values = 0;
  if ((di.i_dyn_features & OCFS2_INLINE_XATTR_FL) && di.inlineXattr) {
    values += await freeRegionValues(ctx, tx, di, inlineRegion(di.inlineXattr, owner), owner);
  }
  if (di.i_xattr_loc !== 0) {
    const xb = await readXattrBlock(ctx, di.i_xattr_loc);
    if (xb.xb_header) values += await freeRegionValues(ctx, tx, di, xb.xb_header, owner);
    if (xb.xb_root) {
      const root = xb.xb_root;
      const tree = `${owner} xattr tree`;
      await forEachXattrBucket(ctx, root.xt_list, tree, async (r) => {
        values += await freeRegionValues(ctx, tx, di, r, tree);
      });
      await freeTree(ctx, tx, di, treeRoot(tree, root.xt_list, () => root.xt_last_eb_blk,
        (b) => { root.xt_last_eb_blk = b; }, (d) => { root.xt_clusters += d; }));
    }
    await ctx.alloc.freeMetaBlock(tx, 'extent', {
      blkno: di.i_xattr_loc, slot: xb.xb_suballoc_slot, bit: xb.xb_suballoc_bit, loc: xb.xb_suballoc_loc,
    });
    trace('%s: xattr block %d freed%s', owner, di.i_xattr_loc, xb.xb_root ? ' with its buckets' : '');
    di.i_xattr_loc = 0;
  }
  if (values) trace('%s: %d values stored outside their entries freed', owner, values);
  if (!(di.i_dyn_features & OCFS2_INLINE_XATTR_FL)) di.i_dyn_features &= ~OCFS2_HAS_XATTR_FL;
}

/** Frees the value trees of a region's entries whose values live outside; returns how many. */
async function freeRegionValues(ctx: VolumeContext, tx: Transaction, di: Dinode, r: XattrRegion, owner: string): Promise<number> {
  let n = 0;
  for (const e of r.xh_entries) {
    if (!e.valueRoot) continue;
    await freeValue(ctx, tx, di, e.valueRoot, `${owner} xattr value ${e.name.toString('latin1')}`);
    n++;
  }
  return n;
}

async function freeValue(ctx: VolumeContext, tx: Transaction, di: Dinode, vr: XattrValueRoot, owner: string): Promise<void> {
  await freeTree(ctx, tx, di, treeRoot(owner, vr.xr_list, () => vr.xr_last_eb_blk, (b) => { vr.xr_last_eb_blk = b; },
    (d) => { vr.xr_clusters += d; }));
}

/** The inline area's entries; a malformed area is EIO naming the inode. */
function inlineRegion(area: Buffer, owner: string): XattrRegion {
  try {
    return decodeInlineXattr(area, `${owner} inline xattr`);
  } catch (err) {
    throw asEio(err);
  }
}

/**
 * Every bucket in use under an indexed block's tree, in tree order: each
 * extent is a run of clusters whose first bucket's xh_num_buckets says how
 * many of its buckets are in use (ocfs2_iterate_xattr_buckets).
 */
export async function forEachXattrBucket(ctx: VolumeContext, list: ExtentList, owner: string,
  fn: (bucket: XattrRegion) => Promise<void> | void): Promise<void> {
  const blocksPerBucket = OCFS2_XATTR_BUCKET_SIZE / ctx.geo.blockSize;
  for (const ext of await leafExtents(ctx, list, owner)) {
    const room = (ext.clusters * ctx.geo.bpc) / blocksPerBucket;
    let count = 1;
    for (let i = 0; i < count; i++) {
      const r = await readXattrBucket(ctx, ext.blkno + i * blocksPerBucket, owner);
      if (i === 0) {
        count = r.xh_num_buckets;
        if (count < 1 || count > room) {
          throw new FsError('EIO', `${owner}: the bucket at block ${ext.blkno} says xh_num_buckets ${count}, but its extent has room for ${room}`);
        }
      }
      await fn(r);
    }
  }
}

function treeRoot(owner: string, list: ExtentList, getLast: () => number, setLast: (b: number) => void,
  addClusters: (d: number) => void): ExtentRoot {
  return { owner, list, getLastEbBlk: getLast, setLastEbBlk: setLast, addClusters, maxLeafClusters: MAX_LEAF_CLUSTERS };
}

/**
 * Unmaps the whole tree (its extent blocks go back to their allocators on
 * the way) and lets go of the clusters it mapped (releaseRuns: freed, or, where
 * the kernel shared them with a reflink, counted one fewer in `di`'s refcount
 * tree). The root itself is not written back: it lives in a structure being
 * freed.
 */
async function freeTree(ctx: VolumeContext, tx: Transaction, di: Dinode, root: ExtentRoot): Promise<void> {
  if (root.list.l_next_free_rec === 0) return;
  const { removed } = await new ExtentTree(ctx, tx, root).remove(0, MAX_CPOS, { refcounted: true });
  await releaseRuns(ctx, tx, di, removed);
}
