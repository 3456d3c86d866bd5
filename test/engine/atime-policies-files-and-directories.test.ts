/**
 * Access times as the mount options say, for file reads and directory
 * listings alike (what xfstests' generic/003 checks through a mount):
 * relatime (the default) updates atime only when it is not newer than mtime
 * or ctime, or is a day old; strictatime on every access; noatime never;
 * nodiratime never for directories while files keep their policy. A live
 * remount changes the policy. The times read back after a remount of the
 * volume.
 */
import t from 'tap';
import { engineOnFaultyDevice, O_RDWR, ROOT_CALLER, ticks } from '../iopath/harness';
import { Volume, type VolumeOptions } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';
import type { Timespec } from '../../fs/api';

const ns = (ts: Timespec): number => ts.sec * 1e9 + ts.nsec;
const O_RDONLY = 0;

async function setup(t: Parameters<typeof engineOnFaultyDevice>[0], volume: Partial<VolumeOptions> = {}) {
  const h = await engineOnFaultyDevice(t, { volume });
  const { vol } = h;
  const d = await vol.mkdir(vol.rootIno, Buffer.from('d'), 0o755, ROOT_CALLER);
  const f = await vol.create(d.ino, Buffer.from('f'), 0o644, O_RDWR, ROOT_CALLER);
  await vol.write(f.attr.ino, f.fh, 0, Buffer.alloc(100, 1));
  await vol.release(f.attr.ino, f.fh);
  // Both last changed now: an access after this is one relatime records.
  const access = async () => {
    await ticks(2);
    const fh = await vol.open(f.attr.ino, O_RDONLY);
    await vol.read(f.attr.ino, fh, 0, 100);
    await vol.release(f.attr.ino, fh);
    await vol.readdir(d.ino);
  };
  const atimes = async () => ({ file: ns((await vol.getattr(f.attr.ino)).atime), dir: ns((await vol.getattr(d.ino)).atime) });
  return { h, vol, dirIno: d.ino, fileIno: f.attr.ino, access, atimes };
}

t.test('relatime: the first access after a change is recorded, the next is not', async (t) => {
  const s = await setup(t);
  const before = await s.atimes();
  await s.access();
  const first = await s.atimes();
  t.ok(first.file > before.file, 'a file read after a write moves atime');
  t.ok(first.dir > before.dir, 'a listing after a change in the directory moves its atime');
  await s.access();
  t.same(await s.atimes(), first, 'a second access moves neither: atime is newer than mtime and ctime');
  await s.h.vol.unmount();
  const again = await Volume.mount(await FileDevice.open(s.h.image), { readOnly: true });
  t.teardown(() => again.unmount());
  t.equal(ns((await again.getattr(s.fileIno)).atime), first.file, 'the file\'s atime is on the volume');
  t.equal(ns((await again.getattr(s.dirIno)).atime), first.dir, 'so is the directory\'s');
  await again.unmount();
  await s.h.finish();
});

t.test('strictatime: every access is recorded', async (t) => {
  const s = await setup(t, { atime: 'strictatime' });
  await s.access();
  const first = await s.atimes();
  await s.access();
  const second = await s.atimes();
  t.ok(second.file > first.file, 'a second file read moves atime again');
  t.ok(second.dir > first.dir, 'a second listing too');
  await s.h.finish();
});

t.test('noatime: no access is recorded; nodiratime: none on directories', async (t) => {
  const s = await setup(t, { atime: 'noatime' });
  const before = await s.atimes();
  await s.access();
  t.same(await s.atimes(), before, 'noatime: neither moves');
  await s.h.finish();

  const n = await setup(t, { nodiratime: true });
  const nb = await n.atimes();
  await n.access();
  const na = await n.atimes();
  t.ok(na.file > nb.file, 'nodiratime: a file read still moves the file\'s atime');
  t.equal(na.dir, nb.dir, 'a listing does not move the directory\'s');
  await n.h.finish();
});

t.test('a live remount changes the policy', async (t) => {
  const s = await setup(t, { atime: 'noatime' });
  const before = await s.atimes();
  await s.access();
  t.same(await s.atimes(), before, 'noatime at first');
  await s.vol.remount({ readOnly: false, atime: 'strictatime', nodiratime: true });
  await s.access();
  const after = await s.atimes();
  t.ok(after.file > before.file, 'strictatime after the remount');
  t.equal(after.dir, before.dir, 'and nodiratime');
  await s.vol.remount({ readOnly: false, atime: 'strictatime', nodiratime: false });
  await s.access();
  t.ok((await s.atimes()).dir > before.dir, 'diratime again');
  await s.h.finish();
});
