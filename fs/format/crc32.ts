/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table driven.
 * Node 20 has no zlib.crc32.
 *
 * crc32Le(seed, buf) is the kernel's crc32_le(): no final inversion. OCFS2's
 * bc_crc32e is crc32Le(0xffffffff, block). The usual "CRC-32" (zlib,
 * JBD2_CRC32_CHKSUM) is crc32(buf) = ~crc32Le(~0, buf).
 */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * Slicing by 8 (T[k][n]: the CRC of byte n followed by k zero bytes): eight bytes a step. With metaecc every block
 * of every transaction is checksummed, and a byte a step took ~12 us a 4 KiB block; eight take ~3.
 */
const SLICES = (() => {
  const t = [TABLE];
  for (let k = 1; k < 8; k++) {
    const prev = t[k - 1];
    const next = new Uint32Array(256);
    for (let n = 0; n < 256; n++) next[n] = (prev[n] >>> 8) ^ TABLE[prev[n] & 0xff];
    t.push(next);
  }
  return t;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = SLICES;

/** crc32_le(seed, data[start, end)) without final xor; chain calls by passing the previous result. */
export function crc32Le(seed: number, buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = seed >>> 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    crc ^= buf[i] | buf[i + 1] << 8 | buf[i + 2] << 16 | buf[i + 3] << 24;
    crc = T7[crc & 0xff] ^ T6[(crc >>> 8) & 0xff] ^ T5[(crc >>> 16) & 0xff] ^ T4[crc >>> 24]
      ^ T3[buf[i + 4]] ^ T2[buf[i + 5]] ^ T1[buf[i + 6]] ^ T0[buf[i + 7]];
  }
  for (; i < end; i++) crc = TABLE[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
  return crc >>> 0;
}

/** The standard CRC-32 (as zlib.crc32 / cksum -a crc32b): init ~0, final inversion. */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  return (crc32Le(0xffffffff, buf, start, end) ^ 0xffffffff) >>> 0;
}
