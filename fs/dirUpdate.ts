/**
 * Changing directories: the "." and ".." of a new directory, adding,
 * removing and repointing entries, as the kernel's fs/ocfs2/dir.c lays them
 * out, so that fsck.ocfs2, debugfs.ocfs2 and the kernel read the result.
 *
 * Layout rules kept here (facts from dir.c and fsck.ocfs2 pass 2):
 *  - Records tile their area exactly: an inline directory's id_data up to
 *    i_size (= id_count), or a dir block up to its trailer (volumes with
 *    metaecc or indexed-dirs) or its end.
 *  - A name goes into the first record, in directory order, that is unused
 *    and big enough, or live with enough slack after its name (which is then
 *    split off). A full inline directory becomes a block directory: block 0
 *    holds the old entries, the last record stretched to the end. A full
 *    block directory grows by one block, inside its last cluster while the
 *    cluster has blocks beyond i_size, else by a new cluster. A directory's
 *    i_size counts the blocks in use, which may be fewer than its clusters
 *    hold; blocks past i_size are never read and are formatted as they join.
 *  - Removing merges the record into the previous one of its block, or,
 *    first in its block, marks it unused (inode 0).
 *  - "." is exactly OCFS2_DIR_REC_LEN(1) bytes at offset 0 of block 0 (or of
 *    the inline area) and ".." follows it; fsck insists on both.
 *
 * Each directory touched gets a placement map (name -> logical block, and
 * the largest hole of each block), built by one scan and then kept in step
 * by the changes themselves, so that an insert or a removal in a directory
 * of 100,000 names reads one block, not all of them. The map belongs to the
 * directory's current committed dinode object: whoever else replaces
 * Inode.di (another node's change, a reread) makes it stale, and it is
 * rebuilt on next use. Within a transaction changes are kept as deltas and
 * folded in at commit, so an aborted transaction leaves the map as it was.
 * Every hint is checked against the block it names before it is used.
 *
 * On indexed-dirs volumes every block directory is indexed (fsck.ocfs2
 * insists): a new block directory, or an inline one turned into blocks, gets
 * its index (fs/dxIndex.ts) in the same change, and every name added or
 * removed is added to or removed from the index with it. Such a directory
 * also keeps the list of its blocks with room (the root's dr_free_blk through
 * each trailer's db_free_next), as ocfs2_find_dir_space_dx uses it: a block
 * is on the list exactly when its trailer's db_free_rec_len is not 0, new
 * blocks and blocks that regain room go to its head, and a new name goes
 * into the first block on it with room enough.
 *
 * Callers hold the volume's metadata lock (fs/namei.ts) and pass the
 * transaction that carries the rest of the change (inode link counts, ...).
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Inode, DirIndexEntry } from './inode';
import { editInode, type Transaction } from './transaction';
import { extentRecsPerInodeWithXattr, maxInlineDataWithXattr, setDinodeLinksCount, type Dinode } from './format/dinode';
import {
  decodeDirTrailer, encodeDirEntry, encodeDirTrailer, iterateDirEntries, newDirEntry, newDirTrailer,
  dirTrailerBlkOff, OCFS2_DIR_REC_LEN, OCFS2_DIR_MIN_REC_LEN, OCFS2_DIR_MEMBER_LEN, OCFS2_DIR_PAD, type DirEntry, type DirTrailer,
} from './format/dirent';
import { emptyExtentList } from './format/extent';
import { FormatError } from './format/layout';
import {
  OCFS2_INLINE_DATA_FL, OCFS2_FT_DIR, OCFS2_FT_MAX, S_IFMT, S_IFDIR,
} from './format/constants';
import { readDirBlock } from './blocks';
import { dirBlockNumber, checkName, findName, inoAt, isLiveAt, nameIsAt } from './dir';
import { dataExtents } from './file';
import {
  blocksForName, createIndex, dxHashOf, freeListHead, indexAdd, indexRemove, isIndexed, pushFreeBlock, setFreeListHead,
} from './dxIndex';
import { ScanOrIndex } from './scanOrIndex';
import { insertExtent } from './extentTree';
import { nowTimespec, stamp } from './times';
import { FsError } from './errors';

const trace = createDebug('o2fuse:dir');

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
/** Logical block number standing for "the inline data area". */
const INLINE = -1;

function nameKey(name: Buffer): string {
  return name.toString('latin1');
}

function isDotName(name: Buffer): boolean {
  return name.equals(DOT) || name.equals(DOTDOT);
}

// ---- placement maps ----

/** Where each name lives and how much room each block has, for one committed dinode of a directory. */
interface PlacementMap {
  /** The committed dinode this map describes (Inode.di when it was built or last folded into). */
  di: Dinode;
  /** Name (latin1 key) -> logical block, INLINE for inline directories. Live entries only. */
  where: Map<string, number>;
  /** Logical block -> its largest hole in bytes (what ocfs2_find_max_rec_len measures); empty when inline. */
  maxHole: number[];
}

const placementMaps = new WeakMap<Inode, PlacementMap>();

/** One directory as a transaction sees it: the committed map plus this transaction's changes. */
interface DirView {
  dir: Inode;
  /** The transaction's dinode of the directory (becomes dir.di at commit). */
  di: Dinode;
  /** dir.di when the transaction first touched the directory. */
  priorDi: Dinode;
  base: PlacementMap | null;
  where: Map<string, number | null>;
  maxHole: Map<number, number>;
  /** Clusters added in this transaction, by cpos: first block. */
  newClusters: Map<number, number>;
  /** Changes for the read side's name index (dir.dirIndex), applied at commit. */
  index: Map<string, DirIndexEntry | null>;
}

/** Key of a transaction's directory views (Transaction.local). */
const TX_VIEWS = {};

function requireDir(dir: Inode): void {
  if (!dir.isDir) throw new FsError('ENOTDIR', `inode ${dir.ino} is not a directory`);
}

async function viewOf(tx: Transaction, dir: Inode): Promise<DirView> {
  const views = tx.local(TX_VIEWS, () => new Map<number, DirView>());
  const have = views.get(dir.ino);
  if (have) return have;
  const priorDi = dir.di;
  const di = await editInode(tx, dir);
  const view: DirView = {
    dir, di, priorDi, base: null, where: new Map(), maxHole: new Map(), newClusters: new Map(), index: new Map(),
  };
  views.set(dir.ino, view);
  // Registered after editInode's own callback: by the time this runs, dir.di is view.di.
  tx.onCommit(() => foldIn(view));
  return view;
}

function foldIn(view: DirView): void {
  const { dir } = view;
  // A change that never needed the map (".." of a moved directory) still keeps a current one current.
  const base = view.base ?? currentMap(view);
  if (base) {
    for (const [key, lblk] of view.where) {
      if (lblk === null) base.where.delete(key);
      else base.where.set(key, lblk);
    }
    if (view.di.data) base.maxHole.length = 0;
    for (const [lblk, hole] of view.maxHole) base.maxHole[lblk] = hole;
    base.di = view.di;
    placementMaps.set(dir, base);
  }
  const index = dir.dirIndex;
  if (index) {
    for (const [key, e] of view.index) {
      if (e === null) index.delete(key);
      else index.set(key, e);
    }
  }
}

/** The committed placement map of view.dir, built by one scan of the committed directory when missing or stale. */
async function baseOf(ctx: VolumeContext, view: DirView): Promise<PlacementMap> {
  if (view.base) return view.base;
  const { dir } = view;
  const cached = placementMaps.get(dir);
  if (cached && cached.di === dir.di) {
    view.base = cached;
    return cached;
  }
  const di = dir.di;
  const map: PlacementMap = { di, where: new Map(), maxHole: [] };
  if (di.data) {
    const buf = di.data.id_data;
    const end = inlineEnd(di);
    checkRecords(buf, 0, end, `inline directory ${dir.ino}`);
    for (let off = 0; off < end; off += recLenAt(buf, off)) {
      if (isLiveAt(buf, off)) map.where.set(nameKeyAt(buf, off), INLINE);
    }
  } else {
    const blocks = blockCount(ctx, di);
    const end = recordsEnd(ctx);
    for (let lblk = 0; lblk < blocks; lblk++) {
      const blkno = await dirBlockNumber(ctx, dir, lblk);
      const buf = await dirBlockBytes(ctx, blkno, dir.ino);
      checkRecords(buf, 0, end, `directory ${dir.ino} block ${blkno}`);
      let hole = 0;
      for (let off = 0; off < end; off += recLenAt(buf, off)) {
        if (isLiveAt(buf, off)) map.where.set(nameKeyAt(buf, off), lblk);
        hole = Math.max(hole, holeAt(buf, off));
      }
      map.maxHole[lblk] = hole;
    }
  }
  trace('placement map of directory %d: %d names', dir.ino, map.where.size);
  placementMaps.set(dir, map);
  view.base = map;
  return map;
}

/** Whether a change's search for a name in a directory without a placement map goes through its dx index. */
const placementRule = new ScanOrIndex('placement map');

/**
 * The logical block holding `name` (key: its latin1 string), undefined when
 * absent: this transaction's own changes first, then the committed
 * placement map, or (a large indexed directory without one) the committed
 * dx index. The committed index is right for a name this transaction has
 * not touched: a record never leaves its block, and a leaf split earlier in
 * the transaction moved only index entries.
 */
async function whereIs(ctx: VolumeContext, tx: Transaction, view: DirView, key: string, name: Buffer): Promise<number | undefined> {
  const d = view.where.get(key);
  if (d !== undefined) return d === null ? undefined : d;
  if (!view.base && !currentMap(view) && placementRule.useIndex(ctx, view.dir, view.priorDi)) {
    return whereIndexed(ctx, tx, view, name);
  }
  return (await baseOf(ctx, view)).where.get(key);
}

/** The committed placement map of view.dir when it is current (no scan). */
function currentMap(view: DirView): PlacementMap | null {
  const cached = placementMaps.get(view.dir);
  return cached && cached.di === view.priorDi ? cached : null;
}

/** whereIs through the committed index: the blocks it names for the name's hash, each searched. */
async function whereIndexed(ctx: VolumeContext, tx: Transaction, view: DirView, name: Buffer): Promise<number | undefined> {
  for await (const blkno of blocksForName(ctx, view.priorDi, name)) {
    const lblk = await lblkOf(ctx, view, blkno);
    if (lblk === undefined) {
      throw new FsError('EIO', `directory ${view.dir.ino}: its index names block ${blkno}, which is not one of its blocks; run fsck.ocfs2`);
    }
    const area = await readArea(ctx, tx, view, lblk);
    checkArea(view, area);
    if (findName(area.buf, area.end, name) >= 0) return lblk;
  }
  return undefined;
}

function holeHint(view: DirView, base: PlacementMap, lblk: number): number {
  return view.maxHole.get(lblk) ?? base.maxHole[lblk] ?? 0;
}

// ---- records ----

/** ocfs2_figure_dirent_hole: the bytes a record could give to a new name. */
function holeOf(de: DirEntry): number {
  return de.inode === 0 ? de.rec_len : de.rec_len - OCFS2_DIR_REC_LEN(de.name_len);
}

/**
 * The records tiling buf[start, end), checked as ocfs2_check_dir_entry checks
 * them. A directory change scans its block several times, so this is the
 * allocation-light twin of the format layer's iterateDirEntries: a record
 * breaking a rule goes to that decoder, whose message names the problem. The
 * bytes after a name (tail) are not kept: every encode here zeros them.
 */
function records(buf: Buffer, start: number, end: number, what: string): DirEntry[] {
  checkRecords(buf, start, end, what);
  const out: DirEntry[] = [];
  for (let off = start; off < end; off += recLenAt(buf, off)) out.push(entryAt(buf, off));
  return out;
}

/**
 * Checks every record of buf[start, end) as records() promises, allocating
 * nothing: the scans below (which run on every insert and removal, over
 * blocks of ~200 names) then walk the checked bytes in place.
 */
function checkRecords(buf: Buffer, start: number, end: number, what: string): void {
  let off = start;
  try {
    while (off < end) {
      const recLen = off + OCFS2_DIR_MEMBER_LEN <= end ? buf.readUInt16LE(off + 8) : 0;
      const nameLen = recLen ? buf[off + 10] : 0;
      const high = recLen ? buf.readUInt32LE(off + 4) : 0;
      if (recLen < OCFS2_DIR_MIN_REC_LEN || recLen % OCFS2_DIR_PAD !== 0 || recLen < OCFS2_DIR_REC_LEN(nameLen) ||
        off + recLen > end || high >= 0x200000) {
        [...iterateDirEntries(buf, off, end, what)]; // throws the precise FormatError
        throw new FormatError(`${what}: dirent at offset ${off} is invalid`);
      }
      off += recLen;
    }
  } catch (err) {
    if (err instanceof FormatError) throw new FsError('EIO', err.message);
    throw err;
  }
}

// Field readers for records already checked by checkRecords.
function recLenAt(buf: Buffer, off: number): number {
  return buf.readUInt16LE(off + 8);
}
/** ocfs2_figure_dirent_hole, for the record at `off`. */
function holeAt(buf: Buffer, off: number): number {
  const recLen = buf.readUInt16LE(off + 8);
  return isLiveAt(buf, off) ? recLen - OCFS2_DIR_REC_LEN(buf[off + 10]) : recLen;
}
/** ocfs2_dirent_would_fit, for the record at `off`. */
function fitsAt(buf: Buffer, off: number, recLen: number): boolean {
  const have = buf.readUInt16LE(off + 8);
  if (!isLiveAt(buf, off) && have >= recLen) return true;
  return have >= OCFS2_DIR_REC_LEN(buf[off + 10]) + recLen;
}
function nameKeyAt(buf: Buffer, off: number): string {
  const nameStart = off + OCFS2_DIR_MEMBER_LEN;
  return buf.toString('latin1', nameStart, nameStart + buf[off + 10]);
}
/** The record at `off` as records() returns it (the name copied, no tail). */
function entryAt(buf: Buffer, off: number): DirEntry {
  const nameStart = off + OCFS2_DIR_MEMBER_LEN;
  const nameLen = buf[off + 10];
  return {
    inode: inoAt(buf, off),
    rec_len: buf.readUInt16LE(off + 8),
    name_len: nameLen,
    file_type: buf[off + 11],
    name: Buffer.from(buf.subarray(nameStart, nameStart + nameLen)),
    offset: off,
  };
}

/** Offset of the first record of a checked area that takes `need` bytes, or -1. */
function firstFit(buf: Buffer, start: number, end: number, need: number): number {
  for (let off = start; off < end; off += recLenAt(buf, off)) if (fitsAt(buf, off, need)) return off;
  return -1;
}

/** Largest hole of a checked area (ocfs2_find_max_rec_len). */
function largestHoleIn(buf: Buffer, start: number, end: number): number {
  let hole = 0;
  for (let off = start; off < end; off += recLenAt(buf, off)) hole = Math.max(hole, holeAt(buf, off));
  return hole;
}

/**
 * Dir block buffers known to be valid: validated on their way in from the
 * device, or made by a commit of this module. readDirBlock decodes the whole
 * block on every call, cached or not; a change reads its block several
 * times, so a trusted buffer skips that.
 */
const trustedBlocks = new WeakSet<Buffer>();

/** The cached bytes of dir block `blkno` of directory `dirIno`, validated once per copy. */
async function dirBlockBytes(ctx: VolumeContext, blkno: number, dirIno: number): Promise<Buffer> {
  const cached = await ctx.cache.read(blkno, 'dir block');
  if (trustedBlocks.has(cached)) return cached;
  const { block } = await readDirBlock(ctx, blkno, dirIno);
  trustedBlocks.add(block);
  return block;
}

/** A dir block of `tx` for modification; the buffer it commits becomes the cached copy, trusted. */
async function txDirBlock(tx: Transaction, blkno: number): Promise<Buffer> {
  const buf = await tx.block(blkno, 'dir block');
  tx.onCommit(() => trustedBlocks.add(buf));
  return buf;
}

function newTxDirBlock(tx: Transaction, blkno: number): Buffer {
  const buf = tx.newBlock(blkno, 'dir block');
  tx.onCommit(() => trustedBlocks.add(buf));
  return buf;
}


function inlineEnd(di: Dinode): number {
  const data = di.data!;
  if (di.i_size > data.id_data.length) {
    throw new FsError('EIO', `inline directory ${di.i_blkno}: i_size ${di.i_size} > id_count ${data.id_count}`);
  }
  return di.i_size;
}

function blockCount(ctx: VolumeContext, di: Dinode): number {
  return Math.ceil(di.i_size / ctx.geo.blockSize);
}

/** Dir blocks of this volume end in a trailer (inline areas never do). */
function hasTrailer(ctx: VolumeContext): boolean {
  return ctx.features.dirTrailers;
}

/** End of the record area of a dir block. */
function recordsEnd(ctx: VolumeContext): number {
  return hasTrailer(ctx) ? dirTrailerBlkOff(ctx.geo.blockSize) : ctx.geo.blockSize;
}

/** A record area: the inline data of the transaction's dinode, or one dir block. */
interface Area {
  lblk: number;
  /** Physical block (0 for inline). */
  blkno: number;
  buf: Buffer;
  end: number;
  /** The buffer is the transaction's copy (may be modified). */
  writable: boolean;
}

/** Physical block of logical block `lblk`, including clusters this transaction added. */
async function physBlock(ctx: VolumeContext, view: DirView, lblk: number): Promise<number> {
  const { bpc } = ctx.geo;
  const cpos = Math.floor(lblk / bpc);
  const fresh = view.newClusters.get(cpos);
  if (fresh !== undefined) return fresh + (lblk % bpc);
  return dirBlockNumber(ctx, view.dir, lblk);
}

/** The area of `lblk` for reading: the transaction's copy when it has one, else the validated cached block. */
async function readArea(ctx: VolumeContext, tx: Transaction, view: DirView, lblk: number): Promise<Area> {
  if (lblk === INLINE) return inlineArea(view);
  const blkno = await physBlock(ctx, view, lblk);
  if (tx.has(blkno)) return { lblk, blkno, buf: await txDirBlock(tx, blkno), end: recordsEnd(ctx), writable: true };
  const block = await dirBlockBytes(ctx, blkno, view.dir.ino);
  return { lblk, blkno, buf: block, end: recordsEnd(ctx), writable: false };
}

/** The area of `lblk` for modification (the block joins the transaction). */
async function writeArea(ctx: VolumeContext, tx: Transaction, view: DirView, lblk: number): Promise<Area> {
  if (lblk === INLINE) return inlineArea(view);
  const blkno = await physBlock(ctx, view, lblk);
  if (!tx.has(blkno)) await dirBlockBytes(ctx, blkno, view.dir.ino);
  return { lblk, blkno, buf: await txDirBlock(tx, blkno), end: recordsEnd(ctx), writable: true };
}

function inlineArea(view: DirView): Area {
  const data = view.di.data;
  if (!data) throw new Error(`directory ${view.dir.ino} is not inline`);
  return { lblk: INLINE, blkno: 0, buf: data.id_data, end: inlineEnd(view.di), writable: true };
}

function areaWhat(view: DirView, area: Area): string {
  return area.lblk === INLINE ? `inline directory ${view.dir.ino}` : `directory ${view.dir.ino} block ${area.blkno}`;
}

/**
 * Dir block buffers whose records checkRecords has passed: a change checks
 * its block up to three times (finding space, placing the name, noting the
 * holes), each a walk over ~200 records, and a create or unlink paid ~8 us
 * for the walks. Only this module changes dir block records, and every
 * change it makes leaves them tiling the area, so a buffer checked once
 * stays checked. Inline areas are checked every time: their end moves with
 * i_size and their bytes live in a dinode other code rewrites.
 */
const checkedBlocks = new WeakSet<Buffer>();

/** Checks an area's records (as records() does); the in-place scanners may then walk it. */
function checkArea(view: DirView, area: Area): void {
  if (area.lblk !== INLINE && (checkedBlocks.has(area.buf) || trustedBlocks.has(area.buf))) return;
  checkRecords(area.buf, 0, area.end, areaWhat(view, area));
  if (area.lblk !== INLINE) checkedBlocks.add(area.buf);
}

/** db_free_rec_len for a block whose largest hole is `hole` (ocfs2_find_max_rec_len: 0 when no name fits). */
function freeRecLen(hole: number): number {
  return hole >= OCFS2_DIR_MIN_REC_LEN ? hole : 0;
}

/**
 * After a change to a block: the hole hint, and the trailer's
 * db_free_rec_len (as ocfs2_find_max_rec_len); in an indexed directory the
 * block joins the free-space list when it gains room and leaves it when it
 * has none (ocfs2_recalc_free_list, ocfs2_delete_entry_dx).
 */
async function noteHoles(ctx: VolumeContext, tx: Transaction, view: DirView, area: Area): Promise<void> {
  if (area.lblk === INLINE) return;
  checkArea(view, area);
  const hole = largestHoleIn(area.buf, 0, area.end);
  view.maxHole.set(area.lblk, hole);
  if (!hasTrailer(ctx)) return;
  const t = decodeDirTrailer(area.buf, area.blkno, view.dir.ino);
  const was = t.db_free_rec_len;
  t.db_free_rec_len = freeRecLen(hole);
  if (isIndexed(view.di) && (was === 0) !== (t.db_free_rec_len === 0)) {
    if (was === 0) {
      t.db_free_next = await pushFreeBlock(ctx, tx, view.di, area.blkno);
    } else {
      encodeDirTrailer(t, area.buf);
      await unlinkFree(ctx, tx, view, area.blkno);
      return;
    }
  }
  encodeDirTrailer(t, area.buf);
}

/** Puts the name into record `de` of `area` (split off its slack when it is live), as __ocfs2_add_entry. */
function placeEntry(area: Area, de: DirEntry, name: Buffer, ino: number, fileType: number): void {
  if (!area.writable) throw new Error('placeEntry on a read-only area');
  let at = de.offset;
  let recLen = de.rec_len;
  if (de.inode !== 0) {
    const used = OCFS2_DIR_REC_LEN(de.name_len);
    encodeDirEntry({ ...de, rec_len: used, tail: undefined }, area.buf, de.offset);
    at = de.offset + used;
    recLen = de.rec_len - used;
  }
  encodeDirEntry({ ...newDirEntry(ino, name, fileType, recLen), offset: at }, area.buf, at);
}

function touch(di: Dinode): void {
  const now = nowTimespec();
  stamp(di, 'mtime', now);
  stamp(di, 'ctime', now);
}

function checkFileType(fileType: number): void {
  if (!Number.isInteger(fileType) || fileType <= 0 || fileType >= OCFS2_FT_MAX) {
    throw new FsError('EINVAL', `directory entry file type ${fileType}`);
  }
}

// ---- new directories ----

function fillDots(buf: Buffer, selfIno: number, parentIno: number, end: number): DirEntry {
  const dot = newDirEntry(selfIno, DOT, OCFS2_FT_DIR);
  encodeDirEntry(dot, buf, 0);
  const dotdot = { ...newDirEntry(parentIno, DOTDOT, OCFS2_FT_DIR, end - dot.rec_len), offset: dot.rec_len };
  encodeDirEntry(dotdot, buf, dot.rec_len);
  return dotdot;
}

/** Records data clusters in an inode whose extent tree is still empty (a new or just un-inlined directory). */
function setFirstExtents(di: Dinode, runs: readonly { cpos: number; blkno: number; clusters: number }[]): void {
  const list = di.list;
  if (!list || list.l_tree_depth !== 0 || list.l_next_free_rec !== 0) {
    throw new Error(`inode ${di.i_blkno}: expected an empty extent list`);
  }
  if (runs.length > list.l_count) throw new FsError('EIO', `inode ${di.i_blkno}: ${runs.length} extents > l_count ${list.l_count}`);
  let clusters = 0;
  runs.forEach((r, i) => {
    const rec = list.l_recs[i];
    rec.e_cpos = r.cpos;
    rec.e_leaf_clusters = r.clusters;
    rec.e_int_clusters = r.clusters;
    rec.e_reserved1 = 0;
    rec.e_flags = 0;
    rec.e_blkno = r.blkno;
    clusters += r.clusters;
  });
  list.l_next_free_rec = runs.length;
  di.i_clusters = clusters;
}

/**
 * Gives a new directory its "." and ".." (ocfs2_fill_new_dir): inline when the
 * volume has inline-data (i_size = id_count, ".." covering the rest), else one
 * cluster whose first block holds them (i_size = one block). Sets the link
 * count to 2; the parent's extra link and its entry for the new directory are
 * the caller's (addEntry).
 */
export async function initDirectory(ctx: VolumeContext, tx: Transaction, di: Dinode, parentIno: number): Promise<void> {
  if ((di.i_mode & S_IFMT) !== S_IFDIR) throw new Error(`inode ${di.i_blkno} is not a directory`);
  const ino = di.i_blkno;
  const { blockSize, bpc } = ctx.geo;
  setDinodeLinksCount(di, 2);
  if (ctx.features.inlineData) {
    di.i_dyn_features |= OCFS2_INLINE_DATA_FL;
    di.list = undefined;
    di.tail = undefined;
    const idCount = maxInlineDataWithXattr(blockSize, di);
    di.data = { id_count: idCount, id_reserved0: 0, id_reserved1: 0, id_data: Buffer.alloc(idCount) };
    fillDots(di.data.id_data, ino, parentIno, idCount);
    di.i_size = idCount;
    di.i_clusters = 0;
    return;
  }
  if (di.i_dyn_features & OCFS2_INLINE_DATA_FL) throw new Error(`inode ${ino}: inline data on a volume without inline-data`);
  di.list ??= emptyExtentList(extentRecsPerInodeWithXattr(blockSize, di));
  const run = await ctx.alloc.claimClusters(tx, 1, 1, Math.floor(ino / bpc));
  const blkno = run.cluster * bpc;
  setFirstExtents(di, [{ cpos: 0, blkno, clusters: 1 }]);
  const buf = newTxDirBlock(tx, blkno);
  const end = recordsEnd(ctx);
  const dotdot = fillDots(buf, ino, parentIno, end);
  if (hasTrailer(ctx)) {
    const t = newDirTrailer(blkno, ino);
    t.db_free_rec_len = holeOf(dotdot);
    encodeDirTrailer(t, buf);
  }
  di.i_size = blockSize;
  // ocfs2_fill_new_dir_dx: an inline index of "." and "..", the block heading the free-space list.
  if (ctx.features.indexedDirs) await createIndex(ctx, tx, di, [DOT, DOTDOT].map((n) => ({ hash: dxHashOf(ctx, n), blk: blkno })), blkno);
  trace('new directory %d in %d: block %d', ino, parentIno, blkno);
}

// ---- growing ----

/**
 * A full inline directory becomes a block directory (ocfs2_expand_inline_dir):
 * `blocksWanted` blocks' worth of clusters, block 0 holding the old entries
 * with the last record stretched to the end. Returns the logical block the
 * new name should go into.
 */
async function expandInline(ctx: VolumeContext, tx: Transaction, view: DirView, blocksWanted: number): Promise<number> {
  const { blockSize, clusterSize, bpc } = ctx.geo;
  const { di, dir } = view;
  const oldSize = inlineEnd(di);
  const oldRecords = records(di.data!.id_data, 0, oldSize, `inline directory ${dir.ino}`);
  const wantClusters = Math.ceil((blocksWanted * blockSize) / clusterSize);
  const goal = Math.floor(dir.ino / bpc);
  const runs: { cpos: number; blkno: number; clusters: number }[] = [];
  let have = 0;
  while (have < wantClusters) {
    const run = await ctx.alloc.claimClusters(tx, 1, wantClusters - have, runs.length ? undefined : goal);
    const blkno = run.cluster * bpc;
    const last = runs[runs.length - 1];
    if (last && last.blkno + last.clusters * bpc === blkno) last.clusters += run.count;
    else runs.push({ cpos: have, blkno, clusters: run.count });
    for (let i = 0; i < run.count; i++) view.newClusters.set(have + i, blkno + i * bpc);
    have += run.count;
  }
  const blkno0 = runs[0].blkno;
  const buf = newTxDirBlock(tx, blkno0);
  di.data!.id_data.copy(buf, 0, 0, oldSize);
  const end = recordsEnd(ctx);
  const lastRec = oldRecords[oldRecords.length - 1];
  encodeDirEntry({ ...lastRec, rec_len: lastRec.rec_len + (end - oldSize) }, buf, lastRec.offset);
  if (hasTrailer(ctx)) encodeDirTrailer(newDirTrailer(blkno0, dir.ino), buf);

  // The inode: from inline data to an extent list, one block of i_size.
  di.i_dyn_features &= ~OCFS2_INLINE_DATA_FL;
  di.data = undefined;
  di.tail = undefined;
  di.list = emptyExtentList(extentRecsPerInodeWithXattr(blockSize, di));
  setFirstExtents(di, runs);
  di.i_size = blockSize;
  await editInode(tx, dir, { extentsChanged: true });

  const area: Area = { lblk: 0, blkno: blkno0, buf, end, writable: true };
  await noteHoles(ctx, tx, view, area);
  for (const de of oldRecords) if (de.inode !== 0) view.where.set(nameKey(de.name), 0);
  if (ctx.features.indexedDirs) {
    // ocfs2_expand_inline_dir on an indexed-dirs volume: block 0's names are indexed, block 0 heads the free list.
    const live = oldRecords.filter((de) => de.inode !== 0).map((de) => ({ hash: dxHashOf(ctx, de.name), blk: blkno0 }));
    const room = decodeDirTrailer(buf, blkno0, dir.ino).db_free_rec_len !== 0;
    await createIndex(ctx, tx, di, live, room ? blkno0 : 0);
  }
  trace('directory %d: inline -> block %d (%d clusters)', dir.ino, blkno0, have);
  return blocksWanted === 1 ? 0 : extendDir(ctx, tx, view);
}

/**
 * One more block at the end of a block directory (ocfs2_extend_dir): inside
 * the last cluster while it has room, else in a new cluster. The block is
 * formatted as one unused record (and a trailer). Returns its logical block.
 */
async function extendDir(ctx: VolumeContext, tx: Transaction, view: DirView): Promise<number> {
  const { blockSize, clusterSize, bpc } = ctx.geo;
  const { di, dir } = view;
  if (di.i_size % blockSize !== 0) throw new FsError('EIO', `directory ${dir.ino}: i_size ${di.i_size} is not whole blocks`);
  const lblk = di.i_size / blockSize;
  if (di.i_size >= di.i_clusters * clusterSize) {
    const cpos = di.i_clusters;
    const goal = lblk > 0 ? Math.floor((await physBlock(ctx, view, lblk - 1)) / bpc) + 1 : Math.floor(dir.ino / bpc);
    const run = await ctx.alloc.claimClusters(tx, 1, 1, goal);
    const blkno = run.cluster * bpc;
    // insertExtent counts the cluster in i_clusters (as ocfs2_insert_extent does) and drops dir.extents at commit.
    await insertExtent(ctx, tx, dir, { cpos, clusters: 1, blkno, flags: 0 }, di);
    view.newClusters.set(cpos, blkno);
    trace('directory %d: cluster %d at block %d', dir.ino, cpos, blkno);
  }
  const blkno = await physBlock(ctx, view, lblk);
  const buf = newTxDirBlock(tx, blkno);
  const end = recordsEnd(ctx);
  encodeDirEntry({ inode: 0, rec_len: end, name_len: 0, file_type: 0, name: Buffer.alloc(0), offset: 0 }, buf, 0);
  if (hasTrailer(ctx)) {
    const t = newDirTrailer(blkno, dir.ino);
    t.db_free_rec_len = end;
    if (isIndexed(di)) {
      // ocfs2_dx_dir_link_trailer: a new block goes to the head of the free-space list.
      t.db_free_next = await pushFreeBlock(ctx, tx, di, blkno);
    }
    encodeDirTrailer(t, buf);
  }
  di.i_size += blockSize;
  view.maxHole.set(lblk, end);
  return lblk;
}

// ---- the operations ----

/**
 * Adds `name` -> `ino` (with dirent file type `fileType`) to `dir` in `tx`,
 * growing the directory when no record has room. EEXIST when the name is
 * there; ENOSPC when the volume has no cluster to grow into. Updates the
 * directory's mtime, ctime and i_size (its link count is the caller's).
 */
export async function addEntry(ctx: VolumeContext, tx: Transaction, dir: Inode, name: Buffer, ino: number,
  fileType: number): Promise<void> {
  requireDir(dir);
  checkName(name);
  if (isDotName(name)) throw new FsError('EEXIST', `"${name.toString()}" always exists`);
  checkFileType(fileType);
  if (!Number.isSafeInteger(ino) || ino <= 0) throw new Error(`addEntry: inode number ${ino}`);
  const view = await viewOf(tx, dir);
  const key = nameKey(name);
  if ((await whereIs(ctx, tx, view, key, name)) !== undefined) throw new FsError('EEXIST');
  const need = OCFS2_DIR_REC_LEN(name.length);

  let lblk: number | undefined;
  if (view.di.data) {
    const area = inlineArea(view);
    checkArea(view, area);
    const at = firstFit(area.buf, 0, area.end, need);
    if (at >= 0) {
      placeEntry(area, entryAt(area.buf, at), name, ino, fileType);
      lblk = INLINE;
    } else {
      // ocfs2_find_dir_space_id: will the stretched last record of block 0 take the name, or is a second block needed?
      let lastAt = 0;
      for (let off = 0; off < area.end; off += recLenAt(area.buf, off)) lastAt = off;
      const last = entryAt(area.buf, lastAt);
      const stretched = last.rec_len + (recordsEnd(ctx) - area.end);
      lblk = await expandInline(ctx, tx, view, stretched < need + OCFS2_DIR_REC_LEN(last.name_len) ? 2 : 1);
    }
  } else {
    lblk = isIndexed(view.di) ? await findFreeListed(ctx, tx, view, need) : await findSpace(ctx, tx, view, need);
    lblk ??= await extendDir(ctx, tx, view);
  }
  if (lblk !== INLINE) {
    const area = await writeArea(ctx, tx, view, lblk);
    checkArea(view, area);
    const at = firstFit(area.buf, 0, area.end, need);
    if (at < 0) throw new Error(`directory ${dir.ino}: block ${lblk} was chosen for ${need} bytes but has no room`);
    placeEntry(area, entryAt(area.buf, at), name, ino, fileType);
    await noteHoles(ctx, tx, view, area);
    if (isIndexed(view.di)) await indexAdd(ctx, tx, view.di, dxHashOf(ctx, name), area.blkno);
  }
  view.where.set(key, lblk);
  view.index.set(key, { ino, fileType });
  touch(view.di);
}

/** The first block (in directory order) with a record that takes `need` bytes, per the hints, checked. */
async function findSpace(ctx: VolumeContext, tx: Transaction, view: DirView, need: number): Promise<number | undefined> {
  const base = await baseOf(ctx, view);
  const blocks = blockCount(ctx, view.di);
  for (let lblk = 0; lblk < blocks; lblk++) {
    if (holeHint(view, base, lblk) < need) continue;
    const area = await readArea(ctx, tx, view, lblk);
    checkArea(view, area);
    if (firstFit(area.buf, 0, area.end, need) >= 0) return lblk;
    // A hint that promised too much: correct it and go on.
    view.maxHole.set(lblk, largestHoleIn(area.buf, 0, area.end));
  }
  return undefined;
}

// ---- the free-space list of an indexed directory ----

/** Logical block of a physical block of the directory (this transaction's new clusters included), or undefined. */
async function lblkOf(ctx: VolumeContext, view: DirView, blkno: number): Promise<number | undefined> {
  const { bpc } = ctx.geo;
  const inUse = (lblk: number) => (lblk < blockCount(ctx, view.di) ? lblk : undefined);
  for (const [cpos, first] of view.newClusters) {
    if (blkno >= first && blkno < first + bpc) return inUse(cpos * bpc + (blkno - first));
  }
  if (view.priorDi.data) return undefined;
  for (const e of await dataExtents(ctx, view.dir)) {
    if (blkno >= e.blkno && blkno < e.blkno + e.clusters * bpc) return inUse(e.cpos * bpc + (blkno - e.blkno));
  }
  return undefined;
}

/**
 * Visits the blocks on the free-space list from its head (each with its
 * logical block, area and trailer) until `visit` says stop (true); null when
 * the list is damaged (a loop, a foreign block).
 */
async function freeListWalk(ctx: VolumeContext, tx: Transaction, view: DirView,
  visit: (blkno: number, lblk: number, area: Area, trailer: DirTrailer) => Promise<boolean>): Promise<boolean | null> {
  const limit = blockCount(ctx, view.di);
  const seen = new Set<number>();
  for (let blkno = await freeListHead(ctx, tx, view.di); blkno !== 0;) {
    const lblk = seen.has(blkno) || seen.size >= limit ? undefined : await lblkOf(ctx, view, blkno);
    if (lblk === undefined) return null;
    seen.add(blkno);
    const area = await readArea(ctx, tx, view, lblk);
    const trailer = decodeDirTrailer(area.buf, blkno, view.dir.ino);
    if (await visit(blkno, lblk, area, trailer)) return true;
    blkno = trailer.db_free_next;
  }
  return false;
}

/**
 * Relinks the free-space list from the blocks themselves, every block with
 * room on it, in directory order: for a list another writer left looping or
 * pointing outside the directory. Nothing is lost; names are not moved.
 */
async function rebuildFreeList(ctx: VolumeContext, tx: Transaction, view: DirView): Promise<void> {
  trace('directory %d: its free-space list is damaged (a loop or a foreign block); relinking it', view.dir.ino);
  let head = 0;
  for (let lblk = blockCount(ctx, view.di) - 1; lblk >= 0; lblk--) {
    const area = await writeArea(ctx, tx, view, lblk);
    checkArea(view, area);
    const hole = largestHoleIn(area.buf, 0, area.end);
    const t = decodeDirTrailer(area.buf, area.blkno, view.dir.ino);
    t.db_free_rec_len = freeRecLen(hole);
    t.db_free_next = t.db_free_rec_len ? head : 0;
    if (t.db_free_rec_len) head = area.blkno;
    encodeDirTrailer(t, area.buf);
    view.maxHole.set(lblk, hole);
  }
  await setFreeListHead(ctx, tx, view.di, head);
}

/**
 * ocfs2_search_dx_free_list: the first block on the list whose
 * db_free_rec_len admits `need` bytes and which really has them (a value
 * that promised too much is corrected on the way).
 */
async function findFreeListed(ctx: VolumeContext, tx: Transaction, view: DirView, need: number): Promise<number | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    let found: number | undefined;
    const overstated: number[] = [];
    const walked = await freeListWalk(ctx, tx, view, async (_blkno, lblk, area, trailer) => {
      if (trailer.db_free_rec_len < need) return false;
      checkArea(view, area);
      if (firstFit(area.buf, 0, area.end, need) >= 0) {
        found = lblk;
        return true;
      }
      overstated.push(lblk);
      return false;
    });
    if (walked === null) {
      await rebuildFreeList(ctx, tx, view);
      continue;
    }
    for (const lblk of overstated) {
      trace('directory %d: block %d promised %d bytes it does not have; corrected', view.dir.ino, lblk, need);
      await noteHoles(ctx, tx, view, await writeArea(ctx, tx, view, lblk));
    }
    return found;
  }
  return undefined;
}

/** Takes block `blkno` off the free-space list (ocfs2_remove_block_from_free_list). */
async function unlinkFree(ctx: VolumeContext, tx: Transaction, view: DirView, blkno: number): Promise<void> {
  let prevLblk = -1;
  const walked = await freeListWalk(ctx, tx, view, async (b, lblk) => {
    if (b === blkno) return true;
    prevLblk = lblk;
    return false;
  });
  const lblk = await lblkOf(ctx, view, blkno);
  if (walked === null || lblk === undefined) {
    await rebuildFreeList(ctx, tx, view);
    return;
  }
  const self = await writeArea(ctx, tx, view, lblk);
  const t = decodeDirTrailer(self.buf, blkno, view.dir.ino);
  const next = t.db_free_next;
  t.db_free_next = 0;
  encodeDirTrailer(t, self.buf);
  if (!walked) return; // it was not on the list
  if (prevLblk < 0) {
    await setFreeListHead(ctx, tx, view.di, next);
  } else {
    const w = await writeArea(ctx, tx, view, prevLblk);
    const pt = decodeDirTrailer(w.buf, w.blkno, view.dir.ino);
    pt.db_free_next = next;
    encodeDirTrailer(pt, w.buf);
  }
}

/** Where `name` lives: the record and its area (writable), found through the map and checked, else by a full scan. */
async function locate(ctx: VolumeContext, tx: Transaction, view: DirView, name: Buffer):
  Promise<{ area: Area; de: DirEntry; prev: DirEntry | null } | null> {
  const tryBlock = async (lblk: number) => {
    const area = lblk === INLINE ? inlineArea(view) : await readArea(ctx, tx, view, lblk);
    checkArea(view, area);
    let prevAt = -1;
    let at = 0;
    for (; at < area.end; at += recLenAt(area.buf, at)) {
      if (nameIsAt(area.buf, at, name)) break;
      prevAt = at;
    }
    if (at >= area.end) return null;
    const de = entryAt(area.buf, at);
    const prev = prevAt >= 0 ? entryAt(area.buf, prevAt) : null;
    const w = area.writable ? area : await writeArea(ctx, tx, view, lblk);
    return { area: w, de, prev };
  };
  // "." and ".." are always in the first block: no need for the map (a moved directory's ".." is fixed this way).
  const first = view.di.data ? INLINE : 0;
  if (isDotName(name)) return tryBlock(first);
  const key = nameKey(name);
  const hinted = await whereIs(ctx, tx, view, key, name);
  if (hinted === undefined) return null;
  const found = await tryBlock(hinted);
  if (found) return found;
  // The map was wrong: scan everything, and forget the map (the next use rebuilds it from the committed directory).
  trace('directory %d: placement map missed "%s"; scanning', view.dir.ino, name.toString());
  placementMaps.delete(view.dir);
  view.base = null;
  if (view.di.data) return tryBlock(INLINE);
  for (let lblk = 0; lblk < blockCount(ctx, view.di); lblk++) {
    const f = await tryBlock(lblk);
    if (f) {
      view.where.set(key, lblk);
      return f;
    }
  }
  return null;
}

/**
 * Removes `name` from `dir` in `tx` (ocfs2_delete_entry): its record merges
 * into the previous one of its block, or becomes unused when it is the
 * block's first. Returns what the entry pointed to. ENOENT when absent;
 * "." and ".." cannot be removed (EINVAL). Updates mtime and ctime.
 */
export async function removeEntry(ctx: VolumeContext, tx: Transaction, dir: Inode, name: Buffer): Promise<DirIndexEntry> {
  requireDir(dir);
  if (name.length === 0) throw new FsError('ENOENT', 'empty name');
  if (isDotName(name)) throw new FsError('EINVAL', `"${name.toString()}" cannot be removed`);
  const view = await viewOf(tx, dir);
  const found = await locate(ctx, tx, view, name);
  if (!found) throw new FsError('ENOENT');
  const { area, de, prev } = found;
  if (prev) {
    // The merged record's stale bytes are zeroed rather than left as a ghost name.
    encodeDirEntry({ ...prev, rec_len: prev.rec_len + de.rec_len, tail: undefined }, area.buf, prev.offset);
  } else {
    encodeDirEntry({ ...de, inode: 0 }, area.buf, de.offset);
  }
  await noteHoles(ctx, tx, view, area);
  if (area.lblk !== INLINE && isIndexed(view.di)) await indexRemove(ctx, tx, view.di, name, area.blkno);
  const key = nameKey(name);
  view.where.set(key, null);
  view.index.set(key, null);
  touch(view.di);
  return { ino: de.inode, fileType: de.file_type };
}

/**
 * Points the existing entry `name` of `dir` at `newIno` with type
 * `newFileType` (ocfs2_update_entry): rename over an existing name, or ".."
 * of a directory that moved. Times are the caller's, as in the kernel.
 */
export async function setEntryInode(ctx: VolumeContext, tx: Transaction, dir: Inode, name: Buffer, newIno: number,
  newFileType: number): Promise<void> {
  requireDir(dir);
  checkFileType(newFileType);
  if (!Number.isSafeInteger(newIno) || newIno <= 0) throw new Error(`setEntryInode: inode number ${newIno}`);
  const view = await viewOf(tx, dir);
  const found = await locate(ctx, tx, view, name);
  if (!found) throw new FsError('ENOENT');
  const { de } = found;
  encodeDirEntry({ ...de, inode: newIno, file_type: newFileType }, found.area.buf, de.offset);
  view.index.set(nameKey(name), { ino: newIno, fileType: newFileType });
}

/** Whether `dir` holds nothing but "." and ".." (ocfs2_empty_dir), in its committed state. */
export async function isEmptyDir(ctx: VolumeContext, dir: Inode): Promise<boolean> {
  requireDir(dir);
  const map = placementMaps.get(dir);
  if (map && map.di === dir.di) {
    for (const key of map.where.keys()) if (key !== '.' && key !== '..') return false;
    return true;
  }
  const other = (de: DirEntry) => de.inode !== 0 && !isDotName(de.name);
  const di = dir.di;
  if (di.data) return !records(di.data.id_data, 0, inlineEnd(di), `inline directory ${dir.ino}`).some(other);
  for (let lblk = 0; lblk < blockCount(ctx, di); lblk++) {
    const { db } = await readDirBlock(ctx, await dirBlockNumber(ctx, dir, lblk), dir.ino);
    if (db.entries.some(other)) return false;
  }
  return true;
}

/** For tests: forget the placement map of `dir` (the next change rebuilds it from disk). */
export function forgetPlacement(dir: Inode): void {
  placementMaps.delete(dir);
}

/** For tests: the placement map's view of `dir` (names -> logical block), or null when none is current. */
export function placementOf(dir: Inode): ReadonlyMap<string, number> | null {
  const map = placementMaps.get(dir);
  return map && map.di === dir.di ? map.where : null;
}
