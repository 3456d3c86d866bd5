/**
 * FUSE protocol structures as field tables (include/uapi/linux/fuse.h, 7.42
 * layouts; field names verbatim). All little-endian: the kernel speaks host
 * byte order and o2fuse runs on little-endian machines only (x86-64, arm64).
 *
 * Deviations from the header's integer kinds, on purpose:
 * - lock_owner fields are opaque 8-byte cookies (any 64-bit value), kept as bytes;
 * - times are read and written as signed 64-bit (the kernel casts them to time64_t);
 * - nested structs (fuse_attr in fuse_entry_out, fuse_entry_out in
 *   fuse_direntplus) are separate tables placed at the *_OFFSET constants.
 */
import { layoutSize, type Layout } from '../../format/layout';

export const fuse_in_header = {
  len: [0, 'u32'],
  opcode: [4, 'u32'],
  unique: [8, 'u64'],
  nodeid: [16, 'u64'],
  uid: [24, 'u32'],
  gid: [28, 'u32'],
  pid: [32, 'u32'],
  /** Length of request extensions (7.38), in 8-byte units. */
  total_extlen: [36, 'u16'],
  padding: [38, 'u16'],
} as const satisfies Layout;
export const FUSE_IN_HEADER_SIZE = 40;

export const fuse_out_header = {
  len: [0, 'u32'],
  error: [4, 's32'],
  unique: [8, 'u64'],
} as const satisfies Layout;
export const FUSE_OUT_HEADER_SIZE = 16;

export const fuse_attr = {
  ino: [0, 'u64'],
  size: [8, 'u64'],
  blocks: [16, 'u64'],
  atime: [24, 's64'],
  mtime: [32, 's64'],
  ctime: [40, 's64'],
  atimensec: [48, 'u32'],
  mtimensec: [52, 'u32'],
  ctimensec: [56, 'u32'],
  mode: [60, 'u32'],
  nlink: [64, 'u32'],
  uid: [68, 'u32'],
  gid: [72, 'u32'],
  rdev: [76, 'u32'],
  blksize: [80, 'u32'],
  flags: [84, 'u32'],
} as const satisfies Layout;
export const FUSE_ATTR_SIZE = 88;

/** fuse_entry_out without its trailing `struct fuse_attr attr` (at FUSE_ENTRY_OUT_ATTR_OFFSET). */
export const fuse_entry_out = {
  nodeid: [0, 'u64'],
  generation: [8, 'u64'],
  entry_valid: [16, 'u64'],
  attr_valid: [24, 'u64'],
  entry_valid_nsec: [32, 'u32'],
  attr_valid_nsec: [36, 'u32'],
} as const satisfies Layout;
export const FUSE_ENTRY_OUT_ATTR_OFFSET = 40;
export const FUSE_ENTRY_OUT_SIZE = FUSE_ENTRY_OUT_ATTR_OFFSET + FUSE_ATTR_SIZE;

/** fuse_attr_out without its trailing attr (at FUSE_ATTR_OUT_ATTR_OFFSET). */
export const fuse_attr_out = {
  attr_valid: [0, 'u64'],
  attr_valid_nsec: [8, 'u32'],
  dummy: [12, 'u32'],
} as const satisfies Layout;
export const FUSE_ATTR_OUT_ATTR_OFFSET = 16;
export const FUSE_ATTR_OUT_SIZE = FUSE_ATTR_OUT_ATTR_OFFSET + FUSE_ATTR_SIZE;

export const fuse_forget_in = {
  nlookup: [0, 'u64'],
} as const satisfies Layout;

export const fuse_forget_one = {
  nodeid: [0, 'u64'],
  nlookup: [8, 'u64'],
} as const satisfies Layout;
export const FUSE_FORGET_ONE_SIZE = 16;

export const fuse_batch_forget_in = {
  count: [0, 'u32'],
  dummy: [4, 'u32'],
} as const satisfies Layout;

export const fuse_getattr_in = {
  getattr_flags: [0, 'u32'],
  dummy: [4, 'u32'],
  fh: [8, 'u64'],
} as const satisfies Layout;

export const fuse_mknod_in = {
  mode: [0, 'u32'],
  rdev: [4, 'u32'],
  umask: [8, 'u32'],
  padding: [12, 'u32'],
} as const satisfies Layout;

export const fuse_mkdir_in = {
  mode: [0, 'u32'],
  umask: [4, 'u32'],
} as const satisfies Layout;

export const fuse_rename_in = {
  newdir: [0, 'u64'],
} as const satisfies Layout;

export const fuse_rename2_in = {
  newdir: [0, 'u64'],
  flags: [8, 'u32'],
  padding: [12, 'u32'],
} as const satisfies Layout;

export const fuse_link_in = {
  oldnodeid: [0, 'u64'],
} as const satisfies Layout;

export const fuse_setattr_in = {
  valid: [0, 'u32'],
  padding: [4, 'u32'],
  fh: [8, 'u64'],
  size: [16, 'u64'],
  lock_owner: [24, 'bytes', 8],
  atime: [32, 's64'],
  mtime: [40, 's64'],
  ctime: [48, 's64'],
  atimensec: [56, 'u32'],
  mtimensec: [60, 'u32'],
  ctimensec: [64, 'u32'],
  mode: [68, 'u32'],
  unused4: [72, 'u32'],
  uid: [76, 'u32'],
  gid: [80, 'u32'],
  unused5: [84, 'u32'],
} as const satisfies Layout;

export const fuse_open_in = {
  flags: [0, 'u32'],
  open_flags: [4, 'u32'],
} as const satisfies Layout;

export const fuse_create_in = {
  flags: [0, 'u32'],
  mode: [4, 'u32'],
  umask: [8, 'u32'],
  open_flags: [12, 'u32'],
} as const satisfies Layout;

export const fuse_open_out = {
  fh: [0, 'u64'],
  open_flags: [8, 'u32'],
  backing_id: [12, 's32'],
} as const satisfies Layout;

export const fuse_release_in = {
  fh: [0, 'u64'],
  flags: [8, 'u32'],
  release_flags: [12, 'u32'],
  lock_owner: [16, 'bytes', 8],
} as const satisfies Layout;

export const fuse_flush_in = {
  fh: [0, 'u64'],
  unused: [8, 'u32'],
  padding: [12, 'u32'],
  lock_owner: [16, 'bytes', 8],
} as const satisfies Layout;

export const fuse_read_in = {
  fh: [0, 'u64'],
  offset: [8, 'u64'],
  size: [16, 'u32'],
  read_flags: [20, 'u32'],
  lock_owner: [24, 'bytes', 8],
  flags: [32, 'u32'],
  padding: [36, 'u32'],
} as const satisfies Layout;

export const fuse_write_in = {
  fh: [0, 'u64'],
  offset: [8, 'u64'],
  size: [16, 'u32'],
  write_flags: [20, 'u32'],
  lock_owner: [24, 'bytes', 8],
  flags: [32, 'u32'],
  padding: [36, 'u32'],
} as const satisfies Layout;
export const FUSE_WRITE_IN_SIZE = 40;

export const fuse_write_out = {
  size: [0, 'u32'],
  padding: [4, 'u32'],
} as const satisfies Layout;

export const fuse_kstatfs = {
  blocks: [0, 'u64'],
  bfree: [8, 'u64'],
  bavail: [16, 'u64'],
  files: [24, 'u64'],
  ffree: [32, 'u64'],
  bsize: [40, 'u32'],
  namelen: [44, 'u32'],
  frsize: [48, 'u32'],
  padding: [52, 'u32'],
  spare: [56, 'u32', 6],
} as const satisfies Layout;

export const fuse_fsync_in = {
  fh: [0, 'u64'],
  fsync_flags: [8, 'u32'],
  padding: [12, 'u32'],
} as const satisfies Layout;

export const fuse_access_in = {
  mask: [0, 'u32'],
  padding: [4, 'u32'],
} as const satisfies Layout;

/** Kernels before 7.36 send only the first 16 bytes (no flags2). */
export const fuse_init_in = {
  major: [0, 'u32'],
  minor: [4, 'u32'],
  max_readahead: [8, 'u32'],
  flags: [12, 'u32'],
  flags2: [16, 'u32'],
  unused: [20, 'u32', 11],
} as const satisfies Layout;
export const FUSE_INIT_IN_SIZE = 64;

export const fuse_init_out = {
  major: [0, 'u32'],
  minor: [4, 'u32'],
  max_readahead: [8, 'u32'],
  flags: [12, 'u32'],
  max_background: [16, 'u16'],
  congestion_threshold: [18, 'u16'],
  max_write: [20, 'u32'],
  time_gran: [24, 'u32'],
  max_pages: [28, 'u16'],
  map_alignment: [30, 'u16'],
  flags2: [32, 'u32'],
  max_stack_depth: [36, 'u32'],
  request_timeout: [40, 'u16'],
  unused: [42, 'u16', 11],
} as const satisfies Layout;
export const FUSE_INIT_OUT_SIZE = 64;
/** Reply sizes older protocols expect (FUSE_COMPAT_INIT_OUT_SIZE, FUSE_COMPAT_22_INIT_OUT_SIZE). */
export const FUSE_COMPAT_INIT_OUT_SIZE = 8;
export const FUSE_COMPAT_22_INIT_OUT_SIZE = 24;

export const fuse_interrupt_in = {
  unique: [0, 'u64'],
} as const satisfies Layout;

export const fuse_fallocate_in = {
  fh: [0, 'u64'],
  offset: [8, 'u64'],
  length: [16, 'u64'],
  mode: [24, 'u32'],
  padding: [28, 'u32'],
} as const satisfies Layout;

export const fuse_lseek_in = {
  fh: [0, 'u64'],
  offset: [8, 'u64'],
  whence: [16, 'u32'],
  padding: [20, 'u32'],
} as const satisfies Layout;

export const fuse_lseek_out = {
  offset: [0, 'u64'],
} as const satisfies Layout;

/** Followed by `namelen` name bytes, the record padded to 8 bytes. */
export const fuse_dirent = {
  ino: [0, 'u64'],
  off: [8, 'u64'],
  namelen: [16, 'u32'],
  type: [20, 'u32'],
} as const satisfies Layout;
export const FUSE_NAME_OFFSET = 24;
/** fuse_direntplus: a fuse_entry_out, then a fuse_dirent. */
export const FUSE_DIRENTPLUS_DIRENT_OFFSET = FUSE_ENTRY_OUT_SIZE;
export const FUSE_NAME_OFFSET_DIRENTPLUS = FUSE_DIRENTPLUS_DIRENT_OFFSET + FUSE_NAME_OFFSET;

export const fuse_notify_inval_inode_out = {
  ino: [0, 'u64'],
  off: [8, 's64'],
  len: [16, 's64'],
} as const satisfies Layout;

/** Followed by the name and a NUL. */
export const fuse_notify_inval_entry_out = {
  parent: [0, 'u64'],
  namelen: [8, 'u32'],
  flags: [12, 'u32'],
} as const satisfies Layout;

/** Followed by the name and a NUL. */
export const fuse_notify_delete_out = {
  parent: [0, 'u64'],
  child: [8, 'u64'],
  namelen: [16, 'u32'],
  padding: [20, 'u32'],
} as const satisfies Layout;

/** sizeof() of each table as the C header has it, for the layout test. */
export const STRUCT_SIZES: ReadonlyArray<readonly [string, Layout, number]> = [
  ['fuse_in_header', fuse_in_header, 40],
  ['fuse_out_header', fuse_out_header, 16],
  ['fuse_attr', fuse_attr, FUSE_ATTR_SIZE],
  ['fuse_entry_out (head)', fuse_entry_out, FUSE_ENTRY_OUT_ATTR_OFFSET],
  ['fuse_attr_out (head)', fuse_attr_out, FUSE_ATTR_OUT_ATTR_OFFSET],
  ['fuse_forget_in', fuse_forget_in, 8],
  ['fuse_forget_one', fuse_forget_one, 16],
  ['fuse_batch_forget_in', fuse_batch_forget_in, 8],
  ['fuse_getattr_in', fuse_getattr_in, 16],
  ['fuse_mknod_in', fuse_mknod_in, 16],
  ['fuse_mkdir_in', fuse_mkdir_in, 8],
  ['fuse_rename_in', fuse_rename_in, 8],
  ['fuse_rename2_in', fuse_rename2_in, 16],
  ['fuse_link_in', fuse_link_in, 8],
  ['fuse_setattr_in', fuse_setattr_in, 88],
  ['fuse_open_in', fuse_open_in, 8],
  ['fuse_create_in', fuse_create_in, 16],
  ['fuse_open_out', fuse_open_out, 16],
  ['fuse_release_in', fuse_release_in, 24],
  ['fuse_flush_in', fuse_flush_in, 24],
  ['fuse_read_in', fuse_read_in, 40],
  ['fuse_write_in', fuse_write_in, FUSE_WRITE_IN_SIZE],
  ['fuse_write_out', fuse_write_out, 8],
  ['fuse_kstatfs', fuse_kstatfs, 80],
  ['fuse_fsync_in', fuse_fsync_in, 16],
  ['fuse_access_in', fuse_access_in, 8],
  ['fuse_init_in', fuse_init_in, FUSE_INIT_IN_SIZE],
  ['fuse_init_out', fuse_init_out, FUSE_INIT_OUT_SIZE],
  ['fuse_interrupt_in', fuse_interrupt_in, 8],
  ['fuse_fallocate_in', fuse_fallocate_in, 32],
  ['fuse_lseek_in', fuse_lseek_in, 24],
  ['fuse_lseek_out', fuse_lseek_out, 8],
  ['fuse_dirent (head)', fuse_dirent, FUSE_NAME_OFFSET],
  ['fuse_notify_inval_inode_out', fuse_notify_inval_inode_out, 24],
  ['fuse_notify_inval_entry_out', fuse_notify_inval_entry_out, 16],
  ['fuse_notify_delete_out', fuse_notify_delete_out, 24],
];

/** Bytes a table covers (sizeof, for tables without tail padding). */
export function sizeOf(layout: Layout): number {
  return layoutSize(layout);
}
