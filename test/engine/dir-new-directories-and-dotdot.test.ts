/**
 * New directories and their "." and ".." (initDirectory through the engine's
 * mkdir): inline with i_size = id_count on inline-data volumes, else one
 * cluster with i_size one block (and a trailer under metaecc); a directory
 * moved to another parent gets its ".." repointed (setEntryInode), and rmdir
 * refuses a directory that still has names (isEmptyDir). debugfs.ocfs2 and
 * fsck.ocfs2 -fn agree after every step (fsck pass 3 checks each "..").
 */
import t from 'tap';
import { FsError } from '../../fs/errors';
import { readDirSlots } from '../../fs/dir';
import { isEmptyDir } from '../../fs/dirUpdate';
import { maxInlineDataWithXattr } from '../../fs/format/dinode';
import { statPath, lsDir } from '../lib/debugfs';
import { assertFsckClean } from '../lib/fsck';
import { CASES, dirOf, makeFixture, mountRw } from './dir-workload';

const root = { uid: 0, gid: 0 };
const B = (s: string) => Buffer.from(s);

for (const c of CASES) {
  const inlineData = !(c.features ?? '').includes('noinline-data');
  t.test(`mkdir, nested mkdir, moving a directory, rmdir: ${c.name}`, async (t) => {
    const { image } = await makeFixture(t, c);
    let vol = await mountRw(image);
    let aIno = 0;
    let bIno = 0;
    let cIno = 0;
    try {
      const d = await dirOf(vol, '/d');
      aIno = (await vol.mkdir(d.ino, B('a'), 0o755, root)).ino;
      bIno = (await vol.mkdir(d.ino, B('b'), 0o700, root)).ino;
      cIno = (await vol.mkdir(aIno, B('c'), 0o755, root)).ino;
      const a = await vol.iget(aIno);
      t.equal(a.inline, inlineData, `a new directory is ${inlineData ? '' : 'not '}inline`);
      t.equal(a.di.i_size, inlineData ? maxInlineDataWithXattr(c.blockSize, a.di) : c.blockSize, 'i_size');
      t.equal(a.di.i_clusters, inlineData ? 0 : 1, 'clusters');
      t.equal(a.nlink, 3, '"a" has 3 links (its entry, its ".", c\'s "..")');
      const slots = await readDirSlots(vol, await vol.iget(cIno));
      t.same(slots.map((s) => [s.name.toString(), s.ino, s.offset]), [['.', cIno, 0], ['..', aIno, 16]],
        '"c" holds "." at 0 and ".." at 16 only');
      t.ok(await isEmptyDir(vol, await vol.iget(cIno)), 'isEmptyDir(c)');
      t.notOk(await isEmptyDir(vol, a), 'isEmptyDir(a) is false');
    } finally {
      await vol.unmount();
    }
    const st = await statPath(image, '/d/a');
    t.equal(st.sizeBytes, inlineData ? c.blockSize - 200 : c.blockSize, 'debugfs: Size of /d/a');
    t.equal((st.dynFeatures & 1) === 1, inlineData, 'debugfs: InlineData as expected');
    t.equal(st.nlink, 3, 'debugfs: /d/a has 3 links');
    t.same((await lsDir(image, '/d/a/c')).map((e) => [e.name, e.blkno]), [['.', cIno], ['..', aIno]], 'debugfs: ls /d/a/c');
    await assertFsckClean(t, image, 'volume after mkdir');

    vol = await mountRw(image);
    try {
      // c moves from a to b: its ".." must follow.
      await vol.rename(aIno, B('c'), bIno, B('c-moved'), 0);
      const slots = await readDirSlots(vol, await vol.iget(cIno));
      t.equal(slots[1].ino, bIno, '".." of the moved directory points to its new parent');
      const errno = await vol.rmdir((await dirOf(vol, '/d')).ino, B('b')).then(() => 'success',
        (err: unknown) => (err instanceof FsError ? err.errno : String(err)));
      t.equal(errno, 'ENOTEMPTY', 'rmdir of a non-empty directory: ENOTEMPTY');
    } finally {
      await vol.unmount();
    }
    t.same((await lsDir(image, '/d/b/c-moved')).map((e) => [e.name, e.blkno]), [['.', cIno], ['..', bIno]],
      'debugfs: ls /d/b/c-moved shows ".." -> b');
    t.equal((await statPath(image, '/d/a')).nlink, 2, 'debugfs: /d/a lost a link');
    t.equal((await statPath(image, '/d/b')).nlink, 3, 'debugfs: /d/b gained one');
    await assertFsckClean(t, image, 'volume after moving a directory');

    vol = await mountRw(image);
    try {
      await vol.rmdir(bIno, B('c-moved'));
      const d = await dirOf(vol, '/d');
      await vol.rmdir(d.ino, B('b'));
      await vol.rmdir(d.ino, B('a'));
      t.ok(await isEmptyDir(vol, await dirOf(vol, '/d')), '/d is empty again');
    } finally {
      await vol.unmount();
    }
    t.same((await lsDir(image, '/d')).map((e) => e.name), ['.', '..'], 'debugfs: /d holds only "." and ".."');
    await assertFsckClean(t, image, 'volume after rmdir');
  });
}
