/**
 * A buffered read that finds none of its pages cached goes from the device
 * straight into the reply: one device read of exactly its range, nothing
 * cached, nothing read ahead, whatever its size (the kernel transport's
 * sequential reader sends 1 MiB READs, libfuse's 128 KiB ones, handed over in
 * any order). A cached page in the range, dirty above all, sends the read
 * through the cache, or it would miss bytes the device does not have yet; the
 * pages it lacks there are read in and cached.
 */
import t from 'tap';
import type { Test } from 'tap';
import { engineOnFaultyDevice, openColdFile, deviceOffsetOf, ticks, type Harness } from './harness';

const MiB = 1024 * 1024;
const KiB = 1024;

/** Reads `offsets` (each `size` bytes, in that order) of a cold file; checks the device saw one read per READ. */
async function readsStraightFromTheDevice(t: Test, h: Harness, fileBytes: number, size: number, offsets: number[]): Promise<void> {
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, `cold-${size}`, fileBytes, 0x41);
  const before = vol.pages.snapshotStats();
  const reads: { offset: number; length: number }[] = [];
  const off = dev.onSubmit((r) => void (r.op === 'read' && reads.push({ offset: r.offset, length: r.length })));
  const expected: { offset: number; length: number }[] = [];
  let wrong = 0;
  let copied = 0;
  for (const at of offsets) {
    expected.push({ offset: await deviceOffsetOf(vol, ino, at), length: size });
    const into = Buffer.alloc(size);
    const data = await vol.read(ino, fh, at, size, into);
    if (!data.equals(Buffer.alloc(size, 0x41))) wrong++;
    if (data.buffer !== into.buffer || data.byteOffset !== into.byteOffset) copied++;
  }
  await ticks();
  off();
  t.equal(wrong, 0, 'every READ returns the file\'s bytes');
  t.equal(copied, 0, 'each landed in the caller\'s buffer');
  t.same(reads, expected, 'one device read per READ, of exactly its range: nothing read ahead');
  const after = vol.pages.snapshotStats();
  t.equal(after.readIns, before.readIns, 'no page read in');
  t.equal(after.cleanBytes, 0, 'nothing cached');
  await vol.release(ino, fh);
}

t.test('1 MiB READs of a cold file (the kernel transport\'s)', async (t) => {
  const h = await engineOnFaultyDevice(t);
  await readsStraightFromTheDevice(t, h, 8 * MiB, MiB, Array.from({ length: 8 }, (_, i) => i * MiB));
  await h.finish();
});

t.test('128 KiB READs of a cold file, some overtaking others (libfuse\'s)', async (t) => {
  const h = await engineOnFaultyDevice(t);
  // libfuse's threads hand a sequential reader's READs over in any order: swap neighbours now and then.
  const order = Array.from({ length: 32 }, (_, i) => i);
  for (let i = 0; i + 1 < order.length; i += 3) [order[i], order[i + 1]] = [order[i + 1], order[i]];
  await readsStraightFromTheDevice(t, h, 4 * MiB, 128 * KiB, order.map((i) => i * 128 * KiB));
  await h.finish();
});

t.test('a dirty page inside a READ sends it through the cache, which has the bytes the device lacks', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'partly-written', 4 * MiB, 0x41);
  // A partial page: read in, patched, dirty (whole pages not continuing a write would go to the device at once).
  const at = MiB + 8 * KiB + 10;
  await vol.write(ino, fh, at, Buffer.alloc(100, 0x42));
  t.ok(vol.pages.hasDirtyIn(ino, Math.floor(at / 4096), Math.floor(at / 4096)), 'the page is dirty');
  const onDevice = await dev.read(await deviceOffsetOf(vol, ino, at), 100);
  t.ok(onDevice.equals(Buffer.alloc(100, 0x41)), 'the device still holds the old bytes');
  for (const size of [MiB, 128 * KiB]) {
    const data = await vol.read(ino, fh, MiB, size);
    const want = Buffer.alloc(size, 0x41);
    want.fill(0x42, at - MiB, at - MiB + 100);
    t.ok(data.equals(want), `a ${size / KiB} KiB READ over it returns the written bytes`);
  }
  await vol.release(ino, fh);
  await h.finish();
});

t.test('a READ that finds part of its range cached reads the rest in, and later READs find it all', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'partly-cached', 2 * MiB, 0x43);
  // One page cached: the partial write reads it in.
  await vol.write(ino, fh, 256 * KiB + 5, Buffer.alloc(10, 0x44));
  const want = Buffer.alloc(MiB, 0x43);
  want.fill(0x44, 256 * KiB + 5, 256 * KiB + 15);
  const before = vol.pages.snapshotStats();
  t.ok((await vol.read(ino, fh, 0, MiB)).equals(want), 'the READ returns the file with the written bytes');
  const mid = vol.pages.snapshotStats();
  t.equal(mid.readIns - before.readIns, 255, 'the 255 pages the cache lacked were read in');
  t.ok((await vol.read(ino, fh, 0, MiB)).equals(want), 'read again');
  t.equal(vol.pages.snapshotStats().readIns, mid.readIns, 'from the cache: nothing read in');
  await vol.release(ino, fh);
  await h.finish();
});
