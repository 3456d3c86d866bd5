/**
 * The /dev/fuse descriptor of one session: requests in, replies and
 * notifications out. No protocol knowledge beyond the out header.
 *
 * Reading, two ways (`reader`):
 *
 * - 'poll' (the default where the addon is built, devPoll.ts): the
 *   descriptor is non-blocking and watched by the main thread's event loop;
 *   when the kernel queues requests the main thread reads them itself, up to
 *   POLL_BATCH per wake-up. A request costs one thread wake-up (the kernel
 *   waking our event loop), as in a single-threaded libfuse daemon, or none
 *   when it comes while the reader spins on the empty queue after answering
 *   everything (spin.ts).
 * - 'threads': read(2) blocks until the kernel has a request, so reads run
 *   in worker threads of their own (readerWorker.ts), `readers` of them, each
 *   with one read outstanding, posting each request to the main thread. Two
 *   wake-ups and a message-port hop per request: measured on 2 CPUs, a file
 *   create took 637 us this way and 433 us polled, 4 KiB random direct reads
 *   at queue depth 16 gave 27.7k IOPS against 55.8k.
 *
 * Not fs.read in either: that would hold libuv threadpool threads, which the
 * engine's device I/O needs; a pool filled with waiting reads deadlocks the
 * mount (the kernel waits for our reply, the reply waits for a device read,
 * the device read waits for a thread), and UV_THREADPOOL_SIZE cannot be
 * raised once anything (a test runner's import hooks, say) has used the pool.
 *
 * Buffers: every read gets a buffer big enough for the largest request
 * (max_write + headers). A message of up to COPY_LIMIT_BYTES is copied out
 * and the buffer is read into again at once; a bigger one (a large WRITE)
 * is handed on with its buffer, which the engine writes from without another
 * copy, and the reader takes a fresh one.
 *
 * Writing replies: one writev(2) of header + payload, synchronous. A reply
 * never waits for anything (the kernel copies it into the waiting request
 * and completes it), so this saves a threadpool round trip per request.
 * Notifications are different: invalidating an inode waits for page locks
 * that a request we are still serving may hold, so they go through the pool.
 */
import * as fs from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import createDebug from 'debug';
import type { ReaderMessage, ReaderWorkerData } from './readerWorker';
import type { DevPoll } from './devPoll';
import type { SpinPolicy } from './spin';

const log = createDebug('o2fuse:fuse');

/** Messages up to this size are copied out of the read buffer; larger ones take it over. */
export const COPY_LIMIT_BYTES = 64 * 1024;
/**
 * Copied messages are carved out of slabs of this size (as Buffer.allocUnsafe
 * does below 4 KiB with its 8 KiB pool): a 4 KiB WRITE copied into a buffer
 * of its own cost ~2 us, most of it allocating the ArrayBuffer, against
 * ~0.3 us carved. A slab is never reused; it is freed once no message in it
 * is referenced, and messages live as long as their request.
 */
export const MESSAGE_SLAB_BYTES = 1024 * 1024;
export const READERS_MAX = 16;
/**
 * Requests the poll reader takes per wake-up before letting the event loop
 * run other callbacks (device I/O completions, timers); the watch fires
 * again at once for what is left.
 */
export const POLL_BATCH = 64;

const EAGAIN = constants.errno.EAGAIN;
const EINTR = constants.errno.EINTR;
const ENOENT = constants.errno.ENOENT;
const ENODEV = constants.errno.ENODEV;

export type ReplyOutcome = 'sent' | 'stale' | 'gone';

export interface ChannelCounters {
  reads: number;
  replies: number;
  /** Replies the kernel no longer wanted (the request was interrupted or aborted: ENOENT). */
  staleReplies: number;
  /** Reply writes that failed for another reason (EINVAL means a malformed reply: a bug). */
  failedReplies: number;
  notifications: number;
}

export interface ChannelOptions {
  /** The poll reader (the addon, on the main thread), or undefined for worker-thread readers. */
  poll?: DevPoll;
  /** With `poll`: when to keep reading an empty queue instead of sleeping (spin.ts); none without it. */
  spin?: SpinPolicy;
  /** Whether a request is being served (read, not yet settled): the reader never spins then. */
  busy?: () => boolean;
  /** Worker-thread readers (without `poll`). */
  readers: number;
  bufferBytes: number;
  /** Called with a message the callee owns (its bytes are not reused). */
  onMessage(msg: Buffer): void;
  /** Called once, when the last reader has stopped; `error` unless the kernel ended the session (ENODEV). */
  onStopped(error?: NodeJS.ErrnoException): void;
}

export class FuseChannel {
  readonly counters: ChannelCounters = { reads: 0, replies: 0, staleReplies: 0, failedReplies: 0, notifications: 0 };
  private running = 0;
  private stopError: NodeJS.ErrnoException | undefined;
  private gone = false;
  private closed = false;
  private watch: unknown;
  /** A spin is scheduled (setImmediate) and has not run yet. */
  private spinArmed = false;
  private spinOnce: (() => void) | undefined;

  constructor(
    readonly fd: number,
    private readonly options: ChannelOptions,
  ) {}

  start(): void {
    if (this.options.poll) return this.startPolling(this.options.poll);
    const readers = Math.max(1, Math.min(READERS_MAX, Math.floor(this.options.readers)));
    const workerData: ReaderWorkerData = { fd: this.fd, bufferBytes: this.options.bufferBytes, copyLimitBytes: COPY_LIMIT_BYTES };
    for (let i = 0; i < readers; i++) {
      this.running++;
      // execArgv []: the reader needs no loader hooks or inspector of the parent.
      // A reader only blocks in read(2) and posts buffers: a tiny heap keeps each thread's isolate from costing the
      // daemon tens of MiB of RSS.
      const worker = new Worker(path.join(__dirname, 'readerWorker.js'), {
        workerData, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
      });
      let stopped = false;
      const stop = (err?: NodeJS.ErrnoException) => {
        if (stopped) return;
        stopped = true;
        if (err) this.stopError ??= err;
        this.readerStopped();
      };
      worker.on('message', (m: ReaderMessage) => {
        if (m instanceof Uint8Array) {
          this.counters.reads++;
          this.options.onMessage(Buffer.from(m.buffer, m.byteOffset, m.byteLength));
          return;
        }
        if (m.stopped === 'ENODEV' || m.stopped === 'EOF') return stop();
        log('reading /dev/fuse failed: %s', m.message ?? m.stopped);
        stop(Object.assign(new Error(m.message ?? m.stopped), { code: m.stopped }));
      });
      worker.on('error', (err) => {
        log('a /dev/fuse reader thread failed: %O', err);
        stop(err as NodeJS.ErrnoException);
      });
      worker.on('exit', () => stop());
    }
  }

  private startPolling(poll: DevPoll): void {
    const nb = poll.setNonblocking(this.fd);
    if (nb < 0) throw Object.assign(new Error(`cannot make /dev/fuse non-blocking (errno ${-nb})`), { code: 'EIO' });
    this.running = 1;
    let buf = Buffer.allocUnsafeSlow(this.options.bufferBytes);
    const stop = (err?: NodeJS.ErrnoException) => {
      if (this.watch === undefined) return;
      poll.unwatch(this.watch);
      this.watch = undefined;
      if (err) this.stopError ??= err;
      this.readerStopped();
    };
    let slab = Buffer.allocUnsafeSlow(MESSAGE_SLAB_BYTES);
    let slabUsed = 0;
    const carve = (n: number): Buffer => {
      if (slabUsed + n > slab.length) {
        slab = Buffer.allocUnsafeSlow(MESSAGE_SLAB_BYTES);
        slabUsed = 0;
      }
      const msg = slab.subarray(slabUsed, slabUsed + n);
      // The next message starts 8-byte aligned, as in Node's own pool.
      slabUsed += (n + 7) & ~7;
      return msg;
    };
    /** Takes requests until the queue is empty or POLL_BATCH are taken; `first` is a read already done. */
    const drain = (first?: number) => {
      for (let taken = 0; taken < POLL_BATCH && this.watch !== undefined;) {
        const n = first ?? poll.readInto(this.fd, buf);
        first = undefined;
        if (n === -EAGAIN) return this.armSpin();
        // A signal, or a request interrupted before we took it: read again.
        if (n === -EINTR || n === -ENOENT) continue;
        if (n === -ENODEV || n === 0) return stop();
        if (n < 0) {
          const code = Object.entries(constants.errno).find(([, v]) => v === -n)?.[0] ?? 'EIO';
          log('reading /dev/fuse failed: %s', code);
          return stop(Object.assign(new Error(`reading /dev/fuse failed: ${code}`), { code }));
        }
        taken++;
        this.counters.reads++;
        if (n <= COPY_LIMIT_BYTES) {
          const msg = carve(n);
          buf.copy(msg, 0, 0, n);
          this.options.onMessage(msg);
        } else {
          const msg = buf.subarray(0, n);
          buf = Buffer.allocUnsafeSlow(this.options.bufferBytes);
          this.options.onMessage(msg);
        }
      }
    };
    const spin = this.options.spin;
    if (spin?.enabled) {
      // Runs after the replies the last batch's requests could give at once (setImmediate follows their
      // microtasks), so "nothing in flight" means the client has its answers.
      this.spinOnce = () => {
        this.spinArmed = false;
        if (this.watch === undefined || this.options.busy?.()) return;
        const budgetNs = spin.idle();
        if (budgetNs === 0) return;
        const n = poll.spinRead(this.fd, buf, budgetNs);
        spin.spun(n !== -EAGAIN);
        if (n !== -EAGAIN) drain(n);
      };
    }
    const onReadable = (status: number) => {
      if (status < 0) {
        log('polling /dev/fuse failed: libuv error %d', status);
        return stop(Object.assign(new Error(`polling /dev/fuse failed (libuv error ${status})`), { code: 'EIO' }));
      }
      spin?.arrived();
      drain();
    };
    this.watch = poll.watch(this.fd, onReadable);
  }

  /** Schedules a spin on the empty queue (poll reader with a spin budget): after a batch, and after each reply. */
  private armSpin(): void {
    if (!this.spinOnce || this.spinArmed) return;
    this.spinArmed = true;
    setImmediate(this.spinOnce);
  }

  /** True once a reader or a write saw the session end. */
  get ended(): boolean {
    return this.gone;
  }

  private readerStopped(): void {
    this.gone = true;
    if (--this.running > 0) return;
    this.options.onStopped(this.stopError);
  }

  /** Sends a reply: a header and the payload pieces, in one write. */
  reply(unique: number, errno: number, payload: readonly Buffer[] = []): ReplyOutcome {
    let len = 16;
    for (const p of payload) len += p.length;
    const header = Buffer.allocUnsafe(16);
    header.writeUInt32LE(len, 0);
    header.writeInt32LE(errno === 0 ? 0 : -Math.abs(errno), 4);
    writeUnique(header, 8, unique);
    return this.writeMessage(header, payload);
  }

  private writeMessage(header: Buffer, payload: readonly Buffer[]): ReplyOutcome {
    if (this.closed) return 'gone';
    try {
      fs.writevSync(this.fd, payload.length ? [header, ...payload] : [header]);
      this.counters.replies++;
      this.armSpin();
      return 'sent';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        this.counters.staleReplies++;
        return 'stale';
      }
      if (code === 'ENODEV' || code === 'EBADF') {
        this.gone = true;
        return 'gone';
      }
      this.counters.failedReplies++;
      log('writing a reply to /dev/fuse failed: %s', (err as Error).message);
      return 'gone';
    }
  }

  /**
   * Sends a notification (unique 0, the code in the error field); resolves
   * false when the kernel answered ENOENT (it does not have that inode or
   * entry cached), rejects on other errors.
   */
  notify(code: number, body: readonly Buffer[]): Promise<boolean> {
    let len = 16;
    for (const p of body) len += p.length;
    const msg = Buffer.allocUnsafe(len);
    msg.writeUInt32LE(len, 0);
    msg.writeInt32LE(code, 4);
    writeUnique(msg, 8, 0);
    let at = 16;
    for (const p of body) at += p.copy(msg, at);
    this.counters.notifications++;
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(Object.assign(new Error('the FUSE session has ended'), { code: 'ENODEV' }));
      fs.write(this.fd, msg, 0, msg.length, null, (err) => {
        if (!err) return resolve(true);
        if (err.code === 'ENOENT') return resolve(false);
        reject(err);
      });
    });
  }

  /** Closes the descriptor; only once every reader has stopped (a blocked read must not see a reused fd). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The poll reader stops first: a watch on a closed (and perhaps reused) descriptor would fire for someone else.
    if (this.watch !== undefined && this.options.poll) {
      this.options.poll.unwatch(this.watch);
      this.watch = undefined;
    }
    try {
      fs.closeSync(this.fd);
    } catch {
      // already gone
    }
  }
}

function writeUnique(buf: Buffer, at: number, unique: number): void {
  buf.writeUInt32LE(unique % 2 ** 32, at);
  buf.writeUInt32LE(Math.floor(unique / 2 ** 32), at + 4);
}
