/**
 * Async locks for the engine. Both are FIFO, so a steady stream of readers
 * cannot starve a writer. Use with try/finally (or `await using` where
 * available): every acquire returns its own release, idempotent.
 */

type Waiter = { exclusive: boolean; wake: () => void };

export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly queue: Waiter[] = [];

  constructor(readonly name = 'lock') {}

  get idle(): boolean {
    return this.readers === 0 && !this.writer && this.queue.length === 0;
  }

  async shared(): Promise<() => void> {
    if (!this.writer && this.queue.length === 0) {
      this.readers++;
    } else {
      await new Promise<void>((wake) => this.queue.push({ exclusive: false, wake }));
    }
    return once(() => {
      this.readers--;
      this.pump();
    });
  }

  async exclusive(): Promise<() => void> {
    if (!this.writer && this.readers === 0 && this.queue.length === 0) {
      this.writer = true;
    } else {
      await new Promise<void>((wake) => this.queue.push({ exclusive: true, wake }));
    }
    return once(() => {
      this.writer = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length) {
      const next = this.queue[0];
      if (next.exclusive) {
        if (this.writer || this.readers > 0) return;
        this.queue.shift();
        this.writer = true;
        next.wake();
        return;
      }
      if (this.writer) return;
      this.queue.shift();
      this.readers++;
      next.wake();
    }
  }
}

export class Mutex {
  private readonly lock: RwLock;
  constructor(name = 'mutex') {
    this.lock = new RwLock(name);
  }
  acquire(): Promise<() => void> {
    return this.lock.exclusive();
  }
  /** Nobody holds it or waits for it. */
  get idle(): boolean {
    return this.lock.idle;
  }
  /** Runs fn with the mutex held. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
