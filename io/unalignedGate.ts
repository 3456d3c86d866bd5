/**
 * The unaligned direct-write gate: the one rule that keeps overlapping async
 * direct writes from corrupting each other.
 *
 * Why: a direct write whose range is not block-aligned must read its partial
 * edge blocks, patch them and write them back whole (read-modify-write). Two
 * such writes sharing a block both read the old block, and the one that
 * completes last writes back stale bytes over the other's data. OCFS2 and ext4
 * fixed this by making an unaligned async direct write wait until the inode
 * has no unaligned direct write in flight (a per-inode counter; OCFS2 later
 * made unaligned aio synchronous outright).
 *
 * Modes (fs/volume.ts's `unalignedDio`):
 *   'inode'  - the kernels' rule: at most one unaligned direct write in flight
 *              per inode; the others queue in arrival order.
 *   'range'  - the default: an unaligned write waits only for in-flight (or
 *              earlier queued) unaligned writes it conflicts with: its partial
 *              edge blocks lie in the other's block range, or the other's edge
 *              blocks lie in its range (the other's read-modify-write would
 *              write stale bytes over ours). Disjoint writes run in parallel.
 *              Queued writes are admitted in FIFO order among conflicting ones
 *              (a newcomer never overtakes an earlier waiter it conflicts with,
 *              so nobody starves), like TigerBeetle's Journal.lock_sectors.
 *   'unsafe' - no waiting at all. Only for reproducing the corruption on
 *              purpose (tests, the sandbox); never for real data.
 *
 * Contract for callers (the direct-I/O path):
 *   - Call enter() only for unaligned writes (isUnaligned); an aligned range
 *     passes at once without being counted, and aligned writes never wait.
 *   - Call ticket.exit() exactly when the device write completes, on success
 *     AND on error (run() does both). exit() is idempotent.
 * Caveat shared with the kernels: an aligned direct write that overlaps an
 * in-flight unaligned one is not serialized against it; overlapping direct
 * writes racing from user space have no defined order anyway, but the
 * unaligned write's read-modify-write may put back old bytes of the aligned
 * one's blocks.
 *
 * Byte ranges are [startByte, endByte) in the inode's file offsets.
 */
import createDebug from 'debug';
import { performance } from 'node:perf_hooks';

const debug = createDebug('o2fuse:gate');

export type GateMode = 'inode' | 'range' | 'unsafe';

/** Writes that may queue on one inode; more means a runaway submitter, not a busy file. */
export const GATE_WAITERS_PER_INODE_MAX = 1024;

/** True when a direct write of [offset, offset + length) needs a read-modify-write of an edge block. */
export function isUnaligned(offset: number, length: number, blockSize: number): boolean {
  if (length === 0) return false;
  return offset % blockSize !== 0 || length % blockSize !== 0;
}

export class UnalignedGateError extends Error {
  readonly errno = 'EAGAIN' as const;
  constructor(message: string) {
    super(`EAGAIN: ${message}`);
    this.name = 'UnalignedGateError';
  }
}

export interface GateTicket {
  /** Counts the write out and admits waiters; call at device-write completion (idempotent). */
  exit(): void;
  /** Whether enter() had to wait. */
  readonly waited: boolean;
  readonly waitMs: number;
}

export interface GateStats {
  mode: GateMode;
  /** Unaligned writes that entered (counted in). */
  entered: number;
  /** Of those, how many had to wait. */
  waits: number;
  totalWaitMs: number;
  maxWaitMs: number;
  /** Unaligned writes counted in and not yet out, over all inodes. */
  inFlight: number;
  maxInFlight: number;
  /** Writes waiting now, over all inodes. */
  waiting: number;
}

export interface UnalignedGateOptions {
  mode?: GateMode;
  waitersPerInodeMax?: number;
}

interface Entry {
  ino: number;
  startByte: number;
  endByte: number;
  /** Block-aligned cover of the range. */
  coverStart: number;
  coverEnd: number;
  /** The partial blocks, as byte ranges: the blocks this write reads, patches and writes back. */
  edges: Array<[number, number]>;
  queuedAt: number;
  admit: (() => void) | null;
}

interface InodeState {
  inFlight: Entry[];
  waiting: Entry[];
}

const NO_WAIT_TICKET: GateTicket = Object.freeze({ exit() {}, waited: false, waitMs: 0 });

export class UnalignedGate {
  readonly mode: GateMode;
  readonly waitersPerInodeMax: number;
  private readonly inodes = new Map<number, InodeState>();
  private readonly counters = {
    entered: 0,
    waits: 0,
    totalWaitMs: 0,
    maxWaitMs: 0,
    inFlight: 0,
    maxInFlight: 0,
    waiting: 0,
  };

  constructor(options: UnalignedGateOptions = {}) {
    const mode = options.mode ?? 'range';
    if (mode !== 'inode' && mode !== 'range' && mode !== 'unsafe') {
      throw new RangeError(`unaligned gate mode must be inode, range or unsafe: ${String(mode)}`);
    }
    this.mode = mode;
    this.waitersPerInodeMax = options.waitersPerInodeMax ?? GATE_WAITERS_PER_INODE_MAX;
    if (mode === 'unsafe') debug('mode unsafe: unaligned direct writes are NOT serialized (corruption possible)');
  }

  /**
   * Waits until the unaligned write [startByte, endByte) on ino may go, then counts it in.
   * Returns at once, uncounted, for an aligned range.
   */
  async enter(ino: number, startByte: number, endByte: number, blockSize: number): Promise<GateTicket> {
    checkArgs(ino, startByte, endByte, blockSize);
    if (!isUnaligned(startByte, endByte - startByte, blockSize)) return NO_WAIT_TICKET;
    const entry = makeEntry(ino, startByte, endByte, blockSize);
    let state = this.inodes.get(ino);
    if (!state) {
      state = { inFlight: [], waiting: [] };
      this.inodes.set(ino, state);
    }
    if (this.mode === 'unsafe' || this.mayGo(entry, state.inFlight, state.waiting)) {
      this.countIn(state, entry);
      return this.ticket(state, entry, false, 0);
    }
    if (state.waiting.length >= this.waitersPerInodeMax) {
      throw new UnalignedGateError(
        `inode ${ino}: ${state.waiting.length} unaligned direct writes already wait ` +
          `(GATE_WAITERS_PER_INODE_MAX ${this.waitersPerInodeMax})`,
      );
    }
    debug(
      'ino %d [%d, %d) waits (%s mode): %d in flight, %d queued',
      ino,
      startByte,
      endByte,
      this.mode,
      state.inFlight.length,
      state.waiting.length,
    );
    this.counters.waiting++;
    await new Promise<void>((resolve) => {
      entry.admit = resolve;
      state!.waiting.push(entry);
    });
    const waitMs = performance.now() - entry.queuedAt;
    const c = this.counters;
    c.waits++;
    c.totalWaitMs += waitMs;
    if (waitMs > c.maxWaitMs) c.maxWaitMs = waitMs;
    debug('ino %d [%d, %d) waited %sms', ino, startByte, endByte, waitMs.toFixed(3));
    return this.ticket(state, entry, true, waitMs);
  }

  /** enter(), fn(), exit() even when fn throws: fn should be the device write itself. */
  async run<T>(ino: number, startByte: number, endByte: number, blockSize: number, fn: () => Promise<T>): Promise<T> {
    const ticket = await this.enter(ino, startByte, endByte, blockSize);
    try {
      return await fn();
    } finally {
      ticket.exit();
    }
  }

  stats(): GateStats {
    return { mode: this.mode, ...this.counters };
  }

  inFlightOn(ino: number): number {
    return this.inodes.get(ino)?.inFlight.length ?? 0;
  }

  waitingOn(ino: number): number {
    return this.inodes.get(ino)?.waiting.length ?? 0;
  }

  private ticket(state: InodeState, entry: Entry, waited: boolean, waitMs: number): GateTicket {
    let done = false;
    return {
      waited,
      waitMs,
      exit: () => {
        if (done) return;
        done = true;
        this.countOut(state, entry);
      },
    };
  }

  private countIn(state: InodeState, entry: Entry): void {
    state.inFlight.push(entry);
    const c = this.counters;
    c.entered++;
    c.inFlight++;
    if (c.inFlight > c.maxInFlight) c.maxInFlight = c.inFlight;
  }

  private countOut(state: InodeState, entry: Entry): void {
    const i = state.inFlight.indexOf(entry);
    if (i < 0) throw new Error(`unaligned gate: ino ${entry.ino} ticket exits twice or was never counted in`);
    state.inFlight.splice(i, 1);
    this.counters.inFlight--;
    // Admit waiters in arrival order; one still blocked also blocks later waiters it conflicts with.
    const stillWaiting: Entry[] = [];
    for (const w of state.waiting) {
      if (this.mayGo(w, state.inFlight, stillWaiting)) {
        this.counters.waiting--;
        this.countIn(state, w);
        const admit = w.admit!;
        w.admit = null;
        admit();
      } else {
        stillWaiting.push(w);
      }
    }
    state.waiting = stillWaiting;
    if (state.inFlight.length === 0 && state.waiting.length === 0) this.inodes.delete(entry.ino);
  }

  private mayGo(entry: Entry, inFlight: readonly Entry[], earlierWaiters: readonly Entry[]): boolean {
    if (this.mode === 'unsafe') return true;
    if (this.mode === 'inode') return inFlight.length === 0 && earlierWaiters.length === 0;
    for (const other of inFlight) if (conflicts(entry, other)) return false;
    for (const other of earlierWaiters) if (conflicts(entry, other)) return false;
    return true;
  }
}

function makeEntry(ino: number, startByte: number, endByte: number, blockSize: number): Entry {
  const coverStart = Math.floor(startByte / blockSize) * blockSize;
  const coverEnd = Math.ceil(endByte / blockSize) * blockSize;
  const edges: Array<[number, number]> = [];
  if (startByte % blockSize !== 0 || endByte - coverStart < blockSize) {
    edges.push([coverStart, coverStart + blockSize]);
  }
  const lastStart = coverEnd - blockSize;
  if ((endByte % blockSize !== 0 || startByte > lastStart) && (edges.length === 0 || lastStart !== coverStart)) {
    edges.push([lastStart, coverEnd]);
  }
  return { ino, startByte, endByte, coverStart, coverEnd, edges, queuedAt: performance.now(), admit: null };
}

/** Two unaligned writes conflict when either one's read-modify-write block lies in the other's cover. */
function conflicts(a: Entry, b: Entry): boolean {
  for (const [s, e] of a.edges) if (s < b.coverEnd && e > b.coverStart) return true;
  for (const [s, e] of b.edges) if (s < a.coverEnd && e > a.coverStart) return true;
  return false;
}

function checkArgs(ino: number, startByte: number, endByte: number, blockSize: number): void {
  if (!Number.isSafeInteger(ino) || ino < 0) throw new RangeError(`unaligned gate: bad inode number ${ino}`);
  if (!Number.isInteger(blockSize) || blockSize < 512 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError(`unaligned gate: block size must be a power of two >= 512: ${blockSize}`);
  }
  if (!(Number.isSafeInteger(startByte) && Number.isSafeInteger(endByte) && startByte >= 0 && startByte <= endByte)) {
    throw new RangeError(`unaligned gate: bad byte range [${startByte}, ${endByte})`);
  }
}
