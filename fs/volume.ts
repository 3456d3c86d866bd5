/**
 * A mounted volume: the engine object the adapters talk to (fs/api.ts).
 *
 * Mounting finds and checks the superblock, decides from the feature bits
 * whether this engine may read or also write the volume, and finds the
 * system files. A read-write mount then recovers what crashed mounts left:
 * it replays every dirty slot journal, opens its own slot's journal (every
 * metadata change from here on goes through it), completes the recovery of
 * the slots that were in use, and takes its slot. A read-only mount refuses
 * a volume that needs recovery. Then it serves inode-addressed operations.
 */
import createDebug from 'debug';
import { LRUCache } from 'lru-cache';
import type { Device } from '../io/device';
import type { Attr, Caller, DirEntry, Engine, EngineStats, SetAttr, StatFs } from './api';
import { BlockCache } from '../cache/blockCache';
import { FsError } from './errors';
import { probeSuper, judgeFeatures, type Geometry } from './super';
import { featuresOf, type DxHashChars, type Features, type VolumeContext } from './context';
import type { SuperBlock } from './format/superblock';
import { Inode } from './inode';
import { readInodeBlock } from './blocks';
import { dinodeIsValid } from './format/dinode';
import { readDirSlots, lookupEntry, modeTypeOfFileType } from './dir';
import { setAttributes, checkWritable } from './inodeOps';
import { fallocate, seekDataHole, SEEK_DATA, SEEK_HOLE } from './fallocate';
import { readFileData } from './file';
import {
  GLOBAL_BITMAP_SYSTEM_INODE, JOURNAL_SYSTEM_INODE, SLOT_MAP_SYSTEM_INODE, OCFS2_JOURNAL_DIRTY_FL,
  OCFS2_MAX_FILENAME_LEN, systemInodeName,
} from './format/constants';
import { readSlotMap, writeSlot } from './slotMap';
import { Mutex } from './lock';
import { Transaction } from './transaction';
import { Allocators } from './suballoc';
import type { Allocator } from './allocApi';
import { Orphans } from './orphan';
import { Journal, DEFAULT_COMMIT_INTERVAL_MS } from './journal/journal';
import { JournalSpace } from './journal/space';
import { replayDirtyJournals, type JournalSlot } from './journal/recovery';
import { setJournalDirty } from './journal/journalInode';
import { completeSlotRecovery, slotNeedsRecovery } from './recovery/slotRecovery';
import type { NameiHost } from './nameiHost';
import type { Dinode } from './format/dinode';
import { makeNode, link as linkNode, unlink as unlinkNode, rename as renameNode } from './namei';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { PageCache } from '../cache/pageCache';
import { UnalignedGate } from '../io/unalignedGate';
import { Flusher } from './writeback';
import { bufferedRead, bufferedWrite, directRead, directWrite, syncInode, takeWritebackError, writebackInode,
  commitTimes, type IoHost } from './fileIo';
import { PAGE_BYTES } from '../cache/pageCache';
import { relatimeNeedsUpdate, nowTimespec } from './times';
import {
  OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT, OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, OCFS2_FEATURE_INCOMPAT_INLINE_DATA,
  OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, OCFS2_FEATURE_INCOMPAT_APPEND_DIO, OCFS2_FEATURE_INCOMPAT_META_ECC,
  OCFS2_FEATURE_INCOMPAT_XATTR, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS,
  OCFS2_FEATURE_RO_COMPAT_UNWRITTEN, S_IFMT, S_IFDIR,
  S_IFLNK,
} from './format/constants';

const trace = createDebug('o2fuse:fs');

export interface VolumeOptions {
  /** Mount read-only: nothing is ever written to the device. */
  readOnly: boolean;
  /** Bytes of file data the page cache may hold (default 256 MiB). */
  cacheSizeBytes?: number;
  /** The unaligned direct-write rule: 'range' (default), 'inode' (per-inode counter), 'unsafe' (off). */
  unalignedDio?: 'range' | 'inode' | 'unsafe';
  /** atime policy, for file reads and directory listings. */
  atime?: 'relatime' | 'noatime' | 'strictatime';
  /** No atime updates on directories (files keep `atime`). */
  nodiratime?: boolean;
  /** How often the running journal transaction commits (default 5 s, as the kernel's commit=). */
  commitIntervalMs?: number;
  /** See VolumeContext.dirLookups (tests). */
  dirLookups?: 'auto' | 'index';
  /** See VolumeContext.dxHashChars (mount option dx_hash=). */
  dxHashChars?: DxHashChars;
}

/**
 * Incompat / ro-compat bits this engine writes correctly. Left out on purpose:
 * quotas (quota files are not updated), and cluster (non-local) volumes,
 * which need the lock service.
 * xattr, refcount and discontig-bg volumes mount read-write, but the single
 * operations that would have to write those structures in ways this engine
 * does not are refused (EOPNOTSUPP): growing a refcount tree, setting an
 * xattr. (Writing to a reflinked file copies its shared clusters on write;
 * deleting, truncating or punching one lowers their counts.)
 */
const WRITABLE = {
  incompat: OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT | OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC | OCFS2_FEATURE_INCOMPAT_INLINE_DATA |
    OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP | OCFS2_FEATURE_INCOMPAT_APPEND_DIO | OCFS2_FEATURE_INCOMPAT_META_ECC |
    OCFS2_FEATURE_INCOMPAT_XATTR | OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG | OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE |
    OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS,
  roCompat: OCFS2_FEATURE_RO_COMPAT_UNWRITTEN,
};

/**
 * EROFS when this engine cannot write the volume although it can read it (a ro-compat feature it does not
 * write, a cluster volume): asked by a read-write mount and by a remount to read-write alike.
 */
function refuseIfUnwritable(name: string, sb: SuperBlock): void {
  const verdict = judgeFeatures(sb, WRITABLE);
  if (verdict.readOnlyBecause) throw new FsError('EROFS', `${name}: read-write mount refused: ${verdict.readOnlyBecause}; mount with -o ro`);
  if (!(sb.s_feature_incompat & OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT)) {
    throw new FsError('EROFS', `${name}: this is a cluster volume; o2fuse mounts cluster volumes read-write only ` +
      'with the cluster lock service, which is not available yet; mount with -o ro (or format with -M local)');
  }
}

/** Refuses a read-only engine's allocator use loudly: a bug if ever reached. */
const NO_ALLOC: Allocator = new Proxy({} as Allocator, {
  get: () => () => Promise.reject(new FsError('EROFS', 'read-only mount')),
});

const O_ACCMODE = 3;
const O_RDONLY = 0;

interface Handle {
  ino: number;
  flags: number;
}

/** O_DIRECT as this platform numbers it (0o40000 on x86-64). */
const O_DIRECT = fsConstants.O_DIRECT ?? 0o40000;
/** The page cache's size when the mount does not say (cache_size). */
export const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;
/** The unaligned direct-write rule when the mount does not say (unaligned_dio). */
export const DEFAULT_UNALIGNED_DIO = 'range';
/** How names are hashed into indexed directories when the mount does not say (dx_hash): as ocfs2-tools do. */
export const DEFAULT_DX_HASH_CHARS: DxHashChars = 'signed';

export class Volume implements Engine, VolumeContext, NameiHost, IoHost {
  readonly cache: BlockCache;
  readonly features: Features;
  readonly rootIno: number;
  /**
   * 'rw' takes changes; 'closing' is a remount to read-only writing back what is under way (its own transactions
   * only: every new change is refused); 'ro' takes none.
   */
  private rwState: 'rw' | 'closing' | 'ro';
  readonly slot = 0;
  /** Block numbers of system files by name ("global_bitmap", "journal:0000", ...). */
  readonly systemFiles = new Map<string, number>();
  /** Serializes metadata changes (one transaction at a time). */
  readonly metaLock = new Mutex('metadata');
  readonly orphans: Orphans;
  alloc: Allocator = NO_ALLOC;
  /** This slot's journal, open on a read-write mount. */
  journal: Journal | null = null;
  private readonly commitIntervalMs: number;
  readonly pages: PageCache;
  readonly gate: UnalignedGate;
  private readonly flusher: Flusher;
  private atimePolicy: 'relatime' | 'noatime' | 'strictatime';
  private nodiratime: boolean;
  private generation = randomBytes(4).readUInt32LE(0);

  /**
   * Inodes not open, kept for reuse. A decoded inode with its extent list is
   * tens of KiB of objects, so the count is bounded well below the block cache.
   */
  private readonly inodes = new LRUCache<number, Inode>({
    max: 4096,
    // An inode with state not yet on disk (buffered-write times, atime, direct writes in flight, a lock held)
    // must outlive eviction: a fresh copy read from disk would lose that state or split its locks.
    disposeAfter: (inode, ino, reason) => {
      if (reason === 'evict' && inodeBusy(inode)) this.inodes.set(ino, inode);
    },
  });
  /**
   * Every in-memory inode anything may still hold, weakly: iget() hands out
   * the same object while one exists, so there is never a second copy of an
   * inode with its own locks and state, whatever the LRU evicted.
   */
  private readonly live = new Map<number, WeakRef<Inode>>();
  private readonly liveReaper = new FinalizationRegistry<number>((ino) => {
    if (this.live.get(ino)?.deref() === undefined) this.live.delete(ino);
  });
  /** Inodes with open handles stay here whatever the LRU does. */
  private readonly pinned = new Map<number, Inode>();
  private readonly handles = new Map<number, Handle>();
  private nextFh = 1;
  private closed = false;
  readonly dirLookups: 'auto' | 'index';
  readonly dxHashChars: DxHashChars;

  private constructor(
    readonly device: Device,
    readonly sb: SuperBlock,
    readonly geo: Geometry,
    readonly fsGeneration: number,
    readonly label: string,
    readOnly: boolean,
    options: VolumeOptions,
  ) {
    this.cache = new BlockCache(device, geo.blockSize);
    this.pages = new PageCache(options.cacheSizeBytes ?? DEFAULT_CACHE_BYTES);
    this.gate = new UnalignedGate({ mode: options.unalignedDio ?? DEFAULT_UNALIGNED_DIO });
    this.flusher = new Flusher(this);
    this.atimePolicy = options.atime ?? 'relatime';
    this.nodiratime = options.nodiratime ?? false;
    this.commitIntervalMs = options.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS;
    this.dirLookups = options.dirLookups ?? 'auto';
    this.dxHashChars = options.dxHashChars ?? DEFAULT_DX_HASH_CHARS;
    this.features = featuresOf(sb);
    this.rootIno = sb.s_root_blkno;
    this.rwState = readOnly ? 'ro' : 'rw';
    this.orphans = new Orphans(this);
  }

  nextGeneration(): number {
    this.generation = (this.generation + 1) >>> 0;
    return this.generation;
  }

  get readOnly(): boolean {
    return this.rwState !== 'rw';
  }

  begin(label: string): Transaction {
    if (this.rwState === 'ro') throw new FsError('EROFS');
    return new Transaction(this, label);
  }

  /** The in-memory inode for a dinode just created by a committed transaction. */
  adopt(di: Dinode): Inode {
    return this.remember(new Inode(di.i_blkno, di));
  }

  forget(ino: number): void {
    this.inodes.delete(ino);
    this.live.delete(ino);
    this.pinned.delete(ino);
    this.pages.drop(ino);
  }

  throttle(): Promise<void> {
    return this.flusher.throttle();
  }

  kickWriteback(): void {
    this.flusher.kick();
  }

  /** Every in-memory inode (open ones and cached ones). */
  private allInodes(): Inode[] {
    return [...new Set([...this.pinned.values(), ...this.inodes.values()])];
  }

  get blockSize(): number {
    return this.geo.blockSize;
  }

  static async mount(device: Device, options: VolumeOptions): Promise<Volume> {
    const probed = await probeSuper(device);
    const verdict = judgeFeatures(probed.sb, WRITABLE);
    if (verdict.refuse) throw new FsError('EINVAL', `${device.name}: cannot mount: ${verdict.refuse}`);
    const readOnly = options.readOnly || device.readOnly;
    if (!readOnly) refuseIfUnwritable(device.name, probed.sb);
    const vol = new Volume(device, probed.sb, probed.geometry, probed.fsGeneration, probed.label, readOnly, options);
    await vol.loadSystemFiles();
    if (readOnly) {
      await vol.checkJournals();
      await vol.checkSlotMap();
    } else {
      await vol.recoverJournals();
      await vol.startReadWrite();
    }
    trace('mounted %s: block %d, cluster %d, %d clusters, %s', device.name, vol.geo.blockSize, vol.geo.clusterSize,
      vol.geo.totalClusters, readOnly ? 'read-only' : 'read-write');
    return vol;
  }

  private async loadSystemFiles(): Promise<void> {
    const sysdir = await this.iget(this.sb.s_system_dir_blkno);
    for (const s of await readDirSlots(this, sysdir)) this.systemFiles.set(s.name.toString('latin1'), s.ino);
    const bitmapIno = this.systemFile(systemInodeName(GLOBAL_BITMAP_SYSTEM_INODE));
    const bitmap = await this.iget(bitmapIno);
    this.geo.totalClusters = bitmap.di.i_total;
  }

  /** The block number of a system file; EIO if the system directory lacks it. */
  systemFile(name: string): number {
    const blkno = this.systemFiles.get(name);
    if (blkno === undefined) throw new FsError('EIO', `system file ${name} is missing from the system directory`);
    return blkno;
  }

  private journals(): JournalSlot[] {
    const out: JournalSlot[] = [];
    for (let slot = 0; slot < this.sb.s_max_slots; slot++) {
      out.push({ slot, ino: this.systemFile(systemInodeName(JOURNAL_SYSTEM_INODE, slot)) });
    }
    return out;
  }

  /** Replays every dirty journal, then forgets every block and inode read before: replay rewrote them. */
  private async recoverJournals(): Promise<void> {
    const reports = await replayDirtyJournals(this, this.journals(), async (ino) => (await readInodeBlock(this, ino)).di);
    if (!reports.length) return;
    this.cache.clear();
    this.inodes.clear();
    this.live.clear();
    await this.loadSystemFiles();
  }

  /** A journal marked dirty needs replay before anything can trust the metadata. */
  private async checkJournals(): Promise<void> {
    const dirty: number[] = [];
    for (let slot = 0; slot < this.sb.s_max_slots; slot++) {
      const j = await this.iget(this.systemFile(systemInodeName(JOURNAL_SYSTEM_INODE, slot)));
      if (j.di.ij_flags & OCFS2_JOURNAL_DIRTY_FL) dirty.push(slot);
    }
    if (dirty.length) {
      throw new FsError('EINVAL', `${this.device.name}: the journal of slot(s) ${dirty.join(', ')} needs recovery, ` +
        'which a read-only mount cannot write: mount it read-write once (o2fuse replays it), or run fsck.ocfs2 -y');
    }
  }

  private async checkSlotMap(): Promise<void> {
    const slotMapIno = await this.iget(this.systemFile(systemInodeName(SLOT_MAP_SYSTEM_INODE)));
    const slots = await readSlotMap(this, slotMapIno);
    const used = slots.map((node, slot) => ({ node, slot })).filter((s) => s.node !== null);
    if (used.length) {
      const who = used.map((s) => `slot ${s.slot} by node ${s.node}`).join(', ');
      throw new FsError('EBUSY', `${this.device.name}: the slot map shows the volume in use (${who}); ` +
        'it is mounted elsewhere, or was not unmounted cleanly (fsck.ocfs2 clears a stale slot map)');
    }
  }

  /**
   * Opens this slot's journal, completes the recovery of every slot a crashed
   * mount left behind (its local alloc window, truncate log, orphans and slot
   * map entry: what a surviving OCFS2 node does for a dead one), then takes
   * the slot. On a local volume no other node can hold a slot, so every slot
   * with something to recover is a crashed mount's.
   */
  private async startReadWrite(): Promise<void> {
    this.alloc = new Allocators(this);
    await this.openJournal();
    for (let slot = 0; slot < this.sb.s_max_slots; slot++) {
      if (!(await slotNeedsRecovery(this, slot))) continue;
      const r = await completeSlotRecovery(this, slot);
      trace('slot %d recovered: %d clusters of its local alloc window and %d of %d truncate-log records returned, ' +
        '%d orphans resolved', slot, r.localAllocFreedClusters, r.truncateLogFreedClusters, r.truncateLogRecords, r.orphansResolved);
    }
    await this.setSlot(0);
    this.flusher.start();
    const n = await this.metaLock.run(() => this.orphans.recover());
    if (n) trace('recovered %d orphan(s) of slot %d', n, this.slot);
  }

  /** Marks this slot's journal dirty and opens it: from here every transaction commits through it. */
  private async openJournal(): Promise<void> {
    const ino = this.systemFile(systemInodeName(JOURNAL_SYSTEM_INODE, this.slot));
    const { di } = await readInodeBlock(this, ino);
    const space = await JournalSpace.open(this, this.slot, ino, di);
    await setJournalDirty(this, ino, true);
    this.journal = await Journal.open(this, space, Math.floor(this.device.size / this.geo.blockSize), this.commitIntervalMs);
  }

  /** Commits the journal (or, without one, flushes the device): what fsync and sync wait for. */
  async syncMetadata(): Promise<void> {
    if (this.journal) await this.journal.commit();
    else await this.device.flush();
  }

  /**
   * Commits the journal and writes every committed block home: the image then
   * reads right to tools that do not replay journals (debugfs.ocfs2, libocfs2).
   */
  async checkpoint(): Promise<void> {
    if (!this.journal) return this.device.flush();
    await this.journal.commit();
    await this.journal.checkpoint();
  }

  private async setSlot(node: number | null): Promise<void> {
    const slot = this.slot;
    const slotMap = await this.iget(this.systemFile(systemInodeName(SLOT_MAP_SYSTEM_INODE)));
    await this.metaLock.run(async () => {
      const tx = this.begin(`slot map: slot ${slot} ${node === null ? 'released' : 'taken'}`);
      await writeSlot(this, tx, slotMap, slot, node);
      await tx.commit();
    });
    // The kernel writes the slot map in place: tools that do not replay journals (debugfs.ocfs2, fsck -n,
    // mounted.ocfs2, another node) must see the slot taken while the volume is mounted, so it goes home now.
    if (this.journal) await this.checkpoint();
    else await this.device.flush();
  }

  // ---- inodes ----

  /** The in-memory inode for `ino`, read and validated on first use. */
  iget(ino: number): Promise<Inode> {
    // In memory: answered without an async function's promise chain (every operation starts with one or two).
    const have = this.pinned.get(ino) ?? this.inodes.get(ino) ?? this.revive(ino);
    return have ? Promise.resolve(have) : this.igetRead(ino);
  }

  private async igetRead(ino: number): Promise<Inode> {
    const { di } = await readInodeBlock(this, ino);
    if (!dinodeIsValid(di)) throw new FsError('ESTALE', `inode ${ino} is not in use (OCFS2_VALID_FL clear)`);
    const again = this.inodes.get(ino) ?? this.pinned.get(ino) ?? this.revive(ino);
    if (again) return again;
    return this.remember(new Inode(ino, di));
  }

  /** An evicted inode something still holds: back into the LRU. */
  private revive(ino: number): Inode | undefined {
    const inode = this.live.get(ino)?.deref();
    if (inode) this.inodes.set(ino, inode);
    return inode;
  }

  private remember(inode: Inode): Inode {
    this.inodes.set(inode.ino, inode);
    this.live.set(inode.ino, new WeakRef(inode));
    this.liveReaper.register(inode, inode.ino);
    return inode;
  }

  private checkOpen(): void {
    if (this.closed) throw new FsError('EIO', 'volume is unmounted');
  }

  // ---- Engine: namespace reads ----

  async lookup(parent: number, name: Buffer): Promise<Attr> {
    this.checkOpen();
    if (name.length > OCFS2_MAX_FILENAME_LEN) throw new FsError('ENAMETOOLONG', `name of ${name.length} bytes`);
    const dir = await this.iget(parent);
    const e = await lookupEntry(this, dir, name);
    if (!e) throw new FsError('ENOENT');
    const inode = await this.iget(e.ino).catch((err) => {
      if (err instanceof FsError && err.errno === 'ESTALE') {
        throw new FsError('EIO', `directory ${parent}: entry "${name.toString()}" points to unused inode ${e.ino}`);
      }
      throw err;
    });
    return this.landedAttr(inode);
  }

  async getattr(ino: number): Promise<Attr> {
    this.checkOpen();
    return this.landedAttr(await this.iget(ino));
  }

  /** An inode's attributes once a write answered before it was done has committed its size and times. */
  private async landedAttr(inode: Inode): Promise<Attr> {
    if (inode.landing) await inode.landing;
    return inode.attr(this.geo);
  }

  async readdir(ino: number): Promise<DirEntry[]> {
    this.checkOpen();
    const dir = await this.iget(ino);
    const slots = await readDirSlots(this, dir);
    // A listing is the directory's access (the kernel's readdir touches atime), unless nodiratime.
    if (!this.nodiratime) this.touchAtime(dir);
    return slots.map((s) => ({ name: s.name, ino: s.ino, type: modeTypeOfFileType(s.fileType) }));
  }

  async readlink(ino: number): Promise<Buffer> {
    this.checkOpen();
    const inode = await this.iget(ino);
    if (!inode.isSymlink) throw new FsError('EINVAL', `inode ${ino} is not a symlink`);
    const di = inode.di;
    const target = di.symlink
      ? di.symlink.subarray(0, di.i_size)
      : await readFileData(this, inode, 0, di.i_size);
    const nul = target.indexOf(0);
    return Buffer.from(nul >= 0 ? target.subarray(0, nul) : target);
  }

  async statfs(): Promise<StatFs> {
    this.checkOpen();
    const bitmap = await this.iget(this.systemFile(systemInodeName(GLOBAL_BITMAP_SYSTEM_INODE)));
    const { bpc } = this.geo;
    const total = bitmap.di.i_total;
    const free = total - bitmap.di.i_used;
    return {
      bsize: this.geo.blockSize,
      frsize: this.geo.blockSize,
      blocks: total * bpc,
      bfree: free * bpc,
      bavail: free * bpc,
      files: total,
      ffree: free,
      namemax: OCFS2_MAX_FILENAME_LEN,
    };
  }

  // ---- Engine: files ----

  async open(ino: number, flags: number): Promise<number> {
    this.checkOpen();
    const inode = await this.iget(ino);
    if ((flags & O_ACCMODE) !== O_RDONLY && this.readOnly) throw new FsError('EROFS');
    if (inode.isDir && (flags & O_ACCMODE) !== O_RDONLY) throw new FsError('EISDIR');
    const fh = this.nextFh++;
    this.handles.set(fh, { ino, flags });
    inode.openCount++;
    this.pinned.set(ino, inode);
    return fh;
  }

  async read(ino: number, fh: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.checkOpen();
    const inode = await this.iget(ino);
    if (inode.isDir) throw new FsError('EISDIR');
    if (offset < 0 || length < 0) throw new FsError('EINVAL');
    const direct = ((this.handles.get(fh)?.flags ?? 0) & O_DIRECT) !== 0;
    // Shared, as direct writes take it: a truncate or punch (exclusive) then waits for reads in flight instead of
    // freeing the clusters under them, where another file's data could land before the device read completes.
    // Uncontended (the common case: nothing truncates the file) without an await: a read is a few microseconds.
    const release = inode.rw.tryShared() ?? await inode.rw.shared();
    let data: Buffer;
    try {
      data = direct ? await directRead(this, inode, offset, length, into) : await bufferedRead(this, inode, offset, length, into);
    } finally {
      release();
    }
    this.touchAtime(inode);
    if (!into || data.length === 0 || (data.buffer === into.buffer && data.byteOffset === into.byteOffset)) return data;
    data.copy(into);
    return into.subarray(0, data.length);
  }

  /**
   * Access time by the mount's policy (relatime by default), of a file read or a directory listed; committed with
   * the inode's other pending times (write-back, fsync, unmount).
   */
  private touchAtime(inode: Inode): void {
    if (this.readOnly || this.atimePolicy === 'noatime') return;
    const now = nowTimespec();
    // The atime that counts is the one not yet committed, when there is one.
    if (this.atimePolicy === 'strictatime' || relatimeNeedsUpdate(inode.di, now, inode.pendingAtime)) inode.pendingAtime = now;
  }

  async release(ino: number, fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (!h) return;
    this.handles.delete(fh);
    const inode = this.pinned.get(ino);
    if (inode && --inode.openCount <= 0) {
      this.pinned.delete(ino);
      this.inodes.set(ino, inode);
      if (!this.readOnly && inode.nlink === 0) await this.metaLock.run(() => this.orphans.reapIfUnused(inode));
    }
  }

  /** close(2): reports a write-back error not yet reported, as Linux does. */
  async flush(ino: number, _fh: number): Promise<void> {
    const inode = this.pinned.get(ino);
    if (inode) takeWritebackError(inode);
  }
  async fsync(ino: number, _fh: number, _datasync: boolean): Promise<void> {
    this.checkOpen();
    if (this.readOnly) return;
    await this.durably(async () => syncInode(this, await this.iget(ino)));
  }
  async fsyncdir(_ino: number, _datasync: boolean): Promise<void> {
    if (!this.readOnly) await this.durably(() => this.syncMetadata());
  }

  /**
   * An fsync's work, answered as jbd2 answers once the journal has aborted: EIO, nothing more can be made durable.
   * Also when it aborts while the work runs (the work's own commit is then refused with EROFS).
   */
  private async durably(work: () => Promise<void>): Promise<void> {
    this.checkDurable();
    try {
      await work();
    } catch (err) {
      this.checkDurable();
      throw err;
    }
  }

  private checkDurable(): void {
    const cause = this.journal?.abortedBy;
    if (cause) throw new FsError('EIO', `journal of slot ${this.journal!.space.slot} aborted (${cause.message}): nothing more can be made durable`);
  }

  // ---- Engine: namespace changes ----

  private writable(): void {
    this.checkOpen();
    if (this.readOnly) throw new FsError('EROFS');
    // After a journal abort the volume takes no change, data included (as a kernel filesystem remounted read-only).
    this.journal?.checkUsable();
  }

  async create(parent: number, name: Buffer, mode: number, flags: number, caller: Caller): Promise<{ attr: Attr; fh: number }> {
    this.writable();
    const inode = await makeNode(this, parent, name, (mode & ~S_IFMT) | 0o100000, 0, caller);
    const fh = await this.open(inode.ino, flags);
    return { attr: inode.attr(this.geo), fh };
  }
  async mknod(parent: number, name: Buffer, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    this.writable();
    if ((mode & S_IFMT) === 0) mode |= 0o100000;
    return (await makeNode(this, parent, name, mode, rdev, caller)).attr(this.geo);
  }
  async mkdir(parent: number, name: Buffer, mode: number, caller: Caller): Promise<Attr> {
    this.writable();
    return (await makeNode(this, parent, name, (mode & 0o7777) | S_IFDIR, 0, caller)).attr(this.geo);
  }
  async symlink(parent: number, name: Buffer, target: Buffer, caller: Caller): Promise<Attr> {
    this.writable();
    return (await makeNode(this, parent, name, S_IFLNK | 0o777, 0, caller, target)).attr(this.geo);
  }
  async link(ino: number, newParent: number, newName: Buffer): Promise<Attr> {
    this.writable();
    // The answer carries the inode's attributes, which the kernel caches as a GETATTR's: the same wait.
    return this.landedAttr(await linkNode(this, ino, newParent, newName));
  }
  async unlink(parent: number, name: Buffer): Promise<void> {
    this.writable();
    await unlinkNode(this, parent, name, false);
  }
  async rmdir(parent: number, name: Buffer): Promise<void> {
    this.writable();
    await unlinkNode(this, parent, name, true);
  }
  async rename(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number): Promise<void> {
    this.writable();
    await renameNode(this, parent, name, newParent, newName, flags);
  }
  async setattr(ino: number, changes: SetAttr): Promise<Attr> {
    this.writable();
    const inode = await this.iget(ino);
    // Exclusive, as the kernel's setattr holds the inode lock: a write answered before it landed (fs/fileIo.ts,
    // acceptance) stamps its times when it lands, and an mtime set after its answer (tar, rsync -t, cp -p) must
    // come after that stamp, not under it.
    const release = await inode.rw.exclusive();
    try {
      if (changes.size === undefined) return (await setAttributes(this, ino, changes)).attr(this.geo);
      // Truncate: no direct write in flight, the cache written back, and pages past the new end forgotten.
      await inode.dioDrain();
      await writebackInode(this, inode);
      this.pages.drop(ino, Math.floor(Math.min(changes.size, inode.size) / PAGE_BYTES));
      inode.gen++;
      return (await setAttributes(this, ino, changes)).attr(this.geo);
    } finally {
      release();
    }
  }
  async write(ino: number, fh: number, offset: number, data: Buffer,
    opts: { cached?: boolean; accepted?: (written: number) => void } = {}): Promise<number> {
    this.writable();
    const inode = await this.iget(ino);
    checkWritable(inode);
    if (offset < 0) throw new FsError('EINVAL');
    const direct = !opts.cached && ((this.handles.get(fh)?.flags ?? 0) & O_DIRECT) !== 0;
    return direct ? directWrite(this, inode, offset, data) : bufferedWrite(this, inode, offset, data, { accepted: opts.accepted });
  }

  async fallocate(ino: number, _fh: number, offset: number, length: number, mode: number): Promise<void> {
    this.writable();
    const inode = await this.iget(ino);
    checkWritable(inode);
    await fallocate(this, inode, offset, length, mode);
  }

  async lseek(ino: number, _fh: number, offset: number, whence: number): Promise<number> {
    this.checkOpen();
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError('EINVAL', `lseek whence ${whence}`);
    const inode = await this.iget(ino);
    // Dirty pages are always over mapped blocks (writes into holes allocate at once), so the extent map is the truth
    // once no write is under way: an allocating write answered before its commit (fs/fileIo.ts, acceptance) holds
    // the inode's lock until its extents and size are in, as the kernel's llseek takes the inode lock.
    const release = inode.rw.tryShared() ?? await inode.rw.shared();
    try {
      return await seekDataHole(this, inode, offset, whence);
    } finally {
      release();
    }
  }

  deviceBusy(): boolean {
    return (this.device.inFlight ?? 0) > 0;
  }

  stats(): EngineStats {
    return {
      device: this.device.stats?.() ?? null,
      blockCache: { ...this.cache.stats },
      pageCache: this.pages.snapshotStats(),
      unalignedGate: this.gate.stats(),
      journal: this.journal ? { ...this.journal.stats } : null,
    };
  }

  /** Writes back every dirty page and pending time stamp. */
  async syncAll(): Promise<void> {
    await this.flusher.flushAll();
    for (const inode of this.allInodes()) {
      if (inode.pendingTimes || inode.pendingAtime) await commitTimes(this, inode).catch(() => {});
    }
    await this.syncMetadata();
  }

  /**
   * What a read-write mount leaves when it stops taking changes (an unmount, a remount read-only): everything
   * under way written and committed, the journal empty and marked clean, the slot released, the device flushed.
   * Callers have set rwState to 'closing', so nothing new starts.
   */
  private async closeWrites(): Promise<void> {
    // A write answered before it landed (fs/fileIo.ts, acceptance) goes on after its client saw the answer and
    // may have unmounted: it lands, and its times join what syncAll commits.
    for (const inode of this.allInodes()) while (inode.landing) await inode.landing;
    await this.flusher.stop();
    await this.syncAll();
    await this.setSlot(null);
    if (this.journal) {
      // A clean journal: everything home, the log empty, the inode's dirty flag cleared.
      await this.journal.close();
      await setJournalDirty(this, this.journal.space.ino, false);
      this.journal = null;
    }
    await this.device.flush();
  }

  /**
   * A live remount (`mount -o remount,...`; bin/daemon.ts changes the kernel's flags): the atime policy, and
   * read-write <-> read-only. To read-only: what an unmount writes (closeWrites), after which the volume is as a
   * read-only mount leaves it (fsck and other tools see it clean and unused) and every change is refused with
   * EROFS; the kernel has refused the remount while files were open for writing. To read-write: what a
   * read-write mount does (the features judged again, the journal opened, the slot taken, orphans resolved);
   * refused when the device was opened read-only or the volume cannot be written.
   */
  async remount(o: { readOnly: boolean; atime?: 'relatime' | 'noatime' | 'strictatime'; nodiratime?: boolean }): Promise<void> {
    this.checkOpen();
    if (o.readOnly && this.rwState === 'rw') {
      this.rwState = 'closing';
      try {
        await this.closeWrites();
      } finally {
        // Even a failed write-back leaves the volume refusing changes: what the journal committed is replayed by
        // the next read-write mount, which sees its dirty flag.
        this.rwState = 'ro';
      }
      trace('remounted %s read-only', this.device.name);
    } else if (!o.readOnly && this.rwState === 'ro') {
      if (this.device.readOnly) {
        throw new FsError('EROFS', `${this.device.name} was opened read-only (a read-only mount): umount and mount it read-write`);
      }
      refuseIfUnwritable(this.device.name, this.sb);
      // Nothing replays a journal under files being served: one left dirty (a read-only remount that failed to
      // write back) waits for the next mount.
      await this.checkJournals();
      await this.checkSlotMap();
      this.rwState = 'rw';
      try {
        await this.startReadWrite();
      } catch (err) {
        this.rwState = 'ro';
        throw err;
      }
      trace('remounted %s read-write', this.device.name);
    }
    if (o.atime) this.atimePolicy = o.atime;
    if (o.nodiratime !== undefined) this.nodiratime = o.nodiratime;
  }

  async unmount(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.rwState === 'rw') {
        this.rwState = 'closing';
        await this.closeWrites();
      }
    } finally {
      // Whatever failed above (an aborted journal, a dead device), the volume is closed: what the journal
      // committed is replayed by the next mount, which sees its dirty flag.
      this.journal?.halt();
      this.closed = true;
      this.handles.clear();
      this.pinned.clear();
      this.inodes.clear();
      this.cache.clear();
      await this.device.close().catch(() => {});
    }
  }
}

/** State of an inode that exists only in memory until committed. */
function inodeBusy(inode: Inode): boolean {
  return inode.pendingTimes !== undefined || inode.pendingAtime !== undefined || inode.dioInFlight > 0 || !inode.rw.idle ||
    inode.openCount > 0;
}

export async function openVolume(device: Device, options: VolumeOptions): Promise<Engine> {
  return Volume.mount(device, options);
}
