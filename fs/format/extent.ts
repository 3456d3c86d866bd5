/**
 * Extent records, extent lists and extent blocks (struct ocfs2_extent_rec,
 * ocfs2_extent_list, ocfs2_extent_block "EXBLK01").
 *
 * An extent list lives inside other structures (dinode id2, extent block,
 * dx root, discontiguous group desc, refcount and xattr tree roots), so the
 * list codec takes a base offset and the number of records that fit there.
 */
import { OCFS2_EXTENT_BLOCK_SIGNATURE } from './constants';
import {
  checkSignature, decodeFields, decodeRecords, Decoded, encodeFields, encodeRecords, FormatError, omitFields, recordsToKeep, signatureBytes,
  writeSignature,
} from './layout';

/** struct ocfs2_extent_rec: e_int_clusters (interior) and the leaf view share offset 4. */
export const EXTENT_REC = {
  e_cpos: [0x00, 'u32'],
  e_int_clusters: [0x04, 'u32'],
  e_leaf_clusters: [0x04, 'u16'],
  e_reserved1: [0x06, 'u8'],
  e_flags: [0x07, 'u8'],
  e_blkno: [0x08, 'u64'],
} as const;
export const EXTENT_REC_SIZE = 0x10;
const EXTENT_REC_INTERIOR = omitFields(EXTENT_REC, ['e_leaf_clusters', 'e_reserved1', 'e_flags']);
const EXTENT_REC_LEAF = omitFields(EXTENT_REC, ['e_int_clusters']);

/** Both views are decoded; which one is meaningful (and encoded) depends on the list's l_tree_depth. */
export type ExtentRec = Decoded<typeof EXTENT_REC>;

/** struct ocfs2_extent_list header; l_recs follow at 0x10. */
export const EXTENT_LIST = {
  l_tree_depth: [0x00, 'u16'],
  l_count: [0x02, 'u16'],
  l_next_free_rec: [0x04, 'u16'],
  l_reserved1: [0x06, 'u16'],
  l_reserved2: [0x08, 'bytes', 8],
} as const;
export const EXTENT_LIST_RECS_OFFSET = 0x10;

export interface ExtentList extends Decoded<typeof EXTENT_LIST> {
  /** All l_count records (used ones are [0, l_next_free_rec)). */
  l_recs: ExtentRec[];
}

/** struct ocfs2_extent_block; h_list at 0x30. */
export const EXTENT_BLOCK = {
  h_signature: [0x00, 'bytes', 8],
  h_check: [0x08, 'bytes', 8],
  h_suballoc_slot: [0x10, 'u16'],
  h_suballoc_bit: [0x12, 'u16'],
  h_fs_generation: [0x14, 'u32'],
  h_blkno: [0x18, 'u64'],
  h_suballoc_loc: [0x20, 'u64'],
  h_next_leaf_blk: [0x28, 'u64'],
} as const;
export const EXTENT_BLOCK_LIST_OFFSET = 0x30;
export const EXTENT_BLOCK_CHECK_OFFSET = EXTENT_BLOCK.h_check[0];

export interface ExtentBlock extends Decoded<typeof EXTENT_BLOCK> {
  h_list: ExtentList;
}

/** Clusters covered by a record: the interior or leaf view by depth. */
export function extentRecClusters(rec: ExtentRec, treeDepth: number): number {
  return treeDepth > 0 ? rec.e_int_clusters : rec.e_leaf_clusters;
}

/** Sets the clusters of a record in both views consistently for the record's depth. */
export function setExtentRecClusters(rec: ExtentRec, treeDepth: number, clusters: number): void {
  if (treeDepth > 0) {
    rec.e_int_clusters = clusters;
    rec.e_leaf_clusters = clusters & 0xffff;
    rec.e_reserved1 = (clusters >>> 16) & 0xff;
    rec.e_flags = clusters >>> 24;
  } else {
    if (clusters > 0xffff) throw new RangeError(`leaf extent of ${clusters} clusters exceeds e_leaf_clusters`);
    rec.e_leaf_clusters = clusters;
    rec.e_int_clusters = ((rec.e_flags << 24) | (rec.e_reserved1 << 16) | clusters) >>> 0;
  }
}

/** Records that fit in `bytes` bytes after a list header (the kernel's ocfs2_extent_recs_per_* arithmetic). */
export function extentRecsInBytes(bytes: number): number {
  return Math.max(0, Math.floor((bytes - EXTENT_LIST_RECS_OFFSET) / EXTENT_REC_SIZE));
}

/** ocfs2_extent_recs_per_eb */
export function extentRecsPerExtentBlock(blockSizeBytes: number): number {
  return extentRecsInBytes(blockSizeBytes - EXTENT_BLOCK_LIST_OFFSET);
}

export function emptyExtentRec(): ExtentRec {
  return { e_cpos: 0, e_int_clusters: 0, e_leaf_clusters: 0, e_reserved1: 0, e_flags: 0, e_blkno: 0 };
}

/**
 * An inode's extent list whose l_recs have not been read since decoding,
 * with the raw bytes of its records. An inode's list is decoded whenever a
 * transaction edits the inode, mostly to change times or counts (a directory
 * taking a new name): its l_count records (243 in a 4 KiB block) are then
 * neither read nor changed, and are copied back as bytes instead of being
 * turned into objects and encoded again. Reading l_recs decodes them, after
 * which it is a plain array of l_count records (zero ones past the raw
 * bytes); assigning it replaces them. Only the records in use are kept when
 * the unused ones are all zero (the usual case: copying 243 records to carry
 * one or two was most of decoding a file's inode); the rest then encode as
 * zeros.
 *
 * A class, so that every such list shares one hidden class and its accessor
 * lives on the prototype. Defined per object (Object.defineProperty, with the
 * raw bytes in a WeakMap), the accessor gave the first few dozen lists a
 * hidden class each and every later one a dictionary of its own (V8 gives up
 * on fast properties for such objects); decoding a directory's inode took
 * 5.5-6.5 us, now 2.3-2.8 (microbenchmark, 3 runs each), once per create or
 * unlink. l_recs is therefore not an own property: spreading a list
 * (`{...list}`) would lose it; nothing does.
 */
class LazyExtentList implements ExtentList {
  private recs: ExtentRec[] | undefined;

  constructor(
    public l_tree_depth: number, public l_count: number, public l_next_free_rec: number, public l_reserved1: number,
    public l_reserved2: Buffer,
    /** The kept records' bytes while l_recs has been neither read nor replaced. */
    public raw: Buffer | undefined,
    private readonly what: string,
  ) {}

  get l_recs(): ExtentRec[] {
    if (this.recs === undefined) {
      const raw = this.raw!;
      const count = raw.length / EXTENT_REC_SIZE;
      const recs = decodeRecords(EXTENT_REC, raw, 0, EXTENT_REC_SIZE, count, this.what, 'l_recs');
      for (let i = count; i < this.l_count; i++) recs.push(emptyExtentRec());
      this.l_recs = recs;
    }
    return this.recs!;
  }

  set l_recs(recs: ExtentRec[]) {
    this.recs = recs;
    this.raw = undefined;
  }
}

function checkRecordsDecode(buf: Buffer, base: number, count: number, what: string): void {
  // The only field of a record that can fail to decode is e_blkno (a u64 past 2^53): check them all now, as an
  // eager decode would, so a corrupt list still fails where it is read.
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(base + i * EXTENT_REC_SIZE + 0x0c) > 0x1fffff) {
      decodeRecords(EXTENT_REC, buf, base, EXTENT_REC_SIZE, count, what, 'l_recs');
    }
  }
}

/**
 * Decodes a list at `base` where at most `maxRecs` records fit. Checks the
 * counts so that nothing past the space is read: l_count > maxRecs and
 * l_next_free_rec > l_count are FormatErrors naming `what` and the field.
 * `lazy`: l_recs is decoded when first used (for lists that are often only
 * carried along: an inode's).
 */
export function decodeExtentList(buf: Buffer, base: number, maxRecs: number, what: string, lazy = false): ExtentList {
  const hdr = decodeFields(EXTENT_LIST, buf, base, what);
  if (hdr.l_count > maxRecs) {
    throw new FormatError(`${what}: l_count ${hdr.l_count} > ${maxRecs} records that fit`);
  }
  if (hdr.l_next_free_rec > hdr.l_count) {
    throw new FormatError(`${what}: l_next_free_rec ${hdr.l_next_free_rec} > l_count ${hdr.l_count}`);
  }
  const recsBase = base + EXTENT_LIST_RECS_OFFSET;
  if (lazy) {
    const keep = recordsToKeep(buf, recsBase, EXTENT_REC_SIZE, hdr.l_next_free_rec, hdr.l_count);
    checkRecordsDecode(buf, recsBase, keep, what);
    return new LazyExtentList(hdr.l_tree_depth, hdr.l_count, hdr.l_next_free_rec, hdr.l_reserved1, hdr.l_reserved2,
      Buffer.from(buf.subarray(recsBase, recsBase + keep * EXTENT_REC_SIZE)), what);
  }
  const l_recs = decodeRecords(EXTENT_REC, buf, recsBase, EXTENT_REC_SIZE, hdr.l_count, what, 'l_recs');
  return {
    l_tree_depth: hdr.l_tree_depth, l_count: hdr.l_count, l_next_free_rec: hdr.l_next_free_rec, l_reserved1: hdr.l_reserved1,
    l_reserved2: hdr.l_reserved2, l_recs,
  };
}

/**
 * Writes the header and l_count records (records missing from l_recs are
 * zeroed). Returns bytes written. `zeroed`: the area is all zeros already.
 */
export function encodeExtentList(list: ExtentList, buf: Buffer, base: number, what = 'extent list', zeroed = false): number {
  const raw = list instanceof LazyExtentList ? list.raw : undefined;
  if (raw && raw.length <= list.l_count * EXTENT_REC_SIZE && list.l_next_free_rec <= list.l_count) {
    // l_recs untouched since decoding: the records are their own bytes (decode then encode of a record, in either
    // view, gives back the same 16 bytes), and any not kept were zeros.
    encodeFields(EXTENT_LIST, list, buf, base, what);
    const recsBase = base + EXTENT_LIST_RECS_OFFSET;
    raw.copy(buf, recsBase);
    if (!zeroed) buf.fill(0, recsBase + raw.length, recsBase + list.l_count * EXTENT_REC_SIZE);
    return EXTENT_LIST_RECS_OFFSET + list.l_count * EXTENT_REC_SIZE;
  }
  if (list.l_next_free_rec > list.l_count || list.l_recs.length > list.l_count) {
    throw new RangeError(`${what}: l_next_free_rec ${list.l_next_free_rec} / ${list.l_recs.length} recs > l_count ${list.l_count}`);
  }
  encodeFields(EXTENT_LIST, list, buf, base, what);
  const view = list.l_tree_depth > 0 ? EXTENT_REC_INTERIOR : EXTENT_REC_LEAF;
  encodeRecords(view, list.l_recs, buf, base + EXTENT_LIST_RECS_OFFSET, EXTENT_REC_SIZE, list.l_count, what, 'l_recs', zeroed);
  return EXTENT_LIST_RECS_OFFSET + list.l_count * EXTENT_REC_SIZE;
}

/** An empty list with room for `count` records. */
export function emptyExtentList(count: number, treeDepth = 0): ExtentList {
  return {
    l_tree_depth: treeDepth, l_count: count, l_next_free_rec: 0, l_reserved1: 0, l_reserved2: Buffer.alloc(8),
    l_recs: Array.from({ length: count }, emptyExtentRec),
  };
}

export interface ExtentBlockCheckOptions {
  /** Block number the block was read from: h_blkno must match. */
  expectedBlkno?: number;
  /** The volume's s_fs_generation (i_fs_generation of the superblock): h_fs_generation must match. */
  fsGeneration?: number;
}

/** Decodes and validates an extent block (ocfs2_validate_extent_block minus the ECC check). */
export function decodeExtentBlock(block: Buffer, opts: ExtentBlockCheckOptions | number = {}): ExtentBlock {
  const o = typeof opts === 'number' ? { expectedBlkno: opts } : opts;
  const hdr = decodeExtentBlockHeader(block, o);
  const where = o.expectedBlkno !== undefined ? `extent block ${o.expectedBlkno}` : 'extent block';
  const h_list = decodeExtentList(block, EXTENT_BLOCK_LIST_OFFSET, extentRecsPerExtentBlock(block.length), `${where}: h_list`);
  return { ...hdr, h_list };
}

// ---- records as plain extents, for code that rewrites whole lists (fs/extentTree.ts) ----

/** A record as the tree code handles it: clusters by the list's depth, flags 0 in interior lists. */
export interface PlainExtent {
  cpos: number;
  clusters: number;
  blkno: number;
  flags: number;
}

/** An extent block without its list's records (read with readListExtents). */
export interface ExtentBlockHeader extends Decoded<typeof EXTENT_BLOCK> {
  h_list: Decoded<typeof EXTENT_LIST>;
}

/**
 * Validates an extent block as decodeExtentBlock does (signature, h_blkno, generation, the list's counts) but
 * decodes only the headers. A change in the middle of a tree rewrites every leaf to its right; turning each
 * leaf's 252 records into record objects and back was most of such a write's time.
 */
export function decodeExtentBlockHeader(block: Buffer, opts: ExtentBlockCheckOptions = {}): ExtentBlockHeader {
  const where = opts.expectedBlkno !== undefined ? `extent block ${opts.expectedBlkno}` : 'extent block';
  checkSignature(block, 0, OCFS2_EXTENT_BLOCK_SIGNATURE, `${where}: h_signature`);
  const hdr = decodeFields(EXTENT_BLOCK, block, 0, where);
  if (opts.expectedBlkno !== undefined && hdr.h_blkno !== opts.expectedBlkno) {
    throw new FormatError(`${where}: h_blkno ${hdr.h_blkno} does not match the block it was read from`);
  }
  if (opts.fsGeneration !== undefined && hdr.h_fs_generation !== opts.fsGeneration) {
    throw new FormatError(`${where}: h_fs_generation 0x${hdr.h_fs_generation.toString(16)} != volume 0x${opts.fsGeneration.toString(16)}`);
  }
  const list = decodeFields(EXTENT_LIST, block, EXTENT_BLOCK_LIST_OFFSET, `${where}: h_list`);
  const fit = extentRecsPerExtentBlock(block.length);
  if (list.l_count > fit) throw new FormatError(`${where}: h_list: l_count ${list.l_count} > ${fit} records that fit`);
  if (list.l_next_free_rec > list.l_count) {
    throw new FormatError(`${where}: h_list: l_next_free_rec ${list.l_next_free_rec} > l_count ${list.l_count}`);
  }
  return { ...hdr, h_list: list };
}

// Byte-at-a-time reads and writes: the list's extent is checked against the buffer once, so Node's per-call
// checks (readUInt32LE's offset validation) are not needed, and they were half of reading a leaf.
const u16 = (b: Buffer, at: number): number => b[at] | b[at + 1] << 8;
const u32 = (b: Buffer, at: number): number => (b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24) >>> 0;
function put32(b: Buffer, at: number, v: number): void {
  b[at] = v;
  b[at + 1] = v >>> 8;
  b[at + 2] = v >>> 16;
  b[at + 3] = v >>> 24;
}

/**
 * `n` records at byte `at` of a list of `depth` (its record `first` onward, for messages), read straight from the
 * bytes: the caller has checked that they lie inside `buf`.
 */
export function readExtentsAt(buf: Buffer, at: number, n: number, depth: number, what: string, first = 0): PlainExtent[] {
  const out = new Array<PlainExtent>(n);
  for (let i = 0; i < n; i++, at += EXTENT_REC_SIZE) {
    const hi = u32(buf, at + 12);
    if (hi > 0x1fffff) throw new FormatError(`${what}.l_recs[${first + i}].e_blkno does not fit a safe integer`);
    out[i] = {
      cpos: u32(buf, at),
      clusters: depth > 0 ? u32(buf, at + 4) : u16(buf, at + 4),
      blkno: hi * 0x100000000 + u32(buf, at + 8),
      flags: depth > 0 ? 0 : buf[at + 7],
    };
  }
  return out;
}

/** Writes `recs` as records of a list of `depth` from byte `at`; the caller has checked that they fit `buf`. */
export function writeExtentsAt(buf: Buffer, at: number, recs: readonly PlainExtent[], depth: number, what: string): void {
  for (const r of recs) {
    put32(buf, at, r.cpos);
    if (depth > 0) {
      put32(buf, at + 4, r.clusters);
    } else {
      if (r.clusters > 0xffff) throw new RangeError(`${what}: leaf extent of ${r.clusters} clusters exceeds e_leaf_clusters`);
      buf[at + 4] = r.clusters;
      buf[at + 5] = r.clusters >>> 8;
      buf[at + 6] = 0;
      buf[at + 7] = r.flags;
    }
    put32(buf, at + 8, r.blkno % 0x100000000);
    put32(buf, at + 12, Math.floor(r.blkno / 0x100000000));
    at += EXTENT_REC_SIZE;
  }
}

/** The used records of the list at `base` (l_next_free_rec of them), read straight from the bytes. */
export function readListExtents(buf: Buffer, base: number, what: string): PlainExtent[] {
  const depth = u16(buf, base);
  const n = u16(buf, base + 4);
  if (base + EXTENT_LIST_RECS_OFFSET + n * EXTENT_REC_SIZE > buf.length) throw new FormatError(`${what}: ${n} records run past the block`);
  return readExtentsAt(buf, base + EXTENT_LIST_RECS_OFFSET, n, depth, what);
}

/**
 * Writes a list's header (with `depth` and the records' count) and records at `base`, zeroing the records
 * past them up to l_count: what encodeExtentList writes for the same records.
 */
export function writeListExtents(buf: Buffer, base: number, list: Decoded<typeof EXTENT_LIST>, depth: number,
  recs: readonly PlainExtent[], what: string): void {
  if (recs.length > list.l_count) throw new RangeError(`${what}: ${recs.length} records > l_count ${list.l_count}`);
  const end = base + EXTENT_LIST_RECS_OFFSET + list.l_count * EXTENT_REC_SIZE;
  if (end > buf.length) throw new RangeError(`${what}: l_count ${list.l_count} runs past the buffer`);
  encodeFields(EXTENT_LIST, { ...list, l_tree_depth: depth, l_next_free_rec: recs.length }, buf, base, what);
  writeExtentsAt(buf, base + EXTENT_LIST_RECS_OFFSET, recs, depth, what);
  buf.fill(0, base + EXTENT_LIST_RECS_OFFSET + recs.length * EXTENT_REC_SIZE, end);
}

/** What walking and rotating a tree's leaves needs of an extent block's headers. */
export interface ExtentBlockPeek {
  depth: number;
  count: number;
  /** l_next_free_rec */
  used: number;
  nextLeaf: number;
}

/**
 * An extent block's list counts and next leaf, checked as decodeExtentBlockHeader checks the block, but read
 * without building the header (its byte fields are Buffers: a rotation reads the headers of every leaf to the
 * right of a change, and building them was a tenth of a write into a preallocated file).
 */
export function peekExtentBlock(block: Buffer, opts: ExtentBlockCheckOptions): ExtentBlockPeek {
  const sig = OCFS2_EXTENT_BLOCK_SIGNATURE;
  let ok = block.length >= EXTENT_BLOCK_LIST_OFFSET + EXTENT_LIST_RECS_OFFSET;
  for (let i = 0; ok && i < sig.length; i++) ok = block[i] === sig.charCodeAt(i);
  const hi = (at: number): number => u32(block, at + 4);
  const u64 = (at: number): number => hi(at) * 0x100000000 + u32(block, at);
  const list = EXTENT_BLOCK_LIST_OFFSET;
  const peek = ok
    ? { depth: u16(block, list), count: u16(block, list + 2), used: u16(block, list + 4), nextLeaf: u64(EXTENT_BLOCK.h_next_leaf_blk[0]) }
    : { depth: 0, count: 0, used: 0, nextLeaf: 0 };
  ok &&= (opts.expectedBlkno === undefined || u64(EXTENT_BLOCK.h_blkno[0]) === opts.expectedBlkno)
    && (opts.fsGeneration === undefined || u32(block, EXTENT_BLOCK.h_fs_generation[0]) === opts.fsGeneration)
    && peek.count <= extentRecsPerExtentBlock(block.length) && peek.used <= peek.count
    && hi(EXTENT_BLOCK.h_next_leaf_blk[0]) <= 0x1fffff && hi(EXTENT_BLOCK.h_suballoc_loc[0]) <= 0x1fffff;
  if (!ok) {
    // The full decoder names what is wrong.
    decodeExtentBlockHeader(block, opts);
    throw new FormatError(`extent block ${opts.expectedBlkno ?? ''}: bad header`);
  }
  return peek;
}

/** Writes an extent block whose list holds `recs` at `depth`: the block encodeExtentBlock writes for the same. */
export function encodeExtentBlockWith(eb: ExtentBlockHeader, depth: number, recs: readonly PlainExtent[], block: Buffer): void {
  const what = `extent block ${eb.h_blkno}`;
  if (eb.h_list.l_count > extentRecsPerExtentBlock(block.length)) {
    throw new RangeError(`${what}: l_count ${eb.h_list.l_count} does not fit a ${block.length}-byte block`);
  }
  block.fill(0, 0, EXTENT_BLOCK_LIST_OFFSET);
  encodeFields(EXTENT_BLOCK, eb, block, 0, what);
  writeSignature(block, 0, OCFS2_EXTENT_BLOCK_SIGNATURE);
  const end = EXTENT_BLOCK_LIST_OFFSET + EXTENT_LIST_RECS_OFFSET + eb.h_list.l_count * EXTENT_REC_SIZE;
  writeListExtents(block, EXTENT_BLOCK_LIST_OFFSET, eb.h_list, depth, recs, `${what}: h_list`);
  block.fill(0, end);
}

/** Writes the whole block (its length is the block size); the signature is always written. */
export function encodeExtentBlock(eb: ExtentBlock, block: Buffer): void {
  block.fill(0);
  encodeFields(EXTENT_BLOCK, eb, block, 0, 'extent block');
  writeSignature(block, 0, OCFS2_EXTENT_BLOCK_SIGNATURE);
  if (eb.h_list.l_count > extentRecsPerExtentBlock(block.length)) {
    throw new RangeError(`extent block ${eb.h_blkno}: l_count ${eb.h_list.l_count} does not fit a ${block.length}-byte block`);
  }
  encodeExtentList(eb.h_list, block, EXTENT_BLOCK_LIST_OFFSET, `extent block ${eb.h_blkno}: h_list`);
}

/** A fresh extent block header for `blkno` with an empty list sized for the block. */
export function emptyExtentBlock(blockSizeBytes: number, blkno = 0): ExtentBlock {
  return {
    h_signature: signatureBytes(OCFS2_EXTENT_BLOCK_SIGNATURE), h_check: Buffer.alloc(8), h_suballoc_slot: 0,
    h_suballoc_bit: 0, h_fs_generation: 0, h_blkno: blkno, h_suballoc_loc: 0, h_next_leaf_blk: 0,
    h_list: emptyExtentList(extentRecsPerExtentBlock(blockSizeBytes)),
  };
}
