/**
 * fsx's mount side: one step (fsxModel.ts) done with the system calls a
 * storage engineer's tools make on a mounted file: pread/pwrite on a buffered
 * and an O_DIRECT descriptor, ftruncate, fsync, and fallocate(1) for punch,
 * zero range and preallocation. Shared by the tests that run fsx through FUSE.
 */
import { constants as C, promises as fsp, type promises } from 'node:fs';
import path from 'node:path';
import { runOk } from '../lib/exec';
import type { FsxStep } from './fsxModel';

/** A file on the mount, open twice: buffered and O_DIRECT. */
export interface MountFile {
  file: string;
  buffered: promises.FileHandle;
  direct: promises.FileHandle;
}

export async function openMountFile(dir: string, name: string): Promise<MountFile> {
  const file = path.join(dir, name);
  const buffered = await fsp.open(file, C.O_RDWR | C.O_CREAT, 0o644);
  return { file, buffered, direct: await fsp.open(file, C.O_RDWR | C.O_DIRECT) };
}

async function readAt(h: promises.FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let n = 0;
  while (n < length) {
    const { bytesRead } = await h.read(buf, n, length - n, offset + n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return buf.subarray(0, n);
}

async function fallocate(file: string, args: string[], offset: number, length: number): Promise<void> {
  await runOk('fallocate', [...args, '-o', String(offset), '-l', String(length), file]);
}

/** Does `s`: resolves to a read's bytes, a write's byte count, or nothing. */
export async function mountStep(f: MountFile, s: FsxStep): Promise<Buffer | number | void> {
  switch (s.op) {
    case 'bwrite': return (await f.buffered.write(s.data!, 0, s.length, s.offset)).bytesWritten;
    case 'dwrite': return (await f.direct.write(s.data!, 0, s.length, s.offset)).bytesWritten;
    case 'bread': return readAt(f.buffered, s.offset, s.length);
    case 'dread': return readAt(f.direct, s.offset, s.length);
    case 'truncate': return f.buffered.truncate(s.size);
    case 'punch': return fallocate(f.file, ['-p'], s.offset, s.length);
    case 'zero': return fallocate(f.file, ['-z'], s.offset, s.length);
    case 'prealloc': return fallocate(f.file, s.keep ? ['-n'] : [], s.offset, s.length);
    case 'fsync': return f.buffered.sync();
  }
}
