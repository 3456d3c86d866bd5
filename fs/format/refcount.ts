/**
 * Refcount trees (reflink): struct ocfs2_refcount_block "REFCNT1" holds
 * either refcount records (struct ocfs2_refcount_list / ocfs2_refcount_rec:
 * physical cluster range + count) or, with OCFS2_REFCOUNT_TREE_FL, an extent
 * list of leaf refcount blocks (OCFS2_REFCOUNT_LEAF_FL).
 */
import { OCFS2_REFCOUNT_BLOCK_SIGNATURE } from './constants';
import { decodeExtentList, encodeExtentList, ExtentList, extentRecsInBytes } from './extent';
import {
  checkSignature, decodeFields, Decoded, encodeFields, FormatError, isZero, writeSignature,
} from './layout';

export const OCFS2_REFCOUNT_LEAF_FL = 0x00000001;
export const OCFS2_REFCOUNT_TREE_FL = 0x00000002;
export const OCFS2_32BIT_POS_MASK = 0xffffffff;

/** struct ocfs2_refcount_rec */
export const REFCOUNT_REC = {
  r_cpos: [0x00, 'u64'],
  r_clusters: [0x08, 'u32'],
  r_refcount: [0x0c, 'u32'],
} as const;
export const REFCOUNT_REC_SIZE = 0x10;
export type RefcountRec = Decoded<typeof REFCOUNT_REC>;

/** struct ocfs2_refcount_list; rl_recs at 0x10. */
export const REFCOUNT_LIST = {
  rl_count: [0x00, 'u16'],
  rl_used: [0x02, 'u16'],
  rl_reserved2: [0x04, 'u32'],
  rl_reserved1: [0x08, 'bytes', 8],
} as const;
export const REFCOUNT_LIST_RECS_OFFSET = 0x10;

export interface RefcountList extends Decoded<typeof REFCOUNT_LIST> {
  /** All rl_count records (used ones are [0, rl_used)). */
  rl_recs: RefcountRec[];
}

/** struct ocfs2_refcount_block header; the rf_records / rf_list union at 0x80. */
export const REFCOUNT_BLOCK = {
  rf_signature: [0x00, 'bytes', 8],
  rf_suballoc_slot: [0x08, 'u16'],
  rf_suballoc_bit: [0x0a, 'u16'],
  rf_fs_generation: [0x0c, 'u32'],
  rf_blkno: [0x10, 'u64'],
  rf_parent: [0x18, 'u64'],
  rf_check: [0x20, 'bytes', 8],
  rf_last_eb_blk: [0x28, 'u64'],
  rf_count: [0x30, 'u32'],
  rf_flags: [0x34, 'u32'],
  rf_clusters: [0x38, 'u32'],
  rf_cpos: [0x3c, 'u32'],
  rf_generation: [0x40, 'u32'],
  rf_reserved0: [0x44, 'u32'],
  rf_suballoc_loc: [0x48, 'u64'],
  rf_reserved1: [0x50, 'bytes', 6 * 8],
} as const;
export const REFCOUNT_BLOCK_UNION_OFFSET = 0x80;
export const REFCOUNT_BLOCK_CHECK_OFFSET = REFCOUNT_BLOCK.rf_check[0];

export interface RefcountBlock extends Decoded<typeof REFCOUNT_BLOCK> {
  /** !(rf_flags & OCFS2_REFCOUNT_TREE_FL) */
  rf_records?: RefcountList;
  /** rf_flags & OCFS2_REFCOUNT_TREE_FL */
  rf_list?: ExtentList;
  tail?: Buffer;
}

/** ocfs2_refcount_recs_per_rb */
export function refcountRecsPerRefcountBlock(blockSizeBytes: number): number {
  return Math.max(0, Math.floor((blockSizeBytes - REFCOUNT_BLOCK_UNION_OFFSET - REFCOUNT_LIST_RECS_OFFSET) / REFCOUNT_REC_SIZE));
}

/** ocfs2_extent_recs_per_rb */
export function extentRecsPerRefcountBlock(blockSizeBytes: number): number {
  return extentRecsInBytes(blockSizeBytes - REFCOUNT_BLOCK_UNION_OFFSET);
}

/** The low 32 bits of a cluster number: what a refcount tree's root list maps to leaves (e_cpos, rf_cpos). */
export function lowCpos(cluster: number): number {
  return cluster % 2 ** 32;
}

/** ocfs2_get_ref_rec_low_cpos */
export function refcountRecLowCpos(rec: RefcountRec): number {
  return lowCpos(rec.r_cpos);
}

export interface RefcountCheckOptions {
  expectedBlkno?: number;
  fsGeneration?: number;
}

/** Decodes and validates a refcount block (ocfs2_validate_refcount_block minus ECC). */
export function decodeRefcountBlock(block: Buffer, opts: RefcountCheckOptions | number = {}): RefcountBlock {
  const o = typeof opts === 'number' ? { expectedBlkno: opts } : opts;
  const where = o.expectedBlkno !== undefined ? `refcount block ${o.expectedBlkno}` : 'refcount block';
  checkSignature(block, 0, OCFS2_REFCOUNT_BLOCK_SIGNATURE, `${where}: rf_signature`);
  const hdr = decodeFields(REFCOUNT_BLOCK, block, 0, where);
  if (o.expectedBlkno !== undefined && hdr.rf_blkno !== o.expectedBlkno) {
    throw new FormatError(`${where}: rf_blkno ${hdr.rf_blkno} does not match the block it was read from`);
  }
  if (o.fsGeneration !== undefined && hdr.rf_fs_generation !== o.fsGeneration) {
    throw new FormatError(`${where}: rf_fs_generation 0x${hdr.rf_fs_generation.toString(16)} != volume 0x${o.fsGeneration.toString(16)}`);
  }
  const rb: RefcountBlock = { ...hdr };
  const base = REFCOUNT_BLOCK_UNION_OFFSET;
  let end: number;
  if (hdr.rf_flags & OCFS2_REFCOUNT_TREE_FL) {
    rb.rf_list = decodeExtentList(block, base, extentRecsPerRefcountBlock(block.length), `${where}: rf_list`);
    end = base + 0x10 + rb.rf_list.l_count * 0x10;
  } else {
    const what = `${where}: rf_records`;
    const list = decodeFields(REFCOUNT_LIST, block, base, what);
    const max = refcountRecsPerRefcountBlock(block.length);
    if (list.rl_count > max) throw new FormatError(`${what}: rl_count ${list.rl_count} > ${max} records that fit`);
    if (list.rl_used > list.rl_count) throw new FormatError(`${what}: rl_used ${list.rl_used} > rl_count ${list.rl_count}`);
    const rl_recs: RefcountRec[] = [];
    for (let i = 0; i < list.rl_count; i++) {
      rl_recs.push(decodeFields(REFCOUNT_REC, block, base + REFCOUNT_LIST_RECS_OFFSET + i * REFCOUNT_REC_SIZE, `${what}.rl_recs[${i}]`));
    }
    rb.rf_records = { ...list, rl_recs };
    end = base + REFCOUNT_LIST_RECS_OFFSET + list.rl_count * REFCOUNT_REC_SIZE;
  }
  if (!isZero(block, end)) rb.tail = Buffer.from(block.subarray(end));
  return rb;
}

export function encodeRefcountBlock(rb: RefcountBlock, block: Buffer): void {
  const where = `refcount block ${rb.rf_blkno}`;
  block.fill(0);
  encodeFields(REFCOUNT_BLOCK, rb, block, 0, where);
  writeSignature(block, 0, OCFS2_REFCOUNT_BLOCK_SIGNATURE);
  const base = REFCOUNT_BLOCK_UNION_OFFSET;
  let end: number;
  if (rb.rf_flags & OCFS2_REFCOUNT_TREE_FL) {
    if (!rb.rf_list) throw new RangeError(`${where}: OCFS2_REFCOUNT_TREE_FL set but rf_list missing`);
    end = base + encodeExtentList(rb.rf_list, block, base, `${where}: rf_list`);
  } else {
    const list = rb.rf_records;
    if (!list) throw new RangeError(`${where}: rf_records missing`);
    if (list.rl_used > list.rl_count || list.rl_recs.length > list.rl_count) throw new RangeError(`${where}: rl_used/rl_recs > rl_count`);
    if (list.rl_count > refcountRecsPerRefcountBlock(block.length)) throw new RangeError(`${where}: rl_count too big for the block`);
    encodeFields(REFCOUNT_LIST, list, block, base, `${where}: rf_records`);
    for (let i = 0; i < list.rl_count; i++) {
      const rec = list.rl_recs[i] ?? { r_cpos: 0, r_clusters: 0, r_refcount: 0 };
      encodeFields(REFCOUNT_REC, rec, block, base + REFCOUNT_LIST_RECS_OFFSET + i * REFCOUNT_REC_SIZE, `${where}: rf_records.rl_recs[${i}]`);
    }
    end = base + REFCOUNT_LIST_RECS_OFFSET + list.rl_count * REFCOUNT_REC_SIZE;
  }
  if (rb.tail) rb.tail.copy(block, end);
}
