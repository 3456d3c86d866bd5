/**
 * A Device over an image file or a block device node.
 *
 * Positional fs.read/fs.write on one descriptor: each request runs on the
 * libuv threadpool, so many are in flight at once and complete in any order
 * (nothing global is tuned; UV_THREADPOOL_SIZE is the operator's). A read or
 * write the kernel cuts short is continued; a read that meets the end of a
 * sparse image inside the device's size returns zeros for the rest.
 *
 * Size: fstat for an image (or `sizeBytes`, for an image that mkfs is about to
 * fill); for a block device /sys/dev/block/MAJ:MIN/size (always in 512-byte
 * units) and the logical sector size from .../queue/logical_block_size (a
 * partition has no queue/ of its own: its disk's is used).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { BaseDevice, toDeviceError } from './baseDevice';
import { DeviceError } from './device';
import { CACHED_READ_MAX_BYTES, readIfCached, type CachedRead } from './cachedRead';

const trace = createDebug('o2fuse:io');

/** The system calls FileDevice uses; tests substitute ones that return short counts or errors. */
export interface FileSyscalls {
  read(fd: number, buf: Buffer, bufOffset: number, length: number, position: number): Promise<number>;
  write(fd: number, buf: Buffer, bufOffset: number, length: number, position: number): Promise<number>;
  /** pwritev(2): the buffers back to back from `position`; returns the bytes written (possibly fewer). */
  writev(fd: number, bufs: readonly Buffer[], position: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  close(fd: number): Promise<void>;
  /** A read done at once when the page cache holds the bytes (cachedRead.ts); absent: every read is read(). */
  readIfCached?(fd: number, buf: Buffer, bufOffset: number, length: number, position: number): CachedRead;
}

/**
 * Writes of up to 1 MiB are done at once on the calling thread: pwrite(2)
 * into the host's page cache takes microseconds per 4 KiB, less than the
 * threadpool hand-off and the completion wake-up it would otherwise cost (two
 * thread wake-ups per write: the largest part of a 4 KiB direct write's
 * latency here, and a quarter of a 1 MiB one's). Measured with dd extending a
 * file by 1 MiB writes through a fresh daemon, two runs each alternating: 64
 * KiB limit 360-414 MB/s, 1 MiB 443-553 (kernel transport); 201-254 against
 * 248-302 (libfuse). Reads stay asynchronous: a cold block can take a disk's
 * latency. A budget per event-loop turn, in writes and in bytes, keeps a long
 * run of writes (write-back of scattered pages, or of a large file) from
 * holding the loop longer than the old 64 x 64 KiB did: past it, a write
 * waits for a later turn (setImmediate, after the I/O the loop has polled)
 * and is done there, on this thread. Handing it to the threadpool instead
 * cost the main thread more than the write itself (measured: submitting a
 * 128 KiB read or write took 15-23 us, the whole pwrite of 4 KiB 5-7): the
 * flusher writes a window of up to 1,024 scattered pages in one turn, and
 * all but 64 of them went that way. Write-back of 12,000 random pages
 * (engine harness, 2 alternating pairs): 19.5-20.0 -> 17.0-18.8 us a page;
 * the bench's buffered random-write job over the kernel transport (4 s,
 * fuseTrace, 3 alternating pairs): 12,137-15,399 -> 13,621-17,699 IOPS, mean
 * WRITE 31-40 -> 27-34 us. Writes over 1 MiB still go to the threadpool.
 */
const SYNC_WRITE_MAX_BYTES = 1024 * 1024;
const SYNC_WRITES_PER_TURN = 64;
const SYNC_BYTES_PER_TURN = 4 * 1024 * 1024;
let syncWritesThisTurn = 0;
let syncBytesThisTurn = 0;
let budgetResetQueued = false;

function takeSyncWriteBudget(length: number): boolean {
  if (length > SYNC_WRITE_MAX_BYTES || syncWritesThisTurn >= SYNC_WRITES_PER_TURN ||
    syncBytesThisTurn + length > SYNC_BYTES_PER_TURN) return false;
  syncWritesThisTurn++;
  syncBytesThisTurn += length;
  if (!budgetResetQueued) {
    budgetResetQueued = true;
    setImmediate(() => {
      syncWritesThisTurn = 0;
      syncBytesThisTurn = 0;
      budgetResetQueued = false;
    });
  }
  return true;
}

/**
 * A write of `length` bytes as the policy above places it: on this thread now when the turn's budget allows; a
 * write of up to 1 MiB past it on a later turn, still on this thread; anything larger on the threadpool.
 */
function writeByPolicy(length: number, sync: () => number,
  async: (done: (err: NodeJS.ErrnoException | null, n: number) => void) => void): Promise<number> {
  if (takeSyncWriteBudget(length)) {
    try {
      return Promise.resolve(sync());
    } catch (err) {
      return Promise.reject(err);
    }
  }
  if (length <= SYNC_WRITE_MAX_BYTES) {
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => writeByPolicy(length, sync, async));
  }
  return new Promise((resolve, reject) => async((err, n) => (err ? reject(err) : resolve(n))));
}

export const nodeFileSyscalls: FileSyscalls = {
  read: (fd, buf, bufOffset, length, position) =>
    new Promise((resolve, reject) =>
      fs.read(fd, buf, bufOffset, length, position, (err, n) => (err ? reject(err) : resolve(n))),
    ),
  write: (fd, buf, bufOffset, length, position) => writeByPolicy(length,
    () => fs.writeSync(fd, buf, bufOffset, length, position),
    (done) => fs.write(fd, buf, bufOffset, length, position, done)),
  // A gather: a journal commit's log, a checkpoint's run of blocks, written with no copy on the event loop.
  writev: (fd, bufs, position) => writeByPolicy(bufs.reduce((n, b) => n + b.length, 0),
    () => fs.writevSync(fd, bufs as Buffer[], position),
    (done) => fs.writev(fd, bufs as Buffer[], position, done)),
  fdatasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
  readIfCached,
  close: (fd) => new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve()))),
};

export interface FileDeviceOptions {
  readOnly?: boolean;
  /**
   * Device size for an image file; default its current size. Larger than the
   * file: reads past its end are zeros and writes extend it. Must not exceed a
   * block device's size.
   */
  sizeBytes?: number;
  /** Test seam: the calls that do the I/O. */
  syscalls?: FileSyscalls;
  /** Test seam: where sysfs is mounted. */
  sysRoot?: string;
}

export type FileDeviceKind = 'image' | 'block';

/** Block device numbers from a st_rdev/st_dev (glibc's encoding: 12+20 bit major, 20+12 bit minor). */
export function splitDevNumber(dev: bigint): { major: number; minor: number } {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/** Size and logical sector size of block device MAJ:MIN, from sysfs. */
export async function blockDeviceGeometry(
  major: number,
  minor: number,
  sysRoot = '/sys',
): Promise<{ sizeBytes: number; sectorSize: number }> {
  const link = path.join(sysRoot, 'dev', 'block', `${major}:${minor}`);
  const dir = await fs.promises.realpath(link).catch((err) => {
    throw toDeviceError(err, `block device ${major}:${minor} not in ${sysRoot}/dev/block`);
  });
  const sectors = await readSysNumber(path.join(dir, 'size'));
  // A partition's directory sits inside its disk's, which holds the queue limits.
  let sectorSize: number;
  try {
    sectorSize = await readSysNumber(path.join(dir, 'queue', 'logical_block_size'));
  } catch {
    sectorSize = await readSysNumber(path.join(path.dirname(dir), 'queue', 'logical_block_size'));
  }
  // sysfs "size" is in 512-byte units whatever the logical block size.
  return { sizeBytes: sectors * 512, sectorSize };
}

async function readSysNumber(file: string): Promise<number> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw toDeviceError(err, `read ${file}`);
  }
  const value = Number(text.trim());
  if (!Number.isSafeInteger(value) || value < 0) throw new DeviceError('EIO', `${file} holds no count: ${text.trim()}`);
  return value;
}

/** How a FileDevice's reads were served: at once from the host's page cache, or on the threadpool. */
export interface ReadPaths {
  cached: number;
  threadpool: number;
}

export class FileDevice extends BaseDevice {
  readonly readPaths: ReadPaths = { cached: 0, threadpool: 0 };
  /** Cleared when the file turns out not to support reads that do not wait. */
  private tryCached = true;

  private constructor(
    readonly path: string,
    readonly fd: number,
    readonly kind: FileDeviceKind,
    size: number,
    sectorSize: number,
    readOnly: boolean,
    private readonly sys: FileSyscalls,
  ) {
    super({ size, sectorSize, readOnly, name: `${kind === 'image' ? 'image' : 'block device'} ${path}` });
  }

  static async open(devicePath: string, options: FileDeviceOptions = {}): Promise<FileDevice> {
    const readOnly = options.readOnly ?? false;
    const sys = options.syscalls ?? nodeFileSyscalls;
    const flags = readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR;
    let fd: number;
    try {
      fd = await new Promise<number>((resolve, reject) =>
        fs.open(devicePath, flags, (err, n) => (err ? reject(err) : resolve(n))),
      );
    } catch (err) {
      throw toDeviceError(err, `open ${devicePath}${readOnly ? ' read-only' : ''}`);
    }
    try {
      const st = await new Promise<fs.BigIntStats>((resolve, reject) =>
        fs.fstat(fd, { bigint: true }, (err, s) => (err ? reject(err) : resolve(s))),
      ).catch((err) => {
        throw toDeviceError(err, `fstat ${devicePath}`);
      });
      const wanted = options.sizeBytes;
      if (wanted !== undefined && (!Number.isSafeInteger(wanted) || wanted < 0)) {
        throw new DeviceError('EINVAL', `sizeBytes must be a byte count: ${wanted}`);
      }
      if (st.isFile()) {
        const size = wanted ?? Number(st.size);
        return new FileDevice(devicePath, fd, 'image', size, 512, readOnly, sys);
      }
      if (st.isBlockDevice()) {
        const { major, minor } = splitDevNumber(st.rdev);
        const geometry = await blockDeviceGeometry(major, minor, options.sysRoot);
        if (wanted !== undefined && wanted > geometry.sizeBytes) {
          throw new DeviceError('EINVAL', `sizeBytes ${wanted} exceeds ${devicePath} (${geometry.sizeBytes} bytes)`);
        }
        const size = wanted ?? geometry.sizeBytes;
        return new FileDevice(devicePath, fd, 'block', size, geometry.sectorSize, readOnly, sys);
      }
      throw new DeviceError('EINVAL', `${devicePath} is neither a regular file nor a block device`);
    } catch (err) {
      fs.close(fd, () => undefined);
      throw err;
    }
  }

  protected async readIntoImpl(buf: Buffer, offset: number): Promise<void> {
    let doneBytes = 0;
    while (doneBytes < buf.length) {
      const n = this.readCached(buf, doneBytes, offset + doneBytes) ??
        await this.sys.read(this.fd, buf, doneBytes, buf.length - doneBytes, offset + doneBytes);
      if (n === 0) {
        if (this.kind === 'image') {
          // The image ends before the device does: a sparse tail reads as zeros.
          buf.fill(0, doneBytes);
          return;
        }
        throw new DeviceError('EIO', `unexpected end of ${this.name} at ${offset + doneBytes}`);
      }
      doneBytes += n;
    }
  }

  /** buf[from..] read at once when the host's page cache holds it (a count, maybe short), else undefined (counted). */
  private readCached(buf: Buffer, from: number, position: number): number | undefined {
    const length = buf.length - from;
    const r = this.tryCached && length <= CACHED_READ_MAX_BYTES ? this.sys.readIfCached?.(this.fd, buf, from, length, position) : undefined;
    if (typeof r === 'number') {
      this.readPaths.cached++;
      return r;
    }
    if (r === 'unsupported') {
      this.tryCached = false;
      trace('%s: reads cannot be tried without waiting here: all take the threadpool', this.name);
    }
    this.readPaths.threadpool++;
    return undefined;
  }

  protected async writeImpl(buf: Buffer, offset: number): Promise<void> {
    let doneBytes = 0;
    while (doneBytes < buf.length) {
      const n = await this.sys.write(this.fd, buf, doneBytes, buf.length - doneBytes, offset + doneBytes);
      if (n <= 0) throw new DeviceError('EIO', `${this.name} accepted no bytes at ${offset + doneBytes}`);
      doneBytes += n;
    }
  }

  protected override async writevImpl(bufs: readonly Buffer[], offset: number): Promise<void> {
    let rest = bufs;
    let at = offset;
    while (rest.length > 0) {
      const n = await this.sys.writev(this.fd, rest, at);
      if (n <= 0) throw new DeviceError('EIO', `${this.name} accepted no bytes at ${at}`);
      at += n;
      rest = past(rest, n);
    }
  }

  protected flushImpl(): Promise<void> {
    return this.sys.fdatasync(this.fd);
  }

  protected async closeImpl(): Promise<void> {
    try {
      await this.sys.close(this.fd);
    } catch (err) {
      throw toDeviceError(err, `close ${this.name}`);
    }
  }
}

/** What is left of `bufs` once its first `n` bytes are written (a short pwritev). */
function past(bufs: readonly Buffer[], n: number): readonly Buffer[] {
  let i = 0;
  while (i < bufs.length && n >= bufs[i].length) n -= bufs[i++].length;
  if (i === bufs.length) return [];
  return n === 0 ? bufs.slice(i) : [bufs[i].subarray(n), ...bufs.slice(i + 1)];
}
