/**
 * Writing every other cluster of a file (so no two extents merge) on
 * 512-byte blocks, where the inode holds 19 records and an extent block 28,
 * grows the tree to depth 1 at the 20th extent and to depth 2 past 19 full
 * leaves. Truncating back down in steps (some mid-cluster) shrinks it again,
 * and truncating to zero frees every data cluster and extent block. Content
 * is checked against a shadow copy, by the engine and by libocfs2; the tree
 * shape after each step, and fsck.ocfs2 -fn at the deepest point and at the end.
 */
import t from 'tap';
import { Rng, seedFrom } from '../lib/seed';
import {
  assertContent, assertOracleContent, assertSpaceBack, assertTree, createFile, freshImage, mountRw, openFile,
  spaceCounts, truncateBoth, unmountAndFsck, writeBoth,
} from './extent-harness';

const EXTENTS = Number(process.env.EXTENT_TEST_EXTENTS ?? 700);

t.test('every-other-cluster writes grow the tree to depth 2; truncating shrinks it and frees everything', async (t) => {
  const rng = new Rng(seedFrom(t));
  const cs = 4096;
  const image = await freshImage(t, { blockSize: 512, clusterSize: cs });
  let vol = await mountRw(image);
  let f = await createFile(vol, 'f');
  const start = await spaceCounts(vol);

  const depthAt: number[] = [];
  for (let i = 0; i < EXTENTS; i++) {
    // A random piece of cluster 2i: the rest of the new cluster must read as zeros.
    const off = rng.int(0, cs - 1);
    const len = rng.int(1, cs - off);
    const n = await writeBoth(vol, f, 2 * i * cs + off, rng.bytes(len));
    if (n !== len) t.fail(`write ${i}: ${n} of ${len} bytes written`);
    depthAt.push((await vol.iget(f.ino)).di.list!.l_tree_depth);
    if (i % 100 === 99) {
      await assertTree(t, vol, f.ino, `after ${i + 1} extents`);
      await assertContent(t, vol, f, `after ${i + 1} extents`);
    }
  }
  t.equal(depthAt[18], 0, '19 extents fit in the inode');
  t.equal(depthAt[19], 1, 'the 20th extent moves them into an extent block (depth 1)');
  t.equal(Math.max(...depthAt), 2, `${EXTENTS} extents need depth 2`);
  const deep = await assertTree(t, vol, f.ino, 'at the deepest');
  t.equal(deep.records, EXTENTS, 'one record per written cluster (no merging of non-adjacent clusters)');

  // What is on disk, read fresh, and what libocfs2 and fsck make of it.
  await unmountAndFsck(t, vol, image, 'volume with a depth-2 tree');
  await assertOracleContent(t, image, f);
  vol = await mountRw(image);
  f = await openFile(vol, f);
  await assertContent(t, vol, f, 'after remount');
  await assertTree(t, vol, f.ino, 'after remount');

  const size = f.shadow.length;
  const steps = [Math.floor(size * 0.7), Math.floor(size * 0.4) + 123, 41 * cs, 19 * 2 * cs + 7, 5 * cs - 1, 100, 0];
  for (const s of steps) {
    await truncateBoth(vol, f, s);
    const shape = await assertTree(t, vol, f.ino, `truncated to ${s}`);
    await assertContent(t, vol, f, `truncated to ${s}`);
    t.comment(`size ${s}: depth ${shape.depth}, ${shape.extentBlocks} extent blocks, ${shape.records} records`);
    const lastEnd = shape.extents.length ? Math.max(...shape.extents.map((e) => e.cpos + e.clusters)) : 0;
    t.ok(lastEnd <= Math.ceil(s / cs), `truncated to ${s}: nothing stays mapped past the last cluster of the file`);
  }
  const gone = await vol.iget(f.ino);
  t.equal(gone.di.list!.l_tree_depth, 0, 'an empty file has depth 0 again');
  t.equal(gone.di.i_last_eb_blk, 0, 'and no last extent block');
  t.equal(gone.di.i_clusters, 0, 'and no clusters');
  assertSpaceBack(t, start, await spaceCounts(vol), 'after truncating to 0');

  // Grow it again from nothing: the freed space is reused and stale bytes stay hidden.
  await writeBoth(vol, f, 3 * cs + 5, rng.bytes(10));
  await assertContent(t, vol, f, 'rewritten after truncating to 0');
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume after truncating to 0 and rewriting');
  await assertOracleContent(t, image, f);
});
