/**
 * An inode leaving its refcount tree as it is freed (the kernel's
 * ocfs2_remove_refcount_tree, called from ocfs2_wipe_inode).
 *
 * A reflinked file points at a refcount tree (i_refcount_loc,
 * OCFS2_HAS_REFCOUNT_FL) whose root counts the inodes sharing it (rf_count).
 * The flag stays after the kernel has copied every shared extent on write,
 * so a file can carry it with no refcounted extent left. A file's refcounted
 * extents have had their counts lowered before this runs (fs/refcountDecrease.ts,
 * from the truncate that frees the inode's data). Freeing it without this step
 * left rf_count one too high (fsck.ocfs2: REFCOUNT_COUNT, "claims to have 4
 * files associated with it, but we only found 3"), and a tree whose last
 * inode went that way outlived every file that used it: a block allocated to
 * nobody, which fsck.ocfs2 does not report.
 *
 * The root's count drops by one; the inode that takes it to zero frees the
 * root's suballocator bit. A tree that would lose its last inode while it
 * still holds records or leaves is not one a consistent volume has (each
 * record counts references from inodes that would still exist): EIO, rather
 * than freed or leaked.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import type { Dinode } from './format/dinode';
import { OCFS2_HAS_REFCOUNT_FL } from './format/constants';
import { OCFS2_REFCOUNT_TREE_FL, REFCOUNT_BLOCK } from './format/refcount';
import { freeRefcountBlock, readTxRefcountBlock } from './refcountDecrease';
import { FsError } from './errors';

const trace = createDebug('o2fuse:fs');

const RF_COUNT = REFCOUNT_BLOCK.rf_count[0];

/** Takes `di` (the transaction's copy of a dying inode) out of its refcount tree. */
export async function leaveRefcountTree(ctx: VolumeContext, tx: Transaction, di: Dinode): Promise<void> {
  const blkno = di.i_refcount_loc;
  const owner = `inode ${di.i_blkno}`;
  if (blkno === 0) throw new FsError('EIO', `${owner}: OCFS2_HAS_REFCOUNT_FL set but i_refcount_loc is 0`);
  // The transaction's copy when it has one: lowering this inode's shared clusters (fs/refcountDecrease.ts) went
  // before, and may have taken the tree's last records.
  const rb = await readTxRefcountBlock(ctx, tx, blkno);
  if (rb.rf_count === 0) throw new FsError('EIO', `refcount tree ${blkno} of ${owner}: rf_count is already 0`);
  const left = rb.rf_count - 1;
  if (left === 0) {
    const isTree = (rb.rf_flags & OCFS2_REFCOUNT_TREE_FL) !== 0;
    const held = isTree ? (rb.rf_list?.l_next_free_rec ?? 0) : (rb.rf_records?.rl_used ?? 0);
    if (held > 0) {
      // The inode's own shared clusters were lowered already: what is left counts extents no inode has.
      throw new FsError('EIO', `refcount tree ${blkno}: ${owner} is its last inode, but it still holds ${held} ` +
        `${isTree ? 'leaves' : 'records'}; run fsck.ocfs2`);
    }
    // A root this change already wrote goes out with its count at zero, as the kernel leaves it.
    if (tx.has(blkno)) (await tx.block(blkno, 'refcount block')).writeUInt32LE(0, RF_COUNT);
    await freeRefcountBlock(ctx, tx, blkno, rb);
    trace('%s: refcount tree %d had no other inode: freed', owner, blkno);
  } else {
    const buf = await tx.block(blkno, 'refcount block');
    buf.writeUInt32LE(left, RF_COUNT);
    trace('%s: left refcount tree %d (%d inodes still share it)', owner, blkno, left);
  }
  di.i_refcount_loc = 0;
  di.i_dyn_features &= ~OCFS2_HAS_REFCOUNT_FL;
}
