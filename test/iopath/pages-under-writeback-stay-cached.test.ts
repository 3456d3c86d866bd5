/**
 * A page stays in the cache, and cannot be evicted, until its write-back has
 * landed on the device (Linux's PG_writeback). While the device write is in
 * flight the device still holds the old bytes: a page evicted in that window
 * and then read would come back from the device as it was before the write.
 * Here a write-back is held at the device, a read of another file pushes the
 * whole (small) cache through the LRU, and then the held pages are read.
 * Fails when write-back marks its pages clean before the device write lands.
 */
import t from 'tap';
import { engineOnFaultyDevice, openColdFile, deviceOffsetOf } from './harness';

const PAGE = 4096;
/** The smallest cache the engine takes: 16 pages. */
const CACHE_PAGES = 16;
const A_PAGES = 4;
const B_PAGES = 3 * CACHE_PAGES;

t.test('pages under write-back are served from the cache until the write lands', async (t) => {
  const h = await engineOnFaultyDevice(t, { volume: { cacheSizeBytes: CACHE_PAGES * PAGE } });
  const { vol, dev } = h;
  const a = await openColdFile(vol, 'a', A_PAGES * PAGE, 0x41);
  const b = await openColdFile(vol, 'b', B_PAGES * PAGE, 0x42);

  // Dirty in the cache: written in halves (a scattered whole-page write would go straight to the device).
  for (let p = 0; p < A_PAGES; p++) {
    await vol.write(a.ino, a.fh, p * PAGE, Buffer.alloc(PAGE / 2, 0x61));
    await vol.write(a.ino, a.fh, p * PAGE + PAGE / 2, Buffer.alloc(PAGE / 2, 0x61));
  }
  const start = await deviceOffsetOf(vol, a.ino, 0);
  const hold = dev.hold({ op: 'write', startByte: start, endByte: start + A_PAGES * PAGE }, { times: Infinity });
  const sync = vol.fsync(a.ino, a.fh, false);
  const caught = await hold.arrived(1);
  t.ok(caught.length >= 1, 'the write-back of a is held at the device');
  t.ok((await dev.read(start, PAGE)).equals(Buffer.alloc(PAGE, 0x41)), 'the device still holds the old bytes');

  // One page of b cached (dirty), so the read below goes through the cache and reads the rest of b in: three
  // caches' worth of clean pages through the LRU.
  await vol.write(b.ino, b.fh, 0, Buffer.alloc(16, 0x62));
  const readB = await vol.read(b.ino, b.fh, 0, B_PAGES * PAGE);
  t.equal(readB.length, B_PAGES * PAGE, 'b read through the cache');
  t.ok(vol.pages.stats.evictions > 0, `${vol.pages.stats.evictions} pages evicted meanwhile`);

  const got = await vol.read(a.ino, a.fh, 0, A_PAGES * PAGE);
  t.ok(got.equals(Buffer.alloc(A_PAGES * PAGE, 0x61)), 'a read while its write-back is in flight returns the new bytes');

  hold.release();
  await sync;
  t.ok((await dev.read(start, A_PAGES * PAGE)).equals(Buffer.alloc(A_PAGES * PAGE, 0x61)), 'the write-back landed');
  const after = await vol.read(a.ino, a.fh, 0, A_PAGES * PAGE);
  t.ok(after.equals(Buffer.alloc(A_PAGES * PAGE, 0x61)), 'and the file reads the new bytes after it');
  await vol.release(a.ino, a.fh);
  await vol.release(b.ino, b.fh);
  await h.finish();
});

t.test('a page written again while its write-back is in flight stays dirty after it lands', async (t) => {
  const h = await engineOnFaultyDevice(t, { volume: { cacheSizeBytes: CACHE_PAGES * PAGE } });
  const { vol, dev } = h;
  const a = await openColdFile(vol, 'a', PAGE, 0x41);
  await vol.write(a.ino, a.fh, 0, Buffer.alloc(100, 0x61));
  const start = await deviceOffsetOf(vol, a.ino, 0);
  const hold = dev.hold({ op: 'write', startByte: start, endByte: start + PAGE }, { times: 1 });
  const sync = vol.fsync(a.ino, a.fh, false);
  await hold.arrived(1);
  await vol.write(a.ino, a.fh, 200, Buffer.alloc(100, 0x62));
  hold.release();
  await sync;
  t.equal(vol.pages.dirtyCount(a.ino), 1, 'the page written during the write-back is still dirty');
  await vol.fsync(a.ino, a.fh, false);
  const want = Buffer.alloc(PAGE, 0x41);
  want.fill(0x61, 0, 100);
  want.fill(0x62, 200, 300);
  t.ok((await dev.read(start, PAGE)).equals(want), 'the next fsync writes the second write');
  await vol.release(a.ino, a.fh);
  await h.finish();
});
