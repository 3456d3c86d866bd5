/**
 * Unwritten extents (made here through the extent-tree API, over clusters
 * filled with 0xEE on the device): a write into the middle of one splits it
 * into unwritten / written / unwritten records, writes at the edges split it
 * in two, and filling the gaps merges the records back into one (they are
 * physically contiguous). The parts of converted clusters the writes did not
 * cover read as zeros, never as the 0xEE underneath; unconverted ones read as
 * zeros too. markWritten and punchHole called directly split records the
 * same way; punching frees the clusters. fsck.ocfs2 -fn and libocfs2 agree.
 */
import t from 'tap';
import { OCFS2_EXT_UNWRITTEN } from '../../fs/format/constants';
import { markWritten, punchHole } from '../../fs/extentTree';
import type { Volume } from '../../fs/volume';
import {
  assertContent, assertOracleContent, assertTree, createFile, freshImage, mountRw, preallocUnwritten, spaceCounts,
  truncateBoth, unmountAndFsck, behindCache, writeBoth, type TestFile,
} from './extent-harness';

const cs = 4096;

/** Records as [first cluster, clusters, 'u' | 'w'] relative to the first one's physical cluster. */
async function layout(vol: Volume, f: TestFile): Promise<[number, number, string][]> {
  const shape = await assertTree(t, vol, f.ino, 'layout');
  return shape.extents.map((e) => [e.cpos, e.clusters, e.flags & OCFS2_EXT_UNWRITTEN ? 'u' : 'w']);
}

t.test('writes into an unwritten extent split it, zero the rest of converted clusters, and merge back', async (t) => {
  const image = await freshImage(t, { blockSize: 1024, clusterSize: cs });
  const vol = await mountRw(image);
  const f = await createFile(vol, 'u');
  await truncateBoth(vol, f, 10 * cs);
  t.equal(await preallocUnwritten(vol, f.ino, 0, 10), 10, '10 unwritten clusters mapped');
  t.same(await layout(vol, f), [[0, 10, 'u']], 'one unwritten record');
  await assertContent(t, vol, f, 'unwritten extent');

  await writeBoth(vol, f, 4 * cs + 10, Buffer.alloc(100, 0x41));
  t.same(await layout(vol, f), [[0, 4, 'u'], [4, 1, 'w'], [5, 5, 'u']], 'a write in the middle splits it in three');
  await assertContent(t, vol, f, 'after the middle write');

  await writeBoth(vol, f, 0, Buffer.alloc(5, 0x42));
  t.same(await layout(vol, f), [[0, 1, 'w'], [1, 3, 'u'], [4, 1, 'w'], [5, 5, 'u']], 'a write at the start splits off the first cluster');
  await writeBoth(vol, f, 10 * cs - 3, Buffer.alloc(3, 0x43));
  t.same(await layout(vol, f), [[0, 1, 'w'], [1, 3, 'u'], [4, 1, 'w'], [5, 4, 'u'], [9, 1, 'w']], 'and one at the end the last');
  await assertContent(t, vol, f, 'after the edge writes');

  await writeBoth(vol, f, cs + 1, Buffer.alloc(3 * cs - 2, 0x44));
  t.same(await layout(vol, f), [[0, 5, 'w'], [5, 4, 'u'], [9, 1, 'w']], 'filling the first gap merges three records into one');
  await writeBoth(vol, f, 5 * cs, Buffer.alloc(1, 0x45));
  await writeBoth(vol, f, 9 * cs - 1, Buffer.alloc(1, 0x46));
  t.same(await layout(vol, f), [[0, 6, 'w'], [6, 2, 'u'], [8, 2, 'w']], 'converted clusters join their written neighbours');
  await writeBoth(vol, f, 6 * cs + 100, Buffer.alloc(10, 0x47));
  await writeBoth(vol, f, 7 * cs + 100, Buffer.alloc(10, 0x48));
  t.same(await layout(vol, f), [[0, 10, 'w']], 'everything written: one record again');
  await assertContent(t, vol, f, 'all converted');

  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume after conversions');
  await assertOracleContent(t, image, f);
});

t.test('markWritten and punchHole through the API split records; punching frees the clusters', async (t) => {
  const image = await freshImage(t, { blockSize: 512, clusterSize: cs });
  const vol = await mountRw(image);
  const f = await createFile(vol, 'p');
  await writeBoth(vol, f, 0, Buffer.alloc(12 * cs, 0x61));
  t.same(await layout(vol, f), [[0, 12, 'w']], 'one written record');
  const before = await spaceCounts(vol);

  await behindCache(vol, f.ino, 'punch', async (tx) => {
    const freed = await punchHole(vol, tx, await vol.iget(f.ino), 3, 4);
    t.same(freed.map((e) => e.clusters), [4], 'the punched run is returned');
  });
  f.shadow.fill(0, 3 * cs, 7 * cs);
  t.same(await layout(vol, f), [[0, 3, 'w'], [7, 5, 'w']], 'a punch in the middle leaves two records');
  t.equal((await spaceCounts(vol)).freeClusters, before.freeClusters + 4, 'the 4 punched clusters are free again');
  await assertContent(t, vol, f, 'after the punch');

  // Refill the hole unwritten, then convert part of it directly (the API does not zero: the test wrote zeros first).
  await preallocUnwritten(vol, f.ino, 3, 4);
  t.same(await layout(vol, f), [[0, 3, 'w'], [3, 4, 'u'], [7, 5, 'w']], 'the hole is unwritten now');
  const u = (await assertTree(t, vol, f.ino, 'prealloc')).extents[1];
  await vol.device.write(Buffer.alloc(2 * cs), (u.blkno / vol.geo.bpc + 1) * cs);
  await behindCache(vol, f.ino, 'markWritten', async (tx) => markWritten(vol, tx, await vol.iget(f.ino), 4, 2));
  t.same(await layout(vol, f), [[0, 3, 'w'], [3, 1, 'u'], [4, 2, 'w'], [6, 1, 'u'], [7, 5, 'w']], 'markWritten in the middle: three records');
  await assertContent(t, vol, f, 'after markWritten');

  await t.rejects(behindCache(vol, f.ino, 'markWritten over a hole', async (tx) => {
    await punchHole(vol, tx, await vol.iget(f.ino), 9, 1);
    await markWritten(vol, tx, await vol.iget(f.ino), 8, 3);
  }), { message: /^EIO/ }, 'markWritten over a hole is refused (and the transaction discarded)');
  t.same(await layout(vol, f), [[0, 3, 'w'], [3, 1, 'u'], [4, 2, 'w'], [6, 1, 'u'], [7, 5, 'w']], 'nothing changed');

  await truncateBoth(vol, f, 0);
  const after = await spaceCounts(vol);
  t.equal(after.freeClusters, before.freeClusters + 12, 'truncating frees all 12 clusters');
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume after punch and markWritten');
  await assertOracleContent(t, image, f);
});
