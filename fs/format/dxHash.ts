/**
 * The indexed-directory name hash (ocfs2_dx_dir_name_hash): the ext3 "TEA"
 * hash, with a 4-word seed s_dx_seed[0..2] + s_uuid_hash, over the name in
 * 16-byte chunks. major_hash picks the cluster of the index, minor_hash the
 * block inside it. "." and ".." hash to 0/0. The transform only reads and
 * updates words 0 and 1 of the state, so s_dx_seed[2] and s_uuid_hash never
 * change a result (they are still passed, as the kernel does).
 *
 * The kernel reads name bytes as `char`: signed on x86 for ocfs2-tools and
 * kernels before 6.2, unsigned for kernels built with -funsigned-char (all
 * architectures since 6.2). The two agree for ASCII names only; signed is the
 * default here because it is what ocfs2-tools (mkfs, fsck, debugfs) computes.
 * The mount option dx_hash= picks the one names are added under; lookups and
 * removals try both (fs/dxIndex.ts hashesOf).
 */

export interface DxHash {
  major_hash: number;
  minor_hash: number;
}

const DELTA = 0x9e3779b9;

/** The 4-word seed from the superblock. */
export function dxSeedOf(sb: { s_dx_seed: readonly number[]; s_uuid_hash: number }): [number, number, number, number] {
  return [sb.s_dx_seed[0] >>> 0, sb.s_dx_seed[1] >>> 0, sb.s_dx_seed[2] >>> 0, sb.s_uuid_hash >>> 0];
}

function teaTransform(buf: Uint32Array, input: Uint32Array): void {
  let sum = 0;
  let b0 = buf[0];
  let b1 = buf[1];
  const a = input[0], b = input[1], c = input[2], d = input[3];
  for (let n = 0; n < 16; n++) {
    sum = (sum + DELTA) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b)) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d)) >>> 0)) >>> 0;
  }
  buf[0] = (buf[0] + b0) >>> 0;
  buf[1] = (buf[1] + b1) >>> 0;
}

/** Packs up to 16 bytes of name[start..] into 4 words, padded with the remaining length (str2hashbuf). */
function packChunk(name: Uint8Array, start: number, remaining: number, out: Uint32Array, signedChars: boolean): void {
  let pad = (remaining | (remaining << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  const len = Math.min(remaining, 16);
  let val = pad;
  let w = 0;
  for (let i = 0; i < len; i++) {
    if (i % 4 === 0) val = pad;
    const byte = name[start + i];
    const ch = signedChars && byte >= 0x80 ? byte - 0x100 : byte;
    val = (ch + (val << 8)) >>> 0;
    if (i % 4 === 3) {
      out[w++] = val;
      val = pad;
    }
  }
  if (w < 4) out[w++] = val;
  while (w < 4) out[w++] = pad;
}

/** ocfs2_dx_dir_name_hash for a name (bytes, or a string taken as UTF-8). */
export function dxDirNameHash(
  name: Uint8Array | string,
  seed: readonly number[],
  opts: { signedChars?: boolean } = {},
): DxHash {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  const len = bytes.length;
  if ((len === 1 && bytes[0] === 0x2e) || (len === 2 && bytes[0] === 0x2e && bytes[1] === 0x2e)) {
    return { major_hash: 0, minor_hash: 0 };
  }
  const signedChars = opts.signedChars ?? true;
  const buf = Uint32Array.from([seed[0], seed[1], seed[2], seed[3]]);
  const input = new Uint32Array(4);
  for (let start = 0; start < len; start += 16) {
    packChunk(bytes, start, len - start, input, signedChars);
    teaTransform(buf, input);
  }
  return { major_hash: buf[0], minor_hash: buf[1] };
}

/** Block within a cluster of dx leaves for a minor hash (ocfs2_dx_dir_hash_idx). */
export function dxHashIdx(minorHash: number, blockSizeBits: number, clusterSizeBits: number): number {
  return minorHash & ((1 << (clusterSizeBits - blockSizeBits)) - 1);
}
