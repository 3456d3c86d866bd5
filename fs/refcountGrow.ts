/**
 * Growing a refcount tree when lowering a count splits a record in a block
 * that has no record free: every copy on write in the middle of a shared run
 * turns one record into up to three, so a file written at random soon fills
 * its tree's root. As the kernel grows it (ocfs2_expand_refcount_tree):
 *
 * - a root holding records becomes the root of a tree: its records move to
 *   a new leaf block (rf_cpos 0, ocfs2_expand_inline_ref_root), and the root
 *   holds an extent list (OCFS2_REFCOUNT_TREE_FL) whose one record maps
 *   cluster 0 up to that leaf;
 * - a leaf with more records than it holds is divided near its middle, where
 *   two neighbouring records do not overlap in the low 32 bits of their
 *   clusters: the upper half moves to a new leaf whose rf_cpos is its first
 *   record's low cluster, added to the root's list after the old leaf
 *   (ocfs2_new_leaf_refcount_block, ocfs2_divide_leaf_refcount_block). Each
 *   leaf counts as one in the root's rf_clusters and its list record.
 *
 * New leaves come from the slot's extent allocator, as the kernel's do. The
 * root's list stays one level deep: when it is full (247 leaves on 4 KiB
 * blocks, 23 on 512-byte ones) the change is refused with EOPNOTSUPP before
 * anything is written.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import {
  encodeRefcountBlock, lowCpos, OCFS2_REFCOUNT_LEAF_FL, OCFS2_REFCOUNT_TREE_FL, extentRecsPerRefcountBlock, refcountRecsPerRefcountBlock,
  type RefcountBlock, type RefcountRec,
} from './format/refcount';
import { emptyExtentList, type ExtentRec } from './format/extent';
import { FsError } from './errors';

const trace = createDebug('o2fuse:fs');

/** A refcount block being changed in a transaction: its decoded form and how to put it into the transaction. */
export interface GrowBlock {
  blkno: number;
  rb: RefcountBlock;
  write(): Promise<void>;
}

/**
 * A root whose records outnumber what it holds (rl_used past rl_count, as
 * lowering left them) becomes a tree: its records go to leaves, as many as
 * they need. The caller writes the root.
 */
export async function expandRoot(ctx: VolumeContext, tx: Transaction, root: GrowBlock, what: string): Promise<void> {
  const recs = usedRecs(root.rb);
  const leaf = await newLeaf(ctx, tx, root, 0, recs);
  root.rb.rf_flags = OCFS2_REFCOUNT_TREE_FL;
  root.rb.rf_records = undefined;
  root.rb.tail = undefined;
  root.rb.rf_last_eb_blk = 0;
  const list = emptyExtentList(extentRecsPerRefcountBlock(ctx.geo.blockSize));
  list.l_recs[0] = leafEntry(list.l_recs[0], 0, leaf.blkno);
  list.l_next_free_rec = 1;
  root.rb.rf_list = list;
  root.rb.rf_clusters = 1;
  trace('%s: the root\'s %d records moved to leaf %d: the root is a tree now', what, recs.length, leaf.blkno);
  await splitLeaf(ctx, tx, root, 0, leaf, what);
}

/**
 * Leaf `i` of the root's list holds more records than it can: its upper half
 * moves to a new leaf after it. Writes both leaves; the caller writes the root.
 */
export async function splitLeaf(ctx: VolumeContext, tx: Transaction, root: GrowBlock, i: number, leaf: GrowBlock,
  what: string): Promise<void> {
  const recs = usedRecs(leaf.rb);
  const cap = refcountRecsPerRefcountBlock(ctx.geo.blockSize);
  if (recs.length <= cap) return leaf.write();
  const list = root.rb.rf_list!;
  if (list.l_next_free_rec >= list.l_count) {
    throw new FsError('EOPNOTSUPP', `${what}: its root lists ${list.l_count} leaves, all it holds, and leaf ${leaf.blkno} ` +
      'needs splitting; o2fuse does not deepen refcount trees');
  }
  const at = splitIndex(recs);
  if (at < 0 || at > cap || recs.length - at > cap) {
    throw new FsError('EOPNOTSUPP', `${what}: leaf ${leaf.blkno}'s records cannot be divided at a 32-bit cluster boundary`);
  }
  const upper = recs.slice(at);
  setRecs(leaf.rb, recs.slice(0, at));
  const cpos = lowCpos(upper[0].r_cpos);
  const added = await newLeaf(ctx, tx, root, cpos, upper);
  const n = list.l_next_free_rec;
  list.l_recs.splice(i + 1, 0, leafEntry(list.l_recs[n], cpos, added.blkno));
  list.l_recs.length = list.l_count;
  list.l_next_free_rec = n + 1;
  root.rb.rf_clusters += 1;
  await leaf.write();
  trace('%s: leaf %d divided at cluster %d: %d records stay, %d go to new leaf %d', what, leaf.blkno, cpos, at, upper.length, added.blkno);
}

/**
 * Where to divide sorted records: the index nearest the middle whose record
 * starts (in the low 32 bits) past the end of the one before it
 * (ocfs2_find_refcount_split_pos); -1 when there is none.
 */
export function splitIndex(recs: readonly RefcountRec[]): number {
  const middle = Math.floor(recs.length / 2);
  const apart = (k: number) => lowCpos(recs[k - 1].r_cpos) + recs[k - 1].r_clusters <= lowCpos(recs[k].r_cpos);
  for (let delta = 0; delta < middle; delta++) {
    if (apart(middle - delta)) return middle - delta;
    if (middle + delta + 1 < recs.length && apart(middle + delta + 1)) return middle + delta + 1;
  }
  return -1;
}

/** The root list's record for a leaf from low cluster `cpos` (each leaf counts as one cluster), made from an unused record. */
function leafEntry(unused: ExtentRec, cpos: number, blkno: number): ExtentRec {
  return { ...unused, e_cpos: cpos, e_blkno: blkno, e_leaf_clusters: 1, e_int_clusters: 1, e_flags: 0 };
}

function usedRecs(rb: RefcountBlock): RefcountRec[] {
  const list = rb.rf_records!;
  return list.rl_recs.slice(0, list.rl_used);
}

function setRecs(rb: RefcountBlock, recs: RefcountRec[]): void {
  rb.rf_records!.rl_recs = recs;
  rb.rf_records!.rl_used = recs.length;
}

/** A leaf of `root` from the extent allocator, counting `recs` from low cluster `cpos`, written into `tx`. */
async function newLeaf(ctx: VolumeContext, tx: Transaction, root: GrowBlock, cpos: number, recs: RefcountRec[]): Promise<GrowBlock> {
  const claim = await ctx.alloc.claimMetaBlock(tx, 'extent');
  const cap = refcountRecsPerRefcountBlock(ctx.geo.blockSize);
  const rb: RefcountBlock = {
    ...root.rb,
    rf_signature: Buffer.alloc(8),
    rf_suballoc_slot: claim.slot,
    rf_suballoc_bit: claim.bit,
    rf_suballoc_loc: claim.groupBlkno,
    rf_fs_generation: ctx.fsGeneration,
    rf_blkno: claim.blkno,
    rf_parent: root.blkno,
    rf_check: Buffer.alloc(8),
    rf_last_eb_blk: 0,
    rf_count: 0,
    rf_flags: OCFS2_REFCOUNT_LEAF_FL,
    rf_clusters: 0,
    rf_cpos: cpos,
    rf_generation: root.rb.rf_generation,
    rf_reserved0: 0,
    rf_reserved1: Buffer.alloc(48),
    rf_list: undefined,
    tail: undefined,
    rf_records: { rl_count: cap, rl_used: 0, rl_reserved2: 0, rl_reserved1: Buffer.alloc(8), rl_recs: [] },
  };
  setRecs(rb, recs);
  const leaf: GrowBlock = {
    blkno: claim.blkno,
    rb,
    write: async () => {
      const buf = tx.has(claim.blkno) ? await tx.block(claim.blkno, 'refcount block') : tx.newBlock(claim.blkno, 'refcount block');
      encodeRefcountBlock(rb, buf);
    },
  };
  // Its records may still be too many for one block: the caller divides it again (splitLeaf) before writing.
  if (recs.length <= cap) await leaf.write();
  return leaf;
}
