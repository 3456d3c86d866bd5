/**
 * The poll reader of FuseChannel (channel.ts) driven by a scripted stand-in
 * for the addon, so every read result can be chosen: what a batch takes per
 * wake-up, which messages are copied and which keep the read buffer, which
 * errors are read again and which end the session (and how), and that the
 * watch is stopped before the descriptor is closed.
 */
import t from 'tap';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import { COPY_LIMIT_BYTES, FuseChannel, POLL_BATCH } from '../../fs/fuse/lowlevel/channel';
import type { DevPoll } from '../../fs/fuse/lowlevel/devPoll';

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

  constructor(private readonly steps: Step[]) {}

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

  setNonblocking(): number {
    this.log.push('nonblocking');
    return 0;
  }

  /** The event loop seeing the descriptor readable. */
  fire(status = 0): void {
    this.onReadable!(status);
  }
}

function channel(poll: ScriptedPoll) {
  const fd = fs.openSync('/dev/null', 'r');
  const got: Buffer[] = [];
  const stopped: (NodeJS.ErrnoException | undefined)[] = [];
  const ch = new FuseChannel(fd, {
    poll, readers: 2, bufferBytes: BUFFER_BYTES,
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
