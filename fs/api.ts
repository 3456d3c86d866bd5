/**
 * The engine's face to its adapters (FUSE transports, tools, tests).
 *
 * Everything is addressed by inode number (the OCFS2 inode's block number) and
 * names are raw bytes, as on disk. Every method is async and may run
 * concurrently with any other; the engine does its own locking. Failures are
 * FsError (fs/errors.ts) carrying the errno the kernel's OCFS2 would return.
 */
import type { BlockCacheStats } from '../cache/blockCache';
import type { PageCacheStats } from '../cache/pageCache';
import type { DeviceStats } from '../io/baseDevice';
import type { GateStats } from '../io/unalignedGate';
import type { JournalStats } from './journal/journal';

/** A live engine's counters, each layer's own, since the mount (`o2fuse stats`). */
export interface EngineStats {
  /** Null for a device that keeps no counters. */
  device: DeviceStats | null;
  blockCache: BlockCacheStats;
  pageCache: PageCacheStats;
  /** The unaligned direct-write rule: how many writes counted in, and how many had to wait. */
  unalignedGate: GateStats;
  /** Null on a read-only mount (no journal open). */
  journal: JournalStats | null;
}

export interface Timespec {
  sec: number;
  nsec: number;
}

export interface Attr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  /** 512-byte units allocated, as st_blocks. */
  blocks: number;
  blksize: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  generation: number;
}

/** A directory entry as readdir returns it; `type` is the S_IFMT bits of the mode (0 if unknown). */
export interface DirEntry {
  name: Buffer;
  ino: number;
  type: number;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namemax: number;
}

export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** 'now' stamps the current time. */
  atime?: Timespec | 'now';
  mtime?: Timespec | 'now';
}

/** Who is asking, for ownership of new inodes. */
export interface Caller {
  uid: number;
  gid: number;
}

export interface Engine {
  readonly rootIno: number;
  readonly readOnly: boolean;
  readonly blockSize: number;

  lookup(parent: number, name: Buffer): Promise<Attr>;
  getattr(ino: number): Promise<Attr>;
  /** All entries including "." and "..", in on-disk order. */
  readdir(ino: number): Promise<DirEntry[]>;
  readlink(ino: number): Promise<Buffer>;
  statfs(): Promise<StatFs>;

  /** Opens a file; flags are open(2) flags (O_DIRECT matters). Returns a handle number. */
  open(ino: number, flags: number): Promise<number>;
  /**
   * Reads up to `length` bytes. With `into` (at least `length` bytes, e.g. the
   * transport's reply buffer) the bytes land there and the result is a view of
   * it: a streaming reader then leaves no garbage behind.
   */
  read(ino: number, fh: number, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * Writes `data`, which the engine reads only until the returned promise settles (it keeps no reference).
   * `cached`: the kernel writing back its page cache (FUSE writeback cache): buffered whatever the handle's flags.
   * `accepted`: called, at most once, when a buffered write's outcome is settled before its device write is done
   * (fs/fileIo.ts, bufferedWrite): the caller may answer then; an error of that device write is reported by the
   * next fsync, as a write-back error, and the promise still resolves with the count.
   */
  write(ino: number, fh: number, offset: number, data: Buffer,
    opts?: { cached?: boolean; accepted?: (written: number) => void }): Promise<number>;
  flush(ino: number, fh: number): Promise<void>;
  fsync(ino: number, fh: number, datasync: boolean): Promise<void>;
  release(ino: number, fh: number): Promise<void>;

  create(parent: number, name: Buffer, mode: number, flags: number, caller: Caller): Promise<{ attr: Attr; fh: number }>;
  mknod(parent: number, name: Buffer, mode: number, rdev: number, caller: Caller): Promise<Attr>;
  mkdir(parent: number, name: Buffer, mode: number, caller: Caller): Promise<Attr>;
  symlink(parent: number, name: Buffer, target: Buffer, caller: Caller): Promise<Attr>;
  link(ino: number, newParent: number, newName: Buffer): Promise<Attr>;
  unlink(parent: number, name: Buffer): Promise<void>;
  rmdir(parent: number, name: Buffer): Promise<void>;
  /** flags: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2). */
  rename(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number): Promise<void>;
  setattr(ino: number, changes: SetAttr): Promise<Attr>;
  fsyncdir(ino: number, datasync: boolean): Promise<void>;

  /**
   * fallocate(2): mode 0 (preallocate, may grow i_size), FALLOC_FL_KEEP_SIZE (1),
   * FALLOC_FL_PUNCH_HOLE|KEEP_SIZE (3), FALLOC_FL_ZERO_RANGE (0x10, optionally |KEEP_SIZE).
   * Optional: transports answer EOPNOTSUPP for an engine without it.
   */
  fallocate?(ino: number, fh: number, offset: number, length: number, mode: number): Promise<void>;
  /** lseek(2) SEEK_DATA (3) / SEEK_HOLE (4): the resulting offset; ENXIO at or past i_size. Optional. */
  lseek?(ino: number, fh: number, offset: number, whence: number): Promise<number>;
  /**
   * A live remount: read-write <-> read-only and the atime policy (bin/daemon.ts changes the kernel's flags).
   * Optional: the daemon refuses such a remount with a message for an engine without it.
   */
  remount?(o: { readOnly: boolean; atime?: 'relatime' | 'noatime' | 'strictatime'; nodiratime?: boolean }): Promise<void>;
  /**
   * Whether device requests are in flight (read-ins, write-back, journal
   * I/O), for a transport deciding whether to hold the event loop: their
   * completions need it. Optional.
   */
  deviceBusy?(): boolean;
  /** The engine's counters, for `o2fuse stats`. Optional. */
  stats?(): EngineStats;

  /** Writes everything back, releases the slot and the device. */
  unmount(): Promise<void>;
}
