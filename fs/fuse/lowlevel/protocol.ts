/**
 * Numbers of the FUSE kernel protocol (include/uapi/linux/fuse.h), names as
 * in the header. Structure layouts live in structs.ts.
 *
 * Flag words above bit 31 (INIT flags 32..63) are kept as JS numbers: they
 * are combined with splitFlags/joinFlags, never with 32-bit bit operators.
 */

export const FUSE_KERNEL_VERSION = 7;
/** The protocol minor this transport speaks: every structure in structs.ts is the 7.42 layout. */
export const FUSE_KERNEL_MINOR_VERSION = 42;
/** Oldest kernel protocol accepted: 7.28 brought max_pages (1 MiB requests) and every field used here. */
export const FUSE_MIN_MINOR_VERSION = 28;

export const FUSE_ROOT_ID = 1;
/** The read buffer the kernel demands at least (FUSE_MIN_READ_BUFFER). */
export const FUSE_MIN_READ_BUFFER = 8192;

export const FuseOpcode = {
  FUSE_LOOKUP: 1,
  FUSE_FORGET: 2,
  FUSE_GETATTR: 3,
  FUSE_SETATTR: 4,
  FUSE_READLINK: 5,
  FUSE_SYMLINK: 6,
  FUSE_MKNOD: 8,
  FUSE_MKDIR: 9,
  FUSE_UNLINK: 10,
  FUSE_RMDIR: 11,
  FUSE_RENAME: 12,
  FUSE_LINK: 13,
  FUSE_OPEN: 14,
  FUSE_READ: 15,
  FUSE_WRITE: 16,
  FUSE_STATFS: 17,
  FUSE_RELEASE: 18,
  FUSE_FSYNC: 20,
  FUSE_SETXATTR: 21,
  FUSE_GETXATTR: 22,
  FUSE_LISTXATTR: 23,
  FUSE_REMOVEXATTR: 24,
  FUSE_FLUSH: 25,
  FUSE_INIT: 26,
  FUSE_OPENDIR: 27,
  FUSE_READDIR: 28,
  FUSE_RELEASEDIR: 29,
  FUSE_FSYNCDIR: 30,
  FUSE_GETLK: 31,
  FUSE_SETLK: 32,
  FUSE_SETLKW: 33,
  FUSE_ACCESS: 34,
  FUSE_CREATE: 35,
  FUSE_INTERRUPT: 36,
  FUSE_BMAP: 37,
  FUSE_DESTROY: 38,
  FUSE_IOCTL: 39,
  FUSE_POLL: 40,
  FUSE_NOTIFY_REPLY: 41,
  FUSE_BATCH_FORGET: 42,
  FUSE_FALLOCATE: 43,
  FUSE_READDIRPLUS: 44,
  FUSE_RENAME2: 45,
  FUSE_LSEEK: 46,
  FUSE_COPY_FILE_RANGE: 47,
  FUSE_SETUPMAPPING: 48,
  FUSE_REMOVEMAPPING: 49,
  FUSE_SYNCFS: 50,
  FUSE_TMPFILE: 51,
  FUSE_STATX: 52,
} as const;

const opcodeNames = new Map<number, string>(Object.entries(FuseOpcode).map(([name, n]) => [n, name.slice(5)]));

/** "WRITE" for 16; "OP_123" for an opcode this table lacks. */
export function opcodeName(opcode: number): string {
  return opcodeNames.get(opcode) ?? `OP_${opcode}`;
}

/** Requests the kernel expects no reply to. */
export const NO_REPLY_OPCODES: ReadonlySet<number> = new Set([
  FuseOpcode.FUSE_FORGET, FuseOpcode.FUSE_BATCH_FORGET, FuseOpcode.FUSE_INTERRUPT, FuseOpcode.FUSE_NOTIFY_REPLY,
]);

export const FuseNotifyCode = {
  FUSE_NOTIFY_POLL: 1,
  FUSE_NOTIFY_INVAL_INODE: 2,
  FUSE_NOTIFY_INVAL_ENTRY: 3,
  FUSE_NOTIFY_STORE: 4,
  FUSE_NOTIFY_RETRIEVE: 5,
  FUSE_NOTIFY_DELETE: 6,
} as const;

/** INIT flags (fuse_init_in/out.flags, and flags2 for bits 32..63). */
export const InitFlag = {
  FUSE_ASYNC_READ: 2 ** 0,
  FUSE_POSIX_LOCKS: 2 ** 1,
  FUSE_FILE_OPS: 2 ** 2,
  FUSE_ATOMIC_O_TRUNC: 2 ** 3,
  FUSE_EXPORT_SUPPORT: 2 ** 4,
  FUSE_BIG_WRITES: 2 ** 5,
  FUSE_DONT_MASK: 2 ** 6,
  FUSE_SPLICE_WRITE: 2 ** 7,
  FUSE_SPLICE_MOVE: 2 ** 8,
  FUSE_SPLICE_READ: 2 ** 9,
  FUSE_FLOCK_LOCKS: 2 ** 10,
  FUSE_HAS_IOCTL_DIR: 2 ** 11,
  FUSE_AUTO_INVAL_DATA: 2 ** 12,
  FUSE_DO_READDIRPLUS: 2 ** 13,
  FUSE_READDIRPLUS_AUTO: 2 ** 14,
  FUSE_ASYNC_DIO: 2 ** 15,
  FUSE_WRITEBACK_CACHE: 2 ** 16,
  FUSE_NO_OPEN_SUPPORT: 2 ** 17,
  FUSE_PARALLEL_DIROPS: 2 ** 18,
  FUSE_HANDLE_KILLPRIV: 2 ** 19,
  FUSE_POSIX_ACL: 2 ** 20,
  FUSE_ABORT_ERROR: 2 ** 21,
  FUSE_MAX_PAGES: 2 ** 22,
  FUSE_CACHE_SYMLINKS: 2 ** 23,
  FUSE_NO_OPENDIR_SUPPORT: 2 ** 24,
  FUSE_EXPLICIT_INVAL_DATA: 2 ** 25,
  FUSE_MAP_ALIGNMENT: 2 ** 26,
  FUSE_SUBMOUNTS: 2 ** 27,
  FUSE_HANDLE_KILLPRIV_V2: 2 ** 28,
  FUSE_SETXATTR_EXT: 2 ** 29,
  FUSE_INIT_EXT: 2 ** 30,
  FUSE_INIT_RESERVED: 2 ** 31,
  FUSE_SECURITY_CTX: 2 ** 32,
  FUSE_HAS_INODE_DAX: 2 ** 33,
  FUSE_CREATE_SUPP_GROUP: 2 ** 34,
  FUSE_HAS_EXPIRE_ONLY: 2 ** 35,
  FUSE_DIRECT_IO_ALLOW_MMAP: 2 ** 36,
  FUSE_PASSTHROUGH: 2 ** 37,
  FUSE_NO_EXPORT_SUPPORT: 2 ** 38,
  FUSE_HAS_RESEND: 2 ** 39,
  FUSE_ALLOW_IDMAP: 2 ** 40,
  FUSE_OVER_IO_URING: 2 ** 41,
  FUSE_REQUEST_TIMEOUT: 2 ** 42,
} as const;

export type InitFlagName = keyof typeof InitFlag;

const TWO32 = 2 ** 32;

/** A 64-bit flag word from its two 32-bit halves. */
export function joinFlags(low: number, high: number): number {
  return (high >>> 0) * TWO32 + (low >>> 0);
}

export function splitFlags(flags: number): { low: number; high: number } {
  return { low: flags % TWO32, high: Math.floor(flags / TWO32) };
}

export function hasFlag(flags: number, flag: number): boolean {
  return Math.floor(flags / flag) % 2 === 1;
}

/** The names of the set bits of an INIT flag word, lowest first (unknown bits as "bit N"). */
export function initFlagNames(flags: number): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    const value = 2 ** bit;
    if (value > flags) break;
    if (!hasFlag(flags, value)) continue;
    const name = (Object.keys(InitFlag) as InitFlagName[]).find((n) => InitFlag[n] === value);
    names.push(name ? name.slice(5) : `bit ${bit}`);
  }
  return names;
}

/** fuse_open_out.open_flags */
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_NONSEEKABLE = 1 << 2;
export const FOPEN_CACHE_DIR = 1 << 3;
export const FOPEN_STREAM = 1 << 4;
export const FOPEN_NOFLUSH = 1 << 5;
/** Since 7.38 (kernel 6.2): the kernel may send direct writes to one inode in parallel. */
export const FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6;

/** fuse_setattr_in.valid */
export const FATTR_MODE = 1 << 0;
export const FATTR_UID = 1 << 1;
export const FATTR_GID = 1 << 2;
export const FATTR_SIZE = 1 << 3;
export const FATTR_ATIME = 1 << 4;
export const FATTR_MTIME = 1 << 5;
export const FATTR_FH = 1 << 6;
export const FATTR_ATIME_NOW = 1 << 7;
export const FATTR_MTIME_NOW = 1 << 8;
export const FATTR_LOCKOWNER = 1 << 9;
export const FATTR_CTIME = 1 << 10;
export const FATTR_KILL_SUIDGID = 1 << 11;

/** fuse_getattr_in.getattr_flags */
export const FUSE_GETATTR_FH = 1 << 0;
/** fuse_release_in.release_flags */
export const FUSE_RELEASE_FLUSH = 1 << 0;
export const FUSE_RELEASE_FLOCK_UNLOCK = 1 << 1;
/** fuse_write_in.write_flags */
export const FUSE_WRITE_CACHE = 1 << 0;
export const FUSE_WRITE_LOCKOWNER = 1 << 1;
export const FUSE_WRITE_KILL_SUIDGID = 1 << 2;
/** fuse_fsync_in.fsync_flags */
export const FUSE_FSYNC_FDATASYNC = 1 << 0;

/** renameat2(2) flags as FUSE_RENAME2 carries them. */
export const RENAME_NOREPLACE = 1 << 0;
export const RENAME_EXCHANGE = 1 << 1;
export const RENAME_WHITEOUT = 1 << 2;

/** fallocate(2) modes as FUSE_FALLOCATE carries them. */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

/** lseek(2) whence values the kernel forwards (it answers SEEK_SET/CUR/END itself). */
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** Records in READDIR replies are padded to 8 bytes (FUSE_DIRENT_ALIGN). */
export function direntAlign(bytes: number): number {
  return (bytes + 7) & ~7;
}
