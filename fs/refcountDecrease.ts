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
 * A tree that has grown into leaf blocks (OCFS2_REFCOUNT_TREE_FL: the root's
 * extent list maps the low 32 bits of a cluster number to the leaf that counts
 * it, each leaf from its e_cpos up to the next one's) is changed leaf by leaf.
 * A leaf left with no record is taken out of the root's list and freed
 * (ocfs2_remove_refcount_extent), and a root left with no leaf goes back to
 * holding records itself. A split that leaves a block with more records
 * than it holds grows the tree (fs/refcountGrow.ts: the root's records move
 * to leaves, a full leaf is divided). A root list deeper than one level, or
 * one that would have to be (more leaves than the root holds: 247 on 4 KiB
 * blocks), is refused with EOPNOTSUPP. The refusal fails the whole change
 * (its transaction aborts), so runs and leaves lowered before it in the same
 * change are not written either.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import type { ClusterRun } from './allocApi';
import {
  decodeRefcountBlock, encodeRefcountBlock, lowCpos, OCFS2_REFCOUNT_LEAF_FL, OCFS2_REFCOUNT_TREE_FL, refcountRecsPerRefcountBlock,
  type RefcountBlock, type RefcountRec,
} from './format/refcount';
import type { ExtentList } from './format/extent';
import type { Dinode } from './format/dinode';
import { OCFS2_HAS_REFCOUNT_FL } from './format/constants';
import { readRefcountBlock } from './blocks';
import { expandRoot, splitLeaf } from './refcountGrow';
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
    if (a > covered) throw noRecord(what, covered);
    if (a < covered) throw new FsError('EIO', `${what}: records overlap at cluster ${a}; run fsck.ocfs2`);
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
  if (covered !== end) throw noRecord(what, covered);
  return { recs: mergeLowered(out, lowered), freed };
}

export function noRecord(what: string, cluster: number): FsError {
  return new FsError('EIO', `${what}: cluster ${cluster} is mapped as shared but has no refcount record; run fsck.ocfs2`);
}

/**
 * `recs` with each record in `lowered` joined to its neighbours where it continues them at the same count: once on
 * each side, as ocfs2_refcount_rec_merge rotates left at most twice around the record it changed.
 */
function mergeLowered(recs: RefcountRec[], lowered: ReadonlySet<RefcountRec>): RefcountRec[] {
  const out: RefcountRec[] = [];
  let prevTouched = false;
  for (const r of recs) {
    const prev = out[out.length - 1];
    const touched = lowered.has(r);
    if (prev && (touched || prevTouched) && prev.r_refcount === r.r_refcount && prev.r_cpos + prev.r_clusters === r.r_cpos) {
      out[out.length - 1] = { r_cpos: prev.r_cpos, r_clusters: prev.r_clusters + r.r_clusters, r_refcount: r.r_refcount };
      // An untouched record joined to a lowered one on its left takes no further neighbour of its own.
      prevTouched = touched;
      continue;
    }
    out.push(r);
    prevTouched = touched;
  }
  return out;
}

/** The root of the refcount tree that `di`'s shared extent at `cpos` counts in (EIO when the inode names none). */
export function refcountRootOf(di: Dinode, cpos: number): number {
  if (!(di.i_dyn_features & OCFS2_HAS_REFCOUNT_FL) || di.i_refcount_loc === 0) {
    throw new FsError('EIO', `inode ${di.i_blkno}: extent at cpos ${cpos} is refcounted, but the inode has no refcount tree; run fsck.ocfs2`);
  }
  return di.i_refcount_loc;
}

/**
 * Takes one from the count of [cluster, cluster+count) in the refcount tree
 * whose root is `blkno`, in `tx`; returns the runs whose count reached zero,
 * for the caller to free.
 */
export async function decreaseRefcount(ctx: VolumeContext, tx: Transaction, blkno: number, owner: string,
  cluster: number, count: number): Promise<ClusterRun[]> {
  const what = `refcount tree ${blkno} of ${owner}`;
  const root = await txRefcountBlock(ctx, tx, blkno);
  if (!(root.rb.rf_flags & OCFS2_REFCOUNT_TREE_FL)) {
    const freed = lowerIn(root, cluster, count, what);
    if (overfull(root)) await expandRoot(ctx, tx, root, what);
    await root.write();
    traceLowered(what, cluster, count, freed);
    return freed;
  }
  const freed: ClusterRun[] = [];
  let rootChanged = false;
  await forEachLeaf(root.rb, what, cluster, count, async (i, pos, segEnd) => {
    const leaf = await txRefcountBlock(ctx, tx, root.rb.rf_list!.l_recs[i].e_blkno);
    checkLeaf(leaf.rb, blkno, what);
    freed.push(...lowerIn(leaf, pos, segEnd - pos, `${what}, leaf ${leaf.blkno}`));
    if (overfull(leaf)) {
      await splitLeaf(ctx, tx, root, i, leaf, what);
      rootChanged = true;
    } else if (leaf.rb.rf_records!.rl_used > 0) {
      await leaf.write();
    } else {
      await dropLeaf(ctx, tx, root, i, leaf);
      rootChanged = true;
    }
  });
  if (rootChanged) await root.write();
  traceLowered(what, cluster, count, freed);
  return freed;
}

/**
 * Walks the leaves of a tree root (OCFS2_REFCOUNT_TREE_FL) that count [cluster, cluster+count), in order: `visit`
 * gets each one's index in the root's list and the part of the run it counts, and may change the list (a leaf
 * divided or dropped) before the next is looked up. Only a root list of depth 0 is walked (EOPNOTSUPP otherwise).
 */
export async function forEachLeaf(root: RefcountBlock, what: string, cluster: number, count: number,
  visit: (i: number, from: number, to: number) => Promise<void>): Promise<void> {
  const list = root.rf_list;
  if (!list) throw new FsError('EIO', `${what}: OCFS2_REFCOUNT_TREE_FL without an extent list; run fsck.ocfs2`);
  if (list.l_tree_depth > 0) {
    throw new FsError('EOPNOTSUPP', `${what} has a root list of depth ${list.l_tree_depth}; o2fuse handles only leaves the root points to`);
  }
  const end = cluster + count;
  for (let pos = cluster; pos < end;) {
    const { i, segEnd } = leafSpan(list, pos, end, what);
    await visit(i, pos, segEnd);
    pos = segEnd;
  }
}

/**
 * The leaf of a tree's root list that counts cluster `pos` (ocfs2_get_refcount_rec: the last leaf starting at or below
 * the cluster's low 32 bits, the first when none does), its index, and where its span ends (the next leaf's start, or
 * `end`).
 */
function leafSpan(list: ExtentList, pos: number, end: number, what: string): { i: number; segEnd: number } {
  const leaves = list.l_recs.slice(0, list.l_next_free_rec);
  const low = lowCpos(pos);
  let i = leaves.length - 1;
  while (i > 0 && leaves[i].e_cpos > low) i--;
  if (i < 0) throw new FsError('EIO', `${what}: OCFS2_REFCOUNT_TREE_FL with no leaf; run fsck.ocfs2`);
  const upTo = i + 1 < leaves.length ? pos + (leaves[i + 1].e_cpos - low) : end;
  return { i, segEnd: Math.min(end, upTo) };
}

/** EIO unless `leaf` is a leaf block whose parent is the root `rootBlkno`. */
export function checkLeaf(leaf: RefcountBlock, rootBlkno: number, what: string): void {
  if (!(leaf.rf_flags & OCFS2_REFCOUNT_LEAF_FL) || leaf.rf_parent !== rootBlkno) {
    throw new FsError('EIO', `${what}: block ${leaf.rf_blkno} is not a leaf of this tree (rf_flags 0x${leaf.rf_flags.toString(16)}, ` +
      `rf_parent ${leaf.rf_parent}); run fsck.ocfs2`);
  }
}

/** A refcount block checked as read, decoded from the transaction's copy (which earlier runs of this change may have changed). */
interface TxRefcountBlock {
  blkno: number;
  rb: RefcountBlock;
  /** Encodes `rb` into the transaction's copy (joining the block to `tx` then, not before: a leaf that empties is only freed). */
  write(): Promise<void>;
}

async function txRefcountBlock(ctx: VolumeContext, tx: Transaction, blkno: number): Promise<TxRefcountBlock> {
  const rb = await readTxRefcountBlock(ctx, tx, blkno);
  return { blkno, rb, write: async () => encodeRefcountBlock(rb, await tx.block(blkno, 'refcount block')) };
}

/**
 * Lowers [cluster, cluster+count) in the records of `b` (changed in place in `b.rb`); returns the runs freed. The
 * records may then be more than the block holds (overfull): the caller grows the tree (fs/refcountGrow.ts).
 */
function lowerIn(b: TxRefcountBlock, cluster: number, count: number, what: string): ClusterRun[] {
  const list = b.rb.rf_records;
  if (!list) throw new FsError('EIO', `${what}: no records; run fsck.ocfs2`);
  const { recs, freed } = decreaseRecords(list.rl_recs.slice(0, list.rl_used), cluster, count, what);
  list.rl_recs = recs;
  list.rl_used = recs.length;
  return freed;
}

const overfull = (b: TxRefcountBlock): boolean => b.rb.rf_records!.rl_used > b.rb.rf_records!.rl_count;

/**
 * ocfs2_remove_refcount_extent: a leaf with no record left goes from the root's list (index `i`) and back to its
 * suballocator; a root left with no leaf holds records itself again.
 */
async function dropLeaf(ctx: VolumeContext, tx: Transaction, root: TxRefcountBlock, i: number, leaf: TxRefcountBlock): Promise<void> {
  const list = root.rb.rf_list!;
  if (root.rb.rf_clusters < 1) {
    throw new FsError('EIO', `refcount tree ${root.blkno}: rf_clusters ${root.rb.rf_clusters} with leaf ${leaf.blkno} in its list; run fsck.ocfs2`);
  }
  list.l_recs.splice(i, 1);
  list.l_next_free_rec -= 1;
  root.rb.rf_clusters -= 1;
  // A leaf an earlier run of this change already wrote keeps that copy in the transaction: it goes out empty.
  if (tx.has(leaf.blkno)) await leaf.write();
  await freeRefcountBlock(ctx, tx, leaf.blkno, leaf.rb);
  trace('refcount tree %d: leaf %d counts nothing any more: freed', root.blkno, leaf.blkno);
  if (list.l_next_free_rec > 0) return;
  root.rb.rf_flags &= ~OCFS2_REFCOUNT_TREE_FL;
  root.rb.rf_parent = 0;
  root.rb.rf_cpos = 0;
  root.rb.rf_clusters = 0;
  root.rb.rf_last_eb_blk = 0;
  root.rb.rf_list = undefined;
  root.rb.tail = undefined;
  root.rb.rf_records = {
    rl_count: refcountRecsPerRefcountBlock(ctx.geo.blockSize), rl_used: 0, rl_reserved2: 0, rl_reserved1: Buffer.alloc(8), rl_recs: [],
  };
  trace('refcount tree %d: no leaf left; the root holds records again', root.blkno);
}

function traceLowered(what: string, cluster: number, count: number, freed: readonly ClusterRun[]): void {
  trace('%s: clusters %d+%d count one fewer; %d cluster(s) no longer shared by anyone freed', what, cluster, count,
    freed.reduce((n, r) => n + r.count, 0));
}

/**
 * A refcount block decoded from the transaction's copy when it has one, which holds what this change already did to
 * it (the block was checked when it was first read in); else read and checked (signature, own block number,
 * generation, ECC).
 */
export async function readTxRefcountBlock(ctx: VolumeContext, tx: Transaction, blkno: number): Promise<RefcountBlock> {
  if (tx.has(blkno)) return decodeRefcountBlock(await tx.block(blkno, 'refcount block'), blkno);
  return readRefcountBlock(ctx, blkno);
}

/** A refcount tree's root or leaf back to the suballocator its header names. */
export async function freeRefcountBlock(ctx: VolumeContext, tx: Transaction, blkno: number, rb: RefcountBlock): Promise<void> {
  await ctx.alloc.freeMetaBlock(tx, 'extent', { blkno, slot: rb.rf_suballoc_slot, bit: rb.rf_suballoc_bit, loc: rb.rf_suballoc_loc });
}
