/**
 * Lowering the counts of shared clusters when a file that shares them lets
 * go (the kernel's ocfs2_decrease_refcount, as ocfs2_remove_btree_range
 * calls it for a refcounted extent instead of freeing its clusters).
 *
 * A refcount tree counts, per run of physical clusters, how many extents
 * (OCFS2_EXT_REFCOUNTED) map them: records of (r_cpos, r_clusters,
 * r_refcount), sorted and disjoint. A file that unmaps a refcounted run takes
 * one from the count of every cluster in it; a cluster whose count reaches
 * zero belongs to nobody any more and goes back to the global bitmap, and its
 * record goes. A record the run covers only in part is split, as the kernel
 * splits it (ocfs2_split_refcount_rec): the parts outside keep their count.
 * A record whose count changed then merges with a neighbour it now continues
 * at the same count, as the kernel merges it (ocfs2_refcount_rec_merge), so
 * that the tree holds the records the kernel's own delete would leave.
 *
 * Only a tree held in its root block is changed here (rf_records; up to 247
 * records on 4 KiB blocks). One grown into leaf blocks (OCFS2_REFCOUNT_TREE_FL),
 * or a split that needs more records than the root holds, is refused with
 * EOPNOTSUPP before anything changes, rather than half done.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import type { ClusterRun } from './allocApi';
import { decodeRefcountBlock, encodeRefcountBlock, OCFS2_REFCOUNT_TREE_FL, type RefcountRec } from './format/refcount';
import { readRefcountBlock } from './blocks';
import { FsError } from './errors';

const trace = createDebug('o2fuse:fs');

/**
 * `recs` (sorted, disjoint) with one taken from the count of every cluster of
 * [cluster, cluster+count), split where a record reaches past the run and merged
 * where a lowered one meets a neighbour at its new count: the new records, and
 * the runs whose count reached zero. Throws if a cluster of the run has no
 * record (the extent says it is shared, the tree does not count it).
 */
export function decreaseRecords(recs: readonly RefcountRec[], cluster: number, count: number, what: string):
  { recs: RefcountRec[]; freed: ClusterRun[] } {
  const end = cluster + count;
  const out: RefcountRec[] = [];
  const lowered = new Set<RefcountRec>();
  const freed: ClusterRun[] = [];
  let covered = cluster;
  for (const r of recs) {
    const rEnd = r.r_cpos + r.r_clusters;
    if (rEnd <= cluster || r.r_cpos >= end) {
      out.push(r);
      continue;
    }
    const a = Math.max(r.r_cpos, cluster);
    const b = Math.min(rEnd, end);
    if (a !== covered) break;
    covered = b;
    if (r.r_refcount === 0) throw new FsError('EIO', `${what}: record at cluster ${r.r_cpos} counts 0; run fsck.ocfs2`);
    if (r.r_cpos < a) out.push({ r_cpos: r.r_cpos, r_clusters: a - r.r_cpos, r_refcount: r.r_refcount });
    if (r.r_refcount > 1) {
      const low = { r_cpos: a, r_clusters: b - a, r_refcount: r.r_refcount - 1 };
      lowered.add(low);
      out.push(low);
    } else {
      freed.push({ cluster: a, count: b - a });
    }
    if (b < rEnd) out.push({ r_cpos: b, r_clusters: rEnd - b, r_refcount: r.r_refcount });
  }
  if (covered !== end) {
    throw new FsError('EIO', `${what}: cluster ${covered} is mapped as shared but has no refcount record; run fsck.ocfs2`);
  }
  return { recs: mergeLowered(out, lowered), freed };
}

/** `recs` with each record in `lowered` joined to a neighbour it continues at the same count. */
function mergeLowered(recs: RefcountRec[], lowered: ReadonlySet<RefcountRec>): RefcountRec[] {
  const out: RefcountRec[] = [];
  let prevTouched = false;
  for (const r of recs) {
    const prev = out[out.length - 1];
    const touched = lowered.has(r);
    if (prev && (touched || prevTouched) && prev.r_refcount === r.r_refcount && prev.r_cpos + prev.r_clusters === r.r_cpos) {
      out[out.length - 1] = { r_cpos: prev.r_cpos, r_clusters: prev.r_clusters + r.r_clusters, r_refcount: r.r_refcount };
      prevTouched = true;
      continue;
    }
    out.push(r);
    prevTouched = touched;
  }
  return out;
}

/**
 * Takes one from the count of [cluster, cluster+count) in the refcount tree
 * whose root is `blkno`, in `tx`; returns the runs whose count reached zero,
 * for the caller to free.
 */
export async function decreaseRefcount(ctx: VolumeContext, tx: Transaction, blkno: number, owner: string,
  cluster: number, count: number): Promise<ClusterRun[]> {
  const what = `refcount tree ${blkno} of ${owner}`;
  // Read through the checks first (signature, owner generation, ECC); then the transaction's own copy, which
  // holds what earlier runs of this change already took.
  await readRefcountBlock(ctx, blkno);
  const buf = await tx.block(blkno, 'refcount block');
  const rb = decodeRefcountBlock(buf, blkno);
  if (rb.rf_flags & OCFS2_REFCOUNT_TREE_FL || !rb.rf_records) {
    throw new FsError('EOPNOTSUPP', `${what} has grown into leaf blocks; o2fuse lowers counts only in a tree held in its root`);
  }
  const list = rb.rf_records;
  const { recs, freed } = decreaseRecords(list.rl_recs.slice(0, list.rl_used), cluster, count, what);
  if (recs.length > list.rl_count) {
    throw new FsError('EOPNOTSUPP', `${what}: lowering clusters ${cluster}+${count} needs ${recs.length} records, ` +
      `more than the ${list.rl_count} its root holds; o2fuse does not grow refcount trees`);
  }
  list.rl_recs = recs;
  list.rl_used = recs.length;
  encodeRefcountBlock(rb, buf);
  trace('%s: clusters %d+%d count one fewer; %d cluster(s) no longer shared by anyone freed', what, cluster, count,
    freed.reduce((n, r) => n + r.count, 0));
  return freed;
}
