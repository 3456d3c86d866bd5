/**
 * OCFS2 metaecc (struct ocfs2_block_check): every metadata block of a
 * volume with OCFS2_FEATURE_INCOMPAT_META_ECC carries bc_crc32e (crc32_le
 * seeded ~0, no final xor) and bc_ecc (a Hamming single-error-correction
 * parity over the block's bits), both computed with the 8-byte check field
 * zeroed. Reading: if the crc matches the block is good; else the parity
 * names at most one flipped data bit, which is fixed, and the crc must then
 * match. A multi-block unit (xattr bucket) is checked as one buffer.
 *
 * Hamming layout (facts from fs/ocfs2/blockcheck.c): data bit i (bit i&7 of
 * byte i>>3) sits at 1-based code position c(i) = i + 1 + the number of
 * power-of-two positions before it; the parity is the XOR of c(i) over every
 * set data bit.
 */
import { crc32Le } from './crc32';
import { dirBlockCheckOffset } from './dirent';

/** struct ocfs2_block_check */
export const BLOCK_CHECK = {
  bc_crc32e: [0x00, 'u32'],
  bc_ecc: [0x04, 'u16'],
  bc_reserved1: [0x06, 'u16'],
} as const;
export const BLOCK_CHECK_SIZE = 8;

export interface BlockCheck {
  bc_crc32e: number;
  bc_ecc: number;
  bc_reserved1: number;
}

/** Offsets of the check field in each structure (from the start of its block). */
export const CHECK_OFFSET = {
  dinode: 0x80, // i_check
  extentBlock: 0x08, // h_check
  groupDesc: 0x30, // bg_check
  dxRoot: 0x08, // dr_check
  dxLeaf: 0x08, // dl_check
  xattrBlock: 0x18, // xb_check
  refcountBlock: 0x20, // rf_check
  /** xh_check of the bucket's first block (xattr header at 0 in a bucket) */
  xattrBucket: 0x08,
} as const;

/** db_check: in the trailer, the last 64 bytes of a dir block. */
export function dirBlockCheckOffsetOf(blockSizeBytes: number): number {
  return dirBlockCheckOffset(blockSizeBytes);
}

/** dq_check: the quota block trailer, last OCFS2_QBLK_RESERVED_SPACE (8) bytes. */
export function quotaBlockCheckOffsetOf(blockSizeBytes: number): number {
  return blockSizeBytes - 8;
}

export function readBlockCheck(buf: Buffer, checkOffset: number): BlockCheck {
  return {
    bc_crc32e: buf.readUInt32LE(checkOffset),
    bc_ecc: buf.readUInt16LE(checkOffset + 4),
    bc_reserved1: buf.readUInt16LE(checkOffset + 6),
  };
}

// Code position of every data bit of the largest unit (4 KiB bucket / block).
const MAX_DATA_BITS = 4096 * 8;
const CODE_BIT = (() => {
  const t = new Uint32Array(MAX_DATA_BITS + 1);
  let pos = 0; // last used 1-based code position
  for (let i = 0; i <= MAX_DATA_BITS; i++) {
    pos++;
    while ((pos & (pos - 1)) === 0) pos++; // skip parity positions 1, 2, 4, ...
    t[i] = pos;
  }
  return t;
})();

/**
 * A byte whose 8 data bits sit at consecutive code positions c0..c0+7 (no parity position among them: all but ~15
 * bytes of a block) adds the XOR over its set bits b of c0 + b. With c0 = H + r (H a multiple of 8), that is
 * H | (r + b) while r + b < 8, and (H + 8) | (r + b - 8) after: per (r, byte) a table holds the XOR of the low
 * parts and whether each group has an odd count. Bit by bit, a dense 4 KiB block (an extent leaf) took ~46 us.
 */
const BYTE_LOW = new Uint8Array(8 * 256);
const BYTE_ODD_H = new Uint8Array(8 * 256);
const BYTE_ODD_H8 = new Uint8Array(8 * 256);
for (let r = 0; r < 8; r++) {
  for (let v = 0; v < 256; v++) {
    let low = 0;
    let h = 0;
    let h8 = 0;
    for (let b = 0; b < 8; b++) {
      if (!((v >> b) & 1)) continue;
      const y = r + b;
      if (y < 8) {
        low ^= y;
        h ^= 1;
      } else {
        low ^= y - 8;
        h8 ^= 1;
      }
    }
    BYTE_LOW[r * 256 + v] = low;
    BYTE_ODD_H[r * 256 + v] = h;
    BYTE_ODD_H8[r * 256 + v] = h8;
  }
}
const BYTE_STRAIGHT = (() => {
  const t = new Uint8Array(MAX_DATA_BITS / 8);
  for (let byte = 0; byte < t.length; byte++) t[byte] = CODE_BIT[byte * 8 + 7] - CODE_BIT[byte * 8] === 7 ? 1 : 0;
  return t;
})();

/** ocfs2_hamming_encode_block: parity over all bits of buf (check field must already be zero). */
export function hammingEncode(buf: Uint8Array): number {
  if (buf.length * 8 > MAX_DATA_BITS) throw new RangeError(`hamming: ${buf.length} bytes > ${MAX_DATA_BITS / 8}`);
  let parity = 0;
  for (let byte = 0; byte < buf.length; byte++) {
    let v = buf[byte];
    if (v === 0) continue;
    const base = byte * 8;
    if (BYTE_STRAIGHT[byte]) {
      const c0 = CODE_BIT[base];
      const k = (c0 & 7) * 256 + v;
      const h = c0 & ~7;
      parity ^= BYTE_LOW[k] ^ (BYTE_ODD_H[k] ? h : 0) ^ (BYTE_ODD_H8[k] ? h + 8 : 0);
      continue;
    }
    for (let bit = 0; v !== 0; bit++, v >>>= 1) if (v & 1) parity ^= CODE_BIT[base + bit];
  }
  return parity >>> 0;
}

/** The data bit index at code position `code`, or -1 for a parity position / beyond the data (ocfs2_hamming_fix). */
export function hammingDataBit(code: number, dataBits: number): number {
  if (code === 0 || (code & (code - 1)) === 0) return -1;
  const parityBefore = 32 - Math.clz32(code); // powers of two below a non-power code position
  const i = code - 1 - parityBefore;
  return i < dataBits ? i : -1;
}

/** The check values for buf with its check field treated as zero (the field itself is not modified). */
export function blockCheckOf(buf: Buffer, checkOffset: number): { bc_crc32e: number; bc_ecc: number } {
  const saved = Buffer.from(buf.subarray(checkOffset, checkOffset + BLOCK_CHECK_SIZE));
  buf.fill(0, checkOffset, checkOffset + BLOCK_CHECK_SIZE);
  try {
    return { bc_crc32e: crc32Le(0xffffffff, buf), bc_ecc: hammingEncode(buf) & 0xffff };
  } finally {
    saved.copy(buf, checkOffset);
  }
}

/** ocfs2_block_check_compute: fills the check field at checkOffset in place (whole buffer = the unit checked). */
export function computeBlockCheck(buf: Buffer, checkOffset: number): BlockCheck {
  buf.fill(0, checkOffset, checkOffset + BLOCK_CHECK_SIZE);
  const bc: BlockCheck = { bc_crc32e: crc32Le(0xffffffff, buf), bc_ecc: hammingEncode(buf) & 0xffff, bc_reserved1: 0 };
  buf.writeUInt32LE(bc.bc_crc32e, checkOffset);
  buf.writeUInt16LE(bc.bc_ecc, checkOffset + 4);
  return bc;
}

export type BlockCheckResult = 'ok' | 'corrected' | 'bad';

/**
 * ocfs2_block_check_validate: 'ok' when the crc matches, 'corrected' when
 * one flipped data bit was found by the parity and fixed in place (the crc
 * then matches), 'bad' otherwise (buffer left as read). The check field is
 * unchanged in every case.
 */
export function verifyBlockCheck(buf: Buffer, checkOffset: number): BlockCheckResult {
  const stored = readBlockCheck(buf, checkOffset);
  const saved = Buffer.from(buf.subarray(checkOffset, checkOffset + BLOCK_CHECK_SIZE));
  buf.fill(0, checkOffset, checkOffset + BLOCK_CHECK_SIZE);
  try {
    if (crc32Le(0xffffffff, buf) === stored.bc_crc32e) return 'ok';
    const syndrome = (hammingEncode(buf) ^ stored.bc_ecc) & 0xffff;
    const bit = hammingDataBit(syndrome, buf.length * 8);
    if (bit < 0) return 'bad';
    buf[bit >>> 3] ^= 1 << (bit & 7);
    if (crc32Le(0xffffffff, buf) === stored.bc_crc32e) return 'corrected';
    buf[bit >>> 3] ^= 1 << (bit & 7);
    return 'bad';
  } finally {
    saved.copy(buf, checkOffset);
  }
}
