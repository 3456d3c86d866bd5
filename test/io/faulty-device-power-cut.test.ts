/**
 * FaultyDevice power cut: unflushed writes are lost and flushed ones kept,
 * in-flight requests fail, all I/O fails until reopen(); torn persistence is
 * seeded; a rule cuts after N writes; a bounded overlay destages early.
 *
 * Invariants: (1) every write acknowledged before a completed flush survives;
 * (2) with keepFraction 0, the inner device after a cut equals the state at the
 * last completed flush (plus destaged writes); (3) after a cut no request
 * succeeds until reopen().
 */
import t from 'tap';
import { FaultyDevice } from '../../io/faultyDevice';
import { MemoryDevice } from '../../io/memoryDevice';
import { Prng, seedFromEnv } from '../../io/prng';
import { errnoOf, pattern, track } from './helpers';

const SIZE = 1024 * 1024;

function setup(options: ConstructorParameters<typeof FaultyDevice>[1] = {}) {
  const mem = new MemoryDevice(SIZE);
  const dev = new FaultyDevice(mem, { closeInner: false, ...options });
  return { mem, dev };
}

t.test('a power cut drops exactly the unflushed writes and keeps the flushed ones', async (t) => {
  const { mem, dev } = setup();
  const A = pattern(4096, 1);
  const B = pattern(4096, 2);
  const C = pattern(100, 3);
  await dev.write(A, 0);
  await dev.flush();
  await dev.write(B, 8192);
  await dev.write(C, 50); // overwrites part of the flushed A
  t.same(await dev.read(8192, 4096), B, 'the device reads its unflushed writes');
  t.same(await dev.read(50, 100), C);
  t.same(mem.peek(8192, 4096), Buffer.alloc(4096), 'unflushed data is not on the media yet');
  t.same(dev.faultStats().unflushedWrites, 2);
  const report = await dev.powerCut();
  t.same(report, { unflushedWrites: 2, unflushedBytes: 4196, inFlightWrites: 0, keptPieces: 0, keptBytes: 0 });
  t.same(mem.peek(0, 4096), A, 'the flushed write survived whole (the unflushed overwrite is gone)');
  t.same(mem.peek(8192, 4096), Buffer.alloc(4096), 'the unflushed write is gone');
  t.equal(dev.isPoweredOff, true);
  t.equal(await errnoOf(dev.read(0, 1)), 'EIO', 'reads fail after the cut');
  t.equal(await errnoOf(dev.write(Buffer.alloc(1), 0)), 'EIO', 'writes fail after the cut');
  t.equal(await errnoOf(dev.flush()), 'EIO', 'flushes fail after the cut');
  dev.reopen();
  t.same(await dev.read(0, 4096), A, 'after reopen() the device shows what survived');
  await dev.write(B, 8192);
  await dev.flush();
  t.same(mem.peek(8192, 4096), B, 'and works normally');
});

t.test('requests in flight at the cut fail with EIO and never land', async (t) => {
  const { mem, dev } = setup();
  const hold = dev.hold({ op: 'write' });
  const held = track(dev.write(pattern(512, 4), 0));
  const delayedRead = track((dev.delay({ op: 'read' }, 10_000), dev.read(0, 512)));
  await hold.arrived();
  const report = await dev.powerCut();
  t.equal(report.inFlightWrites, 1);
  t.equal(await errnoOf(held.promise), 'EIO');
  t.equal(await errnoOf(delayedRead.promise), 'EIO', 'a delayed read is woken by the cut, not by its timer');
  hold.release(); // too late: nothing happens
  t.same(mem.peek(0, 512), Buffer.alloc(512));
  t.equal(dev.inFlight, 0);
});

t.test('a flush in progress when the power goes fails', async (t) => {
  const { dev } = setup();
  await dev.write(pattern(512, 5), 0);
  const hold = dev.hold({ op: 'flush' });
  const flushing = dev.flush();
  await hold.arrived();
  void dev.powerCut();
  t.equal(await errnoOf(flushing), 'EIO');
});

t.test('torn persistence: a seeded fraction of unflushed sectors survives, the same ones for the same seed', async (t) => {
  const seed = seedFromEnv(99);
  t.comment(`seed=${seed}`);
  const run = async () => {
    const { mem, dev } = setup({ seed });
    const writes = Array.from({ length: 16 }, (_, i) => ({ offset: i * 3000 + 7, data: pattern(5000, i) }));
    for (const w of writes) await dev.write(w.data, w.offset);
    const report = await dev.powerCut({ keepFraction: 0.5 });
    return { image: mem.peek(0, 64 * 1024), report, writes };
  };
  const a = await run();
  const b = await run();
  t.same(a.report, b.report, 'same seed, same report');
  t.ok(a.image.equals(b.image), 'same seed, same surviving image');
  t.ok(a.report.keptPieces > 0 && a.report.keptBytes < 16 * 5000, `some pieces kept (${a.report.keptPieces})`);
  // Every surviving 512-byte sector piece holds zeros or the bytes of one of the writes covering it.
  const bad: number[] = [];
  for (let sector = 0; sector < 64 * 1024; sector += 512) {
    const got = a.image.subarray(sector, sector + 512);
    for (let i = 0; i < 512; i++) {
      const at = sector + i;
      const candidates = [0, ...a.writes.filter((w) => at >= w.offset && at < w.offset + w.data.length).map((w) => w.data[at - w.offset])];
      if (!candidates.includes(got[i])) {
        bad.push(at);
        break;
      }
    }
  }
  t.same(bad, [], 'no byte comes from anywhere but a write that covered it');
});

t.test('powerCut afterWrites: the power goes right after the N-th acknowledged write', async (t) => {
  const { mem, dev } = setup({ powerCut: { afterWrites: 3 } });
  await dev.write(Buffer.from('one'), 0);
  await dev.write(Buffer.from('two'), 10);
  await dev.flush();
  await dev.write(Buffer.from('three'), 20); // acknowledged, then the lights go out
  t.equal(dev.isPoweredOff, true);
  t.equal(await errnoOf(dev.write(Buffer.from('four'), 30)), 'EIO');
  const report = await dev.lastPowerCut!;
  t.equal(report.unflushedWrites, 1);
  t.equal(mem.peek(0, 3).toString(), 'one');
  t.equal(mem.peek(10, 3).toString(), 'two');
  t.same(mem.peek(20, 5), Buffer.alloc(5), 'the third write was never flushed');
  dev.reopen();
  await dev.write(Buffer.from('five'), 40);
  t.equal(dev.isPoweredOff, false, 'the rule fired once');
});

t.test('a bounded overlay destages its oldest writes; a cut drops only what is still cached', async (t) => {
  const { mem, dev } = setup({ overlayWritesMax: 4 });
  for (let i = 0; i < 10; i++) await dev.write(pattern(100, i), i * 1000);
  await new Promise((resolve) => setTimeout(resolve, 10)); // let the background destage run
  const cached = dev.faultStats().unflushedWrites;
  t.ok(cached <= 4, `at most 4 writes stay cached (${cached})`);
  for (let i = 0; i < 10; i++) t.same(await dev.read(i * 1000, 100), pattern(100, i), `write ${i} reads back`);
  const report = await dev.powerCut();
  const survived = Array.from({ length: 10 }, (_, i) => mem.peek(i * 1000, 100).equals(pattern(100, i)));
  t.equal(survived.filter(Boolean).length, 10 - report.unflushedWrites);
  t.same(survived.indexOf(false), 10 - report.unflushedWrites, 'the oldest survived, the newest were lost');
});

t.test('writethrough mode puts writes on the inner device at once', async (t) => {
  const { mem, dev } = setup({ cache: 'writethrough' });
  await dev.write(Buffer.from('direct'), 0);
  t.equal(mem.peek(0, 6).toString(), 'direct');
  const report = await dev.powerCut();
  t.equal(report.unflushedWrites, 0);
  t.equal(mem.peek(0, 6).toString(), 'direct');
});

t.test('randomized: reads always see the latest data; after a cut the media equals the last flush', async (t) => {
  const seed = seedFromEnv(4242);
  t.comment(`seed=${seed}`);
  const prng = new Prng(seed);
  for (let round = 0; round < 20; round++) {
    const { mem, dev } = setup({ seed: seed + round, latency: { minMs: 0, maxMs: 2 } });
    const latest = Buffer.alloc(64 * 1024);
    let durable = Buffer.alloc(64 * 1024);
    const steps = prng.int(1, 60);
    for (let step = 0; step < steps; step++) {
      const choice = prng.int(0, 9);
      if (choice < 6) {
        const length = prng.int(1, 3000);
        const offset = prng.int(0, latest.length - length);
        const data = pattern(length, round * 1000 + step);
        await dev.write(data, offset);
        data.copy(latest, offset);
      } else if (choice < 8) {
        const length = prng.int(1, 5000);
        const offset = prng.int(0, latest.length - length);
        const got = await dev.read(offset, length);
        if (!got.equals(latest.subarray(offset, offset + length))) {
          t.fail(`round ${round} step ${step}: read [${offset}, ${offset + length}) differs from the latest writes`);
          return;
        }
      } else {
        await dev.flush();
        durable = Buffer.from(latest);
      }
    }
    await dev.powerCut();
    if (!mem.peek(0, 64 * 1024).equals(durable)) {
      t.fail(`round ${round}: media after the cut differs from the state at the last flush`);
      return;
    }
  }
  t.pass('20 rounds: reads matched, every cut left exactly the flushed state');
});

t.test('randomized, concurrent: writes acknowledged before a completed flush began survive a cut', async (t) => {
  const seed = seedFromEnv(777);
  t.comment(`seed=${seed}`);
  const prng = new Prng(seed);
  const SLOT = 1024;
  for (let round = 0; round < 10; round++) {
    const { mem, dev } = setup({ seed: seed + round, latency: { minMs: 0, maxMs: 5 } });
    const ackedAt = new Map<number, number>(); // slot -> ack order
    let ackClock = 0;
    const mustSurvive = new Set<number>();
    const pending: Promise<unknown>[] = [];
    const slots = prng.shuffle(Array.from({ length: 200 }, (_, i) => i));
    const cutAfterOps = prng.int(20, 150);
    for (let op = 0; op < cutAfterOps; op++) {
      if (prng.chance(0.15)) {
        const ackedBefore = [...ackedAt.keys()];
        pending.push(dev.flush().then(() => ackedBefore.forEach((s) => mustSurvive.add(s)), () => undefined));
      } else {
        const slot = slots.pop()!;
        pending.push(
          dev.write(pattern(SLOT, slot + 1), slot * SLOT).then(() => ackedAt.set(slot, ++ackClock), () => undefined),
        );
      }
      if (prng.chance(0.3)) await new Promise((resolve) => setTimeout(resolve, prng.int(0, 3)));
    }
    await dev.powerCut();
    await Promise.all(pending);
    for (let slot = 0; slot < 200; slot++) {
      const onMedia = mem.peek(slot * SLOT, SLOT).equals(pattern(SLOT, slot + 1));
      if (mustSurvive.has(slot) && !onMedia) {
        t.fail(`round ${round}: slot ${slot} was flushed but is not on the media`);
        return;
      }
      if (onMedia && !ackedAt.has(slot)) {
        t.fail(`round ${round}: slot ${slot} is on the media but its write was never acknowledged`);
        return;
      }
    }
  }
  t.pass('10 rounds: flushed writes survived, unacknowledged writes never landed');
});
