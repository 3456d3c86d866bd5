/**
 * Reading directories: inline directories (entries in the inode's inline data
 * up to i_size) and block directories (entries in the data blocks of the
 * extent tree, each block ending in a trailer on volumes that use them).
 *
 * Lookups go through a per-directory name map built from one full scan and
 * kept up to date by every change. A large indexed directory
 * (OCFS2_INDEXED_DIR_FL) without a map is looked up through its on-disk dx
 * index instead, as the kernel does (the root, one leaf and the block the
 * leaf names), until the map is worth building (fs/scanOrIndex.ts). An
 * unindexed directory has no other way than the scan.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Inode, DirIndexEntry } from './inode';
import { dirTrailerBlkOff, iterateDirEntries, OCFS2_DIR_MEMBER_LEN } from './format/dirent';
import { FormatError } from './format/layout';
import { OCFS2_MAX_FILENAME_LEN, OCFS2_FT_REG_FILE, OCFS2_FT_DIR, OCFS2_FT_CHRDEV, OCFS2_FT_BLKDEV,
  OCFS2_FT_FIFO, OCFS2_FT_SOCK, OCFS2_FT_SYMLINK, S_IFREG, S_IFDIR, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFLNK,
} from './format/constants';
import { readDirBlockBytes } from './blocks';
import { blocksForName } from './dxIndex';
import { ScanOrIndex } from './scanOrIndex';
import { dataExtents } from './file';
import { findExtent, type Extent } from './extentMap';
import { FsError } from './errors';

const trace = createDebug('o2fuse:dir');

/** A live entry with where it lives, for later modification. */
export interface DirSlot {
  name: Buffer;
  ino: number;
  fileType: number;
  /** Logical block of the directory (-1 for inline), and byte offset of the record in it. */
  lblk: number;
  offset: number;
}

const MODE_BY_FT: Readonly<Record<number, number>> = {
  [OCFS2_FT_REG_FILE]: S_IFREG,
  [OCFS2_FT_DIR]: S_IFDIR,
  [OCFS2_FT_CHRDEV]: S_IFCHR,
  [OCFS2_FT_BLKDEV]: S_IFBLK,
  [OCFS2_FT_FIFO]: S_IFIFO,
  [OCFS2_FT_SOCK]: S_IFSOCK,
  [OCFS2_FT_SYMLINK]: S_IFLNK,
};

/** S_IFMT bits for a dirent file_type (0 when unknown). */
export function modeTypeOfFileType(ft: number): number {
  return MODE_BY_FT[ft & 7] ?? 0;
}

/** Physical block of logical directory block `lblk`; a hole in a directory is corruption. */
export function dirBlockNumber(ctx: VolumeContext, dir: Inode, lblk: number): Promise<number> {
  if (!dir.extents) return dataExtents(ctx, dir).then((extents) => dirBlockIn(ctx, dir, extents, lblk));
  try {
    return Promise.resolve(dirBlockIn(ctx, dir, dir.extents, lblk));
  } catch (err) {
    return Promise.reject(err);
  }
}

function dirBlockIn(ctx: VolumeContext, dir: Inode, extents: readonly Extent[], lblk: number): number {
  const cpos = Math.floor(lblk / ctx.geo.bpc);
  const e = findExtent(extents, cpos);
  if (!('blkno' in e)) throw new FsError('EIO', `directory ${dir.ino}: block ${lblk} is in a hole`);
  return e.blkno + (cpos - e.cpos) * ctx.geo.bpc + (lblk % ctx.geo.bpc);
}

/**
 * The last full listing of a directory, for the dinode it was read under.
 * Every change to a directory's entries commits a new dinode (its mtime
 * moves), so a listing whose dinode is still Inode.di is current; repeated
 * listings (ls in a loop, a reader's rewinddir) then decode nothing.
 */
/** Directory blocks a listing reads at once. */
const SCAN_AHEAD_BLOCKS = 32;

const listings = new WeakMap<Inode, { di: Inode['di']; slots: DirSlot[] }>();

/** Every live entry of a directory in on-disk order (including "." and ".."). Callers must not modify the slots. */
export async function readDirSlots(ctx: VolumeContext, dir: Inode): Promise<DirSlot[]> {
  if (!dir.isDir) throw new FsError('ENOTDIR', `inode ${dir.ino} is not a directory`);
  const cached = listings.get(dir);
  if (cached && cached.di === dir.di) return cached.slots.slice();
  const before = dir.di;
  const slots = await scanDirSlots(ctx, dir);
  // Install the listing only if no change landed while it was read.
  if (dir.di === before) listings.set(dir, { di: before, slots: slots.slice() });
  return slots;
}

async function scanDirSlots(ctx: VolumeContext, dir: Inode): Promise<DirSlot[]> {
  const out: DirSlot[] = [];
  const di = dir.di;
  try {
    if (di.data) {
      if (di.i_size > di.data.id_count) {
        throw new FsError('EIO', `inline directory ${dir.ino}: i_size ${di.i_size} exceeds its inline data area (${di.data.id_count} bytes)`);
      }
      const end = Math.min(di.i_size, di.data.id_data.length);
      for (const de of iterateDirEntries(di.data.id_data, 0, end, `inline directory ${dir.ino}`)) {
        if (de.inode !== 0) out.push({ name: de.name, ino: de.inode, fileType: de.file_type, lblk: -1, offset: de.offset });
      }
      return out;
    }
  } catch (err) {
    if (err instanceof FormatError) throw new FsError('EIO', err.message);
    throw err;
  }
  const blocks = Math.ceil(di.i_size / ctx.geo.blockSize);
  // Blocks are read SCAN_AHEAD_BLOCKS at a time (a cold directory costs one device round trip per batch, not per
  // block) and taken in order: the first bad block, in directory order, is the error reported.
  for (let first = 0; first < blocks; first += SCAN_AHEAD_BLOCKS) {
    const batch: Promise<{ slots: DirSlot[] } | { err: unknown }>[] = [];
    for (let lblk = first; lblk < Math.min(blocks, first + SCAN_AHEAD_BLOCKS); lblk++) {
      batch.push(dirBlockNumber(ctx, dir, lblk)
        .then((blkno) => dirBlockSlots(ctx, dir, lblk, blkno))
        .then((slots) => ({ slots }), (err: unknown) => ({ err })));
    }
    const got = await Promise.all(batch);
    for (let k = 0; k < got.length; k++) {
      const r = got[k];
      if ('err' in r) throw r.err;
      for (const slot of r.slots) out.push(slot);
    }
  }
  return out;
}

/**
 * The live entries of each dir block buffer, by buffer. A committed change
 * to a block installs a new buffer (the transaction's copy) and never touches
 * the old one, so a buffer's entries never change; after a create in a
 * 5,000-entry directory the next listing decodes the one block that changed,
 * not all 160 (8 ms -> well under 1 ms).
 */
const blockSlots = new WeakMap<Buffer, { dirIno: number; lblk: number; slots: DirSlot[] }>();

/**
 * The live entries of logical block `lblk` (physical `blkno`) of `dir`. The
 * block is validated once per cached copy (every record checked); its records
 * are then walked in place, names as views of the block (a cached block never
 * changes, see blockSlots).
 */
async function dirBlockSlots(ctx: VolumeContext, dir: Inode, lblk: number, blkno: number): Promise<DirSlot[]> {
  const block = await readDirBlockBytes(ctx, blkno, dir.ino);
  const cached = blockSlots.get(block);
  if (cached && cached.dirIno === dir.ino && cached.lblk === lblk) return cached.slots;
  const end = ctx.features.dirTrailers ? dirTrailerBlkOff(block.length) : block.length;
  const slots: DirSlot[] = [];
  for (let off = 0; off < end;) {
    const recLen = block.readUInt16LE(off + 8);
    const ino = inoAt(block, off);
    if (ino !== 0) {
      const nameStart = off + OCFS2_DIR_MEMBER_LEN;
      slots.push({ name: block.subarray(nameStart, nameStart + block[off + 10]), ino, fileType: block[off + 11], lblk, offset: off });
    }
    off += recLen;
  }
  blockSlots.set(block, { dirIno: dir.ino, lblk, slots });
  return slots;
}

function nameKey(name: Buffer): string {
  return name.toString('latin1');
}

async function dirIndex(ctx: VolumeContext, dir: Inode): Promise<Map<string, DirIndexEntry>> {
  if (dir.dirIndex) return dir.dirIndex;
  // Every change to a directory replaces dir.di (its mtime moves): install the scan only if none landed meanwhile.
  const before = dir.di;
  const index = new Map<string, DirIndexEntry>();
  for (const s of await readDirSlots(ctx, dir)) index.set(nameKey(s.name), { ino: s.ino, fileType: s.fileType });
  if (dir.di === before) dir.dirIndex = index;
  return index;
}

export function checkName(name: Buffer): void {
  if (name.length === 0) throw new FsError('ENOENT', 'empty name');
  if (name.length > OCFS2_MAX_FILENAME_LEN) throw new FsError('ENAMETOOLONG', `name of ${name.length} bytes (max ${OCFS2_MAX_FILENAME_LEN})`);
  if (name.includes(0x2f) || name.includes(0)) throw new FsError('EINVAL', 'name contains "/" or NUL');
}

/** Whether a lookup in a directory without a name map goes through its dx index (fs/scanOrIndex.ts). */
const nameMapRule = new ScanOrIndex('name map');

/** The entry for `name` in `dir`, or null. */
export function lookupEntry(ctx: VolumeContext, dir: Inode, name: Buffer): Promise<DirIndexEntry | null> {
  if (!dir.isDir) return Promise.reject(new FsError('ENOTDIR', `inode ${dir.ino} is not a directory`));
  if (name.length > OCFS2_MAX_FILENAME_LEN) return Promise.reject(new FsError('ENAMETOOLONG', `name of ${name.length} bytes`));
  // With the map in memory (the usual case), one resolved promise and no async function.
  const key = nameKey(name);
  if (dir.dirIndex) return Promise.resolve(dir.dirIndex.get(key) ?? null);
  if (nameMapRule.useIndex(ctx, dir, dir.di)) return indexLookup(ctx, dir, name);
  return dirIndex(ctx, dir).then((index) => index.get(key) ?? null);
}

/** Lookups that went through a dx index, and how many of them had to start over because the directory changed. */
export const indexLookupStats = { lookups: 0, restarts: 0 };

/**
 * ocfs2_dx_dir_search: the blocks the index names for the name's hash, each
 * searched for the name. A change committed while the lookup waits for a
 * block (every change to a directory replaces dir.di) can leave the root,
 * the leaf and the dir block from different states: the lookup starts over.
 */
async function indexLookup(ctx: VolumeContext, dir: Inode, name: Buffer): Promise<DirIndexEntry | null> {
  indexLookupStats.lookups++;
  for (let attempt = 0; ; attempt++) {
    const di = dir.di;
    const found = await searchIndexed(ctx, dir, di, name);
    if (dir.di === di) return found;
    indexLookupStats.restarts++;
    trace('lookup of "%s" in directory %d: the directory changed meanwhile; again', name.toString(), dir.ino);
    if (attempt >= 100) throw new FsError('EAGAIN', `directory ${dir.ino} keeps changing under a lookup`);
  }
}

async function searchIndexed(ctx: VolumeContext, dir: Inode, di: Inode['di'], name: Buffer): Promise<DirIndexEntry | null> {
  for await (const blkno of blocksForName(ctx, di, name)) {
    // Validated as this directory's block (its trailer names the directory), records checked.
    const block = await readDirBlockBytes(ctx, blkno, dir.ino);
    const off = findName(block, dirTrailerBlkOff(block.length), name);
    if (off >= 0) return { ino: inoAt(block, off), fileType: block[off + 11] };
  }
  return null;
}

// Readers of records whose lengths were checked (a validated dir block, or an area fs/dirUpdate.ts checked).

/** The 64-bit inode number of the record at `off`. */
export function inoAt(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 4) * 0x1_0000_0000 + buf.readUInt32LE(off);
}

/** Whether the record at `off` is live (its 64-bit inode number is not 0). */
export function isLiveAt(buf: Buffer, off: number): boolean {
  return buf.readUInt32LE(off) !== 0 || buf.readUInt32LE(off + 4) !== 0;
}

/** Whether the record at `off` is live and named `name`. */
export function nameIsAt(buf: Buffer, off: number, name: Buffer): boolean {
  const n = name.length;
  if (buf[off + 10] !== n || !isLiveAt(buf, off)) return false;
  const at = off + OCFS2_DIR_MEMBER_LEN;
  // Names in one directory often share a prefix and a length (file-000123): the last byte rules most out.
  return buf[at + n - 1] === name[n - 1] && buf.compare(name, 0, n, at, at + n) === 0;
}

/** Offset of the live record named `name` among the records tiling buf[0, end), or -1. */
export function findName(buf: Buffer, end: number, name: Buffer): number {
  for (let off = 0; off < end; off += buf.readUInt16LE(off + 8)) if (nameIsAt(buf, off, name)) return off;
  return -1;
}
