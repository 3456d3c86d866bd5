/**
 * Open-but-unlinked inodes and their recovery.
 *
 * When the last link of an open inode goes, it is entered in this slot's
 * orphan directory (orphan_dir:NNNN) under its block number in 16 hex digits,
 * with OCFS2_ORPHANED_FL set, so that a crash before the last close leaves a
 * record of what to free. Last close removes the entry and frees the inode.
 * A read-write mount frees whatever its slot's orphan directory still holds,
 * and finishes append-dio orphans ("dio-<blkno>": a direct write past i_size
 * that did not complete) by trimming the allocation back to i_size.
 */
import createDebug from 'debug';
import type { NameiHost, OrphanHandling } from './nameiHost';
import type { Inode } from './inode';
import type { Transaction } from './transaction';
import type { Dinode } from './format/dinode';
import { editInode, withTransaction } from './transaction';
import { addEntry, removeEntry } from './dirUpdate';
import { readDirSlots } from './dir';
import { deleteInode, trimToSize } from './inodeFree';
import { setDinodeLinksCount } from './format/dinode';
import {
  OCFS2_ORPHANED_FL, OCFS2_DIO_ORPHANED_FL, ORPHAN_DIR_SYSTEM_INODE, systemInodeName, ocfs2TypeByMode,
} from './format/constants';
import { FsError } from './errors';

const trace = createDebug('o2fuse:orphan');

export const DIO_ORPHAN_PREFIX = 'dio-';

/** The orphan entry name of an inode: its block number as 16 hex digits (ocfs2_blkno_stringify). */
export function orphanName(blkno: number): Buffer {
  return Buffer.from(blkno.toString(16).padStart(16, '0'));
}

export class Orphans implements OrphanHandling {
  constructor(private readonly host: NameiHost) {}

  private async orphanDir(slot = this.host.slot): Promise<Inode> {
    return this.host.iget(this.host.systemFiles.get(systemInodeName(ORPHAN_DIR_SYSTEM_INODE, slot)) ?? -1);
  }

  async lastLinkGone(tx: Transaction, inode: Inode, di: Dinode): Promise<void> {
    if (inode.openCount > 0) {
      const dir = await this.orphanDir();
      await addEntry(this.host, tx, dir, orphanName(inode.ino), inode.ino, ocfs2TypeByMode(di.i_mode));
      if (inode.isDir) {
        const odi = await editInode(tx, dir);
        setDinodeLinksCount(odi, dir.nlink + 1);
      }
      di.i_flags |= OCFS2_ORPHANED_FL;
      di.i_orphaned_slot = this.host.slot;
      trace('inode %d orphaned (still open)', inode.ino);
      return;
    }
    await deleteInode(this.host, tx, inode, di);
  }

  async reapIfUnused(inode: Inode): Promise<void> {
    if (inode.openCount > 0 || inode.nlink > 0 || !(inode.di.i_flags & OCFS2_ORPHANED_FL)) return;
    await withTransaction(this.host, `reap orphan ${inode.ino}`, async (tx) => {
      await this.removeOrphanEntry(tx, inode, orphanName(inode.ino));
      const di = await editInode(tx, inode);
      await deleteInode(this.host, tx, inode, di);
    });
    trace('orphan %d freed at last close', inode.ino);
  }

  private async removeOrphanEntry(tx: Transaction, inode: Inode, name: Buffer): Promise<void> {
    const slot = inode.di.i_orphaned_slot < this.host.sb.s_max_slots ? inode.di.i_orphaned_slot : this.host.slot;
    const dir = await this.orphanDir(slot);
    await removeEntry(this.host, tx, dir, name);
    if (inode.isDir) setDinodeLinksCount(await editInode(tx, dir), dir.nlink - 1);
  }

  /**
   * Recovery of a slot's orphans (by default this mount's own, at mount; another slot's when recovering a
   * node that died). Returns how many entries were resolved.
   */
  async recover(slot = this.host.slot): Promise<number> {
    const dir = await this.orphanDir(slot);
    let n = 0;
    for (const slot of await readDirSlots(this.host, dir)) {
      const name = slot.name.toString('latin1');
      if (name === '.' || name === '..') continue;
      const inode = await this.host.iget(slot.ino).catch(() => null);
      // Still open (a remount to read-write finds files a read-only mount served): freed at its last close.
      if (inode && inode.openCount > 0 && !name.startsWith(DIO_ORPHAN_PREFIX)) continue;
      try {
        await withTransaction(this.host, `recover orphan ${name}`, async (tx) => this.recoverOne(tx, dir, slot.name, inode));
        n++;
      } catch (err) {
        if (err instanceof FsError) throw new FsError(err.errno, `recovering orphan ${name}: ${err.message}`);
        throw err;
      }
    }
    return n;
  }

  /** One orphan entry's resolution, inside `tx`: a stale entry dropped, a dio- orphan trimmed, an orphan freed. */
  private async recoverOne(tx: Transaction, dir: Inode, entry: Buffer, inode: Inode | null): Promise<void> {
    if (!inode) {
      // An entry pointing at a freed inode: just drop the entry.
      await removeEntry(this.host, tx, dir, entry);
    } else if (entry.toString('latin1').startsWith(DIO_ORPHAN_PREFIX)) {
      await removeEntry(this.host, tx, dir, entry);
      const di = await editInode(tx, inode, { extentsChanged: true });
      await trimToSize(this.host, tx, inode, di);
      di.i_flags &= ~OCFS2_DIO_ORPHANED_FL;
      trace('append-dio orphan %d trimmed to i_size %d', inode.ino, di.i_size);
    } else {
      await this.removeOrphanEntry(tx, inode, entry);
      const di = await editInode(tx, inode);
      if (inode.nlink === 0) await deleteInode(this.host, tx, inode, di);
      else di.i_flags &= ~OCFS2_ORPHANED_FL;
      trace('orphan %d recovered', inode.ino);
    }
  }

}
