/**
 * The TypeScript content generator (content.ts) reproduces o2tool's byte for byte, at
 * any offset: odd offsets and lengths, and past 16 GiB where the word index needs its
 * high 32 bits. Also o2tool's own sha256 agrees with node's, and cat reads ranges.
 */
import t from 'tap';
import { cat, dumpEntries, genBytes, genWord, populate, sha256Hex } from '../lib/oracle';
import { rngFrom } from '../lib/seed';
import { makeImage } from '../lib/volume';

t.test('genBytes is position-addressed: any slice equals the same slice of a longer run', async (t) => {
  const whole = genBytes(77, 0, 4096);
  for (const [off, len] of [[0, 1], [1, 3], [3, 9], [1000, 1001], [4095, 1]]) {
    t.ok(genBytes(77, off, len).equals(whole.subarray(off, off + len)), `slice ${off}+${len}`);
  }
  t.not(genWord(1, 0), genWord(2, 0), 'the seed matters');
  t.not(genWord(1, 0), genWord(1, 0x1_0000_0000), 'the high word of the index matters');
});

t.test('o2tool writes exactly the generator bytes, at random offsets and past 16 GiB', async (t) => {
  const rng = rngFrom(t);
  const image = await makeImage(t);
  const GiB16 = 2 ** 34;
  const seed = rng.next();
  const ranges = [];
  for (let i = 0; i < 8; i++) ranges.push({ offset: i * 65536 + rng.int(0, 60000), length: rng.int(1, 5000) });
  const far = { offset: GiB16 + 4093, length: 100 };
  const sizes = [0, 1, 2, 3, 4, 5, 511, 512, 513, 4095, 4097, 100003];
  await populate(image, [
    ...sizes.map((size, i) => ({ kind: 'file' as const, path: `/f${size}`, size, seed: seed + i })),
    { kind: 'sparse', path: '/scattered', size: 8 * 65536, seed, ranges },
    { kind: 'sparse', path: '/huge', size: GiB16 + 8192, seed, ranges: [far] },
  ]);
  for (const [i, size] of sizes.entries()) {
    t.ok((await cat(image, `/f${size}`)).equals(genBytes(seed + i, 0, size)), `${size}-byte file`);
  }
  const scattered = await cat(image, '/scattered');
  for (const r of ranges) {
    t.ok(scattered.subarray(r.offset, r.offset + r.length).equals(genBytes(seed, r.offset, r.length)), `range ${r.offset}+${r.length}`);
  }
  t.ok((await cat(image, '/huge', far)).equals(genBytes(seed, far.offset, far.length)), 'bytes past 16 GiB');
  t.ok((await cat(image, '/huge', { offset: far.offset - 10, length: 10 })).equals(Buffer.alloc(10)), 'zeros before them');
  const [huge] = await dumpEntries(image, { fields: ['size', 'map'], path: '/huge' });
  t.equal(huge.size, GiB16 + 8192, 'a 16 GiB sparse file keeps its size');
  t.equal(huge.map, `${GiB16}+8192`, 'one run of two clusters, past 16 GiB');
  for (const size of sizes) {
    const [e] = await dumpEntries(image, { fields: ['data'], path: `/f${size}` });
    t.equal(e.sha256, sha256Hex(await cat(image, `/f${size}`)), `o2tool's sha256 of /f${size} is node's`);
  }
  t.ok((await cat(image, '/f4097', { offset: 4090 })).equals(genBytes(seed + 10, 4090, 7)), 'cat from an offset to the end');
});
