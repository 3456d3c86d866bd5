/**
 * The extent-tree API on its own, at depth 3: sixteen thousand one-cluster
 * unwritten extents appended at every other cluster (the right edge grows:
 * leaves, then interior blocks, then the root split), then a few hundred
 * inserted in shuffled order into the holes between them (each overflows a
 * full leaf in the middle of the tree, and the records to its right are
 * dealt out again, as the kernel's rotations move them), then random punches
 * (some across many leaves, emptying leaves and interior blocks), each batch
 * checked against a model of the mapping and the tree invariants (every leaf
 * but the rightmost full among them); then a truncate to zero must free
 * every cluster and extent block. 512-byte blocks: 19 records in the inode,
 * 28 in an extent block. fsck.ocfs2 -fn at the deepest point and at the end.
 */
import t, { type Test } from 'tap';
import { Rng, seedFrom } from '../lib/seed';
import { insertExtent, punchHole, truncateTo } from '../../fs/extentTree';
import { editInode } from '../../fs/transaction';
import { readFileData } from '../../fs/file';
import { OCFS2_EXT_UNWRITTEN } from '../../fs/format/constants';
import type { Volume } from '../../fs/volume';
import {
  assertSpaceBack, assertTree, createFile, freshImage, mountRw, openFile, spaceCounts, unmountAndFsck, withTx, type TestFile,
} from './extent-harness';

const INSERTS = Number(process.env.EXTENT_TEST_DEPTH3_INSERTS ?? 16000);
/** Inserts into the holes, each in the middle of the tree. */
const SHUFFLED = Number(process.env.EXTENT_TEST_DEPTH3_SHUFFLED ?? 400);
const BATCH = 1000;
const cs = 4096;

/** cpos -> physical cluster of every mapped cluster. */
type Model = Map<number, number>;

async function assertModel(t: Test, vol: Volume, f: TestFile, model: Model, what: string): Promise<number> {
  const shape = await assertTree(t, vol, f.ino, what);
  const got: Model = new Map();
  for (const e of shape.extents) {
    if (!(e.flags & OCFS2_EXT_UNWRITTEN)) t.fail(`${what}: cluster ${e.cpos} is not unwritten`);
    for (let i = 0; i < e.clusters; i++) got.set(e.cpos + i, e.blkno / vol.geo.bpc + i);
  }
  const wrong = [...new Set([...got.keys(), ...model.keys()])].filter((c) => got.get(c) !== model.get(c)).slice(0, 5);
  t.same(wrong, [], `${what}: the tree maps exactly the model's ${model.size} clusters`);
  return shape.depth;
}

t.test('appends grow a depth-3 tree; shuffled inserts in its middle, punches and a truncate take it apart', async (t) => {
  const rng = new Rng(seedFrom(t));
  const image = await freshImage(t, { blockSize: 512, clusterSize: cs, sizeBytes: 512 * 1024 * 1024, features: 'noinline-data' });
  let vol = await mountRw(image);
  let f = await createFile(vol, 'deep');
  const start = await spaceCounts(vol);
  const holes = rng.shuffle(Array.from({ length: INSERTS }, (_, i) => 2 * i + 1)).slice(0, SHUFFLED);
  const positions = [...Array.from({ length: INSERTS }, (_, i) => 2 * i), ...holes];
  const model: Model = new Map();
  let deepest = 0;
  for (let b = 0; b < positions.length; b += BATCH) {
    await withTx(vol, 'inserts', async (tx) => {
      const inode = await vol.iget(f.ino);
      const di = await editInode(tx, inode);
      di.i_size = Math.max(di.i_size, 2 * INSERTS * cs);
      for (const cpos of positions.slice(b, b + BATCH)) {
        const run = await vol.alloc.claimClusters(tx, 1, 1);
        await insertExtent(vol, tx, inode, { cpos, clusters: 1, blkno: run.cluster * vol.geo.bpc, flags: OCFS2_EXT_UNWRITTEN }, di);
        model.set(cpos, run.cluster);
      }
    });
    deepest = Math.max(deepest, await assertModel(t, vol, f, model, `after ${Math.min(b + BATCH, positions.length)} inserts`));
  }
  t.equal(deepest, 3, `${INSERTS} appended and ${SHUFFLED} shuffled extents make a depth-3 tree`);
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume with a depth-3 tree');

  vol = await mountRw(image);
  f = await openFile(vol, f);
  const size = 2 * INSERTS * cs;
  for (let p = 0; p < 40; p++) {
    const cpos = rng.int(0, 2 * INSERTS - 1);
    const n = rng.bool(0.2) ? rng.int(100, 1500) : rng.int(1, 30);
    await withTx(vol, 'punch', async (tx) => punchHole(vol, tx, await vol.iget(f.ino), cpos, n));
    for (let c = cpos; c < cpos + n; c++) model.delete(c);
    if (p % 5 === 4) await assertModel(t, vol, f, model, `after ${p + 1} punches`);
  }
  const data = await readFileData(vol, await vol.iget(f.ino), 0, size);
  t.ok(data.length === size && data.every((x) => x === 0), 'unwritten and punched clusters all read as zeros');
  await withTx(vol, 'truncate', async (tx) => truncateTo(vol, tx, await vol.iget(f.ino), 0));
  await assertModel(t, vol, f, new Map(), 'after truncating to 0');
  assertSpaceBack(t, start, await spaceCounts(vol), 'after truncating to 0');
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume at the end');
});
