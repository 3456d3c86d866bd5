/**
 * crc32Le (sliced by 8) and hammingEncode (a byte at a time) against the plain definitions, a bit at a time: the
 * reflected CRC-32 polynomial, and the XOR of the code positions of every set data bit (positions skip the
 * powers of two). Random blocks of every length up to 4 KiB edges, dense and sparse, at odd starts and ends;
 * blockcheck-metaecc-real-blocks checks both against what mkfs.ocfs2 and the kernel wrote.
 */
import t from 'tap';
import { crc32Le } from '../../fs/format/crc32';
import { hammingEncode } from '../../fs/format/blockcheck';
import { Rng, seedFrom } from '../lib/seed';

function crcBitwise(seed: number, buf: Uint8Array, start: number, end: number): number {
  let crc = seed >>> 0;
  for (let i = start; i < end; i++) {
    crc ^= buf[i];
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return crc >>> 0;
}

function hammingBitwise(buf: Uint8Array): number {
  let parity = 0;
  let pos = 0;
  for (let i = 0; i < buf.length * 8; i++) {
    pos++;
    while ((pos & (pos - 1)) === 0) pos++;
    if ((buf[i >> 3] >> (i & 7)) & 1) parity ^= pos;
  }
  return parity >>> 0;
}

t.test('crc32Le and hammingEncode agree with their definitions bit by bit', async (t) => {
  const rng = new Rng(seedFrom(t));
  const lengths = [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 511, 512, 513, 1024, 2048, 4095, 4096];
  let crcBad = 0;
  let hamBad = 0;
  let cases = 0;
  for (const len of lengths) {
    for (const density of [1, 0.5, 0.05]) {
      const buf = rng.bytes(len);
      for (let i = 0; i < len; i++) if (rng.float() > density) buf[i] = 0;
      const start = len > 3 ? 3 : 0;
      const end = len > 5 ? len - 2 : len;
      const seed = rng.bool() ? 0xffffffff : rng.next();
      if (crc32Le(seed, buf, start, end) !== crcBitwise(seed, buf, start, end)) crcBad++;
      if (crc32Le(seed, buf) !== crcBitwise(seed, buf, 0, len)) crcBad++;
      if (hammingEncode(buf) !== hammingBitwise(buf)) hamBad++;
      cases++;
    }
  }
  // Single bits everywhere in a block: each byte position and each bit, where the straight runs meet the parity positions.
  const one = new Uint8Array(4096);
  for (let i = 0; i < 4096 * 8; i += 3) {
    one.fill(0);
    one[i >> 3] = 1 << (i & 7);
    if (hammingEncode(one) !== hammingBitwise(one)) hamBad++;
    cases++;
  }
  t.equal(crcBad, 0, `crc32Le matches the bitwise CRC (${cases} cases)`);
  t.equal(hamBad, 0, 'hammingEncode matches the bitwise parity');
});
