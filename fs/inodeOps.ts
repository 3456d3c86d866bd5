/**
 * Attribute changes and data writes of one inode, as the Volume exposes them:
 * each takes the metadata lock and runs as transactions (fs/fileWrite.ts does
 * the data and extent work).
 */
import type { SetAttr } from './api';
import type { Inode } from './inode';
import type { NameiHost } from './nameiHost';
import { editInode, withTransaction } from './transaction';
import { FsError } from './errors';
import { nowTimespec, stamp } from './times';
import { S_IFMT } from './format/constants';
import { truncateFile } from './fileWrite';

/** Whether `inode` takes data writes (a reflinked file's shared clusters are copied on write: fs/fileWrite.ts). */
export function checkWritable(inode: Inode): void {
  if (inode.isDir) throw new FsError('EISDIR');
  if (!inode.isReg) throw new FsError('EINVAL', 'write to a non-regular file');
}

export async function setAttributes(host: NameiHost, ino: number, changes: SetAttr): Promise<Inode> {
  const inode = await host.iget(ino);
  return host.metaLock.run(async () => {
    if (changes.size !== undefined) {
      if (inode.isDir) throw new FsError('EISDIR');
      if (!inode.isReg) throw new FsError('EINVAL', 'truncate of a non-regular file');
      if (changes.size !== inode.size) await truncateFile(host, inode, changes.size);
    }
    await withTransaction(host, `setattr ${ino}`, async (tx) => {
      const di = await editInode(tx, inode);
      const now = nowTimespec();
      if (changes.mode !== undefined) di.i_mode = (di.i_mode & S_IFMT) | (changes.mode & 0o7777);
      if (changes.uid !== undefined) di.i_uid = changes.uid;
      if (changes.gid !== undefined) di.i_gid = changes.gid;
      if (changes.atime !== undefined) stamp(di, 'atime', changes.atime === 'now' ? now : changes.atime);
      if (changes.mtime !== undefined) {
        stamp(di, 'mtime', changes.mtime === 'now' ? now : changes.mtime);
        // An explicit mtime wins over the stamp of buffered writes not yet committed.
        tx.onCommit(() => (inode.pendingTimes = undefined));
      }
      if (changes.atime !== undefined) tx.onCommit(() => (inode.pendingAtime = undefined));
      if (changes.size !== undefined) stamp(di, 'mtime', now);
      stamp(di, 'ctime', now);
    });
    return inode;
  });
}
