/**
 * A buffered write that covers a page not in the cache enters it dirty with
 * the written bytes: no read-in, no zeros, never a clean page on the way (it
 * could be evicted or served as clean). A write covering part of a page still
 * reads the rest in; the last page written from its start to EOF gets zeros
 * past EOF.
 */
import t from 'tap';
import { PageCache, PAGE_BYTES } from '../../cache/pageCache';
import { countSubmits, engineOnFaultyDevice, openColdFile } from './harness';

t.test('insertDirty: the page holds the source bytes and is dirty whole, never clean', async (t) => {
  const pc = new PageCache(64 * PAGE_BYTES);
  const src = Buffer.alloc(3 * PAGE_BYTES);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7) & 0xff;
  const page = pc.insertDirty(5, 9, src, PAGE_BYTES);
  t.ok(page.data.equals(src.subarray(PAGE_BYTES, 2 * PAGE_BYTES)), 'the page holds the covered bytes');
  t.same([page.dirtyStart, page.dirtyEnd], [0, PAGE_BYTES], 'dirty from start to end');
  t.equal(pc.lookup(5, 9), page, 'found by lookup');
  t.ok(pc.isDirty(page), 'dirty in the cache');
  const s = pc.snapshotStats();
  t.equal(s.cleanBytes, 0, 'no clean page was made on the way');
  t.equal(s.dirtyBytes, PAGE_BYTES, 'one dirty page');
});

t.test('buffered writes of whole pages read nothing in; partial ones read their page', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const size = 64 * PAGE_BYTES;
  const { ino, fh } = await openColdFile(vol, 'f', size, 0x11);
  const reads = countSubmits(dev, 'read');
  const whole = Buffer.alloc(8 * PAGE_BYTES, 0x22);
  await vol.write(ino, fh, 16 * PAGE_BYTES, whole);
  t.equal(reads.n, 0, 'eight whole pages written without a device read');
  await vol.write(ino, fh, 40 * PAGE_BYTES + 100, Buffer.alloc(200, 0x33));
  t.equal(reads.n, 1, 'a partial page is read in first');
  reads.off();
  const back = await vol.read(ino, fh, 0, size);
  const expect = Buffer.alloc(size, 0x11);
  whole.copy(expect, 16 * PAGE_BYTES);
  expect.fill(0x33, 40 * PAGE_BYTES + 100, 40 * PAGE_BYTES + 300);
  t.ok(back.equals(expect), 'the file reads back as written');
  await vol.fsync(ino, fh, false);
  vol.pages.drop(ino);
  t.ok((await vol.read(ino, fh, 0, size)).equals(expect), 'and so does the device after fsync');
  await vol.release(ino, fh);
  await h.finish();
});
