/**
 * File data, read side: inline data, extents at any depth, holes and
 * unwritten extents (both read as zeros). This is the raw mapping from a byte
 * range of a file to device reads; the page cache sits above it.
 */
import type { VolumeContext } from './context';
import type { Inode } from './inode';
import { leafExtents, findExtent, isUnwritten, type Extent } from './extentMap';
import { FsError } from './errors';
import { OCFS2_EXT_REFCOUNTED } from './format/constants';

/**
 * The inode's leaf extents, loaded once and kept until the tree changes. The array may change under a caller that
 * keeps it across an await (a write's commit updates it in place): look extents up again after one.
 */
export function dataExtents(ctx: VolumeContext, inode: Inode): Promise<Extent[]> {
  return inode.extents ? Promise.resolve(inode.extents) : loadExtents(ctx, inode);
}

/**
 * Walks the tree, again if a change committed meanwhile: the write-back of dirty pages maps them under the
 * write-back lock alone, beside an allocating write whose commit can move records between leaves (a rotation), and
 * a walk that read some leaves before it and some after could miss a record, or see one twice.
 */
async function loadExtents(ctx: VolumeContext, inode: Inode): Promise<Extent[]> {
  for (;;) {
    const list = inode.di.list;
    if (!list) return [];
    const gen = inode.extentsGen;
    const extents = await leafExtents(ctx, list, `inode ${inode.ino}`);
    if (inode.extentsGen === gen) {
      inode.extents = extents;
      return extents;
    }
  }
}

/** A piece of a file's byte range: where it is on the device, or null for zeros (hole, unwritten, past data). */
export interface Segment {
  fileOffset: number;
  length: number;
  /** Device byte offset, or null when the range reads as zeros. */
  deviceOffset: number | null;
  unwritten: boolean;
  /** Shared with a reflink (OCFS2_EXT_REFCOUNTED): read in place, but written only by a copy on write. */
  refcounted: boolean;
}

/** Splits [offset, offset+length) of the file into device-contiguous segments. */
export async function mapRange(ctx: VolumeContext, inode: Inode, offset: number, length: number): Promise<Segment[]> {
  const { clusterSize, blockSize } = ctx.geo;
  const extents = await dataExtents(ctx, inode);
  const out: Segment[] = [];
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const cpos = Math.floor(pos / clusterSize);
    const found = findExtent(extents, cpos);
    if ('blkno' in found) {
      const extStartByte = found.cpos * clusterSize;
      const extEndByte = (found.cpos + found.clusters) * clusterSize;
      const segEnd = Math.min(end, extEndByte);
      const unwritten = isUnwritten(found);
      out.push({
        fileOffset: pos,
        length: segEnd - pos,
        deviceOffset: unwritten ? null : found.blkno * blockSize + (pos - extStartByte),
        unwritten,
        refcounted: (found.flags & OCFS2_EXT_REFCOUNTED) !== 0,
      });
      pos = segEnd;
    } else {
      const holeEnd = found.holeEnd === Infinity ? end : Math.min(end, found.holeEnd * clusterSize);
      out.push({ fileOffset: pos, length: holeEnd - pos, deviceOffset: null, unwritten: false, refcounted: false });
      pos = holeEnd;
    }
  }
  return out;
}

/**
 * Reads up to `length` bytes at `offset` straight from the device (no cache), clamped to i_size; into `into`
 * (at least `length` bytes) when given, else into a new buffer.
 */
export async function readFileData(ctx: VolumeContext, inode: Inode, offset: number, length: number,
  into?: Buffer): Promise<Buffer> {
  if (offset < 0 || length < 0) throw new FsError('EINVAL', 'negative offset or length');
  const size = inode.size;
  if (offset >= size || length === 0) return Buffer.alloc(0);
  const n = Math.min(length, size - offset);
  const di = inode.di;
  if (di.data) {
    if (size > di.data.id_count) {
      throw new FsError('EIO', `inode ${inode.ino}: i_size ${size} exceeds its inline data area (${di.data.id_count} bytes)`);
    }
    const out = Buffer.alloc(n);
    di.data.id_data.copy(out, 0, offset, Math.min(offset + n, di.data.id_data.length));
    return out;
  }
  const reuse = into !== undefined && into.length >= n;
  const out = reuse ? into.subarray(0, n) : Buffer.alloc(n);
  const segments = await mapRange(ctx, inode, offset, n);
  await Promise.all(segments.map((s) => {
    const part = out.subarray(s.fileOffset - offset, s.fileOffset - offset + s.length);
    if (s.deviceOffset === null) {
      if (reuse) part.fill(0); // a new buffer holds zeros already
      return undefined;
    }
    return ctx.device.readInto(part, s.deviceOffset);
  }));
  return out;
}
