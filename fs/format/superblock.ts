/**
 * struct ocfs2_super_block and struct ocfs2_cluster_info. The superblock is
 * the id2 of the dinode at block OCFS2_SUPER_BLOCK_BLKNO (signature
 * "OCFSV2", i_flags has OCFS2_SUPER_BLOCK_FL); decodeDinode returns it as
 * `super`. Offsets here are relative to id2 (0xC0 in the block).
 */
import {
  COMPAT_FEATURE_NAMES, INCOMPAT_FEATURE_NAMES, OCFS2_FEATURE_COMPAT_SUPP, OCFS2_FEATURE_INCOMPAT_SUPP,
  OCFS2_FEATURE_RO_COMPAT_SUPP, OCFS2_MAX_BLOCKSIZE, OCFS2_MAX_CLUSTERSIZE, OCFS2_MIN_BLOCKSIZE,
  OCFS2_MIN_CLUSTERSIZE, RO_COMPAT_FEATURE_NAMES,
} from './constants';
import { decodeFields, Decoded, encodeFields, FormatError, omitFields, zeroFields } from './layout';

/** struct ocfs2_cluster_info (s_cluster_info). ci_reserved is the u32 view of the stackflags bytes. */
export const CLUSTER_INFO = {
  ci_stack: [0x00, 'bytes', 4],
  ci_reserved: [0x04, 'u32'],
  ci_stackflags: [0x04, 'u8'],
  ci_reserved1: [0x05, 'u8'],
  ci_reserved2: [0x06, 'u8'],
  ci_reserved3: [0x07, 'u8'],
  ci_cluster: [0x08, 'bytes', 16],
} as const;
const CLUSTER_INFO_BYTE_VIEW = omitFields(CLUSTER_INFO, ['ci_reserved']);
export type ClusterInfo = Decoded<typeof CLUSTER_INFO>;

/** struct ocfs2_super_block minus s_cluster_info (nested at 0xA0). */
export const SUPER_BLOCK = {
  s_major_rev_level: [0x00, 'u16'],
  s_minor_rev_level: [0x02, 'u16'],
  s_mnt_count: [0x04, 'u16'],
  s_max_mnt_count: [0x06, 'u16'],
  s_state: [0x08, 'u16'],
  s_errors: [0x0a, 'u16'],
  s_checkinterval: [0x0c, 'u32'],
  s_lastcheck: [0x10, 'u64'],
  s_creator_os: [0x18, 'u32'],
  s_feature_compat: [0x1c, 'u32'],
  s_feature_incompat: [0x20, 'u32'],
  s_feature_ro_compat: [0x24, 'u32'],
  s_root_blkno: [0x28, 'u64'],
  s_system_dir_blkno: [0x30, 'u64'],
  s_blocksize_bits: [0x38, 'u32'],
  s_clustersize_bits: [0x3c, 'u32'],
  s_max_slots: [0x40, 'u16'],
  s_tunefs_flag: [0x42, 'u16'],
  s_uuid_hash: [0x44, 'u32'],
  s_first_cluster_group: [0x48, 'u64'],
  s_label: [0x50, 'bytes', 64],
  s_uuid: [0x90, 'bytes', 16],
  // s_cluster_info: 0xA0..0xB8
  s_xattr_inline_size: [0xb8, 'u16'],
  s_reserved0: [0xba, 'u16'],
  s_dx_seed: [0xbc, 'u32', 3],
  s_reserved2: [0xc8, 'bytes', 15 * 8],
} as const;
export const SUPER_BLOCK_CLUSTER_INFO_OFFSET = 0xa0;
/** sizeof(struct ocfs2_super_block) */
export const SUPER_BLOCK_SIZE = 0x140;

export interface SuperBlock extends Decoded<typeof SUPER_BLOCK> {
  s_cluster_info: ClusterInfo;
}

/** Decodes the superblock struct at `base` (the id2 offset of the superblock inode). */
export function decodeSuperBlockFields(buf: Buffer, base: number, what = 'superblock'): SuperBlock {
  if (buf.length < base + SUPER_BLOCK_SIZE) throw new FormatError(`${what}: block of ${buf.length} bytes too small for the superblock`);
  const sb = decodeFields(SUPER_BLOCK, buf, base, what);
  const s_cluster_info = decodeFields(CLUSTER_INFO, buf, base + SUPER_BLOCK_CLUSTER_INFO_OFFSET, `${what}.s_cluster_info`);
  return { ...sb, s_cluster_info };
}

export function encodeSuperBlockFields(sb: SuperBlock, buf: Buffer, base: number, what = 'superblock'): void {
  encodeFields(SUPER_BLOCK, sb, buf, base, what);
  encodeFields(CLUSTER_INFO_BYTE_VIEW, sb.s_cluster_info, buf, base + SUPER_BLOCK_CLUSTER_INFO_OFFSET, `${what}.s_cluster_info`);
}

/**
 * Checks what the kernel's ocfs2_verify_volume and ocfs2_initialize_super
 * check about sizes: block size and cluster size in range, and the block
 * size the superblock claims equals the one it was read with.
 */
export function validateSuperBlock(sb: SuperBlock, readBlockSizeBytes: number, what = 'superblock'): void {
  const bs = 2 ** sb.s_blocksize_bits;
  if (bs < OCFS2_MIN_BLOCKSIZE || bs > OCFS2_MAX_BLOCKSIZE) throw new FormatError(`${what}: s_blocksize_bits ${sb.s_blocksize_bits} out of range`);
  if (bs !== readBlockSizeBytes) throw new FormatError(`${what}: s_blocksize_bits says ${bs} bytes but it was found with block size ${readBlockSizeBytes}`);
  const cs = 2 ** sb.s_clustersize_bits;
  if (cs < OCFS2_MIN_CLUSTERSIZE || cs > OCFS2_MAX_CLUSTERSIZE) throw new FormatError(`${what}: s_clustersize_bits ${sb.s_clustersize_bits} out of range`);
  if (sb.s_max_slots === 0) throw new FormatError(`${what}: s_max_slots is 0`);
}

export function emptySuperBlock(): SuperBlock {
  return { ...zeroFields(SUPER_BLOCK), s_cluster_info: zeroFields(CLUSTER_INFO) };
}

export function blockSizeOf(sb: SuperBlock): number {
  return 2 ** sb.s_blocksize_bits;
}

export function clusterSizeOf(sb: SuperBlock): number {
  return 2 ** sb.s_clustersize_bits;
}

/** The volume label (s_label up to the first NUL). */
export function labelOf(sb: SuperBlock): string {
  const end = sb.s_label.indexOf(0);
  return sb.s_label.toString('utf8', 0, end < 0 ? sb.s_label.length : end);
}

/** Names of the bits in `mask` ("0x..." for bits without a name). */
export function featureNames(mask: number, names: Readonly<Record<number, string>>): string[] {
  const out: string[] = [];
  for (let bit = 1; bit !== 0 && bit <= 0x80000000; bit = bit * 2) {
    if (bit > mask) break;
    if ((mask & bit) !== 0) out.push(names[bit] ?? `0x${bit.toString(16)}`);
  }
  return out;
}

/** Feature bits this volume carries that the kernel driver does not know (the mount refusal sets). */
export function unsupportedFeatures(sb: SuperBlock): { compat: string[]; incompat: string[]; roCompat: string[] } {
  return {
    compat: featureNames((sb.s_feature_compat & ~OCFS2_FEATURE_COMPAT_SUPP) >>> 0, COMPAT_FEATURE_NAMES),
    incompat: featureNames((sb.s_feature_incompat & ~OCFS2_FEATURE_INCOMPAT_SUPP) >>> 0, INCOMPAT_FEATURE_NAMES),
    roCompat: featureNames((sb.s_feature_ro_compat & ~OCFS2_FEATURE_RO_COMPAT_SUPP) >>> 0, RO_COMPAT_FEATURE_NAMES),
  };
}
