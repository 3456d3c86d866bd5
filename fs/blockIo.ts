/**
 * File data to the device in whole blocks, as a block device takes it.
 *
 * A device (or O_DIRECT on one) writes whole sectors; OCFS2's data path
 * writes whole filesystem blocks. A piece of data that starts or ends inside
 * a block therefore costs a read of that edge block, a patch, and a write of
 * the whole block: the read-modify-write at the heart of the unaligned-DIO
 * rule. Two such writes to one block both read the old block, and whichever
 * completes last puts stale bytes back over the other. Callers that can
 * overlap (async direct writes, buffered fallback next to them) hold the
 * unaligned gate (io/unalignedGate.ts) across the whole call.
 *
 * Pieces handed in together are merged first (zeros + data + zeros of one
 * cluster become one run), so a caller's own pieces never race each other.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';

const trace = createDebug('o2fuse:io');

export interface DeviceWrite {
  deviceOffset: number;
  buf: Buffer;
}

/** Bytes one device request carries at most (keeps big writes streaming, bounds memory). */
export const DEVICE_WRITE_BYTES_MAX = 4 * 1024 * 1024;
/** Device requests one call keeps in flight. */
export const DEVICE_WRITES_IN_FLIGHT_MAX = 16;

/** Joins pieces; pieces that are already adjacent in memory (slices of one caller buffer) become one view, not a copy. */
function join(parts: Buffer[]): Buffer {
  if (parts.length === 1) return parts[0];
  const first = parts[0];
  let adjacent = true;
  for (let i = 1; i < parts.length && adjacent; i++) {
    const prev = parts[i - 1];
    adjacent = parts[i].buffer === first.buffer && parts[i].byteOffset === prev.byteOffset + prev.length;
  }
  if (!adjacent) return Buffer.concat(parts);
  const total = parts.reduce((n, p) => n + p.length, 0);
  return Buffer.from(first.buffer, first.byteOffset, total);
}

/** Sorts and merges touching pieces into contiguous runs. */
export function mergeRuns(writes: readonly DeviceWrite[]): DeviceWrite[] {
  const sorted = writes.filter((w) => w.buf.length > 0).sort((a, b) => a.deviceOffset - b.deviceOffset);
  const out: DeviceWrite[] = [];
  let cur: { offset: number; parts: Buffer[]; end: number } | null = null;
  for (const w of sorted) {
    if (cur && w.deviceOffset === cur.end) {
      cur.parts.push(w.buf);
      cur.end += w.buf.length;
      continue;
    }
    if (cur && w.deviceOffset < cur.end) throw new RangeError(`overlapping device writes at ${w.deviceOffset}`);
    if (cur) out.push({ deviceOffset: cur.offset, buf: join(cur.parts) });
    cur = { offset: w.deviceOffset, parts: [w.buf], end: w.deviceOffset + w.buf.length };
  }
  if (cur) out.push({ deviceOffset: cur.offset, buf: join(cur.parts) });
  return out;
}

/**
 * Widens one run to block boundaries, reading the partial edge blocks from
 * the device (the read-in). Returns the aligned run.
 */
export async function alignRun(ctx: VolumeContext, run: DeviceWrite, what = 'write'): Promise<DeviceWrite> {
  const bs = ctx.geo.blockSize;
  const start = run.deviceOffset;
  const end = start + run.buf.length;
  const aStart = Math.floor(start / bs) * bs;
  const aEnd = Math.ceil(end / bs) * bs;
  if (aStart === start && aEnd === end) return run;
  // Not zeroed: every byte of it is written below. The partial edge blocks are read straight into it (a device
  // read fills all it is given), and the data covers every block between them.
  const out = Buffer.allocUnsafe(aEnd - aStart);
  const headPartial = aStart !== start;
  const tailPartial = aEnd !== end;
  const reads: Promise<void>[] = [];
  if (headPartial) reads.push(ctx.device.readInto(out.subarray(0, bs), aStart));
  if (tailPartial && (!headPartial || aEnd - bs !== aStart)) {
    reads.push(ctx.device.readInto(out.subarray(aEnd - bs - aStart), aEnd - bs));
  }
  await Promise.all(reads);
  trace('%s: read-in of edge block(s) for %d+%d (block %d..%d)', what, start, run.buf.length, aStart / bs, aEnd / bs - 1);
  run.buf.copy(out, start - aStart);
  return { deviceOffset: aStart, buf: out };
}

/** Writes pieces as whole blocks: merge, read-modify-write the edges, then stream the runs. */
export async function writeBlocks(ctx: VolumeContext, writes: readonly DeviceWrite[], what = 'write'): Promise<void> {
  const runs = await Promise.all(mergeRuns(writes).map((r) => alignRun(ctx, r, what)));
  const chunks: DeviceWrite[] = [];
  for (const r of runs) {
    for (let off = 0; off < r.buf.length; off += DEVICE_WRITE_BYTES_MAX) {
      chunks.push({ deviceOffset: r.deviceOffset + off, buf: r.buf.subarray(off, off + DEVICE_WRITE_BYTES_MAX) });
    }
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < chunks.length) {
      const c = chunks[next++];
      await ctx.device.write(c.buf, c.deviceOffset);
    }
  };
  await Promise.all(Array.from({ length: Math.min(DEVICE_WRITES_IN_FLIGHT_MAX, chunks.length) }, worker));
}
