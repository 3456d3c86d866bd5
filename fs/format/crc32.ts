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

/** crc32_le(seed, data[start, end)) without final xor; chain calls by passing the previous result. */
export function crc32Le(seed: number, buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = seed >>> 0;
  for (let i = start; i < end; i++) crc = TABLE[(crc ^ buf[i]) & 0xff] ^ (crc >>> 8);
  return crc >>> 0;
}

/** The standard CRC-32 (as zlib.crc32 / cksum -a crc32b): init ~0, final inversion. */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  return (crc32Le(0xffffffff, buf, start, end) ^ 0xffffffff) >>> 0;
}
