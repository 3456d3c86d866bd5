/**
 * Which buffered writes go straight to the device (fs/fileIo.ts,
 * writeThrough): whole pages, over written extents inside i_size, none of
 * them dirty, not continuing the file's last write, and no write-back of
 * the file in flight. Such a write is on the device when write() resolves
 * and leaves nothing dirty; a stream of writes, a partial page, or a page
 * already dirty goes into the cache as before. A page cached clean before a
 * write-through reads back as written. The volume ends fsck-clean.
 */
import t from 'tap';
import { countSubmits, engineOnFaultyDevice, openColdFile, deviceOffsetOf } from './harness';

const PAGE = 4096;

t.test('random whole pages go through; streams, partial pages and dirty pages stay in the cache', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const size = 64 * PAGE;
  const { ino, fh } = await openColdFile(vol, 'f', size, 0x11);
  const writes = countSubmits(dev, 'write');
  const dirtyPages = () => vol.pages.snapshotStats().dirtyBytes / PAGE;

  // A page at 40: not where the last write ended (nothing written yet through this open file but the layout).
  const a = Buffer.alloc(PAGE, 0xa1);
  await vol.write(ino, fh, 40 * PAGE, a);
  t.equal(writes.n, 1, 'a random whole page is written to the device before write() resolves');
  t.equal(dirtyPages(), 0, 'and leaves nothing dirty');
  t.ok((await dev.read(await deviceOffsetOf(vol, ino, 40 * PAGE), PAGE)).equals(a), 'the device holds it');

  // The next page continues that write: a stream, kept for write-back to merge.
  await vol.write(ino, fh, 41 * PAGE, Buffer.alloc(2 * PAGE, 0xa2));
  t.equal(writes.n, 1, 'a write continuing the last one is not written through');
  t.equal(dirtyPages(), 2, 'its pages are dirty in the cache');

  // Partial page, elsewhere: read in, dirtied.
  await vol.write(ino, fh, 10 * PAGE + 100, Buffer.alloc(300, 0xa3));
  t.equal(writes.n, 1, 'a partial page is not written through');
  t.equal(dirtyPages(), 3, 'it is dirty in the cache');

  // Whole page over a dirty one, not a stream: stays in the cache (the dirty page holds newer bytes than the device).
  await vol.write(ino, fh, 10 * PAGE, Buffer.alloc(PAGE, 0xa4));
  t.equal(writes.n, 1, 'a whole page that is dirty already is not written through');
  t.equal(dirtyPages(), 3, 'and stays dirty');

  // A clean cached page, then a write-through of it: the cached copy must not serve the old bytes.
  const before = await vol.read(ino, fh, 20 * PAGE, PAGE);
  t.ok(before.equals(Buffer.alloc(PAGE, 0x11)), 'page 20 is read (and cached clean)');
  const b = Buffer.alloc(PAGE, 0xb2);
  await vol.write(ino, fh, 20 * PAGE, b);
  t.equal(writes.n, 2, 'a write of a cached clean page goes through');
  t.ok((await vol.read(ino, fh, 20 * PAGE, PAGE)).equals(b), 'and reads back as written, not as cached before');
  writes.off();

  await vol.fsync(ino, fh, false);
  const expect = Buffer.alloc(size, 0x11);
  a.copy(expect, 40 * PAGE);
  expect.fill(0xa2, 41 * PAGE, 43 * PAGE);
  expect.fill(0xa4, 10 * PAGE, 11 * PAGE);
  b.copy(expect, 20 * PAGE);
  vol.pages.drop(ino);
  t.ok((await vol.read(ino, fh, 0, size)).equals(expect), 'after fsync the file reads back as written, from the device');
  await vol.release(ino, fh);
  await h.finish();
});
