/**
 * The superblock inode of a new volume (block 2, signature OCFSV2) and its
 * backups. Values follow mkfs.ocfs2's format_superblock: revision 0.90,
 * max mount count 20, check interval 0, creator OS Linux, i_clusters = the
 * volume's clusters, LOCAL_MOUNT for -M local, cluster info for a named
 * stack (o2cb: CLUSTERINFO; others: USERSPACE_STACK; both imply the
 * extended slot map), s_uuid_hash with xattr or indexed-dirs, random
 * s_dx_seed with indexed-dirs, s_xattr_inline_size 256 with xattr.
 */
import {
  OCFS2_CLUSTER_NAME_LEN, OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT, OCFS2_FEATURE_COMPAT_BACKUP_SB,
  OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_XATTR, OCFS2_MAJOR_REV_LEVEL, OCFS2_MINOR_REV_LEVEL,
  OCFS2_MIN_XATTR_INLINE_SIZE, OCFS2_STACK_LABEL_LEN, OCFS2_SUPER_BLOCK_BLKNO, OCFS2_SUPER_BLOCK_FL,
  OCFS2_SUPER_BLOCK_SIGNATURE, OCFS2_SYSTEM_FL, OCFS2_VALID_FL,
} from '../format/constants';
import { Dinode, emptyDinode, encodeDinode } from '../format/dinode';
import { signatureBytes } from '../format/layout';
import { emptySuperBlock } from '../format/superblock';
import { FeatureSet } from './features';
import { Geometry } from './geometry';

/** mkfs.h OCFS2_DFL_MAX_MNT_COUNT */
const DEFAULT_MAX_MOUNT_COUNT = 20;
const OCFS2_OS_LINUX = 0;
/** OCFS2_HASH_SHIFT */
const UUID_HASH_SHIFT = 5;

/** ocfs2_xattr_uuid_hash: the seed of xattr name hashes and the 4th dx seed word. */
export function uuidHash(uuid: Buffer): number {
  let hash = 0;
  for (const byte of uuid) hash = ((hash << UUID_HASH_SHIFT) ^ (hash >>> (32 - UUID_HASH_SHIFT)) ^ byte) >>> 0;
  return hash;
}

export interface ClusterStackInfo {
  stack: string;
  name: string;
  globalHeartbeat: boolean;
}

export interface SuperblockInput {
  geometry: Geometry;
  features: FeatureSet;
  label: string;
  uuid: Buffer;
  fsGeneration: number;
  nowSeconds: number;
  rootBlkno: number;
  systemDirBlkno: number;
  /** Three random words (used with indexed-dirs). */
  dxSeed: [number, number, number];
  cluster?: ClusterStackInfo;
}

export function superblockDinode(input: SuperblockInput): Dinode {
  const g = input.geometry;
  const d = emptyDinode(g.blockSizeBytes, OCFS2_SUPER_BLOCK_BLKNO);
  delete d.list;
  d.i_signature = signatureBytes(OCFS2_SUPER_BLOCK_SIGNATURE);
  d.i_suballoc_slot = 0xffff;
  d.i_suballoc_bit = 0xffff;
  d.i_generation = input.fsGeneration;
  d.i_fs_generation = input.fsGeneration;
  d.i_ctime = d.i_mtime = input.nowSeconds;
  d.i_flags = OCFS2_VALID_FL | OCFS2_SYSTEM_FL | OCFS2_SUPER_BLOCK_FL;
  d.i_clusters = g.totalClusters;

  const sb = emptySuperBlock();
  sb.s_major_rev_level = OCFS2_MAJOR_REV_LEVEL;
  sb.s_minor_rev_level = OCFS2_MINOR_REV_LEVEL;
  sb.s_max_mnt_count = DEFAULT_MAX_MOUNT_COUNT;
  sb.s_lastcheck = input.nowSeconds;
  sb.s_creator_os = OCFS2_OS_LINUX;
  sb.s_feature_compat = input.features.compat;
  sb.s_feature_incompat = input.features.incompat;
  sb.s_feature_ro_compat = input.features.roCompat;
  sb.s_root_blkno = input.rootBlkno;
  sb.s_system_dir_blkno = input.systemDirBlkno;
  sb.s_blocksize_bits = g.blockSizeBits;
  sb.s_clustersize_bits = g.clusterSizeBits;
  sb.s_max_slots = g.slots;
  sb.s_first_cluster_group = g.firstClusterGroupBlkno;
  const label = Buffer.from(input.label, 'utf8');
  if (label.length >= sb.s_label.length) throw new RangeError(`label of ${label.length} bytes does not fit`);
  sb.s_label = Buffer.alloc(sb.s_label.length);
  label.copy(sb.s_label);
  sb.s_uuid = Buffer.from(input.uuid);
  const incompat = input.features.incompat;
  if (incompat & (OCFS2_FEATURE_INCOMPAT_XATTR | OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS)) sb.s_uuid_hash = uuidHash(input.uuid);
  if (incompat & OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS) sb.s_dx_seed = input.dxSeed.map((w) => w >>> 0);
  if (incompat & OCFS2_FEATURE_INCOMPAT_XATTR) sb.s_xattr_inline_size = OCFS2_MIN_XATTR_INLINE_SIZE;
  if (input.cluster) {
    const ci = sb.s_cluster_info;
    ci.ci_stack = Buffer.alloc(OCFS2_STACK_LABEL_LEN);
    Buffer.from(input.cluster.stack, 'latin1').copy(ci.ci_stack);
    ci.ci_cluster = Buffer.alloc(OCFS2_CLUSTER_NAME_LEN);
    Buffer.from(input.cluster.name, 'utf8').copy(ci.ci_cluster);
    ci.ci_stackflags = input.cluster.globalHeartbeat ? OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT : 0;
    ci.ci_reserved = ci.ci_stackflags;
  }
  d.super = sb;
  return d;
}

/** The superblock block at `blkno`: the primary (block 2) or a backup (BACKUP_SB set, i_blkno its own block). */
export function superblockBlock(d: Dinode, blkno: number, blockSizeBytes: number): Buffer {
  const copy: Dinode = { ...d, i_blkno: blkno };
  if (blkno !== OCFS2_SUPER_BLOCK_BLKNO && copy.super) {
    copy.super = { ...copy.super, s_feature_compat: (copy.super.s_feature_compat | OCFS2_FEATURE_COMPAT_BACKUP_SB) >>> 0 };
  }
  const block = Buffer.alloc(blockSizeBytes);
  encodeDinode(copy, block);
  return block;
}
