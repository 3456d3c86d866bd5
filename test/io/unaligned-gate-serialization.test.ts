/**
 * The unaligned direct-write gate in its three modes: 'inode' admits one
 * unaligned write per inode at a time, 'range' only serializes writes whose
 * read-modify-write blocks meet, FIFO without starvation; aligned writes never
 * wait; an exit on error releases; 'unsafe' never waits; the waiter bound.
 */
import t from 'tap';
import { Prng, seedFromEnv } from '../../io/prng';
import { GATE_WAITERS_PER_INODE_MAX, GateTicket, isUnaligned, UnalignedGate, UnalignedGateError } from '../../io/unalignedGate';
import { settle, track } from './helpers';

const BS = 4096;

t.test('isUnaligned: any partial block at either end', async (t) => {
  t.equal(isUnaligned(0, 4096, BS), false);
  t.equal(isUnaligned(8192, 3 * 4096, BS), false);
  t.equal(isUnaligned(0, 0, BS), false, 'nothing to write, nothing to read in');
  t.equal(isUnaligned(512, 4096, BS), true, '512-aligned is not block-aligned');
  t.equal(isUnaligned(0, 4095, BS), true);
  t.equal(isUnaligned(100, 200, BS), true);
  t.equal(isUnaligned(512, 512, 512), false, 'block size 512');
});

t.test("'inode': a second unaligned write waits for the first, even when disjoint", async (t) => {
  const gate = new UnalignedGate({ mode: 'inode' });
  const first = await gate.enter(7, 100, 200, BS);
  t.equal(first.waited, false);
  const second = track(gate.enter(7, 1_000_000, 1_000_100, BS));
  await settle();
  t.equal(second.done, false, 'the second waits');
  t.equal(gate.waitingOn(7), 1);
  const otherInode = await gate.enter(8, 100, 200, BS);
  t.equal(otherInode.waited, false, 'another inode is not affected');
  first.exit();
  const ticket = await second.promise;
  t.equal(ticket.waited, true);
  t.equal(gate.inFlightOn(7), 1);
  ticket.exit();
  otherInode.exit();
  t.equal(gate.inFlightOn(7), 0);
  const s = gate.stats();
  t.equal(s.entered, 3);
  t.equal(s.waits, 1);
  t.equal(s.inFlight, 0);
  t.equal(s.waiting, 0);
  t.ok(s.maxWaitMs >= 0 && s.totalWaitMs >= s.maxWaitMs);
});

for (const mode of ['inode', 'range', 'unsafe'] as const) {
  t.test(`'${mode}': aligned writes never wait and are not counted`, async (t) => {
    const gate = new UnalignedGate({ mode });
    const unaligned = await gate.enter(1, 100, 5000, BS);
    const aligned = await gate.enter(1, 0, 8192, BS); // covers the unaligned write's blocks
    t.equal(aligned.waited, false);
    t.equal(gate.inFlightOn(1), 1, 'only the unaligned write is counted');
    aligned.exit();
    aligned.exit();
    t.equal(gate.inFlightOn(1), 1, 'exiting an aligned ticket changes nothing');
    unaligned.exit();
    t.equal(gate.stats().entered, 1);
  });
}

t.test("'range': disjoint unaligned writes run in parallel, ones sharing a block wait", async (t) => {
  const gate = new UnalignedGate({ mode: 'range' });
  const a = await gate.enter(1, 100, 200, BS); // block 0
  const b = await gate.enter(1, 4096 + 10, 4096 + 20, BS); // block 1
  const c = await gate.enter(1, 10 * BS + 1, 12 * BS - 1, BS); // blocks 10, 11
  t.equal(gate.inFlightOn(1), 3, 'disjoint blocks: all three in flight');
  t.equal(gate.stats().waits, 0);
  const sameBlock = track(gate.enter(1, 300, 400, BS)); // block 0, disjoint bytes: the classic race
  const coversEdge = track(gate.enter(1, 11 * BS, 12 * BS + 5, BS)); // writes block 11 whole, c rewrites it
  await settle();
  t.equal(sameBlock.done, false, 'same block, disjoint bytes: waits');
  t.equal(coversEdge.done, false, "covering another write's edge block: waits");
  a.exit();
  await settle();
  t.equal(sameBlock.done, true, 'admitted when the write sharing its block completes');
  t.equal(coversEdge.done, false);
  c.exit();
  await settle();
  t.equal(coversEdge.done, true);
  b.exit();
  sameBlock.value!.exit();
  coversEdge.value!.exit();
  t.equal(gate.stats().inFlight, 0);
  t.equal(gate.stats().waits, 2);
});

t.test("'range': an aligned middle does not conflict, only edge blocks do", async (t) => {
  const gate = new UnalignedGate({ mode: 'range' });
  // Edges: block 0 and block 9; blocks 1..8 written whole.
  const wide = await gate.enter(1, 100, 9 * BS + 100, BS);
  // Another unaligned write whose own edges are block 4 and 5, inside wide's aligned middle.
  const inside = track(gate.enter(1, 4 * BS + 1, 5 * BS + 1, BS));
  await settle();
  t.equal(inside.done, false, "its edge blocks lie in wide's range: wide writes them whole while it patches them");
  wide.exit();
  (await inside.promise).exit();
  const x = await gate.enter(1, 100, 200, BS);
  const y = await gate.enter(1, BS, 2 * BS + 7, BS); // block 1 whole, block 2 partial: no shared block with x
  t.equal(y.waited, false, 'adjacent blocks do not conflict');
  x.exit();
  y.exit();
});

t.test("FIFO: a newcomer never overtakes an earlier waiter it conflicts with (no starvation)", async (t) => {
  const gate = new UnalignedGate({ mode: 'range' });
  const t1 = await gate.enter(1, 100, 200, BS); // block 0
  const w2 = track(gate.enter(1, 300, BS + 300, BS)); // blocks 0,1: waits for t1
  await settle();
  const w3 = track(gate.enter(1, BS + 500, BS + 600, BS)); // block 1: free, but w2 queued first
  const w4 = track(gate.enter(1, 20 * BS + 1, 20 * BS + 2, BS)); // unrelated: goes at once
  await settle();
  t.equal(w2.done, false);
  t.equal(w3.done, false, 'w3 queues behind w2, although nothing in flight blocks it');
  t.equal(w4.done, true, 'a waiter that conflicts with nobody is not held up');
  t1.exit();
  await settle();
  t.equal(w2.done, true);
  t.equal(w3.done, false, 'w3 now waits for w2 in flight');
  w2.value!.exit();
  await settle();
  t.equal(w3.done, true);
  w3.value!.exit();
  w4.value!.exit();
});

t.test("'inode': waiters are admitted strictly in arrival order", async (t) => {
  const gate = new UnalignedGate({ mode: 'inode' });
  const first = await gate.enter(1, 1, 2, BS);
  const order: number[] = [];
  const waiters = Array.from({ length: 6 }, (_, i) =>
    gate.enter(1, i * 3 * BS + 1, i * 3 * BS + 2, BS).then((ticket) => {
      order.push(i);
      return ticket;
    }),
  );
  await settle();
  first.exit();
  for (let i = 0; i < 6; i++) {
    const ticket = await waiters[i]!;
    await settle();
    t.same(order, Array.from({ length: i + 1 }, (_, k) => k), `only waiter ${i} is in flight`);
    t.equal(gate.inFlightOn(1), 1);
    ticket.exit();
  }
});

t.test('exit on error releases the waiters; exit() is idempotent', async (t) => {
  const gate = new UnalignedGate({ mode: 'inode' });
  const failing = gate.run(1, 10, 20, BS, async () => {
    await settle();
    throw new Error('EIO from the device');
  });
  const next = track(gate.enter(1, 30, 40, BS));
  await t.rejects(failing, /EIO from the device/);
  const ticket = await next.promise;
  t.equal(ticket.waited, true, 'admitted after the failed write counted itself out');
  ticket.exit();
  ticket.exit();
  t.equal(gate.stats().inFlight, 0, 'a second exit() counts nothing out');
  const again = await gate.enter(1, 30, 40, BS);
  t.equal(again.waited, false);
  again.exit();
});

t.test("'unsafe' never waits, even for writes sharing a block", async (t) => {
  const gate = new UnalignedGate({ mode: 'unsafe' });
  const tickets: GateTicket[] = [];
  for (let i = 0; i < 5; i++) tickets.push(await gate.enter(1, i * 10, i * 10 + 5, BS));
  t.ok(tickets.every((x) => !x.waited));
  t.equal(gate.inFlightOn(1), 5, 'all overlap in flight: the race is open on purpose');
  t.equal(gate.stats().maxInFlight, 5);
  for (const x of tickets) x.exit();
});

t.test('the waiter bound is enforced with a clear EAGAIN error', async (t) => {
  t.equal(GATE_WAITERS_PER_INODE_MAX, 1024);
  const gate = new UnalignedGate({ mode: 'inode', waitersPerInodeMax: 2 });
  const first = await gate.enter(5, 1, 2, BS);
  const w1 = gate.enter(5, 1, 2, BS);
  const w2 = gate.enter(5, 1, 2, BS);
  const err = await gate.enter(5, 1, 2, BS).catch((e: unknown) => e);
  t.type(err, UnalignedGateError);
  t.equal((err as UnalignedGateError).errno, 'EAGAIN');
  t.match(String(err), /inode 5: 2 unaligned direct writes already wait \(GATE_WAITERS_PER_INODE_MAX 2\)/);
  first.exit();
  (await w1).exit();
  (await w2).exit();
  t.throws(() => new UnalignedGate({ mode: 'fast' as never }), /inode, range or unsafe/);
  await t.rejects(gate.enter(5, 10, 5, BS), /bad byte range/);
  await t.rejects(gate.enter(5, 0, 5, 1000), /power of two/);
});

t.test('randomized: in range mode no two conflicting writes are ever in flight together, and all finish', async (t) => {
  const seed = seedFromEnv(31337);
  t.comment(`seed=${seed}`);
  const prng = new Prng(seed);
  for (const mode of ['range', 'inode'] as const) {
    const gate = new UnalignedGate({ mode });
    const inFlight = new Map<number, { blocks: Set<number>; edges: Set<number> }>();
    let violations = 0;
    let maxParallel = 0;
    const writes = Array.from({ length: 300 }, (_, id) => {
      const start = prng.int(0, 64 * BS);
      const length = prng.int(1, 3 * BS);
      const delay = prng.int(0, 5);
      return { id, start, end: start + length, delay, after: prng.int(0, 3) };
    });
    const blocksOf = (s: number, e: number) => {
      const set = new Set<number>();
      for (let b = Math.floor(s / BS); b <= Math.floor((e - 1) / BS); b++) set.add(b);
      return set;
    };
    const edgesOf = (s: number, e: number) => {
      const set = new Set<number>();
      if (s % BS !== 0 || e - Math.floor(s / BS) * BS < BS) set.add(Math.floor(s / BS));
      if (e % BS !== 0 || s > Math.floor((e - 1) / BS) * BS) set.add(Math.floor((e - 1) / BS));
      return set;
    };
    await Promise.all(
      writes.map(async (w) => {
        for (let i = 0; i < w.after; i++) await settle();
        if (!isUnaligned(w.start, w.end - w.start, BS)) return;
        await gate.run(1, w.start, w.end, BS, async () => {
          const mine = { blocks: blocksOf(w.start, w.end), edges: edgesOf(w.start, w.end) };
          for (const other of inFlight.values()) {
            const meet = [...mine.edges].some((b) => other.blocks.has(b)) || [...other.edges].some((b) => mine.blocks.has(b));
            if (mode === 'inode' || meet) violations++;
          }
          inFlight.set(w.id, mine);
          maxParallel = Math.max(maxParallel, inFlight.size);
          await new Promise((resolve) => setTimeout(resolve, w.delay));
          inFlight.delete(w.id);
        });
      }),
    );
    t.equal(violations, 0, `${mode}: no conflicting writes overlapped in flight`);
    t.equal(gate.stats().inFlight, 0);
    t.equal(gate.stats().waiting, 0);
    if (mode === 'range') t.ok(maxParallel > 1, `range: disjoint writes ran in parallel (max ${maxParallel})`);
    else t.equal(maxParallel, 1, 'inode: one at a time');
  }
});
