/**
 * No write or truncate lets a reader see bytes the file never held:
 * - clusters freed with 0xAB in them and handed out again are zero wherever
 *   a new write does not cover them;
 * - stale bytes past the end of file inside the last cluster (put there on
 *   the device behind the engine's back, as a crash or another writer could)
 *   become zeros when a write past EOF or a truncate up exposes them;
 * - truncating down mid-cluster zeros the rest of that cluster, so growing
 *   the file again reads zeros there;
 * - holes read as zeros and cost no clusters on a sparse volume; on a volume
 *   without sparse-alloc every cluster up to the end is allocated and zeroed.
 * fsck.ocfs2 -fn and libocfs2 check each volume (no inline-data, so that
 * small files have clusters).
 */
import t from 'tap';
import { Rng, seedFrom } from '../lib/seed';
import type { Volume } from '../../fs/volume';
import {
  assertContent, assertOracleContent, assertTree, createFile, freshImage, mountRw, spaceCounts, truncateBoth,
  unmountAndFsck, writeBoth, type TestFile,
} from './extent-harness';

const cs = 4096;

/** Device offset of the cluster mapping file cluster `cpos` (it must be mapped). */
async function deviceOffsetOf(vol: Volume, f: TestFile, cpos: number): Promise<number> {
  const shape = await assertTree(t, vol, f.ino, 'mapping');
  const e = shape.extents.find((x) => cpos >= x.cpos && cpos < x.cpos + x.clusters);
  if (!e) throw new Error(`cluster ${cpos} of ${f.name} is not mapped`);
  return (e.blkno + (cpos - e.cpos) * vol.geo.bpc) * vol.geo.blockSize;
}

async function physicalClusters(vol: Volume, f: TestFile): Promise<Set<number>> {
  const out = new Set<number>();
  for (const e of (await assertTree(t, vol, f.ino, 'physical clusters')).extents) {
    for (let i = 0; i < e.clusters; i++) out.add(e.blkno / vol.geo.bpc + i);
  }
  return out;
}

t.test('reused clusters, stale tails and truncated tails read as zeros (sparse volume)', async (t) => {
  const rng = new Rng(seedFrom(t));
  const image = await freshImage(t, { blockSize: 1024, clusterSize: cs, features: 'noinline-data' });
  const vol = await mountRw(image);

  // Dirty 64 clusters, then free them.
  const old = await createFile(vol, 'old');
  await writeBoth(vol, old, 0, Buffer.alloc(64 * cs, 0xab));
  const dirty = await physicalClusters(vol, old);
  await truncateBoth(vol, old, 0);
  // Freed clusters are reusable once the journal transaction that freed them has committed.
  await vol.syncMetadata();

  const f = await createFile(vol, 'f');
  // Each write inside one cluster (every third), so that exactly 16 get allocated.
  for (let i = 0; i < 16; i++) {
    const len = rng.int(1, 200);
    await writeBoth(vol, f, i * 3 * cs + rng.int(0, cs - len), rng.bytes(len));
  }
  const reused = [...(await physicalClusters(vol, f))].filter((c) => dirty.has(c)).length;
  t.ok(reused > 0, `the new file got ${reused} of the freed (dirty) clusters`);
  await assertContent(t, vol, f, 'scattered writes into reused clusters');
  t.equal((await vol.iget(f.ino)).di.i_clusters, 16, 'sparse: only the written clusters are allocated');

  // Stale bytes past EOF in the last cluster, then a write past EOF in that cluster and beyond.
  const g = await createFile(vol, 'g');
  await writeBoth(vol, g, 0, rng.bytes(10));
  await vol.device.write(Buffer.alloc(cs - 10, 0xcd), (await deviceOffsetOf(vol, g, 0)) + 10);
  await writeBoth(vol, g, 3000, rng.bytes(5));
  await assertContent(t, vol, g, 'write past EOF in the last cluster');
  await vol.device.write(Buffer.alloc(cs - 3005, 0xcd), (await deviceOffsetOf(vol, g, 0)) + 3005);
  await writeBoth(vol, g, 7 * cs, rng.bytes(5));
  await assertContent(t, vol, g, 'write past EOF beyond the last cluster');
  const lastOff = await deviceOffsetOf(vol, g, 7);
  await vol.device.write(Buffer.alloc(cs - 5, 0xcd), lastOff + 5);
  await truncateBoth(vol, g, 9 * cs + 1);
  await assertContent(t, vol, g, 'truncate up past stale bytes');
  t.equal((await vol.iget(g.ino)).di.i_clusters, 2, 'truncating up allocates nothing on a sparse volume');

  // Truncate down mid-cluster, grow again: the old tail must not come back.
  const h = await createFile(vol, 'h');
  await writeBoth(vol, h, 0, Buffer.alloc(3 * cs, 0xef));
  await truncateBoth(vol, h, cs + 100);
  await writeBoth(vol, h, 2 * cs + 50, rng.bytes(3));
  await assertContent(t, vol, h, 'truncated mid-cluster then written past the end');
  await truncateBoth(vol, h, 100);
  await truncateBoth(vol, h, 2 * cs);
  await assertContent(t, vol, h, 'truncated mid-cluster then truncated up');

  for (const x of [old, f, g, h]) await vol.release(x.ino, x.fh);
  await unmountAndFsck(t, vol, image, 'sparse volume');
  for (const x of [old, f, g, h]) await assertOracleContent(t, image, x);
});

t.test('without sparse-alloc, writes past EOF and truncates up allocate zeroed clusters up to the end', async (t) => {
  const rng = new Rng(seedFrom(t));
  const image = await freshImage(t, { blockSize: 2048, clusterSize: cs, features: 'nosparse,nounwritten' });
  const vol = await mountRw(image);
  const start = await spaceCounts(vol);

  const old = await createFile(vol, 'old');
  await writeBoth(vol, old, 0, Buffer.alloc(200 * cs, 0xab));
  await truncateBoth(vol, old, 0);
  // Freed clusters are reusable once the journal transaction that freed them has committed.
  await vol.syncMetadata();

  const f = await createFile(vol, 'f');
  await writeBoth(vol, f, 100, rng.bytes(10));
  await writeBoth(vol, f, 50 * cs + 7, rng.bytes(cs));
  let di = (await vol.iget(f.ino)).di;
  t.equal(di.i_clusters, 52, 'every cluster up to the end of the write is allocated');
  await assertContent(t, vol, f, 'write past EOF (the gap reads as zeros)');
  await truncateBoth(vol, f, 120 * cs + 1);
  di = (await vol.iget(f.ino)).di;
  t.equal(di.i_clusters, 121, 'truncating up allocates up to the new end');
  await assertContent(t, vol, f, 'truncated up');
  const shape = await assertTree(t, vol, f.ino, 'no holes');
  let next = 0;
  for (const e of shape.extents) {
    if (e.cpos !== next) t.fail(`hole at cluster ${next}`);
    next = e.cpos + e.clusters;
  }
  await truncateBoth(vol, f, 30 * cs - 5);
  t.equal((await vol.iget(f.ino)).di.i_clusters, 30, 'truncating down frees past the new last cluster');
  await writeBoth(vol, f, 40 * cs, rng.bytes(3));
  await assertContent(t, vol, f, 'truncated down, then written past EOF');

  await truncateBoth(vol, f, 0);
  const now = await spaceCounts(vol);
  t.equal(now.freeClusters + (now.extentAllocClusters - start.extentAllocClusters), start.freeClusters, 'all clusters are free again');
  await writeBoth(vol, f, 3 * cs, rng.bytes(3));
  for (const x of [old, f]) await vol.release(x.ino, x.fh);
  await unmountAndFsck(t, vol, image, 'non-sparse volume');
  for (const x of [old, f]) await assertOracleContent(t, image, x);
});
