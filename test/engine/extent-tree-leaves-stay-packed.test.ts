/**
 * Every leaf but the rightmost stays full, as the kernel keeps its trees
 * (its merge code calls a left neighbour that is not full corrupt), through
 * the changes that touch a leaf in the middle of a tree, each checked with
 * the tree invariants and against a model of the mapping:
 * - an insert into a full leaf in the middle: its last record moves on, and
 *   every leaf's after it, to the right edge (the kernel's rotation right);
 * - a punch of a whole record in the middle: records come back from the
 *   right (rotation left), and a leaf emptied at the right edge is freed;
 * - a punch of the first cluster of a middle leaf's first record, which
 *   keeps the leaf's count (its interior record now starts below its first
 *   leaf record), then a change further right: the interior records are
 *   recomputed right of it without leaving a gap after it.
 * 512-byte blocks: 19 records in the inode, 28 in an extent block; one
 * extent of 3 clusters every 4, so that nothing merges.
 */
import t from 'tap';
import { insertExtent, punchHole } from '../../fs/extentTree';
import { editInode } from '../../fs/transaction';
import { OCFS2_EXT_UNWRITTEN } from '../../fs/format/constants';
import { assertTree, createFile, freshImage, mountRw, unmountAndFsck, withTx } from './extent-harness';

const EXTENTS = 130;

t.test('changes in the middle of a tree keep every leaf but the rightmost full', async (t) => {
  const image = await freshImage(t, { blockSize: 512, clusterSize: 4096, sizeBytes: 256 * 1024 * 1024, features: 'noinline-data' });
  const vol = await mountRw(image);
  const f = await createFile(vol, 'f');
  const model = new Map<number, number>();
  const check = async (what: string) => {
    const shape = await assertTree(t, vol, f.ino, what);
    const got = new Map<number, number>();
    for (const e of shape.extents) for (let i = 0; i < e.clusters; i++) got.set(e.cpos + i, e.blkno / vol.geo.bpc + i);
    const wrong = [...new Set([...got.keys(), ...model.keys()])].filter((c) => got.get(c) !== model.get(c)).slice(0, 5);
    t.same(wrong, [], `${what}: the tree maps exactly the model's ${model.size} clusters`);
    return shape;
  };
  const insert = (cpos: number, clusters: number) => withTx(vol, `insert ${cpos}`, async (tx) => {
    const inode = await vol.iget(f.ino);
    const di = await editInode(tx, inode);
    di.i_size = Math.max(di.i_size, 4 * EXTENTS * 4096);
    const run = await vol.alloc.claimClusters(tx, clusters, clusters);
    await insertExtent(vol, tx, inode, { cpos, clusters, blkno: run.cluster * vol.geo.bpc, flags: OCFS2_EXT_UNWRITTEN }, di);
    for (let i = 0; i < clusters; i++) model.set(cpos + i, run.cluster + i);
  });
  const punch = (cpos: number, clusters: number) => withTx(vol, `punch ${cpos}`, async (tx) => {
    await punchHole(vol, tx, await vol.iget(f.ino), cpos, clusters);
    for (let i = 0; i < clusters; i++) model.delete(cpos + i);
  });

  for (let k = 0; k < EXTENTS; k++) await insert(4 * k, 3);
  const built = await check(`${EXTENTS} appended extents`);
  t.same([built.depth, built.leaves], [1, 5], 'one level of 5 leaves: 28, 28, 28, 28 and 18 records');

  // Cluster 4*40+3 is a hole in the second leaf (records 28..55): a record there pushes one out of each full leaf.
  await insert(4 * 40 + 3, 1);
  t.equal((await check('an insert into the second leaf')).leaves, 5, 'the overflow went on to the rightmost leaf');
  // A whole record out of the second leaf: one comes back from each leaf to its right.
  await punch(4 * 45, 3);
  await check('a record punched out of the second leaf');
  // The first cluster of the third leaf's first record: the leaf keeps 28 records.
  await punch(4 * 56, 1);
  await check('the third leaf\'s first cluster punched');
  // A record out of the fourth leaf (records 84..111): the interior records right of the third leaf's are
  // recomputed, and the third leaf's own, below its first leaf record, stays, without a gap before it.
  await punch(4 * 90, 3);
  await check('a record punched out of the fourth leaf');
  // Twenty records out of the middle: records come back from the right and the emptied rightmost leaf goes.
  for (let k = 60; k < 80; k++) await punch(4 * k, 3);
  const after = await check('twenty records punched out of the middle');
  t.same([after.records, after.leaves], [109, 4], '109 records fill 4 leaves');
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume at the end');
});
