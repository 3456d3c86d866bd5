/**
 * Seeded randomness for tests. A randomized test takes its seed from seedFrom(t): the
 * SEED environment variable when set (decimal or 0x hex), else a fixed default, and
 * prints it so a failure can be replayed with SEED=N.
 */

/** mulberry32: a small, fast 32-bit PRNG; the same seed gives the same sequence everywhere. */
export class Rng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform uint32. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** Uniform integer in [min, max] (inclusive; the span must fit in 2^32). */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  bool(pTrue = 0.5): boolean {
    return this.float() < pTrue;
  }

  pick<T>(items: readonly T[]): T {
    if (!items.length) throw new Error('Rng.pick: empty list');
    return items[this.int(0, items.length - 1)];
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const w = this.next();
      for (let k = 0; k < 4 && i + k < n; k++) b[i + k] = (w >>> (8 * k)) & 0xff;
    }
    return b;
  }

  /** An independent generator derived from this one (for sub-tasks). */
  fork(): Rng {
    return new Rng(this.next());
  }
}

export const DEFAULT_SEED = 0x5eed;

/** The part of a node-tap Test seedFrom uses. */
export interface CommentTest {
  comment(...args: unknown[]): void;
}

/** Reads $SEED (or the default), prints it, and returns it. */
export function seedFrom(t: CommentTest, fallback = DEFAULT_SEED): number {
  const raw = process.env.SEED;
  let seed = fallback;
  if (raw !== undefined && raw !== '') {
    seed = Number(raw);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`SEED=${raw} is not a uint32`);
  }
  t.comment(`seed=${seed} (repeat with SEED=${seed})`);
  return seed >>> 0;
}

/** An Rng seeded by seedFrom(t). */
export function rngFrom(t: CommentTest, fallback = DEFAULT_SEED): Rng {
  return new Rng(seedFrom(t, fallback));
}
