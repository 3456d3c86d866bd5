/**
 * A directory filled with thousands of names of 1..255 bytes (an inline
 * directory turns into a block directory, then grows block by block over
 * several clusters), thinned out by removing every other name, refilled
 * (reusing the freed records), repointed and emptied again. After every
 * phase the engine's readdir and lookups, debugfs.ocfs2's listing and the
 * model agree, and fsck.ocfs2 -fn finds the volume clean. Volumes with and
 * without inline-data, with metaecc (dir block trailers and checksums), and
 * 512-byte to 4K blocks. Each phase remounts, so the next one starts from
 * what is on disk.
 */
import t from 'tap';
import { Rng, seedFrom } from '../lib/seed';
import { isEmptyDir } from '../../fs/dirUpdate';
import {
  CASES, type Model, type Op, applyOps, checkAgainstModel, checkOnDisk, dirOf, makeFixture, makeNames, mountRw,
} from './dir-workload';

const COUNT = Number(process.env.DIR_TEST_NAMES ?? 3000);

for (const c of CASES) {
  t.test(`fill, thin out, refill, repoint and empty a directory: ${c.name}`, async (t) => {
    const seed = seedFrom(t);
    const rng = new Rng(seed ^ c.blockSize);
    const { image, targets } = await makeFixture(t, c);
    const model: Model = new Map();
    let removed: string[] = [];

    const phase = async (what: string, ops: (m: Model) => Op[]) => {
      const vol = await mountRw(image);
      try {
        const dir = await dirOf(vol, '/d');
        await applyOps(vol, dir, ops(model), model, rng);
        await checkAgainstModel(t, vol, dir, vol.rootIno, model, removed, what);
        t.comment(`${what}: i_size ${dir.di.i_size}, clusters ${dir.di.i_clusters}, inline ${dir.inline}`);
        return { size: dir.di.i_size, clusters: dir.di.i_clusters, inline: dir.inline };
      } finally {
        await vol.unmount();
      }
    };

    const names = makeNames(rng, COUNT);
    const filled = await phase('after filling', () => names.map((name) => ({ kind: 'add', name, target: rng.pick(targets) })));
    t.notOk(filled.inline, 'the directory is no longer inline');
    t.ok(filled.clusters > 1, `the directory spans several clusters (${filled.clusters})`);
    await checkOnDisk(t, image, model, 'after filling');

    removed = names.filter((_, i) => i % 2 === 1);
    const thinned = await phase('after removing every other name', () => removed.map((name) => ({ kind: 'remove', name })));
    t.equal(thinned.size, filled.size, 'removing names does not shrink the directory');
    await checkOnDisk(t, image, model, 'after removing every other name');

    // The same names again, in another order: they fit into the records just freed.
    const again = rng.shuffle([...removed]);
    removed = [];
    const refilled = await phase('after adding the removed names back', () => again.map((name) => ({ kind: 'add', name, target: rng.pick(targets) })));
    // First fit (the kernel's rule) does not pack perfectly, but without reuse the directory would grow by half.
    t.ok(refilled.size - filled.size <= filled.size / 8,
      `refilling reuses the freed space (i_size ${filled.size} -> ${refilled.size})`);
    await checkOnDisk(t, image, model, 'after refilling');

    await phase('after repointing a third of the names', (m) => [...m.keys()].filter((_, i) => i % 3 === 0)
      .map((name) => ({ kind: 'repoint', name, target: rng.pick(targets) })));
    await checkOnDisk(t, image, model, 'after repointing');

    removed = [...model.keys()];
    const emptied = await phase('after removing every name', () => rng.shuffle([...removed]).map((name) => ({ kind: 'remove', name })));
    t.equal(emptied.size, refilled.size, 'an emptied directory keeps its blocks');
    const vol = await mountRw(image);
    try {
      t.ok(await isEmptyDir(vol, await dirOf(vol, '/d')), 'isEmptyDir: only "." and ".." are left');
    } finally {
      await vol.unmount();
    }
    await checkOnDisk(t, image, model, 'after emptying');
  });
}
