/**
 * What every Device shares: argument checks, the closed state, in-flight
 * accounting and error mapping. Backends implement four primitives and never
 * see a request that falls outside the device or arrives after close()
 * (random-access-storage's base-class shape).
 */
import { constants } from 'node:os';
import { Device, DeviceErrno, DeviceError } from './device';

/**
 * Longest single request: Node's fs.read/fs.write take at most 2 GiB - 1 per
 * call; engine requests are a few MiB. A bigger request is a caller bug.
 */
export const DEVICE_REQUEST_BYTES_MAX = 1024 * 1024 * 1024;

export type DeviceOp = 'read' | 'write' | 'flush';

export interface DeviceStats {
  reads: number;
  writes: number;
  flushes: number;
  bytesRead: number;
  bytesWritten: number;
  /** Requests that failed (any errno). */
  errors: number;
  /** Requests accepted and not yet settled. */
  inFlight: number;
  /** Highest inFlight seen since the device was opened (or resetMaxInFlight()). */
  maxInFlight: number;
}

export interface DeviceGeometry {
  size: number;
  sectorSize: number;
  readOnly: boolean;
  name: string;
}

export abstract class BaseDevice implements Device {
  readonly size: number;
  readonly sectorSize: number;
  readonly readOnly: boolean;
  readonly name: string;

  private readonly counters: DeviceStats = {
    reads: 0,
    writes: 0,
    flushes: 0,
    bytesRead: 0,
    bytesWritten: 0,
    errors: 0,
    inFlight: 0,
    maxInFlight: 0,
  };
  private closing: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];

  protected constructor(geometry: DeviceGeometry) {
    const { size, sectorSize } = geometry;
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`device size must be a byte count: ${size}`);
    if (!Number.isInteger(sectorSize) || sectorSize < 512 || (sectorSize & (sectorSize - 1)) !== 0) {
      throw new RangeError(`sector size must be a power of two >= 512: ${sectorSize}`);
    }
    this.size = size;
    this.sectorSize = sectorSize;
    this.readOnly = geometry.readOnly;
    this.name = geometry.name;
  }

  /** Fills all of `buf` from `offset` (already checked to lie inside the device). */
  protected abstract readIntoImpl(buf: Buffer, offset: number): Promise<void>;
  /** Writes all of `buf` at `offset` (already checked; never called on a read-only device). */
  protected abstract writeImpl(buf: Buffer, offset: number): Promise<void>;
  /** Writes `bufs` back to back from `offset` (checked as writeImpl's); backends that can gather override the copy. */
  protected writevImpl(bufs: readonly Buffer[], offset: number): Promise<void> {
    return this.writeImpl(Buffer.concat(bufs), offset);
  }
  protected abstract flushImpl(): Promise<void>;
  /** Called once, after every request in flight has settled. */
  protected abstract closeImpl(): Promise<void>;

  get closed(): boolean {
    return this.closing !== null;
  }

  /** Requests accepted and not yet settled (stats().inFlight without the copy). */
  get inFlight(): number {
    return this.counters.inFlight;
  }

  stats(): DeviceStats {
    return { ...this.counters };
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.counters.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  resetMaxInFlight(): void {
    this.counters.maxInFlight = this.counters.inFlight;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkCount('length', length);
    const buf = Buffer.alloc(length);
    await this.readInto(buf, offset);
    return buf;
  }

  readInto(buf: Buffer, offset: number): Promise<void> {
    return this.track('read', offset, lengthOf('read', buf), () => this.readIntoImpl(buf, offset));
  }

  write(buf: Buffer, offset: number): Promise<void> {
    if (this.readOnly && !this.closed) {
      return Promise.reject(new DeviceError('EROFS', `${this.name} is read-only`));
    }
    return this.track('write', offset, lengthOf('write', buf), () => this.writeImpl(buf, offset));
  }

  writev(bufs: readonly Buffer[], offset: number): Promise<void> {
    if (bufs.length === 1) return this.write(bufs[0], offset);
    if (this.readOnly && !this.closed) {
      return Promise.reject(new DeviceError('EROFS', `${this.name} is read-only`));
    }
    const bad = bufs.find((b) => !Buffer.isBuffer(b));
    const length = bad === undefined ? bufs.reduce((n, b) => n + b.length, 0) : lengthOf('write', bad);
    return this.track('write', offset, length, () => this.writevImpl(bufs, offset));
  }

  flush(): Promise<void> {
    return this.track('flush', 0, null, () => this.flushImpl());
  }

  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = (async () => {
        await this.idle();
        await this.closeImpl();
      })();
    }
    return this.closing;
  }

  /** `length`: the request's bytes (null for a flush; an Error when its buffers were not buffers). */
  private async track(op: DeviceOp, offset: number, length: number | Error | null, run: () => Promise<void>): Promise<void> {
    if (this.closed) throw new DeviceError('EBADF', `${this.name} is closed`);
    if (length instanceof Error) throw length;
    if (length !== null) this.checkRange(op, offset, length);
    const c = this.counters;
    c.inFlight++;
    if (c.inFlight > c.maxInFlight) c.maxInFlight = c.inFlight;
    try {
      await run();
      if (op === 'read') {
        c.reads++;
        c.bytesRead += length!;
      } else if (op === 'write') {
        c.writes++;
        c.bytesWritten += length!;
      } else {
        c.flushes++;
      }
    } catch (err) {
      c.errors++;
      throw toDeviceError(err, `${op} ${this.name}${length === null ? '' : ` [${offset}, ${offset + length})`}`);
    } finally {
      c.inFlight--;
      if (c.inFlight === 0 && this.idleWaiters.length > 0) {
        for (const wake of this.idleWaiters.splice(0)) wake();
      }
    }
  }

  private checkRange(op: DeviceOp, offset: number, length: number): void {
    checkCount('offset', offset);
    if (length > DEVICE_REQUEST_BYTES_MAX) {
      throw new DeviceError('EINVAL', `${op} of ${length} bytes exceeds DEVICE_REQUEST_BYTES_MAX`);
    }
    if (offset + length > this.size) {
      // The kernel's answer to a bio past the end of the device.
      throw new DeviceError(
        'EIO',
        `${op} [${offset}, ${offset + length}) beyond end of ${this.name} (${this.size} bytes)`,
      );
    }
  }
}

/** A request buffer's length, or the EINVAL a non-buffer gets (thrown by track, inside the request's promise). */
function lengthOf(op: DeviceOp, buf: unknown): number | Error {
  return Buffer.isBuffer(buf) ? buf.length : new DeviceError('EINVAL', `${op}: buffer expected`);
}

function checkCount(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new DeviceError('EINVAL', `${what} must be a non-negative integer: ${String(value)}`);
  }
}

/** Any thrown value as a DeviceError: a system error keeps its errno name, anything else is EIO. */
export function toDeviceError(err: unknown, context: string): DeviceError {
  if (err instanceof DeviceError) return err;
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = e && typeof e.message === 'string' ? e.message : String(err);
  if (e && typeof e.code === 'string' && e.code in constants.errno) {
    return new DeviceError(e.code as DeviceErrno, `${context}: ${message}`);
  }
  return new DeviceError('EIO', `${context}: ${message}`);
}
