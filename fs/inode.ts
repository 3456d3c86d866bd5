/**
 * The in-memory inode: the decoded on-disk dinode plus what the engine caches
 * about it (its leaf extents, a directory's name index). One object per inode
 * number while anything references it; `di` is replaced, never edited in
 * place, when a transaction commits a new version of the inode block.
 */
import type { Dinode } from './format/dinode';
import { dinodeLinksCount } from './format/dinode';
import type { Extent } from './extentMap';
import type { Attr, Timespec } from './api';
import { RwLock, Mutex } from './lock';
import type { Geometry } from './super';
import { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK } from './format/constants';


export interface DirIndexEntry {
  ino: number;
  fileType: number;
}

export class Inode {
  /**
   * The inode's I/O lock, in the spirit of the kernel's i_rwsem: shared for
   * direct writes that need no allocation (held only until their device
   * requests are submitted), exclusive for buffered writes, allocating writes
   * and truncates. Lock order: rw, then the volume's metadata lock.
   */
  readonly rw: RwLock;
  /** Serializes write-back of this inode's dirty pages. */
  readonly wbLock = new Mutex('writeback');
  /** Bumped whenever the file's bytes change under the cache; a read-in that saw an older value is not cached. */
  gen = 0;
  /** A write-back error not yet reported: returned by the next fsync (and, over libfuse, the next FLUSH at close). */
  wbError?: Error;
  /**
   * Set while a buffered write answered before it is done goes to the device (fs/fileIo.ts, acceptance): its new
   * size and times are committed only then, so GETATTR and LOOKUP wait for it.
   */
  landing?: Promise<void>;
  /** mtime/ctime of buffered writes not yet committed to the inode block. */
  pendingTimes?: Timespec;
  /** An atime from reads not yet committed (relatime/strictatime). */
  pendingAtime?: Timespec;
  /** Direct writes submitted and not yet complete; truncate waits for zero (inode_dio_wait). */
  dioInFlight = 0;
  private dioIdle: (() => void)[] = [];
  /** Where the last buffered write ended: a write starting there continues a stream (fs/fileIo.ts, writeThrough). */
  lastWriteEnd = 0;

  private cachedExtents?: Extent[];
  /**
   * Bumped whenever `extents` is set, which every committed change of the data tree does: a walk of the tree that
   * saw it change meanwhile may have read some leaves before the change and some after (fs/file.ts, loadExtents).
   */
  extentsGen = 0;

  /**
   * Cached leaf extents of the data tree (undefined: not loaded or invalidated). A write's commit updates the array
   * in place (fs/fileWrite.ts, applyChanges); other tree changes drop it.
   */
  get extents(): Extent[] | undefined {
    return this.cachedExtents;
  }
  set extents(extents: Extent[] | undefined) {
    this.cachedExtents = extents;
    this.extentsGen++;
  }
  /** Directory name → entry, built on first full scan; keys are latin1 strings of the raw name bytes. */
  dirIndex?: Map<string, DirIndexEntry>;
  /** Open handles on this inode. */
  openCount = 0;

  constructor(readonly ino: number, public di: Dinode) {
    this.rw = new RwLock(`inode ${ino}`);
  }

  dioStart(): void {
    this.dioInFlight++;
  }

  dioDone(): void {
    if (--this.dioInFlight === 0) for (const w of this.dioIdle.splice(0)) w();
  }

  /** Waits until no direct write is in flight (the kernel's inode_dio_wait). */
  async dioDrain(): Promise<void> {
    while (this.dioInFlight > 0) await new Promise<void>((r) => this.dioIdle.push(r));
  }

  get mode(): number {
    return this.di.i_mode;
  }
  get isDir(): boolean {
    return (this.di.i_mode & S_IFMT) === S_IFDIR;
  }
  get isReg(): boolean {
    return (this.di.i_mode & S_IFMT) === S_IFREG;
  }
  get isSymlink(): boolean {
    return (this.di.i_mode & S_IFMT) === S_IFLNK;
  }
  get size(): number {
    return this.di.i_size;
  }
  get nlink(): number {
    return dinodeLinksCount(this.di);
  }
  /** Data lives in the inode block (OCFS2_INLINE_DATA_FL). */
  get inline(): boolean {
    return this.di.data !== undefined;
  }

  /** Replaces the on-disk image after a commit; cached derived state goes with it where it may have changed. */
  update(di: Dinode, opts: { extentsChanged?: boolean; entriesChanged?: boolean } = {}): void {
    this.di = di;
    if (opts.extentsChanged) this.extents = undefined;
    if (opts.entriesChanged) this.dirIndex = undefined;
  }

  attr(geo: Geometry): Attr {
    const d = this.di;
    return {
      ino: this.ino,
      mode: d.i_mode,
      nlink: this.nlink,
      uid: d.i_uid,
      gid: d.i_gid,
      rdev: (d.i_mode & S_IFMT) === S_IFCHR || (d.i_mode & S_IFMT) === S_IFBLK ? d.i_rdev : 0,
      size: d.i_size,
      // st_blocks counts allocated 512-byte sectors: clusters, as ocfs2_inode_sector_count.
      blocks: d.i_clusters * (geo.clusterSize / 512),
      blksize: geo.blockSize,
      atime: this.pendingAtime ?? { sec: d.i_atime, nsec: d.i_atime_nsec },
      mtime: this.pendingTimes ?? { sec: d.i_mtime, nsec: d.i_mtime_nsec },
      ctime: this.pendingTimes ?? { sec: d.i_ctime, nsec: d.i_ctime_nsec },
      generation: d.i_generation,
    };
  }
}
