/**
 * struct ocfs2_local_alloc: a slot's window of the global bitmap, kept in the
 * id2 of its local_alloc:NNNN inode (i_flags OCFS2_LOCAL_ALLOC_FL).
 */
import { decodeFields, Decoded, encodeFields, FormatError } from './layout';

export const LOCAL_ALLOC = {
  la_bm_off: [0x00, 'u32'],
  la_size: [0x04, 'u16'],
  la_reserved1: [0x06, 'u16'],
  la_reserved2: [0x08, 'bytes', 8],
} as const;
export const LOCAL_ALLOC_BITMAP_OFFSET = 0x10;

export interface LocalAlloc extends Decoded<typeof LOCAL_ALLOC> {
  /** la_size bytes; bit i covers global bitmap bit la_bm_off + i. */
  la_bitmap: Buffer;
}

/** Decodes at `base` where `roomBytes` bytes are available (la_size must fit). */
export function decodeLocalAlloc(buf: Buffer, base: number, roomBytes: number, what: string): LocalAlloc {
  const hdr = decodeFields(LOCAL_ALLOC, buf, base, what);
  const max = roomBytes - LOCAL_ALLOC_BITMAP_OFFSET;
  if (hdr.la_size > max) throw new FormatError(`${what}: la_size ${hdr.la_size} > ${max} bytes that fit`);
  const start = base + LOCAL_ALLOC_BITMAP_OFFSET;
  return { ...hdr, la_bitmap: Buffer.from(buf.subarray(start, start + hdr.la_size)) };
}

/** Returns bytes written. */
export function encodeLocalAlloc(la: LocalAlloc, buf: Buffer, base: number, what = 'local alloc'): number {
  if (la.la_bitmap.length !== la.la_size) throw new RangeError(`${what}: la_bitmap is ${la.la_bitmap.length} bytes, la_size ${la.la_size}`);
  encodeFields(LOCAL_ALLOC, la, buf, base, what);
  la.la_bitmap.copy(buf, base + LOCAL_ALLOC_BITMAP_OFFSET);
  return LOCAL_ALLOC_BITMAP_OFFSET + la.la_size;
}
