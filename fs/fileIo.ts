/**
 * The I/O path: buffered reads and writes through the page cache, direct
 * I/O, the buffered fallback, and write-back.
 *
 * Reads, buffered or direct, hold the inode lock shared (Volume.read): a
 * truncate or punch, which takes it exclusive, waits for reads in flight.
 *
 * Buffered read: a read that finds none of its pages cached goes
 * from the device straight into the reply and caches nothing; one that finds
 * some copies those out (they are the newest bytes, dirty or not) and reads
 * the rest in through the cache. No read-ahead: bufferedRead says why.
 *
 * Buffered write: inode lock exclusive (after in-flight direct writes drain);
 * a write that is all inside i_size over written extents copies into pages
 * (reading a partly covered page in first) and marks them dirty, except whole
 * pages that are not dirty and do not continue the file's last write, with no
 * write-back of the file in flight: those are written to the device at once
 * (writeThrough: a random writer's pages would otherwise each be written back
 * alone later, at more cost); anything else (inline data, holes, unwritten
 * extents, clusters shared with a reflink, extension) takes the allocating
 * path of fs/fileWrite.ts, which
 * puts data and zeros on the device at once, and the cached pages are brought
 * up to date.
 *
 * Direct write: inode lock shared; dirty pages of the range are written back
 * and dropped; then either the fallback (same allocating path, for holes,
 * unwritten extents, shared clusters, past-EOF and inline files: on the device when the call
 * returns, as O_DIRECT requires) or a straight device write of the mapped
 * blocks. The lock is released once the device requests are submitted and
 * the call completes with them, so several direct writes of one inode are in
 * flight at once, as async direct I/O is in the kernel. An unaligned one
 * must read its edge blocks in: it first passes the unaligned gate
 * (io/unalignedGate.ts) and counts itself out when its device write
 * completes. Aligned direct writes never touch the gate.
 */
import createDebug from 'debug';
import { performance } from 'node:perf_hooks';
import type { Inode } from './inode';
import type { NameiHost } from './nameiHost';
import type { PageCache, Page } from '../cache/pageCache';
import { PAGE_BYTES } from '../cache/pageCache';
import type { UnalignedGate, GateTicket } from '../io/unalignedGate';
import { isUnaligned } from '../io/unalignedGate';
import { mapRange, readFileData, type Segment } from './file';
import { writeFileData } from './fileWrite';
import { writeBlocks, type DeviceWrite } from './blockIo';
import { editInode, withTransaction } from './transaction';
import { nowTimespec, stamp } from './times';
import { FsError } from './errors';
import { OCFS2_VALID_FL } from './format/constants';

const io = createDebug('o2fuse:io');
const cacheTrace = createDebug('o2fuse:cache');

export interface IoHost extends NameiHost {
  readonly pages: PageCache;
  readonly gate: UnalignedGate;
  /** Called when dirty bytes pass the limit: write back until below it. */
  throttle(): Promise<void>;
  /** Starts background write-back if dirty bytes are past its threshold (returns at once). */
  kickWriteback(): void;
}

const pageOf = (byte: number): number => Math.floor(byte / PAGE_BYTES);
const ZERO_PAGE = Buffer.alloc(PAGE_BYTES);

// ---------------------------------------------------------------- reads

/**
 * Scratch buffers for read-ins: the bytes only pass through on their way into
 * cache pages, so they are reused rather than left to the garbage collector
 * (a streaming reader would otherwise leave megabytes of them behind per
 * second, and RSS follows the garbage, not the cache limit).
 */
const SCRATCH_SIZES = [128 * 1024, 1024 * 1024];
const SCRATCH_KEPT_MAX = 8;
// Two sizes: a 128 KiB read-in (a libfuse reader's request) must not hold a 1 MiB buffer.
const scratchFree = new Map<number, Buffer[]>(SCRATCH_SIZES.map((size) => [size, []]));

function takeScratch(length: number): Buffer {
  const size = SCRATCH_SIZES.find((s) => length <= s);
  if (size === undefined) return Buffer.alloc(length);
  const b = scratchFree.get(size)!.pop() ?? Buffer.allocUnsafeSlow(size);
  // No clearing: readDevice writes every byte (zeros for holes).
  return b.subarray(0, length);
}

function giveScratch(b: Buffer): void {
  const free = scratchFree.get(b.buffer.byteLength);
  if (free && free.length < SCRATCH_KEPT_MAX) free.push(Buffer.from(b.buffer, 0, b.buffer.byteLength));
}

/** Reads [offset, offset+length) of the file from the device, not clamped, holes as zeros (`into` need not be clear). */
async function readDevice(host: IoHost, inode: Inode, offset: number, length: number, into?: Buffer): Promise<Buffer> {
  const out = into ?? Buffer.alloc(length);
  const segs = await mapRange(host, inode, offset, length);
  await Promise.all(segs.map(async (s) => {
    if (s.deviceOffset === null) {
      if (into) out.fill(0, s.fileOffset - offset, s.fileOffset - offset + s.length);
      return;
    }
    // Straight into the result: a bounce buffer per read doubles the garbage of a streaming reader.
    await host.device.readInto(out.subarray(s.fileOffset - offset, s.fileOffset - offset + s.length), s.deviceOffset);
  }));
  return out;
}

/**
 * Reads whole pages [first, last] from the device, hands their bytes to `use` (one buffer, the run's pages one
 * after another), then caches them unless the file changed meanwhile. `use` runs before any page of the run enters
 * the cache, and nothing may read the cache's copies later in its place: once in, a page can be evicted at the next
 * insert and its memory handed to another page (by the run itself when it is longer than the cache, or by another
 * read-in landing in the same turn), so a caller that copied from them after the read-in returned could copy
 * another page's bytes.
 */
async function readInPages(host: IoHost, inode: Inode, first: number, last: number, use: (data: Buffer) => void): Promise<void> {
  const gen = inode.gen;
  const size = inode.size;
  const start = first * PAGE_BYTES;
  const count = last - first + 1;
  // Straight into cache pages adjacent in memory when the cache has such a run: no copy on the way in.
  const run = host.pages.runBuffer(count);
  const scratch = run ?? takeScratch(count * PAGE_BYTES);
  let adopted = false;
  try {
    const data = await readDevice(host, inode, start, scratch.length, scratch);
    // Bytes past i_size read as zeros whatever the block holds.
    if (size < start + data.length) data.fill(0, Math.max(0, size - start));
    host.pages.stats.readIns += count;
    use(data);
    if (inode.gen !== gen) return;
    for (let i = first; i <= last; i++) {
      const pageData = data.subarray((i - first) * PAGE_BYTES, (i - first + 1) * PAGE_BYTES);
      if (run) host.pages.adoptClean(inode.ino, i, pageData);
      else host.pages.insertClean(inode.ino, i, pageData);
    }
    adopted = true;
  } finally {
    if (!run) giveScratch(scratch);
    else if (!adopted) host.pages.releaseRun(run);
  }
}

/**
 * Read-ins in flight per inode. A request that lands on a range another one
 * is reading in waits for that read-in instead of reading the same blocks a
 * second time.
 */
interface ReadIn {
  first: number;
  last: number;
  done: Promise<unknown>;
}
const readInsInFlight = new WeakMap<Inode, Set<ReadIn>>();

function trackedReadIn(host: IoHost, inode: Inode, first: number, last: number, use: (data: Buffer) => void): Promise<void> {
  const done = readInPages(host, inode, first, last, use);
  let set = readInsInFlight.get(inode);
  if (!set) readInsInFlight.set(inode, (set = new Set()));
  const r: ReadIn = { first, last, done };
  set.add(r);
  const forget = () => void set!.delete(r);
  done.then(forget, forget);
  return done;
}

function readInCovering(inode: Inode, index: number): ReadIn | undefined {
  const set = readInsInFlight.get(inode);
  if (set) for (const r of set) if (r.first <= index && index <= r.last) return r;
  return undefined;
}

export async function bufferedRead(host: IoHost, inode: Inode, offset: number, length: number, into?: Buffer): Promise<Buffer> {
  const size = inode.size;
  if (offset >= size || length === 0) return Buffer.alloc(0);
  const n = Math.min(length, size - offset);
  if (inode.inline) return readFileData(host, inode, offset, n);
  const first = pageOf(offset);
  const last = pageOf(offset + n - 1);
  // A read that finds none of its pages cached (clean or dirty) goes from the device straight into the reply, and
  // nothing is cached or read ahead. Under FUSE the kernel reads ahead already (a sequential reader's READs come
  // several at a time, 1 MiB each over the kernel transport, 128 KiB over libfuse) and keeps what it read in its
  // own page cache; the host reads ahead on the device file. The daemon's cache and read-ahead (a window doubling
  // to 4 MiB, read in 1 MiB pieces) only put read-ins, page inserts and copies on the event loop in front of the
  // kernel's next READ. Cold sequential reads, each pair A-B-B-A or alternating: kernel transport 548-761 ->
  // 773-1,369 MiB/s (1 MiB READs; fuseTrace: a READ's p50 4.2 -> 1.2 ms), libfuse 560-595 -> 592-979 (fio, 1 MiB
  // reads), 601-616 -> 673-729 MB/s (dd, 128 KiB); the daemon's peak RSS over a 512 MiB read 367 -> 69 MiB.
  if (!host.pages.hasAnyIn(inode.ino, first, last)) {
    cacheTrace('read of inode %d %d+%d: nothing cached, straight from the device', inode.ino, offset, n);
    return readFileData(host, inode, offset, n, into);
  }
  // Every byte of the range is copied from a page below, so `into` needs no clearing.
  const out = into && into.length >= n ? into.subarray(0, n) : Buffer.alloc(n);
  const copyPage = (idx: number, data: Buffer) => {
    const pStart = idx * PAGE_BYTES;
    const a = Math.max(offset, pStart);
    const b = Math.min(offset + n, pStart + PAGE_BYTES);
    data.copy(out, a - offset, a - pStart, b - pStart);
  };
  let i = first;
  const reads: Promise<void>[] = [];
  /** The lookup of page i already made while extending a run (null: not looked up yet). */
  let carried: Page | undefined | null = null;
  while (i <= last) {
    const p = carried !== null ? carried : host.pages.lookup(inode.ino, i);
    carried = null;
    if (p) {
      // Cached pages that sit one after another in memory (read in as one run) are copied out in one call.
      let j = i;
      let prev = p;
      while (j + 1 <= last) {
        const q = host.pages.lookup(inode.ino, j + 1);
        if (!q || q.data.buffer !== prev.data.buffer || q.data.byteOffset !== prev.data.byteOffset + PAGE_BYTES) {
          carried = q;
          break;
        }
        prev = q;
        j++;
      }
      copyRun(i, j, p.data);
      i = j + 1;
      continue;
    }
    const inFlight = readInCovering(inode, i);
    if (inFlight) {
      // Once that read-in has landed, its pages are in the cache (the ones that are not get read here).
      const from = i;
      const upto = Math.min(last, inFlight.last);
      reads.push(inFlight.done.then(() => undefined, () => undefined).then(() => copyCached(from, upto)));
      i = upto + 1;
      continue;
    }
    let j = i;
    while (j + 1 <= last && !host.pages.lookup(inode.ino, j + 1)) j++;
    const runFirst = i;
    const runLast = j;
    reads.push(trackedReadIn(host, inode, runFirst, runLast, (data) => copyRun(runFirst, runLast, data)));
    i = j + 1;
  }
  await Promise.all(reads);
  return out;

  /** Copies out pages [from, upto] from the cache, reading in the ones it does not hold. */
  async function copyCached(from: number, upto: number): Promise<void> {
    const missing: Promise<void>[] = [];
    let k = from;
    while (k <= upto) {
      const p = host.pages.lookup(inode.ino, k);
      if (p) {
        copyPage(k, p.data);
        k++;
        continue;
      }
      let m = k;
      while (m + 1 <= upto && !host.pages.lookup(inode.ino, m + 1)) m++;
      const runFirst = k;
      const runLast = m;
      missing.push(trackedReadIn(host, inode, runFirst, runLast, (data) => copyRun(runFirst, runLast, data)));
      k = m + 1;
    }
    await Promise.all(missing);
  }

  /** Pages [from, to] whose data lie one after another in memory from `firstData` on. */
  function copyRun(from: number, to: number, firstData: Buffer): void {
    if (from === to) return copyPage(from, firstData);
    const runStart = from * PAGE_BYTES;
    const a = Math.max(offset, runStart);
    const b = Math.min(offset + n, (to + 1) * PAGE_BYTES);
    const mem = Buffer.from(firstData.buffer, firstData.byteOffset, (to - from + 1) * PAGE_BYTES);
    mem.copy(out, a - offset, a - runStart, b - runStart);
  }
}

/** O_DIRECT read: from the device, into `into` when given (the transport's reply buffer: no copy on the way out). */
export async function directRead(host: IoHost, inode: Inode, offset: number, length: number, into?: Buffer): Promise<Buffer> {
  // Dirty pages of the range must reach the device first, or the read would miss them.
  await writebackInode(host, inode, pageOf(offset), pageOf(offset + Math.max(length, 1) - 1));
  return readFileData(host, inode, offset, length, into);
}

// ---------------------------------------------------------------- writes

/** Copies new bytes into whatever pages of the range are cached, keeping them coherent with the device. */
function updateCachedPages(host: IoHost, inode: Inode, offset: number, data: Buffer): void {
  for (let i = pageOf(offset); data.length && i <= pageOf(offset + data.length - 1); i++) {
    const p = host.pages.lookup(inode.ino, i);
    if (!p) continue;
    const pStart = i * PAGE_BYTES;
    const a = Math.max(offset, pStart);
    const b = Math.min(offset + data.length, pStart + PAGE_BYTES);
    data.copy(p.data, a - pStart, a - offset, b - offset);
  }
}

/** Why a write cannot be a plain overwrite of written blocks, or null when it can. */
async function fallbackReason(host: IoHost, inode: Inode, offset: number, end: number): Promise<string | null> {
  if (inode.inline) return 'inline data';
  if (end > inode.size) return 'extends the file';
  for (const s of await mapRange(host, inode, offset, end - offset)) {
    if (s.unwritten) return 'unwritten extent';
    if (s.deviceOffset === null) return 'hole';
    if (s.refcounted) return 'shared with a reflink (copy on write)';
  }
  return null;
}

/**
 * The allocating path, shared by buffered writes and the direct-write
 * fallback: data and zeros on the device when it returns. It may
 * read-modify-write an edge block of existing data, so an unaligned one
 * passes the gate like a direct write.
 */
async function allocatingWrite(host: IoHost, inode: Inode, offset: number, data: Buffer, reason: string, direct: boolean,
  accepted?: (written: number) => void): Promise<number> {
  const end = offset + data.length;
  io('%s write %d+%d of inode %d takes the allocating path: %s', direct ? 'direct' : 'buffered', offset, data.length, inode.ino, reason);
  await writebackInode(host, inode, pageOf(Math.min(offset, inode.size)), pageOf(end - 1));
  const from = Math.min(offset, inode.size);
  const ticket = isUnaligned(from, end - from, host.geo.blockSize) ? await enterGate(host, inode, from, end) : null;
  try {
    const n = await host.metaLock.run(() => writeFileData(host, inode, offset, data, accepted));
    updateCachedPages(host, inode, offset, data.subarray(0, n));
    inode.gen++;
    return n;
  } catch (err) {
    // Some of its transactions may have committed before the one that failed: which of the range's bytes the
    // device holds is not known here, so the clean pages over it go (dirty ones were written back above, or keep
    // their own error), and a read-in already under way is not cached.
    inode.gen++;
    host.pages.dropClean(inode.ino, pageOf(offset), pageOf(end - 1));
    throw err;
  } finally {
    ticket?.exit();
  }
}

async function enterGate(host: IoHost, inode: Inode, start: number, end: number): Promise<GateTicket> {
  const t0 = performance.now();
  const ticket = await host.gate.enter(inode.ino, start, end, host.geo.blockSize);
  if (ticket.waited) io('unaligned write %d..%d of inode %d waited %s ms on the gate', start, end, inode.ino, (performance.now() - t0).toFixed(2));
  return ticket;
}

export async function bufferedWrite(host: IoHost, inode: Inode, offset: number, data: Buffer,
  opts: { locked?: boolean; accepted?: (written: number) => void } = {}): Promise<number> {
  if (data.length === 0) return 0;
  const end = offset + data.length;
  // `locked`: the caller (fallocate) holds the inode lock exclusively already.
  const release = opts.locked ? () => {} : await inode.rw.exclusive();
  const accept = opts.accepted && acceptance(inode, opts.accepted);
  let n: number;
  try {
    // A buffered write must not read in a block a direct write has not landed on yet.
    await inode.dioDrain();
    const reason = await fallbackReason(host, inode, offset, end);
    const stream = offset === inode.lastWriteEnd;
    inode.lastWriteEnd = end;
    if (reason) {
      n = accept
        ? await accept.run(() => allocatingWrite(host, inode, offset, data, reason, false, accept.answer))
        : await allocatingWrite(host, inode, offset, data, reason, false);
    } else if (!stream && wholePages(offset, data.length) && inode.wbLock.idle &&
      !host.pages.hasDirtyIn(inode.ino, pageOf(offset), pageOf(end - 1))) {
      n = accept
        ? await accept.run(() => { accept.answer(data.length); return writeThrough(host, inode, offset, data); })
        : await writeThrough(host, inode, offset, data);
    } else {
      await copyIntoPages(host, inode, offset, data);
      n = data.length;
      inode.gen++;
      inode.pendingTimes = nowTimespec();
    }
  } finally {
    accept?.settle();
    release();
  }
  if (host.pages.dirtyBytes > host.pages.dirtyLimitBytes) await host.throttle();
  else host.kickWriteback();
  return n;
}

const wholePages = (offset: number, length: number): boolean => offset % PAGE_BYTES === 0 && length % PAGE_BYTES === 0;

/**
 * A buffered write of whole pages, none of them dirty, that does not continue
 * the file's last write: straight to the device, as a direct write would,
 * instead of into the cache. Dirtied pages of a random writer are written
 * back one at a time later anyway, each with a copy, a mapping and a device
 * write of its own, in bursts in the same event loop that answers requests.
 * The bench's buffered random-write job (9 alternating runs, kernel
 * transport): median 17,805 -> 18,111 writes/s; under fuseTrace the WRITE
 * mean 25-34 -> 22 us and its p99 350-434 -> 152-167 us (the p50 rises a
 * little: the write is in the request now); with writeback_cache, whose
 * kernel sends its dirty pages as such writes, 35,252-41,891 -> 54,054-55,112
 * (2 pairs). A stream (a write starting where the last one ended) and
 * partial pages keep the cache, where write-back merges them into large device
 * writes. Not while a write-back of the inode is in flight: it may be carrying
 * an older version of these pages to the device, and two writes of one block
 * in flight land in either order. Cached copies of the pages are dropped after
 * the write; a read-in that raced with it sees inode.gen move and does not
 * cache what it read.
 * Durability is unchanged: the bytes reach the host (or the device's cache)
 * now, and stable storage at the next fsync, as before.
 */
/** Device writes carrying `data` (file bytes from `offset`) to the segments of a range that is all mapped. */
function mappedWrites(segs: readonly Segment[], offset: number, data: Buffer): DeviceWrite[] {
  return segs.map((s) => ({
    deviceOffset: s.deviceOffset!,
    buf: data.subarray(s.fileOffset - offset, s.fileOffset - offset + s.length),
  }));
}

async function writeThrough(host: IoHost, inode: Inode, offset: number, data: Buffer): Promise<number> {
  const writes = mappedWrites(await mapRange(host, inode, offset, data.length), offset, data);
  io('write-through of inode %d: %d bytes at %d (not continuing the last write)', inode.ino, data.length, offset);
  try {
    await writeBlocks(host, writes, `buffered write of inode ${inode.ino}`);
  } finally {
    inode.gen++;
    host.pages.drop(inode.ino, pageOf(offset), pageOf(offset + data.length - 1));
  }
  inode.pendingTimes = nowTimespec();
  return data.length;
}

/**
 * A buffered write answered before it is done. `answer` runs once everything that can refuse the write is settled
 * (the handle, the space, the lock): for an overwrite of written blocks before its device write (writeThrough), for
 * an allocating write before its last transaction's device writes and commit (fs/fileWrite.ts, Fill). The client's
 * next request then travels while the bytes go to the device instead of after: on the bench's buffered
 * random-write job (kernel transport, CPUs halting, 3 alternating pairs) 15,214-17,511 -> 25,109-26,701 writes/s,
 * clat p50 52-55 -> 27-32 us. What a buffered write promises is unchanged:
 * - its bytes are read by every later request (the inode's lock is held until they land; fsync waits for it);
 * - its size and times are in every later GETATTR, LOOKUP and LINK (inode.landing), its extents in every later
 *   SEEK_DATA and SEEK_HOLE (the lock), and its times lie under any a later SETATTR sets (the lock);
 * - it reaches stable storage at the next fsync;
 * - the clusters it writes are not freed under it (an unlink or the last close waits for it: fs/inodeFree.ts),
 *   and an unmount does not end before it has landed;
 * - a device error after the answer reaches the writer as every Linux filesystem reports a failed write-back,
 *   from that fsync (inode.wbError), instead of from write(2).
 */
function acceptance(inode: Inode, accepted: (written: number) => void) {
  let answered: number | undefined;
  let landed: (() => void) | undefined;
  return {
    answer(written: number): void {
      answered = written;
      inode.landing = new Promise((resolve) => { landed = resolve; });
      accepted(written);
    },
    async run(write: () => Promise<number>): Promise<number> {
      try {
        return await write();
      } catch (err) {
        if (answered === undefined) throw err;
        inode.wbError = err as Error;
        io('accepted write of inode %d failed after its answer: %s; the next fsync reports it', inode.ino, (err as Error).message);
        return answered;
      }
    },
    /** The write is done (landed or failed): attribute requests waiting on it go on. */
    settle(): void {
      if (!landed) return;
      inode.landing = undefined;
      landed();
    },
  };
}

async function copyIntoPages(host: IoHost, inode: Inode, offset: number, data: Buffer): Promise<void> {
  const end = offset + data.length;
  const size = inode.size;
  for (let i = pageOf(offset); i <= pageOf(end - 1); i++) {
    const pStart = i * PAGE_BYTES;
    const a = Math.max(offset, pStart);
    const b = Math.min(end, pStart + PAGE_BYTES);
    let page: Page | undefined = host.pages.lookup(inode.ino, i);
    if (!page) {
      if (a === pStart && b === pStart + PAGE_BYTES) {
        host.pages.insertDirty(inode.ino, i, data, a - offset);
        continue;
      }
      if (a === pStart && b >= size) {
        // The last page, written from its start to EOF: what lies past EOF reads as zeros.
        page = host.pages.insertClean(inode.ino, i, ZERO_PAGE);
      } else {
        cacheTrace('read-in: page %d of inode %d for a partial write %d..%d', i, inode.ino, a, b);
        // A copy of its own (see readInPages): the cached page may be gone again by the time this resumes.
        let fresh = ZERO_PAGE;
        await readInPages(host, inode, i, i, (data) => { fresh = Buffer.from(data); });
        page = host.pages.lookup(inode.ino, i) ?? host.pages.insertClean(inode.ino, i, fresh);
      }
    }
    data.copy(page.data, a - pStart, a - offset, b - offset);
    host.pages.markDirty(page, a - pStart, b - pStart);
  }
}

export async function directWrite(host: IoHost, inode: Inode, offset: number, data: Buffer): Promise<number> {
  if (data.length === 0) return 0;
  const end = offset + data.length;
  let release = await inode.rw.shared();
  let submitted: Promise<void> | null = null;
  let ticket: GateTicket | null = null;
  try {
    await writebackInode(host, inode, pageOf(offset), pageOf(end - 1));
    host.pages.drop(inode.ino, pageOf(offset), pageOf(end - 1));
    const reason = await fallbackReason(host, inode, offset, end);
    if (reason) {
      // Allocation changes the extent tree and i_size: that needs the lock exclusive.
      release();
      release = await inode.rw.exclusive();
      const again = await fallbackReason(host, inode, offset, end);
      if (again) return await allocatingWrite(host, inode, offset, data, again, true);
    }
    if (isUnaligned(offset, data.length, host.geo.blockSize)) ticket = await enterGate(host, inode, offset, end);
    const writes = mappedWrites(await mapRange(host, inode, offset, data.length), offset, data);
    inode.dioStart();
    submitted = writeBlocks(host, writes, `direct write of inode ${inode.ino}`);
    // Keep an unobserved rejection from crashing the process before we await it below.
    submitted.catch(() => {});
  } catch (err) {
    ticket?.exit();
    throw err;
  } finally {
    release();
  }
  try {
    await submitted;
  } finally {
    ticket?.exit();
    // Anything read into the cache while the write was in flight may predate it.
    host.pages.drop(inode.ino, pageOf(offset), pageOf(end - 1));
    inode.gen++;
    inode.dioDone();
  }
  inode.pendingTimes = nowTimespec();
  return data.length;
}

// ---------------------------------------------------------------- write-back

/** Pages of one write-back device write at most (1 MiB). */
const WRITEBACK_RUN_PAGES = 256;
/** Write-back device writes of one inode in flight at once. */
const WRITEBACK_RUNS_IN_FLIGHT = 8;

/** Runs `fn` over `items`, at most `limit` at a time; rejects with the first failure after all have settled. */
async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  const lanes = Array.from({ length: Math.min(limit, items.length) }, lane);
  const settled = await Promise.allSettled(lanes);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * Writes back the dirty pages [first, last] of an inode (all by default). Errors are kept for the next fsync.
 * `listed`: the caller's list of those pages, in index order (the flusher lists an inode's dirty pages once and
 * walks windows over them; listing them again for each window cost it time quadratic in the dirty pages); those
 * still dirty when the write-back runs are written.
 */
export async function writebackInode(host: IoHost, inode: Inode, first = 0, last = Infinity, listed?: readonly Page[]): Promise<void> {
  // Through the lock even with nothing dirty: a write-back already in flight (the flusher's) may be carrying
  // these pages to the device, and the caller must not read those blocks before it lands. With the lock idle and
  // nothing dirty there is nothing to wait for (the common case of a direct read or write: no promise, no queue).
  if (inode.wbLock.idle && host.pages.dirtyCount(inode.ino) === 0) return;
  await inode.wbLock.run(async () => {
    const pages = listed ? listed.filter((p) => host.pages.isDirty(p)) : host.pages.dirtyOf(inode.ino, first, last);
    if (!pages.length) return;
    const bs = host.geo.blockSize;
    const size = inode.size;
    const limit = Math.ceil(size / bs) * bs;
    // Runs of consecutive pages become one device write each (split where the extents split), of at most
    // WRITEBACK_RUN_PAGES: each run is copied out of the cache, and a few at a time keep the copies small.
    const runs: Page[][] = [];
    for (const p of pages) {
      const run = runs[runs.length - 1];
      if (run && run[run.length - 1].index + 1 === p.index && run.length < WRITEBACK_RUN_PAGES) run.push(p);
      else runs.push([p]);
    }
    let bytes = 0;
    await inParallel(runs, WRITEBACK_RUNS_IN_FLIGHT, async (run) => {
      const start = run[0].index * PAGE_BYTES;
      const stop = Math.min((run[run.length - 1].index + 1) * PAGE_BYTES, limit);
      if (stop <= start) {
        run.forEach((p) => host.pages.markClean(p));
        return;
      }
      // A copy (concat always allocates): the pages may be written again while this write is in flight.
      const copy = Buffer.concat(run.map((p) => p.data)).subarray(0, stop - start);
      // The pages stay dirty (so in the cache, where nothing evicts them) until the write has landed: until then
      // the device holds the old bytes, and a page evicted and read in meanwhile would read those. A page written
      // again meanwhile stays dirty after it too (its new bytes are not in this copy).
      const taken = run.map((p) => p.writes);
      const unchanged = () => run.filter((p, k) => p.writes === taken[k] && host.pages.isDirty(p));
      const writes: DeviceWrite[] = [];
      for (const s of await mapRange(host, inode, start, stop - start)) {
        if (s.deviceOffset === null) continue; // truncated away meanwhile
        writes.push({ deviceOffset: s.deviceOffset, buf: copy.subarray(s.fileOffset - start, s.fileOffset - start + s.length) });
      }
      try {
        await writeBlocks(host, writes, `write-back of inode ${inode.ino}`);
        bytes += stop - start;
        for (const p of unchanged()) host.pages.markClean(p);
      } catch (err) {
        // As Linux: the pages are dropped, the error is reported by the next fsync (or close). Pages written again
        // meanwhile stay dirty: they hold bytes no write-back has carried yet.
        inode.wbError = err as Error;
        for (const p of unchanged()) host.pages.drop(inode.ino, p.index, p.index);
        io('write-back of inode %d pages %d..%d failed: %s', inode.ino, run[0].index, run[run.length - 1].index, (err as Error).message);
      }
    });
    cacheTrace('write-back inode %d: %d pages in %d runs, %d bytes', inode.ino, pages.length, runs.length, bytes);
  });
}

/** Commits buffered writes' times to the inode block. */
export async function commitTimes(host: IoHost, inode: Inode): Promise<void> {
  const t = inode.pendingTimes;
  const at = inode.pendingAtime;
  // A freed inode keeps no times.
  if ((!t && !at) || !(inode.di.i_flags & OCFS2_VALID_FL)) return;
  await host.metaLock.run(async () => {
    await withTransaction(host, `times of inode ${inode.ino}`, async (tx) => {
      const di = await editInode(tx, inode);
      if (t) {
        stamp(di, 'mtime', t);
        stamp(di, 'ctime', t);
      }
      if (at) stamp(di, 'atime', at);
      tx.onCommit(() => {
        if (inode.pendingTimes === t) inode.pendingTimes = undefined;
        if (inode.pendingAtime === at) inode.pendingAtime = undefined;
      });
    });
  });
}

/** fsync: the file's dirty pages, then its metadata, then the device cache. A write-back error is reported once. */
export async function syncInode(host: IoHost, inode: Inode): Promise<void> {
  // An accepted write still going to the device holds the inode's lock (acceptance): wait for it.
  if (!inode.rw.idle) (await inode.rw.shared())();
  await writebackInode(host, inode);
  await commitTimes(host, inode);
  // The journal commit covers the data written above: it flushes the device before its commit block.
  if (host.journal) await host.journal.commit();
  else await host.device.flush();
  takeWritebackError(inode);
}

export function takeWritebackError(inode: Inode): void {
  const err = inode.wbError;
  if (!err) return;
  inode.wbError = undefined;
  throw new FsError('EIO', `write-back of inode ${inode.ino} failed: ${err.message}`);
}
