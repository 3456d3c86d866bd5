/**
 * A buffered READ of 1 MiB or more that finds none of its pages cached (the
 * kernel transport's sequential reader: its READs are 1 MiB) goes from the
 * device straight into the reply: one device read of exactly its range,
 * nothing cached, nothing read ahead. A cached page in the range, dirty above
 * all, sends it through the cache, or the READ would miss bytes the device
 * does not have yet. Smaller READs keep the cache and read-ahead.
 */
import t from 'tap';
import { engineOnFaultyDevice, openColdFile, deviceOffsetOf, ticks, O_RDWR } from './harness';

const MiB = 1024 * 1024;
const KiB = 1024;

t.test('1 MiB READs of a cold file: one device read each, into the reply; nothing cached or read ahead', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const size = 8 * MiB;
  const { ino, fh } = await openColdFile(vol, 'stream', size, 0x41);
  const before = vol.pages.snapshotStats();
  const reads: { offset: number; length: number }[] = [];
  const off = dev.onSubmit((r) => void (r.op === 'read' && reads.push({ offset: r.offset, length: r.length })));
  const expected: { offset: number; length: number }[] = [];
  let wrong = 0;
  let copied = 0;
  for (let at = 0; at < size; at += MiB) {
    expected.push({ offset: await deviceOffsetOf(vol, ino, at), length: MiB });
    const into = Buffer.alloc(MiB);
    const data = await vol.read(ino, fh, at, MiB, into);
    if (!data.equals(Buffer.alloc(MiB, 0x41))) wrong++;
    if (data.buffer !== into.buffer || data.byteOffset !== into.byteOffset) copied++;
  }
  await ticks();
  off();
  t.equal(wrong, 0, 'every READ returns the file\'s bytes');
  t.equal(copied, 0, 'each landed in the caller\'s buffer');
  t.same(reads, expected, 'one device read per READ, of exactly its range: no read-ahead');
  const after = vol.pages.snapshotStats();
  t.equal(after.readIns, before.readIns, 'no page read in');
  t.equal(after.cleanBytes, 0, 'nothing cached');
  await vol.release(ino, fh);
  await h.finish();
});

t.test('a dirty page inside a 1 MiB READ sends it through the cache, which has the bytes the device lacks', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'partly-written', 4 * MiB, 0x41);
  // A partial page: read in, patched, dirty (whole pages not continuing a write would go to the device at once).
  const at = MiB + 8 * KiB + 10;
  await vol.write(ino, fh, at, Buffer.alloc(100, 0x42));
  t.ok(vol.pages.hasDirtyIn(ino, Math.floor(at / 4096), Math.floor(at / 4096)), 'the page is dirty');
  const onDevice = await dev.read(await deviceOffsetOf(vol, ino, at), 100);
  t.ok(onDevice.equals(Buffer.alloc(100, 0x41)), 'the device still holds the old bytes');
  const data = await vol.read(ino, fh, MiB, MiB);
  const want = Buffer.alloc(MiB, 0x41);
  want.fill(0x42, at - MiB, at - MiB + 100);
  t.ok(data.equals(want), 'the READ returns the written bytes');
  await vol.release(ino, fh);
  await h.finish();
});

t.test('128 KiB READs (libfuse\'s) keep the page cache and its read-ahead', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const { vol } = h;
  const { ino, fh } = await openColdFile(vol, 'small-reads', 4 * MiB, 0x43);
  const before = vol.pages.snapshotStats();
  let wrong = 0;
  for (let at = 0; at < 2 * MiB; at += 128 * KiB) {
    if (!(await vol.read(ino, fh, at, 128 * KiB)).equals(Buffer.alloc(128 * KiB, 0x43))) wrong++;
  }
  await ticks();
  t.equal(wrong, 0, 'every READ returns the file\'s bytes');
  const after = vol.pages.snapshotStats();
  t.ok(after.readIns - before.readIns > 512, `${after.readIns - before.readIns} pages read in: the READs and read-ahead past them`);
  t.ok(after.cleanBytes > 2 * MiB, `${after.cleanBytes} bytes cached`);
  // And a 1 MiB READ over cached pages is served from them.
  const fh2 = await vol.open(ino, O_RDWR);
  const hits = vol.pages.snapshotStats().hits;
  t.ok((await vol.read(ino, fh2, 0, MiB)).equals(Buffer.alloc(MiB, 0x43)), 'a 1 MiB READ of cached pages');
  t.ok(vol.pages.snapshotStats().hits > hits, 'is served from the cache');
  await vol.release(ino, fh2);
  await vol.release(ino, fh);
  await h.finish();
});
