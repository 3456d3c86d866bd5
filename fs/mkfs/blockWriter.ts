/**
 * How mkfs puts bytes on the device: metadata blocks are collected first
 * (each with the offset of its block-check field when it has one), then
 * metaecc is computed if the volume uses it and the blocks go out in
 * block order, adjacent ones merged into larger writes, a bounded number in
 * flight. Large regions that must read as zeros (journals, allocator
 * groups, heartbeat) are wiped by zeroRange, which reads first and writes
 * only chunks that are not already zero: a sparse image stays sparse and a
 * re-used block device loses every stale byte.
 */
import createDebug from 'debug';
import { computeBlockCheck } from '../format/blockcheck';
import type { Device } from '../../io/device';

const debug = createDebug('o2fuse:mkfs');

/** Writes in flight at once. */
const MAX_IN_FLIGHT = 16;
/** Largest merged write. */
const MAX_WRITE_BYTES = 1024 * 1024;
/** zeroRange reads and writes in chunks of this size. */
const ZERO_CHUNK_BYTES = 1024 * 1024;
const ZERO_CHUNK = Buffer.alloc(ZERO_CHUNK_BYTES);

interface PendingBlock {
  data: Buffer;
  /** Offset of struct ocfs2_block_check in the block, when the block has one. */
  checkOffset?: number;
}

/** Runs `work` over `items` with at most `limit` promises pending. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners: Promise<void>[] = [];
  for (let r = 0; r < Math.min(limit, items.length); r++) {
    runners.push(
      (async () => {
        while (next < items.length) await work(items[next++]);
      })(),
    );
  }
  await Promise.all(runners);
}

export class BlockWriter {
  private readonly blocks = new Map<number, PendingBlock>();

  constructor(
    private readonly device: Device,
    readonly blockSizeBytes: number,
    private readonly metaEcc: boolean,
  ) {}

  /** Queues one block (a copy is not taken: do not change `data` afterwards). */
  put(blkno: number, data: Buffer, checkOffset?: number): void {
    if (data.length !== this.blockSizeBytes) throw new RangeError(`block ${blkno}: ${data.length} bytes, block size ${this.blockSizeBytes}`);
    if (this.blocks.has(blkno)) throw new Error(`mkfs internal: block ${blkno} written twice`);
    this.blocks.set(blkno, { data, checkOffset });
  }

  /** Queues consecutive blocks from one buffer (no check fields). */
  putRun(firstBlkno: number, data: Buffer): void {
    if (data.length % this.blockSizeBytes !== 0) throw new RangeError(`run at ${firstBlkno}: ${data.length} bytes is not whole blocks`);
    for (let k = 0; k * this.blockSizeBytes < data.length; k++) {
      this.put(firstBlkno + k, data.subarray(k * this.blockSizeBytes, (k + 1) * this.blockSizeBytes));
    }
  }

  get size(): number {
    return this.blocks.size;
  }

  /** Fills block checks (metaecc) and writes every queued block, then forgets them. */
  async flush(): Promise<void> {
    const bs = this.blockSizeBytes;
    const order = [...this.blocks.keys()].sort((a, b) => a - b);
    if (this.metaEcc) {
      for (const blkno of order) {
        const b = this.blocks.get(blkno) as PendingBlock;
        if (b.checkOffset !== undefined) computeBlockCheck(b.data, b.checkOffset);
      }
    }
    // Merge runs of adjacent blocks into single writes.
    const writes: { offsetBytes: number; parts: Buffer[] }[] = [];
    let cur: { offsetBytes: number; parts: Buffer[]; nextBlkno: number; bytes: number } | undefined;
    for (const blkno of order) {
      const data = (this.blocks.get(blkno) as PendingBlock).data;
      if (cur && cur.nextBlkno === blkno && cur.bytes + bs <= MAX_WRITE_BYTES) {
        cur.parts.push(data);
        cur.nextBlkno++;
        cur.bytes += bs;
      } else {
        cur = { offsetBytes: blkno * bs, parts: [data], nextBlkno: blkno + 1, bytes: bs };
        writes.push(cur);
      }
    }
    debug('writing %d blocks in %d writes', order.length, writes.length);
    await forEachLimited(writes, MAX_IN_FLIGHT, (w) =>
      this.device.writev(w.parts, w.offsetBytes),
    );
    this.blocks.clear();
  }
}

export interface ZeroProgress {
  /** Called with bytes done so far of this range (throttled by the caller). */
  (doneBytes: number, totalBytes: number): void;
}

/**
 * Makes [offsetBytes, offsetBytes + lengthBytes) read as zeros. Chunks that
 * already read as zeros are not written. Returns the bytes actually written.
 */
export async function zeroRange(
  device: Device,
  offsetBytes: number,
  lengthBytes: number,
  progress?: ZeroProgress,
): Promise<number> {
  const end = offsetBytes + lengthBytes;
  if (end > device.size) throw new RangeError(`zeroRange past the end of ${device.name}: ${end} > ${device.size}`);
  const chunks: number[] = [];
  for (let at = offsetBytes; at < end; at += ZERO_CHUNK_BYTES) chunks.push(at);
  let written = 0;
  let done = 0;
  const zeros = ZERO_CHUNK;
  await forEachLimited(chunks, 4, async (at) => {
    const len = Math.min(ZERO_CHUNK_BYTES, end - at);
    const data = await device.read(at, len);
    if (!isAllZero(data)) {
      await device.write(len === zeros.length ? zeros : zeros.subarray(0, len), at);
      written += len;
    }
    done += len;
    progress?.(done, lengthBytes);
  });
  return written;
}

function isAllZero(buf: Buffer): boolean {
  // A native compare: this runs over whole journals.
  return buf.equals(buf.length === ZERO_CHUNK.length ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, buf.length));
}
