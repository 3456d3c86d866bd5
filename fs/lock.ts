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

  // Uncontended, each acquire answers with one resolved promise (no async function around it): every operation
  // takes a lock or two, and the promise chains were a measurable share of a metadata operation.
  shared(): Promise<() => void> {
    const release = this.tryShared();
    if (release) return Promise.resolve(release);
    return new Promise<void>((wake) => this.queue.push({ exclusive: false, wake })).then(() => this.sharedRelease());
  }

  /** The lock shared at once, or undefined when that would have to wait (a caller may then skip an await). */
  tryShared(): (() => void) | undefined {
    if (this.writer || this.queue.length > 0) return undefined;
    this.readers++;
    return this.sharedRelease();
  }

  exclusive(): Promise<() => void> {
    const release = this.tryExclusive();
    if (release) return Promise.resolve(release);
    return new Promise<void>((wake) => this.queue.push({ exclusive: true, wake })).then(() => this.exclusiveRelease());
  }

  /** The lock exclusively at once, or undefined when that would have to wait. */
  tryExclusive(): (() => void) | undefined {
    if (this.writer || this.readers > 0 || this.queue.length > 0) return undefined;
    this.writer = true;
    return this.exclusiveRelease();
  }

  private sharedRelease(): () => void {
    return once(() => {
      this.readers--;
      this.pump();
    });
  }

  private exclusiveRelease(): () => void {
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
  /** Runs fn with the mutex held. Uncontended, fn starts at once (no promise hop to take the lock). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const release = this.lock.tryExclusive();
    return release ? holding(release, fn) : this.acquire().then((r) => holding(r, fn));
  }
}

/** Runs fn and releases when it settles (or throws before returning a promise). */
function holding<T>(release: () => void, fn: () => Promise<T>): Promise<T> {
  let work: Promise<T>;
  try {
    work = fn();
  } catch (err) {
    release();
    return Promise.reject(err);
  }
  return work.then((v) => {
    release();
    return v;
  }, (err) => {
    release();
    throw err;
  });
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
