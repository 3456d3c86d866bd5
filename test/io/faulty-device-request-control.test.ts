/**
 * FaultyDevice per-request control: holds complete out of submission order,
 * seeded latency reorders completions deterministically, EIO injection once /
 * n times / always on a byte range, events and in-flight counters.
 */
import t from 'tap';
import { DeviceError } from '../../io/device';
import { FaultyDevice, FaultyRequest } from '../../io/faultyDevice';
import { MemoryDevice } from '../../io/memoryDevice';
import { seedFromEnv } from '../../io/prng';
import { errnoOf, pattern, settle, track } from './helpers';

const MiB = 1024 * 1024;

function setup(seed = 1) {
  const mem = new MemoryDevice(4 * MiB);
  const dev = new FaultyDevice(mem, { seed, closeInner: false });
  const completed: number[] = [];
  dev.onComplete((req) => completed.push(req.id));
  return { mem, dev, completed };
}

t.test('a held write completes after a later one; release() lets it finish', async (t) => {
  const { dev, completed } = setup();
  const hold = dev.hold({ op: 'write', startByte: 0, endByte: 4096 });
  const first = track(dev.write(pattern(4096, 1), 0));
  const second = dev.write(pattern(4096, 2), 8192);
  const [caught] = await hold.arrived();
  t.same(caught, { id: 1, op: 'write', offset: 0, length: 4096 });
  await second;
  t.same(completed, [2], 'the later write completed first');
  t.equal(first.done, false, 'the held write is still in flight');
  t.equal(dev.inFlight, 1);
  hold.release();
  await first.promise;
  t.same(completed, [2, 1]);
  t.same(await dev.read(0, 4096), pattern(4096, 1));
});

t.test('of two overlapping writes the one that completes last wins', async (t) => {
  const { dev } = setup();
  const hold = dev.hold({ op: 'write' });
  const older = dev.write(Buffer.from('AAAA'), 100);
  await hold.arrived();
  await dev.write(Buffer.from('BBBB'), 100);
  t.equal((await dev.read(100, 4)).toString(), 'BBBB');
  hold.release();
  await older;
  t.equal((await dev.read(100, 4)).toString(), 'AAAA', 'the held, older write landed last');
});

t.test('fail() on a hold fails the caught requests and leaves the data alone', async (t) => {
  const { dev } = setup();
  const hold = dev.hold({ op: 'write', startByte: 512, endByte: 1024 }, { times: 2 });
  const a = dev.write(Buffer.from('a'), 600);
  const b = dev.write(Buffer.from('b'), 1000);
  const c = dev.write(Buffer.from('c'), 1024); // outside the range: not caught
  await c;
  t.equal((await hold.arrived(2)).length, 2);
  hold.fail('EIO');
  t.equal(await errnoOf(a), 'EIO');
  t.equal(await errnoOf(b), 'EIO');
  t.same(await dev.read(600, 1), Buffer.alloc(1));
  await dev.write(Buffer.from('d'), 600);
  t.equal((await dev.read(600, 1)).toString(), 'd', 'a settled hold catches nothing more');
  t.equal(dev.faultStats().injectedFailures, 2);
});

t.test('seeded random latency reorders completions, the same way for the same seed', async (t) => {
  const seed = seedFromEnv(42);
  t.comment(`seed=${seed}`);
  const run = async (s: number) => {
    const mem = new MemoryDevice(4 * MiB);
    const dev = new FaultyDevice(mem, { seed: s, latency: { minMs: 1, maxMs: 20 } });
    const order: number[] = [];
    dev.onComplete((req) => order.push(req.id));
    await Promise.all(Array.from({ length: 24 }, (_, i) => dev.write(pattern(512, i), i * 4096)));
    t.equal(dev.maxInFlight, 24, 'all were in flight together');
    return order;
  };
  const a = await run(seed);
  const b = await run(seed);
  const submitted = Array.from({ length: 24 }, (_, i) => i + 1);
  t.same(a, b, 'same seed, same completion order');
  t.not(a.join(','), submitted.join(','), `completion order ${a.join(',')} differs from submission order`);
  t.same([...a].sort((x, y) => x - y), submitted, 'every request completed once');
});

t.test('EIO injection: once, n times and always, only on the matching op and byte range', async (t) => {
  const { dev } = setup();
  await dev.write(pattern(8192, 5), 1 * MiB);
  const once = dev.fail({ op: 'read', startByte: 1 * MiB, endByte: 1 * MiB + 4096 }, { times: 1 });
  t.equal(await errnoOf(dev.read(1 * MiB + 4000, 200)), 'EIO', 'a read touching the range fails');
  t.same(await dev.read(1 * MiB + 4000, 200), pattern(8192, 5).subarray(4000, 4200), 'once: the retry works');
  t.equal(once.hits, 1);
  t.same(await dev.read(1 * MiB + 4096, 100), pattern(8192, 5).subarray(4096, 4196), 'just past the range: fine');

  dev.fail({ op: 'write' }, { times: 3, errno: 'ENOSPC' });
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await errnoOf(dev.write(Buffer.alloc(1), i)));
  t.same(results, ['ENOSPC', 'ENOSPC', 'ENOSPC', 'resolved', 'resolved'], 'three times, then never again');

  const always = dev.fail({ op: ['read', 'write'], startByte: 2 * MiB });
  for (let i = 0; i < 4; i++) t.equal(await errnoOf(dev.read(3 * MiB, 1)), 'EIO');
  t.equal(await errnoOf(dev.write(Buffer.alloc(1), 2 * MiB)), 'EIO');
  t.equal(await errnoOf(dev.flush()), 'resolved', 'a ranged rule never matches a flush');
  always.remove();
  t.equal(await errnoOf(dev.read(3 * MiB, 1)), 'resolved', 'a removed rule stops failing');

  dev.fail({ op: 'flush' }, { times: 1 });
  const err = await dev.flush().catch((e: DeviceError) => e);
  t.match(String(err), /EIO: injected EIO on flush #\d+/);
});

t.test('fixed delays apply to matching requests only', async (t) => {
  const { dev } = setup();
  dev.delay({ op: 'read' }, 30);
  const t0 = Date.now();
  await dev.write(Buffer.alloc(1), 0);
  const writeMs = Date.now() - t0;
  await dev.read(0, 1);
  const readMs = Date.now() - t0 - writeMs;
  t.ok(writeMs < 25, `write not delayed (${writeMs}ms)`);
  t.ok(readMs >= 29, `read delayed (${readMs}ms)`);
  t.equal(dev.faultStats().delayed, 1);
});

t.test('submit and complete events see every request; in-flight count and maximum', async (t) => {
  const { dev } = setup();
  const submitted: FaultyRequest[] = [];
  const inFlightAtSubmit: number[] = [];
  dev.onSubmit((req) => {
    submitted.push(req);
    inFlightAtSubmit.push(dev.inFlight);
  });
  const errors: Array<string | undefined> = [];
  const off = dev.onComplete((_req, error) => errors.push(error?.errno));
  const hold = dev.hold({}, { times: Infinity });
  const all = Promise.allSettled([
    dev.write(Buffer.alloc(10), 0),
    dev.read(100, 20),
    dev.flush(),
    dev.write(Buffer.alloc(10), 200),
  ]);
  await hold.arrived(4);
  t.equal(dev.inFlight, 4);
  t.equal(dev.maxInFlight, 4);
  t.same(
    submitted.map((r) => [r.id, r.op, r.offset, r.length]),
    [
      [1, 'write', 0, 10],
      [2, 'read', 100, 20],
      [3, 'flush', 0, 0],
      [4, 'write', 200, 10],
    ],
  );
  t.same(inFlightAtSubmit, [1, 2, 3, 4], 'a request is counted in before its submit event');
  hold.release();
  await all;
  await settle();
  t.equal(dev.inFlight, 0);
  t.same(errors, [undefined, undefined, undefined, undefined]);
  off();
  await dev.write(Buffer.alloc(1), 0);
  t.equal(errors.length, 4, 'an unsubscribed listener hears nothing');
  await dev.idle();
});
