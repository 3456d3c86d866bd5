/**
 * The core rule, deterministically: two unaligned direct writes to disjoint
 * parts of one block, the first held in flight by the fault device while the
 * second reads its edge block in. With the rule off (-o unaligned_dio=unsafe)
 * the first write's read-modify-write carries a stale copy of the block and
 * the second write's bytes are lost; with the rule on ('inode', and the
 * default 'range') the second waits for the first and both survive. The same
 * for an allocating (fallback) direct write that extends the file from the
 * middle of that block while an unaligned direct write to it is in flight.
 */
import t, { type Test } from 'tap';
import { engineOnFaultyDevice, makeFile, deviceOffsetOf, until, O_RDWR, O_DIRECT } from './harness';
import type { GateMode } from '../../io/unalignedGate';

const A = { offset: 100, data: Buffer.alloc(200, 0x41) };
const B = { offset: 1000, data: Buffer.alloc(200, 0x42) };

async function raceTwoOverwrites(t: Test, mode: GateMode): Promise<{ a: boolean; b: boolean; bWaited: boolean }> {
  const h = await engineOnFaultyDevice(t, { volume: { unalignedDio: mode } });
  const ino = await makeFile(h.vol, 'f', 16384);
  const block0 = await deviceOffsetOf(h.vol, ino, 0);
  const fh = await h.vol.open(ino, O_RDWR | O_DIRECT);
  // Hold the first write of block 0 (A's read-modify-write of the block).
  const hold = h.dev.hold({ op: 'write', startByte: block0, endByte: block0 + 4096 });
  const pa = h.vol.write(ino, fh, A.offset, A.data);
  await hold.arrived(1);
  const pb = h.vol.write(ino, fh, B.offset, B.data);
  // Either B completes while A is held (no rule), or it queues on the gate (rule on): whichever happens first.
  const outcome = await Promise.race([
    pb.then(() => 'completed' as const),
    until(() => h.vol.gate.stats().waiting > 0).then(() => 'queued' as const),
  ]);
  const bWaited = outcome === 'queued';
  hold.release();
  await Promise.all([pa, pb]);
  const back = await h.vol.read(ino, fh, 0, 4096);
  await h.vol.release(ino, fh);
  await h.finish();
  return {
    a: back.subarray(A.offset, A.offset + A.data.length).equals(A.data),
    b: back.subarray(B.offset, B.offset + B.data.length).equals(B.data),
    bWaited,
  };
}

t.test('rule off (unsafe): the held write puts a stale block back over the other write', async (t) => {
  const r = await raceTwoOverwrites(t, 'unsafe');
  t.notOk(r.bWaited, 'the second write did not wait');
  t.ok(r.a, "the held write's bytes are there");
  t.notOk(r.b, "the second write's bytes were lost: the corruption is reproduced");
});

for (const mode of ['inode', 'range'] as const) {
  t.test(`rule on (${mode}): the second unaligned write waits and both survive`, async (t) => {
    const r = await raceTwoOverwrites(t, mode);
    t.ok(r.bWaited, 'the second write waited for the first to complete');
    t.ok(r.a, 'first write intact');
    t.ok(r.b, 'second write intact');
  });
}

async function raceFallbackBesideUnaligned(t: Test, mode: GateMode): Promise<{ a: boolean; b: boolean; bWaited: boolean }> {
  // No inline data: a 300-byte file must live in a cluster so that block 0 is on the device.
  const h = await engineOnFaultyDevice(t, { volume: { unalignedDio: mode }, image: { features: 'noindexed-dirs,norefcount,noinline-data' } });
  // i_size ends inside block 0: a write past it must take the allocating path.
  const ino = await makeFile(h.vol, 'g', 300);
  const inode = await h.vol.iget(ino);
  t.notOk(inode.inline, 'file is extent-mapped');
  const block0 = await deviceOffsetOf(h.vol, ino, 0);
  const fh = await h.vol.open(ino, O_RDWR | O_DIRECT);
  const hold = h.dev.hold({ op: 'write', startByte: block0, endByte: block0 + 4096 });
  const a = { offset: 100, data: Buffer.alloc(100, 0x41) }; // unaligned overwrite inside i_size, bytes 100..199
  const pa = h.vol.write(ino, fh, a.offset, a.data);
  await hold.arrived(1);
  const fallback = { offset: 250, data: Buffer.alloc(6000, 0x43) }; // same block, disjoint bytes, crosses i_size
  const pb = h.vol.write(ino, fh, fallback.offset, fallback.data);
  // Either the fallback completes while A is held (no rule: it read block 0 before A landed), or it queues on the
  // gate (rule on). Waiting for one of the two, not for a number of event-loop turns, keeps this independent of
  // how fast the device's threads run.
  const outcome = await Promise.race([
    pb.then(() => 'completed' as const),
    until(() => h.vol.gate.stats().waiting > 0).then(() => 'queued' as const),
  ]);
  hold.release();
  await Promise.all([pa, pb]);
  const back = await h.vol.read(ino, fh, 0, 8192);
  await h.vol.release(ino, fh);
  await h.finish();
  return {
    a: back.subarray(a.offset, a.offset + a.data.length).equals(a.data),
    b: back.subarray(fallback.offset, fallback.offset + fallback.data.length).equals(fallback.data),
    bWaited: outcome === 'queued',
  };
}

t.test('fallback write beside an in-flight unaligned write, rule off: corruption', async (t) => {
  const r = await raceFallbackBesideUnaligned(t, 'unsafe');
  t.notOk(r.bWaited, 'the fallback write did not wait');
  t.ok(r.a, "the held write's bytes are there");
  t.notOk(r.b, "the fallback write's bytes in block 0 were lost: the held write put its stale block back");
});

for (const mode of ['inode', 'range'] as const) {
  t.test(`fallback write beside an in-flight unaligned write, rule on (${mode}): both survive`, async (t) => {
    const r = await raceFallbackBesideUnaligned(t, mode);
    t.ok(r.bWaited, 'the fallback write waited for the unaligned one');
    t.ok(r.a, 'unaligned overwrite intact');
    t.ok(r.b, 'fallback write intact');
  });
}

t.test('aligned direct writes never wait on the rule, even while an unaligned one is held', async (t) => {
  const h = await engineOnFaultyDevice(t, { volume: { unalignedDio: 'inode' } });
  const ino = await makeFile(h.vol, 'h', 65536);
  const block0 = await deviceOffsetOf(h.vol, ino, 0);
  const fh = await h.vol.open(ino, O_RDWR | O_DIRECT);
  const hold = h.dev.hold({ op: 'write', startByte: block0, endByte: block0 + 4096 });
  const pa = h.vol.write(ino, fh, A.offset, A.data);
  await hold.arrived(1);
  for (let i = 1; i < 8; i++) await h.vol.write(ino, fh, i * 4096, Buffer.alloc(4096, i));
  t.equal(h.vol.gate.stats().waits, 0, 'no aligned write waited');
  hold.release();
  await pa;
  await h.vol.release(ino, fh);
  await h.finish();
});

t.test('range mode: disjoint unaligned writes run in parallel', async (t) => {
  const h = await engineOnFaultyDevice(t, { volume: { unalignedDio: 'range' } });
  const ino = await makeFile(h.vol, 'r', 65536);
  const block0 = await deviceOffsetOf(h.vol, ino, 0);
  const fh = await h.vol.open(ino, O_RDWR | O_DIRECT);
  const hold = h.dev.hold({ op: 'write', startByte: block0, endByte: block0 + 4096 });
  const pa = h.vol.write(ino, fh, A.offset, A.data);
  await hold.arrived(1);
  // Block 5 shares nothing with block 0: it must complete while A is still held.
  await h.vol.write(ino, fh, 5 * 4096 + 10, Buffer.alloc(100, 0x55));
  t.equal(h.vol.gate.stats().waits, 0, 'the disjoint unaligned write did not wait');
  t.equal(h.vol.gate.stats().inFlight, 1, 'A is still in flight');
  hold.release();
  await pa;
  const back = await h.vol.read(ino, fh, 5 * 4096 + 10, 100);
  t.ok(back.equals(Buffer.alloc(100, 0x55)), 'data of the disjoint write intact');
  await h.vol.release(ino, fh);
  await h.finish();
});
