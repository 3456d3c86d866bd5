/**
 * Freeing an inode: its data clusters and extent blocks (and a directory's
 * index), what its extended attributes hold (fs/xattrFree.ts), its place in a
 * refcount tree (fs/refcountLeave.ts), then the inode's own suballocator bit; the block keeps its contents
 * but loses OCFS2_VALID_FL and gets i_dtime, as the kernel's
 * ocfs2_delete_inode leaves it.
 */
import type { NameiHost } from './nameiHost';
import type { Inode } from './inode';
import type { Transaction } from './transaction';
import type { Dinode } from './format/dinode';
import { OCFS2_HAS_REFCOUNT_FL, OCFS2_HAS_XATTR_FL, OCFS2_VALID_FL, OCFS2_ORPHANED_FL, S_IFMT, S_IFLNK } from './format/constants';
import { fastSymlinkChars } from './format/dinode';
import { encodeExtentList } from './format/extent';
import { truncateClusters } from './extentTree';
import { freeIndex, isIndexed } from './dxIndex';
import { freeXattrs } from './xattrFree';
import { leaveRefcountTree } from './refcountLeave';
import { nowTimespec } from './times';

/** The page cache, on hosts that have one (the Volume); NameiHost itself does not promise it. */
interface WithPages {
  pages?: { drop(ino: number): void };
}

/**
 * The data of an inode about to be freed must not reach the device after its
 * clusters go back (another file may get them at once). A write answered
 * before it was done (fs/fileIo.ts, acceptance) may still be on its way: its
 * client was free to close the file and unlink it meanwhile, so that write is
 * waited for. Then the cached pages are dropped unwritten, and a write-back
 * already carrying some (the flusher's) is waited for, as the kernel's
 * truncate_inode_pages_final waits for pages under write-back. Nothing can
 * dirty them again: the inode has no links and no handles. Neither wait
 * needs the metadata lock the caller holds: write-back takes none, and an
 * accepted write that allocates is answered inside its last transaction, so
 * by the time the caller has the lock that write is past needing it.
 */
async function dropFileData(host: NameiHost, inode: Inode): Promise<void> {
  while (inode.landing) await inode.landing;
  (host as NameiHost & WithPages).pages?.drop(inode.ino);
  await inode.wbLock.run(async () => {});
}

export async function deleteInode(host: NameiHost, tx: Transaction, inode: Inode, di: Dinode): Promise<void> {
  await dropFileData(host, inode);
  if (di.list && di.i_clusters > 0) await truncateClusters(host, tx, inode, di, 0);
  // The kernel's attributes: values stored outside their entries, the xattr block and its buckets.
  if ((di.i_dyn_features & OCFS2_HAS_XATTR_FL) || di.i_xattr_loc !== 0) await freeXattrs(host, tx, di);
  // Last: the truncate and the xattr step lowered the counts of the data's and the values' shared clusters, so only
  // the tree's count of inodes is left.
  if (di.i_dyn_features & OCFS2_HAS_REFCOUNT_FL) await leaveRefcountTree(host, tx, di);
  // ocfs2_wipe_inode: a directory's index goes after its blocks.
  if (isIndexed(di)) await freeIndex(host, tx, di);
  if ((di.i_mode & S_IFMT) === S_IFLNK && di.list && di.i_clusters === 0) {
    // A slow symlink without its cluster reads, by the format's rule (symlink and no clusters), as a fast
    // one: id2 must be given as symlink bytes. They are the empty extent list's bytes, which is what the
    // kernel leaves in a freed slow symlink.
    const bytes = Buffer.alloc(fastSymlinkChars(host.geo.blockSize));
    const used = encodeExtentList(di.list, bytes, 0, `freed symlink ${inode.ino}`);
    di.list = undefined;
    di.symlink = bytes.subarray(0, used);
  }
  di.i_flags &= ~(OCFS2_VALID_FL | OCFS2_ORPHANED_FL);
  di.i_dtime = nowTimespec().sec;
  await host.alloc.freeMetaBlock(tx, 'inode', {
    blkno: inode.ino, slot: di.i_suballoc_slot, bit: di.i_suballoc_bit, loc: di.i_suballoc_loc,
  });
  tx.onCommit(() => host.forget(inode.ino));
}

/** Frees clusters wholly past i_size (what an interrupted append-dio write left allocated). */
export async function trimToSize(host: NameiHost, tx: Transaction, inode: Inode, di: Dinode): Promise<void> {
  if (!di.list) return;
  const keep = Math.ceil(di.i_size / host.geo.clusterSize);
  if (di.i_clusters > keep) await truncateClusters(host, tx, inode, di, keep);
}
