/**
 * The /dev/fuse descriptor of one session: requests in, replies and
 * notifications out. No protocol knowledge beyond the out header.
 *
 * Reading: read(2) of /dev/fuse blocks until the kernel has a request, so
 * reads run in worker threads of their own (readerWorker.ts), `readers` of
 * them, each with one read outstanding. Not fs.read: that would hold libuv
 * threadpool threads, which the engine's device I/O needs; a pool filled
 * with waiting reads deadlocks the mount (the kernel waits for our reply,
 * the reply waits for a device read, the device read waits for a thread),
 * and UV_THREADPOOL_SIZE cannot be raised once anything (a test runner's
 * import hooks, say) has used the pool.
 *
 * Buffers: every read gets a buffer big enough for the largest request
 * (max_write + headers). A message of up to COPY_LIMIT_BYTES is copied out
 * and the buffer is read into again at once; a bigger one (a large WRITE)
 * moves to this thread with its buffer, which the engine writes from without
 * another copy, and the reader takes a fresh one.
 *
 * Writing replies: one writev(2) of header + payload, synchronous. A reply
 * never waits for anything (the kernel copies it into the waiting request
 * and completes it), so this saves a threadpool round trip per request.
 * Notifications are different: invalidating an inode waits for page locks
 * that a request we are still serving may hold, so they go through the pool.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import createDebug from 'debug';
import type { ReaderMessage, ReaderWorkerData } from './readerWorker';

const log = createDebug('o2fuse:fuse');

/** Messages up to this size are copied out of the read buffer; larger ones take it over. */
export const COPY_LIMIT_BYTES = 64 * 1024;
export const READERS_MAX = 16;

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

  constructor(
    readonly fd: number,
    private readonly options: ChannelOptions,
  ) {}

  start(): void {
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
