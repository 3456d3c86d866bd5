/**
 * The mounting slot's JBD2 journal: where every committed metadata change
 * goes before it reaches its home location.
 *
 * A handle (fs/transaction.ts) commits by handing its blocks to the running
 * journal transaction, in one synchronous step, and returns; the blocks are
 * visible to readers at once (pinned in the block cache) and nothing is
 * written home yet. The running transaction is committed to the log every
 * commit interval, when it grows past a quarter of the log, and when fsync,
 * sync or unmount asks:
 *
 *   1. descriptor blocks with one tag per block, the block copies (escaped
 *      when they begin with the JBD2 magic), revoke blocks; flush;
 *   2. the commit block; flush. From here the transaction survives a crash.
 *
 * Ordered data (the kernel's data=ordered) needs no step of its own here:
 * the write path writes every byte of newly allocated or converted clusters
 * (data or zeros) to the device before the handle that maps them commits
 * (fs/fileWrite.ts), so the flush in step 1 makes that data durable before
 * the commit block that exposes it.
 *
 * Checkpointing writes the newest committed copy of each block home, flushes,
 * and only then moves the log's tail (s_start/s_sequence in the journal
 * superblock) past those transactions, so their log space can be reused.
 *
 * Freed clusters. A cluster freed by a transaction must not be reused before
 * that transaction commits (else a crash could replay a world where the old
 * owner still has it, holding the new owner's data); the allocator asks
 * `reusable()` (the role of ext3's committed bitmap). A freed cluster that
 * held journaled metadata (directory blocks) gets a revoke record, so replay
 * does not write old metadata over whatever reuses it, and its older copies
 * leave the checkpoint once the revoke is committed.
 *
 * Only commits and checkpoints write the log and the journal superblock, one
 * at a time (a promise chain). If the log cannot be written the journal
 * aborts: later commits fail with EIO and the volume must be remounted.
 */
import createDebug from 'debug';
import type { Device } from '../../io/device';
import type { BlockCache } from '../../cache/blockCache';
import type { Geometry } from '../super';
import type { JournalSpace } from './space';
import { unwritableBecause } from './space';
import {
  type JournalSuperblock, type JournalTag, encodeDescriptorBlock, encodeRevokeBlock, encodeCommitBlock, journalTagBytes,
  revokeRecordBytes, JBD2_MAGIC_NUMBER, JBD2_DESCRIPTOR_BLOCK, JBD2_REVOKE_BLOCK, JBD2_COMMIT_BLOCK, JBD2_FLAG_ESCAPE,
  JBD2_FLAG_SAME_UUID, JBD2_FLAG_LAST_TAG, JBD2_FEATURE_INCOMPAT_64BIT, JOURNAL_HEADER_SIZE, JOURNAL_REVOKE_HEADER_SIZE,
} from '../format/jbd2';
import { FsError } from '../errors';
import { nowTimespec } from '../times';

const trace = createDebug('o2fuse:journal');

/** The kernel's default commit interval (JBD2_DEFAULT_MAX_COMMIT_AGE). */
export const DEFAULT_COMMIT_INTERVAL_MS = 5000;
const UUID_BYTES = 16;

export interface JournalHost {
  readonly device: Device;
  readonly cache: BlockCache;
  readonly geo: Geometry;
}

/** One handle's share of a journal transaction. */
export interface HandleBlocks {
  blocks: readonly { blkno: number; buf: Buffer; kind: string }[];
  /** Clusters freed: [first cluster, count) runs. */
  freedClusters: readonly { cluster: number; count: number }[];
  /** Run when the transaction holding this handle is durable in the log. */
  onDurable: readonly (() => void)[];
}

interface LogTx {
  tid: number;
  blocks: Map<number, Buffer>;
  pins: Map<number, () => void>;
  revokes: Set<number>;
  freed: { cluster: number; count: number }[];
  onDurable: (() => void)[];
  /** Log blocks this transaction will take (kept up to date as handles join). */
  logBlocks: number;
}

export interface JournalStats {
  commits: number;
  checkpoints: number;
  logBlocksWritten: number;
  homeBlocksWritten: number;
  revokes: number;
}

export class Journal {
  private readonly jsb: JournalSuperblock;
  private readonly first: number;
  private readonly last: number;
  private readonly tagBytes: number;
  private readonly tagsPerDescriptor: number;
  private readonly revokesPerBlock: number;
  private running: LogTx;
  /** Committed, not yet checkpointed, oldest first. */
  private committed: LogTx[] = [];
  /** Every block of a transaction not yet checkpointed: how many of those transactions hold it. */
  private readonly logged = new Map<number, number>();
  /** Cluster runs freed by transactions not yet committed: not to be reused before. */
  private pendingFree: { cluster: number; count: number; tid: number }[] = [];
  private head: number;
  private used = 0;
  /**
   * Sequence of the next transaction to reach the log: where replay starts
   * once everything before it is home. Not the running transaction's while a
   * commit is between taking it and writing it.
   */
  private nextLogTid: number;
  private chain: Promise<void> = Promise.resolve();
  private committing = false;
  private timer: NodeJS.Timeout | null = null;
  private failed: Error | null = null;
  private stopped = false;
  readonly stats: JournalStats = { commits: 0, checkpoints: 0, logBlocksWritten: 0, homeBlocksWritten: 0, revokes: 0 };

  private constructor(private readonly host: JournalHost, readonly space: JournalSpace, jsb: JournalSuperblock,
    private readonly commitIntervalMs: number) {
    this.jsb = jsb;
    this.first = jsb.s_first;
    this.last = jsb.s_maxlen;
    const bs = space.blockSize;
    const inc = jsb.s_feature_incompat;
    this.tagBytes = journalTagBytes(inc);
    this.tagsPerDescriptor = 1 + Math.floor((bs - JOURNAL_HEADER_SIZE - this.tagBytes - UUID_BYTES) / this.tagBytes);
    // 8 bytes a revoke either way: see writeLog for why 32-bit records are written twice.
    this.revokesPerBlock = Math.floor((bs - JOURNAL_REVOKE_HEADER_SIZE) / 8);
    this.head = this.first;
    this.running = this.newTx(jsb.s_sequence || 1);
    this.nextLogTid = this.running.tid;
  }

  /**
   * Opens a clean journal (replay has been done) for writing: the log starts
   * empty at s_first with the superblock's next sequence number.
   */
  static async open(host: JournalHost, space: JournalSpace, volumeBlocks: number,
    commitIntervalMs = DEFAULT_COMMIT_INTERVAL_MS): Promise<Journal> {
    const jsb = await space.readSuperblock();
    const why = unwritableBecause(jsb);
    if (why) throw new FsError('EROFS', `journal of slot ${space.slot}: o2fuse cannot write it: ${why}; mount with -o ro`);
    // The caller replayed the journal if its inode said dirty; whatever s_start says now is already home
    // (mkfs.ocfs2 leaves s_start 1 in a fresh journal).
    // A volume past 2^32 blocks needs 64-bit tags (the kernel sets the feature the same way).
    if (volumeBlocks > 0xffffffff) jsb.s_feature_incompat |= JBD2_FEATURE_INCOMPAT_64BIT;
    const j = new Journal(host, space, jsb, commitIntervalMs);
    if (j.capacity < 16) throw new FsError('EROFS', `journal of slot ${space.slot} has only ${j.capacity} log blocks`);
    // The log is live from here: s_start names where replay must begin.
    jsb.s_start = j.head;
    jsb.s_sequence = j.nextLogTid;
    await space.writeSuperblock(jsb);
    await host.device.flush();
    trace('slot %d: journal open, %d log blocks from %d, next transaction %d', space.slot, j.capacity, j.first, j.running.tid);
    j.timer = setInterval(() => j.tick(), commitIntervalMs);
    j.timer.unref();
    return j;
  }

  get capacity(): number {
    return this.last - this.first;
  }

  /** The transaction the next handle joins. */
  get runningTid(): number {
    return this.running.tid;
  }

  private newTx(tid: number): LogTx {
    return { tid: tid >>> 0 || 1, blocks: new Map(), pins: new Map(), revokes: new Set(), freed: [], onDurable: [],
      logBlocks: 1 };
  }

  private estimate(tx: LogTx): number {
    return Math.ceil(tx.blocks.size / this.tagsPerDescriptor) + tx.blocks.size +
      Math.ceil(tx.revokes.size / this.revokesPerBlock) + 1;
  }

  /**
   * For a change about to join the running transaction. Once the journal has aborted nothing more can be recorded,
   * and the volume takes no more changes (EROFS, as the kernel's ocfs2 and ext4 answer once a journal abort has
   * made the filesystem read-only); the change whose log write failed got that write's EIO, and fsync still
   * answers EIO (its data may not be on stable storage).
   */
  checkUsable(): void {
    if (this.failed) throw new FsError('EROFS', `journal of slot ${this.space.slot} aborted (${this.failed.message}): the volume takes no more changes until it is mounted again`);
    if (this.stopped) throw new FsError('EROFS', `journal of slot ${this.space.slot} is closed`);
  }

  /** The error that aborted the journal, or null. */
  get abortedBy(): Error | null {
    return this.failed;
  }

  /**
   * Cluster runs in [start, end) freed by transactions that have not
   * committed: the allocator treats them as in use.
   */
  pendingFrees(start: number, end: number): { cluster: number; count: number }[] {
    return this.pendingFree.filter((r) => r.cluster < end && r.cluster + r.count > start);
  }

  /** Whether freed clusters wait for a commit (an allocation that found nothing should commit and retry). */
  get hasPendingFrees(): boolean {
    return this.pendingFree.length > 0;
  }

  /**
   * A handle's blocks join the running transaction. Synchronous: the caller
   * has made the blocks visible; from here they are pinned until checkpointed.
   */
  add(h: HandleBlocks): void {
    this.checkUsable();
    const tx = this.running;
    // Frees first: a block the handle both frees and reuses keeps the handle's copy.
    const bpc = this.host.geo.bpc;
    for (const run of h.freedClusters) {
      tx.freed.push(run);
      this.pendingFree.push({ ...run, tid: tx.tid });
      // Revoke the run's blocks that some transaction in the log still carries.
      const firstBlk = run.cluster * bpc;
      const endBlk = firstBlk + run.count * bpc;
      const revoke = (blkno: number) => {
        tx.revokes.add(blkno);
        if (tx.blocks.delete(blkno)) {
          tx.pins.get(blkno)?.();
          tx.pins.delete(blkno);
          this.unlog(blkno);
        }
      };
      if (endBlk - firstBlk <= this.logged.size) {
        for (let b = firstBlk; b < endBlk; b++) if (this.logged.has(b)) revoke(b);
      } else {
        for (const b of [...this.logged.keys()]) if (b >= firstBlk && b < endBlk) revoke(b);
      }
    }
    for (const b of h.blocks) {
      if (!tx.blocks.has(b.blkno)) this.logged.set(b.blkno, (this.logged.get(b.blkno) ?? 0) + 1);
      tx.blocks.set(b.blkno, b.buf);
      // Freed and reused as metadata within this transaction: the new copy must replay (jbd2's cancel revoke).
      tx.revokes.delete(b.blkno);
      // Pin the new copy before unpinning the handle's older one: the cache then overwrites its entry in
      // place. Unpinning first deleted and re-added the key, and a V8 Map keeps deleted entries in the
      // bucket chain until it rehashes, so a hot block (an allocator's group descriptor, the directory
      // being filled) grew a chain thousands of entries long: 2-3 us per Map.set on a 10,000-block
      // transaction, a fifth of a create.
      const older = tx.pins.get(b.blkno);
      tx.pins.set(b.blkno, this.host.cache.putWriting(b.blkno, b.buf, b.kind));
      older?.();
    }
    tx.onDurable.push(...h.onDurable);
    tx.logBlocks = this.estimate(tx);
    if (tx.logBlocks > this.capacity / 4 && !this.committing) {
      this.commit().catch((err) => trace('slot %d: background commit failed: %s', this.space.slot, (err as Error).message));
    }
  }

  /** Whether the running transaction is so large that new handles should wait for a commit. */
  get overfull(): boolean {
    return this.running.logBlocks > this.capacity / 2;
  }

  private unlog(blkno: number): void {
    const n = (this.logged.get(blkno) ?? 0) - 1;
    if (n > 0) this.logged.set(blkno, n);
    else this.logged.delete(blkno);
  }

  /** Runs `fn` after every commit and checkpoint queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.then(() => undefined, () => undefined);
    return p;
  }

  /**
   * Commits the running transaction (if it holds anything) and makes the
   * device durable: what fsync and sync wait for.
   */
  commit(): Promise<void> {
    this.checkUsable();
    return this.serial(async () => {
      this.checkUsable();
      const tx = this.running;
      if (tx.blocks.size === 0 && tx.revokes.size === 0 && tx.freed.length === 0) {
        await this.host.device.flush();
        for (const fn of tx.onDurable.splice(0)) fn();
        return;
      }
      this.committing = true;
      try {
        await this.commitTx(tx);
      } finally {
        this.committing = false;
      }
    });
  }

  private async commitTx(tx: LogTx): Promise<void> {
    this.running = this.newTx(tx.tid + 1);
    try {
      const need = this.estimate(tx);
      if (need > this.capacity) {
        throw new FsError('EIO', `transaction ${tx.tid} needs ${need} log blocks, the journal has ${this.capacity}`);
      }
      if (this.used + need > this.capacity) await this.checkpointNow();
      const start = this.head;
      const n = await this.writeLog(tx);
      this.head = this.wrap(start + n);
      this.used += n;
      this.nextLogTid = (tx.tid + 1) >>> 0;
      this.stats.commits++;
      this.stats.logBlocksWritten += n;
      this.committed.push(tx);
      trace('slot %d: transaction %d committed at log block %d: %d blocks, %d revoked, %d log blocks',
        this.space.slot, tx.tid, start, tx.blocks.size, tx.revokes.size, n);
    } catch (err) {
      this.abort(err as Error);
      throw this.failedError();
    }
    this.durable(tx);
  }

  /** The transaction's revokes are committed: older copies of those blocks leave the checkpoint; its frees become reusable. */
  private durable(tx: LogTx): void {
    for (const blkno of tx.revokes) {
      for (const old of this.committed) {
        if (old === tx || !old.blocks.delete(blkno)) continue;
        old.pins.get(blkno)?.();
        old.pins.delete(blkno);
        this.unlog(blkno);
      }
    }
    if (tx.freed.length) this.pendingFree = this.pendingFree.filter((r) => r.tid !== tx.tid);
    this.stats.revokes += tx.revokes.size;
    for (const fn of tx.onDurable) fn();
  }

  private wrap(lblk: number): number {
    return lblk >= this.last ? this.first + (lblk - this.last) : lblk;
  }

  /** Writes the transaction's log blocks at the head, flushes, writes its commit block, flushes. Returns blocks used. */
  private async writeLog(tx: LogTx): Promise<number> {
    const bs = this.space.blockSize;
    const inc = this.jsb.s_feature_incompat;
    const bufs: Buffer[] = [];
    const entries = [...tx.blocks.entries()].sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < entries.length; i += this.tagsPerDescriptor) {
      const group = entries.slice(i, i + this.tagsPerDescriptor);
      const tags: JournalTag[] = [];
      const copies: Buffer[] = [];
      group.forEach(([blkno, buf], k) => {
        let flags = k === 0 ? 0 : JBD2_FLAG_SAME_UUID;
        let data = buf;
        if (buf.readUInt32BE(0) === JBD2_MAGIC_NUMBER) {
          // A block that would read as a journal block is logged with its magic zeroed.
          flags |= JBD2_FLAG_ESCAPE;
          data = Buffer.from(buf);
          data.writeUInt32BE(0, 0);
        }
        if (k === group.length - 1) flags |= JBD2_FLAG_LAST_TAG;
        tags.push({ t_blocknr: blkno % 2 ** 32, t_blocknr_high: Math.floor(blkno / 2 ** 32), t_flags: flags, t_checksum: 0,
          uuid: k === 0 ? this.jsb.s_uuid : undefined });
        copies.push(data);
      });
      const desc = Buffer.alloc(bs);
      encodeDescriptorBlock({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_DESCRIPTOR_BLOCK, h_sequence: tx.tid, tags }, desc, inc);
      bufs.push(desc, ...copies);
    }
    const revokes = [...tx.revokes].sort((a, b) => a - b);
    const recBytes = revokeRecordBytes(inc);
    for (let i = 0; i < revokes.length; i += this.revokesPerBlock) {
      let records = revokes.slice(i, i + this.revokesPerBlock);
      // fsck.ocfs2 1.8.7 reads (r_count - 16) / 8 four-byte records from a 32-bit journal's revoke block (it
      // divides by the size of a pointer): written twice, the list reads whole to it, and the kernel and our
      // replay, which read r_count / 4 records, just see each revoke twice, which is harmless.
      if (recBytes === 4) records = [...records, ...records];
      const blk = Buffer.alloc(bs);
      encodeRevokeBlock({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_REVOKE_BLOCK, h_sequence: tx.tid,
        r_count: JOURNAL_REVOKE_HEADER_SIZE + records.length * recBytes, records }, blk, inc);
      bufs.push(blk);
    }
    const start = this.head;
    if (bufs.length) await this.space.writeRun(start, bufs, this.first, this.last);
    await this.host.device.flush();
    const now = nowTimespec();
    const commit = Buffer.alloc(bs);
    encodeCommitBlock({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_COMMIT_BLOCK, h_sequence: tx.tid, h_chksum_type: 0,
      h_chksum_size: 0, h_padding: Buffer.alloc(2), h_chksum: new Array(8).fill(0), h_commit_sec: now.sec, h_commit_nsec: now.nsec }, commit);
    await this.space.write(this.wrap(start + bufs.length), commit);
    await this.host.device.flush();
    return bufs.length + 1;
  }

  /** Writes every committed transaction's blocks home and frees their log space. */
  checkpoint(): Promise<void> {
    this.checkUsable();
    return this.serial(async () => {
      this.checkUsable();
      try {
        await this.checkpointNow();
      } catch (err) {
        this.abort(err as Error);
        throw this.failedError();
      }
    });
  }

  private async checkpointNow(): Promise<void> {
    if (!this.committed.length) return;
    const txs = this.committed;
    const latest = new Map<number, Buffer>();
    for (const tx of txs) for (const [blkno, buf] of tx.blocks) latest.set(blkno, buf);
    const bs = this.space.blockSize;
    const sorted = [...latest.keys()].sort((a, b) => a - b);
    // Adjacent blocks go out as one request; at most 64 requests in flight.
    const runs: { blkno: number; bufs: Buffer[] }[] = [];
    for (const blkno of sorted) {
      const r = runs[runs.length - 1];
      if (r && r.blkno + r.bufs.length === blkno && r.bufs.length < 256) r.bufs.push(latest.get(blkno)!);
      else runs.push({ blkno, bufs: [latest.get(blkno)!] });
    }
    for (let i = 0; i < runs.length; i += 64) {
      await Promise.all(runs.slice(i, i + 64).map((r) =>
        this.host.device.writev(r.bufs, r.blkno * bs)));
    }
    await this.host.device.flush();
    // Home copies are durable: the log may forget these transactions.
    this.committed = [];
    for (const tx of txs) {
      for (const blkno of tx.blocks.keys()) this.unlog(blkno);
      for (const unpin of tx.pins.values()) unpin();
    }
    this.used = 0;
    this.jsb.s_start = this.head;
    this.jsb.s_sequence = this.nextLogTid;
    await this.space.writeSuperblock(this.jsb);
    await this.host.device.flush();
    this.stats.checkpoints++;
    this.stats.homeBlocksWritten += sorted.length;
    trace('slot %d: checkpoint of transactions %d..%d: %d blocks home, log tail at %d', this.space.slot,
      txs[0].tid, txs[txs.length - 1].tid, sorted.length, this.head);
  }

  private tick(): void {
    if (this.failed || this.stopped) return;
    const tx = this.running;
    const pending = tx.blocks.size > 0 || tx.revokes.size > 0 || tx.freed.length > 0;
    const work = pending ? this.commit() : Promise.resolve();
    work.then(() => (this.committed.length ? this.checkpoint() : undefined))
      .catch((err) => trace('slot %d: periodic commit failed: %s', this.space.slot, (err as Error).message));
  }

  private abort(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    // Said on stderr as well as the trace, as the kernel says it in its log: every later change fails with EROFS.
    console.error(`o2fuse: journal of slot ${this.space.slot} aborted (${err.message}): the volume is read-only until it is mounted again`);
    trace('slot %d: journal aborted: %s', this.space.slot, err.message);
  }

  private failedError(): FsError {
    return new FsError('EIO', `journal of slot ${this.space.slot} aborted: ${this.failed?.message ?? 'unknown error'}`);
  }

  /**
   * Clean close: commits, checkpoints, and leaves the log empty (s_start 0)
   * with the next sequence number, as jbd2 does at unmount.
   */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.stopped) return;
    await this.commit();
    await this.checkpoint();
    await this.serial(async () => {
      this.stopped = true;
      this.jsb.s_start = 0;
      this.jsb.s_sequence = this.nextLogTid;
      await this.space.writeSuperblock(this.jsb);
      await this.host.device.flush();
    });
    trace('slot %d: journal closed clean, next transaction %d', this.space.slot, this.running.tid);
  }

  /** Stops without writing anything more (the device failed or the volume is being torn down after an error). */
  halt(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
  }
}
