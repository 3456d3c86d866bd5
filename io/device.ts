/**
 * The block device the engine reads and writes: an image file, a block device
 * node, memory, or a fault-injecting wrapper around any of them.
 *
 * Requests are positional and asynchronous; many may be in flight at once and
 * they may complete in any order (the fault device makes sure they do in
 * tests). Offsets and lengths are in bytes and need not be aligned: alignment
 * is the caller's business (the direct-I/O path), not the device's.
 *
 * Implementations: io/fileDevice.ts (image file or block device node),
 * io/memoryDevice.ts (tests), io/faultyDevice.ts (delays, holds, reordering,
 * EIO, power cut; configured from `-o inject=` by io/injectSpec.ts). Argument
 * checks every implementation shares live in io/baseDevice.ts.
 */
import { constants } from 'node:os';
import type { DeviceStats } from './baseDevice';

/**
 * Any POSIX errno name. The device layer passes the OS's own errno through
 * (EBADF, EACCES, ENOENT, EBUSY...) so the engine's one errno map sees it; the
 * common ones are EIO, ENOSPC, EROFS, EINVAL and EBADF.
 */
export type DeviceErrno = keyof typeof constants.errno;

export class DeviceError extends Error {
  constructor(readonly errno: DeviceErrno, message: string) {
    super(`${errno}: ${message}`);
    this.name = 'DeviceError';
  }
}

export interface Device {
  /** Size in bytes. */
  readonly size: number;
  /** Logical sector size: the smallest direct-I/O alignment the device takes (512 for image files). */
  readonly sectorSize: number;
  readonly readOnly: boolean;
  /** A short description for messages ("image /path/o2fuse.img"). */
  readonly name: string;

  /**
   * Reads exactly `length` bytes at `offset` (zeros past the end of a sparse file are real data).
   * A range that does not lie inside [0, size) fails with EIO, as the kernel's "access beyond end
   * of device"; a negative or fractional offset or length fails with EINVAL.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /** Fills all of `buf` from `offset`, as read() would (the same checks; zeros past the end of a sparse file). */
  readInto(buf: Buffer, offset: number): Promise<void>;
  /** Writes all of `buf` at `offset`. The caller must not change `buf` until the promise settles. */
  write(buf: Buffer, offset: number): Promise<void>;
  /**
   * Writes `bufs` back to back from `offset` as one request: what write(Buffer.concat(bufs), offset) does, without
   * the copy where the backend can gather (pwritev on a file). The caller must not change the buffers until the
   * promise settles.
   */
  writev(bufs: readonly Buffer[], offset: number): Promise<void>;
  /** Makes every completed write durable (fdatasync). */
  flush(): Promise<void>;
  /** Waits for requests in flight, then releases the device; later requests fail with EBADF. */
  close(): Promise<void>;
  /** Requests accepted and not yet settled, where the device counts them (BaseDevice does). */
  readonly inFlight?: number;
  /** Requests and bytes since the device was opened, where the device counts them (BaseDevice does). */
  stats?(): DeviceStats;
}
