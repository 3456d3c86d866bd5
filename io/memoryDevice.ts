/**
 * An in-memory Device for fast tests. Storage is sparse: 64 KiB chunks are
 * allocated on first write, so a test can format a multi-GiB volume and pay
 * only for the blocks it touches. Reads and writes copy, exactly like a real
 * device (a caller's buffer is never aliased). Requests complete in a later
 * microtask, in submission order; wrap in a FaultyDevice to reorder them.
 */
import * as fs from 'node:fs';
import { BaseDevice } from './baseDevice';

const CHUNK_BYTES = 64 * 1024;

export interface MemoryDeviceOptions {
  sectorSize?: number;
  readOnly?: boolean;
  name?: string;
}

export class MemoryDevice extends BaseDevice {
  private readonly chunks = new Map<number, Buffer>();

  constructor(sizeBytes: number, options: MemoryDeviceOptions = {}) {
    super({
      size: sizeBytes,
      sectorSize: options.sectorSize ?? 512,
      readOnly: options.readOnly ?? false,
      name: options.name ?? `memory device (${sizeBytes} bytes)`,
    });
  }

  /** A device holding a copy of `image` (e.g. a volume made by mkfs.ocfs2). */
  static fromBuffer(image: Buffer, options: MemoryDeviceOptions = {}): MemoryDevice {
    const dev = new MemoryDevice(image.length, options);
    // Only chunks holding data cost memory: an mkfs image is mostly zeros.
    for (let at = 0; at < image.length; at += CHUNK_BYTES) {
      const piece = image.subarray(at, Math.min(at + CHUNK_BYTES, image.length));
      if (!isZero(piece)) dev.copyIn(piece, at);
    }
    return dev;
  }

  static async fromFile(file: string, options: MemoryDeviceOptions = {}): Promise<MemoryDevice> {
    return MemoryDevice.fromBuffer(await fs.promises.readFile(file), { name: `memory copy of ${file}`, ...options });
  }

  /** Bytes of memory the chunks hold (for tests that check sparseness). */
  get allocatedBytes(): number {
    return this.chunks.size * CHUNK_BYTES;
  }

  /** Synchronous copy out, for assertions: never goes through fault injection or counters. */
  peek(offset: number, length: number): Buffer {
    if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0)) {
      throw new RangeError(`peek(${offset}, ${length})`);
    }
    if (offset + length > this.size) throw new RangeError(`peek [${offset}, ${offset + length}) past ${this.size}`);
    const out = Buffer.alloc(length);
    this.copyOut(out, offset);
    return out;
  }

  /** Synchronous copy in, for test setup (even on a read-only device). */
  poke(data: Buffer, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.size) {
      throw new RangeError(`poke [${offset}, ${offset + data.length}) outside ${this.size}`);
    }
    this.copyIn(data, offset);
  }

  /** Writes the whole image to a file (sparse where the device was never written), e.g. for fsck.ocfs2. */
  async saveTo(file: string): Promise<void> {
    const handle = await fs.promises.open(file, 'w');
    try {
      await handle.truncate(this.size);
      const indexes = [...this.chunks.keys()].sort((a, b) => a - b);
      for (const index of indexes) {
        const start = index * CHUNK_BYTES;
        const chunk = this.chunks.get(index)!;
        const length = Math.min(CHUNK_BYTES, this.size - start);
        await handle.write(chunk, 0, length, start);
      }
    } finally {
      await handle.close();
    }
  }

  protected async readIntoImpl(buf: Buffer, offset: number): Promise<void> {
    this.copyOut(buf, offset);
  }

  protected async writeImpl(buf: Buffer, offset: number): Promise<void> {
    this.copyIn(buf, offset);
  }

  protected async flushImpl(): Promise<void> {}

  protected async closeImpl(): Promise<void> {}

  private copyOut(buf: Buffer, offset: number): void {
    let doneBytes = 0;
    while (doneBytes < buf.length) {
      const at = offset + doneBytes;
      const index = Math.floor(at / CHUNK_BYTES);
      const within = at - index * CHUNK_BYTES;
      const n = Math.min(CHUNK_BYTES - within, buf.length - doneBytes);
      const chunk = this.chunks.get(index);
      if (chunk) chunk.copy(buf, doneBytes, within, within + n);
      else buf.fill(0, doneBytes, doneBytes + n);
      doneBytes += n;
    }
  }

  private copyIn(data: Buffer, offset: number): void {
    let doneBytes = 0;
    while (doneBytes < data.length) {
      const at = offset + doneBytes;
      const index = Math.floor(at / CHUNK_BYTES);
      const within = at - index * CHUNK_BYTES;
      const n = Math.min(CHUNK_BYTES - within, data.length - doneBytes);
      let chunk = this.chunks.get(index);
      if (!chunk) {
        chunk = Buffer.alloc(CHUNK_BYTES);
        this.chunks.set(index, chunk);
      }
      data.copy(chunk, within, doneBytes, doneBytes + n);
      doneBytes += n;
    }
  }
}

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}
