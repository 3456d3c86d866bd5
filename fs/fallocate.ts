/**
 * fallocate(2) and lseek(2)'s SEEK_DATA / SEEK_HOLE.
 *
 * Preallocation maps holes to new clusters as unwritten extents: they read as
 * zeros without a byte being written, and the first write converts them
 * (fs/fileWrite.ts). Punching a hole zeros the partial clusters at its edges
 * through the ordinary write path and frees the whole clusters between.
 * Zero range is a punch followed by preallocation of the same range.
 *
 * One limit from the tools: fsck.ocfs2 1.8.7 reports clusters mapped past the
 * cluster that holds i_size on sparse volumes, so FALLOC_FL_KEEP_SIZE
 * preallocation beyond end of file is refused (EOPNOTSUPP) rather than
 * leaving a volume fsck complains about.
 */
import createDebug from 'debug';
import type { Inode } from './inode';
import type { IoHost } from './fileIo';
import { bufferedWrite, writebackInode } from './fileIo';
import { dataExtents } from './file';
import { findExtent, isUnwritten, type Extent } from './extentMap';
import { ExtentTree, dinodeExtentRoot, punchHole } from './extentTree';
import { maxFileBytes, convertInlineToExtents } from './fileWrite';
import { editInode, withTransaction } from './transaction';
import { nowTimespec, stamp } from './times';
import { FsError } from './errors';
import { OCFS2_EXT_UNWRITTEN } from './format/constants';
import { PAGE_BYTES } from '../cache/pageCache';

const trace = createDebug('o2fuse:fs');

export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;
const SUPPORTED = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;

export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

export async function fallocate(host: IoHost, inode: Inode, offset: number, length: number, mode: number): Promise<void> {
  if (offset < 0 || length <= 0) throw new FsError('EINVAL', 'fallocate needs offset >= 0 and length > 0');
  if (mode & ~SUPPORTED) throw new FsError('EOPNOTSUPP', `fallocate mode 0x${mode.toString(16)}`);
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) throw new FsError('EOPNOTSUPP', 'punch hole needs KEEP_SIZE');
  if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE)) throw new FsError('EINVAL');
  if (!inode.isReg) throw new FsError(inode.isDir ? 'EISDIR' : 'ENODEV');
  const end = offset + length;
  if (end > maxFileBytes(host.geo)) throw new FsError('EFBIG');
  const release = await inode.rw.exclusive();
  try {
    await inode.dioDrain();
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) await punch(host, inode, offset, end);
    if (!(mode & FALLOC_FL_PUNCH_HOLE)) await preallocate(host, inode, offset, end, (mode & FALLOC_FL_KEEP_SIZE) !== 0);
  } finally {
    release();
  }
}

/** Zeros [offset, end) within i_size: edge bytes written as zeros, whole clusters unmapped and freed. */
async function punch(host: IoHost, inode: Inode, offset: number, end: number): Promise<void> {
  const size = inode.size;
  const stop = Math.min(end, size);
  if (stop <= offset) return;
  if (inode.inline) {
    await writeZeros(host, inode, offset, stop);
    return;
  }
  const cs = host.geo.clusterSize;
  const c0 = Math.ceil(offset / cs);
  const c1 = Math.floor(stop / cs);
  // Partial clusters at the edges keep their mapping; their punched bytes become zeros.
  if (c1 <= c0) {
    await writeZerosInMapped(host, inode, offset, stop);
    return;
  }
  await writeZerosInMapped(host, inode, offset, c0 * cs);
  await writeZerosInMapped(host, inode, c1 * cs, stop);
  await writebackInode(host, inode, Math.floor((c0 * cs) / PAGE_BYTES), Math.floor((c1 * cs - 1) / PAGE_BYTES));
  host.pages.drop(inode.ino, Math.floor((c0 * cs) / PAGE_BYTES), Math.floor((c1 * cs - 1) / PAGE_BYTES));
  inode.gen++;
  await host.metaLock.run(async () => {
    await withTransaction(host, `punch hole inode ${inode.ino} clusters ${c0}..${c1}`, async (tx) => {
      const di = await editInode(tx, inode, { extentsChanged: true });
      await punchHole(host, tx, inode, c0, c1 - c0, di);
      const now = nowTimespec();
      stamp(di, 'mtime', now);
      stamp(di, 'ctime', now);
    });
  });
  trace('inode %d: punched clusters %d..%d', inode.ino, c0, c1);
}

/** Zeros only where the range is mapped and written (holes and unwritten extents read as zeros already). */
async function writeZerosInMapped(host: IoHost, inode: Inode, from: number, to: number): Promise<void> {
  if (to <= from) return;
  const cs = host.geo.clusterSize;
  const extents = await dataExtents(host, inode);
  for (let pos = from; pos < to;) {
    const f = findExtent(extents, Math.floor(pos / cs));
    if ('blkno' in f) {
      const segEnd = Math.min(to, (f.cpos + f.clusters) * cs);
      if (!isUnwritten(f)) await writeZeros(host, inode, pos, segEnd);
      pos = segEnd;
    } else {
      pos = f.holeEnd === Infinity ? to : Math.min(to, f.holeEnd * cs);
    }
  }
}

async function writeZeros(host: IoHost, inode: Inode, from: number, to: number): Promise<void> {
  // Through the buffered path with the lock already held: bufferedWrite takes it itself, so go around it.
  const zeros = Buffer.alloc(to - from);
  await bufferedWriteLocked(host, inode, from, zeros);
}

/** Maps every hole of [offset, end) to new unwritten clusters; grows i_size unless keepSize. */
async function preallocate(host: IoHost, inode: Inode, offset: number, end: number, keepSize: boolean): Promise<void> {
  if (!host.features.unwritten) throw new FsError('EOPNOTSUPP', 'preallocation needs the unwritten feature');
  const cs = host.geo.clusterSize;
  if (keepSize && Math.ceil(end / cs) > Math.ceil(inode.size / cs)) {
    throw new FsError('EOPNOTSUPP', 'preallocating past end of file with KEEP_SIZE is not supported (fsck.ocfs2 1.8.7 rejects the result)');
  }
  if (inode.inline) await host.metaLock.run(() => convertInlineToExtents(host, inode));
  const c0 = Math.floor(offset / cs);
  const c1 = Math.ceil(end / cs);
  await host.metaLock.run(async () => {
    await withTransaction(host, `fallocate inode ${inode.ino} clusters ${c0}..${c1}`, async (tx) => {
      const di = await editInode(tx, inode, { extentsChanged: true });
      const tree = new ExtentTree(host, tx, dinodeExtentRoot(di, { sparse: host.features.sparse }));
      const extents = await dataExtents(host, inode);
      const holes: { cpos: number; clusters: number }[] = [];
      for (let c = c0; c < c1;) {
        const f = findExtent(extents, c);
        if ('blkno' in f) {
          c = f.cpos + f.clusters;
          continue;
        }
        const holeEnd = Math.min(c1, f.holeEnd);
        holes.push({ cpos: c, clusters: holeEnd - c });
        c = holeEnd;
      }
      for (const h of holes) {
        let cpos = h.cpos;
        let left = h.clusters;
        while (left > 0) {
          const run = await host.alloc.claimClusters(tx, 1, left);
          const ext: Extent = { cpos, clusters: run.count, blkno: run.cluster * host.geo.bpc, flags: OCFS2_EXT_UNWRITTEN };
          await tree.insert(ext);
          cpos += run.count;
          left -= run.count;
        }
      }
      if (!keepSize && end > di.i_size) di.i_size = end;
      const now = nowTimespec();
      stamp(di, 'ctime', now);
      if (!keepSize) stamp(di, 'mtime', now);
      trace('inode %d: preallocated %d hole(s) in clusters %d..%d', inode.ino, holes.length, c0, c1);
    });
  });
}

/** SEEK_DATA / SEEK_HOLE. Unwritten extents count as holes (they read as zeros), as in the kernel's OCFS2. */
export async function seekDataHole(host: IoHost, inode: Inode, offset: number, whence: number): Promise<number> {
  const size = inode.size;
  if (offset < 0) throw new FsError('EINVAL');
  if (offset >= size) throw new FsError('ENXIO');
  if (inode.inline) return whence === SEEK_DATA ? offset : size;
  const cs = host.geo.clusterSize;
  const extents = (await dataExtents(host, inode)).filter((e) => !isUnwritten(e));
  let pos = offset;
  while (pos < size) {
    const f = findExtent(extents, Math.floor(pos / cs));
    const inData = 'blkno' in f;
    if (whence === SEEK_DATA && inData) return pos;
    if (whence === SEEK_HOLE && !inData) return pos;
    pos = inData ? (f.cpos + f.clusters) * cs : f.holeEnd === Infinity ? size : f.holeEnd * cs;
  }
  if (whence === SEEK_DATA) throw new FsError('ENXIO');
  return size;
}

// bufferedWrite takes the inode lock itself; fallocate already holds it exclusively.
async function bufferedWriteLocked(host: IoHost, inode: Inode, offset: number, data: Buffer): Promise<void> {
  await bufferedWrite(host, inode, offset, data, { locked: true });
}
