/**
 * A buffered write the engine accepts before its device write
 * (fs/fileIo.ts, acceptedWriteThrough): a whole page over written blocks,
 * not continuing the last write. `accepted` runs while the device write is
 * still held; a read of that range issued then returns the new bytes (it
 * waits for the inode's lock); an fsync issued then waits for the device
 * write. When the held device write fails, write() still resolves with the
 * count (the answer has gone) and an fsync issued while it was in flight
 * reports EIO, once. Writes that cannot be accepted early (a partial page,
 * a stream kept in the cache, a page that allocates) never call
 * `accepted`. The volume ends fsck-clean.
 */
import t from 'tap';
import { engineOnFaultyDevice, openColdFile, deviceOffsetOf, ticks } from './harness';

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
  await vol.write(ino, fh, 40 * PAGE, Buffer.alloc(PAGE, 4), accept);
  t.equal(accepted, 1, 'a page past the end of the file is not (it allocates)');
  await vol.fsync(ino, fh, false);
  await vol.release(ino, fh);
  await h.finish();
});
