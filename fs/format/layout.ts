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

function decodeFieldsGeneric(layout: Layout, buf: Buffer, base: number, what: string): Record<string, number | number[] | Buffer> {
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
  return out;
}

function encodeFieldsGeneric(layout: Layout, obj: Record<string, unknown>, buf: Buffer, base: number, what: string): void {
  for (const name of Object.keys(layout)) {
    const f = layout[name];
    const off = base + f[0];
    const v = obj[name];
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

// ---- compiled codecs ----
//
// Metadata operations decode and encode the same few tables (dinode, extent
// record, chain record, dirent, FUSE structs) thousands of times a second, and
// the generic loops above spend most of that on the table walk and on building
// a "what.field" message string for every field. A table used more than once
// is therefore compiled into straight-line code that reads and writes each
// field at its offset and builds messages only when a value is out of range:
// the slow path then reruns the generic code, which throws exactly as before.
// The table stays the one description of the layout.

type WhatArg = string | (() => string);
type FastDecode = (buf: Buffer, base: number, what: WhatArg) => Record<string, unknown>;
type FastEncode = (obj: Record<string, unknown>, buf: Buffer, base: number, what: WhatArg) => void;

interface Compiled {
  /** Bytes from offset 0 to the end of the last field. */
  extent: number;
  decode: FastDecode;
  encode: FastEncode;
}

/** Uses of a table not compiled yet (tables made on the fly are used once and never pay for a compile). */
const useCounts = new WeakMap<Layout, number>();
const compiledTables = new WeakMap<Layout, Compiled | null>();
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function whatOf(what: WhatArg): string {
  return typeof what === 'function' ? what() : what;
}

function compiledFor(layout: Layout): Compiled | null {
  const have = compiledTables.get(layout);
  if (have !== undefined) return have;
  const n = (useCounts.get(layout) ?? 0) + 1;
  if (n < 2) {
    useCounts.set(layout, n);
    return null;
  }
  let c: Compiled | null;
  try {
    c = compileLayout(layout);
  } catch {
    c = null;
  }
  compiledTables.set(layout, c);
  return c;
}

/** Code reading one integer of `kind` at byte expression `at` into a value; `bad` runs when it does not fit a number. */
function readExpr(kind: IntKind, at: string, tmp: string, bad: string): { pre: string; value: string } {
  switch (kind) {
    // Plain byte reads: the decoder checked the whole extent against buf.length first, so Node's per-call checks
    // (offset type, bounds) are not needed, and they were most of an inode's decode.
    case 'u8': return { pre: '', value: `buf[${at}]` };
    case 'u16': return { pre: '', value: `(buf[${at}] | buf[${at} + 1] << 8)` };
    case 'u32': return { pre: '', value: `((buf[${at}] | buf[${at} + 1] << 8 | buf[${at} + 2] << 16 | buf[${at} + 3] << 24) >>> 0)` };
    case 's16': return { pre: '', value: `((buf[${at}] | buf[${at} + 1] << 8) << 16 >> 16)` };
    case 's32': return { pre: '', value: `(buf[${at}] | buf[${at} + 1] << 8 | buf[${at} + 2] << 16 | buf[${at} + 3] << 24)` };
    case 'be16': return { pre: '', value: `buf.readUInt16BE(${at})` };
    case 'be32': return { pre: '', value: `buf.readUInt32BE(${at})` };
    case 'u64':
      return { pre: `const ${tmp} = ${readExpr('u32', `${at} + 4`, tmp, bad).value}; if (${tmp} > 0x1fffff) ${bad};\n`,
        value: `${tmp} * 4294967296 + ${readExpr('u32', at, tmp, bad).value}` };
    case 'be64':
      return { pre: `const ${tmp} = buf.readUInt32BE(${at}); if (${tmp} > 0x1fffff) ${bad};\n`,
        value: `${tmp} * 4294967296 + buf.readUInt32BE(${at} + 4)` };
    case 's64':
      // |hi| < 2^21 keeps hi * 2^32 + lo exact and inside the safe range; anything else takes the generic path.
      return { pre: `const ${tmp} = ${readExpr('s32', `${at} + 4`, tmp, bad).value}; if (${tmp} >= 0x200000 || ${tmp} <= -0x200000) ${bad};\n`,
        value: `${tmp} * 4294967296 + ${readExpr('u32', at, tmp, bad).value}` };
  }
}

/** Stores of the 32-bit value `v` (a local, in range) little-endian at byte expression `at`. */
function bytesLE(at: string, v: string): string {
  return `buf[${at}] = ${v}; buf[${at} + 1] = ${v} >>> 8; buf[${at} + 2] = ${v} >>> 16; buf[${at} + 3] = ${v} >>> 24;\n`;
}

/** Code writing value expression `v` (a local) as `kind` at byte expression `at`; `bad` when it needs the generic path. */
function writeStmt(kind: IntKind, at: string, v: string, bad: string): string {
  switch (kind) {
    // Plain byte stores after a range check of our own (a value Node's writer would refuse takes the generic
    // path, which throws its error): the extent was checked against buf.length first.
    case 'u8': return `if ((${v} & 0xff) !== ${v}) ${bad};\nbuf[${at}] = ${v};\n`;
    case 'u16': return `if ((${v} & 0xffff) !== ${v}) ${bad};\nbuf[${at}] = ${v}; buf[${at} + 1] = ${v} >>> 8;\n`;
    case 'u32': return `if ((${v} >>> 0) !== ${v}) ${bad};\n${bytesLE(at, v)}`;
    case 's16': return `if ((${v} << 16 >> 16) !== ${v}) ${bad};\nbuf[${at}] = ${v}; buf[${at} + 1] = ${v} >> 8;\n`;
    case 's32': return `if ((${v} | 0) !== ${v}) ${bad};\n${bytesLE(at, v)}`;
    case 'be16': return `buf.writeUInt16BE(${v}, ${at});\n`;
    case 'be32': return `buf.writeUInt32BE(${v}, ${at});\n`;
    case 'u64':
      return `if (!Number.isSafeInteger(${v}) || ${v} < 0) ${bad};\n` +
        `{ const lo = ${v} >>> 0; const hi = (${v} - lo) / 4294967296;\n${bytesLE(at, 'lo')}${bytesLE(`${at} + 4`, 'hi')}}\n`;
    case 'be64':
      return `if (!Number.isSafeInteger(${v}) || ${v} < 0) ${bad};\n` +
        `buf.writeUInt32BE((${v} - (${v} >>> 0)) / 4294967296, ${at}); buf.writeUInt32BE(${v} >>> 0, ${at} + 4);\n`;
    case 's64':
      return `if (!Number.isSafeInteger(${v})) ${bad};\n` +
        `buf.writeUInt32LE(${v} >>> 0, ${at}); buf.writeInt32LE(Math.floor(${v} / 4294967296), ${at} + 4);\n`;
  }
}

function compileLayout(layout: Layout): Compiled | null {
  const names = Object.keys(layout);
  if (!names.every((n) => IDENT.test(n))) return null;
  const extent = layoutSize(layout);
  // Decoder: every field read into a local, then one object literal (one hidden class per table, keys in table order).
  let dec = `if ((base >>> 0) !== base || base + ${extent} > buf.length) return slow(buf, base, what);\n`;
  const props: string[] = [];
  names.forEach((name, k) => {
    const f = layout[name];
    const at = `base + ${f[0]}`;
    const bad = 'return slow(buf, base, what)';
    if (f[1] === 'bytes') {
      const len = f[2] as number;
      // A short member (a signature, a check word, reserved bytes) byte by byte into a pooled buffer: a subarray
      // and a copy from it were a third of an inode's decode.
      dec += len <= 64
        ? `const v${k} = Buffer.allocUnsafe(${len}); for (let i = 0; i < ${len}; i++) v${k}[i] = buf[${at} + i];\n`
        : `const v${k} = Buffer.from(buf.subarray(${at}, ${at} + ${len}));\n`;
    } else if (f.length === 3) {
      const size = kindSize(f[1]);
      const elems: string[] = [];
      for (let i = 0; i < (f[2] as number); i++) {
        const r = readExpr(f[1], `${at} + ${i * size}`, `h${k}_${i}`, bad);
        dec += `${r.pre}const v${k}_${i} = ${r.value};\n`;
        elems.push(`v${k}_${i}`);
      }
      dec += `const v${k} = [${elems.join(', ')}];\n`;
    } else {
      const r = readExpr(f[1], at, `h${k}`, bad);
      dec += `${r.pre}const v${k} = ${r.value};\n`;
    }
    props.push(`${name}: v${k}`);
  });
  dec += `return { ${props.join(', ')} };\n`;

  // Encoder: anything unusual (a missing or oversized member, a value out of range) reruns the generic encoder,
  // which throws the same error it always did; values it accepts are written identically here.
  let enc = `if ((base >>> 0) !== base || base + ${extent} > buf.length) return slow(obj, buf, base, what);\n`;
  names.forEach((name, k) => {
    const f = layout[name];
    const at = `base + ${f[0]}`;
    const bad = 'return slow(obj, buf, base, what)';
    if (f[1] === 'bytes') {
      const len = f[2] as number;
      enc += `const v${k} = obj.${name};\n` +
        `if (!(v${k} instanceof Buffer) || v${k}.length > ${len}) ${bad};\n` +
        `buf.set(v${k}, ${at}); if (v${k}.length < ${len}) buf.fill(0, ${at} + v${k}.length, ${at} + ${len});\n`;
    } else if (f.length === 3) {
      const size = kindSize(f[1]);
      const count = f[2] as number;
      enc += `const v${k} = obj.${name};\nif (!Array.isArray(v${k}) || v${k}.length > ${count}) ${bad};\n`;
      for (let i = 0; i < count; i++) {
        enc += `{ const e = v${k}[${i}] ?? 0; if (typeof e !== 'number') ${bad};\n${writeStmt(f[1], `${at} + ${i * size}`, 'e', bad)}}\n`;
      }
    } else {
      enc += `const v${k} = obj.${name};\nif (typeof v${k} !== 'number') ${bad};\n${writeStmt(f[1], at, `v${k}`, bad)}`;
    }
  });
  // Unions: a later field at the same offset overwrites an earlier one, as in the generic loop (same order).
  const slowDecode = (buf: Buffer, base: number, what: WhatArg) => decodeFieldsGeneric(layout, buf, base, whatOf(what));
  const slowEncode = (obj: Record<string, unknown>, buf: Buffer, base: number, what: WhatArg) =>
    encodeFieldsGeneric(layout, obj, buf, base, whatOf(what));
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const decode = new Function('slow', 'Buffer', `return function decode(buf, base, what) {\n${dec}};`)(slowDecode, Buffer) as FastDecode;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const encode = new Function('slow', 'Buffer', `return function encode(obj, buf, base, what) {\n${enc}};`)(slowEncode, Buffer) as FastEncode;
  return { extent, decode, encode };
}

export function decodeFields<L extends Layout>(layout: L, buf: Buffer, base = 0, what: string | (() => string) = 'structure'): Decoded<L> {
  const c = compiledFor(layout);
  if (c) return c.decode(buf, base, what) as Decoded<L>;
  return decodeFieldsGeneric(layout, buf, base, whatOf(what)) as Decoded<L>;
}

export function encodeFields<L extends Layout>(layout: L, obj: Decoded<L>, buf: Buffer, base = 0,
  what: string | (() => string) = 'structure'): void {
  const c = compiledFor(layout);
  if (c) return c.encode(obj as Record<string, unknown>, buf, base, what);
  encodeFieldsGeneric(layout, obj as Record<string, unknown>, buf, base, whatOf(what));
}

/**
 * `count` records of `layout`, `strideBytes` apart from `base` (an array member
 * such as l_recs): errors name `what.member[i]`, a message built only on error.
 */
export function decodeRecords<L extends Layout>(layout: L, buf: Buffer, base: number, strideBytes: number, count: number,
  what: string, member: string): Decoded<L>[] {
  const out = new Array<Decoded<L>>(count);
  let i = 0;
  const whatRec = () => `${what}.${member}[${i}]`;
  // The compiled decoder is looked up once, not per record (a WeakMap lookup was a tenth of a leaf's decode).
  const c = compiledFor(layout);
  if (c) {
    for (; i < count; i++) out[i] = c.decode(buf, base + i * strideBytes, whatRec) as Decoded<L>;
    return out;
  }
  for (; i < count; i++) out[i] = decodeFields(layout, buf, base + i * strideBytes, whatRec);
  return out;
}

/**
 * Writes records as decodeRecords reads them; slots past `recs.length` (up to
 * `count`) are zeroed. `zeroed`: the caller has cleared the whole area, so
 * records whose integer fields are all 0 (the unused tail of a list, most of
 * its l_count) need not be written.
 */
export function encodeRecords<L extends Layout>(layout: L, recs: readonly (Decoded<L> | undefined)[], buf: Buffer, base: number,
  strideBytes: number, count: number, what: string, member: string, zeroed = false): void {
  let i = 0;
  const whatRec = () => `${what}.${member}[${i}]`;
  const zeroCheck = zeroCheckFor(layout);
  const isZero = zeroed ? zeroCheck : null;
  const c = compiledFor(layout);
  // Trailing records that encode to zeros (an inode's list is 243 records, a few in use) become one fill.
  let end = count;
  if (zeroCheck && layoutSize(layout) === strideBytes) {
    while (end > 0 && (recs[end - 1] === undefined || zeroCheck(recs[end - 1] as Record<string, unknown>))) end--;
    if (!zeroed) buf.fill(0, base + end * strideBytes, base + count * strideBytes);
  }
  for (; i < end; i++) {
    const off = base + i * strideBytes;
    const rec = recs[i];
    if (rec) {
      if (isZero && isZero(rec as Record<string, unknown>)) continue;
      if (c) c.encode(rec as Record<string, unknown>, buf, off, whatRec);
      else encodeFields(layout, rec, buf, off, whatRec);
    } else if (!zeroed) {
      buf.fill(0, off, off + strideBytes);
    }
  }
}

const zeroChecks = new WeakMap<Layout, ((obj: Record<string, unknown>) => boolean) | null>();

/** For tables of integers only: a test that every field of an object is the number 0 (what encodes to zero bytes). */
function zeroCheckFor(layout: Layout): ((obj: Record<string, unknown>) => boolean) | null {
  let check = zeroChecks.get(layout);
  if (check !== undefined) return check;
  const names = Object.keys(layout);
  if (names.every((n) => IDENT.test(n) && layout[n][1] !== 'bytes' && layout[n].length === 2)) {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    check = new Function('o', `return ${names.map((n) => `o.${n} === 0`).join(' && ')};`) as (obj: Record<string, unknown>) => boolean;
  } else {
    check = null;
  }
  zeroChecks.set(layout, check);
  return check;
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

const ZEROS = Buffer.alloc(4096);

/** True when every byte of buf[start, end) is zero. */
export function isZero(buf: Buffer, start = 0, end = buf.length): boolean {
  // Short ranges byte by byte; long ones (a chain list's unused records, most of a block) by memcmp in native code.
  if (end - start < 64) {
    for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
    return true;
  }
  for (let at = start; at < end; at += ZEROS.length) {
    const n = Math.min(ZEROS.length, end - at);
    if (buf.compare(ZEROS, 0, n, at, at + n) !== 0) return false;
  }
  return true;
}

/**
 * How many of the `count` records at `base` (`stride` bytes apart) a decoder
 * keeps: the first `used` when the rest are all zero (they then encode as
 * zeros), else all of them, so that encoding what was decoded gives back the
 * same bytes. For lists with room for hundreds of records of which a few are
 * used (an inode's chain or extent list).
 */
export function recordsToKeep(buf: Buffer, base: number, stride: number, used: number, count: number): number {
  return isZero(buf, base + used * stride, base + count * stride) ? used : count;
}
