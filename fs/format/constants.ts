/**
 * OCFS2 on-disk constants, with the names of /usr/include/ocfs2-kernel/ocfs2_fs.h.
 * Values only; structures live in their own files.
 */

export const OCFS2_MAJOR_REV_LEVEL = 0;
export const OCFS2_MINOR_REV_LEVEL = 90;

/** In blocks, not sectors: the superblock is at byte 2 * blocksize. */
export const OCFS2_SUPER_BLOCK_BLKNO = 2;

export const OCFS2_MIN_CLUSTERSIZE = 4096;
export const OCFS2_MAX_CLUSTERSIZE = 1048576;
export const OCFS2_MIN_BLOCKSIZE = 512;
export const OCFS2_MAX_BLOCKSIZE = OCFS2_MIN_CLUSTERSIZE;

export const OCFS2_SUPER_MAGIC = 0x7461636f;

// Signatures (the C strings; on disk they are NUL-padded to 8 bytes).
export const OCFS2_SUPER_BLOCK_SIGNATURE = 'OCFSV2';
export const OCFS2_INODE_SIGNATURE = 'INODE01';
export const OCFS2_EXTENT_BLOCK_SIGNATURE = 'EXBLK01';
export const OCFS2_GROUP_DESC_SIGNATURE = 'GROUP01';
export const OCFS2_XATTR_BLOCK_SIGNATURE = 'XATTR01';
export const OCFS2_DIR_TRAILER_SIGNATURE = 'DIRTRL1';
export const OCFS2_DX_ROOT_SIGNATURE = 'DXDIR01';
export const OCFS2_DX_LEAF_SIGNATURE = 'DXLEAF1';
export const OCFS2_REFCOUNT_BLOCK_SIGNATURE = 'REFCNT1';

// s_feature_incompat
export const OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV = 0x0002;
export const OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG = 0x0004;
export const OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT = 0x0008;
export const OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC = 0x0010;
export const OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG = 0x0020;
export const OCFS2_FEATURE_INCOMPAT_INLINE_DATA = 0x0040;
export const OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK = 0x0080;
export const OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP = 0x0100;
export const OCFS2_FEATURE_INCOMPAT_XATTR = 0x0200;
export const OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS = 0x0400;
export const OCFS2_FEATURE_INCOMPAT_META_ECC = 0x0800;
export const OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE = 0x1000;
export const OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG = 0x2000;
export const OCFS2_FEATURE_INCOMPAT_CLUSTERINFO = 0x4000;
export const OCFS2_FEATURE_INCOMPAT_APPEND_DIO = 0x8000;

// s_feature_compat
export const OCFS2_FEATURE_COMPAT_BACKUP_SB = 0x0001;
export const OCFS2_FEATURE_COMPAT_JBD2_SB = 0x0002;

// s_feature_ro_compat
export const OCFS2_FEATURE_RO_COMPAT_UNWRITTEN = 0x0001;
export const OCFS2_FEATURE_RO_COMPAT_USRQUOTA = 0x0002;
export const OCFS2_FEATURE_RO_COMPAT_GRPQUOTA = 0x0004;

/** What the kernel driver supports (ocfs2_fs.h *_SUPP): the mount-time refusal sets. */
export const OCFS2_FEATURE_COMPAT_SUPP = OCFS2_FEATURE_COMPAT_BACKUP_SB | OCFS2_FEATURE_COMPAT_JBD2_SB;
export const OCFS2_FEATURE_INCOMPAT_SUPP =
  OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT | OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC | OCFS2_FEATURE_INCOMPAT_INLINE_DATA |
  OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP | OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK | OCFS2_FEATURE_INCOMPAT_XATTR |
  OCFS2_FEATURE_INCOMPAT_META_ECC | OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS | OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE |
  OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG | OCFS2_FEATURE_INCOMPAT_CLUSTERINFO | OCFS2_FEATURE_INCOMPAT_APPEND_DIO;
export const OCFS2_FEATURE_RO_COMPAT_SUPP =
  OCFS2_FEATURE_RO_COMPAT_UNWRITTEN | OCFS2_FEATURE_RO_COMPAT_USRQUOTA | OCFS2_FEATURE_RO_COMPAT_GRPQUOTA;

/** Feature bit -> name, for messages that must name the feature ("refusing: unknown incompat 0x...") */
export const INCOMPAT_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV]: 'heartbeat-device',
  [OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG]: 'resize-in-progress',
  [OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT]: 'local',
  [OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC]: 'sparse',
  [OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG]: 'tunefs-in-progress',
  [OCFS2_FEATURE_INCOMPAT_INLINE_DATA]: 'inline-data',
  [OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK]: 'userspace-stack',
  [OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP]: 'extended-slotmap',
  [OCFS2_FEATURE_INCOMPAT_XATTR]: 'xattr',
  [OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS]: 'indexed-dirs',
  [OCFS2_FEATURE_INCOMPAT_META_ECC]: 'metaecc',
  [OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE]: 'refcount',
  [OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG]: 'discontig-bg',
  [OCFS2_FEATURE_INCOMPAT_CLUSTERINFO]: 'clusterinfo',
  [OCFS2_FEATURE_INCOMPAT_APPEND_DIO]: 'append-dio',
};
export const COMPAT_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [OCFS2_FEATURE_COMPAT_BACKUP_SB]: 'backup-super',
  [OCFS2_FEATURE_COMPAT_JBD2_SB]: 'strict-journal-super',
};
export const RO_COMPAT_FEATURE_NAMES: Readonly<Record<number, string>> = {
  [OCFS2_FEATURE_RO_COMPAT_UNWRITTEN]: 'unwritten',
  [OCFS2_FEATURE_RO_COMPAT_USRQUOTA]: 'usrquota',
  [OCFS2_FEATURE_RO_COMPAT_GRPQUOTA]: 'grpquota',
};

/** First backup superblock at 1 GiB, then 4G, 16G, 64G, 256G, 1T. */
export const OCFS2_BACKUP_SB_START = 1 << 30;
export const OCFS2_MAX_BACKUP_SUPERBLOCKS = 6;

/** Block number of backup superblock `index` (0..5), 0 when out of range (ocfs2_backup_super_blkno). */
export function backupSuperBlkno(blockSizeBytes: number, index: number): number {
  if (index < 0 || index >= OCFS2_MAX_BACKUP_SUPERBLOCKS) return 0;
  return (OCFS2_BACKUP_SB_START * 4 ** index) / blockSizeBytes;
}

// s_tunefs_flag
export const OCFS2_TUNEFS_INPROG_REMOVE_SLOT = 0x0001;
export const OCFS2_TUNEFS_INPROG_DIR_TRAILER = 0x0002;

// i_flags
export const OCFS2_VALID_FL = 0x00000001;
export const OCFS2_UNUSED2_FL = 0x00000002;
export const OCFS2_ORPHANED_FL = 0x00000004;
export const OCFS2_UNUSED3_FL = 0x00000008;
export const OCFS2_SYSTEM_FL = 0x00000010;
export const OCFS2_SUPER_BLOCK_FL = 0x00000020;
export const OCFS2_LOCAL_ALLOC_FL = 0x00000040;
export const OCFS2_BITMAP_FL = 0x00000080;
export const OCFS2_JOURNAL_FL = 0x00000100;
export const OCFS2_HEARTBEAT_FL = 0x00000200;
export const OCFS2_CHAIN_FL = 0x00000400;
export const OCFS2_DEALLOC_FL = 0x00000800;
export const OCFS2_QUOTA_FL = 0x00001000;
export const OCFS2_DIO_ORPHANED_FL = 0x00002000;

// i_dyn_features (16 bits)
export const OCFS2_INLINE_DATA_FL = 0x0001;
export const OCFS2_HAS_XATTR_FL = 0x0002;
export const OCFS2_INLINE_XATTR_FL = 0x0004;
export const OCFS2_INDEXED_DIR_FL = 0x0008;
export const OCFS2_HAS_REFCOUNT_FL = 0x0010;

// i_attr: the ext2 FS_*_FL values (chattr flags)
export const OCFS2_SECRM_FL = 0x00000001;
export const OCFS2_UNRM_FL = 0x00000002;
export const OCFS2_COMPR_FL = 0x00000004;
export const OCFS2_SYNC_FL = 0x00000008;
export const OCFS2_IMMUTABLE_FL = 0x00000010;
export const OCFS2_APPEND_FL = 0x00000020;
export const OCFS2_NODUMP_FL = 0x00000040;
export const OCFS2_NOATIME_FL = 0x00000080;
export const OCFS2_DIRTY_FL = 0x00000100;
export const OCFS2_COMPRBLK_FL = 0x00000200;
export const OCFS2_NOCOMP_FL = 0x00000400;
export const OCFS2_ECOMPR_FL = 0x00000800;
export const OCFS2_BTREE_FL = 0x00001000;
export const OCFS2_INDEX_FL = 0x00001000;
export const OCFS2_IMAGIC_FL = 0x00002000;
export const OCFS2_JOURNAL_DATA_FL = 0x00004000;
export const OCFS2_NOTAIL_FL = 0x00008000;
export const OCFS2_DIRSYNC_FL = 0x00010000;
export const OCFS2_TOPDIR_FL = 0x00020000;
export const OCFS2_RESERVED_FL = 0x80000000;
export const OCFS2_FL_VISIBLE = 0x0003dfff;
export const OCFS2_FL_MODIFIABLE = 0x000380ff;

// Extent record e_flags (leaf records only)
export const OCFS2_EXT_UNWRITTEN = 0x01;
export const OCFS2_EXT_REFCOUNTED = 0x02;

// id1.journal1.ij_flags
export const OCFS2_JOURNAL_DIRTY_FL = 0x00000001;

// s_state
export const OCFS2_ERROR_FS = 0x00000001;

export const OCFS2_MAX_FILENAME_LEN = 255;
export const OCFS2_MAX_SLOTS = 255;
export const OCFS2_INVALID_SLOT = -1;
export const OCFS2_VOL_UUID_LEN = 16;
export const OCFS2_MAX_VOL_LABEL_LEN = 64;
export const OCFS2_STACK_LABEL_LEN = 4;
export const OCFS2_CLUSTER_NAME_LEN = 16;

export const OCFS2_MIN_JOURNAL_SIZE = 4 * 1024 * 1024;
export const OCFS2_MIN_CLUSTER_TO_JOURNAL_SIZE_SHIFT = 3;
export const OCFS2_DEFAULT_LOCAL_ALLOC_SIZE = 8; // MiB
export const OCFS2_MIN_XATTR_INLINE_SIZE = 256;

// ci_stackflags
export const OCFS2_CLUSTER_O2CB_GLOBAL_HEARTBEAT = 0x01;

export const OCFS2_LINK_MAX = 32000;
export const OCFS2_DX_LINK_MAX = 2 ** 31 - 1;
export const OCFS2_LINKS_HI_SHIFT = 16;
export const OCFS2_DX_ENTRIES_MAX = 0xffffffff;

// Directory file types (low 3 bits of file_type)
export const OCFS2_FT_UNKNOWN = 0;
export const OCFS2_FT_REG_FILE = 1;
export const OCFS2_FT_DIR = 2;
export const OCFS2_FT_CHRDEV = 3;
export const OCFS2_FT_BLKDEV = 4;
export const OCFS2_FT_FIFO = 5;
export const OCFS2_FT_SOCK = 6;
export const OCFS2_FT_SYMLINK = 7;
export const OCFS2_FT_MAX = 8;

// POSIX mode bits (i_mode is the Linux st_mode)
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

const TYPE_BY_MODE: Readonly<Record<number, number>> = {
  [S_IFREG]: OCFS2_FT_REG_FILE,
  [S_IFDIR]: OCFS2_FT_DIR,
  [S_IFCHR]: OCFS2_FT_CHRDEV,
  [S_IFBLK]: OCFS2_FT_BLKDEV,
  [S_IFIFO]: OCFS2_FT_FIFO,
  [S_IFSOCK]: OCFS2_FT_SOCK,
  [S_IFLNK]: OCFS2_FT_SYMLINK,
};

/** The dirent file_type for an i_mode (ocfs2_set_de_type). */
export function ocfs2TypeByMode(mode: number): number {
  return TYPE_BY_MODE[mode & S_IFMT] ?? OCFS2_FT_UNKNOWN;
}

// Quota files
export const OCFS2_GLOBAL_QMAGICS: readonly number[] = [0x0cf52470 /* USRQUOTA */, 0x0cf52471 /* GRPQUOTA */];
export const OCFS2_GLOBAL_QVERSIONS: readonly number[] = [0, 0];
export const OCFS2_LOCAL_QMAGICS: readonly number[] = [0x0cf524c0 /* USRQUOTA */, 0x0cf524c1 /* GRPQUOTA */];
export const OCFS2_LOCAL_QVERSIONS: readonly number[] = [0, 0];
export const OCFS2_QBLK_RESERVED_SPACE = 8;
export const OLQF_CLEAN = 0x0001;

// Heartbeat mount parameters
export const OCFS2_HB_NONE = 'heartbeat=none';
export const OCFS2_HB_LOCAL = 'heartbeat=local';
export const OCFS2_HB_GLOBAL = 'heartbeat=global';

// System inodes: the C enum, in order.
export const BAD_BLOCK_SYSTEM_INODE = 0;
export const GLOBAL_INODE_ALLOC_SYSTEM_INODE = 1;
export const SLOT_MAP_SYSTEM_INODE = 2;
export const HEARTBEAT_SYSTEM_INODE = 3;
export const GLOBAL_BITMAP_SYSTEM_INODE = 4;
export const USER_QUOTA_SYSTEM_INODE = 5;
export const GROUP_QUOTA_SYSTEM_INODE = 6;
export const ORPHAN_DIR_SYSTEM_INODE = 7;
export const EXTENT_ALLOC_SYSTEM_INODE = 8;
export const INODE_ALLOC_SYSTEM_INODE = 9;
export const JOURNAL_SYSTEM_INODE = 10;
export const LOCAL_ALLOC_SYSTEM_INODE = 11;
export const TRUNCATE_LOG_SYSTEM_INODE = 12;
export const LOCAL_USER_QUOTA_SYSTEM_INODE = 13;
export const LOCAL_GROUP_QUOTA_SYSTEM_INODE = 14;
export const NUM_SYSTEM_INODES = 15;
export const OCFS2_FIRST_ONLINE_SYSTEM_INODE = SLOT_MAP_SYSTEM_INODE;
export const OCFS2_LAST_GLOBAL_SYSTEM_INODE = GROUP_QUOTA_SYSTEM_INODE;
export const OCFS2_FIRST_LOCAL_SYSTEM_INODE = ORPHAN_DIR_SYSTEM_INODE;
export const OCFS2_LAST_LOCAL_SYSTEM_INODE = LOCAL_GROUP_QUOTA_SYSTEM_INODE;
export const NUM_GLOBAL_SYSTEM_INODES = OCFS2_FIRST_LOCAL_SYSTEM_INODE;
export const NUM_LOCAL_SYSTEM_INODES = NUM_SYSTEM_INODES - OCFS2_FIRST_LOCAL_SYSTEM_INODE;

export interface SystemInodeInfo {
  /** Name, with "%04d" standing for the slot in per-slot files. */
  readonly si_name: string;
  /** i_flags the file carries besides VALID|SYSTEM (the C table's si_iflags). */
  readonly si_iflags: number;
  readonly si_mode: number;
  /** One copy for the volume (true) or one per slot. */
  readonly global: boolean;
}

function sys(si_name: string, si_iflags: number, si_mode: number, global: boolean): SystemInodeInfo {
  return { si_name, si_iflags, si_mode, global };
}

/** ocfs2_system_inodes[], indexed by the enum above. */
export const OCFS2_SYSTEM_INODES: readonly SystemInodeInfo[] = [
  sys('bad_blocks', 0, S_IFREG | 0o644, true),
  sys('global_inode_alloc', OCFS2_BITMAP_FL | OCFS2_CHAIN_FL, S_IFREG | 0o644, true),
  sys('slot_map', 0, S_IFREG | 0o644, true),
  sys('heartbeat', OCFS2_HEARTBEAT_FL, S_IFREG | 0o644, true),
  sys('global_bitmap', 0, S_IFREG | 0o644, true),
  sys('aquota.user', OCFS2_QUOTA_FL, S_IFREG | 0o644, true),
  sys('aquota.group', OCFS2_QUOTA_FL, S_IFREG | 0o644, true),
  sys('orphan_dir:%04d', 0, S_IFDIR | 0o755, false),
  sys('extent_alloc:%04d', OCFS2_BITMAP_FL | OCFS2_CHAIN_FL, S_IFREG | 0o644, false),
  sys('inode_alloc:%04d', OCFS2_BITMAP_FL | OCFS2_CHAIN_FL, S_IFREG | 0o644, false),
  sys('journal:%04d', OCFS2_JOURNAL_FL, S_IFREG | 0o644, false),
  sys('local_alloc:%04d', OCFS2_BITMAP_FL | OCFS2_LOCAL_ALLOC_FL, S_IFREG | 0o644, false),
  sys('truncate_log:%04d', OCFS2_DEALLOC_FL, S_IFREG | 0o644, false),
  sys('aquota.user:%04d', OCFS2_QUOTA_FL, S_IFREG | 0o644, false),
  sys('aquota.group:%04d', OCFS2_QUOTA_FL, S_IFREG | 0o644, false),
];

/** ocfs2_system_inode_is_global */
export function systemInodeIsGlobal(index: number): boolean {
  return index >= 0 && index <= OCFS2_LAST_GLOBAL_SYSTEM_INODE;
}

/** The system directory name of system inode `index` for `slot` (ignored for global ones): "journal:0001". */
export function systemInodeName(index: number, slot = 0): string {
  const info = OCFS2_SYSTEM_INODES[index];
  if (!info) throw new RangeError(`no system inode with index ${index}`);
  if (info.global) return info.si_name;
  if (!Number.isInteger(slot) || slot < 0 || slot > 9999) throw new RangeError(`slot ${slot} out of range`);
  return info.si_name.replace('%04d', String(slot).padStart(4, '0'));
}
