/** Small shared pieces for the io/ tests (not a test file itself). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeviceError } from '../../io/device';

/** A fresh scratch directory under /tmp/io, removed when the test ends. */
export function scratchDir(t: { teardown(fn: () => void): void }, label: string): string {
  fs.mkdirSync('/tmp/io', { recursive: true });
  const dir = fs.mkdtempSync(path.join('/tmp/io', `${label}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Lets every pending microtask and immediate run (not timers). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Tracks whether a promise has settled, without awaiting it. */
export function track<T>(p: Promise<T>): { done: boolean; error: unknown; value: T | undefined; promise: Promise<T> } {
  const state = { done: false, error: undefined as unknown, value: undefined as T | undefined, promise: p };
  p.then(
    (v) => {
      state.done = true;
      state.value = v;
    },
    (e) => {
      state.done = true;
      state.error = e;
    },
  );
  return state;
}

/** Resolves with the DeviceError errno a promise rejects with (fails if it resolves or throws something else). */
export async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DeviceError) return err.errno;
    return `not a DeviceError: ${String(err)}`;
  }
  return 'resolved';
}

/** A buffer of `length` bytes filled with a pattern derived from `tag`. */
export function pattern(length: number, tag: number): Buffer {
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = (tag * 31 + i * 7 + (i >> 8)) & 0xff;
  return buf;
}
