/**
 * metaecc: every metadata block of real metaecc volumes (mkfs.ocfs2 and
 * libocfs2) verifies with our CRC32 + Hamming code and recomputing the check
 * gives the stored bytes; one flipped bit anywhere is corrected in place; two
 * flipped bits are reported bad. Also the CRC32 against published vectors.
 */
import t from 'tap';
import {
  blockCheckOf, BLOCK_CHECK_SIZE, computeBlockCheck, crc32, crc32Le, hammingDataBit, verifyBlockCheck,
} from '../../fs/format';
import { firstDiff, Image, makeVolume, MetaBlock, runHelper, scratchDir, walkMetadata } from './helpers';
import { assertFsckClean } from '../lib/fsck';

const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
t.comment(`seed ${seed} (SEED=${seed} to repeat)`);
let state = seed >>> 0 || 1;
function rand(n: number): number {
  // xorshift32: reproducible from the printed seed
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state % n;
}

/** A random bit of the unit that is not inside its check field. */
function randomDataBit(b: MetaBlock): number {
  for (;;) {
    const bit = rand(b.bytes.length * 8);
    const byte = bit >>> 3;
    if (byte < b.checkOffset || byte >= b.checkOffset + BLOCK_CHECK_SIZE) return bit;
  }
}

function flip(buf: Buffer, bit: number): void {
  buf[bit >>> 3] ^= 1 << (bit & 7);
}

t.test('crc32 matches the published check values', async (t) => {
  const nine = Buffer.from('123456789');
  t.equal(crc32(nine), 0xcbf43926, 'CRC-32/ISO-HDLC of "123456789"');
  t.equal(crc32Le(0xffffffff, nine), 0x340bc6d9, 'crc32_le(~0) is the same without the final inversion');
  t.equal(crc32(Buffer.alloc(0)), 0);
  t.equal(crc32Le(crc32Le(0xffffffff, nine, 0, 4), nine, 4), crc32Le(0xffffffff, nine), 'chained calls equal one call');
});

t.test('hamming code positions: data bit i sits after the parity positions', async (t) => {
  t.equal(hammingDataBit(3, 100), 0);
  t.equal(hammingDataBit(5, 100), 1);
  t.equal(hammingDataBit(7, 100), 3);
  t.equal(hammingDataBit(9, 100), 4);
  t.equal(hammingDataBit(4, 100), -1, 'a power of two is a parity position');
  t.equal(hammingDataBit(0, 100), -1);
  t.equal(hammingDataBit(200, 100), -1, 'past the data');
});

const { dir, cleanup } = scratchDir('blockcheck');
t.teardown(cleanup);

const volumes = [
  { name: '512-byte blocks, fragmented dirs (extent blocks)', spec: { blockSize: 512, clusterSize: 4096, slots: 3, features: 'metaecc,noindexed-dirs' }, setup: [['interleave', 'frag', '2', '700']] },
  { name: '2048-byte blocks, indexed dir, refcount tree', spec: { blockSize: 2048, clusterSize: 4096, slots: 2, features: 'metaecc' }, setup: [['mkdir', 'big', '300', 'dx'], ['reflink', 'shared', '3']] },
  { name: '4096-byte blocks, quotas', spec: { blockSize: 4096, clusterSize: 4096, slots: 2, features: 'metaecc,usrquota,grpquota' }, setup: [] as string[][] },
];

for (const v of volumes) {
  t.test(`metaecc volume: ${v.name}`, async (t) => {
    const img = makeVolume(dir, `v${v.spec.blockSize}`, v.spec);
    for (const cmd of v.setup) runHelper(img, ...cmd);
    const image = new Image(img);
    const blocks = walkMetadata(image);
    image.close();
    const kinds = new Set(blocks.map((b) => b.kind));
    t.comment(`${blocks.length} blocks: ${[...kinds].join(', ')}`);

    let unverified = 0;
    let recomputedDiffers = 0;
    for (const b of blocks) {
      const copy = Buffer.from(b.bytes);
      const r = verifyBlockCheck(copy, b.checkOffset);
      if (r !== 'ok' && ++unverified <= 5) t.fail(`${b.what}: verify says ${r}`);
      const again = Buffer.from(b.bytes);
      computeBlockCheck(again, b.checkOffset);
      if (!again.equals(b.bytes) && ++recomputedDiffers <= 5) t.fail(`${b.what}: recomputed check differs: ${firstDiff(b.bytes, again)}`);
      if (blockCheckOf(copy, b.checkOffset).bc_crc32e !== b.bytes.readUInt32LE(b.checkOffset) || !copy.equals(b.bytes)) {
        if (++recomputedDiffers <= 5) t.fail(`${b.what}: blockCheckOf disagrees with the stored crc or changed the buffer`);
      }
    }
    t.equal(unverified, 0, `all ${blocks.length} metadata blocks verify`);
    t.equal(recomputedDiffers, 0, 'computeBlockCheck and blockCheckOf reproduce every stored check');

    // One flipped bit: corrected in place, back to the original bytes.
    let notCorrected = 0;
    let twoNotBad = 0;
    for (const b of blocks) {
      for (let k = 0; k < 3; k++) {
        const one = Buffer.from(b.bytes);
        const bit = randomDataBit(b);
        flip(one, bit);
        const r = verifyBlockCheck(one, b.checkOffset);
        if ((r !== 'corrected' || !one.equals(b.bytes)) && ++notCorrected <= 5) t.fail(`${b.what}: bit ${bit} flipped: ${r}`);
        const two = Buffer.from(b.bytes);
        const bit1 = randomDataBit(b);
        let bit2 = randomDataBit(b);
        while (bit2 === bit1) bit2 = randomDataBit(b);
        flip(two, bit1);
        flip(two, bit2);
        const before = Buffer.from(two);
        const r2 = verifyBlockCheck(two, b.checkOffset);
        if ((r2 !== 'bad' || !two.equals(before)) && ++twoNotBad <= 5) t.fail(`${b.what}: bits ${bit1}, ${bit2} flipped: ${r2}`);
      }
    }
    t.equal(notCorrected, 0, 'a single flipped bit is corrected in every block (3 random bits each)');
    t.equal(twoNotBad, 0, 'two flipped bits are reported bad and the buffer is left as read');
    await assertFsckClean(t, img);
  });
}
