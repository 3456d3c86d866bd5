/**
 * Durability and device errors on the I/O path.
 * - A power cut right after fsync loses nothing of that file (its data and
 *   the metadata that maps it were flushed), while unsynced data may go.
 * - An EIO from the device reaches the caller: at once for a direct write or
 *   a read, at the next fsync (and only once) for buffered write-back, as
 *   Linux reports it; the volume stays consistent (fsck clean after).
 */
import t from 'tap';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { MemoryDevice } from '../../io/memoryDevice';
import { FaultyDevice } from '../../io/faultyDevice';
import { Volume } from '../../fs/volume';
import { engineOnFaultyDevice, makeFile, deviceOffsetOf, O_RDWR, O_DIRECT, ROOT_CALLER } from './harness';

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 255;
  }
  return b;
}

t.test('power cut after fsync: the synced file is intact after remount', async (t) => {
  const image = await makeImage(t, { sizeBytes: 128 << 20, features: 'noindexed-dirs,norefcount' });
  const mem = await MemoryDevice.fromFile(image);
  const dev = new FaultyDevice(mem, { cache: 'volatile', closeInner: false, seed: 7 });
  const vol = await Volume.mount(dev, { readOnly: false });
  const synced = pattern(3 * 1024 * 1024 + 123, 1);
  const a = await vol.create(vol.rootIno, Buffer.from('synced'), 0o644, O_RDWR, ROOT_CALLER);
  await vol.write(a.attr.ino, a.fh, 0, synced);
  await vol.fsync(a.attr.ino, a.fh, false);
  // More work after the fsync that the cut may take away.
  const b = await vol.create(vol.rootIno, Buffer.from('unsynced'), 0o644, O_RDWR, ROOT_CALLER);
  await vol.write(b.attr.ino, b.fh, 0, pattern(100000, 2));
  await vol.write(a.attr.ino, a.fh, synced.length, Buffer.alloc(5000, 1)).catch(() => {});
  const report = await dev.powerCut();
  t.comment(`power cut dropped ${report.unflushedWrites} unflushed writes`);
  // The daemon died with the power: nothing more reaches the device (the cut device fails every request, and
  // the failed unmount closes it). What survived is in the inner memory device.
  await vol.unmount().catch(() => {});
  await mem.saveTo(image);
  // The crash left the slot in use and the journal dirty: the next read-write mount replays and recovers.
  const mem2 = await MemoryDevice.fromFile(image);
  const vol2 = await Volume.mount(mem2, { readOnly: false });
  const attr = await vol2.lookup(vol2.rootIno, Buffer.from('synced'));
  t.ok(attr.size >= synced.length, `size ${attr.size} covers the synced bytes`);
  const back = await vol2.read(attr.ino, 0, 0, synced.length);
  t.ok(back.equals(synced), 'every synced byte survived the power cut');
  await vol2.unmount();
  await mem2.saveTo(image);
  await assertFsckClean(t, image);
});

t.test('EIO on a direct write reaches the caller; nothing else is damaged', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const ino = await makeFile(h.vol, 'f', 65536, 0x11);
  const blk = await deviceOffsetOf(h.vol, ino, 8192);
  const fh = await h.vol.open(ino, O_RDWR | O_DIRECT);
  h.dev.fail({ op: 'write', startByte: blk, endByte: blk + 4096 }, { times: 1 });
  t.equal(await errnoOfCall(h.vol.write(ino, fh, 8192, Buffer.alloc(4096, 0x22))), 'EIO', 'direct write fails with EIO');
  // The daemon keeps working: other writes and reads go on.
  await h.vol.write(ino, fh, 0, Buffer.alloc(4096, 0x33));
  const back = await h.vol.read(ino, fh, 0, 12288);
  t.ok(back.subarray(0, 4096).equals(Buffer.alloc(4096, 0x33)), 'a later write landed');
  t.ok(back.subarray(8192, 12288).equals(Buffer.alloc(4096, 0x11)), 'the failed block holds its old bytes');
  await h.vol.release(ino, fh);
  await h.finish();
});

t.test('EIO in buffered write-back is reported by the next fsync, once', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const ino = await makeFile(h.vol, 'g', 65536, 0x11);
  const blk = await deviceOffsetOf(h.vol, ino, 0);
  const fh = await h.vol.open(ino, O_RDWR);
  await h.vol.write(ino, fh, 0, Buffer.alloc(100, 0x44));
  h.dev.fail({ op: 'write', startByte: blk, endByte: blk + 4096 }, { times: 1 });
  t.equal(await errnoOfCall(h.vol.fsync(ino, fh, false)), 'EIO', 'fsync reports the write-back error');
  await t.resolves(h.vol.fsync(ino, fh, false), 'the error is reported once');
  await h.vol.release(ino, fh);
  await h.finish();
});

t.test('EIO on a read reaches the caller as EIO', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const ino = await makeFile(h.vol, 'r', 65536, 0x11);
  const blk = await deviceOffsetOf(h.vol, ino, 16384);
  const fh = await h.vol.open(ino, O_RDWR | O_DIRECT);
  h.dev.fail({ op: 'read', startByte: blk, endByte: blk + 4096 }, { times: 1 });
  t.equal(await errnoOfCall(h.vol.read(ino, fh, 16384, 4096)), 'EIO', 'the read fails with EIO');
  t.ok((await h.vol.read(ino, fh, 16384, 4096)).equals(Buffer.alloc(4096, 0x11)), 'the next read works');
  await h.vol.release(ino, fh);
  await h.finish();
});

/** The errno name a call failed with, or 'ok'. */
async function errnoOfCall(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return String((err as { errno?: unknown }).errno);
  }
}
