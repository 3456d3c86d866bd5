/**
 * A write-back device write carries the page as it was when write-back took
 * it: the page may be written again while the device write is in flight, and
 * several write-backs of one inode are in flight at once. Scattered dirty
 * pages (one-page runs, the random writer's case) are held at the device,
 * rewritten, and then released: each held write must put the first bytes on
 * its own page, and the next fsync the second ones. Fails when write-back
 * hands the device the page itself instead of a copy.
 */
import t from 'tap';
import { engineOnFaultyDevice, ROOT_CALLER, O_RDWR } from './harness';
import { mapRange } from '../../fs/file';

const PAGE = 4096;
const PAGES = 64;

function pattern(page: number, round: number): Buffer {
  const b = Buffer.alloc(PAGE);
  for (let i = 0; i < PAGE; i += 4) b.writeUInt32LE((Math.imul(page + 1, 0x01000193) ^ Math.imul(round, 0x5bd1e995) ^ i) >>> 0, i);
  return b;
}

t.test('held write-backs keep their copies while the pages are written again', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { attr, fh } = await vol.create(vol.rootIno, Buffer.from('f'), 0o644, O_RDWR, ROOT_CALLER);
  for (let p = 0; p < PAGES; p++) await vol.write(attr.ino, fh, p * PAGE, pattern(p, 0));
  await vol.fsync(attr.ino, fh, false);

  // Every other page: 32 one-page runs, more than write-back keeps in flight at once. Each page is written in two
  // halves: a scattered whole-page write would go straight to the device (fs/fileIo.ts, writeThrough), and these
  // pages must be dirty in the cache.
  const dirty = Array.from({ length: PAGES / 2 }, (_, k) => 2 * k);
  for (const p of dirty) {
    const data = pattern(p, 1);
    await vol.write(attr.ino, fh, p * PAGE, data.subarray(0, PAGE / 2));
    await vol.write(attr.ino, fh, p * PAGE + PAGE / 2, data.subarray(PAGE / 2));
  }
  const segs = await mapRange(vol, await vol.iget(attr.ino), 0, PAGES * PAGE);
  const deviceOffsetOf = (page: number): number => {
    const at = page * PAGE;
    const s = segs.find((x) => x.fileOffset <= at && at < x.fileOffset + x.length)!;
    return s.deviceOffset! + (at - s.fileOffset);
  };
  const first = Math.min(...segs.map((s) => s.deviceOffset!));
  const end = Math.max(...segs.map((s) => s.deviceOffset! + s.length));

  const hold = dev.hold({ op: 'write', startByte: first, endByte: end }, { times: Infinity });
  const sync = vol.fsync(attr.ino, fh, false);
  const caught = await hold.arrived(4);
  t.ok(caught.length >= 4, `${caught.length} write-backs held at the device at once`);
  // Rewritten while their write-backs are in flight (and the rest before theirs start).
  for (const p of dirty) await vol.write(attr.ino, fh, p * PAGE, pattern(p, 2));
  hold.release();
  await sync;

  // The fsync wrote what was dirty when it began: round 1, each page its own.
  const bad: number[] = [];
  for (const p of dirty) {
    const onDevice = await dev.read(deviceOffsetOf(p), PAGE);
    if (!onDevice.equals(pattern(p, 1)) && !onDevice.equals(pattern(p, 2))) bad.push(p);
  }
  t.same(bad, [], 'every page on the device holds one of its own versions');
  const heldPages = caught.map((r) => dirty.find((p) => deviceOffsetOf(p) === r.offset));
  t.notOk(heldPages.includes(undefined), 'each held write was one dirty page');
  const heldRight = [];
  for (const p of heldPages) heldRight.push((await dev.read(deviceOffsetOf(p!), PAGE)).equals(pattern(p!, 1)));
  t.ok(heldRight.every(Boolean), 'the held writes put down the page as it was when write-back took it');

  await vol.fsync(attr.ino, fh, false);
  for (const p of dirty) {
    if (!(await dev.read(deviceOffsetOf(p), PAGE)).equals(pattern(p, 2))) bad.push(p);
  }
  t.same(bad, [], 'the next fsync writes the rewrites');
  for (let p = 1; p < PAGES; p += 2) {
    if (!(await dev.read(deviceOffsetOf(p), PAGE)).equals(pattern(p, 0))) bad.push(p);
  }
  t.same(bad, [], 'pages never rewritten are untouched');
  await vol.release(attr.ino, fh);
  await h.finish();
});
