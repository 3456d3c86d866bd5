/**
 * Indexed directories: the dx root block (struct ocfs2_dx_root_block
 * "DXDIR01", pointed to by the directory inode's i_dx_root) holding either
 * the index entries inline (dr_flags & OCFS2_DX_FLAG_INLINE) or an extent
 * list of dx leaf blocks (struct ocfs2_dx_leaf "DXLEAF1"), and the entries
 * themselves (struct ocfs2_dx_entry: hash pair + the dirent's block).
 */
import { OCFS2_DX_LEAF_SIGNATURE, OCFS2_DX_ROOT_SIGNATURE } from './constants';
import { decodeExtentList, emptyExtentList, encodeExtentList, ExtentList, extentRecsInBytes } from './extent';
import {
  checkSignature, decodeFields, Decoded, encodeFields, FormatError, isZero, signatureBytes, writeSignature,
} from './layout';

export const OCFS2_DX_FLAG_INLINE = 0x01;

/** struct ocfs2_dx_entry */
export const DX_ENTRY = {
  dx_major_hash: [0x00, 'u32'],
  dx_minor_hash: [0x04, 'u32'],
  dx_dirent_blk: [0x08, 'u64'],
} as const;
export const DX_ENTRY_SIZE = 0x10;
export type DxEntry = Decoded<typeof DX_ENTRY>;

/** struct ocfs2_dx_entry_list; de_entries at 0x08. */
export const DX_ENTRY_LIST = {
  de_reserved: [0x00, 'u32'],
  de_count: [0x04, 'u16'],
  de_num_used: [0x06, 'u16'],
} as const;
export const DX_ENTRY_LIST_ENTRIES_OFFSET = 0x08;

export interface DxEntryList extends Decoded<typeof DX_ENTRY_LIST> {
  /** All de_count slots (used ones are [0, de_num_used), kept sorted by hash by the kernel). */
  de_entries: DxEntry[];
}

/** struct ocfs2_dx_root_block header; the dr_list / dr_entries union at 0xC0. */
export const DX_ROOT = {
  dr_signature: [0x00, 'bytes', 8],
  dr_check: [0x08, 'bytes', 8],
  dr_suballoc_slot: [0x10, 'u16'],
  dr_suballoc_bit: [0x12, 'u16'],
  dr_fs_generation: [0x14, 'u32'],
  dr_blkno: [0x18, 'u64'],
  dr_last_eb_blk: [0x20, 'u64'],
  dr_clusters: [0x28, 'u32'],
  dr_flags: [0x2c, 'u8'],
  dr_reserved0: [0x2d, 'u8'],
  dr_reserved1: [0x2e, 'u16'],
  dr_dir_blkno: [0x30, 'u64'],
  dr_num_entries: [0x38, 'u32'],
  dr_reserved2: [0x3c, 'u32'],
  dr_free_blk: [0x40, 'u64'],
  dr_suballoc_loc: [0x48, 'u64'],
  dr_reserved3: [0x50, 'bytes', 14 * 8],
} as const;
export const DX_ROOT_UNION_OFFSET = 0xc0;
export const DX_ROOT_CHECK_OFFSET = DX_ROOT.dr_check[0];

export interface DxRoot extends Decoded<typeof DX_ROOT> {
  /** When !(dr_flags & OCFS2_DX_FLAG_INLINE): the tree of dx leaf blocks. */
  dr_list?: ExtentList;
  /** When dr_flags & OCFS2_DX_FLAG_INLINE: the entries, in the root block. */
  dr_entries?: DxEntryList;
  /** Bytes after the union up to the block end, kept only when not all zero. */
  tail?: Buffer;
}

/** struct ocfs2_dx_leaf header; dl_list at 0x28. */
export const DX_LEAF = {
  dl_signature: [0x00, 'bytes', 8],
  dl_check: [0x08, 'bytes', 8],
  dl_blkno: [0x10, 'u64'],
  dl_fs_generation: [0x18, 'u32'],
  dl_reserved0: [0x1c, 'u32'],
  dl_reserved1: [0x20, 'bytes', 8],
} as const;
export const DX_LEAF_LIST_OFFSET = 0x28;
export const DX_LEAF_CHECK_OFFSET = DX_LEAF.dl_check[0];

export interface DxLeaf extends Decoded<typeof DX_LEAF> {
  dl_list: DxEntryList;
  tail?: Buffer;
}

function dxEntriesInBytes(bytes: number): number {
  return Math.max(0, Math.floor((bytes - DX_ENTRY_LIST_ENTRIES_OFFSET) / DX_ENTRY_SIZE));
}

/** ocfs2_dx_entries_per_leaf */
export function dxEntriesPerLeaf(blockSizeBytes: number): number {
  return dxEntriesInBytes(blockSizeBytes - DX_LEAF_LIST_OFFSET);
}

/** ocfs2_dx_entries_per_root */
export function dxEntriesPerRoot(blockSizeBytes: number): number {
  return dxEntriesInBytes(blockSizeBytes - DX_ROOT_UNION_OFFSET);
}

/** ocfs2_extent_recs_per_dx_root */
export function extentRecsPerDxRoot(blockSizeBytes: number): number {
  return extentRecsInBytes(blockSizeBytes - DX_ROOT_UNION_OFFSET);
}

export function decodeDxEntryList(buf: Buffer, base: number, maxEntries: number, what: string): DxEntryList {
  const hdr = decodeFields(DX_ENTRY_LIST, buf, base, what);
  if (hdr.de_count > maxEntries) throw new FormatError(`${what}: de_count ${hdr.de_count} > ${maxEntries} entries that fit`);
  if (hdr.de_num_used > hdr.de_count) throw new FormatError(`${what}: de_num_used ${hdr.de_num_used} > de_count ${hdr.de_count}`);
  const de_entries: DxEntry[] = [];
  for (let i = 0; i < hdr.de_count; i++) {
    de_entries.push(decodeFields(DX_ENTRY, buf, base + DX_ENTRY_LIST_ENTRIES_OFFSET + i * DX_ENTRY_SIZE, `${what}.de_entries[${i}]`));
  }
  return { ...hdr, de_entries };
}

/** Returns bytes written. */
export function encodeDxEntryList(list: DxEntryList, buf: Buffer, base: number, what = 'dx entry list'): number {
  if (list.de_num_used > list.de_count || list.de_entries.length > list.de_count) {
    throw new RangeError(`${what}: de_num_used ${list.de_num_used} / ${list.de_entries.length} entries > de_count ${list.de_count}`);
  }
  encodeFields(DX_ENTRY_LIST, list, buf, base, what);
  for (let i = 0; i < list.de_count; i++) {
    const off = base + DX_ENTRY_LIST_ENTRIES_OFFSET + i * DX_ENTRY_SIZE;
    const e = list.de_entries[i];
    if (e) encodeFields(DX_ENTRY, e, buf, off, `${what}.de_entries[${i}]`);
    else buf.fill(0, off, off + DX_ENTRY_SIZE);
  }
  return DX_ENTRY_LIST_ENTRIES_OFFSET + list.de_count * DX_ENTRY_SIZE;
}

export interface DxCheckOptions {
  expectedBlkno?: number;
  fsGeneration?: number;
  /** For a root: the directory inode it belongs to (dr_dir_blkno). */
  dirBlkno?: number;
}

function optsOf(opts: DxCheckOptions | number): DxCheckOptions {
  return typeof opts === 'number' ? { expectedBlkno: opts } : opts;
}

/** Decodes and validates a dx root block (ocfs2_validate_dx_root minus ECC). */
export function decodeDxRoot(block: Buffer, opts: DxCheckOptions | number = {}): DxRoot {
  const o = optsOf(opts);
  const where = o.expectedBlkno !== undefined ? `dx root ${o.expectedBlkno}` : 'dx root';
  checkSignature(block, 0, OCFS2_DX_ROOT_SIGNATURE, `${where}: dr_signature`);
  const hdr = decodeFields(DX_ROOT, block, 0, where);
  if (o.expectedBlkno !== undefined && hdr.dr_blkno !== o.expectedBlkno) {
    throw new FormatError(`${where}: dr_blkno ${hdr.dr_blkno} does not match the block it was read from`);
  }
  if (o.fsGeneration !== undefined && hdr.dr_fs_generation !== o.fsGeneration) {
    throw new FormatError(`${where}: dr_fs_generation 0x${hdr.dr_fs_generation.toString(16)} != volume 0x${o.fsGeneration.toString(16)}`);
  }
  if (o.dirBlkno !== undefined && hdr.dr_dir_blkno !== o.dirBlkno) {
    throw new FormatError(`${where}: dr_dir_blkno ${hdr.dr_dir_blkno} != directory ${o.dirBlkno}`);
  }
  const root: DxRoot = { ...hdr };
  let end: number;
  if (hdr.dr_flags & OCFS2_DX_FLAG_INLINE) {
    root.dr_entries = decodeDxEntryList(block, DX_ROOT_UNION_OFFSET, dxEntriesPerRoot(block.length), `${where}: dr_entries`);
    end = DX_ROOT_UNION_OFFSET + DX_ENTRY_LIST_ENTRIES_OFFSET + root.dr_entries.de_count * DX_ENTRY_SIZE;
  } else {
    root.dr_list = decodeExtentList(block, DX_ROOT_UNION_OFFSET, extentRecsPerDxRoot(block.length), `${where}: dr_list`);
    end = DX_ROOT_UNION_OFFSET + 0x10 + root.dr_list.l_count * 0x10;
  }
  if (!isZero(block, end)) root.tail = Buffer.from(block.subarray(end));
  return root;
}

/** Writes the whole block (length = block size). */
export function encodeDxRoot(root: DxRoot, block: Buffer): void {
  const where = `dx root ${root.dr_blkno}`;
  block.fill(0);
  encodeFields(DX_ROOT, root, block, 0, where);
  writeSignature(block, 0, OCFS2_DX_ROOT_SIGNATURE);
  let end: number;
  if (root.dr_flags & OCFS2_DX_FLAG_INLINE) {
    if (!root.dr_entries) throw new RangeError(`${where}: OCFS2_DX_FLAG_INLINE set but dr_entries missing`);
    if (root.dr_entries.de_count > dxEntriesPerRoot(block.length)) throw new RangeError(`${where}: de_count too big for the block`);
    end = DX_ROOT_UNION_OFFSET + encodeDxEntryList(root.dr_entries, block, DX_ROOT_UNION_OFFSET, `${where}: dr_entries`);
  } else {
    if (!root.dr_list) throw new RangeError(`${where}: OCFS2_DX_FLAG_INLINE clear but dr_list missing`);
    if (root.dr_list.l_count > extentRecsPerDxRoot(block.length)) throw new RangeError(`${where}: l_count too big for the block`);
    end = DX_ROOT_UNION_OFFSET + encodeExtentList(root.dr_list, block, DX_ROOT_UNION_OFFSET, `${where}: dr_list`);
  }
  if (root.tail) root.tail.copy(block, end);
}

/** Decodes and validates a dx leaf block (ocfs2_validate_dx_leaf minus ECC). */
export function decodeDxLeaf(block: Buffer, opts: DxCheckOptions | number = {}): DxLeaf {
  const o = optsOf(opts);
  const where = o.expectedBlkno !== undefined ? `dx leaf ${o.expectedBlkno}` : 'dx leaf';
  checkSignature(block, 0, OCFS2_DX_LEAF_SIGNATURE, `${where}: dl_signature`);
  const hdr = decodeFields(DX_LEAF, block, 0, where);
  if (o.expectedBlkno !== undefined && hdr.dl_blkno !== o.expectedBlkno) {
    throw new FormatError(`${where}: dl_blkno ${hdr.dl_blkno} does not match the block it was read from`);
  }
  if (o.fsGeneration !== undefined && hdr.dl_fs_generation !== o.fsGeneration) {
    throw new FormatError(`${where}: dl_fs_generation 0x${hdr.dl_fs_generation.toString(16)} != volume 0x${o.fsGeneration.toString(16)}`);
  }
  const dl_list = decodeDxEntryList(block, DX_LEAF_LIST_OFFSET, dxEntriesPerLeaf(block.length), `${where}: dl_list`);
  const leaf: DxLeaf = { ...hdr, dl_list };
  const end = DX_LEAF_LIST_OFFSET + DX_ENTRY_LIST_ENTRIES_OFFSET + dl_list.de_count * DX_ENTRY_SIZE;
  if (!isZero(block, end)) leaf.tail = Buffer.from(block.subarray(end));
  return leaf;
}

export function encodeDxLeaf(leaf: DxLeaf, block: Buffer): void {
  const where = `dx leaf ${leaf.dl_blkno}`;
  if (leaf.dl_list.de_count > dxEntriesPerLeaf(block.length)) throw new RangeError(`${where}: de_count too big for the block`);
  block.fill(0);
  encodeFields(DX_LEAF, leaf, block, 0, where);
  writeSignature(block, 0, OCFS2_DX_LEAF_SIGNATURE);
  const end = DX_LEAF_LIST_OFFSET + encodeDxEntryList(leaf.dl_list, block, DX_LEAF_LIST_OFFSET, `${where}: dl_list`);
  if (leaf.tail) leaf.tail.copy(block, end);
}

function emptyDxEntryList(count: number): DxEntryList {
  return {
    de_reserved: 0, de_count: count, de_num_used: 0,
    de_entries: Array.from({ length: count }, () => ({ dx_major_hash: 0, dx_minor_hash: 0, dx_dirent_blk: 0 })),
  };
}

/** A new root with inline entries (what the kernel makes for a new indexed dir). */
export function emptyDxRoot(blockSizeBytes: number, inline = true): DxRoot {
  const root: DxRoot = {
    dr_signature: signatureBytes(OCFS2_DX_ROOT_SIGNATURE), dr_check: Buffer.alloc(8), dr_suballoc_slot: 0,
    dr_suballoc_bit: 0, dr_fs_generation: 0, dr_blkno: 0, dr_last_eb_blk: 0, dr_clusters: 0,
    dr_flags: inline ? OCFS2_DX_FLAG_INLINE : 0, dr_reserved0: 0, dr_reserved1: 0, dr_dir_blkno: 0, dr_num_entries: 0,
    dr_reserved2: 0, dr_free_blk: 0, dr_suballoc_loc: 0, dr_reserved3: Buffer.alloc(112),
  };
  if (inline) root.dr_entries = emptyDxEntryList(dxEntriesPerRoot(blockSizeBytes));
  else root.dr_list = emptyExtentList(extentRecsPerDxRoot(blockSizeBytes));
  return root;
}

/** The header fields every new dx root sets, mkfs's and the engine's alike: whose it is, and which allocator bit it took. */
export interface DxRootIdentity {
  blkno: number;
  /** The directory's inode block. */
  dirBlkno: number;
  fsGeneration: number;
  suballocSlot: number;
  suballocBit: number;
  /** Group descriptor block of the suballocator group (dr_suballoc_loc, discontig-bg volumes; else 0). */
  suballocLoc: number;
  /** First block of the free-space list (0: none). */
  freeListHead: number;
}

/** A new, empty dx root (inline entries or an empty extent list) with its identity filled in. */
export function newDxRoot(blockSizeBytes: number, inline: boolean, id: DxRootIdentity): DxRoot {
  const root = emptyDxRoot(blockSizeBytes, inline);
  root.dr_blkno = id.blkno;
  root.dr_dir_blkno = id.dirBlkno;
  root.dr_fs_generation = id.fsGeneration;
  root.dr_suballoc_slot = id.suballocSlot;
  root.dr_suballoc_bit = id.suballocBit;
  root.dr_suballoc_loc = id.suballocLoc;
  root.dr_free_blk = id.freeListHead;
  return root;
}

/** A new, empty dx leaf of this volume at `blkno`. */
export function newDxLeaf(blockSizeBytes: number, blkno: number, fsGeneration: number): DxLeaf {
  const leaf = emptyDxLeaf(blockSizeBytes, blkno);
  leaf.dl_fs_generation = fsGeneration;
  return leaf;
}

export function emptyDxLeaf(blockSizeBytes: number, blkno = 0): DxLeaf {
  return {
    dl_signature: signatureBytes(OCFS2_DX_LEAF_SIGNATURE), dl_check: Buffer.alloc(8), dl_blkno: blkno,
    dl_fs_generation: 0, dl_reserved0: 0, dl_reserved1: Buffer.alloc(8),
    dl_list: emptyDxEntryList(dxEntriesPerLeaf(blockSizeBytes)),
  };
}
