/**
 * Background write-back: dirty pages older than the expiry age, and enough
 * of the oldest ones whenever dirty bytes pass the background threshold, go
 * to the device without anyone asking; writers over the dirty limit wait
 * here (throttle) until it is below again.
 */
import createDebug from 'debug';
import type { IoHost } from './fileIo';
import { writebackInode, commitTimes } from './fileIo';

const trace = createDebug('o2fuse:cache');

/** Pages dirty longer than this are written back by the flusher. */
export const DIRTY_EXPIRE_MS = 5000;
/** How often the flusher looks. */
export const FLUSH_INTERVAL_MS = 1000;

export class Flusher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;

  constructor(private readonly host: IoHost) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
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

  /** Writes back the given inodes, then others, until dirty bytes are at most `targetBytes`. */
  private run(inodes: Set<number>, targetBytes: number): Promise<void> {
    const job = (async () => {
      for (const ino of inodes) await this.writeback(ino);
      for (const ino of this.host.pages.dirtyInodes()) {
        if (this.host.pages.dirtyBytes <= targetBytes) break;
        await this.writeback(ino);
      }
    })().finally(() => {
      this.running = null;
    });
    this.running = job;
    return job;
  }

  private async writeback(ino: number): Promise<void> {
    try {
      const inode = await this.host.iget(ino);
      await writebackInode(this.host, inode);
      await commitTimes(this.host, inode);
    } catch (err) {
      trace('background write-back of inode %d: %s', ino, (err as Error).message);
    }
  }

  /** For writers over the dirty limit: returns once dirty bytes are below the background threshold. */
  async throttle(): Promise<void> {
    trace('throttling a writer: %d dirty bytes', this.host.pages.dirtyBytes);
    while (this.host.pages.dirtyBytes > this.host.pages.dirtyLimitBytes) {
      await (this.running ?? this.run(new Set(), this.backgroundBytes()));
    }
  }

  /** Everything, now (unmount, sync). */
  async flushAll(): Promise<void> {
    await this.running;
    for (const ino of this.host.pages.dirtyInodes()) await this.writeback(ino);
  }
}
