/**
 * A fuse-native passthrough of a host directory: the floor cost of the
 * binding o2fuse's libfuse transport uses (fuse-native 2.2.6 over libfuse
 * 2.9, fuse_loop_mt, one JavaScript callback per request), with the same
 * mount options that matter for throughput (big_writes, max_write=1M).
 *
 *   node dist/bench/passthrough.js SOURCE_DIR MOUNTPOINT
 *
 * Prints "ready <pid>" on stdout once the mount is live and exits when the
 * kernel ends the session (fusermount -u, umount). SIGINT/SIGTERM unmount.
 *
 * Shaped like o2fuse's adapter so the kernel sends the same requests: no
 * `create` (the kernel sends mknod + open), no access/opendir. O_DIRECT is
 * cleared before opening the host file: the request buffers libfuse hands
 * over are not sector-aligned (bindfs clears it too, by default), and
 * o2fuse's own "direct" path also ends in the host page cache of its image.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Fuse, { type FuseOps, type FuseStat } from 'fuse-native';

const O_DIRECT = fs.constants.O_DIRECT ?? 0o40000;
const U32 = 2 ** 32;
const OPTIONS = ['big_writes', 'max_write=1048576', 'subtype=passthrough'];
const SESSION_POLL_MS = 100;

function errno(err: NodeJS.ErrnoException | null): number {
  if (!err) return 0;
  return typeof err.errno === 'number' ? -Math.abs(err.errno) : -5;
}

function toStat(s: fs.Stats): FuseStat {
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    dev: s.dev % U32,
    nlink: s.nlink,
    ino: s.ino % U32,
    rdev: s.rdev % U32,
    blksize: s.blksize,
    blocks: s.blocks,
    atime: s.atimeMs,
    mtime: s.mtimeMs,
    ctime: s.ctimeMs,
  };
}

export function passthroughOps(root: string): FuseOps {
  const p = (rel: string) => path.join(root, rel);
  const done = (cb: (err: number) => void) => (err: NodeJS.ErrnoException | null) => cb(errno(err));
  return {
    getattr: (rel, cb) => fs.lstat(p(rel), (err, st) => (err ? cb(errno(err)) : cb(0, toStat(st)))),
    readdir: (rel, cb) => fs.readdir(p(rel), (err, names) => (err ? cb(errno(err)) : cb(0, names))),
    readlink: (rel, cb) => fs.readlink(p(rel), (err, target) => (err ? cb(errno(err)) : cb(0, target))),
    statfs: (rel, cb) =>
      fs.statfs(p(rel), (err, st) => {
        if (err) return cb(errno(err));
        // fuse-native's statfs fields are 32-bit: scale the block size until the counts fit.
        let frsize = st.bsize;
        let scale = 1;
        while (st.blocks / scale >= U32) { scale *= 2; frsize *= 2; }
        cb(0, {
          bsize: st.bsize, frsize,
          blocks: Math.floor(st.blocks / scale), bfree: Math.floor(st.bfree / scale), bavail: Math.floor(st.bavail / scale),
          files: Math.min(st.files, U32 - 1), ffree: Math.min(st.ffree, U32 - 1), favail: Math.min(st.ffree, U32 - 1),
          fsid: 0, flag: 0, namemax: 255,
        });
      }),
    open: (rel, flags, cb) => fs.open(p(rel), flags & ~O_DIRECT, (err, fd) => (err ? cb(errno(err)) : cb(0, fd))),
    read: (_rel, fd, buf, len, pos, cb) => fs.read(fd, buf, 0, len, pos, (err, n) => cb(err ? errno(err) : n)),
    write: (_rel, fd, buf, len, pos, cb) => fs.write(fd, buf, 0, len, pos, (err, n) => cb(err ? errno(err) : n)),
    flush: (_rel, _fd, cb) => cb(0),
    fsync: (_rel, datasync, fd, cb) => (datasync ? fs.fdatasync(fd, done(cb)) : fs.fsync(fd, done(cb))),
    release: (_rel, fd, cb) => fs.close(fd, done(cb)),
    truncate: (rel, size, cb) => fs.truncate(p(rel), size, done(cb)),
    ftruncate: (_rel, fd, size, cb) => fs.ftruncate(fd, size, done(cb)),
    utimens: (rel, atimeMs, mtimeMs, cb) => fs.utimes(p(rel), atimeMs / 1000, mtimeMs / 1000, done(cb)),
    chmod: (rel, mode, cb) => fs.chmod(p(rel), mode, done(cb)),
    chown: (rel, uid, gid, cb) => fs.lchown(p(rel), uid, gid, done(cb)),
    mknod: (rel, mode, _dev, cb) => {
      // Regular files only: the benchmark's workloads make nothing else.
      if ((mode & fs.constants.S_IFMT) !== fs.constants.S_IFREG) return cb(-1 /* EPERM */);
      const flags = fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY;
      fs.open(p(rel), flags, mode & 0o7777, (err, fd) => (err ? cb(errno(err)) : fs.close(fd, done(cb))));
    },
    mkdir: (rel, mode, cb) => fs.mkdir(p(rel), mode, done(cb)),
    rmdir: (rel, cb) => fs.rmdir(p(rel), done(cb)),
    unlink: (rel, cb) => fs.unlink(p(rel), done(cb)),
    rename: (src, dest, cb) => fs.rename(p(src), p(dest), done(cb)),
    symlink: (target, rel, cb) => fs.symlink(target, p(rel), done(cb)),
    link: (existing, rel, cb) => fs.link(p(existing), p(rel), done(cb)),
  };
}

class PassthroughFuse extends Fuse {
  override _fuseOptions(): string {
    return `-o${OPTIONS.join(',')}`;
  }
}

function fuseDescriptors(): Set<number> {
  const fds = new Set<number>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${name}`) === '/dev/fuse') fds.add(Number(name));
    } catch {
      // the readdir's own descriptor, closed meanwhile
    }
  }
  return fds;
}

function main(): void {
  const [source, mountpoint] = process.argv.slice(2);
  if (!source || !mountpoint) {
    process.stderr.write('usage: passthrough.js SOURCE_DIR MOUNTPOINT\n');
    process.exit(2);
  }
  const root = fs.realpathSync(source);
  const fuse = new PassthroughFuse(mountpoint, passthroughOps(root), { timeout: false });
  const before = fuseDescriptors();
  fuse.mount((err) => {
    if (err) {
      process.stderr.write(`passthrough: mount failed: ${err.message}\n`);
      process.exit(1);
    }
    // fuse-native says nothing when the kernel ends the session; its /dev/fuse descriptor closing is the sign.
    const fd = [...fuseDescriptors()].find((n) => !before.has(n));
    process.stdout.write(`ready ${process.pid}\n`);
    const timer = setInterval(() => {
      let alive = false;
      try {
        alive = fd !== undefined && fs.readlinkSync(`/proc/self/fd/${fd}`) === '/dev/fuse';
      } catch {
        alive = false;
      }
      if (!alive) {
        clearInterval(timer);
        process.exit(0);
      }
    }, SESSION_POLL_MS);
  });
  const stop = () => fuse.unmount(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) main();
