/**
 * Metadata transactions (handles): the only code that writes metadata blocks.
 *
 * A change takes the blocks it will modify through a Transaction (getting a
 * private copy), edits the copies, and commits. Commit recomputes metaecc
 * where the volume has it and makes the new bytes visible to readers in one
 * synchronous step (the block cache). Then:
 *
 * - with the slot's journal open (every read-write mount), the blocks join
 *   the running journal transaction (fs/journal/journal.ts), which writes
 *   them to the log and later home; commit returns without device I/O
 *   unless the journal is too full and must commit first;
 * - without a journal, it writes them home in an order that leaves fsck
 *   something sensible after a crash in the middle:
 *
 *   1. 'alloc'  group descriptors whose bits were set    (allocate ...
 *   2. 'new'    freshly allocated blocks, written whole   ... initialise ...
 *   3. 'point'  everything else (inodes, extent lists)    ... point ...
 *   4. 'free'   group descriptors whose bits were cleared  ... then free)
 *
 *   each phase completing before the next starts.
 *
 * A transaction that throws before commit writes nothing.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import { computeBlockCheck, CHECK_OFFSET, dirBlockCheckOffsetOf } from './format/blockcheck';
import { decodeDinode, encodeDinode, type Dinode } from './format/dinode';
import { FsError } from './errors';

const trace = createDebug('o2fuse:tx');

export type BlockKind = 'inode' | 'extent block' | 'group descriptor' | 'dir block' | 'dx root' | 'dx leaf' | 'refcount block' | 'raw';
export type Phase = 'alloc' | 'new' | 'point' | 'free';

const PHASES: readonly Phase[] = ['alloc', 'new', 'point', 'free'];

interface TxBlock {
  blkno: number;
  kind: BlockKind;
  buf: Buffer;
  phase: Phase;
  /** Decoded inode edited by the caller, encoded into buf at commit. */
  dinode?: Dinode;
}

function checkOffset(kind: BlockKind, blockSize: number): number | null {
  switch (kind) {
    case 'inode': return CHECK_OFFSET.dinode;
    case 'extent block': return CHECK_OFFSET.extentBlock;
    case 'group descriptor': return CHECK_OFFSET.groupDesc;
    case 'dir block': return dirBlockCheckOffsetOf(blockSize);
    case 'dx root': return CHECK_OFFSET.dxRoot;
    case 'dx leaf': return CHECK_OFFSET.dxLeaf;
    case 'refcount block': return CHECK_OFFSET.refcountBlock;
    case 'raw': return null;
  }
}

/** Bound on blocks one transaction may touch: a runaway change fails instead of eating memory. */
export const MAX_TX_BLOCKS = 65536;

export class Transaction {
  private readonly blocks = new Map<number, TxBlock>();
  private readonly order: number[] = [];
  private readonly afterCommit: (() => void)[] = [];
  private readonly durable: (() => void)[] = [];
  private readonly freed: { cluster: number; count: number }[] = [];
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private locals: Map<object, unknown> | undefined;

  constructor(private readonly ctx: VolumeContext, readonly label: string) {}

  /**
   * State a module keeps for this transaction only (a directory's view of
   * its changes, an extent tree's nodes), under a key object private to the
   * module: made by `make` on first use, gone with the transaction. Not a
   * WeakMap keyed by the transaction: V8's scavenger keeps a WeakMap's
   * values alive until the next full collection, and the views (with two
   * decoded dinodes and four Maps each) then outlived every scavenge, a
   * third of what a lookup and unlink left for the collector to copy.
   */
  local<T>(key: object, make: () => T): T {
    this.locals ??= new Map();
    let v = this.locals.get(key) as T | undefined;
    if (v === undefined) {
      v = make();
      this.locals.set(key, v);
    }
    return v;
  }

  private add(b: TxBlock): TxBlock {
    if (this.state !== 'open') throw new Error(`transaction ${this.label} is ${this.state}`);
    if (this.blocks.size >= MAX_TX_BLOCKS) throw new FsError('EFBIG', `transaction ${this.label} touches too many blocks`);
    this.blocks.set(b.blkno, b);
    this.order.push(b.blkno);
    return b;
  }

  /**
   * A private copy of an existing metadata block, to be modified and written at
   * commit. The same copy is returned for every call within the transaction.
   * The caller must have validated the block already (read it through fs/blocks).
   */
  block(blkno: number, kind: BlockKind, phase: Phase = 'point'): Promise<Buffer> {
    // Without a promise chain of its own when the block is in memory: a create or an unlink takes five or six
    // blocks, and each level of async function and await was a promise and a microtask more.
    const now = this.blockNow(blkno, kind, phase);
    return now ? Promise.resolve(now) : this.blockRead(blkno, kind, phase);
  }

  /** block() when that needs no device read (the block is in this transaction or in the cache), else undefined. */
  blockNow(blkno: number, kind: BlockKind, phase: Phase = 'point'): Buffer | undefined {
    const have = this.joined(blkno, phase);
    if (have) return have;
    const cur = this.ctx.cache.peek(blkno);
    return cur && this.add({ blkno, kind, buf: Buffer.from(cur), phase }).buf;
  }

  private async blockRead(blkno: number, kind: BlockKind, phase: Phase): Promise<Buffer> {
    const cur = await this.ctx.cache.read(blkno);
    // Another call of this transaction may have taken the block while this one read it.
    return this.joined(blkno, phase) ?? this.add({ blkno, kind, buf: Buffer.from(cur), phase }).buf;
  }

  /** This transaction's copy of `blkno`, if it has one (an 'alloc' request upgrades a 'free' block's phase). */
  private joined(blkno: number, phase: Phase): Buffer | undefined {
    const have = this.blocks.get(blkno);
    if (have && phase === 'alloc' && have.phase === 'free') have.phase = 'alloc';
    return have?.buf;
  }

  /** A zeroed block just allocated; the caller fills it in completely. */
  newBlock(blkno: number, kind: BlockKind): Buffer {
    const have = this.blocks.get(blkno);
    if (have) throw new Error(`transaction ${this.label}: block ${blkno} is already part of it`);
    return this.add({ blkno, kind, buf: Buffer.alloc(this.ctx.geo.blockSize), phase: 'new' }).buf;
  }

  /**
   * The decoded inode at `blkno` for modification. Edit the returned object;
   * it is encoded into the block at commit. Repeated calls return the same object.
   */
  inode(blkno: number): Promise<Dinode> {
    const now = this.inodeNow(blkno);
    if (now) return Promise.resolve(now);
    return this.block(blkno, 'inode').then(() => this.inodeNow(blkno)!);
  }

  /** inode() when that needs no device read, else undefined. */
  inodeNow(blkno: number): Dinode | undefined {
    const have = this.blocks.get(blkno);
    if (have?.dinode) return have.dinode;
    const buf = this.blockNow(blkno, 'inode');
    if (!buf) return undefined;
    const b = this.blocks.get(blkno)!;
    b.dinode = decodeDinode(buf, blkno);
    return b.dinode;
  }

  /** A brand-new inode block, described by `di` (encoded at commit). */
  newInode(blkno: number, di: Dinode): Dinode {
    this.newBlock(blkno, 'inode');
    this.blocks.get(blkno)!.dinode = di;
    return di;
  }

  /** Whether `blkno` is part of this transaction. */
  has(blkno: number): boolean {
    return this.blocks.has(blkno);
  }

  /** Runs after the commit made the new blocks visible (to update in-memory state in step with them). */
  onCommit(fn: () => void): void {
    this.afterCommit.push(fn);
  }

  /**
   * Runs once the change is durable: its journal transaction committed (or,
   * without a journal, its blocks written home).
   */
  onDurable(fn: () => void): void {
    this.durable.push(fn);
  }

  /**
   * Records clusters this change frees in the global bitmap: with the
   * journal they stay unallocatable until the change commits, and journaled
   * copies of their blocks are revoked.
   */
  freedClusters(cluster: number, count: number): void {
    this.freed.push({ cluster, count });
  }

  get size(): number {
    return this.blocks.size;
  }

  abort(): void {
    if (this.state === 'open') this.state = 'aborted';
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new Error(`transaction ${this.label} is ${this.state}`);
    this.state = 'committed';
    const { cache, device, geo, features } = this.ctx;
    const list = this.order.map((blkno) => this.blocks.get(blkno)!);
    for (const b of list) {
      if (b.dinode) encodeDinode(b.dinode, b.buf);
      const off = checkOffset(b.kind, geo.blockSize);
      if (features.metaEcc && off !== null) computeBlockCheck(b.buf, off);
    }
    const journal = this.ctx.journal;
    if (journal) {
      journal.checkUsable();
      // Readers switch to the new state all at once: the journal pins the new copies in the cache.
      journal.add({ blocks: list, freedClusters: this.freed, onDurable: this.durable });
      for (const fn of this.afterCommit) fn();
      trace('%s: %d blocks into journal transaction %d', this.label, list.length, journal.runningTid);
      if (journal.overfull) await journal.commit();
      return;
    }
    // Readers switch to the new state all at once: nothing awaits between these puts.
    const done = list.map((b) => cache.putWriting(b.blkno, b.buf, b.kind));
    for (const fn of this.afterCommit) fn();
    trace('%s: %d blocks', this.label, list.length);
    try {
      for (const phase of PHASES) {
        const batch = list.filter((b) => b.phase === phase);
        await Promise.all(batch.map((b) => device.write(b.buf, b.blkno * geo.blockSize)));
      }
    } finally {
      for (const d of done) d();
    }
    for (const fn of this.durable) fn();
  }
}

/**
 * The decoded inode of `inode` for modification in `tx`; at commit the
 * in-memory inode switches to it (dropping cached extents or directory index
 * when the caller says those changed).
 */
export function editInode(
  tx: Transaction,
  inode: { ino: number; update(di: Dinode, opts: { extentsChanged?: boolean; entriesChanged?: boolean }): void },
  changed: { extentsChanged?: boolean; entriesChanged?: boolean } = {},
): Promise<Dinode> {
  const edit = (di: Dinode): Dinode => {
    tx.onCommit(() => inode.update(di, changed));
    return di;
  };
  const now = tx.inodeNow(inode.ino);
  return now ? Promise.resolve(edit(now)) : tx.inode(inode.ino).then(edit);
}

/**
 * Runs `fn` in a new transaction and commits it; if `fn` (or the commit's
 * preparation) throws, the transaction is aborted and nothing is written.
 * Callers hold the volume's metadata lock.
 */
export async function withTransaction<T>(host: { begin(label: string): Transaction }, label: string,
  fn: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx = host.begin(label);
  try {
    const result = await fn(tx);
    await tx.commit();
    return result;
  } catch (err) {
    tx.abort();
    throw err;
  }
}
