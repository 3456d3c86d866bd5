/**
 * Quota files (system files aquota.user/aquota.group, global, and
 * aquota.user:NNNN per slot, local). Every quota block ends in an 8-byte
 * trailer holding dq_check (OCFS2_QBLK_RESERVED_SPACE). Block 0 of each file
 * starts with struct ocfs2_disk_dqheader followed by the global or local info;
 * the global file's dquots live in a radix tree of blocks (quota_tree.h:
 * struct qt_disk_dqdbheader heads each leaf block).
 */
import { OCFS2_GLOBAL_QMAGICS, OCFS2_LOCAL_QMAGICS, OCFS2_QBLK_RESERVED_SPACE } from './constants';
import { decodeFields, Decoded, encodeFields, FormatError } from './layout';

export const USRQUOTA = 0;
export const GRPQUOTA = 1;
export const QT_TREEOFF = 1;

/** struct ocfs2_disk_dqheader */
export const DISK_DQHEADER = {
  dqh_magic: [0x00, 'u32'],
  dqh_version: [0x04, 'u32'],
} as const;
export type DiskDqheader = Decoded<typeof DISK_DQHEADER>;
/** OCFS2_GLOBAL_INFO_OFF / OCFS2_LOCAL_INFO_OFF */
export const OCFS2_GLOBAL_INFO_OFF = 8;
export const OCFS2_LOCAL_INFO_OFF = 8;

/** struct ocfs2_global_disk_dqinfo (at OCFS2_GLOBAL_INFO_OFF) */
export const GLOBAL_DISK_DQINFO = {
  dqi_bgrace: [0x00, 'u32'],
  dqi_igrace: [0x04, 'u32'],
  dqi_syncms: [0x08, 'u32'],
  dqi_blocks: [0x0c, 'u32'],
  dqi_free_blk: [0x10, 'u32'],
  dqi_free_entry: [0x14, 'u32'],
} as const;
export type GlobalDiskDqinfo = Decoded<typeof GLOBAL_DISK_DQINFO>;

/** struct ocfs2_global_disk_dqblk */
export const GLOBAL_DISK_DQBLK = {
  dqb_id: [0x00, 'u32'],
  dqb_use_count: [0x04, 'u32'],
  dqb_ihardlimit: [0x08, 'u64'],
  dqb_isoftlimit: [0x10, 'u64'],
  dqb_curinodes: [0x18, 'u64'],
  dqb_bhardlimit: [0x20, 'u64'],
  dqb_bsoftlimit: [0x28, 'u64'],
  dqb_curspace: [0x30, 'u64'],
  dqb_btime: [0x38, 'u64'],
  dqb_itime: [0x40, 'u64'],
  dqb_pad1: [0x48, 'bytes', 8],
  dqb_pad2: [0x50, 'bytes', 8],
} as const;
export const GLOBAL_DISK_DQBLK_SIZE = 0x58;
export type GlobalDiskDqblk = Decoded<typeof GLOBAL_DISK_DQBLK>;

/** struct ocfs2_local_disk_dqinfo (at OCFS2_LOCAL_INFO_OFF) */
export const LOCAL_DISK_DQINFO = {
  dqi_flags: [0x00, 'u32'],
  dqi_chunks: [0x04, 'u32'],
  dqi_blocks: [0x08, 'u32'],
} as const;
export type LocalDiskDqinfo = Decoded<typeof LOCAL_DISK_DQINFO>;

/** struct ocfs2_local_disk_chunk header; dqc_bitmap at 4. */
export const LOCAL_DISK_CHUNK = {
  dqc_free: [0x00, 'u32'],
} as const;
export const LOCAL_DISK_CHUNK_BITMAP_OFFSET = 4;

/** struct ocfs2_local_disk_dqblk */
export const LOCAL_DISK_DQBLK = {
  dqb_id: [0x00, 'u64'],
  dqb_spacemod: [0x08, 's64'],
  dqb_inodemod: [0x10, 's64'],
} as const;
export const LOCAL_DISK_DQBLK_SIZE = 0x18;
export type LocalDiskDqblk = Decoded<typeof LOCAL_DISK_DQBLK>;

/** struct qt_disk_dqdbheader (quota_tree.h): head of a global quota tree leaf block. */
export const QT_DISK_DQDBHEADER = {
  dqdh_next_free: [0x00, 'u32'],
  dqdh_prev_free: [0x04, 'u32'],
  dqdh_entries: [0x08, 'u16'],
  dqdh_pad1: [0x0a, 'u16'],
  dqdh_pad2: [0x0c, 'u32'],
} as const;
export const QT_DISK_DQDBHEADER_SIZE = 0x10;
export type QtDiskDqdbheader = Decoded<typeof QT_DISK_DQDBHEADER>;

/** struct ocfs2_disk_dqtrailer: the last 8 bytes of every quota block. */
export const DISK_DQTRAILER = {
  dq_check: [0x00, 'bytes', 8],
} as const;

/** ocfs2_block_dqtrailer: offset of the trailer in a block. */
export function quotaTrailerOffset(blockSizeBytes: number): number {
  return blockSizeBytes - OCFS2_QBLK_RESERVED_SPACE;
}

export interface GlobalQuotaHeader {
  header: DiskDqheader;
  info: GlobalDiskDqinfo;
}

export interface LocalQuotaHeader {
  header: DiskDqheader;
  info: LocalDiskDqinfo;
}

/** Block 0 of a global quota file; `type` USRQUOTA/GRPQUOTA picks the expected magic. */
export function decodeGlobalQuotaHeader(block: Buffer, type: number, what = 'global quota file'): GlobalQuotaHeader {
  const header = decodeFields(DISK_DQHEADER, block, 0, what);
  if (header.dqh_magic !== OCFS2_GLOBAL_QMAGICS[type]) {
    throw new FormatError(`${what}: dqh_magic 0x${header.dqh_magic.toString(16)} != 0x${OCFS2_GLOBAL_QMAGICS[type].toString(16)}`);
  }
  return { header, info: decodeFields(GLOBAL_DISK_DQINFO, block, OCFS2_GLOBAL_INFO_OFF, what) };
}

/** Writes the header and info over the start of the block (the rest of the block is untouched). */
export function encodeGlobalQuotaHeader(h: GlobalQuotaHeader, block: Buffer): void {
  encodeFields(DISK_DQHEADER, h.header, block, 0, 'global quota header');
  encodeFields(GLOBAL_DISK_DQINFO, h.info, block, OCFS2_GLOBAL_INFO_OFF, 'global quota info');
}

/** Block 0 of a local (per-slot) quota file. */
export function decodeLocalQuotaHeader(block: Buffer, type: number, what = 'local quota file'): LocalQuotaHeader {
  const header = decodeFields(DISK_DQHEADER, block, 0, what);
  if (header.dqh_magic !== OCFS2_LOCAL_QMAGICS[type]) {
    throw new FormatError(`${what}: dqh_magic 0x${header.dqh_magic.toString(16)} != 0x${OCFS2_LOCAL_QMAGICS[type].toString(16)}`);
  }
  return { header, info: decodeFields(LOCAL_DISK_DQINFO, block, OCFS2_LOCAL_INFO_OFF, what) };
}

export function encodeLocalQuotaHeader(h: LocalQuotaHeader, block: Buffer): void {
  encodeFields(DISK_DQHEADER, h.header, block, 0, 'local quota header');
  encodeFields(LOCAL_DISK_DQINFO, h.info, block, OCFS2_LOCAL_INFO_OFF, 'local quota info');
}
