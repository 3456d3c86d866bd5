/**
 * Read-ahead as a libfuse reader drives it: READs of 128 KiB, several in
 * flight, handed to the engine in any order by libfuse's threads.
 *
 * - A READ that overtook its predecessor (it starts a few requests past the
 *   furthest end seen) is part of the stream: the window keeps growing. Taken
 *   for a new stream, it shrank the window back to 128 KiB every few READs,
 *   and the device saw a read per READ.
 * - Once the window is open, it moves by whole pieces (1 MiB), not by every
 *   READ: each device read costs the event loop a threadpool hand-off, more
 *   than the copy of the 128 KiB a READ asks for.
 *
 * Both counted at the device: the file's reads and their sizes, for a cold
 * 16 MiB file read in 128 KiB READs.
 */
import t, { type Test } from 'tap';
import { engineOnFaultyDevice, openColdFile, deviceOffsetOf } from './harness';
import type { Harness } from './harness';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 16 * MiB;
const READ = 128 * KiB;

/** Reads the whole file in READ-sized requests in `order`; returns the device reads of the file's bytes. */
async function readInOrder(t: Test, h: Harness, order: number[]): Promise<number[]> {
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'stream', SIZE, 0x6c);
  const start = await deviceOffsetOf(vol, ino, 0);
  const sizes: number[] = [];
  const off = dev.onSubmit((r) => {
    if (r.op === 'read' && r.offset >= start && r.offset < start + SIZE) sizes.push(r.length);
  });
  const expect = Buffer.alloc(READ, 0x6c);
  let wrong = 0;
  // Four READs in flight at once, as fuse-native's libfuse threads keep them.
  for (let g = 0; g < order.length; g += 4) {
    const got = await Promise.all(order.slice(g, g + 4).map((k) => vol.read(ino, fh, k * READ, READ)));
    wrong += got.filter((b) => !b.equals(expect)).length;
  }
  off();
  t.equal(wrong, 0, 'every READ returns the file\'s bytes');
  await vol.release(ino, fh);
  return sizes;
}

const inOrder = Array.from({ length: SIZE / READ }, (_, k) => k);
// Each group of four handed over last first: every READ but the group's last starts past the stream's end.
const overtaking = inOrder.map((k) => k - (k % 4) + 3 - (k % 4));

for (const [name, order] of [['in order', inOrder], ['each four in reverse', overtaking]] as const) {
  t.test(`128 KiB READs ${name}: the window grows and moves in pieces`, async (t) => {
    const h = await engineOnFaultyDevice(t);
    const sizes = await readInOrder(t, h, order);
    const total = sizes.reduce((a, b) => a + b, 0);
    t.comment(`${sizes.length} device reads, ${(total / MiB).toFixed(1)} MiB; sizes ${sizes.map((s) => s / KiB).join(' ')} KiB`);
    t.ok(total <= SIZE + 2 * MiB, 'the device read the file about once');
    // A read per READ would be 128; a window that moves in 1 MiB pieces needs ~16 plus its ramp.
    t.ok(sizes.length <= 32, `${sizes.length} device reads for ${SIZE / READ} READs (at most 32)`);
    const large = sizes.filter((s) => s >= MiB).length;
    t.ok(large >= 8, `${large} device reads of a whole 1 MiB piece (at least 8)`);
    await h.finish();
  });
}
