/**
 * fuse-native callbacks -> Engine calls. Nothing else lives here: no
 * filesystem logic, only path resolution, handle bookkeeping, unit
 * conversion and the errno map.
 *
 * Left out on purpose:
 * - create: fuse-native's create(path, mode) gets no open flags; without it
 *   the kernel sends mknod + open, and open carries O_DIRECT.
 * - fgetattr: fuse-native routes it to getattr anyway.
 * - access, opendir/releasedir, xattrs: the engine has none; libfuse answers
 *   ENOSYS and the kernel stops asking.
 */
import createDebug from 'debug';
import type { FuseOps, FuseStat, FuseStatfs } from 'fuse-native';
import type { Attr, Caller, Engine, SetAttr, Timespec } from '../api';
import { fuseErrno, errnoName, isExpectedError } from './errno';
import { PathResolver } from './paths';
import { S_IFDIR, S_IFMT } from '../format/constants';

const log = createDebug('o2fuse:fuse');

const U32_MAX = 0xffffffff;
/** fuse-native turns UTIME_NOW and UTIME_OMIT (tv_sec 0, tv_nsec ~2^30) into this many milliseconds. */
const UTIME_SPECIAL_MS = Math.floor(((1 << 30) - 1) / 1e6);
/** chown(2)'s "leave unchanged", as a 32-bit unsigned number. */
const ID_UNCHANGED = U32_MAX;

export interface NativeAdapterOptions {
  /** Owner of new inodes: fuse-native does not expose the caller's uid/gid. */
  caller?: Caller;
  /** Called once per call that fails for a reason that is not an errno (a bug). */
  onUnexpected?: (op: string, path: string, err: unknown) => void;
}

export function timespecToMs(t: Timespec): number {
  return Math.max(0, t.sec * 1000 + Math.floor(t.nsec / 1e6));
}

export function msToTimespec(ms: number): Timespec {
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: (ms - sec * 1000) * 1e6 };
}

let warnedWideIno = false;

export function toFuseStat(a: Attr): FuseStat {
  if (a.ino > U32_MAX && !warnedWideIno) {
    warnedWideIno = true;
    log('inode %d does not fit st_ino (32 bits in fuse-native): inode numbers are truncated', a.ino);
  }
  return {
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    nlink: a.nlink,
    ino: a.ino % 2 ** 32,
    rdev: a.rdev,
    blksize: a.blksize,
    blocks: a.blocks,
    atime: timespecToMs(a.atime),
    mtime: timespecToMs(a.mtime),
    ctime: timespecToMs(a.ctime),
  };
}

/** statfs counts are 32-bit in fuse-native: grow the fragment size until the block counts fit, so df stays right. */
export function toFuseStatfs(s: { bsize: number; frsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; namemax: number }): FuseStatfs {
  let { frsize, blocks, bfree, bavail } = s;
  while (blocks > U32_MAX) {
    frsize *= 2;
    blocks = Math.floor(blocks / 2);
    bfree = Math.floor(bfree / 2);
    bavail = Math.floor(bavail / 2);
  }
  const files = Math.min(s.files, U32_MAX);
  const ffree = Math.min(s.ffree, U32_MAX);
  return { bsize: Math.min(s.bsize, U32_MAX), frsize, blocks, bfree, bavail, files, ffree, favail: ffree, fsid: 0, flag: 0, namemax: s.namemax };
}

/**
 * fuse-native passes atime in both utimens slots (mtime is lost) and squashes
 * UTIME_NOW/UTIME_OMIT into one value. Best effort: the special value means
 * "now" for both (touch), any other value is given to both (touch -d).
 */
export function utimensChanges(atimeMs: number): SetAttr {
  if (atimeMs === UTIME_SPECIAL_MS) return { atime: 'now', mtime: 'now' };
  const t = msToTimespec(atimeMs);
  return { atime: t, mtime: t };
}

export function createNativeOps(engine: Engine, options: NativeAdapterOptions = {}): FuseOps {
  const paths = new PathResolver(engine);
  const inoByFh = new Map<number, number>();
  const caller: Caller = options.caller ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

  function failed(op: string, path: string, err: unknown): number {
    const errno = fuseErrno(err);
    if (!isExpectedError(err)) {
      log('%s %s: unexpected %O', op, path, err);
      options.onUnexpected?.(op, path, err);
    } else if (errnoName(err) !== 'ENOENT') {
      log('%s %s: %s', op, path, (err as Error).message ?? errnoName(err));
    }
    return errno;
  }

  /** Runs `work`, answers with `ok(result)` or a negative errno through `reply`. */
  function run<T>(op: string, path: string, reply: (err: number, ...rest: never[]) => void, work: () => Promise<T>, ok: (v: T) => unknown[] = () => []): void {
    work().then(
      (v) => (reply as (err: number, ...rest: unknown[]) => void)(0, ...ok(v)),
      (err) => reply(failed(op, path, err)),
    );
  }

  async function fileIno(path: string, fh: number): Promise<number> {
    return inoByFh.get(fh) ?? paths.ino(path);
  }

  return {
    init(cb) {
      cb(0);
    },

    statfs(path, cb) {
      run('statfs', path, cb, () => engine.statfs(), (s) => [toFuseStatfs(s)]);
    },

    getattr(path, cb) {
      run('getattr', path, cb, () => paths.attr(path), (a) => [toFuseStat(a)]);
    },

    readdir(path, cb) {
      run('readdir', path, cb, async () => engine.readdir(await paths.ino(path)), (entries) => [
        entries.map((e) => e.name.toString('utf8')),
        // libfuse takes only st_ino (with use_ino) and the type bits from these.
        entries.map((e): FuseStat => ({ mode: e.type, ino: e.ino % 2 ** 32 })),
      ]);
    },

    readlink(path, cb) {
      run('readlink', path, cb, async () => engine.readlink(await paths.ino(path)), (target) => [target.toString('utf8')]);
    },

    open(path, flags, cb) {
      run('open', path, cb, async () => {
        const ino = await paths.ino(path);
        const fh = await engine.open(ino, flags);
        inoByFh.set(fh, ino);
        return fh;
      }, (fh) => [fh]);
    },

    read(path, fh, buf, len, pos, cb) {
      fileIno(path, fh)
        // The engine reads straight into libfuse's buffer (valid until cb): no copy, no garbage per read.
        .then((ino) => engine.read(ino, fh, pos, len, buf.length >= len ? buf.subarray(0, len) : undefined))
        .then(
          (data) => cb(data.buffer === buf.buffer ? data.length : data.copy(buf, 0, 0, Math.min(len, data.length))),
          (err) => cb(failed('read', path, err)),
        );
    },

    write(path, fh, buf, len, pos, cb) {
      // buf is libfuse's memory, valid until we reply; the engine reads it only until write() settles (fs/api.ts).
      const data = buf.subarray(0, len);
      fileIno(path, fh)
        .then((ino) => engine.write(ino, fh, pos, data))
        .then(
          (written) => cb(written),
          (err) => cb(failed('write', path, err)),
        );
    },

    flush(path, fh, cb) {
      run('flush', path, cb, async () => engine.flush(await fileIno(path, fh), fh));
    },

    fsync(path, datasync, fh, cb) {
      run('fsync', path, cb, async () => engine.fsync(await fileIno(path, fh), fh, datasync !== 0));
    },

    release(path, fh, cb) {
      run('release', path, cb, async () => {
        const ino = await fileIno(path, fh);
        inoByFh.delete(fh);
        await engine.release(ino, fh);
      });
    },

    fsyncdir(path, datasync, _fh, cb) {
      run('fsyncdir', path, cb, async () => engine.fsyncdir(await paths.ino(path), datasync !== 0));
    },

    truncate(path, size, cb) {
      run('truncate', path, cb, async () => engine.setattr(await paths.ino(path), { size }));
    },

    ftruncate(path, fh, size, cb) {
      run('ftruncate', path, cb, async () => engine.setattr(await fileIno(path, fh), { size }));
    },

    utimens(path, atimeMs, _mtimeMs, cb) {
      run('utimens', path, cb, async () => engine.setattr(await paths.ino(path), utimensChanges(atimeMs)));
    },

    chown(path, uid, gid, cb) {
      const changes: SetAttr = {};
      if (uid !== ID_UNCHANGED) changes.uid = uid;
      if (gid !== ID_UNCHANGED) changes.gid = gid;
      run('chown', path, cb, async () => engine.setattr(await paths.ino(path), changes));
    },

    chmod(path, mode, cb) {
      run('chmod', path, cb, async () => engine.setattr(await paths.ino(path), { mode }));
    },

    mknod(path, mode, dev, cb) {
      run('mknod', path, cb, async () => {
        const { parent, name } = await paths.parentOf(path);
        await engine.mknod(parent, name, mode, dev, caller);
      });
    },

    mkdir(path, mode, cb) {
      run('mkdir', path, cb, async () => {
        const { parent, name } = await paths.parentOf(path);
        await engine.mkdir(parent, name, mode, caller);
      });
    },

    symlink(target, path, cb) {
      run('symlink', path, cb, async () => {
        const { parent, name } = await paths.parentOf(path);
        await engine.symlink(parent, name, Buffer.from(target, 'utf8'), caller);
      });
    },

    link(existing, path, cb) {
      run('link', path, cb, async () => {
        const ino = await paths.ino(existing);
        const { parent, name } = await paths.parentOf(path);
        await engine.link(ino, parent, name);
      });
    },

    unlink(path, cb) {
      run('unlink', path, cb, async () => {
        const { parent, name } = await paths.parentOf(path);
        try {
          await engine.unlink(parent, name);
        } finally {
          // unlink(2) removes no directory: nothing is cached below the name.
          paths.forget(path);
        }
      });
    },

    rmdir(path, cb) {
      run('rmdir', path, cb, async () => {
        const { parent, name } = await paths.parentOf(path);
        try {
          await engine.rmdir(parent, name);
        } finally {
          paths.forgetTree(path);
        }
      });
    },

    rename(src, dest, cb) {
      run('rename', src, cb, async () => {
        const from = await paths.parentOf(src);
        const to = await paths.parentOf(dest);
        try {
          await engine.rename(from.parent, from.name, to.parent, to.name, 0);
        } finally {
          paths.forget(src);
          paths.forget(dest);
          // A directory takes the paths below it along (and one it replaced was empty); a file takes none. When
          // in doubt (the name is gone), both trees go.
          const moved = await engine.lookup(to.parent, to.name).catch(() => undefined);
          if (!moved || (moved.mode & S_IFMT) === S_IFDIR) {
            paths.forgetTree(src);
            paths.forgetTree(dest);
          }
        }
      });
    },
  };
}
