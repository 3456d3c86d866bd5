/**
 * fsx's half that knows nothing of the filesystem: the random choice of
 * operations and a model of one file's bytes that each operation updates as
 * it should change the file. The engine test and the mount test drive their
 * own calls from it (fsx-files-share-a-small-cache, fsx-through-the-mount).
 */
import type { Rng } from '../lib/seed';

export type FsxOp = 'bwrite' | 'dwrite' | 'bread' | 'dread' | 'truncate' | 'punch' | 'zero' | 'prealloc' | 'fsync';

const WEIGHTS: [FsxOp, number][] = [
  ['bwrite', 26], ['dwrite', 12], ['bread', 22], ['dread', 10], ['truncate', 8], ['punch', 7], ['zero', 5], ['prealloc', 4],
  ['fsync', 6],
];
const TOTAL = WEIGHTS.reduce((n, [, w]) => n + w, 0);

/** A random op, by weight; `without`: ops the target cannot do (drawn again). */
export function pickOp(r: Rng, without?: ReadonlySet<FsxOp>): FsxOp {
  for (;;) {
    let x = r.int(1, TOTAL);
    let op: FsxOp = 'bread';
    for (const [name, w] of WEIGHTS) {
      if ((x -= w) <= 0) {
        op = name;
        break;
      }
    }
    if (!without?.has(op)) return op;
  }
}

/** The ops that need fallocate(2). */
export const FALLOCATE_OPS: ReadonlySet<FsxOp> = new Set(['punch', 'zero', 'prealloc']);

/** One operation, its arguments drawn: a byte range, and for truncate the size, for prealloc whether KEEP_SIZE. */
export interface FsxStep {
  op: FsxOp;
  offset: number;
  length: number;
  /** truncate: the new size. */
  size: number;
  /** prealloc: FALLOC_FL_KEEP_SIZE (only ever inside the file: past its end the engine refuses it). */
  keep: boolean;
  /** bwrite/dwrite: the bytes, one value per write (a stale byte names its write), its number in the first four. */
  data?: Buffer;
}

let writeStamp = 0;
/** The kernel's page size (FUSE's page cache). */
const PAGE = 4096;

/**
 * The next operation on `m`'s file and its arguments: ranges anywhere up to the model's largest size (or inside
 * `within`, for a worker that owns part of a file), reads mostly inside the file, half the direct writes aligned to
 * `block` (the direct path proper; the others take the unaligned-write rule). A punch past the end becomes a read
 * (it would do nothing).
 */
export function nextStep(r: Rng, m: FileModel, o: {
  block: number;
  maxIo: number;
  without?: ReadonlySet<FsxOp>;
  within?: { start: number; end: number };
}): FsxStep {
  const lo = o.within?.start ?? 0;
  const hi = o.within?.end ?? m.maxBytes;
  let op = pickOp(r, o.without);
  let offset = r.int(lo, hi - 1);
  let length = Math.min(r.int(1, o.maxIo), hi - offset);
  const step: FsxStep = { op, offset, length, size: 0, keep: false };
  if (op === 'punch' && offset >= m.size) op = step.op = 'bread';
  switch (op) {
    case 'dwrite':
      if (r.bool()) {
        const aligned = Math.ceil(offset / o.block) * o.block;
        if (aligned + o.block <= hi) {
          offset = aligned;
          length = Math.min(Math.max(o.block, length - (length % o.block)), hi - offset);
          length -= length % o.block;
        }
      }
      step.data = writeData(length, ++writeStamp);
      break;
    case 'bwrite':
      step.data = writeData(length, ++writeStamp);
      break;
    case 'bread':
    case 'dread':
      if (Math.min(m.size, hi) > lo && r.bool(0.8)) offset = r.int(lo, Math.min(m.size, hi) - 1);
      length = Math.min(length, hi - offset);
      break;
    case 'truncate':
      step.size = r.bool(0.3) ? 0 : r.int(0, m.maxBytes);
      break;
    case 'prealloc':
      step.keep = r.bool() && offset + length <= m.size;
      break;
  }
  step.offset = offset;
  step.length = length;
  return step;
}

export class FileModel {
  readonly bytes: Buffer;
  size = 0;
  /** What was done to the file, newest last (for the failure message). */
  readonly history: string[] = [];

  constructor(readonly name: string, readonly maxBytes: number) {
    this.bytes = Buffer.alloc(maxBytes);
  }

  /** The file's bytes [0, size). */
  content(): Buffer {
    return this.bytes.subarray(0, this.size);
  }

  write(offset: number, data: Buffer): void {
    if (offset > this.size) this.bytes.fill(0, this.size, offset);
    data.copy(this.bytes, offset);
    this.size = Math.max(this.size, offset + data.length);
  }

  truncate(size: number): void {
    // Bytes cut off read as zeros if a later write or truncate extends the file again.
    if (size < this.size) this.bytes.fill(0, size, this.size);
    else this.bytes.fill(0, this.size, size);
    this.size = size;
  }

  /** PUNCH_HOLE | KEEP_SIZE. */
  punch(offset: number, length: number): void {
    if (offset < this.size) this.bytes.fill(0, offset, Math.min(offset + length, this.size));
  }

  /** ZERO_RANGE without KEEP_SIZE: the range reads as zeros, the size grows to cover it. */
  zero(offset: number, length: number): void {
    this.write(offset, Buffer.alloc(length));
  }

  /** Plain preallocation: the size grows to cover the range, no byte of the file changes. */
  preallocate(offset: number, length: number): void {
    if (offset + length > this.size) this.truncate(offset + length);
  }

  /** Where `got`, read at `offset`, first differs from the model, or -1 (a short read differs at its end). */
  differs(offset: number, got: Buffer, expectLength = Math.max(0, Math.min(got.length, this.size - offset))): number {
    const want = this.content().subarray(offset, offset + expectLength);
    return firstDifference(got, want);
  }

  /** Updates the model for a step the file system has just done. */
  apply(s: FsxStep): void {
    switch (s.op) {
      case 'bwrite':
      case 'dwrite': this.write(s.offset, s.data!); break;
      case 'truncate': this.truncate(s.size); break;
      case 'punch': this.punch(s.offset, s.length); break;
      case 'zero': this.zero(s.offset, s.length); break;
      case 'prealloc': if (!s.keep) this.preallocate(s.offset, s.length); break;
      default: break;
    }
    this.history.push(`${s.op} ${s.offset}+${s.length}${s.op === 'truncate' ? ` to ${s.size}` : ''} -> size ${this.size}`);
  }

  /** What is wrong with `got`, the result of read step `s`, or null. */
  checkRead(s: FsxStep, got: Buffer): string | null {
    const want = Math.max(0, Math.min(s.length, this.size - s.offset));
    if (got.length !== want) return `${s.op} ${s.offset}+${s.length} returned ${got.length} bytes, model ${want}`;
    const at = this.differs(s.offset, got);
    return at < 0 ? null : `${s.op} ${s.offset}+${s.length}: byte ${s.offset + at} is ${got[at]}, model ${this.bytes[s.offset + at]}`;
  }

  /** Records something that happened to the file besides a step applied (for the failure message). */
  note(entry: string): void {
    this.history.push(entry);
  }

  recent(n = 8): string {
    return this.history.slice(-n).join(' | ');
  }
}

export function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function writeData(length: number, stamp: number): Buffer {
  const data = Buffer.alloc(length, (stamp % 251) + 1);
  if (length >= 4) data.writeUInt32LE(stamp, 0);
  return data;
}

/**
 * What a file may hold after a crash: its model at the last fsync that completed, and the steps begun since
 * (the crash may have landed each whole, in part, or not at all).
 */
export class CrashWindow {
  private readonly synced: { bytes: Buffer; size: number };
  /** Steps begun since, each with the sizes it can leave: after the whole step, and after a part the kernel sent alone. */
  private since: { step: FsxStep; sizes: number[] }[] = [];

  /**
   * `pageSplitWrites`: buffered writes go through the kernel's FUSE page cache, which sends a write that starts
   * inside a page it does not hold as two requests, the bytes up to the page boundary and then the rest
   * (fuse_fill_write_pages stops after a partial page that is not up to date): a crash between them leaves the
   * size at that boundary.
   * `pagedSizes`: the kernel's writeback cache holds the file's dirty pages and sends them back in its own order,
   * each WRITE carrying the file up to that page's end: a crash can leave any page boundary between the smallest
   * and largest size the file had since the fsync, besides the sizes after whole steps.
   */
  constructor(private readonly m: FileModel, private readonly o: { pageSplitWrites?: boolean; pagedSizes?: boolean } = {}) {
    this.synced = { bytes: Buffer.alloc(m.maxBytes), size: 0 };
  }

  /** Steps begun since the last completed fsync. */
  get open(): number {
    return this.since.length;
  }

  /** Call before the step is sent: from then on the crash may have landed it. */
  begin(s: FsxStep): void {
    const after = new FileModel(this.m.name, this.m.maxBytes);
    this.m.content().copy(after.bytes);
    after.size = this.m.size;
    after.apply(s);
    const sizes = [after.size];
    const pageEnd = Math.ceil(s.offset / PAGE) * PAGE;
    if (this.o.pageSplitWrites && s.op === 'bwrite' && pageEnd > s.offset && pageEnd < s.offset + s.length) {
      sizes.push(Math.max(this.m.size, pageEnd));
    }
    this.since.push({ step: s, sizes });
  }

  /** Call when an fsync has completed, with the model brought up to date: everything before it is durable. */
  fsynced(): void {
    this.m.content().copy(this.synced.bytes);
    this.synced.size = this.m.size;
    this.since = [];
  }

  /**
   * What is wrong with `got` (the whole file after the crash), or null. Its size must be the synced size or the
   * size after one of the steps since (metadata commits in order); a byte no step since touched must hold its
   * synced value; any other byte its synced value, zero, or a value one of those steps wrote there.
   */
  judge(got: Buffer): string | null {
    const sizes = new Set([this.synced.size, ...this.since.flatMap((s) => s.sizes)]);
    const paged = this.o.pagedSizes && got.length % PAGE === 0 &&
      got.length >= Math.min(...sizes) && got.length <= Math.max(...sizes);
    if (!sizes.has(got.length) && !paged) {
      return `size ${got.length} is neither the synced ${this.synced.size} nor one after the steps since: ` +
        this.since.map(({ step, sizes }) => `${step.op} ${step.offset}+${step.length}${step.op === 'truncate' ? ` to ${step.size}` : ''} -> ${sizes.join(' or ')}`).join(', ');
    }
    const touched = new Uint8Array(Math.max(got.length, this.synced.size));
    for (const { step } of this.since) {
      const to = step.op === 'truncate' ? touched.length : Math.min(touched.length, step.offset + step.length);
      const from = step.op === 'truncate' ? step.size : step.offset;
      if (step.op !== 'bread' && step.op !== 'dread' && step.op !== 'fsync') touched.fill(1, Math.min(from, to), to);
    }
    const writes = this.since.filter(({ step }) => step.data);
    for (let i = 0; i < got.length; i++) {
      const old = i < this.synced.size ? this.synced.bytes[i] : 0;
      if (got[i] === old) continue;
      if (!touched[i] && i < this.synced.size) return `byte ${i} is ${got[i]}, synced ${old}, and nothing since touched it`;
      if (got[i] === 0) continue;
      const wrote = writes.some(({ step }) => step.offset <= i && i < step.offset + step.length && step.data![i - step.offset] === got[i]);
      if (!wrote) return `byte ${i} is ${got[i]}: not its synced value (${old}), zero, or written there since`;
    }
    return null;
  }
}
