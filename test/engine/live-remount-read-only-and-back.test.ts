/**
 * A live remount (Volume.remount, what `mount -o remount,ro|rw` asks of the
 * daemon). To read-only: what is under way (dirty pages, a write answered
 * before it landed, pending times) reaches the volume, which is then as a
 * clean unmount leaves it (fsck.ocfs2 -fn clean while still mounted, the
 * slot map empty) and refuses every change with EROFS while reads go on.
 * Back to read-write: changes work again, and an unlinked file still open
 * across both remounts is not freed until its last close.
 */
import t from 'tap';
import { engineOnFaultyDevice, openColdFile, O_RDWR, ROOT_CALLER, ticks } from '../iopath/harness';
import { assertFsckClean, runFsck } from '../lib/fsck';
import { makeImage } from '../lib/volume';
import { Volume } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';

const PAGE = 4096;
const O_RDONLY = 0;

t.test('remount read-only writes everything back and refuses changes; read-write takes them again', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 16 * PAGE, 0x11);
  // Dirty pages (a partial page stays in the cache), and a whole-page write answered while its device write is held.
  await vol.write(ino, fh, 3 * PAGE + 7, Buffer.alloc(100, 0x22));
  const hold = dev.hold({ op: 'write' });
  const answered = vol.write(ino, fh, 9 * PAGE, Buffer.alloc(PAGE, 0x33), { accepted: () => {} });
  await hold.arrived(1);
  await vol.release(ino, fh);
  let done = false;
  const ro = vol.remount({ readOnly: true }).then(() => { done = true; });
  await ticks();
  t.notOk(done, 'the remount waits for the write in flight');
  hold.release();
  await answered;
  await ro;
  t.ok(vol.readOnly, 'read-only');
  await assertFsckClean(t, h.image, 'the volume while mounted read-only');

  await t.rejects(vol.create(vol.rootIno, Buffer.from('g'), 0o644, O_RDWR, ROOT_CALLER), { name: 'FsError', errno: 'EROFS' }, 'a create is refused');
  await t.rejects(vol.open(ino, O_RDWR), { name: 'FsError', errno: 'EROFS' }, 'an open for writing is refused');
  await t.rejects(vol.unlink(vol.rootIno, Buffer.from('f')), { name: 'FsError', errno: 'EROFS' }, 'an unlink is refused');
  const rfh = await vol.open(ino, O_RDONLY);
  vol.pages.drop(ino);
  const data = await vol.read(ino, rfh, 0, 16 * PAGE);
  t.ok(data.subarray(3 * PAGE + 7, 3 * PAGE + 107).equals(Buffer.alloc(100, 0x22)), 'the cached write reached the volume');
  t.ok(data.subarray(9 * PAGE, 10 * PAGE).equals(Buffer.alloc(PAGE, 0x33)), 'so did the answered one');
  await vol.release(ino, rfh);

  await vol.remount({ readOnly: false });
  t.notOk(vol.readOnly, 'read-write again');
  const g = await vol.create(vol.rootIno, Buffer.from('g'), 0o644, O_RDWR, ROOT_CALLER);
  await vol.write(g.attr.ino, g.fh, 0, Buffer.alloc(3 * PAGE, 0x44));
  await vol.release(g.attr.ino, g.fh);
  await vol.unlink(vol.rootIno, Buffer.from('f'));
  await h.finish();
});

t.test('an unlinked file open across a read-only remount is freed at its last close, not before', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'u', 32 * PAGE, 0x55);
  await vol.release(ino, fh);
  const rfh = await vol.open(ino, O_RDONLY);
  await vol.unlink(vol.rootIno, Buffer.from('u'));
  await vol.remount({ readOnly: true });
  // The open file is an orphan until its last close, as after the kernel's own read-only remount.
  t.same((await runFsck(h.image)).complaints, ['** Skipping orphan dir replay because -n was given.'],
    'fsck.ocfs2 -fn, read-only: nothing to say but the orphan it would free');
  await vol.remount({ readOnly: false });
  const free = (await vol.statfs()).bfree;
  vol.pages.drop(ino);
  t.ok((await vol.read(ino, rfh, 0, 32 * PAGE)).equals(Buffer.alloc(32 * PAGE, 0x55)), 'still readable after remounting read-write');
  t.equal((await vol.statfs()).bfree, free, 'and not freed');
  await vol.release(ino, rfh);
  t.ok((await vol.statfs()).bfree > free, 'freed at its last close');
  await h.finish();
});

t.test('a read-only mount goes read-write when its device is writable, and not when it is not', async (t) => {
  const image = await makeImage(t, { sizeBytes: 64 << 20, features: 'noindexed-dirs,norefcount' });
  const ro = await Volume.mount(await FileDevice.open(image, { readOnly: true }), { readOnly: true });
  t.teardown(() => ro.unmount().catch(() => {}));
  await t.rejects(ro.remount({ readOnly: false }), { name: 'FsError', errno: 'EROFS' }, 'refused on a device opened read-only');
  t.ok(ro.readOnly, 'and still read-only');
  await ro.unmount();

  const vol = await Volume.mount(await FileDevice.open(image), { readOnly: true });
  t.teardown(() => vol.unmount().catch(() => {}));
  await vol.remount({ readOnly: false });
  const c = await vol.create(vol.rootIno, Buffer.from('new'), 0o644, O_RDWR, ROOT_CALLER);
  await vol.write(c.attr.ino, c.fh, 0, Buffer.alloc(PAGE, 0x66));
  await vol.release(c.attr.ino, c.fh);
  await vol.unmount();
  await assertFsckClean(t, image);
});
