/**
 * Background write-back: dirty pages older than the expiry age, and enough
 * of the oldest ones whenever dirty bytes pass the background threshold, go
 * to the device without anyone asking; writers over the dirty limit wait
 * here (throttle) until it is below again.
 *
 * As Linux's balance_dirty_pages: a writer that takes dirty bytes past the
 * background threshold (a quarter of the cache) starts write-back and goes
 * on (kick: write-back down to half the threshold); only past the dirty
 * limit (half the cache) does it wait, and only until write-back has brought
 * dirty bytes below the limit, not until everything is written. Write-back
 * goes in windows of FLUSH_WINDOW_PAGES, so a streaming writer and the
 * write-back of its earlier pages overlap.
 */
import createDebug from 'debug';
import type { IoHost } from './fileIo';
import { writebackInode, commitTimes } from './fileIo';

const trace = createDebug('o2fuse:cache');

/** Pages dirty longer than this are written back by the flusher. */
export const DIRTY_EXPIRE_MS = 5000;
/** How often the flusher looks. */
export const FLUSH_INTERVAL_MS = 1000;
/** Pages one step of background write-back writes (then it checks whether it is done): 4 MiB. */
const FLUSH_WINDOW_PAGES = 1024;

export class Flusher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  /** A kick's write-back is queued for the next turn of the event loop. */
  private kickQueued = false;
  private stopped = false;
  /** Writers over the dirty limit, woken after each window of write-back. */
  private waiters: (() => void)[] = [];

  constructor(private readonly host: IoHost) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.tick(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    // A kick still queued does not start: what is dirty is the unmount's (or the caller's) to write.
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private backgroundBytes(): number {
    return Math.floor(this.host.pages.maxBytes / 4);
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    const expired = this.host.pages.expired(Date.now() - DIRTY_EXPIRE_MS);
    if (!expired.length && this.host.pages.dirtyBytes <= this.backgroundBytes()) return;
    await this.run(new Set(expired.map((p) => p.ino)), this.backgroundBytes());
  }

  /** Starts write-back in the background when dirty bytes are past the background threshold. */
  kick(): void {
    if (this.running || this.kickQueued || this.host.pages.dirtyBytes <= this.backgroundBytes()) return;
    // On a later turn of the event loop: a window of write-back starts with a burst of work on this thread
    // (listing and sorting the dirty pages, copying them, writing them), and the request whose write kicked it
    // must be answered first. Started from the write's own promise chain, that burst could run ahead of the
    // reply, depending only on how many promise hops each path had.
    this.kickQueued = true;
    setImmediate(() => {
      this.kickQueued = false;
      if (this.stopped || this.running || this.host.pages.dirtyBytes <= this.backgroundBytes()) return;
      trace('background write-back started: %d dirty bytes', this.host.pages.dirtyBytes);
      // Down to half the threshold, not just under it: each run lists (and sorts) an inode's dirty pages, and a
      // random writer kept just above the threshold had a run, and a listing of every dirty page, per window written.
      void this.run(new Set(), Math.floor(this.backgroundBytes() / 2));
    });
  }

  /** Writes back the given inodes, then others, until dirty bytes are at most `targetBytes`. */
  private run(inodes: Set<number>, targetBytes: number): Promise<void> {
    const job = (async () => {
      for (const ino of inodes) await this.writeback(ino);
      for (const ino of this.host.pages.dirtyInodes()) {
        if (this.host.pages.dirtyBytes <= targetBytes) break;
        await this.writeback(ino, targetBytes);
      }
    })().finally(() => {
      this.running = null;
      this.wakeWriters();
    });
    this.running = job;
    return job;
  }

  /** Writes back an inode's dirty pages a window at a time: all of them, or until dirty bytes are at most `targetBytes`. */
  private async writeback(ino: number, targetBytes = -1): Promise<void> {
    try {
      const inode = await this.host.iget(ino);
      // Windows over the pages dirty now, listed (and sorted) once; each write-back takes what is dirty in its
      // range when it runs. Bounded: pages a writer dirties past the list wait for the next run.
      const pages = this.host.pages.dirtyOf(ino);
      for (let k = 0; k < pages.length; k += FLUSH_WINDOW_PAGES) {
        const window = pages.slice(k, k + FLUSH_WINDOW_PAGES);
        await writebackInode(this.host, inode, window[0].index, window[window.length - 1].index, window);
        this.wakeWriters();
        if (this.host.pages.dirtyBytes <= targetBytes) break;
      }
      await commitTimes(this.host, inode);
    } catch (err) {
      trace('background write-back of inode %d: %s', ino, (err as Error).message);
    }
  }

  private wakeWriters(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** For writers over the dirty limit: returns once write-back has brought dirty bytes to the limit or below. */
  async throttle(): Promise<void> {
    trace('throttling a writer: %d dirty bytes', this.host.pages.dirtyBytes);
    while (this.host.pages.dirtyBytes > this.host.pages.dirtyLimitBytes) {
      if (!this.running) void this.run(new Set(), this.backgroundBytes());
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Everything, now (unmount, sync). */
  async flushAll(): Promise<void> {
    await this.running;
    for (const ino of this.host.pages.dirtyInodes()) await this.writeback(ino);
  }
}
