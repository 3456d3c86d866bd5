/**
 * Field tables for on-disk structures.
 *
 * Every OCFS2 structure is described once, as a table of
 * `name: [byteOffset, kind]` entries written in the order of ocfs2_fs.h, with
 * the same field names as the C header (i_size, e_cpos, bg_free_bits_count).
 * decodeFields/encodeFields turn a table into a plain object and back, so a
 * field's offset and width exist in exactly one place.
 *
 * 64-bit fields decode to JS numbers with a range check: block numbers and
 * byte offsets of any volume under 8 PiB fit, and a value that does not is
 * corruption, reported as a FormatError rather than silently rounded.
 */

export type IntKind =
  | 'u8' | 'u16' | 'u32' | 'u64' | 's16' | 's32' | 's64'
  | 'be16' | 'be32' | 'be64';

/**
 * [offset, kind] for integers, [offset, 'bytes', length] for byte arrays,
 * [offset, kind, count] for arrays of integers (s_dx_seed[3], sm_slots[]).
 */
export type Field = readonly [number, IntKind] | readonly [number, 'bytes', number] | readonly [number, IntKind, number];
export type Layout = Readonly<Record<string, Field>>;

export type Decoded<L extends Layout> = {
  -readonly [K in keyof L]: L[K][1] extends 'bytes' ? Buffer : L[K] extends readonly [number, IntKind, number] ? number[] : number;
};

/** A structure on disk that does not decode: bad signature, bad range, bad checksum. */
export class FormatError extends Error {
  readonly errno = 'EIO';
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}

const TWO32 = 0x1_0000_0000;

export function readU64(buf: Buffer, off: number, what: string): number {
  const lo = buf.readUInt32LE(off);
  const hi = buf.readUInt32LE(off + 4);
  if (hi > 0x1fffff) throw new FormatError(`${what}: 64-bit value 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} out of range`);
  return hi * TWO32 + lo;
}

export function writeU64(buf: Buffer, off: number, value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what}: ${value} is not a u64 this engine can store`);
  buf.writeUInt32LE(value % TWO32, off);
  buf.writeUInt32LE(Math.floor(value / TWO32), off + 4);
}

function readBE64(buf: Buffer, off: number, what: string): number {
  const hi = buf.readUInt32BE(off);
  const lo = buf.readUInt32BE(off + 4);
  if (hi > 0x1fffff) throw new FormatError(`${what}: 64-bit value out of range`);
  return hi * TWO32 + lo;
}

function writeBE64(buf: Buffer, off: number, value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what}: ${value} is not a u64 this engine can store`);
  buf.writeUInt32BE(Math.floor(value / TWO32), off);
  buf.writeUInt32BE(value % TWO32, off + 4);
}

function readS64(buf: Buffer, off: number, what: string): number {
  const v = buf.readBigInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new FormatError(`${what}: signed 64-bit value out of range`);
  }
  return Number(v);
}

/** Size in bytes of one field. */
export function fieldSize(f: Field): number {
  if (f[1] === 'bytes') return f[2] as number;
  return kindSize(f[1]) * (f.length === 3 ? (f[2] as number) : 1);
}

function kindSize(kind: IntKind): number {
  switch (kind) {
    case 'u8': return 1;
    case 'u16': case 's16': case 'be16': return 2;
    case 'u32': case 's32': case 'be32': return 4;
    case 'u64': case 's64': case 'be64': return 8;
  }
}

function readInt(buf: Buffer, off: number, kind: IntKind, what: string): number {
  switch (kind) {
    case 'u8': return buf.readUInt8(off);
    case 'u16': return buf.readUInt16LE(off);
    case 'u32': return buf.readUInt32LE(off);
    case 'u64': return readU64(buf, off, what);
    case 's16': return buf.readInt16LE(off);
    case 's32': return buf.readInt32LE(off);
    case 's64': return readS64(buf, off, what);
    case 'be16': return buf.readUInt16BE(off);
    case 'be32': return buf.readUInt32BE(off);
    case 'be64': return readBE64(buf, off, what);
  }
}

function writeInt(buf: Buffer, off: number, kind: IntKind, v: number, what: string): void {
  switch (kind) {
    case 'u8': buf.writeUInt8(v, off); break;
    case 'u16': buf.writeUInt16LE(v, off); break;
    case 'u32': buf.writeUInt32LE(v, off); break;
    case 'u64': writeU64(buf, off, v, what); break;
    case 's16': buf.writeInt16LE(v, off); break;
    case 's32': buf.writeInt32LE(v, off); break;
    case 's64': buf.writeBigInt64LE(BigInt(v), off); break;
    case 'be16': buf.writeUInt16BE(v, off); break;
    case 'be32': buf.writeUInt32BE(v, off); break;
    case 'be64': writeBE64(buf, off, v, what); break;
  }
}

export function decodeFields<L extends Layout>(layout: L, buf: Buffer, base = 0, what = 'structure'): Decoded<L> {
  const out: Record<string, number | number[] | Buffer> = {};
  for (const name of Object.keys(layout)) {
    const f = layout[name];
    const off = base + f[0];
    if (f[1] === 'bytes') {
      out[name] = Buffer.from(buf.subarray(off, off + (f[2] as number)));
    } else if (f.length === 3) {
      const size = kindSize(f[1]);
      const arr: number[] = [];
      for (let i = 0; i < (f[2] as number); i++) arr.push(readInt(buf, off + i * size, f[1], `${what}.${name}[${i}]`));
      out[name] = arr;
    } else {
      out[name] = readInt(buf, off, f[1], `${what}.${name}`);
    }
  }
  return out as Decoded<L>;
}

export function encodeFields<L extends Layout>(layout: L, obj: Decoded<L>, buf: Buffer, base = 0, what = 'structure'): void {
  for (const name of Object.keys(layout)) {
    const f = layout[name];
    const off = base + f[0];
    const v = (obj as Record<string, number | number[] | Buffer>)[name];
    if (f[1] === 'bytes') {
      const len = f[2] as number;
      const src = v as Buffer;
      if (src.length > len) throw new RangeError(`${what}.${name}: ${src.length} bytes do not fit in ${len}`);
      src.copy(buf, off);
      buf.fill(0, off + src.length, off + len);
    } else if (f.length === 3) {
      const size = kindSize(f[1]);
      const arr = v as number[];
      const count = f[2] as number;
      if (arr.length > count) throw new RangeError(`${what}.${name}: ${arr.length} elements do not fit in ${count}`);
      for (let i = 0; i < count; i++) writeInt(buf, off + i * size, f[1], arr[i] ?? 0, `${what}.${name}[${i}]`);
    } else {
      writeInt(buf, off, f[1], v as number, `${what}.${name}`);
    }
  }
}

/** A zero-valued object for a layout: the starting point for encoding a new structure. */
export function zeroFields<L extends Layout>(layout: L): Decoded<L> {
  const out: Record<string, number | number[] | Buffer> = {};
  for (const name of Object.keys(layout)) {
    const f = layout[name];
    out[name] = f[1] === 'bytes' ? Buffer.alloc(f[2] as number) : f.length === 3 ? new Array<number>(f[2] as number).fill(0) : 0;
  }
  return out as Decoded<L>;
}

/** Checks an 8-byte (or shorter) ASCII signature at the start of a structure. */
export function checkSignature(buf: Buffer, base: number, signature: string, what: string): void {
  const got = buf.toString('latin1', base, base + signature.length);
  if (got !== signature) {
    throw new FormatError(`${what}: bad signature ${JSON.stringify(got)} (expected ${JSON.stringify(signature)})`);
  }
}

export function writeSignature(buf: Buffer, base: number, signature: string): void {
  buf.fill(0, base, base + 8);
  buf.write(signature, base, 'latin1');
}

/**
 * A sub-table of `layout` holding only `names`, offsets unchanged. Unions use
 * it: one table lists every member of the union at its offset, and encoding
 * writes the one view that is in force (e.g. an extent record's leaf view).
 */
export function pickFields<L extends Layout, K extends keyof L & string>(layout: L, names: readonly K[]): Pick<L, K> {
  const out: Record<string, Field> = {};
  for (const n of names) out[n] = layout[n];
  return out as Pick<L, K>;
}

/** The table minus `names` (the inverse of pickFields). */
export function omitFields<L extends Layout, K extends keyof L & string>(layout: L, names: readonly K[]): Omit<L, K> {
  const out: Record<string, Field> = {};
  for (const n of Object.keys(layout)) if (!(names as readonly string[]).includes(n)) out[n] = layout[n];
  return out as Omit<L, K>;
}

/** Bytes from the start of the structure to the end of its last field (sizeof for tables without tail padding). */
export function layoutSize(layout: Layout): number {
  let end = 0;
  for (const name of Object.keys(layout)) {
    const f = layout[name];
    end = Math.max(end, f[0] + fieldSize(f));
  }
  return end;
}

/** The 8 signature bytes as stored on disk (NUL padded), for new structures. */
export function signatureBytes(signature: string): Buffer {
  const b = Buffer.alloc(8);
  b.write(signature, 0, 'latin1');
  return b;
}

/** True when every byte of buf[start, end) is zero. */
export function isZero(buf: Buffer, start = 0, end = buf.length): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}
