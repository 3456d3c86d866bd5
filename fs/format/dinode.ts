/**
 * struct ocfs2_dinode: one inode per block. The header is fixed (0x00..0xC0);
 * id1 (0xB8) is a union read in every view; id2 (0xC0 to the end of the
 * block, minus the inline xattr area) is one of super block, local alloc,
 * chain list, truncate log, inline data, fast symlink or extent list, chosen
 * from i_flags / i_dyn_features / i_mode as the kernel chooses it.
 */
import {
  OCFS2_BITMAP_FL, OCFS2_CHAIN_FL, OCFS2_DEALLOC_FL, OCFS2_INDEXED_DIR_FL, OCFS2_INLINE_DATA_FL,
  OCFS2_DX_LINK_MAX, OCFS2_INLINE_XATTR_FL, OCFS2_INODE_SIGNATURE, OCFS2_JOURNAL_FL, OCFS2_LINK_MAX, OCFS2_LINKS_HI_SHIFT,
  OCFS2_LOCAL_ALLOC_FL,
  OCFS2_SUPER_BLOCK_BLKNO, OCFS2_SUPER_BLOCK_FL, OCFS2_SUPER_BLOCK_SIGNATURE, OCFS2_VALID_FL, S_IFLNK, S_IFMT,
} from './constants';
import { decodeExtentList, encodeExtentList, ExtentList, emptyExtentList, extentRecsInBytes } from './extent';
import { chainRecsInBytes, ChainList, decodeChainList, encodeChainList } from './group';
import {
  decodeFields, Decoded, encodeFields, FormatError, isZero, omitFields, pickFields, signatureBytes, writeSignature,
} from './layout';
import { decodeLocalAlloc, encodeLocalAlloc, LocalAlloc, LOCAL_ALLOC_BITMAP_OFFSET } from './localAlloc';
import { decodeSuperBlockFields, encodeSuperBlockFields, SuperBlock, SUPER_BLOCK_SIZE } from './superblock';
import { decodeTruncateLog, encodeTruncateLog, TruncateLog, truncateRecsInBytes, TRUNCATE_LOG_RECS_OFFSET } from './truncateLog';

/** The fixed part of struct ocfs2_dinode. id1's views overlap at 0xB8. */
export const DINODE = {
  i_signature: [0x00, 'bytes', 8],
  i_generation: [0x08, 'u32'],
  i_suballoc_slot: [0x0c, 'u16'],
  i_suballoc_bit: [0x0e, 'u16'],
  i_links_count_hi: [0x10, 'u16'],
  i_xattr_inline_size: [0x12, 'u16'],
  i_clusters: [0x14, 'u32'],
  i_uid: [0x18, 'u32'],
  i_gid: [0x1c, 'u32'],
  i_size: [0x20, 'u64'],
  i_mode: [0x28, 'u16'],
  i_links_count: [0x2a, 'u16'],
  i_flags: [0x2c, 'u32'],
  // Times are seconds since the epoch, signed in the kernel's time64_t.
  i_atime: [0x30, 's64'],
  i_ctime: [0x38, 's64'],
  i_mtime: [0x40, 's64'],
  i_dtime: [0x48, 's64'],
  i_blkno: [0x50, 'u64'],
  i_last_eb_blk: [0x58, 'u64'],
  i_fs_generation: [0x60, 'u32'],
  i_atime_nsec: [0x64, 'u32'],
  i_ctime_nsec: [0x68, 'u32'],
  i_mtime_nsec: [0x6c, 'u32'],
  i_attr: [0x70, 'u32'],
  i_orphaned_slot: [0x74, 'u16'],
  i_dyn_features: [0x76, 'u16'],
  i_xattr_loc: [0x78, 'u64'],
  i_check: [0x80, 'bytes', 8],
  i_dx_root: [0x88, 'u64'],
  i_refcount_loc: [0x90, 'u64'],
  i_suballoc_loc: [0x98, 'u64'],
  i_dio_orphaned_slot: [0xa0, 'u16'],
  i_reserved1: [0xa2, 'u16', 3],
  i_reserved2: [0xa8, 'bytes', 16],
  // id1 union
  i_rdev: [0xb8, 'u64'],
  i_used: [0xb8, 'u32'],
  i_total: [0xbc, 'u32'],
  ij_flags: [0xb8, 'u32'],
  ij_recovery_generation: [0xbc, 'u32'],
} as const;

export const DINODE_CHECK_OFFSET = DINODE.i_check[0];
/** offsetof(struct ocfs2_dinode, id2) */
export const dinodeId2Offset = 0xc0;

const ID1_FIELDS = ['i_rdev', 'i_used', 'i_total', 'ij_flags', 'ij_recovery_generation'] as const;
const DINODE_FIXED = omitFields(DINODE, ID1_FIELDS);
const ID1_DEV = pickFields(DINODE, ['i_rdev']);
const ID1_BITMAP = pickFields(DINODE, ['i_used', 'i_total']);
const ID1_JOURNAL = pickFields(DINODE, ['ij_flags', 'ij_recovery_generation']);
/**
 * What decodeDinode reads in one pass: the fixed part with the bitmap and
 * journal views of id1 (plain u32s, which cannot fail to decode). i_rdev, a
 * u64 that can, is decoded only when it is the view in force.
 */
const DINODE_DECODE = omitFields(DINODE, ['i_rdev']);
const INODE_SIGNATURE = signatureBytes(OCFS2_INODE_SIGNATURE);
const SUPER_BLOCK_SIGNATURE = signatureBytes(OCFS2_SUPER_BLOCK_SIGNATURE);

/** struct ocfs2_inline_data header; id_data at 0x08. */
export const INLINE_DATA = {
  id_count: [0x00, 'u16'],
  id_reserved0: [0x02, 'u16'],
  id_reserved1: [0x04, 'u32'],
} as const;
export const INLINE_DATA_DATA_OFFSET = 0x08;

export interface InlineData extends Decoded<typeof INLINE_DATA> {
  /** id_count bytes (the file's data is the first i_size of them). */
  id_data: Buffer;
}

export type Id2Kind = 'super' | 'lab' | 'chain' | 'dealloc' | 'data' | 'symlink' | 'list';
export type Id1View = 'dev1' | 'bitmap1' | 'journal1';

export interface Dinode extends Decoded<typeof DINODE> {
  super?: SuperBlock;
  list?: ExtentList;
  chain?: ChainList;
  lab?: LocalAlloc;
  dealloc?: TruncateLog;
  data?: InlineData;
  /** Fast symlink: the whole id2 space (target = first i_size bytes, NUL-terminated). */
  symlink?: Buffer;
  /** The last i_xattr_inline_size bytes of the block when OCFS2_INLINE_XATTR_FL is set (an xattr header area). */
  inlineXattr?: Buffer;
  /** Bytes between the end of the id2 structure and its space's end, kept only when not all zero. */
  tail?: Buffer;
}

/** Which struct id2 holds: the kernel's order of tests. */
export function dinodeId2Kind(d: Pick<Dinode, 'i_flags' | 'i_dyn_features' | 'i_mode' | 'i_clusters'>): Id2Kind {
  if (d.i_flags & OCFS2_SUPER_BLOCK_FL) return 'super';
  if (d.i_flags & OCFS2_LOCAL_ALLOC_FL) return 'lab';
  if (d.i_flags & OCFS2_CHAIN_FL) return 'chain';
  if (d.i_flags & OCFS2_DEALLOC_FL) return 'dealloc';
  if (d.i_dyn_features & OCFS2_INLINE_DATA_FL) return 'data';
  if ((d.i_mode & S_IFMT) === S_IFLNK && d.i_clusters === 0) return 'symlink';
  return 'list';
}

/** Which id1 view is in force (and written by encodeDinode). */
export function dinodeId1View(d: Pick<Dinode, 'i_flags'>): Id1View {
  if (d.i_flags & OCFS2_JOURNAL_FL) return 'journal1';
  if (d.i_flags & (OCFS2_BITMAP_FL | OCFS2_CHAIN_FL | OCFS2_LOCAL_ALLOC_FL)) return 'bitmap1';
  return 'dev1';
}

// Capacities (the kernel's helpers of the same names in ocfs2_fs.h).

/** ocfs2_extent_recs_per_inode */
export function extentRecsPerInode(blockSizeBytes: number): number {
  return extentRecsInBytes(blockSizeBytes - dinodeId2Offset);
}

/** ocfs2_extent_recs_per_inode_with_xattr */
export function extentRecsPerInodeWithXattr(blockSizeBytes: number, d: Pick<Dinode, 'i_dyn_features' | 'i_xattr_inline_size'>): number {
  return extentRecsInBytes(blockSizeBytes - dinodeId2Offset - inlineXattrBytes(d));
}

/** ocfs2_max_inline_data_with_xattr (d omitted: no inline xattrs) */
export function maxInlineDataWithXattr(blockSizeBytes: number, d?: Pick<Dinode, 'i_dyn_features' | 'i_xattr_inline_size'>): number {
  return blockSizeBytes - dinodeId2Offset - INLINE_DATA_DATA_OFFSET - (d ? inlineXattrBytes(d) : 0);
}

/** ocfs2_chain_recs_per_inode */
export function chainRecsPerInode(blockSizeBytes: number): number {
  return chainRecsInBytes(blockSizeBytes - dinodeId2Offset);
}

/** ocfs2_fast_symlink_chars */
export function fastSymlinkChars(blockSizeBytes: number): number {
  return blockSizeBytes - dinodeId2Offset;
}

/** ocfs2_local_alloc_size: bytes of la_bitmap that fit. */
export function localAllocSize(blockSizeBytes: number): number {
  return blockSizeBytes - dinodeId2Offset - LOCAL_ALLOC_BITMAP_OFFSET;
}

/** ocfs2_truncate_recs_per_inode */
export function truncateRecsPerInode(blockSizeBytes: number): number {
  return truncateRecsInBytes(blockSizeBytes - dinodeId2Offset);
}

function inlineXattrBytes(d: Pick<Dinode, 'i_dyn_features' | 'i_xattr_inline_size'>): number {
  return d.i_dyn_features & OCFS2_INLINE_XATTR_FL ? d.i_xattr_inline_size : 0;
}

/** OCFS2_VALID_FL: decodeDinode does not require it; callers decide (a freed inode is not valid). */
export function dinodeIsValid(d: Pick<Dinode, 'i_flags'>): boolean {
  return (d.i_flags & OCFS2_VALID_FL) !== 0;
}

/** ocfs2_read_links_count: i_links_count_hi counts only on indexed dirs. */
export function dinodeLinksCount(d: Pick<Dinode, 'i_links_count' | 'i_links_count_hi' | 'i_dyn_features'>): number {
  let n = d.i_links_count;
  if (d.i_dyn_features & OCFS2_INDEXED_DIR_FL) n += d.i_links_count_hi * 2 ** OCFS2_LINKS_HI_SHIFT;
  return n;
}

/**
 * ocfs2_link_max, per inode: the links `d` may have. On a volume with indexed
 * directories the kernel allows OCFS2_DX_LINK_MAX links to any inode, but it
 * reads i_links_count_hi back only for an indexed directory (above): a file
 * with more than 65,535 links would come back with the wrong count, and its
 * last unlink would free it under its other names. So only an indexed
 * directory takes OCFS2_DX_LINK_MAX (subdirectories); everything else stays
 * at OCFS2_LINK_MAX, as on volumes without indexed directories.
 */
export function dinodeLinkMax(d: Pick<Dinode, 'i_dyn_features'>): number {
  return d.i_dyn_features & OCFS2_INDEXED_DIR_FL ? OCFS2_DX_LINK_MAX : OCFS2_LINK_MAX;
}

/** ocfs2_set_links_count */
export function setDinodeLinksCount(d: Pick<Dinode, 'i_links_count' | 'i_links_count_hi'>, n: number): void {
  d.i_links_count = n & 0xffff;
  d.i_links_count_hi = Math.floor(n / 2 ** OCFS2_LINKS_HI_SHIFT) & 0xffff;
}

export interface DinodeCheckOptions {
  /** The volume's fs generation: i_fs_generation must match. */
  fsGeneration?: number;
}

/**
 * Decodes and validates an inode block (ocfs2_validate_inode_block minus
 * ECC and the VALID flag): signature ("INODE01", or "OCFSV2" with
 * OCFS2_SUPER_BLOCK_FL), i_blkno equal to where it was read, id2 counts
 * within the block.
 */
export function decodeDinode(block: Buffer, expectedBlkno?: number, opts: DinodeCheckOptions = {}): Dinode {
  const where = expectedBlkno !== undefined ? `dinode ${expectedBlkno}` : 'dinode';
  const blockSize = block.length;
  if (blockSize < 512) throw new FormatError(`${where}: block of ${blockSize} bytes`);
  // Signature first: on a block that is not an inode, no other field means anything. Compared as bytes (the
  // string and the regex that trimmed it were a tenth of a decode); the string is made only for the error.
  const isSuperSig = block.compare(SUPER_BLOCK_SIGNATURE, 0, 8, 0, 8) === 0;
  if (!isSuperSig && block.compare(INODE_SIGNATURE, 0, 8, 0, 8) !== 0) {
    const sig = block.toString('latin1', 0, 8).replace(/\0+$/, '');
    throw new FormatError(`${where}: i_signature: bad signature ${JSON.stringify(sig)} (expected ${JSON.stringify(OCFS2_INODE_SIGNATURE)})`);
  }
  const d = decodeFields(DINODE_DECODE, block, 0, where) as Dinode;
  if (isSuperSig && !(d.i_flags & OCFS2_SUPER_BLOCK_FL)) {
    throw new FormatError(`${where}: i_signature "${OCFS2_SUPER_BLOCK_SIGNATURE}" without OCFS2_SUPER_BLOCK_FL in i_flags`);
  }
  if (expectedBlkno !== undefined && d.i_blkno !== expectedBlkno) {
    throw new FormatError(`${where}: i_blkno ${d.i_blkno} does not match the block it was read from`);
  }
  if (opts.fsGeneration !== undefined && d.i_fs_generation !== opts.fsGeneration) {
    throw new FormatError(`${where}: i_fs_generation 0x${d.i_fs_generation.toString(16)} != volume 0x${opts.fsGeneration.toString(16)}`);
  }
  // i_rdev only has to be a sane u64 when it is the view in force; otherwise it is the same bytes seen as one number.
  d.i_rdev = dinodeId1View(d) === 'dev1' ? decodeFields(ID1_DEV, block, 0, where).i_rdev : d.i_total * 2 ** 32 + d.i_used;

  const xattrBytes = inlineXattrBytes(d);
  if (xattrBytes > blockSize - dinodeId2Offset) {
    throw new FormatError(`${where}: i_xattr_inline_size ${d.i_xattr_inline_size} larger than the inode's id2 space`);
  }
  const end = blockSize - xattrBytes;
  const room = end - dinodeId2Offset;
  const base = dinodeId2Offset;
  let used: number;
  switch (dinodeId2Kind(d)) {
    case 'super':
      d.super = decodeSuperBlockFields(block, base, `${where}: id2.i_super`);
      used = SUPER_BLOCK_SIZE;
      break;
    case 'lab':
      d.lab = decodeLocalAlloc(block, base, room, `${where}: id2.i_lab`);
      used = LOCAL_ALLOC_BITMAP_OFFSET + d.lab.la_size;
      break;
    case 'chain':
      d.chain = decodeChainList(block, base, chainRecsInBytes(room), `${where}: id2.i_chain`);
      used = 0x10 + d.chain.cl_count * 0x10;
      break;
    case 'dealloc':
      d.dealloc = decodeTruncateLog(block, base, truncateRecsInBytes(room), `${where}: id2.i_dealloc`);
      used = TRUNCATE_LOG_RECS_OFFSET + d.dealloc.tl_count * 8;
      break;
    case 'data': {
      const hdr = decodeFields(INLINE_DATA, block, base, `${where}: id2.i_data`);
      if (hdr.id_count > room - INLINE_DATA_DATA_OFFSET) {
        throw new FormatError(`${where}: id2.i_data.id_count ${hdr.id_count} > ${room - INLINE_DATA_DATA_OFFSET} bytes that fit`);
      }
      const start = base + INLINE_DATA_DATA_OFFSET;
      d.data = { ...hdr, id_data: Buffer.from(block.subarray(start, start + hdr.id_count)) };
      used = INLINE_DATA_DATA_OFFSET + hdr.id_count;
      break;
    }
    case 'symlink':
      d.symlink = Buffer.from(block.subarray(base, end));
      used = room;
      break;
    case 'list':
      d.list = decodeExtentList(block, base, extentRecsInBytes(room), `${where}: id2.i_list`, true);
      used = 0x10 + d.list.l_count * 0x10;
      break;
  }
  if (!isZero(block, base + used, end)) d.tail = Buffer.from(block.subarray(base + used, end));
  if (xattrBytes > 0) d.inlineXattr = Buffer.from(block.subarray(end));
  return d;
}

/** Writes the whole inode block (block size = buffer length). i_check is written as given: compute ECC after. */
export function encodeDinode(d: Dinode, block: Buffer): void {
  const where = `dinode ${d.i_blkno}`;
  block.fill(0);
  encodeFields(DINODE_FIXED, d, block, 0, where);
  const isSuper = (d.i_flags & OCFS2_SUPER_BLOCK_FL) !== 0;
  writeSignature(block, 0, isSuper ? OCFS2_SUPER_BLOCK_SIGNATURE : OCFS2_INODE_SIGNATURE);
  switch (dinodeId1View(d)) {
    case 'dev1': encodeFields(ID1_DEV, d, block, 0, where); break;
    case 'bitmap1': encodeFields(ID1_BITMAP, d, block, 0, where); break;
    case 'journal1': encodeFields(ID1_JOURNAL, d, block, 0, where); break;
  }
  const xattrBytes = inlineXattrBytes(d);
  const end = block.length - xattrBytes;
  const room = end - dinodeId2Offset;
  const base = dinodeId2Offset;
  const kind = dinodeId2Kind(d);
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new RangeError(`${where}: flags/mode say id2 is '${kind}' but that member is missing`);
    return v;
  };
  let used: number;
  switch (kind) {
    case 'super':
      encodeSuperBlockFields(need(d.super), block, base, `${where}: id2.i_super`);
      used = SUPER_BLOCK_SIZE;
      break;
    case 'lab':
      used = encodeLocalAlloc(need(d.lab), block, base, `${where}: id2.i_lab`);
      break;
    case 'chain':
      // block.fill(0) above: unused records need no writing.
      used = encodeChainList(need(d.chain), block, base, `${where}: id2.i_chain`, true);
      break;
    case 'dealloc':
      used = encodeTruncateLog(need(d.dealloc), block, base, `${where}: id2.i_dealloc`);
      break;
    case 'data': {
      const data = need(d.data);
      if (data.id_data.length > data.id_count) throw new RangeError(`${where}: ${data.id_data.length} bytes of inline data > id_count ${data.id_count}`);
      encodeFields(INLINE_DATA, data, block, base, `${where}: id2.i_data`);
      data.id_data.copy(block, base + INLINE_DATA_DATA_OFFSET);
      used = INLINE_DATA_DATA_OFFSET + data.id_count;
      break;
    }
    case 'symlink': {
      const s = need(d.symlink);
      if (s.length > room) throw new RangeError(`${where}: symlink of ${s.length} bytes > ${room}`);
      s.copy(block, base);
      used = room;
      break;
    }
    case 'list':
      used = encodeExtentList(need(d.list), block, base, `${where}: id2.i_list`, true);
      break;
  }
  if (used > room) throw new RangeError(`${where}: id2 '${kind}' needs ${used} bytes, ${room} available`);
  if (d.tail) {
    if (base + used + d.tail.length > end) throw new RangeError(`${where}: tail does not fit`);
    d.tail.copy(block, base + used);
  }
  if (xattrBytes > 0) {
    if (!d.inlineXattr || d.inlineXattr.length !== xattrBytes) {
      throw new RangeError(`${where}: inlineXattr must be i_xattr_inline_size (${xattrBytes}) bytes`);
    }
    d.inlineXattr.copy(block, end);
  }
}

/**
 * A zeroed inode with the signature and an empty extent list sized for the
 * block; callers fill in the rest. `withList` false leaves id2 to the caller
 * (an inline-data inode has no use for l_count empty records).
 */
export function emptyDinode(blockSizeBytes: number, blkno = 0, withList = true): Dinode {
  const d: Dinode = {
    i_signature: signatureBytes(OCFS2_INODE_SIGNATURE), i_generation: 0, i_suballoc_slot: 0, i_suballoc_bit: 0,
    i_links_count_hi: 0, i_xattr_inline_size: 0, i_clusters: 0, i_uid: 0, i_gid: 0, i_size: 0, i_mode: 0,
    i_links_count: 0, i_flags: 0, i_atime: 0, i_ctime: 0, i_mtime: 0, i_dtime: 0, i_blkno: blkno, i_last_eb_blk: 0,
    i_fs_generation: 0, i_atime_nsec: 0, i_ctime_nsec: 0, i_mtime_nsec: 0, i_attr: 0, i_orphaned_slot: 0,
    i_dyn_features: 0, i_xattr_loc: 0, i_check: Buffer.alloc(8), i_dx_root: 0, i_refcount_loc: 0, i_suballoc_loc: 0,
    i_dio_orphaned_slot: 0, i_reserved1: [0, 0, 0], i_reserved2: Buffer.alloc(16), i_rdev: 0, i_used: 0, i_total: 0,
    ij_flags: 0, ij_recovery_generation: 0,
  };
  if (withList) d.list = emptyExtentList(extentRecsPerInode(blockSizeBytes));
  return d;
}

/** The superblock inode at block `blkno` (2, or a backup's block): signature OCFSV2 and the super member present. */
export function decodeSuperBlockInode(block: Buffer, blkno = OCFS2_SUPER_BLOCK_BLKNO): Dinode & { super: SuperBlock } {
  const sig = block.toString('latin1', 0, 8).replace(/\0+$/, '');
  if (sig !== OCFS2_SUPER_BLOCK_SIGNATURE) {
    throw new FormatError(`superblock ${blkno}: i_signature: bad signature ${JSON.stringify(sig)} (expected "${OCFS2_SUPER_BLOCK_SIGNATURE}")`);
  }
  const d = decodeDinode(block, blkno);
  if (!d.super) throw new FormatError(`superblock ${blkno}: i_flags 0x${d.i_flags.toString(16)} lacks OCFS2_SUPER_BLOCK_FL`);
  return d as Dinode & { super: SuperBlock };
}
