/**
 * A read-in hands its bytes to the reader before its pages enter the cache.
 * Once in, a page can be evicted by the next insert and its memory given to
 * another page; a read-in longer than the whole cache evicts its own first
 * pages that way. Here a 16-page cache serves a read of 300 pages of which
 * one is cached: the other 299 are one read-in (longer than a slab run, so
 * each page is inserted on its own). Fails when the reader copies from the
 * cached pages after the read-in: all but the last pages come back holding
 * later pages' bytes.
 */
import t from 'tap';
import { engineOnFaultyDevice, openColdFile } from './harness';

const PAGE = 4096;
const CACHE_PAGES = 16;
const PAGES = 300;

/** Page `p`'s bytes: its number, everywhere. */
function pattern(p: number): Buffer {
  const b = Buffer.alloc(PAGE);
  for (let i = 0; i < PAGE; i += 4) b.writeUInt32LE(p, i);
  return b;
}

t.test('a read-in longer than the cache returns every page as read', async (t) => {
  const h = await engineOnFaultyDevice(t, { volume: { cacheSizeBytes: CACHE_PAGES * PAGE } });
  const { vol } = h;
  const f = await openColdFile(vol, 'f', PAGES * PAGE);
  for (let p = 0; p < PAGES; p++) await vol.write(f.ino, f.fh, p * PAGE, pattern(p));
  await vol.fsync(f.ino, f.fh, false);
  vol.pages.drop(f.ino);

  // One page cached (dirty), so the read goes through the cache and reads the rest in.
  const head = pattern(0);
  head.fill(0xee, 0, 16);
  await vol.write(f.ino, f.fh, 0, head.subarray(0, 16));
  const readInsBefore = vol.pages.stats.readIns;
  const got = await vol.read(f.ino, f.fh, 0, PAGES * PAGE);
  t.equal(vol.pages.stats.readIns - readInsBefore, PAGES - 1, 'the other pages were read in');
  const bad: number[] = [];
  if (!got.subarray(0, PAGE).equals(head)) bad.push(0);
  for (let p = 1; p < PAGES; p++) if (!got.subarray(p * PAGE, (p + 1) * PAGE).equals(pattern(p))) bad.push(p);
  t.same(bad, [], 'every page holds its own bytes');
  t.ok(vol.pages.stats.evictions >= PAGES - 1 - CACHE_PAGES, `the read-in evicted its own pages (${vol.pages.stats.evictions} evictions)`);
  await vol.release(f.ino, f.fh);
  await h.finish();
});
