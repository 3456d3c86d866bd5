/**
 * Chain allocators: the chain list in an allocator inode's id2
 * (struct ocfs2_chain_list / ocfs2_chain_rec) and the group descriptor
 * blocks the chains link (struct ocfs2_group_desc "GROUP01"), with the bitmap
 * and, for discontiguous block groups, bg_list.
 */
import { OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, OCFS2_GROUP_DESC_SIGNATURE } from './constants';
import { decodeExtentList, encodeExtentList, ExtentList, extentRecsInBytes } from './extent';
import {
  checkSignature, decodeFields, decodeRecords, Decoded, encodeFields, encodeRecords, FormatError, isZero, recordsToKeep, signatureBytes,
  writeSignature,
} from './layout';

/** struct ocfs2_chain_rec */
export const CHAIN_REC = {
  c_free: [0x00, 'u32'],
  c_total: [0x04, 'u32'],
  c_blkno: [0x08, 'u64'],
} as const;
export const CHAIN_REC_SIZE = 0x10;
export type ChainRec = Decoded<typeof CHAIN_REC>;

/** struct ocfs2_chain_list; cl_recs at 0x10. */
export const CHAIN_LIST = {
  cl_cpg: [0x00, 'u16'],
  cl_bpc: [0x02, 'u16'],
  cl_count: [0x04, 'u16'],
  cl_next_free_rec: [0x06, 'u16'],
  cl_reserved1: [0x08, 'bytes', 8],
} as const;
export const CHAIN_LIST_RECS_OFFSET = 0x10;

export interface ChainList extends Decoded<typeof CHAIN_LIST> {
  /**
   * The records: those in use ([0, cl_next_free_rec)) always; the unused ones
   * up to cl_count only when their bytes are not all zero. An allocator
   * inode is decoded for every bit it hands out or takes back, and its list
   * has room for 243 records (4 KiB blocks) of which a volume uses a few:
   * turning the zeroed rest into objects was a fifth of what creating a file
   * allocated. A missing record reads as zero and is written as zeros.
   */
  cl_recs: ChainRec[];
}

/** struct ocfs2_group_desc header; bg_bitmap at 0x40, bg_list at 0x140. */
export const GROUP_DESC = {
  bg_signature: [0x00, 'bytes', 8],
  bg_size: [0x08, 'u16'],
  bg_bits: [0x0a, 'u16'],
  bg_free_bits_count: [0x0c, 'u16'],
  bg_chain: [0x0e, 'u16'],
  bg_generation: [0x10, 'u32'],
  bg_reserved1: [0x14, 'u32'],
  bg_next_group: [0x18, 'u64'],
  bg_parent_dinode: [0x20, 'u64'],
  bg_blkno: [0x28, 'u64'],
  bg_check: [0x30, 'bytes', 8],
  bg_reserved2: [0x38, 'bytes', 8],
} as const;
export const GROUP_DESC_BITMAP_OFFSET = 0x40;
export const GROUP_DESC_LIST_OFFSET = 0x140;
export const GROUP_DESC_CHECK_OFFSET = GROUP_DESC.bg_check[0];
export const OCFS2_MAX_BG_BITMAP_SIZE = 256;

export interface GroupDesc extends Decoded<typeof GROUP_DESC> {
  /** bg_size bytes; bit i set = bit i of the group in use. */
  bg_bitmap: Buffer;
  /**
   * The extent list at 0x140, present when the bitmap ends there
   * (bg_size == OCFS2_MAX_BG_BITMAP_SIZE, suballocator groups of discontig-bg
   * volumes). The group is discontiguous when its l_next_free_rec > 0.
   */
  bg_list?: ExtentList;
  /** Bytes after the bitmap / list up to the block end, kept only when not all zero (so encode(decode(b)) == b). */
  tail?: Buffer;
}

/** ocfs2_chain_recs_per_inode for a chain list starting `listOffsetBytes` into a block. */
export function chainRecsInBytes(bytes: number): number {
  return Math.max(0, Math.floor((bytes - CHAIN_LIST_RECS_OFFSET) / CHAIN_REC_SIZE));
}

/** Decodes a chain list at `base` with room for `maxRecs` records; counts are checked. */
export function decodeChainList(buf: Buffer, base: number, maxRecs: number, what: string): ChainList {
  const hdr = decodeFields(CHAIN_LIST, buf, base, what);
  if (hdr.cl_count > maxRecs) throw new FormatError(`${what}: cl_count ${hdr.cl_count} > ${maxRecs} records that fit`);
  if (hdr.cl_next_free_rec > hdr.cl_count) {
    throw new FormatError(`${what}: cl_next_free_rec ${hdr.cl_next_free_rec} > cl_count ${hdr.cl_count}`);
  }
  const recsAt = base + CHAIN_LIST_RECS_OFFSET;
  const count = recordsToKeep(buf, recsAt, CHAIN_REC_SIZE, hdr.cl_next_free_rec, hdr.cl_count);
  const cl_recs = decodeRecords(CHAIN_REC, buf, recsAt, CHAIN_REC_SIZE, count, what, 'cl_recs');
  return {
    cl_cpg: hdr.cl_cpg, cl_bpc: hdr.cl_bpc, cl_count: hdr.cl_count, cl_next_free_rec: hdr.cl_next_free_rec,
    cl_reserved1: hdr.cl_reserved1, cl_recs,
  };
}

/** Writes header + cl_count records (missing ones zeroed); returns bytes written. `zeroed`: the area is all zeros already. */
export function encodeChainList(cl: ChainList, buf: Buffer, base: number, what = 'chain list', zeroed = false): number {
  if (cl.cl_next_free_rec > cl.cl_count || cl.cl_recs.length > cl.cl_count) {
    throw new RangeError(`${what}: cl_next_free_rec ${cl.cl_next_free_rec} / ${cl.cl_recs.length} recs > cl_count ${cl.cl_count}`);
  }
  encodeFields(CHAIN_LIST, cl, buf, base, what);
  encodeRecords(CHAIN_REC, cl.cl_recs, buf, base + CHAIN_LIST_RECS_OFFSET, CHAIN_REC_SIZE, cl.cl_count, what, 'cl_recs', zeroed);
  return CHAIN_LIST_RECS_OFFSET + cl.cl_count * CHAIN_REC_SIZE;
}

/** ocfs2_extent_recs_per_gd */
export function extentRecsPerGroupDesc(blockSizeBytes: number): number {
  return extentRecsInBytes(blockSizeBytes - GROUP_DESC_LIST_OFFSET);
}

/** ocfs2_group_bitmap_size: bytes of bitmap a new group gets. */
export function groupBitmapSize(blockSizeBytes: number, suballocator: boolean, featureIncompat: number): number {
  if (suballocator && (featureIncompat & OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG) !== 0) return OCFS2_MAX_BG_BITMAP_SIZE;
  return blockSizeBytes - GROUP_DESC_BITMAP_OFFSET;
}

/** ocfs2_gd_is_discontig */
export function groupIsDiscontig(gd: GroupDesc): boolean {
  return gd.bg_list !== undefined && gd.bg_list.l_next_free_rec > 0;
}

export interface GroupDescCheckOptions {
  /** The block it was read from: bg_blkno must match. */
  expectedBlkno?: number;
  /** The volume's fs generation: bg_generation must match. */
  fsGeneration?: number;
  /** The allocator inode the chain came from: bg_parent_dinode must match. */
  parentBlkno?: number;
}

/** Decodes and validates a group descriptor (ocfs2_validate_gd_self, plus the parent when given). */
export function decodeGroupDesc(block: Buffer, opts: GroupDescCheckOptions | number = {}): GroupDesc {
  const o = typeof opts === 'number' ? { expectedBlkno: opts } : opts;
  const where = o.expectedBlkno !== undefined ? `group desc ${o.expectedBlkno}` : 'group desc';
  checkSignature(block, 0, OCFS2_GROUP_DESC_SIGNATURE, `${where}: bg_signature`);
  const hdr = decodeFields(GROUP_DESC, block, 0, where);
  if (o.expectedBlkno !== undefined && hdr.bg_blkno !== o.expectedBlkno) {
    throw new FormatError(`${where}: bg_blkno ${hdr.bg_blkno} does not match the block it was read from`);
  }
  if (o.fsGeneration !== undefined && hdr.bg_generation !== o.fsGeneration) {
    throw new FormatError(`${where}: bg_generation 0x${hdr.bg_generation.toString(16)} != volume 0x${o.fsGeneration.toString(16)}`);
  }
  if (o.parentBlkno !== undefined && hdr.bg_parent_dinode !== o.parentBlkno) {
    throw new FormatError(`${where}: bg_parent_dinode ${hdr.bg_parent_dinode} != allocator inode ${o.parentBlkno}`);
  }
  const room = block.length - GROUP_DESC_BITMAP_OFFSET;
  if (hdr.bg_size > room) throw new FormatError(`${where}: bg_size ${hdr.bg_size} > ${room} bytes in the block`);
  if (hdr.bg_bits > hdr.bg_size * 8) throw new FormatError(`${where}: bg_bits ${hdr.bg_bits} > bg_size ${hdr.bg_size} * 8`);
  if (hdr.bg_free_bits_count > hdr.bg_bits) {
    throw new FormatError(`${where}: bg_free_bits_count ${hdr.bg_free_bits_count} > bg_bits ${hdr.bg_bits}`);
  }
  const bitmapEnd = GROUP_DESC_BITMAP_OFFSET + hdr.bg_size;
  const bg_bitmap = Buffer.from(block.subarray(GROUP_DESC_BITMAP_OFFSET, bitmapEnd));
  const gd: GroupDesc = { ...hdr, bg_bitmap };
  let end = bitmapEnd;
  if (bitmapEnd === GROUP_DESC_LIST_OFFSET && extentRecsPerGroupDesc(block.length) > 0) {
    gd.bg_list = decodeExtentList(block, GROUP_DESC_LIST_OFFSET, extentRecsPerGroupDesc(block.length), `${where}: bg_list`);
    if (gd.bg_list.l_next_free_rec > 0 && gd.bg_list.l_tree_depth !== 0) {
      throw new FormatError(`${where}: bg_list.l_tree_depth ${gd.bg_list.l_tree_depth} (a discontiguous group's list is flat)`);
    }
    end = GROUP_DESC_LIST_OFFSET + 0x10 + gd.bg_list.l_count * 0x10;
  }
  if (!isZero(block, end)) gd.tail = Buffer.from(block.subarray(end));
  return gd;
}

/** Writes the whole block (length = block size). */
export function encodeGroupDesc(gd: GroupDesc, block: Buffer): void {
  const what = `group desc ${gd.bg_blkno}`;
  if (gd.bg_bitmap.length !== gd.bg_size) throw new RangeError(`${what}: bg_bitmap is ${gd.bg_bitmap.length} bytes, bg_size ${gd.bg_size}`);
  if (GROUP_DESC_BITMAP_OFFSET + gd.bg_size > block.length) throw new RangeError(`${what}: bg_size ${gd.bg_size} does not fit the block`);
  block.fill(0);
  encodeFields(GROUP_DESC, gd, block, 0, what);
  writeSignature(block, 0, OCFS2_GROUP_DESC_SIGNATURE);
  gd.bg_bitmap.copy(block, GROUP_DESC_BITMAP_OFFSET);
  let end = GROUP_DESC_BITMAP_OFFSET + gd.bg_size;
  if (gd.bg_list) {
    if (end !== GROUP_DESC_LIST_OFFSET) throw new RangeError(`${what}: bg_list needs bg_size ${OCFS2_MAX_BG_BITMAP_SIZE}`);
    if (gd.bg_list.l_count > extentRecsPerGroupDesc(block.length)) throw new RangeError(`${what}: bg_list.l_count too big for the block`);
    end += encodeExtentList(gd.bg_list, block, GROUP_DESC_LIST_OFFSET, `${what}: bg_list`);
  }
  if (gd.tail) {
    if (end + gd.tail.length > block.length) throw new RangeError(`${what}: tail does not fit`);
    gd.tail.copy(block, end);
  }
}

/** A fresh descriptor with an all-free bitmap of `bitmapBytes` (and an empty bg_list when it ends at 0x140). */
export function emptyGroupDesc(blockSizeBytes: number, bitmapBytes: number): GroupDesc {
  const gd: GroupDesc = {
    bg_signature: signatureBytes(OCFS2_GROUP_DESC_SIGNATURE), bg_size: bitmapBytes, bg_bits: 0, bg_free_bits_count: 0,
    bg_chain: 0, bg_generation: 0, bg_reserved1: 0, bg_next_group: 0, bg_parent_dinode: 0, bg_blkno: 0,
    bg_check: Buffer.alloc(8), bg_reserved2: Buffer.alloc(8), bg_bitmap: Buffer.alloc(bitmapBytes),
  };
  const recs = extentRecsPerGroupDesc(blockSizeBytes);
  if (GROUP_DESC_BITMAP_OFFSET + bitmapBytes === GROUP_DESC_LIST_OFFSET && recs > 0) {
    gd.bg_list = {
      l_tree_depth: 0, l_count: recs, l_next_free_rec: 0, l_reserved1: 0, l_reserved2: Buffer.alloc(8),
      l_recs: Array.from({ length: recs }, () => ({ e_cpos: 0, e_int_clusters: 0, e_leaf_clusters: 0, e_reserved1: 0, e_flags: 0, e_blkno: 0 })),
    };
  }
  return gd;
}

/** Bit `bit` of a group bitmap (ocfs2_test_bit: little-endian bit order within bytes). */
export function testBit(bitmap: Buffer, bit: number): boolean {
  return (bitmap[bit >>> 3] & (1 << (bit & 7))) !== 0;
}

export function setBit(bitmap: Buffer, bit: number): void {
  bitmap[bit >>> 3] |= 1 << (bit & 7);
}

export function clearBit(bitmap: Buffer, bit: number): void {
  bitmap[bit >>> 3] &= ~(1 << (bit & 7));
}

/** Sets bits [from, to): whole bytes at once. */
export function setBits(bitmap: Buffer, from: number, to: number): void {
  let i = from;
  while (i < to && (i & 7) !== 0) setBit(bitmap, i++);
  const wholeEnd = i + ((to - i) & ~7);
  if (wholeEnd > i) bitmap.fill(0xff, i >>> 3, wholeEnd >>> 3);
  for (i = Math.max(i, wholeEnd); i < to; i++) setBit(bitmap, i);
}
