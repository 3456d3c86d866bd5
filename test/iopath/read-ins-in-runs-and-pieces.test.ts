/**
 * How read-ins use the page cache and the device on a streaming read.
 *
 * The cache: a read-in of a run of pages goes straight into cache memory that
 * is one run (runBuffer/adoptClean). When the cache is at its size limit with
 * runs still in flight, the oldest clean pages make way for the next run (a
 * whole slab comes free), instead of the read-in falling back to a scratch
 * buffer and a copy per page; where evicting does not free a slab, at most
 * the run's own page count is evicted before giving up.
 *
 * Read-ahead: it goes out before the READ that triggered it waits for its own
 * read-in (a held demand read must not hold read-ahead back), and a window
 * larger than 1 MiB goes out as several read-ins of at most 1 MiB, in flight
 * together. The reads here are half a MiB: a READ of 1 MiB or more that finds
 * nothing cached skips the cache and read-ahead (large-read-past-an-empty-
 * cache.test.ts).
 */
import t from 'tap';
import { PageCache, PAGE_BYTES } from '../../cache/pageCache';
import { engineOnFaultyDevice, openColdFile, deviceOffsetOf, until } from './harness';
import type { FaultyRequest } from '../../io/faultyDevice';

const RUN = 256;
const MiB = 1024 * 1024;
/** A reader's request size here: below the 1 MiB from which an uncached READ bypasses the cache. */
const READ = MiB / 2;

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

t.test('read-ahead goes out while the demand read is still at the device', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'stream', 4 * MiB, 0x5a);
  // A first read makes the reader one to follow (the first read of a handle starts no read-ahead).
  const lead = 64 * 1024;
  t.equal((await vol.read(ino, fh, 0, lead)).length, lead, 'a first short read');
  const first = await deviceOffsetOf(vol, ino, lead);
  const next = await deviceOffsetOf(vol, ino, lead + READ);
  const submitted: FaultyRequest[] = [];
  const off = dev.onSubmit((r) => void submitted.push(r));
  const hold = dev.hold({ op: 'read', startByte: first, endByte: first + READ }, { times: 1 });
  const reading = vol.read(ino, fh, lead, READ);
  await hold.arrived(1);
  await until(() => submitted.some((r) => r.op === 'read' && r.offset === next), 5000);
  t.pass('the read-ahead of the next window reached the device while the first read was held');
  hold.release();
  const data = await reading;
  t.ok(data.equals(Buffer.alloc(READ, 0x5a)), 'the held read returns the file\'s bytes');
  off();
  await vol.release(ino, fh);
  await h.finish();
});

t.test('a large read-ahead window goes out in pieces of at most 1 MiB, in flight together', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const size = 24 * MiB;
  const { ino, fh } = await openColdFile(vol, 'stream', size, 0x33);
  const start = await deviceOffsetOf(vol, ino, 0);
  const reads: FaultyRequest[] = [];
  let inFlight = 0;
  let most = 0;
  const offSubmit = dev.onSubmit((r) => {
    if (r.op !== 'read' || r.offset < start || r.offset >= start + size) return;
    reads.push(r);
    most = Math.max(most, ++inFlight);
  });
  const offComplete = dev.onComplete((r) => {
    if (r.op === 'read' && r.offset >= start && r.offset < start + size) inFlight--;
  });
  // Reads take a while at the device, as a disk's do, so pieces overlap.
  dev.delay({ op: 'read', startByte: start, endByte: start + size }, 3, Infinity);
  const expect = Buffer.alloc(READ, 0x33);
  let wrong = 0;
  for (let off = 0; off < size; off += READ) if (!(await vol.read(ino, fh, off, READ)).equals(expect)) wrong++;
  t.equal(wrong, 0, 'every read returns the file\'s bytes');
  const largest = Math.max(...reads.map((r) => r.length));
  t.ok(largest <= MiB, `largest device read ${largest} bytes (at most 1 MiB)`);
  t.ok(most >= 3, `${most} device reads of the file in flight at once (the window's pieces)`);
  t.ok(vol.readAheadMaxBytes > MiB, 'the read-ahead window is larger than one piece');
  offSubmit();
  offComplete();
  await vol.release(ino, fh);
  await h.finish();
});
