/**
 * The poll reader of FuseChannel (channel.ts) driven by a scripted stand-in
 * for the addon, so every read result can be chosen: what a batch takes per
 * wake-up, which messages are copied and which keep the read buffer, which
 * errors are read again and which end the session (and how), and that the
 * watch is stopped before the descriptor is closed. And the spin (spin.ts):
 * once nothing is in flight the reader reads the empty queue for its budget
 * instead of sleeping, takes what arrives meanwhile, never spins while a
 * request is being served, pauses after empty spins and resumes when requests
 * come back to back.
 */
import t from 'tap';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import { COPY_LIMIT_BYTES, FuseChannel, MESSAGE_SLAB_BYTES, POLL_BATCH } from '../../fs/fuse/lowlevel/channel';
import type { DevPoll } from '../../fs/fuse/lowlevel/devPoll';
import { MISSES_TO_PAUSE, SpinPolicy } from '../../fs/fuse/lowlevel/spin';

const { EAGAIN, EINTR, ENOENT, ENODEV, EIO } = constants.errno;
const BUFFER_BYTES = 256 * 1024;

/** A read result: a message of that many bytes (filled with its index), or -errno. */
type Step = number;

class ScriptedPoll implements DevPoll {
  readonly log: string[] = [];
  readonly buffers: Buffer[] = [];
  onReadable: ((status: number) => void) | undefined;
  private handle = {};
  private n = 0;

  constructor(readonly steps: Step[]) {}

  watch(_fd: number, onReadable: (status: number) => void): unknown {
    this.log.push('watch');
    this.onReadable = onReadable;
    return this.handle;
  }

  unwatch(handle: unknown): void {
    this.log.push(handle === this.handle ? 'unwatch' : 'unwatch(wrong handle)');
  }

  readInto(_fd: number, buf: Buffer): number {
    this.buffers.push(buf);
    const step = this.steps.shift() ?? -EAGAIN;
    if (step > 0) buf.fill(++this.n & 0xff, 0, step);
    return step;
  }

  /** What spins find: a message size or -errno each, -EAGAIN (the budget ran out) when the list is empty. */
  readonly spinSteps: Step[] = [];

  spinRead(_fd: number, buf: Buffer, budgetNs: number): number {
    this.log.push(`spin ${budgetNs}`);
    this.buffers.push(buf);
    const step = this.spinSteps.shift() ?? -EAGAIN;
    if (step > 0) buf.fill(++this.n & 0xff, 0, step);
    return step;
  }

  setNonblocking(): number {
    this.log.push('nonblocking');
    return 0;
  }

  /** The event loop seeing the descriptor readable. */
  fire(status = 0): void {
    this.onReadable!(status);
  }
}

function channel(poll: ScriptedPoll, extra: { spin?: SpinPolicy; busy?: () => boolean } = {}) {
  // Read and write: replies go to /dev/null.
  const fd = fs.openSync('/dev/null', 'r+');
  const got: Buffer[] = [];
  const stopped: (NodeJS.ErrnoException | undefined)[] = [];
  const ch = new FuseChannel(fd, {
    poll, readers: 2, bufferBytes: BUFFER_BYTES, ...extra,
    onMessage: (msg) => got.push(msg),
    onStopped: (err) => stopped.push(err),
  });
  ch.start();
  return { ch, got, stopped };
}

t.test('a wake-up takes what is queued, at most POLL_BATCH, up to EAGAIN', async (t) => {
  const poll = new ScriptedPoll([...Array.from({ length: POLL_BATCH + 10 }, () => 100)]);
  const { ch, got, stopped } = channel(poll);
  t.same(poll.log, ['nonblocking', 'watch'], 'the descriptor is made non-blocking, then watched');
  poll.fire();
  t.equal(got.length, POLL_BATCH, 'the first wake-up stops at the batch bound');
  poll.fire();
  t.equal(got.length, POLL_BATCH + 10, 'the next takes the rest and stops at EAGAIN');
  poll.fire();
  t.equal(got.length, POLL_BATCH + 10, 'an empty queue: nothing');
  t.equal(ch.counters.reads, POLL_BATCH + 10);
  t.same(stopped, [], 'the session goes on');
  ch.close();
  t.same(poll.log.slice(-1), ['unwatch'], 'close stops the watch first');
});

t.test('small messages are copied out; a large one keeps the read buffer, which is replaced', async (t) => {
  const poll = new ScriptedPoll([80, COPY_LIMIT_BYTES, COPY_LIMIT_BYTES + 1, 4096]);
  const { ch, got } = channel(poll);
  poll.fire();
  t.same(got.map((m) => m.length), [80, COPY_LIMIT_BYTES, COPY_LIMIT_BYTES + 1, 4096]);
  const [first, second, large, after] = poll.buffers;
  t.equal(first, second, 'copied messages leave the read buffer in place');
  t.not(got[0].buffer, first.buffer, 'a small message has bytes of its own');
  t.equal(got[2].buffer, large.buffer, 'the large message is the read buffer itself, no copy');
  t.not(after, large, 'and the next read goes to a fresh buffer');
  t.equal(after.length, BUFFER_BYTES, 'as big as the largest request');
  t.same([got[0][0], got[1][COPY_LIMIT_BYTES - 1], got[2][0], got[3][4095]], [1, 2, 3, 4], 'each message has its own bytes');
  t.equal(got[0].buffer, got[1].buffer, 'copied messages are carved from one slab');
  t.equal(got[1].byteOffset, got[0].byteOffset + 80, 'one after the other, 8-byte aligned');
  ch.close();
});

t.test('a full slab is left to its messages and a new one is carved', async (t) => {
  const size = 60 * 1024;
  const perSlab = Math.floor(MESSAGE_SLAB_BYTES / size);
  const poll = new ScriptedPoll(Array.from({ length: perSlab + 2 }, () => size));
  const { ch, got } = channel(poll);
  poll.fire();
  t.equal(got.length, perSlab + 2);
  t.equal(new Set(got.slice(0, perSlab).map((m) => m.buffer)).size, 1, `the first ${perSlab} share a slab`);
  t.not(got[perSlab].buffer, got[0].buffer, 'the next one is in a new slab');
  t.ok(got.every((m, i) => m.length === size && m[0] === ((i + 1) & 0xff) && m[size - 1] === ((i + 1) & 0xff)),
    'no message overwrote another');
  ch.close();
});

t.test('EINTR and ENOENT are read again; ENODEV ends the session cleanly', async (t) => {
  const poll = new ScriptedPoll([-EINTR, 100, -ENOENT, 100, -ENODEV, 100]);
  const { ch, got, stopped } = channel(poll);
  poll.fire();
  t.equal(got.length, 2, 'both messages around the retried reads arrive');
  t.same(stopped, [undefined], 'ENODEV: stopped, with no error');
  t.same(poll.log, ['nonblocking', 'watch', 'unwatch'], 'and the watch is stopped');
  t.ok(ch.ended, 'the channel reports the session ended');
  ch.close();
  t.same(poll.log, ['nonblocking', 'watch', 'unwatch'], 'close does not stop it twice');
});

t.test('a read error or a poll error ends the session with that error', async (t) => {
  const poll = new ScriptedPoll([100, -EIO]);
  const a = channel(poll);
  poll.fire();
  t.equal(a.got.length, 1);
  t.equal(a.stopped.length, 1);
  t.equal(a.stopped[0]?.code, 'EIO', 'the errno is named');
  poll.fire();
  t.equal(a.stopped.length, 1, 'reported once');
  a.ch.close();

  const poll2 = new ScriptedPoll([100]);
  const b = channel(poll2);
  poll2.fire(-9);
  t.equal(b.got.length, 0, 'nothing is read after a poll error');
  t.equal(b.stopped[0]?.code, 'EIO');
  t.match(b.stopped[0]?.message ?? '', /polling \/dev\/fuse failed/);
  b.ch.close();
});

/** Lets the scheduled spin (setImmediate) run. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

t.test('with nothing in flight the reader spins on the empty queue and takes what comes', async (t) => {
  const poll = new ScriptedPoll([100]);
  const spin = new SpinPolicy(50);
  const { ch, got } = channel(poll, { spin, busy: () => false });
  poll.fire();
  t.equal(got.length, 1, 'the queued request is taken at once');
  t.notOk(poll.log.some((l) => l.startsWith('spin')), 'no spin inside the wake-up itself');
  poll.spinSteps.push(200);
  await turn();
  t.same(poll.log.filter((l) => l.startsWith('spin')), ['spin 50000'], 'then one spin of the 50 us budget');
  t.same(got.map((m) => m.length), [100, 200], 'the request that came during the spin is taken');
  t.equal(ch.counters.reads, 2);
  await turn();
  t.same(poll.log.filter((l) => l.startsWith('spin')), ['spin 50000', 'spin 50000'], 'after it, the reader spins again');
  t.same(spin.counters, { spinHits: 1, spinMisses: 1, spinPauses: 0, spinResumes: 0 });
  await turn();
  t.equal(poll.log.filter((l) => l.startsWith('spin')).length, 2, 'an empty spin does not schedule another by itself');
  ch.reply(7, 0, [Buffer.alloc(8)]);
  await turn();
  t.equal(poll.log.filter((l) => l.startsWith('spin')).length, 3, 'a reply does: the client may send its next request now');
  ch.close();
});

t.test('no spin while a request is being served: its completion needs the event loop', async (t) => {
  const poll = new ScriptedPoll([100]);
  let busy = true;
  const { ch, got } = channel(poll, { spin: new SpinPolicy(50), busy: () => busy });
  poll.fire();
  await turn();
  t.equal(got.length, 1);
  t.notOk(poll.log.some((l) => l.startsWith('spin')), 'busy: the reader goes back to the event loop');
  busy = false;
  ch.reply(1, 0);
  await turn();
  t.ok(poll.log.includes('spin 50000'), 'the reply that ends the work arms the spin');
  ch.close();
});

t.test('empty spins pause spinning; requests back to back resume it', async (t) => {
  let now = 0n;
  const spin = new SpinPolicy(50, () => now);
  const poll = new ScriptedPoll([]);
  const { ch, got } = channel(poll, { spin, busy: () => false });
  const spins = () => poll.log.filter((l) => l.startsWith('spin')).length;
  for (let i = 0; i < MISSES_TO_PAUSE + 2; i++) {
    ch.reply(i, 0);
    await turn();
  }
  t.equal(spins(), MISSES_TO_PAUSE, `${MISSES_TO_PAUSE} empty spins, then none`);
  t.equal(spin.counters.spinPauses, 1);
  now += 1_000_000n; // a millisecond of quiet
  poll.steps.push(100);
  poll.fire();
  ch.reply(10, 0);
  await turn();
  t.equal(spins(), MISSES_TO_PAUSE, 'a request after a long quiet spell does not resume spinning');
  now += 20_000n; // the next one 20 us after the reader went idle
  poll.steps.push(100);
  poll.fire();
  t.equal(spin.counters.spinResumes, 1, 'one within the budget does');
  ch.reply(11, 0);
  await turn();
  t.equal(spins(), MISSES_TO_PAUSE + 1, 'and the reader spins again');
  t.equal(got.length, 2);
  ch.close();
});

t.test('a zero budget never spins', async (t) => {
  const poll = new ScriptedPoll([100]);
  const { ch } = channel(poll, { spin: new SpinPolicy(0), busy: () => false });
  poll.fire();
  ch.reply(1, 0);
  await turn();
  t.notOk(poll.log.some((l) => l.startsWith('spin')));
  t.throws(() => new SpinPolicy(1001), /expected an integer from 0 to 1000/);
  t.throws(() => new SpinPolicy(2.5), /expected an integer/);
  ch.close();
});

t.test('what a spin reads is handled as any read: an error there ends the session', async (t) => {
  const poll = new ScriptedPoll([]);
  const { ch, stopped } = channel(poll, { spin: new SpinPolicy(50), busy: () => false });
  poll.spinSteps.push(-ENODEV);
  ch.reply(1, 0);
  await turn();
  t.same(stopped, [undefined], 'ENODEV during a spin: the session ended cleanly');
  t.same(poll.log.slice(-1), ['unwatch']);
  ch.close();
});
