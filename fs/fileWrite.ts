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
import { ExtentTree, dinodeExtentRoot, truncateClustersStep } from './extentTree';
import { nowTimespec, stamp, stampModified } from './times';
import { FsError, errnoOf } from './errors';
import { writeBlocks, type DeviceWrite } from './blockIo';

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

/** Zeros on the device every written (mapped, not unwritten) byte of the file in [start, end). */
async function zeroWrittenRange(ctx: VolumeContext, inode: Inode, start: number, end: number): Promise<void> {
  if (end <= start || inode.inline) return;
  const items: IoItem[] = [];
  for (const s of await mapRange(ctx, inode, start, end - start)) {
    if (s.deviceOffset !== null) items.push({ deviceOffset: s.deviceOffset, zeroBytes: s.length });
  }
  await runIo(ctx, items);
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
 * I/O for file clusters [cpos, cpos+clusters) living at physical cluster
 * `cluster`: the data the fill has for them, and with `whole` zeros for the
 * rest of each cluster.
 */
function planClusters(geo: Geometry, items: IoItem[], cpos: number, clusters: number, cluster: number, whole: boolean,
  fill: Fill | null): void {
  const cs = geo.clusterSize;
  const runStart = cpos * cs;
  const runEnd = (cpos + clusters) * cs;
  const dev = cluster * cs - runStart; // file offset -> device offset
  let a = runEnd;
  let b = runEnd;
  if (fill) {
    a = Math.max(runStart, fill.offset);
    b = Math.min(runEnd, fill.offset + fill.data.length);
    if (a >= b) a = b = runEnd;
  }
  if (whole && a > runStart) items.push({ deviceOffset: dev + runStart, zeroBytes: a - runStart });
  if (fill && a < b) items.push({ deviceOffset: dev + a, buf: fill.data.subarray(a - fill.offset, b - fill.offset) });
  if (whole && b < runEnd && a < b) items.push({ deviceOffset: dev + b, zeroBytes: runEnd - b });
}

// ---- the in-memory extent cache, kept in step with a write's tree changes ----

type Change = { kind: 'map'; ext: Extent } | { kind: 'written'; cpos: number; clusters: number };

function applyChanges(list: readonly Extent[], changes: readonly Change[], bpc: number): Extent[] {
  let out = list.slice();
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
    const res: Extent[] = [];
    for (const e of out) {
      const eEnd = e.cpos + e.clusters;
      if (eEnd <= a0 || e.cpos >= b0 || !isUnwritten(e)) {
        res.push(e);
        continue;
      }
      const a = Math.max(e.cpos, a0);
      const b = Math.min(eEnd, b0);
      if (e.cpos < a) res.push({ cpos: e.cpos, clusters: a - e.cpos, blkno: e.blkno, flags: e.flags });
      res.push({ cpos: a, clusters: b - a, blkno: e.blkno + (a - e.cpos) * bpc, flags: e.flags & ~OCFS2_EXT_UNWRITTEN });
      if (b < eEnd) res.push({ cpos: b, clusters: eEnd - b, blkno: e.blkno + (b - e.cpos) * bpc, flags: e.flags });
    }
    out = res;
  }
  return out;
}

// ---- clusters for a byte range ----

interface Seg {
  cpos: number;
  clusters: number;
  kind: 'hole' | 'written' | 'unwritten';
  /** Physical cluster of cpos (mapped segments). */
  cluster: number;
}

function segmentsOf(extents: readonly Extent[], c0: number, c1: number, bpc: number, owner: string): Seg[] {
  const out: Seg[] = [];
  let c = c0;
  while (c < c1) {
    const f = findExtent(extents, c);
    if ('blkno' in f) {
      if (f.flags & OCFS2_EXT_REFCOUNTED) {
        throw new FsError('EOPNOTSUPP', `${owner}: cluster ${c} is refcounted (reflinked); o2fuse cannot write it yet`);
      }
      const n = Math.min(c1, f.cpos + f.clusters) - c;
      out.push({ cpos: c, clusters: n, kind: isUnwritten(f) ? 'unwritten' : 'written', cluster: f.blkno / bpc + (c - f.cpos) });
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
 * One transaction's worth of [from, to): holes get clusters, unwritten
 * extents become written, `fill` goes to the device with zeros around it in
 * the clusters that become readable. When the fill's data was reached,
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
  const segs = segmentsOf(extents, c0, c1, bpc, owner);
  const tx = host.begin(`write ${owner} ${from}..${to}`);
  try {
    const di = await editInode(tx, inode);
    const tree = new ExtentTree(host, tx, dinodeExtentRoot(di, { sparse: host.features.sparse }));
    const items: IoItem[] = [];
    const changes: Change[] = [];
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
      } else {
        let c = s.cpos;
        let left = s.clusters;
        while (left > 0) {
          let run;
          try {
            run = await host.alloc.claimClusters(tx, 1, left, goal);
          } catch (err) {
            if (isEnospc(err)) break space;
            throw err;
          }
          let mapped: number;
          try {
            mapped = await tree.insert({ cpos: c, clusters: run.count, blkno: run.cluster * bpc, flags: 0 }, { partial: true });
          } catch (err) {
            if (!isEnospc(err)) throw err;
            mapped = 0;
          }
          if (mapped < run.count) {
            // No extent block for the rest: those clusters go back in this same transaction.
            await host.alloc.freeClusters(tx, { cluster: run.cluster + mapped, count: run.count - mapped });
          }
          if (mapped > 0) {
            planClusters(geo, items, c, mapped, run.cluster, true, fill);
            changes.push({ kind: 'map', ext: { cpos: c, clusters: mapped, blkno: run.cluster * bpc, flags: 0 } });
            c += mapped;
            left -= mapped;
            goal = run.cluster + mapped;
            reached = c;
          }
          if (mapped < run.count) break space;
        }
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
    if (changes.length) {
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

/** fillChunk over [from, to) in transactions of at most TX_BYTES_MAX; returns the offset reached. */
async function fillRange(host: WriteHost, inode: Inode, from: number, to: number, fill: Fill | null, sizeTarget: number,
  stampTimes: boolean): Promise<number> {
  const cs = host.geo.clusterSize;
  const step = Math.max(cs, Math.floor(TX_BYTES_MAX / cs) * cs);
  let cur = from;
  while (cur < to) {
    const chunkEnd = Math.min(to, Math.floor(cur / cs) * cs + step);
    const got = await fillChunk(host, inode, cur, chunkEnd, fill, sizeTarget, stampTimes);
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
