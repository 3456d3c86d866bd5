/**
 * Reading the counts of shared clusters (the kernel's ocfs2_get_refcount_rec
 * as its copy on write uses it): how many extents map each cluster of a run,
 * so that a write can tell a cluster somebody else still has (copied) from
 * one only its own file has left (written in place, its record dropped, as
 * ocfs2_clear_ext_refcount and ocfs2_decrease_refcount without delete do).
 * The transaction's copies of the tree's blocks are read, so counts this
 * change already lowered are seen.
 */
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import { OCFS2_REFCOUNT_TREE_FL, type RefcountBlock, type RefcountRec } from './format/refcount';
import { checkLeaf, forEachLeaf, noRecord, readTxRefcountBlock } from './refcountDecrease';
import { FsError } from './errors';

/**
 * The counts of physical clusters [cluster, cluster+count) in the refcount
 * tree whose root is `blkno`: records clipped to the run, in cluster order,
 * covering it exactly. EIO when a cluster of the run has no record (its
 * extent says it is shared, the tree does not count it).
 */
export async function countsOf(ctx: VolumeContext, tx: Transaction, blkno: number, owner: string, cluster: number,
  count: number): Promise<RefcountRec[]> {
  const what = `refcount tree ${blkno} of ${owner}`;
  const root = await readTxRefcountBlock(ctx, tx, blkno);
  const out: RefcountRec[] = [];
  if (!(root.rf_flags & OCFS2_REFCOUNT_TREE_FL)) {
    clipInto(out, root, cluster, cluster + count, what);
    return out;
  }
  await forEachLeaf(root, what, cluster, count, async (i, from, to) => {
    const leafBlkno = root.rf_list!.l_recs[i].e_blkno;
    const leaf = await readTxRefcountBlock(ctx, tx, leafBlkno);
    checkLeaf(leaf, blkno, what);
    clipInto(out, leaf, from, to, `${what}, leaf ${leafBlkno}`);
  });
  return out;
}

/** Pushes the records of `b` over [from, to), clipped to it; EIO unless they cover it without a gap or an overlap. */
function clipInto(out: RefcountRec[], b: RefcountBlock, from: number, to: number, what: string): void {
  const list = b.rf_records;
  if (!list) throw new FsError('EIO', `${what}: no records; run fsck.ocfs2`);
  let covered = from;
  for (const r of list.rl_recs.slice(0, list.rl_used)) {
    const rEnd = r.r_cpos + r.r_clusters;
    if (rEnd <= from || r.r_cpos >= to) continue;
    const a = Math.max(r.r_cpos, from);
    const e = Math.min(rEnd, to);
    if (a > covered) throw noRecord(what, covered);
    if (a < covered) throw new FsError('EIO', `${what}: records overlap at cluster ${a}; run fsck.ocfs2`);
    if (r.r_refcount === 0) throw new FsError('EIO', `${what}: record at cluster ${r.r_cpos} counts 0; run fsck.ocfs2`);
    out.push({ r_cpos: a, r_clusters: e - a, r_refcount: r.r_refcount });
    covered = e;
  }
  if (covered !== to) throw noRecord(what, covered);
}
