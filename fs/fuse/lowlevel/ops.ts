/**
 * FUSE requests -> Engine calls, one handler per opcode. Thin on purpose:
 * decode the arguments, map node ids to inode numbers, call the engine,
 * encode the answer. Errors are thrown (FsError) and the dispatcher turns
 * them into the reply's errno through the one errno map (fs/errors.ts).
 *
 * Node ids are the engine's inode numbers (OCFS2 block numbers), except the
 * root, which the kernel calls FUSE_ROOT_ID (1). Lookup counts are not kept:
 * the engine addresses every inode by number at any time and pins open ones
 * itself, so FORGET has nothing to release.
 *
 * Chosen answers:
 * - FLUSH (writeback_cache mounts only: every open answers FOPEN_NOFLUSH):
 *   ENOSYS, so that close(2) costs no round trip there either.
 * - ACCESS, GETXATTR, LISTXATTR, SETXATTR, REMOVEXATTR: ENOSYS. The kernel
 *   remembers it and stops asking; access() then succeeds (default_permissions
 *   does the checks when asked for), and the xattr calls report EOPNOTSUPP,
 *   which ls and cp -a take silently.
 * - FALLOCATE: the engine's optional fallocate(), else EOPNOTSUPP.
 * - LSEEK (SEEK_DATA/SEEK_HOLE): the engine's optional lseek(), else ENOSYS so
 *   the kernel falls back to "all data, hole at EOF".
 * - open(O_TRUNC) truncates here: ATOMIC_O_TRUNC is negotiated, so the kernel
 *   sends no separate setattr.
 * - OPENDIR answers FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE: the kernel keeps a
 *   directory's listing and serves repeated listings itself while the
 *   directory's mtime and change counter stay the same (see DirHandles).
 */
import { constants as fsConstants } from 'node:fs';
import type { Attr, Caller, DirEntry, Engine, SetAttr } from '../../api';
import { FsError } from '../../errors';
import {
  FATTR_ATIME, FATTR_ATIME_NOW, FATTR_GID, FATTR_MODE, FATTR_MTIME, FATTR_MTIME_NOW, FATTR_SIZE, FATTR_UID,
  FOPEN_CACHE_DIR, FOPEN_DIRECT_IO, FOPEN_KEEP_CACHE, FOPEN_NOFLUSH, FOPEN_PARALLEL_DIRECT_WRITES, FUSE_FSYNC_FDATASYNC, FUSE_RELEASE_FLUSH, FUSE_ROOT_ID,
  FUSE_WRITE_CACHE, FUSE_WRITE_KILL_SUIDGID, FuseOpcode, RENAME_EXCHANGE, RENAME_NOREPLACE, SEEK_DATA, SEEK_HOLE,
} from './protocol';
import {
  FUSE_FORGET_ONE_SIZE, FUSE_WRITE_IN_SIZE, fuse_access_in, fuse_batch_forget_in, fuse_create_in, fuse_fallocate_in,
  fuse_fsync_in, fuse_getattr_in, fuse_interrupt_in, fuse_link_in, fuse_lseek_in, fuse_mkdir_in, fuse_mknod_in,
  fuse_open_in, fuse_read_in, fuse_release_in, fuse_rename2_in, fuse_rename_in, fuse_setattr_in, fuse_write_in,
  fuse_flush_in,
} from './structs';
import { args, nameAt, type Request } from './request';
import {
  attrOut, direntPlusSize, direntSize, encodeDirent, encodeDirentPlus, entryOut, lseekOut, openOut, statfsOut,
  writeOut, zeroed, type Timeouts,
} from './reply';

/** fallocate and lseek are optional Engine methods (fs/api.ts): answered EOPNOTSUPP / ENOSYS when absent. */
export type LowLevelEngine = Engine;

/** A reply payload, or NO_REPLY for requests the kernel expects no answer to. */
export type HandlerResult = Buffer[] | typeof NO_REPLY;
export const NO_REPLY = Symbol('no reply');

const O_TRUNC = fsConstants.O_TRUNC;
const O_DIRECT = fsConstants.O_DIRECT ?? 0o40000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o0010;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/** Hooks the handlers report to (the session's statistics and interrupt bookkeeping). */
export interface OpsHooks {
  interrupted(unique: number): void;
  forgotten(count: number): void;
  readDone(bytes: number): void;
  /** FUSE_DESTROY: the kernel is tearing the mount down (sent for fuseblk mounts only). */
  destroy(): Promise<void>;
  /** Whether INIT settled on the kernel's writeback cache (FUSE_WRITEBACK_CACHE). */
  writebackCache(): boolean;
}

interface DirHandle {
  ino: number;
  /** Read at the first READDIR (null until then). */
  entries: DirEntry[] | null;
  /** True once a READDIR has been served: a later READDIR at offset 0 (rewinddir) reads the directory again. */
  served: boolean;
}

/**
 * Open directory handles: the entry list is read once, at the first READDIR,
 * so an offset (index into it) means the same entry for the life of the
 * handle, whatever else changes the directory meanwhile. Not at OPENDIR:
 * directories are opened with FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE, and while
 * the kernel's copy of the listing is valid (the directory's mtime and change
 * counter unchanged) it serves getdents itself and sends no READDIR at all.
 */
class DirHandles {
  private readonly byFh = new Map<number, DirHandle>();
  private nextFh = 1;

  add(h: DirHandle): number {
    const fh = this.nextFh++;
    this.byFh.set(fh, h);
    return fh;
  }

  get(fh: number): DirHandle {
    const h = this.byFh.get(fh);
    if (!h) throw new FsError('EBADF', `no open directory handle ${fh}`);
    return h;
  }

  delete(fh: number): void {
    this.byFh.delete(fh);
  }
}

/** `answer`: sends the reply now (once); the handler's own result is then not sent (dispatcher.ts). */
export type Handler = (req: Request, answer: (payload: Buffer[]) => void) => Promise<HandlerResult>;

/**
 * READ reply buffers kept for reuse, in two sizes: a few of max_read for
 * streaming readers, and enough small ones for a random reader's queue depth
 * (fio iodepth 16-32 of 4 KiB): a 1 MiB buffer per 4 KiB read would make the
 * garbage collector the busiest part of the daemon.
 */
const READ_BUFFER_SIZES = [
  { bytes: 64 * 1024, kept: 64 },
  { bytes: 1 << 20, kept: 8 },
] as const;
const READ_BUFFER_BYTES = READ_BUFFER_SIZES[READ_BUFFER_SIZES.length - 1].bytes;

export class LowLevelOps {
  private readonly dirs = new DirHandles();
  /**
   * Buffers READ replies are built in, reused once the reply is written: a
   * streaming reader otherwise leaves one fresh 1 MiB buffer per request to
   * the garbage collector, which then runs mostly for them.
   */
  private readonly freeReadBuffers: Buffer[][] = READ_BUFFER_SIZES.map(() => []);
  /** READ buffers lent out, by request. */
  private readonly lentReadBuffers = new Map<number, Buffer>();

  constructor(
    private readonly engine: LowLevelEngine,
    private readonly timeouts: Timeouts,
    private readonly hooks: OpsHooks,
  ) {}

  /** The engine inode a node id names. */
  ino(nodeid: number): number {
    if (nodeid === FUSE_ROOT_ID) return this.engine.rootIno;
    if (nodeid === 0) throw new FsError('EINVAL', 'node id 0');
    return nodeid;
  }

  /** The node id the kernel is to use for an engine inode. */
  nodeid(ino: number): number {
    if (ino === this.engine.rootIno) return FUSE_ROOT_ID;
    if (ino === FUSE_ROOT_ID) throw new FsError('EIO', 'inode number 1 collides with FUSE_ROOT_ID');
    return ino;
  }

  private entry(a: Attr): Buffer[] {
    return [entryOut(this.nodeid(a.ino), a, this.timeouts)];
  }

  private caller(req: Request): Caller {
    return { uid: req.uid, gid: req.gid };
  }

  /** The handler for an opcode; undefined means ENOSYS. */
  handler(opcode: number): Handler | undefined {
    return this.table.get(opcode);
  }

  /**
   * The handler for an opcode answered at once, without a promise: FORGETs,
   * which need no reply and no engine call. Dropping the kernel's caches sends
   * thousands (a few nodes each when they are read as fast as they come), and
   * they are read ahead of other requests: the promise round of a request each
   * was a visible delay for whatever came next (a listing, a lookup).
   */
  immediateHandler(opcode: number): ((req: Request) => void) | undefined {
    return this.immediate.get(opcode);
  }

  private readonly immediate = new Map<number, (req: Request) => void>([
    [FuseOpcode.FUSE_FORGET, () => this.hooks.forgotten(1)],
    [FuseOpcode.FUSE_BATCH_FORGET, (req) => {
      const { count } = args(fuse_batch_forget_in, req, 'fuse_batch_forget_in');
      // fuse_forget_one records follow; nothing to release per node (see the header), only counted.
      const present = Math.floor((req.body.length - 8) / FUSE_FORGET_ONE_SIZE);
      this.hooks.forgotten(Math.min(count, present));
    }],
  ]);

  private readonly table = new Map<number, Handler>([
    [FuseOpcode.FUSE_LOOKUP, async (req) => {
      const { name } = nameAt(req, 0);
      return this.entry(await this.engine.lookup(this.ino(req.nodeid), name));
    }],

    [FuseOpcode.FUSE_GETATTR, async (req) => {
      args(fuse_getattr_in, req, 'fuse_getattr_in');
      return [attrOut(await this.engine.getattr(this.ino(req.nodeid)), this.timeouts)];
    }],

    [FuseOpcode.FUSE_SETATTR, async (req) => {
      const a = args(fuse_setattr_in, req, 'fuse_setattr_in');
      const ino = this.ino(req.nodeid);
      const changes: SetAttr = {};
      if (a.valid & FATTR_MODE) changes.mode = a.mode;
      if (a.valid & FATTR_UID) changes.uid = a.uid;
      if (a.valid & FATTR_GID) changes.gid = a.gid;
      if (a.valid & FATTR_SIZE) changes.size = a.size;
      if (a.valid & FATTR_ATIME) changes.atime = a.valid & FATTR_ATIME_NOW ? 'now' : { sec: a.atime, nsec: a.atimensec };
      if (a.valid & FATTR_MTIME) changes.mtime = a.valid & FATTR_MTIME_NOW ? 'now' : { sec: a.mtime, nsec: a.mtimensec };
      // FATTR_FH / FATTR_LOCKOWNER only say which handle asked. FATTR_CTIME comes with writeback caching only: the
      // engine sets ctime itself on every change, so the kernel's value is not taken.
      const attr = Object.keys(changes).length ? await this.engine.setattr(ino, changes) : await this.engine.getattr(ino);
      return [attrOut(attr, this.timeouts)];
    }],

    [FuseOpcode.FUSE_READLINK, async (req) => [await this.engine.readlink(this.ino(req.nodeid))]],

    [FuseOpcode.FUSE_SYMLINK, async (req) => {
      const { name, next } = nameAt(req, 0);
      const { name: target } = nameAt(req, next);
      return this.entry(await this.engine.symlink(this.ino(req.nodeid), name, target, this.caller(req)));
    }],

    [FuseOpcode.FUSE_MKNOD, async (req) => {
      const a = args(fuse_mknod_in, req, 'fuse_mknod_in');
      const { name } = nameAt(req, 16);
      return this.entry(await this.engine.mknod(this.ino(req.nodeid), name, a.mode, a.rdev, this.caller(req)));
    }],

    [FuseOpcode.FUSE_MKDIR, async (req) => {
      const a = args(fuse_mkdir_in, req, 'fuse_mkdir_in');
      const { name } = nameAt(req, 8);
      return this.entry(await this.engine.mkdir(this.ino(req.nodeid), name, a.mode, this.caller(req)));
    }],

    [FuseOpcode.FUSE_UNLINK, async (req) => {
      await this.engine.unlink(this.ino(req.nodeid), nameAt(req, 0).name);
      return [];
    }],

    [FuseOpcode.FUSE_RMDIR, async (req) => {
      await this.engine.rmdir(this.ino(req.nodeid), nameAt(req, 0).name);
      return [];
    }],

    [FuseOpcode.FUSE_RENAME, async (req) => {
      const a = args(fuse_rename_in, req, 'fuse_rename_in');
      const from = nameAt(req, 8);
      const to = nameAt(req, from.next);
      await this.engine.rename(this.ino(req.nodeid), from.name, this.ino(a.newdir), to.name, 0);
      return [];
    }],

    [FuseOpcode.FUSE_RENAME2, async (req) => {
      const a = args(fuse_rename2_in, req, 'fuse_rename2_in');
      if (a.flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError('EINVAL', `rename flags 0x${a.flags.toString(16)}`);
      if ((a.flags & RENAME_NOREPLACE) && (a.flags & RENAME_EXCHANGE)) throw new FsError('EINVAL', 'RENAME_NOREPLACE with RENAME_EXCHANGE');
      const from = nameAt(req, 16);
      const to = nameAt(req, from.next);
      await this.engine.rename(this.ino(req.nodeid), from.name, this.ino(a.newdir), to.name, a.flags);
      return [];
    }],

    [FuseOpcode.FUSE_LINK, async (req) => {
      const a = args(fuse_link_in, req, 'fuse_link_in');
      const { name } = nameAt(req, 8);
      return this.entry(await this.engine.link(this.ino(a.oldnodeid), this.ino(req.nodeid), name));
    }],

    [FuseOpcode.FUSE_OPEN, async (req) => {
      const a = args(fuse_open_in, req, 'fuse_open_in');
      const ino = this.ino(req.nodeid);
      const fh = await this.engine.open(ino, a.flags);
      if (a.flags & O_TRUNC) {
        try {
          await this.engine.setattr(ino, { size: 0 });
        } catch (err) {
          await this.engine.release(ino, fh).catch(() => undefined);
          throw err;
        }
      }
      return [openOut(fh, openFlagsFor(a.flags, this.hooks.writebackCache()))];
    }],

    [FuseOpcode.FUSE_CREATE, async (req) => {
      const a = args(fuse_create_in, req, 'fuse_create_in');
      const { name } = nameAt(req, 16);
      const { attr, fh } = await this.engine.create(this.ino(req.nodeid), name, a.mode, a.flags, this.caller(req));
      return [...this.entry(attr), openOut(fh, openFlagsFor(a.flags, this.hooks.writebackCache()))];
    }],

    [FuseOpcode.FUSE_READ, async (req) => {
      const a = args(fuse_read_in, req, 'fuse_read_in');
      // The engine fills the reply payload directly (no second buffer per read for a streaming reader).
      const data = await this.engine.read(this.ino(req.nodeid), a.fh, a.offset, a.size, this.readBuffer(req.unique, a.size));
      const out = data.length > a.size ? data.subarray(0, a.size) : data;
      this.hooks.readDone(out.length);
      return [out];
    }],

    [FuseOpcode.FUSE_WRITE, async (req, answer) => {
      const a = args(fuse_write_in, req, 'fuse_write_in');
      const data = req.body.subarray(FUSE_WRITE_IN_SIZE, FUSE_WRITE_IN_SIZE + a.size);
      if (data.length !== a.size) throw new FsError('EINVAL', `WRITE of ${a.size} bytes carries ${data.length}`);
      const ino = this.ino(req.nodeid);
      const killSuidGid = (a.write_flags & FUSE_WRITE_KILL_SUIDGID) !== 0;
      // FUSE_WRITE_CACHE: the kernel writing back its page cache (writeback_cache mounts); buffered in the engine
      // even when the handle it picked was opened O_DIRECT. A write the engine accepts before its device write
      // (fs/fileIo.ts, acceptance) is answered then, unless set-id bits are still to be cleared.
      const written = await this.engine.write(ino, a.fh, a.offset, data, {
        cached: (a.write_flags & FUSE_WRITE_CACHE) !== 0,
        accepted: killSuidGid ? undefined : (n) => answer([writeOut(n)]),
      });
      if (killSuidGid) await this.killSuidGid(ino);
      return [writeOut(written)];
    }],

    [FuseOpcode.FUSE_STATFS, async () => [statfsOut(await this.engine.statfs())]],

    [FuseOpcode.FUSE_RELEASE, async (req) => {
      const a = args(fuse_release_in, req, 'fuse_release_in');
      const ino = this.ino(req.nodeid);
      if (a.release_flags & FUSE_RELEASE_FLUSH) await this.engine.flush(ino, a.fh);
      await this.engine.release(ino, a.fh);
      return [];
    }],

    [FuseOpcode.FUSE_FSYNC, async (req) => {
      const a = args(fuse_fsync_in, req, 'fuse_fsync_in');
      await this.engine.fsync(this.ino(req.nodeid), a.fh, (a.fsync_flags & FUSE_FSYNC_FDATASYNC) !== 0);
      return [];
    }],

    [FuseOpcode.FUSE_FLUSH, async (req) => {
      args(fuse_flush_in, req, 'fuse_flush_in');
      // Only a writeback_cache mount sends it (every open answers FOPEN_NOFLUSH), after the kernel wrote its pages
      // back and checked them for errors. Answered ENOSYS, the kernel stops asking, and close(2) there costs no
      // round trip either; write-back errors of the engine's own go to the next fsync, as on every other mount.
      throw new FsError('ENOSYS');
    }],

    [FuseOpcode.FUSE_OPENDIR, async (req) => {
      args(fuse_open_in, req, 'fuse_open_in');
      const ino = this.ino(req.nodeid);
      const { mode } = await this.engine.getattr(ino);
      if ((mode & S_IFMT) !== S_IFDIR) throw new FsError('ENOTDIR', `inode ${ino} is not a directory`);
      // The kernel keeps the listing in its page cache and checks it against mtime and its change counter (bumped by
      // every change made through this mount) before each use: the same coherence as cached attributes.
      return [openOut(this.dirs.add({ ino, entries: null, served: false }), FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE)];
    }],

    [FuseOpcode.FUSE_READDIR, async (req) => this.readdir(req, false)],
    [FuseOpcode.FUSE_READDIRPLUS, async (req) => this.readdir(req, true)],

    [FuseOpcode.FUSE_RELEASEDIR, async (req) => {
      this.dirs.delete(args(fuse_release_in, req, 'fuse_release_in').fh);
      return [];
    }],

    [FuseOpcode.FUSE_FSYNCDIR, async (req) => {
      const a = args(fuse_fsync_in, req, 'fuse_fsync_in');
      await this.engine.fsyncdir(this.ino(req.nodeid), (a.fsync_flags & FUSE_FSYNC_FDATASYNC) !== 0);
      return [];
    }],

    [FuseOpcode.FUSE_ACCESS, async (req) => {
      args(fuse_access_in, req, 'fuse_access_in');
      throw new FsError('ENOSYS');
    }],

    [FuseOpcode.FUSE_INTERRUPT, async (req) => {
      this.hooks.interrupted(args(fuse_interrupt_in, req, 'fuse_interrupt_in').unique);
      return NO_REPLY;
    }],

    [FuseOpcode.FUSE_NOTIFY_REPLY, async () => NO_REPLY],

    [FuseOpcode.FUSE_DESTROY, async () => {
      await this.hooks.destroy();
      return [];
    }],

    [FuseOpcode.FUSE_FALLOCATE, async (req) => {
      const a = args(fuse_fallocate_in, req, 'fuse_fallocate_in');
      if (!this.engine.fallocate) throw new FsError('EOPNOTSUPP', 'the engine has no fallocate yet');
      await this.engine.fallocate(this.ino(req.nodeid), a.fh, a.offset, a.length, a.mode);
      return [];
    }],

    [FuseOpcode.FUSE_LSEEK, async (req) => {
      const a = args(fuse_lseek_in, req, 'fuse_lseek_in');
      if (a.whence !== SEEK_DATA && a.whence !== SEEK_HOLE) throw new FsError('EINVAL', `lseek whence ${a.whence}`);
      if (!this.engine.lseek) throw new FsError('ENOSYS');
      return [lseekOut(await this.engine.lseek(this.ino(req.nodeid), a.fh, a.offset, a.whence))];
    }],
  ]);

  /** A buffer of `size` bytes for the reply to READ `unique`, lent until settled(). */
  private readBuffer(unique: number, size: number): Buffer {
    if (size > READ_BUFFER_BYTES || this.lentReadBuffers.has(unique)) return Buffer.allocUnsafe(size);
    const k = READ_BUFFER_SIZES.findIndex((c) => size <= c.bytes);
    const buf = this.freeReadBuffers[k].pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_SIZES[k].bytes);
    this.lentReadBuffers.set(unique, buf);
    return buf.subarray(0, size);
  }

  /** The request is over and its reply written (or never to be): what it borrowed comes back. */
  settled(req: Request): void {
    const buf = this.lentReadBuffers.get(req.unique);
    if (!buf) return;
    this.lentReadBuffers.delete(req.unique);
    const k = READ_BUFFER_SIZES.findIndex((c) => buf.length === c.bytes);
    if (k >= 0 && this.freeReadBuffers[k].length < READ_BUFFER_SIZES[k].kept) this.freeReadBuffers[k].push(buf);
  }

  /** Clears set-user-id, and set-group-id on group-executable files, as a write by an unprivileged caller must. */
  private async killSuidGid(ino: number): Promise<void> {
    const { mode } = await this.engine.getattr(ino);
    const kill = (mode & S_ISUID) | ((mode & S_ISGID) && (mode & S_IXGRP) ? S_ISGID : 0);
    if (kill) await this.engine.setattr(ino, { mode: mode & 0o7777 & ~kill });
  }

  /** READDIR / READDIRPLUS: entries from index `offset` of the handle's list, as many as fit in `size` bytes. */
  private async readdir(req: Request, plus: boolean): Promise<Buffer[]> {
    const a = args(fuse_read_in, req, 'fuse_read_in');
    const h = this.dirs.get(a.fh);
    if (h.entries === null || (a.offset === 0 && h.served)) h.entries = await this.engine.readdir(h.ino);
    h.served = true;
    const entries = h.entries;
    const picked: DirEntry[] = [];
    let bytes = 0;
    for (let i = a.offset; i < entries.length; i++) {
      const e = entries[i];
      const size = plus ? direntPlusSize(e.name.length) : direntSize(e.name.length);
      if (bytes + size > a.size) break;
      picked.push(e);
      bytes += size;
    }
    const buf = zeroed(bytes);
    if (!plus) {
      let at = 0;
      picked.forEach((e, k) => {
        at += encodeDirent(e, a.offset + k + 1, buf, at);
      });
      return [buf];
    }
    const attrs = await Promise.all(picked.map((e) => (isDotOrDotDot(e.name) ? undefined : this.engine.getattr(e.ino).catch(() => undefined))));
    let at = 0;
    picked.forEach((e, k) => {
      const attr = attrs[k];
      const entry = attr ? { nodeid: this.nodeid(attr.ino), attr, timeouts: this.timeouts } : undefined;
      at += encodeDirentPlus(e, a.offset + k + 1, entry, buf, at);
    });
    return [buf];
  }
}

/** FOPEN_* for an open with these open(2) flags, on a mount with or without the kernel's writeback cache. */
export function openFlagsFor(flags: number, writebackCache = false): number {
  // FOPEN_NOFLUSH: close(2) sends no FLUSH (one round trip less per open file). A local filesystem's close reports
  // nothing (ext4, xfs): write-back errors go to the next fsync, and with writeback_cache the kernel still writes its
  // pages back and reports their errors at close itself.
  // O_DIRECT: no page cache in the kernel either, and (with ASYNC_DIO) writes to one inode may arrive in parallel.
  // Not with the writeback cache: there the kernel holds dirty pages and i_size the engine has not seen, and a
  // FOPEN_DIRECT_IO read goes to the engine without writing them back first (a direct read after a buffered write
  // past the engine's end of file read nothing). Without the flag the kernel's own O_DIRECT path writes the range
  // back (and invalidates it, for writes) before each request, and clamps reads to its i_size; async direct I/O
  // still reaches the engine in parallel (ASYNC_DIO), but each submission takes the inode lock.
  if (!(flags & O_DIRECT) || writebackCache) return FOPEN_NOFLUSH;
  return FOPEN_NOFLUSH | FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
}

function isDotOrDotDot(name: Buffer): boolean {
  return (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
}
