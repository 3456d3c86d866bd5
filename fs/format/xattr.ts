/**
 * Extended attributes: the xattr header + entries (struct
 * ocfs2_xattr_header / ocfs2_xattr_entry) that live in three places — the
 * inline area at the end of an inode block, an xattr block (struct
 * ocfs2_xattr_block "XATTR01") and a 4 KiB bucket of an indexed xattr tree —
 * plus the value root (struct ocfs2_xattr_value_root) of a value stored
 * outside, and the tree root of an indexed block.
 *
 * A region is the header, the entry array growing up, free space, and the
 * name+value pairs packed down from the end; xe_name_offset counts from the
 * header. decode keeps the region's bytes after the entry array as
 * `storage` so encode(decode(b)) == b; buildXattrRegion lays out a new one.
 */
import { OCFS2_XATTR_BLOCK_SIGNATURE } from './constants';
import { decodeExtentList, encodeExtentList, ExtentList, extentRecsInBytes } from './extent';
import {
  checkSignature, decodeFields, Decoded, encodeFields, FormatError, isZero, writeSignature,
} from './layout';

export const OCFS2_XATTR_INDEX_USER = 1;
export const OCFS2_XATTR_INDEX_POSIX_ACL_ACCESS = 2;
export const OCFS2_XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
export const OCFS2_XATTR_INDEX_TRUSTED = 4;
export const OCFS2_XATTR_INDEX_SECURITY = 5;
export const OCFS2_XATTR_MAX = 6;

/** Name prefixes by type index (POSIX ACLs are whole names, stored with an empty suffix). */
export const XATTR_PREFIXES: Readonly<Record<number, string>> = {
  [OCFS2_XATTR_INDEX_USER]: 'user.',
  [OCFS2_XATTR_INDEX_POSIX_ACL_ACCESS]: 'system.posix_acl_access',
  [OCFS2_XATTR_INDEX_POSIX_ACL_DEFAULT]: 'system.posix_acl_default',
  [OCFS2_XATTR_INDEX_TRUSTED]: 'trusted.',
  [OCFS2_XATTR_INDEX_SECURITY]: 'security.',
};

export const OCFS2_XATTR_ENTRY_LOCAL = 0x80;
export const OCFS2_XATTR_TYPE_MASK = 0x7f;
/** Largest value stored next to its name ("local"); larger values live in clusters under a value root. */
export const OCFS2_XATTR_INLINE_SIZE = 80;
export const OCFS2_XATTR_INDEXED = 0x1;
export const OCFS2_HASH_SHIFT = 5;
export const OCFS2_XATTR_ROUND = 3;
export const OCFS2_XATTR_BUCKET_SIZE = 4096;

/** OCFS2_XATTR_SIZE: name and value lengths are padded to 4 bytes. */
export function OCFS2_XATTR_SIZE(size: number): number {
  return (size + OCFS2_XATTR_ROUND) & ~OCFS2_XATTR_ROUND;
}

/** struct ocfs2_xattr_entry */
export const XATTR_ENTRY = {
  xe_name_hash: [0x00, 'u32'],
  xe_name_offset: [0x04, 'u16'],
  xe_name_len: [0x06, 'u8'],
  xe_type: [0x07, 'u8'],
  xe_value_size: [0x08, 'u64'],
} as const;
export const XATTR_ENTRY_SIZE = 0x10;
export type XattrEntry = Decoded<typeof XATTR_ENTRY>;

/** struct ocfs2_xattr_header; xh_entries at 0x10. */
export const XATTR_HEADER = {
  xh_count: [0x00, 'u16'],
  xh_free_start: [0x02, 'u16'],
  xh_name_value_len: [0x04, 'u16'],
  xh_num_buckets: [0x06, 'u16'],
  xh_check: [0x08, 'bytes', 8],
} as const;
export const XATTR_HEADER_ENTRIES_OFFSET = 0x10;
export const XATTR_HEADER_CHECK_OFFSET = XATTR_HEADER.xh_check[0];

/** struct ocfs2_xattr_value_root; xr_list at 0x10. */
export const XATTR_VALUE_ROOT = {
  xr_clusters: [0x00, 'u32'],
  xr_reserved0: [0x04, 'u32'],
  xr_last_eb_blk: [0x08, 'u64'],
} as const;
export const XATTR_VALUE_ROOT_LIST_OFFSET = 0x10;
/** OCFS2_XATTR_ROOT_SIZE: a value root with its one inline extent record (struct ocfs2_xattr_def_value_root). */
export const OCFS2_XATTR_ROOT_SIZE = 0x30;

export interface XattrValueRoot extends Decoded<typeof XATTR_VALUE_ROOT> {
  xr_list: ExtentList;
}

/** struct ocfs2_xattr_tree_root; xt_list at 0x10. */
export const XATTR_TREE_ROOT = {
  xt_clusters: [0x00, 'u32'],
  xt_reserved0: [0x04, 'u32'],
  xt_last_eb_blk: [0x08, 'u64'],
} as const;
export const XATTR_TREE_ROOT_LIST_OFFSET = 0x10;

export interface XattrTreeRoot extends Decoded<typeof XATTR_TREE_ROOT> {
  xt_list: ExtentList;
}

/** struct ocfs2_xattr_block header; xb_attrs at 0x30. */
export const XATTR_BLOCK = {
  xb_signature: [0x00, 'bytes', 8],
  xb_suballoc_slot: [0x08, 'u16'],
  xb_suballoc_bit: [0x0a, 'u16'],
  xb_fs_generation: [0x0c, 'u32'],
  xb_blkno: [0x10, 'u64'],
  xb_check: [0x18, 'bytes', 8],
  xb_flags: [0x20, 'u16'],
  xb_reserved0: [0x22, 'u16'],
  xb_reserved1: [0x24, 'u32'],
  xb_suballoc_loc: [0x28, 'u64'],
} as const;
export const XATTR_BLOCK_ATTRS_OFFSET = 0x30;
export const XATTR_BLOCK_CHECK_OFFSET = XATTR_BLOCK.xb_check[0];

/** An entry with its name and value resolved from the region. */
export interface XattrItem extends XattrEntry {
  /** The name suffix (without the type prefix), xe_name_len bytes. */
  name: Buffer;
  /** Local value (xe_type & OCFS2_XATTR_ENTRY_LOCAL): xe_value_size bytes. */
  value?: Buffer;
  /** Non-local value: the root of its extent tree, stored after the name. */
  valueRoot?: XattrValueRoot;
}

/** A header and everything after it in a region (inline area, block body or bucket). */
export interface XattrRegion extends Decoded<typeof XATTR_HEADER> {
  /** xh_count entries with names and values resolved. */
  xh_entries: XattrItem[];
  /** The region's bytes after the entry array (free space + names/values), verbatim. */
  storage: Buffer;
}

export interface XattrBlock extends Decoded<typeof XATTR_BLOCK> {
  /** !(xb_flags & OCFS2_XATTR_INDEXED): the attributes themselves. */
  xb_header?: XattrRegion;
  /** xb_flags & OCFS2_XATTR_INDEXED: the tree of buckets. */
  xb_root?: XattrTreeRoot;
  /** With xb_root: bytes after the tree's list, kept only when not all zero. */
  tail?: Buffer;
}

/** ocfs2_xattr_name_hash: over the name suffix, seeded with s_uuid_hash; chars signed as on x86 (see dxHash). */
export function xattrNameHash(uuidHash: number, name: Uint8Array | string, opts: { signedChars?: boolean } = {}): number {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  const signedChars = opts.signedChars ?? true;
  let hash = uuidHash >>> 0;
  for (const byte of bytes) {
    const ch = signedChars && byte >= 0x80 ? byte - 0x100 : byte;
    hash = ((hash << OCFS2_HASH_SHIFT) ^ (hash >>> (32 - OCFS2_HASH_SHIFT)) ^ ch) >>> 0;
  }
  return hash;
}

/** ocfs2_xattr_recs_per_xb: extent records in an indexed xattr block's tree root. */
export function xattrRecsPerXattrBlock(blockSizeBytes: number): number {
  return extentRecsInBytes(blockSizeBytes - XATTR_BLOCK_ATTRS_OFFSET - XATTR_TREE_ROOT_LIST_OFFSET);
}

/** Bytes a name+value pair takes in storage (ocfs2_xattr_entry_real_size minus the entry). */
export function xattrNameValueSize(nameLen: number, valueSize: number, local: boolean): number {
  return OCFS2_XATTR_SIZE(nameLen) + (local ? OCFS2_XATTR_SIZE(valueSize) : OCFS2_XATTR_ROOT_SIZE);
}

export function decodeXattrValueRoot(buf: Buffer, base: number, what: string): XattrValueRoot {
  const hdr = decodeFields(XATTR_VALUE_ROOT, buf, base, what);
  const xr_list = decodeExtentList(buf, base + XATTR_VALUE_ROOT_LIST_OFFSET, 1, `${what}.xr_list`);
  return { ...hdr, xr_list };
}

export function encodeXattrValueRoot(vr: XattrValueRoot, buf: Buffer, base: number, what = 'xattr value root'): void {
  encodeFields(XATTR_VALUE_ROOT, vr, buf, base, what);
  encodeExtentList(vr.xr_list, buf, base + XATTR_VALUE_ROOT_LIST_OFFSET, `${what}.xr_list`);
}

/**
 * Decodes a region buf[base, base+size): checks that the entries fit and
 * every name/value lies inside the region; errors name `what`, the entry and the field.
 */
export function decodeXattrRegion(buf: Buffer, base: number, size: number, what: string): XattrRegion {
  if (size < XATTR_HEADER_ENTRIES_OFFSET) throw new FormatError(`${what}: region of ${size} bytes has no room for a header`);
  const hdr = decodeFields(XATTR_HEADER, buf, base, what);
  const entriesEnd = XATTR_HEADER_ENTRIES_OFFSET + hdr.xh_count * XATTR_ENTRY_SIZE;
  if (entriesEnd > size) throw new FormatError(`${what}: xh_count ${hdr.xh_count} entries overrun the ${size}-byte region`);
  const xh_entries: XattrItem[] = [];
  for (let i = 0; i < hdr.xh_count; i++) {
    const at = `${what}.xh_entries[${i}]`;
    const e = decodeFields(XATTR_ENTRY, buf, base + XATTR_HEADER_ENTRIES_OFFSET + i * XATTR_ENTRY_SIZE, at);
    const local = (e.xe_type & OCFS2_XATTR_ENTRY_LOCAL) !== 0;
    const need = xattrNameValueSize(e.xe_name_len, e.xe_value_size, local);
    if (e.xe_name_offset < entriesEnd || e.xe_name_offset + need > size) {
      throw new FormatError(`${at}: xe_name_offset ${e.xe_name_offset} + ${need} bytes outside the region [${entriesEnd}, ${size})`);
    }
    const nameAt = base + e.xe_name_offset;
    const item: XattrItem = { ...e, name: Buffer.from(buf.subarray(nameAt, nameAt + e.xe_name_len)) };
    const valueAt = nameAt + OCFS2_XATTR_SIZE(e.xe_name_len);
    if (local) item.value = Buffer.from(buf.subarray(valueAt, valueAt + e.xe_value_size));
    else item.valueRoot = decodeXattrValueRoot(buf, valueAt, `${at}.value_root`);
    xh_entries.push(item);
  }
  return { ...hdr, xh_entries, storage: Buffer.from(buf.subarray(base + entriesEnd, base + size)) };
}

/** Writes header, entries and storage verbatim into buf[base, base+size). */
export function encodeXattrRegion(region: XattrRegion, buf: Buffer, base: number, size: number, what = 'xattr region'): void {
  const entriesEnd = XATTR_HEADER_ENTRIES_OFFSET + region.xh_entries.length * XATTR_ENTRY_SIZE;
  if (region.xh_count !== region.xh_entries.length) throw new RangeError(`${what}: xh_count ${region.xh_count} != ${region.xh_entries.length} entries`);
  if (entriesEnd + region.storage.length !== size) {
    throw new RangeError(`${what}: entries (${entriesEnd}) + storage (${region.storage.length}) != region size ${size}`);
  }
  encodeFields(XATTR_HEADER, region, buf, base, what);
  region.xh_entries.forEach((e, i) => encodeFields(XATTR_ENTRY, e, buf, base + XATTR_HEADER_ENTRIES_OFFSET + i * XATTR_ENTRY_SIZE, `${what}.xh_entries[${i}]`));
  region.storage.copy(buf, base + entriesEnd);
}

/** A new attribute for buildXattrRegion: name suffix + type, and either a local value or a value root. */
export interface NewXattr {
  type: number;
  name: Buffer | string;
  value?: Buffer;
  valueRoot?: XattrValueRoot;
  /** xe_value_size of a non-local value. */
  valueSize?: number;
}

/**
 * Lays out a region of `size` bytes the way the kernel does: entries from
 * the front (sorted by name hash in buckets; in the given order here), name+value pairs
 * packed from the end down. Returns the region ready for encodeXattrRegion.
 */
export function buildXattrRegion(items: readonly NewXattr[], size: number, uuidHash: number, numBuckets = 0): XattrRegion {
  const storageStart = XATTR_HEADER_ENTRIES_OFFSET + items.length * XATTR_ENTRY_SIZE;
  const region = Buffer.alloc(size);
  let freeStart = size;
  let nameValueLen = 0;
  const entries: XattrItem[] = [];
  for (const it of items) {
    const name = typeof it.name === 'string' ? Buffer.from(it.name, 'utf8') : it.name;
    if (name.length > 255) throw new RangeError(`xattr name of ${name.length} bytes`);
    const local = it.value !== undefined;
    const valueSize = local ? it.value!.length : it.valueSize ?? 0;
    // Values up to OCFS2_XATTR_INLINE_SIZE are stored local, bigger ones outside (fsck enforces both ways).
    if (local && valueSize > OCFS2_XATTR_INLINE_SIZE) throw new RangeError(`xattr value of ${valueSize} bytes > ${OCFS2_XATTR_INLINE_SIZE} must be stored outside (valueRoot)`);
    if (!local && valueSize <= OCFS2_XATTR_INLINE_SIZE) throw new RangeError(`xattr value of ${valueSize} bytes must be local`);
    const need = xattrNameValueSize(name.length, valueSize, local);
    freeStart -= need;
    if (freeStart < storageStart) throw new RangeError(`xattrs need more than the ${size}-byte region`);
    name.copy(region, freeStart);
    const valueAt = freeStart + OCFS2_XATTR_SIZE(name.length);
    if (local) it.value!.copy(region, valueAt);
    else if (it.valueRoot) encodeXattrValueRoot(it.valueRoot, region, valueAt);
    else throw new RangeError('a non-local xattr needs valueRoot');
    nameValueLen += need;
    const item: XattrItem = {
      xe_name_hash: xattrNameHash(uuidHash, name), xe_name_offset: freeStart, xe_name_len: name.length,
      xe_type: (it.type & OCFS2_XATTR_TYPE_MASK) | (local ? OCFS2_XATTR_ENTRY_LOCAL : 0), xe_value_size: valueSize, name,
    };
    if (local) item.value = Buffer.from(it.value!);
    else item.valueRoot = it.valueRoot;
    entries.push(item);
  }
  return {
    xh_count: entries.length, xh_free_start: freeStart, xh_name_value_len: nameValueLen, xh_num_buckets: numBuckets,
    xh_check: Buffer.alloc(8), xh_entries: entries, storage: Buffer.from(region.subarray(storageStart)),
  };
}

export interface XattrBlockCheckOptions {
  expectedBlkno?: number;
  fsGeneration?: number;
}

/** Decodes and validates an xattr block (ocfs2_validate_xattr_block minus ECC). */
export function decodeXattrBlock(block: Buffer, opts: XattrBlockCheckOptions | number = {}): XattrBlock {
  const o = typeof opts === 'number' ? { expectedBlkno: opts } : opts;
  const where = o.expectedBlkno !== undefined ? `xattr block ${o.expectedBlkno}` : 'xattr block';
  checkSignature(block, 0, OCFS2_XATTR_BLOCK_SIGNATURE, `${where}: xb_signature`);
  const hdr = decodeFields(XATTR_BLOCK, block, 0, where);
  if (o.expectedBlkno !== undefined && hdr.xb_blkno !== o.expectedBlkno) {
    throw new FormatError(`${where}: xb_blkno ${hdr.xb_blkno} does not match the block it was read from`);
  }
  if (o.fsGeneration !== undefined && hdr.xb_fs_generation !== o.fsGeneration) {
    throw new FormatError(`${where}: xb_fs_generation 0x${hdr.xb_fs_generation.toString(16)} != volume 0x${o.fsGeneration.toString(16)}`);
  }
  const xb: XattrBlock = { ...hdr };
  if (hdr.xb_flags & OCFS2_XATTR_INDEXED) {
    const base = XATTR_BLOCK_ATTRS_OFFSET;
    const root = decodeFields(XATTR_TREE_ROOT, block, base, `${where}: xb_root`);
    const xt_list = decodeExtentList(block, base + XATTR_TREE_ROOT_LIST_OFFSET, xattrRecsPerXattrBlock(block.length), `${where}: xb_root.xt_list`);
    xb.xb_root = { ...root, xt_list };
    const end = base + XATTR_TREE_ROOT_LIST_OFFSET + 0x10 + xt_list.l_count * 0x10;
    if (!isZero(block, end)) xb.tail = Buffer.from(block.subarray(end));
  } else {
    xb.xb_header = decodeXattrRegion(block, XATTR_BLOCK_ATTRS_OFFSET, block.length - XATTR_BLOCK_ATTRS_OFFSET, `${where}: xb_header`);
  }
  return xb;
}

export function encodeXattrBlock(xb: XattrBlock, block: Buffer): void {
  const where = `xattr block ${xb.xb_blkno}`;
  block.fill(0);
  encodeFields(XATTR_BLOCK, xb, block, 0, where);
  writeSignature(block, 0, OCFS2_XATTR_BLOCK_SIGNATURE);
  const base = XATTR_BLOCK_ATTRS_OFFSET;
  if (xb.xb_flags & OCFS2_XATTR_INDEXED) {
    if (!xb.xb_root) throw new RangeError(`${where}: OCFS2_XATTR_INDEXED set but xb_root missing`);
    encodeFields(XATTR_TREE_ROOT, xb.xb_root, block, base, `${where}: xb_root`);
    const n = encodeExtentList(xb.xb_root.xt_list, block, base + XATTR_TREE_ROOT_LIST_OFFSET, `${where}: xb_root.xt_list`);
    if (xb.tail) xb.tail.copy(block, base + XATTR_TREE_ROOT_LIST_OFFSET + n);
  } else {
    if (!xb.xb_header) throw new RangeError(`${where}: xb_header missing`);
    encodeXattrRegion(xb.xb_header, block, base, block.length - base, `${where}: xb_header`);
  }
}

/** A bucket: OCFS2_XATTR_BUCKET_SIZE bytes (several blocks) holding one region; xh_check covers all its blocks. */
export function decodeXattrBucket(bucket: Buffer, what = 'xattr bucket'): XattrRegion {
  if (bucket.length !== OCFS2_XATTR_BUCKET_SIZE) throw new FormatError(`${what}: ${bucket.length} bytes, a bucket is ${OCFS2_XATTR_BUCKET_SIZE}`);
  return decodeXattrRegion(bucket, 0, bucket.length, what);
}

export function encodeXattrBucket(region: XattrRegion, bucket: Buffer): void {
  if (bucket.length !== OCFS2_XATTR_BUCKET_SIZE) throw new RangeError(`xattr bucket: ${bucket.length} bytes`);
  encodeXattrRegion(region, bucket, 0, bucket.length, 'xattr bucket');
}

/** The inline xattr region of an inode block (Dinode.inlineXattr). */
export function decodeInlineXattr(area: Buffer, what = 'inline xattr'): XattrRegion {
  return decodeXattrRegion(area, 0, area.length, what);
}

export function encodeInlineXattr(region: XattrRegion, area: Buffer): void {
  encodeXattrRegion(region, area, 0, area.length, 'inline xattr');
}

/** The full attribute name ("user.foo") of an entry. */
export function xattrFullName(item: Pick<XattrItem, 'xe_type' | 'name'>): string {
  const prefix = XATTR_PREFIXES[item.xe_type & OCFS2_XATTR_TYPE_MASK] ?? `?${item.xe_type & OCFS2_XATTR_TYPE_MASK}?`;
  return prefix + item.name.toString('utf8');
}
