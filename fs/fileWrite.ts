/**
 * File data, write side: "put these bytes in the file now" and truncate
 * (the kernel's file.c / aops.c work below the page cache, which will sit
 * above this later).
 *
 * Inline-data files are written inside the inode while they fit and
 * converted to an extent list when they stop fitting
 * (ocfs2_convert_inline_data_to_extents). Extent-mapped files get clusters
 * for their holes (or, without sparse-alloc, for everything up to the end of
 * the write), and unwritten extents they write into become written.
 *
 * Clusters shared with a reflink (OCFS2_EXT_REFCOUNTED) are copied on write,
 * as the kernel's ocfs2_refcount_cow does: each whole cluster the write
 * touches that another file still has (counted more than once) gets a new
 * cluster holding the old bytes with the write's over them (zeros for an
 * unwritten one), the file's extent points there, and the old cluster counts
 * one fewer in the refcount tree; the other files keep reading it untouched.
 * A cluster counted once (the others let go of it) is the file's alone: it is
 * written in place and only loses its flag and its record, as in the kernel.
 * Zeroing for a truncate or past the end of file unshares its clusters the
 * same way first.
 *
 * The rules that keep a crash and a reader from seeing stale disk bytes:
 * - every byte of a cluster that becomes readable is written first: the data,
 *   and zeros for what the write does not cover (new clusters, converted
 *   unwritten clusters, and the gap between the old end of file and a write
 *   past it);
 * - data and zeros reach the device before the transaction that points at
 *   them commits (ordered mode); data blocks never go through the transaction;
 * - truncating down zeros the tail of the new last cluster, so a later
 *   extension reads zeros there.
 *
 * ENOSPC: clusters and extent blocks are claimed before any byte is written;
 * when the volume runs out part-way, the part of the write that got space is
 * written and committed (a short write), and nothing at all when none did.
 * Large writes and truncates run as several transactions, each leaving a
 * consistent volume.
 *
 * Callers hold the volume's metadata lock and the inode's write lock.
 */
import createDebug from 'debug';
import { DeviceError } from '../io/device';
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import { editInode, withTransaction } from './transaction';
import type { Inode } from './inode';
import type { Geometry } from './super';
import type { Dinode } from './format/dinode';
import { extentRecsPerInodeWithXattr, maxInlineDataWithXattr } from './format/dinode';
import { emptyExtentList } from './format/extent';
import { OCFS2_EXT_REFCOUNTED, OCFS2_EXT_UNWRITTEN, OCFS2_INLINE_DATA_FL } from './format/constants';
import { type Extent, findExtent, isUnwritten } from './extentMap';
import { dataExtents, mapRange } from './file';
import { ExtentTree, dinodeExtentRoot, releaseRuns, truncateClustersStep } from './extentTree';
import { nowTimespec, stamp, stampModified } from './times';
import { FsError, errnoOf } from './errors';
import { writeBlocks, type DeviceWrite } from './blockIo';
import type { ClusterRun } from './allocApi';
import { countsOf } from './refcountCounts';
import { decreaseRefcount, refcountRootOf } from './refcountDecrease';

const trace = createDebug('o2fuse:fs');

/** What writing needs from the volume: the context and a way to start transactions. */
export interface WriteHost extends VolumeContext {
  begin(label: string): Transaction;
}

/** Bytes of file one transaction covers at most (a whole number of clusters, at least one). */
const TX_BYTES_MAX = 32 * 1024 * 1024;
/** Leaves one truncate transaction empties at most. */
const TRUNCATE_LEAVES_PER_TX = 256;
/** Largest single zero-fill device write. */
const ZERO_CHUNK_BYTES = 1024 * 1024;

let zeroChunk: Buffer | undefined;

/**
 * The largest file size (the kernel's ocfs2_max_file_offset on 64-bit):
 * i_clusters is 32 bits, and one cluster is kept back so that no extent
 * starts at the very last one.
 */
export function maxFileBytes(geo: Pick<Geometry, 'clusterSize'>): number {
  return geo.clusterSize * 2 ** 32 - geo.clusterSize;
}

/** Bytes of data an inline inode holds. */
export function inlineCapacity(blockSize: number, di: Dinode): number {
  const max = maxInlineDataWithXattr(blockSize, di);
  return di.data ? Math.min(max, di.data.id_count) : max;
}

function checkOffset(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new FsError('EINVAL', `${what} ${n}`);
}

function isEnospc(err: unknown): boolean {
  return errnoOf(err) === 'ENOSPC';
}

// ---- device I/O ----

interface IoItem {
  deviceOffset: number;
  /** Bytes to write; absent: zeroBytes zeros. */
  buf?: Buffer;
  zeroBytes?: number;
}

/**
 * Puts the items on the device as whole blocks (fs/blockIo.ts): a piece that
 * starts or ends inside a block of existing data costs a read-modify-write of
 * that block, exactly as on a real block device; callers that can race with
 * direct writes hold the unaligned gate around the whole write.
 */
async function runIo(ctx: VolumeContext, items: readonly IoItem[]): Promise<void> {
  const writes: DeviceWrite[] = [];
  for (const it of items) {
    if (it.buf) {
      if (it.buf.length) writes.push({ deviceOffset: it.deviceOffset, buf: it.buf });
      continue;
    }
    zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
    let left = it.zeroBytes ?? 0;
    let at = it.deviceOffset;
    while (left > 0) {
      const n = Math.min(left, ZERO_CHUNK_BYTES);
      writes.push({ deviceOffset: at, buf: n === ZERO_CHUNK_BYTES ? zeroChunk : zeroChunk.subarray(0, n) });
      at += n;
      left -= n;
    }
  }
  await writeBlocks(ctx, writes, 'allocating write');
}

/**
 * Zeros on the device every written (mapped, not unwritten) byte of the file in [start, end). Clusters shared with
 * a reflink are copied on write first (fillRange with no data): the zeros must not reach the other files.
 */
async function zeroWrittenRange(host: WriteHost, inode: Inode, start: number, end: number): Promise<void> {
  if (end <= start || inode.inline) return;
  let segs = await mapRange(host, inode, start, end - start);
  const shared = segs.filter((s) => s.refcounted && s.deviceOffset !== null);
  for (const s of shared) {
    const stop = s.fileOffset + s.length;
    const reached = await fillRange(host, inode, s.fileOffset, stop, null, 0, false);
    if (reached < stop) throw new FsError('ENOSPC', `inode ${inode.ino}: no space to copy its shared clusters on write (at byte ${reached})`);
  }
  if (shared.length) segs = await mapRange(host, inode, start, end - start);
  const items: IoItem[] = [];
  for (const s of segs) {
    if (s.deviceOffset !== null) items.push({ deviceOffset: s.deviceOffset, zeroBytes: s.length });
  }
  await runIo(host, items);
}

/** The bytes to put in a file range: `data` at file offset `offset`; everything else zeros. */
interface Fill {
  offset: number;
  data: Buffer;
  /**
   * Called, once, when the transaction that reaches the end of `data` has everything but its device writes and
   * its commit done: nothing but a device error can refuse the write from there (fs/fileIo.ts, accepted writes).
   */
  accepted?: (written: number) => void;
}

/**
 * File clusters [cpos, cpos+clusters) living at physical cluster `cluster`, as byte offsets: the run [runStart,
 * runEnd), `dev` to add to a file offset for its device offset, and [a, b) the part the fill's data covers
 * (a = b = runEnd when it covers none).
 */
function spanOf(cs: number, cpos: number, clusters: number, cluster: number, fill: Fill | null):
  { runStart: number; runEnd: number; dev: number; a: number; b: number } {
  const runStart = cpos * cs;
  const runEnd = (cpos + clusters) * cs;
  let a = runEnd;
  let b = runEnd;
  if (fill) {
    a = Math.max(runStart, fill.offset);
    b = Math.min(runEnd, fill.offset + fill.data.length);
    if (a >= b) a = b = runEnd;
  }
  return { runStart, runEnd, dev: cluster * cs - runStart, a, b };
}

/**
 * I/O for file clusters [cpos, cpos+clusters) living at physical cluster
 * `cluster`: the data the fill has for them, and with `whole` zeros for the
 * rest of each cluster.
 */
function planClusters(geo: Geometry, items: IoItem[], cpos: number, clusters: number, cluster: number, whole: boolean,
  fill: Fill | null): void {
  const { runStart, runEnd, dev, a, b } = spanOf(geo.clusterSize, cpos, clusters, cluster, fill);
  if (whole && a > runStart) items.push({ deviceOffset: dev + runStart, zeroBytes: a - runStart });
  if (fill && a < b) items.push({ deviceOffset: dev + a, buf: fill.data.subarray(a - fill.offset, b - fill.offset) });
  if (whole && b < runEnd && a < b) items.push({ deviceOffset: dev + b, zeroBytes: runEnd - b });
}

/**
 * I/O for the copy on write of file clusters [cpos, cpos+clusters), shared at physical cluster `from` (null: an
 * unwritten extent, which reads as zeros), to their new place at `cluster`: the fill's data, and around it the
 * bytes the old clusters hold, read now. Only what the data leaves uncovered is read.
 */
async function planCopy(ctx: VolumeContext, items: IoItem[], cpos: number, clusters: number, cluster: number,
  from: number | null, fill: Fill | null): Promise<void> {
  const cs = ctx.geo.clusterSize;
  const { runStart, runEnd, dev, a, b } = spanOf(cs, cpos, clusters, cluster, fill);
  const old = async (x: number, y: number): Promise<void> => {
    if (y <= x) return;
    if (from === null) {
      items.push({ deviceOffset: dev + x, zeroBytes: y - x });
      return;
    }
    const buf = Buffer.allocUnsafe(y - x);
    await ctx.device.readInto(buf, from * cs - runStart + x);
    items.push({ deviceOffset: dev + x, buf });
  };
  await old(runStart, a);
  if (fill && a < b) items.push({ deviceOffset: dev + a, buf: fill.data.subarray(a - fill.offset, b - fill.offset) });
  await old(b, runEnd);
}

// ---- the in-memory extent cache, kept in step with a write's tree changes ----

type Change = { kind: 'map'; ext: Extent } | { kind: 'written'; cpos: number; clusters: number };

/**
 * Brings the inode's cached extents in step with a committed write's tree changes, in place, from its commit
 * callback: nothing awaits in between, so a reader that looks an extent up sees the state before or after, whole.
 * (Copying the list instead cost O(extents) a write: ~130 us of a write into a preallocated file of 26,000 extents.)
 */
function applyChanges(out: Extent[], changes: readonly Change[], bpc: number): Extent[] {
  for (const ch of changes) {
    if (ch.kind === 'map') {
      let lo = 0;
      let hi = out.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (out[mid].cpos < ch.ext.cpos) lo = mid + 1;
        else hi = mid;
      }
      // Contiguous with the extent before it (an append, usually): one extent grows, as the tree's record
      // does, so a file written in small appends keeps a short list.
      const prev = out[lo - 1];
      if (prev && prev.cpos + prev.clusters === ch.ext.cpos && prev.blkno + prev.clusters * bpc === ch.ext.blkno
        && prev.flags === ch.ext.flags) {
        out[lo - 1] = { ...prev, clusters: prev.clusters + ch.ext.clusters };
      } else {
        out.splice(lo, 0, { ...ch.ext });
      }
      continue;
    }
    const a0 = ch.cpos;
    const b0 = ch.cpos + ch.clusters;
    // Only the extents over [a0, b0) change: find the first by bisection (a fragmented file has thousands).
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (out[mid].cpos + out[mid].clusters <= a0) lo = mid + 1;
      else hi = mid;
    }
    const res: Extent[] = [];
    let end = lo;
    for (; end < out.length && out[end].cpos < b0; end++) {
      const e = out[end];
      if (!isUnwritten(e)) {
        res.push(e);
        continue;
      }
      const eEnd = e.cpos + e.clusters;
      const a = Math.max(e.cpos, a0);
      const b = Math.min(eEnd, b0);
      if (e.cpos < a) res.push({ cpos: e.cpos, clusters: a - e.cpos, blkno: e.blkno, flags: e.flags });
      res.push({ cpos: a, clusters: b - a, blkno: e.blkno + (a - e.cpos) * bpc, flags: e.flags & ~OCFS2_EXT_UNWRITTEN });
      if (b < eEnd) res.push({ cpos: b, clusters: eEnd - b, blkno: e.blkno + (b - e.cpos) * bpc, flags: e.flags });
    }
    out.splice(lo, end - lo, ...res);
  }
  return out;
}

// ---- clusters for a byte range ----

interface Seg {
  cpos: number;
  clusters: number;
  /** 'shared': refcounted (reflinked), written or unwritten (`unwritten` says which); copied on write. */
  kind: 'hole' | 'written' | 'unwritten' | 'shared';
  /** Physical cluster of cpos (mapped segments). */
  cluster: number;
  unwritten?: boolean;
}

function segmentsOf(extents: readonly Extent[], c0: number, c1: number, bpc: number): Seg[] {
  const out: Seg[] = [];
  let c = c0;
  while (c < c1) {
    const f = findExtent(extents, c);
    if ('blkno' in f) {
      const n = Math.min(c1, f.cpos + f.clusters) - c;
      const cluster = f.blkno / bpc + (c - f.cpos);
      if (f.flags & OCFS2_EXT_REFCOUNTED) out.push({ cpos: c, clusters: n, kind: 'shared', cluster, unwritten: isUnwritten(f) });
      else out.push({ cpos: c, clusters: n, kind: isUnwritten(f) ? 'unwritten' : 'written', cluster });
      c += n;
    } else {
      const n = Math.min(c1, f.holeEnd) - c;
      out.push({ cpos: c, clusters: n, kind: 'hole', cluster: 0 });
      c += n;
    }
  }
  return out;
}

/** The physical cluster just past the extent before logical cluster c (an allocation goal that keeps the file contiguous). */
function goalBefore(extents: readonly Extent[], c: number, bpc: number): number | undefined {
  let lo = 0;
  let hi = extents.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (extents[mid].cpos < c) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (best < 0) return undefined;
  const e = extents[best];
  return e.blkno / bpc + e.clusters;
}

/**
 * Gives file clusters [cpos, cpos+count) new clusters, claimed run by run from `goal` on: `map` points the tree at
 * a run and says how many of its clusters it mapped (fewer when the volume ran out of extent blocks: ENOSPC counts
 * as none), the rest of the run goes back in the same transaction, and `planned` plans the mapped part's I/O.
 * Returns the clusters done from cpos, fewer than count when space ran out, and the goal for what follows.
 */
async function claimAndMap(host: WriteHost, tx: Transaction, cpos: number, count: number, goal: number | undefined,
  map: (c: number, run: ClusterRun) => Promise<number>,
  planned: (c: number, n: number, cluster: number) => void | Promise<void>): Promise<{ done: number; goal: number | undefined }> {
  let done = 0;
  while (done < count) {
    let run: ClusterRun;
    try {
      run = await host.alloc.claimClusters(tx, 1, count - done, goal);
    } catch (err) {
      if (isEnospc(err)) break;
      throw err;
    }
    let mapped = 0;
    try {
      mapped = await map(cpos + done, run);
    } catch (err) {
      if (!isEnospc(err)) throw err;
    }
    if (mapped < run.count) await host.alloc.freeClusters(tx, { cluster: run.cluster + mapped, count: run.count - mapped });
    if (mapped > 0) {
      await planned(cpos + done, mapped, run.cluster);
      done += mapped;
      goal = run.cluster + mapped;
    }
    if (mapped < run.count) break;
  }
  return { done, goal };
}

/**
 * One transaction's worth of [from, to): holes get clusters, unwritten
 * extents become written, shared clusters are copied on write, `fill` goes
 * to the device with zeros around it in the clusters that become readable
 * (with the old bytes around it in copied ones). When the fill's data was reached,
 * i_size becomes at least min(sizeTarget, what was reached). Returns the
 * byte offset reached (less than `to` when the volume ran out of space;
 * `from` when nothing was done).
 */
async function fillChunk(host: WriteHost, inode: Inode, from: number, to: number, fill: Fill | null, sizeTarget: number,
  stampTimes: boolean): Promise<number> {
  const { geo } = host;
  const cs = geo.clusterSize;
  const bpc = geo.bpc;
  const extents = await dataExtents(host, inode);
  const c0 = Math.floor(from / cs);
  const c1 = Math.ceil(to / cs);
  const owner = `inode ${inode.ino}`;
  const segs = segmentsOf(extents, c0, c1, bpc);
  const tx = host.begin(`write ${owner} ${from}..${to}`);
  try {
    const di = await editInode(tx, inode);
    const tree = new ExtentTree(host, tx, dinodeExtentRoot(di, { sparse: host.features.sparse }));
    const items: IoItem[] = [];
    const changes: Change[] = [];
    /** Runs the copies on write took the file off: lowered in the refcount tree once every copy has its cluster. */
    const copied: Extent[] = [];
    /** Shared runs counted once, now the file's alone (cpos: where in the file): their records go, the clusters stay. */
    const kept: (ClusterRun & { cpos: number })[] = [];
    let reached = c0;
    let goal = goalBefore(extents, c0, bpc);
    space: for (const s of segs) {
      if (s.kind === 'written') {
        planClusters(geo, items, s.cpos, s.clusters, s.cluster, false, fill);
      } else if (s.kind === 'unwritten') {
        let done: number;
        try {
          done = await tree.markWritten(s.cpos, s.clusters, { partial: true });
        } catch (err) {
          if (isEnospc(err)) break space;
          throw err;
        }
        // The converted clusters become readable: their every byte is written (data or zeros).
        planClusters(geo, items, s.cpos, done, s.cluster, true, fill);
        changes.push({ kind: 'written', cpos: s.cpos, clusters: done });
        if (done < s.clusters) {
          reached = s.cpos + done;
          break space;
        }
      } else if (s.kind === 'shared') {
        for (const p of await countsOf(host, tx, refcountRootOf(di, s.cpos), owner, s.cluster, s.clusters)) {
          const pc = s.cpos + (p.r_cpos - s.cluster);
          if (p.r_refcount === 1) {
            // Nobody else has these clusters any more: they stay where they are and are written in place, no longer
            // flagged shared, and their record goes (the kernel's ocfs2_clear_ext_refcount): no copy, no space.
            let done = 0;
            try {
              done = (await tree.remap(pc, p.r_clusters, p.r_cpos * bpc, 0, { partial: true })).done;
            } catch (err) {
              if (!isEnospc(err)) throw err;
            }
            if (done > 0) {
              planClusters(geo, items, pc, done, p.r_cpos, s.unwritten === true, fill);
              kept.push({ cluster: p.r_cpos, count: done, cpos: pc });
              trace('%s: clusters %d..%d (at cluster %d) are counted once: written in place, shared no more', owner, pc, pc + done, p.r_cpos);
              reached = pc + done;
              goal = p.r_cpos + done;
            }
            if (done < p.r_clusters) break space;
            continue;
          }
          const got = await claimAndMap(host, tx, pc, p.r_clusters, goal, async (c, run) => {
            const moved = await tree.remap(c, run.count, run.cluster * bpc, 0, { partial: true });
            copied.push(...moved.replaced);
            return moved.done;
          }, async (c, n, cluster) => {
            const old = p.r_cpos + (c - pc);
            await planCopy(host, items, c, n, cluster, s.unwritten ? null : old, fill);
            trace('%s: copy on write of clusters %d..%d (shared %dx at cluster %d) to cluster %d', owner, c, c + n, p.r_refcount, old, cluster);
          });
          goal = got.goal;
          if (got.done > 0) reached = pc + got.done;
          if (got.done < p.r_clusters) break space;
        }
        continue;
      } else {
        const got = await claimAndMap(host, tx, s.cpos, s.clusters, goal,
          (c, run) => tree.insert({ cpos: c, clusters: run.count, blkno: run.cluster * bpc, flags: 0 }, { partial: true }),
          (c, n, cluster) => {
            planClusters(geo, items, c, n, cluster, true, fill);
            changes.push({ kind: 'map', ext: { cpos: c, clusters: n, blkno: cluster * bpc, flags: 0 } });
          });
        goal = got.goal;
        if (got.done > 0) reached = s.cpos + got.done;
        if (got.done < s.clusters) break space;
        continue;
      }
      reached = s.cpos + s.clusters;
      goal = s.cluster + s.clusters;
    }
    const reachedBytes = Math.min(to, reached * cs);
    if (reachedBytes <= from) {
      tx.abort();
      return from;
    }
    // After every claim: a cluster this frees (its last sharer gone) is not handed out again in the same change.
    if (copied.length) await releaseRuns(host, tx, di, copied);
    for (const k of kept) {
      const dropped = await decreaseRefcount(host, tx, refcountRootOf(di, k.cpos), owner, k.cluster, k.count);
      if (dropped.reduce((n, r) => n + r.count, 0) !== k.count) {
        throw new FsError('EIO', `${owner}: clusters ${k.cluster}+${k.count} changed count within one change; run fsck.ocfs2`);
      }
    }
    const accepted = fill?.accepted;
    if (accepted && reachedBytes === to && to === fill.offset + fill.data.length) {
      fill.accepted = undefined;
      accepted(fill.data.length);
    }
    // Ordered mode: everything the new metadata exposes is on the device before it commits.
    await runIo(host, items);
    // The size moves only over data: zeros of a gap before the write (no sparse-alloc) do not make the file longer.
    if (fill && reachedBytes > fill.offset) di.i_size = Math.max(di.i_size, Math.min(sizeTarget, reachedBytes));
    if (stampTimes) {
      const now = nowTimespec();
      stamp(di, 'mtime', now);
      stamp(di, 'ctime', now);
    }
    const before = inode.extents;
    if (copied.length || kept.length) {
      tx.onCommit(() => { inode.extents = undefined; });
    } else if (changes.length) {
      tx.onCommit(() => {
        inode.extents = before ? applyChanges(before, changes, bpc) : undefined;
      });
    }
    await tx.commit();
    if (reachedBytes < to) trace('%s: out of space at byte %d of %d..%d', owner, reachedBytes, from, to);
    return reachedBytes;
  } catch (err) {
    tx.abort();
    throw err;
  }
}

/**
 * fillChunk over [from, to) in transactions of at most TX_BYTES_MAX; returns the offset reached. A write whose
 * earlier transactions committed some of its bytes ends short at a later refusal (ENOSPC, EOPNOTSUPP, EIO), as
 * write(2) does: its caller learns what reached the file, not an error for bytes that are there.
 */
async function fillRange(host: WriteHost, inode: Inode, from: number, to: number, fill: Fill | null, sizeTarget: number,
  stampTimes: boolean): Promise<number> {
  const cs = host.geo.clusterSize;
  const step = Math.max(cs, Math.floor(TX_BYTES_MAX / cs) * cs);
  const accepted = fill?.accepted;
  let cur = from;
  while (cur < to) {
    const chunkEnd = Math.min(to, Math.floor(cur / cs) * cs + step);
    let got: number;
    try {
      got = await fillChunk(host, inode, cur, chunkEnd, fill, sizeTarget, stampTimes);
    } catch (err) {
      if (!fill || cur <= fill.offset || !(err instanceof FsError || err instanceof DeviceError)) throw err;
      // Answered already (fillChunk called `accepted`): the error must reach the next fsync, not vanish here.
      if (accepted && !fill.accepted) throw err;
      trace('inode %d: write at %d ends short at %d: %s', inode.ino, fill.offset, cur, err.message);
      return cur;
    }
    if (got < chunkEnd) return got;
    cur = chunkEnd;
  }
  return to;
}

// ---- inline data ----

async function writeInline(host: WriteHost, inode: Inode, offset: number, data: Buffer): Promise<number> {
  await withTransaction(host, `write inline inode ${inode.ino}`, async (tx) => {
    const di = await editInode(tx, inode);
    const id = di.data!;
    // Bytes between the old end and the write read as zeros.
    if (offset > di.i_size) id.id_data.fill(0, di.i_size, offset);
    data.copy(id.id_data, offset);
    di.i_size = Math.max(di.i_size, offset + data.length);
    stampModified(di);
  });
  return data.length;
}

/**
 * Moves an inline-data file's bytes into a cluster and gives the inode an
 * empty extent list (ocfs2_convert_inline_data_to_extents). A file with no
 * bytes gets no cluster. ENOSPC leaves the file inline.
 */
export async function convertInlineToExtents(host: WriteHost, inode: Inode): Promise<void> {
  if (!inode.inline) return;
  if (!inode.isReg) throw new FsError('EOPNOTSUPP', `inode ${inode.ino}: only regular files are converted from inline data here`);
  const { geo } = host;
  await withTransaction(host, `inline to extents inode ${inode.ino}`, async (tx) => {
    const di = await editInode(tx, inode, { extentsChanged: true });
    const size = di.i_size;
    const bytes = Buffer.from(di.data!.id_data.subarray(0, size));
    di.i_dyn_features &= ~OCFS2_INLINE_DATA_FL;
    di.data = undefined;
    di.tail = undefined;
    di.list = emptyExtentList(extentRecsPerInodeWithXattr(geo.blockSize, di));
    di.i_last_eb_blk = 0;
    if (size > 0) {
      const run = await host.alloc.claimClusters(tx, 1, 1);
      const tree = new ExtentTree(host, tx, dinodeExtentRoot(di, { sparse: host.features.sparse }));
      await tree.insert({ cpos: 0, clusters: 1, blkno: run.cluster * geo.bpc, flags: 0 });
      const cluster = Buffer.alloc(geo.clusterSize);
      bytes.copy(cluster);
      await host.device.write(cluster, run.cluster * geo.clusterSize);
    }
    trace('inode %d: inline data (%d bytes) moved to extents', inode.ino, size);
  });
}

// ---- the operations ----

/**
 * Writes `data` at byte `offset` of a regular file, now: allocates what the
 * range needs, writes data and zeros to the device, then commits i_size,
 * i_clusters, the extent changes, mtime and ctime. Returns the bytes
 * written: all of them, or fewer when the maximum file size (EFBIG past it)
 * or the free space (ENOSPC when nothing fit) ends the write early.
 * `accepted` is called with that count before the last transaction's device
 * writes and commit once every byte it will write has its space (see Fill).
 */
export async function writeFileData(host: WriteHost, inode: Inode, offset: number, data: Buffer,
  accepted?: (written: number) => void): Promise<number> {
  checkOffset('write offset', offset);
  if (data.length === 0) return 0;
  const { geo, features } = host;
  const max = maxFileBytes(geo);
  if (offset >= max) throw new FsError('EFBIG', `write at ${offset} is past the largest file size ${max}`);
  const len = Math.min(data.length, max - offset);
  const bytes = len < data.length ? data.subarray(0, len) : data;
  const end = offset + len;
  if (inode.inline) {
    if (end <= inlineCapacity(geo.blockSize, inode.di)) return writeInline(host, inode, offset, bytes);
    await convertInlineToExtents(host, inode);
  }
  if (!inode.di.list) throw new FsError('EIO', `inode ${inode.ino} has no extent list`);
  const oldSize = inode.size;
  // Stale bytes past the old end of file inside already-allocated clusters become part of the file: zero them.
  if (offset > oldSize) await zeroWrittenRange(host, inode, oldSize, offset);
  let from = offset;
  if (!features.sparse) {
    // No holes allowed: everything from the end of the allocation to the write gets (zeroed) clusters too.
    from = Math.min(offset, inode.di.i_clusters * geo.clusterSize);
  }
  const allocatedBefore = inode.di.i_clusters;
  const reached = await fillRange(host, inode, from, end, { offset, data: bytes, accepted }, end, true);
  const written = Math.max(0, Math.min(end, reached) - offset);
  if (written === 0) {
    // Without sparse-alloc the gap may have got clusters before space ran out: give back what i_size does not need.
    if (inode.di.i_clusters > allocatedBefore) await trimAllocation(host, inode, allocatedBefore);
    throw new FsError('ENOSPC', `inode ${inode.ino}: no space for a write at ${offset}`);
  }
  return written;
}

/** Frees clusters past max(keepClusters, what i_size needs), in as many transactions as it takes. */
async function trimAllocation(host: WriteHost, inode: Inode, keepClusters: number): Promise<void> {
  const keep = Math.max(keepClusters, Math.ceil(inode.size / host.geo.clusterSize));
  for (let done = false; !done;) {
    done = await withTransaction(host, `trim inode ${inode.ino} to ${keep} clusters`, async (tx) => {
      const di = await editInode(tx, inode);
      return (await truncateClustersStep(host, tx, inode, di, keep, TRUNCATE_LEAVES_PER_TX)).done;
    });
  }
}

/**
 * Sets a regular file's size. Down: frees the clusters past the new end
 * (extent blocks that empty too) and zeros the rest of the new last cluster
 * on the device. Up: on sparse volumes only i_size moves (the new range is
 * a hole); without sparse-alloc, zeroed clusters are allocated up to it.
 * Inline files stay inline while the size fits. mtime and ctime move when
 * the size changes.
 */
export async function truncateFile(host: WriteHost, inode: Inode, newSize: number): Promise<void> {
  checkOffset('size', newSize);
  const { geo, features } = host;
  const cs = geo.clusterSize;
  const max = maxFileBytes(geo);
  if (newSize > max) throw new FsError('EFBIG', `size ${newSize} is past the largest file size ${max}`);
  if (inode.inline) {
    if (newSize <= inlineCapacity(geo.blockSize, inode.di)) return truncateInline(host, inode, newSize);
    await convertInlineToExtents(host, inode);
  }
  if (!inode.di.list) throw new FsError('EIO', `inode ${inode.ino} has no extent list`);
  const oldSize = inode.size;
  if (newSize === oldSize) return;
  if (newSize < oldSize) {
    const keep = Math.ceil(newSize / cs);
    // A later extension must read zeros here, not what the file held before.
    if (newSize % cs) await zeroWrittenRange(host, inode, newSize, keep * cs);
    for (let first = true, done = false; !done; first = false) {
      done = await withTransaction(host, `truncate inode ${inode.ino} to ${newSize}`, async (tx) => {
        const di = await editInode(tx, inode);
        if (first) {
          // Size first, then the clusters (what ocfs2_truncate_file does): a reader never sees freed clusters inside i_size.
          di.i_size = newSize;
          stampModified(di);
        }
        return (await truncateClustersStep(host, tx, inode, di, keep, TRUNCATE_LEAVES_PER_TX)).done;
      });
    }
    return;
  }
  await zeroWrittenRange(host, inode, oldSize, newSize);
  if (!features.sparse) {
    const allocatedBefore = inode.di.i_clusters;
    if (allocatedBefore * cs < newSize) {
      const reached = await fillRange(host, inode, allocatedBefore * cs, newSize, null, oldSize, false);
      if (reached < newSize) {
        await trimAllocation(host, inode, allocatedBefore);
        throw new FsError('ENOSPC', `inode ${inode.ino}: no space to extend to ${newSize}`);
      }
    }
  }
  await withTransaction(host, `extend inode ${inode.ino} to ${newSize}`, async (tx) => {
    const di = await editInode(tx, inode);
    di.i_size = newSize;
    stampModified(di);
  });
}

async function truncateInline(host: WriteHost, inode: Inode, newSize: number): Promise<void> {
  if (newSize === inode.size) return;
  await withTransaction(host, `truncate inline inode ${inode.ino} to ${newSize}`, async (tx) => {
    const di = await editInode(tx, inode);
    const id = di.data!;
    // Whatever lies past the new end is zero, so growing again reads zeros.
    if (newSize < di.i_size) id.id_data.fill(0, newSize, di.i_size);
    else id.id_data.fill(0, di.i_size, newSize);
    di.i_size = newSize;
    stampModified(di);
  });
}
