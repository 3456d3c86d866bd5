/**
 * setBits (fs/format/group.ts) sets a range of a group bitmap a byte at a
 * time where it can: the allocator masks the clusters of uncommitted frees
 * with it before every search. It must set exactly the bits one setBit per
 * bit would, for ranges starting and ending anywhere in a byte, empty
 * ranges included, over bitmaps already holding other bits. Random ranges
 * with a fixed seed (printed; O2FUSE_SEED replays).
 */
import t from 'tap';
import { setBit, setBits } from '../../fs/format/group';
import { Prng, seedFromEnv } from '../../io/prng';

t.test('setBits sets exactly the bits of [from, to)', async (t) => {
  const seed = seedFromEnv(4096);
  t.comment(`seed ${seed} (O2FUSE_SEED=${seed} replays)`);
  const rng = new Prng(seed);
  let mismatches = 0;
  const cases: Array<[number, number]> = [[0, 0], [0, 1], [0, 8], [0, 9], [7, 8], [7, 9], [3, 5], [8, 16], [1, 63], [5, 5], [0, 256]];
  for (let k = 0; k < 500; k++) {
    const a = rng.int(0, 255);
    cases.push([a, rng.int(a, 256)]);
  }
  for (const [from, to] of cases) {
    const base = Buffer.alloc(32);
    for (let i = 0; i < base.length; i++) base[i] = rng.chance(0.3) ? rng.int(0, 255) : 0;
    const want = Buffer.from(base);
    for (let i = from; i < to; i++) setBit(want, i);
    const got = Buffer.from(base);
    setBits(got, from, to);
    if (!got.equals(want)) {
      mismatches++;
      if (mismatches <= 5) t.same(got.toString('hex'), want.toString('hex'), `[${from}, ${to}) over ${base.toString('hex')}`);
    }
  }
  t.equal(mismatches, 0, `${cases.length} ranges set the same bits as setBit one at a time`);
});
