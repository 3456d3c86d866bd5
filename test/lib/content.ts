/**
 * The deterministic file content o2tool writes (test/oracle/o2tool.c, gen_word), in
 * TypeScript. Position-addressed rather than a stream, so any range of any file can be
 * produced without generating what comes before it:
 *
 *   byte x of stream SEED = byte (x & 3), little-endian, of W(SEED, floor(x / 4))
 *   W(SEED, i), with i = hi * 2^32 + lo (all arithmetic mod 2^32):
 *     h = SEED ^ (hi * 0x85EBCA6B)
 *     h = h + lo * 0x9E3779B1
 *     h ^= h >>> 16; h *= 0x85EBCA6B; h ^= h >>> 13; h *= 0xC2B2AE35; h ^= h >>> 16
 *   (the last line is murmur3's fmix32)
 *
 * A file "file PATH SIZE SEED" holds bytes [0, SIZE) of stream SEED; a sparse file holds
 * stream bytes at the same offsets inside its data ranges and zeros elsewhere.
 */
import { createHash } from 'node:crypto';

export function genWord(seed: number, wordIndex: number): number {
  const lo = wordIndex >>> 0;
  const hi = Math.floor(wordIndex / 0x1_0000_0000);
  let h = (seed ^ Math.imul(hi, 0x85ebca6b)) >>> 0;
  h = (h + Math.imul(lo, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Bytes [offsetBytes, offsetBytes + lenBytes) of stream seed. */
export function genBytes(seed: number, offsetBytes: number, lenBytes: number): Buffer {
  const out = Buffer.allocUnsafe(lenBytes);
  fillGen(out, 0, seed, offsetBytes, lenBytes);
  return out;
}

/** Writes stream bytes [offsetBytes, +lenBytes) into dst at dstOffset. */
export function fillGen(dst: Buffer, dstOffset: number, seed: number, offsetBytes: number, lenBytes: number): void {
  let x = offsetBytes;
  let o = dstOffset;
  const end = offsetBytes + lenBytes;
  while (x < end) {
    const w = genWord(seed >>> 0, Math.floor(x / 4));
    for (let b = x % 4; b < 4 && x < end; b++, x++) dst[o++] = (w >>> (8 * b)) & 0xff;
  }
}

/** A data range of a sparse file; unwritten ranges read as zeros. */
export interface Range {
  offset: number;
  length: number;
  unwritten?: boolean;
}

/** The content of a sparse file: stream bytes inside the written ranges, zeros elsewhere. */
export function sparseContent(seed: number, sizeBytes: number, ranges: readonly Range[]): Buffer {
  const out = Buffer.alloc(sizeBytes);
  for (const r of ranges) {
    if (r.unwritten) continue;
    fillGen(out, r.offset, seed, r.offset, r.length);
  }
  return out;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
