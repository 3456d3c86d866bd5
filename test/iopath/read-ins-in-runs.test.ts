/**
 * How read-ins use the page cache (a read that finds part of its range
 * cached reads the rest in; read-past-an-empty-cache.test.ts has the others).
 *
 * The cache: a read-in of a run of pages goes straight into cache memory that
 * is one run (runBuffer/adoptClean). When the cache is at its size limit with
 * runs still in flight, the oldest clean pages make way for the next run (a
 * whole slab comes free), instead of the read-in falling back to a scratch
 * buffer and a copy per page; where evicting does not free a slab, at most
 * the run's own page count is evicted before giving up.
 */
import t from 'tap';
import { PageCache, PAGE_BYTES } from '../../cache/pageCache';

const RUN = 256;
const MiB = 1024 * 1024;

/** A cache of `runs` runs of RUN pages, all adopted (clean), for inode 1 from page 0 on. */
function fullOfRuns(maxBytes: number): PageCache {
  const pc = new PageCache(maxBytes);
  for (let r = 0; r < maxBytes / (RUN * PAGE_BYTES); r++) {
    const buf = pc.runBuffer(RUN)!;
    for (let i = 0; i < RUN; i++) pc.adoptClean(1, r * RUN + i, buf.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES));
  }
  return pc;
}

t.test('at the size limit, a run in flight takes the place of the oldest run', async (t) => {
  const maxBytes = 4 * MiB;
  const pc = fullOfRuns(maxBytes);
  const before = pc.snapshotStats();
  t.equal(before.cleanBytes, maxBytes, 'the cache is full of clean pages');
  t.equal(before.evictions, 0, 'nothing evicted yet');
  // Runs taken and not yet adopted (read-ins in flight) are memory the clean count does not see: two fit in the
  // slack the cache allows itself, the third is past the limit.
  const inFlight = [pc.runBuffer(RUN), pc.runBuffer(RUN), pc.runBuffer(RUN)];
  t.ok(inFlight.every((b) => b && b.length === RUN * PAGE_BYTES), 'every run in flight got memory that is one run');
  const after = pc.snapshotStats();
  t.equal(after.evictions, RUN, 'exactly the oldest run was evicted to make way');
  t.equal(pc.lookup(1, 0), undefined, 'the oldest page is gone');
  t.ok(pc.lookup(1, RUN), 'the next run stays');
  t.ok(after.slabBytes <= maxBytes + 2 * MiB, `slab memory ${after.slabBytes} stays within the limit plus two slabs`);
  const overlap = (a: Buffer, b: Buffer) => a.buffer === b.buffer &&
    a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
  const [a, b, c] = inFlight as Buffer[];
  t.notOk(overlap(a, b) || overlap(a, c) || overlap(b, c), 'the three runs do not share memory');
});

t.test('where evicting frees no slab, a run gives up after its own page count', async (t) => {
  const maxBytes = 4 * MiB;
  const pc = new PageCache(maxBytes);
  const zeros = Buffer.alloc(PAGE_BYTES);
  for (let i = 0; i < maxBytes / PAGE_BYTES; i++) pc.insertClean(1, i, zeros);
  // Every other page used again: the oldest pages are the odd ones, spread over every slab.
  for (let i = 0; i < maxBytes / PAGE_BYTES; i += 2) pc.lookup(1, i);
  t.ok(pc.runBuffer(RUN) && pc.runBuffer(RUN), 'two runs fit in the slack');
  t.equal(pc.runBuffer(RUN), undefined, 'no run to be had: the read-in copies instead');
  const s = pc.snapshotStats();
  t.equal(s.evictions, RUN, 'no more pages evicted than the run would have displaced');
  t.ok(s.slabBytes <= maxBytes + 2 * MiB, 'slab memory stays within the limit plus two slabs');
});
