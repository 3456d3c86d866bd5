/**
 * The part of fuse-native 2.2.6 (index.js, fuse-native.c) that o2fuse uses.
 * Conventions of that binding, checked in its sources: success is 0 and an
 * error a negative errno; read and write report their byte count in the error
 * slot (cb(bytes)); times are milliseconds; st_ino and statfs counts are 32-bit.
 */
declare module 'fuse-native' {
  export interface FuseStat {
    mode: number;
    uid?: number;
    gid?: number;
    size?: number;
    dev?: number;
    nlink?: number;
    ino?: number;
    rdev?: number;
    blksize?: number;
    blocks?: number;
    /** Milliseconds since the epoch (or a Date). */
    atime?: number | Date;
    mtime?: number | Date;
    ctime?: number | Date;
  }

  export interface FuseStatfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }

  type Done = (err: number) => void;

  export interface FuseOps {
    init?(cb: Done): void;
    statfs?(path: string, cb: (err: number, st?: FuseStatfs) => void): void;
    getattr?(path: string, cb: (err: number, st?: FuseStat) => void): void;
    readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
    readlink?(path: string, cb: (err: number, target?: string) => void): void;
    open?(path: string, flags: number, cb: (err: number, fh?: number) => void): void;
    read?(path: string, fh: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    write?(path: string, fh: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    flush?(path: string, fh: number, cb: Done): void;
    fsync?(path: string, datasync: number, fh: number, cb: Done): void;
    fsyncdir?(path: string, datasync: number, fh: number, cb: Done): void;
    release?(path: string, fh: number, cb: Done): void;
    truncate?(path: string, size: number, cb: Done): void;
    ftruncate?(path: string, fh: number, size: number, cb: Done): void;
    utimens?(path: string, atimeMs: number, mtimeMs: number, cb: Done): void;
    chown?(path: string, uid: number, gid: number, cb: Done): void;
    chmod?(path: string, mode: number, cb: Done): void;
    mknod?(path: string, mode: number, dev: number, cb: Done): void;
    mkdir?(path: string, mode: number, cb: Done): void;
    symlink?(target: string, path: string, cb: Done): void;
    link?(existing: string, path: string, cb: Done): void;
    unlink?(path: string, cb: Done): void;
    rmdir?(path: string, cb: Done): void;
    rename?(src: string, dest: string, cb: Done): void;
  }

  export interface FuseOptions {
    timeout?: number | false;
    [key: string]: unknown;
  }

  class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    /** Internal: the "-o..." string handed to libfuse. */
    _fuseOptions(): string;
  }

  export default Fuse;
}
