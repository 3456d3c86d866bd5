/**
 * Namespace operations: making, linking, unlinking and renaming inodes.
 *
 * Each operation is one metadata transaction under the volume's metadata
 * lock: it claims what it needs first (inode bits, directory space), then
 * edits, then commits, so a failure before commit (ENOSPC, EEXIST, ...)
 * leaves nothing behind. Inodes whose last link goes while they are open
 * move to this slot's orphan directory and are freed at last close (or at
 * the next mount after a crash) — see fs/orphan.ts.
 */
import createDebug from 'debug';
import type { Caller } from './api';
import type { Inode } from './inode';
import type { Transaction } from './transaction';
import { editInode, withTransaction } from './transaction';
import { FsError } from './errors';
import { checkName, lookupEntry } from './dir';
import { addEntry, removeEntry, setEntryInode, initDirectory, isEmptyDir } from './dirUpdate';
import { dinodeLinkMax, emptyDinode, setDinodeLinksCount, fastSymlinkChars, maxInlineDataWithXattr, type Dinode } from './format/dinode';
import {
  OCFS2_VALID_FL, OCFS2_INLINE_DATA_FL, S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK,
  S_IFIFO, S_IFSOCK, ocfs2TypeByMode, OCFS2_FT_DIR,
} from './format/constants';
import type { NameiHost } from './nameiHost';
import { nowTimespec, stamp, stampModified } from './times';

const trace = createDebug('o2fuse:namei');

/** Longest path (with its NUL) Linux passes in: symlink targets are shorter. */
const PATH_MAX = 4096;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

function isDotName(name: Buffer): boolean {
  return name.equals(DOT) || name.equals(DOTDOT);
}

/** A fresh dinode for a new inode of `mode` (ocfs2_mknod_locked). */
async function newInode(host: NameiHost, tx: Transaction, mode: number, caller: Caller, parentDir: Inode): Promise<Dinode> {
  const claim = await host.alloc.claimMetaBlock(tx, 'inode');
  const type = mode & S_IFMT;
  const inline = host.features.inlineData && (type === S_IFREG || type === S_IFDIR);
  const di = emptyDinode(host.geo.blockSize, claim.blkno, !inline);
  di.i_generation = host.nextGeneration();
  di.i_fs_generation = host.fsGeneration;
  di.i_suballoc_slot = claim.slot;
  di.i_suballoc_bit = claim.bit;
  di.i_suballoc_loc = claim.groupBlkno;
  di.i_flags = OCFS2_VALID_FL;
  di.i_uid = caller.uid;
  // setgid directories hand their group down, as in inode_init_owner.
  const pdi = parentDir.di;
  if (pdi.i_mode & 0o2000) {
    di.i_gid = pdi.i_gid;
    if ((mode & S_IFMT) === S_IFDIR) mode |= 0o2000;
  } else {
    di.i_gid = caller.gid;
  }
  di.i_mode = mode;
  setDinodeLinksCount(di, (mode & S_IFMT) === S_IFDIR ? 2 : 1);
  const now = nowTimespec();
  stamp(di, 'atime', now);
  stamp(di, 'mtime', now);
  stamp(di, 'ctime', now);
  if (inline) {
    di.i_dyn_features |= OCFS2_INLINE_DATA_FL;
    di.data = { id_count: maxInlineDataWithXattr(host.geo.blockSize, di), id_reserved0: 0, id_reserved1: 0, id_data: Buffer.alloc(0) };
  }
  return tx.newInode(claim.blkno, di);
}

async function parentForCreate(host: NameiHost, parent: number, name: Buffer): Promise<Inode> {
  checkName(name);
  const dir = await host.iget(parent);
  if (!dir.isDir) throw new FsError('ENOTDIR');
  if (dir.nlink === 0) throw new FsError('ENOENT', 'directory was removed');
  if (await lookupEntry(host, dir, name)) throw new FsError('EEXIST');
  return dir;
}

/** create, mknod, mkdir, symlink: one new inode linked into `parent` as `name`. */
export async function makeNode(host: NameiHost, parent: number, name: Buffer, mode: number, rdev: number,
  caller: Caller, symlinkTarget?: Buffer): Promise<Inode> {
  return host.metaLock.run(async () => {
    const dir = await parentForCreate(host, parent, name);
    const type = mode & S_IFMT;
    if (![S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK].includes(type)) {
      throw new FsError('EINVAL', `cannot create an inode of mode 0${mode.toString(8)}`);
    }
    if (type === S_IFDIR && dir.nlink >= dinodeLinkMax(dir.di)) throw new FsError('EMLINK');
    const di = await withTransaction(host, `${type === S_IFDIR ? 'mkdir' : 'create'} ${name.toString()}`, async (tx) => {
      const di = await newInode(host, tx, mode, caller, dir);
      if (type === S_IFCHR || type === S_IFBLK) di.i_rdev = rdev;
      if (type === S_IFDIR) await initDirectory(host, tx, di, dir.ino);
      if (type === S_IFLNK) await writeSymlinkTarget(host, tx, di, symlinkTarget ?? Buffer.alloc(0));
      await addEntry(host, tx, dir, name, di.i_blkno, ocfs2TypeByMode(mode));
      const pdi = await editInode(tx, dir);
      stampModified(pdi);
      if (type === S_IFDIR) setDinodeLinksCount(pdi, dir.nlink + 1);
      return di;
    });
    trace('made %s in %d: inode %d mode 0%s', name.toString(), parent, di.i_blkno, mode.toString(8));
    return host.adopt(di);
  });
}

/** Symlink targets: in the inode when they fit (fast), else in a data cluster (slow). */
async function writeSymlinkTarget(host: NameiHost, tx: Transaction, di: Dinode, target: Buffer): Promise<void> {
  if (target.length === 0) throw new FsError('ENOENT', 'empty symlink target');
  // Linux takes targets up to PATH_MAX - 1 bytes whatever the block size (a slow symlink spans as many blocks
  // of its one cluster as it needs, as ocfs2_create_symlink_data writes them); a cluster is at least PATH_MAX.
  if (target.length >= PATH_MAX) throw new FsError('ENAMETOOLONG', `symlink target of ${target.length} bytes`);
  di.i_size = target.length;
  if (target.length + 1 <= fastSymlinkChars(host.geo.blockSize)) {
    di.list = undefined;
    di.symlink = Buffer.alloc(fastSymlinkChars(host.geo.blockSize));
    target.copy(di.symlink);
    return;
  }
  // A slow symlink is a one-cluster file holding the NUL-terminated target in its first blocks.
  const run = await host.alloc.claimClusters(tx, 1, 1);
  const data = Buffer.alloc(Math.ceil((target.length + 1) / host.geo.blockSize) * host.geo.blockSize);
  target.copy(data);
  const blkno = run.cluster * host.geo.bpc;
  await host.device.write(data, blkno * host.geo.blockSize);
  di.i_clusters = 1;
  di.list!.l_next_free_rec = 1;
  const rec = di.list!.l_recs[0];
  rec.e_cpos = 0;
  rec.e_leaf_clusters = 1;
  rec.e_int_clusters = 1;
  rec.e_blkno = blkno;
}

export async function link(host: NameiHost, ino: number, newParent: number, newName: Buffer): Promise<Inode> {
  return host.metaLock.run(async () => {
    const dir = await parentForCreate(host, newParent, newName);
    const inode = await host.iget(ino);
    if (inode.isDir) throw new FsError('EPERM', 'hard links to directories are not allowed');
    if (inode.nlink >= dinodeLinkMax(inode.di)) throw new FsError('EMLINK');
    if (inode.nlink === 0) throw new FsError('ENOENT', 'inode has been unlinked');
    await withTransaction(host, `link ${newName.toString()}`, async (tx) => {
      await addEntry(host, tx, dir, newName, ino, ocfs2TypeByMode(inode.mode));
      stampModified(await editInode(tx, dir));
      const di = await editInode(tx, inode);
      setDinodeLinksCount(di, inode.nlink + 1);
      stamp(di, 'ctime', nowTimespec());
    });
    return inode;
  });
}

/** Drops one link of `victim` inside tx; when none remain it is orphaned (open) or queued for deletion. */
async function dropLink(host: NameiHost, tx: Transaction, victim: Inode): Promise<void> {
  const di = await editInode(tx, victim);
  const n = victim.isDir ? 0 : victim.nlink - 1;
  setDinodeLinksCount(di, n);
  stamp(di, 'ctime', nowTimespec());
  if (n === 0) await host.orphans.lastLinkGone(tx, victim, di);
}

export async function unlink(host: NameiHost, parent: number, name: Buffer, wantDir: boolean): Promise<void> {
  return host.metaLock.run(async () => {
    if (isDotName(name)) throw new FsError(wantDir ? (name.equals(DOT) ? 'EINVAL' : 'ENOTEMPTY') : 'EISDIR');
    if (name.length > 255) throw new FsError('ENAMETOOLONG');
    const dir = await host.iget(parent);
    if (!dir.isDir) throw new FsError('ENOTDIR');
    const e = await lookupEntry(host, dir, name);
    if (!e) throw new FsError('ENOENT');
    const victim = await host.iget(e.ino);
    if (wantDir && !victim.isDir) throw new FsError('ENOTDIR');
    if (!wantDir && victim.isDir) throw new FsError('EISDIR');
    if (victim.ino === host.rootIno) throw new FsError('EBUSY');
    if (wantDir && !(await isEmptyDir(host, victim))) throw new FsError('ENOTEMPTY');
    await withTransaction(host, `${wantDir ? 'rmdir' : 'unlink'} ${name.toString()}`, async (tx) => {
      await removeEntry(host, tx, dir, name);
      const pdi = await editInode(tx, dir);
      stampModified(pdi);
      if (wantDir) setDinodeLinksCount(pdi, dir.nlink - 1);
      await dropLink(host, tx, victim);
    });
    await host.orphans.reapIfUnused(victim);
  });
}

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

/** Whether `ancestor` is `dir` or one of its ancestors (walking ".."). */
async function isAncestor(host: NameiHost, ancestor: number, dir: Inode): Promise<boolean> {
  let cur = dir;
  for (let depth = 0; depth < 4096; depth++) {
    if (cur.ino === ancestor) return true;
    if (cur.ino === host.rootIno) return false;
    const up = await lookupEntry(host, cur, DOTDOT);
    if (!up) throw new FsError('EIO', `directory ${cur.ino} has no ".."`);
    cur = await host.iget(up.ino);
  }
  throw new FsError('ELOOP', 'directory tree too deep (or a ".." loop)');
}

export async function rename(host: NameiHost, parent: number, name: Buffer, newParent: number, newName: Buffer,
  flags: number): Promise<void> {
  return host.metaLock.run(async () => {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError('EINVAL', `rename flags 0x${flags.toString(16)}`);
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) throw new FsError('EINVAL');
    if (isDotName(name) || isDotName(newName)) throw new FsError('EBUSY');
    checkName(newName);
    const srcDir = await host.iget(parent);
    const dstDir = await host.iget(newParent);
    if (!srcDir.isDir || !dstDir.isDir) throw new FsError('ENOTDIR');
    const se = await lookupEntry(host, srcDir, name);
    if (!se) throw new FsError('ENOENT');
    const src = await host.iget(se.ino);
    const te = await lookupEntry(host, dstDir, newName);
    const target = te ? await host.iget(te.ino) : null;
    if (flags & RENAME_EXCHANGE) {
      if (!target) throw new FsError('ENOENT');
      return exchange(host, srcDir, name, src, dstDir, newName, target);
    }
    if (target && (flags & RENAME_NOREPLACE)) throw new FsError('EEXIST');
    if (target && target.ino === src.ino) return; // two links to one inode: POSIX says do nothing
    if (src.isDir && srcDir.ino !== dstDir.ino && (await isAncestor(host, src.ino, dstDir))) {
      throw new FsError('EINVAL', 'cannot move a directory into itself');
    }
    // A target above the source is not empty; Linux says so (ENOTEMPTY) before looking at the types.
    if (target?.isDir && srcDir.ino !== dstDir.ino && (await isAncestor(host, target.ino, srcDir))) {
      throw new FsError('ENOTEMPTY', 'the target is an ancestor of the source');
    }
    if (target) {
      if (src.isDir && !target.isDir) throw new FsError('ENOTDIR');
      if (!src.isDir && target.isDir) throw new FsError('EISDIR');
      if (target.isDir && !(await isEmptyDir(host, target))) throw new FsError('ENOTEMPTY');
      if (target.ino === host.rootIno) throw new FsError('EBUSY');
    } else if (src.isDir && srcDir.ino !== dstDir.ino && dstDir.nlink >= dinodeLinkMax(dstDir.di)) {
      throw new FsError('EMLINK');
    }
    await withTransaction(host, `rename ${name.toString()} -> ${newName.toString()}`, async (tx) => {
      const now = nowTimespec();
      if (target) {
        await setEntryInode(host, tx, dstDir, newName, src.ino, ocfs2TypeByMode(src.mode));
        await dropLink(host, tx, target);
        if (target.isDir) setDinodeLinksCount(await editInode(tx, dstDir), dstDir.nlink - 1);
      } else {
        await addEntry(host, tx, dstDir, newName, src.ino, ocfs2TypeByMode(src.mode));
      }
      await removeEntry(host, tx, srcDir, name);
      if (src.isDir && srcDir.ino !== dstDir.ino) {
        await setEntryInode(host, tx, src, DOTDOT, dstDir.ino, OCFS2_FT_DIR);
        const sdi = await editInode(tx, srcDir);
        setDinodeLinksCount(sdi, srcDir.nlink - 1);
        const ddi = await editInode(tx, dstDir);
        // dstDir's count may already have dropped for a replaced directory in this transaction.
        setDinodeLinksCount(ddi, (target?.isDir ? dstDir.nlink - 1 : dstDir.nlink) + 1);
      }
      const sdi = await editInode(tx, src);
      stamp(sdi, 'ctime', now);
      stampModified(await editInode(tx, srcDir));
      stampModified(await editInode(tx, dstDir));
    });
    if (target) await host.orphans.reapIfUnused(target);
  });
}

async function exchange(host: NameiHost, srcDir: Inode, name: Buffer, src: Inode, dstDir: Inode, newName: Buffer,
  target: Inode): Promise<void> {
  if (src.ino === target.ino) return;
  // Links dstDir gains and srcDir loses: a directory swapped for a file moves one from one parent to the other.
  const delta = srcDir.ino === dstDir.ino ? 0 : (src.isDir ? 1 : 0) - (target.isDir ? 1 : 0);
  if (srcDir.ino !== dstDir.ino) {
    if (src.isDir && (await isAncestor(host, src.ino, dstDir))) throw new FsError('EINVAL');
    if (target.isDir && (await isAncestor(host, target.ino, srcDir))) throw new FsError('EINVAL');
    const gains = delta > 0 ? dstDir : delta < 0 ? srcDir : null;
    if (gains && gains.nlink >= dinodeLinkMax(gains.di)) throw new FsError('EMLINK');
  }
  await withTransaction(host, `exchange ${name.toString()} <-> ${newName.toString()}`, async (tx) => {
    await setEntryInode(host, tx, srcDir, name, target.ino, ocfs2TypeByMode(target.mode));
    await setEntryInode(host, tx, dstDir, newName, src.ino, ocfs2TypeByMode(src.mode));
    if (srcDir.ino !== dstDir.ino) {
      if (src.isDir) await setEntryInode(host, tx, src, DOTDOT, dstDir.ino, OCFS2_FT_DIR);
      if (target.isDir) await setEntryInode(host, tx, target, DOTDOT, srcDir.ino, OCFS2_FT_DIR);
      if (delta !== 0) {
        setDinodeLinksCount(await editInode(tx, srcDir), srcDir.nlink - delta);
        setDinodeLinksCount(await editInode(tx, dstDir), dstDir.nlink + delta);
      }
    }
    const now = nowTimespec();
    stamp(await editInode(tx, src), 'ctime', now);
    stamp(await editInode(tx, target), 'ctime', now);
    stampModified(await editInode(tx, srcDir));
    stampModified(await editInode(tx, dstDir));
  });
}
