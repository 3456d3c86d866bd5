/**
 * Buffered writes the engine accepts before they are done (fs/fileIo.ts,
 * acceptance). A whole page over written blocks, not continuing the last
 * write, is accepted before its device write: `accepted` runs while that
 * write is still held; a read of that range issued then returns the new
 * bytes (it waits for the inode's lock); an fsync issued then waits for the
 * device write. An allocating write (past the end of the file) is accepted
 * once its space is claimed, before its data and its commit go to the
 * device; a GETATTR or LOOKUP issued then waits and gives the new size.
 * When the held device write fails, write() still resolves with the count
 * (the answer has gone), an fsync issued while it was in flight reports
 * EIO, once, and a failed allocating write leaves the file as it was.
 * Writes that cannot be accepted early (a partial page, a stream kept in the
 * cache, a write that gets only part of its space or none) never call
 * `accepted`. An unlink, or the last close of an unlinked file, does not
 * free the file's clusters while an accepted write to them is in flight,
 * and an unmount waits for it (its bytes and mtime are on the volume after);
 * SEEK_DATA waits for an accepted allocating write's extent and size; an
 * mtime set after an accepted write's answer is the one that stays, and a
 * LINK answers with the write's mtime.
 * The volume ends fsck-clean.
 */
import t, { type Test } from 'tap';
import { engineOnFaultyDevice, openColdFile, deviceOffsetOf, ticks, type Harness } from './harness';
import { Volume } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';

const PAGE = 4096;

t.test('accepted before the device write lands; read and fsync wait for it', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 32 * PAGE, 0x11);
  const at = await deviceOffsetOf(vol, ino, 8 * PAGE);
  const hold = dev.hold({ op: 'write', startByte: at, endByte: at + PAGE });
  let acceptedWith: number | undefined;
  let written: number | undefined;
  const data = Buffer.alloc(PAGE, 0x5a);
  const write = vol.write(ino, fh, 8 * PAGE, data, { accepted: (n) => { acceptedWith = n; } }).then((n) => { written = n; });
  await hold.arrived(1);
  t.equal(acceptedWith, PAGE, 'accepted with the whole count while the device write is held');
  t.equal(written, undefined, 'write() itself has not resolved');

  let readDone = false;
  const read = vol.read(ino, fh, 8 * PAGE, PAGE).then((b) => { readDone = true; return b; });
  let synced = false;
  const sync = vol.fsync(ino, fh, false).then(() => { synced = true; });
  await ticks();
  t.notOk(readDone, 'a read of the range waits for the accepted write');
  t.notOk(synced, 'an fsync waits for it too');
  hold.release();
  await write;
  t.equal(written, PAGE, 'write() resolves with the count once the device write lands');
  t.ok((await read).equals(data), 'the waiting read returns the new bytes');
  await sync;
  t.ok((await dev.read(at, PAGE)).equals(data), 'the device holds them when fsync returns');
  await vol.release(ino, fh);
  await h.finish();
});

t.test('a device error after acceptance is reported by the next fsync, once', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 32 * PAGE, 0x22);
  const at = await deviceOffsetOf(vol, ino, 20 * PAGE);
  const hold = dev.hold({ op: 'write', startByte: at, endByte: at + PAGE });
  let accepted = 0;
  const write = vol.write(ino, fh, 20 * PAGE, Buffer.alloc(PAGE, 0x77), { accepted: () => { accepted++; } });
  await hold.arrived(1);
  // The fsync comes while the device write is still in flight, as a client's would right after the answer.
  const sync = vol.fsync(ino, fh, false).then(() => undefined, (e: unknown) => e as { errno?: string });
  await ticks();
  hold.fail('EIO');
  t.equal(await write, PAGE, 'write() resolves with the count: its answer has gone already');
  t.equal(accepted, 1, 'accepted once');
  t.equal((await sync)?.errno, 'EIO', 'the fsync issued meanwhile reports the failed device write');
  await t.resolves(vol.fsync(ino, fh, false), 'and only that one');
  await vol.release(ino, fh);
  await h.finish();
});

t.test('writes that are not written through are never accepted early', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 32 * PAGE, 0x33);
  let accepted = 0;
  const accept = { accepted: () => { accepted++; } };
  await vol.write(ino, fh, 3 * PAGE + 10, Buffer.alloc(100, 1), accept);
  t.equal(accepted, 0, 'a partial page (read in, dirtied in the cache)');
  await vol.write(ino, fh, 12 * PAGE, Buffer.alloc(PAGE, 2), accept);
  t.equal(accepted, 1, 'a random whole page is');
  await vol.write(ino, fh, 13 * PAGE, Buffer.alloc(PAGE, 3), accept);
  t.equal(accepted, 1, 'the page continuing it is not (a stream, kept for write-back)');
  await vol.fsync(ino, fh, false);
  await vol.release(ino, fh);
  await h.finish();
});

t.test('an allocating write is accepted once its space is claimed; GETATTR and LOOKUP wait for its size', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 32 * PAGE, 0x44);
  const before = await vol.getattr(ino);
  // Appending at the end of the file touches the device first with its data write (nothing to zero before it).
  const hold = dev.hold({ op: 'write' });
  let acceptedWith: number | undefined;
  let written: number | undefined;
  const data = Buffer.alloc(3 * PAGE, 0x6b);
  const write = vol.write(ino, fh, 32 * PAGE, data, { accepted: (n) => { acceptedWith = n; } }).then((n) => { written = n; });
  await hold.arrived(1);
  t.equal(acceptedWith, 3 * PAGE, 'accepted with the whole count while its data write is held');
  t.equal(written, undefined, 'write() itself has not resolved');
  const seen: string[] = [];
  const attr = vol.getattr(ino).then((a) => { seen.push('getattr'); return a; });
  const entry = vol.lookup(vol.rootIno, Buffer.from('f')).then((a) => { seen.push('lookup'); return a; });
  await ticks();
  t.same(seen, [], 'GETATTR and LOOKUP wait: the new size is not committed yet');
  hold.release();
  await write;
  t.equal(written, 3 * PAGE, 'write() resolves with the count once the write is committed');
  t.equal((await attr).size, 35 * PAGE, 'the waiting GETATTR gives the new size');
  t.equal((await entry).size, 35 * PAGE, 'so does the waiting LOOKUP');
  const mtime = (await attr).mtime;
  t.ok(mtime.sec * 1e9 + mtime.nsec >= before.mtime.sec * 1e9 + before.mtime.nsec, 'and an mtime no older than before');
  t.ok((await vol.read(ino, fh, 32 * PAGE, 3 * PAGE)).equals(data), 'the bytes read back');
  await vol.release(ino, fh);
  await h.finish();
});

t.test('an allocating write that fails after acceptance leaves the file as it was; fsync reports EIO', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 8 * PAGE, 0x55);
  const free = (await vol.statfs()).bfree;
  const hold = dev.hold({ op: 'write' });
  let accepted = 0;
  const write = vol.write(ino, fh, 8 * PAGE, Buffer.alloc(2 * PAGE, 0x66), { accepted: () => { accepted++; } });
  await hold.arrived(1);
  const sync = vol.fsync(ino, fh, false).then(() => undefined, (e: unknown) => e as { errno?: string });
  await ticks();
  hold.fail('EIO');
  t.equal(await write, 2 * PAGE, 'write() resolves with the count: its answer has gone already');
  t.equal(accepted, 1, 'accepted once');
  t.equal((await sync)?.errno, 'EIO', 'the fsync issued meanwhile reports the failed write');
  await t.resolves(vol.fsync(ino, fh, false), 'and only that one');
  t.equal((await vol.getattr(ino)).size, 8 * PAGE, 'the file keeps its size: the transaction was not committed');
  t.equal((await vol.statfs()).bfree, free, 'and the space it claimed is free again');
  await vol.release(ino, fh);
  await h.finish();
});

t.test('an allocating write that gets part of its space, or none, is not accepted early', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 4 * PAGE, 0x12);
  const { bsize } = await vol.statfs();
  const filler = await vol.create(vol.rootIno, Buffer.from('filler'), 0o644, 2, { uid: 0, gid: 0 });
  // All the space but a little: preallocated to a second file.
  const spare = 16 * PAGE;
  await vol.fallocate(filler.attr.ino, filler.fh, 0, (await vol.statfs()).bfree * bsize - spare, 0);
  const left = (await vol.statfs()).bfree * bsize;
  t.ok(left > 0 && left <= spare, `${left} bytes of space left`);
  let accepted = 0;
  const accept = { accepted: () => { accepted++; } };
  const n = await vol.write(ino, fh, 4 * PAGE, Buffer.alloc(left + 8 * PAGE, 0x34), accept);
  t.ok(n > 0 && n < left + 8 * PAGE, `a short write (${n} bytes) when only part fits`);
  t.equal(accepted, 0, 'and not accepted early: its count was not known before the end');
  await t.rejects(vol.write(ino, fh, 4 * PAGE + n, Buffer.alloc(PAGE, 0x35), accept), { name: 'FsError', errno: 'ENOSPC' }, 'ENOSPC when nothing fits');
  t.equal(accepted, 0, 'never accepted');
  await vol.release(filler.attr.ino, filler.fh);
  await vol.release(ino, fh);
  await h.finish();
});

/*
 * An accepted write leaves the client free to close the file and unlink it while the bytes are still on their
 * way to the device. The file's clusters must not go back to the allocator before they land: another file
 * could get them, and the late write would then overwrite that file's data.
 */

/** A whole-page overwrite of page `index`, accepted and then held at the device; returns the write and the hold. */
async function heldAcceptedWrite(t: Test, h: Harness, ino: number, fh: number, index: number, fill: number) {
  const at = await deviceOffsetOf(h.vol, ino, index * PAGE);
  const hold = h.dev.hold({ op: 'write', startByte: at, endByte: at + PAGE });
  let accepted = 0;
  const write = h.vol.write(ino, fh, index * PAGE, Buffer.alloc(PAGE, fill), { accepted: () => { accepted++; } });
  await hold.arrived(1);
  t.equal(accepted, 1, 'accepted while its device write is held');
  return { write, hold };
}

t.test('an unlink after close waits for an accepted write still on its way to the file\'s clusters', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'victim', 32 * PAGE, 0x21);
  const free = (await vol.statfs()).bfree;
  const { write, hold } = await heldAcceptedWrite(t, h, ino, fh, 8, 0x5a);
  await vol.release(ino, fh);
  let unlinked = false;
  const unlink = vol.unlink(vol.rootIno, Buffer.from('victim')).then(() => { unlinked = true; });
  await ticks();
  t.notOk(unlinked, 'the unlink waits: the clusters it would free still have a write in flight');
  t.equal((await vol.statfs()).bfree, free, 'nothing is freed meanwhile');
  hold.release();
  await write;
  await unlink;
  t.ok((await vol.statfs()).bfree > free, 'the clusters are freed once the write has landed');
  // Whoever gets the clusters next keeps what it writes.
  const other = await vol.create(vol.rootIno, Buffer.from('other'), 0o644, 2, { uid: 0, gid: 0 });
  const data = Buffer.alloc(32 * PAGE, 0x99);
  await vol.write(other.attr.ino, other.fh, 0, data);
  await vol.fsync(other.attr.ino, other.fh, false);
  vol.pages.drop(other.attr.ino);
  t.ok((await vol.read(other.attr.ino, other.fh, 0, data.length)).equals(data), 'a file written afterwards reads back intact');
  await vol.release(other.attr.ino, other.fh);
  await h.finish();
});

t.test('the last close of an unlinked file waits for an accepted write before freeing it', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'victim', 32 * PAGE, 0x31);
  await vol.unlink(vol.rootIno, Buffer.from('victim'));
  const free = (await vol.statfs()).bfree;
  const { write, hold } = await heldAcceptedWrite(t, h, ino, fh, 20, 0x6a);
  let released = false;
  const release = vol.release(ino, fh).then(() => { released = true; });
  await ticks();
  t.notOk(released, 'the orphan is not freed while the write is in flight');
  t.equal((await vol.statfs()).bfree, free, 'nothing is freed meanwhile');
  hold.release();
  await write;
  await release;
  t.ok((await vol.statfs()).bfree > free, 'it is freed once the write has landed');
  await h.finish();
});

t.test('an unmount right after an accepted write waits for it: the bytes and the new mtime are on the volume', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 32 * PAGE, 0x41);
  const before = await vol.getattr(ino);
  const { write, hold } = await heldAcceptedWrite(t, h, ino, fh, 5, 0x7b);
  await vol.release(ino, fh);
  let unmounted = false;
  const unmount = vol.unmount().then(() => { unmounted = true; });
  await ticks();
  t.notOk(unmounted, 'the unmount waits for the write in flight');
  hold.release();
  await write;
  await unmount;
  const again = await Volume.mount(await FileDevice.open(h.image), { readOnly: true });
  t.teardown(() => again.unmount());
  const attr = await again.getattr(ino);
  t.ok(attr.mtime.sec * 1e9 + attr.mtime.nsec > before.mtime.sec * 1e9 + before.mtime.nsec, 'the write\'s mtime was committed');
  const rfh = await again.open(ino, 0);
  t.ok((await again.read(ino, rfh, 5 * PAGE, PAGE)).equals(Buffer.alloc(PAGE, 0x7b)), 'its bytes are on the volume');
  await again.release(ino, rfh);
  await again.unmount();
  await h.finish();
});

t.test('SEEK_DATA after an accepted allocating write waits for its extent and size', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 32 * PAGE, 0x51);
  const hold = dev.hold({ op: 'write' });
  let accepted = 0;
  const write = vol.write(ino, fh, 40 * PAGE, Buffer.alloc(2 * PAGE, 0x52), { accepted: () => { accepted++; } });
  await hold.arrived(1);
  t.equal(accepted, 1, 'an append past a hole, accepted while its data write is held');
  let found: number | string | undefined;
  const seek = vol.lseek(ino, fh, 33 * PAGE, 3 /* SEEK_DATA */).then((o) => { found = o; }, (e: { errno?: string }) => { found = e.errno; });
  await ticks();
  t.equal(found, undefined, 'the seek waits for the write');
  hold.release();
  await write;
  await seek;
  t.equal(found, 40 * PAGE, 'and finds the data the write put there');
  await vol.release(ino, fh);
  await h.finish();
});

t.test('an mtime set after an accepted write stays: the write\'s own stamp does not land over it', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 32 * PAGE, 0x61);
  const { write, hold } = await heldAcceptedWrite(t, h, ino, fh, 3, 0x62);
  // What tar, rsync -t and cp -p do after writing a file's last bytes.
  const restored = { sec: 1_000_000_000, nsec: 123 };
  const set = vol.setattr(ino, { mtime: restored, atime: restored });
  await ticks();
  hold.release();
  await write;
  await set;
  await vol.fsync(ino, fh, false);
  t.same((await vol.getattr(ino)).mtime, restored, 'mtime is the one set after the write');
  await vol.release(ino, fh);
  await vol.unmount();
  const again = await Volume.mount(await FileDevice.open(h.image), { readOnly: true });
  t.teardown(() => again.unmount());
  t.same((await again.getattr(ino)).mtime, restored, 'on the volume too');
  await again.unmount();
  await h.finish();
});

t.test('a LINK after an accepted write answers with the write\'s mtime', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'f', 32 * PAGE, 0x71);
  const before = (await vol.getattr(ino)).mtime;
  const { write, hold } = await heldAcceptedWrite(t, h, ino, fh, 6, 0x72);
  let linked: { mtime: { sec: number; nsec: number } } | undefined;
  const link = vol.link(ino, vol.rootIno, Buffer.from('g')).then((a) => { linked = a; });
  await ticks();
  t.equal(linked, undefined, 'the link\'s answer waits for the write');
  hold.release();
  await write;
  await link;
  const mtime = linked!.mtime;
  t.ok(mtime.sec * 1e9 + mtime.nsec > before.sec * 1e9 + before.nsec, 'and carries the mtime the write gave the file');
  await vol.release(ino, fh);
  await h.finish();
});
