/**
 * A walk of a file's extent tree that a commit lands in the middle of. The write-back of dirty pages maps them
 * under the write-back lock alone (fs/fileIo.ts), beside an allocating write that holds the inode's lock; when
 * the inode's cached extent list has been dropped, the mapping walks the tree leaf by leaf, with awaits between.
 * A write into unwritten space in the first leaf passes a record through every leaf to its right (the kernel's
 * rotation). Caught between leaves, a walk would read the first leaf before the commit and the next after it:
 * the moved record twice (an "overlaps" EIO), or, for a removal, not at all (a hole where data is). The walk
 * must start again (fs/file.ts, loadExtents), and what it caches must be the tree as it is.
 *
 * Deterministic: the walk's read of the second leaf waits on the test until the write has committed.
 */
import t from 'tap';
import { fallocate } from '../../fs/fallocate';
import { leafExtents } from '../../fs/extentMap';
import { mapRange } from '../../fs/file';
import { readExtentBlock } from '../../fs/blocks';
import type { ExtentList } from '../../fs/format/extent';
import type { Volume } from '../../fs/volume';
import { assertTree, createFile, freshImage, mountRw, unmountAndFsck, writeBoth } from './extent-harness';

const CS = 4096;

t.test('a walk of the tree that a rotation commits in the middle of starts again', async (t) => {
  // 512-byte blocks: 28 records to a leaf, so a few hundred records make a chain of leaves.
  const image = await freshImage(t, { blockSize: 512, clusterSize: CS, features: 'noinline-data' });
  const vol = await mountRw(image);
  const f = await createFile(vol, 'f');
  const size = 2048 * CS;
  await fallocate(vol, await vol.iget(f.ino), 0, size, 0);
  f.shadow = Buffer.alloc(size);
  // Every fourth cluster written: written and unwritten records alternate, ~500 of them.
  for (let c = 0; c < 2048; c += 4) await writeBoth(vol, f, c * CS, Buffer.alloc(CS, 1 + (c % 250)));
  const inode = await vol.iget(f.ino);
  const shape = await assertTree(t, vol, f.ino, 'before');
  t.ok(shape.leaves >= 10, `the tree has ${shape.leaves} leaves`);
  const leaves = await leafBlocks(vol, inode.di.list!);
  const second = leaves[1];

  // The cached list dropped (as a copy on write or a fallocate drops it), then a walk caught at the second leaf.
  inode.extents = undefined;
  const cache = vol.cache as unknown as { read: (...a: unknown[]) => Promise<Buffer> };
  const read = cache.read.bind(vol.cache);
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  let caught = false;
  let reached!: () => void;
  const atSecond = new Promise<void>((r) => { reached = r; });
  cache.read = async (...a: unknown[]) => {
    if (a[0] === second && !caught) {
      caught = true;
      reached();
      await gate;
    }
    return read(...a);
  };
  t.teardown(() => { cache.read = read; });
  const walk = mapRange(vol, inode, 0, size).then((segs) => ({ segs }), (err: Error) => ({ err }));
  await atSecond;

  // A write into the unwritten cluster 1 (first leaf) splits its record: one record more, rotated through every leaf.
  await writeBoth(vol, f, 1 * CS, Buffer.alloc(CS, 0xee));
  release();
  const got = await walk;
  t.notOk('err' in got && got.err, `the walk caught across the commit maps the file${'err' in got ? `: ${got.err.message}` : ''}`);
  const truth = await leafExtents(vol, inode.di.list!, 'truth');
  t.same(inode.extents, truth, 'the cached list is the tree as it is now');
  const now = await mapRange(vol, inode, 0, size);
  if ('segs' in got) t.same(got.segs, now, 'and the walk mapped it so');
  t.ok(caught, 'the walk was caught at the second leaf');

  await assertTree(t, vol, f.ino, 'after');
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume after the caught walk');
});

/** The tree's leaf blocks, left to right. */
async function leafBlocks(vol: Volume, list: ExtentList): Promise<number[]> {
  if (list.l_tree_depth === 0) return [];
  const out: number[] = [];
  for (const r of list.l_recs.slice(0, list.l_next_free_rec)) {
    if (list.l_tree_depth === 1) out.push(r.e_blkno);
    else out.push(...await leafBlocks(vol, (await readExtentBlock(vol, r.e_blkno)).h_list));
  }
  return out;
}
