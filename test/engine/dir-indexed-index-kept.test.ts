/**
 * Indexed directories (the dx index of indexed-dirs volumes, which
 * mkfs.ocfs2 makes by default) stay right through every change: a directory
 * made by libocfs2 is filled far past its inline root (the root moves out to
 * leaves, leaf clusters split, and with 512-byte blocks the root's extent
 * list fills and the tree grows a level), thinned, refilled and emptied.
 * After each phase the index is checked block by block (test/engine/
 * dx-check.ts: every name found where the kernel's lookup looks, counts,
 * the free-space list and each block's free length exact); after unmount
 * debugfs.ocfs2 lists the model and fsck.ocfs2 -fn is clean. Then the
 * directory is removed and fsck finds every index block returned (a leaked
 * leaf cluster is "marked in the bitmap but isn't in use"), and a new
 * directory made by this engine starts with its own index; removing that
 * one gives the root's bit back to the extent allocator (which fsck does
 * not check).
 */
import t, { type Test } from 'tap';
import { Rng, seedFrom } from '../lib/seed';
import { assertFsckClean } from '../lib/fsck';
import type { Volume } from '../../fs/volume';
import type { Inode } from '../../fs/inode';
import { lookupEntry, readDirSlots } from '../../fs/dir';
import { debugfs } from '../lib/debugfs';
import { OCFS2_INDEXED_DIR_FL, OCFS2_INLINE_DATA_FL } from '../../fs/format/constants';
import { checkDxIndex, type DxFacts } from './dx-check';
import { Transaction } from '../../fs/transaction';
import { DX_ROOT } from '../../fs/format/dx';
import { decodeDirTrailer, encodeDirTrailer } from '../../fs/format/dirent';
import {
  type Model, type VolumeCase, applyOps, checkAgainstModel, checkOnDisk, dirOf, makeFixture, makeNames, mountRw,
} from './dir-workload';

const cases: (VolumeCase & { names: number })[] = [
  // mkfs.ocfs2's defaults: /d starts inline; one leaf per cluster, so every full leaf splits its cluster.
  { name: '4K blocks, 4K clusters, inline-data', blockSize: 4096, clusterSize: 4096, indexed: true, names: 1500 },
  // 8 leaves of 29 entries per cluster and 19 extent records in the root: the index tree grows a level.
  { name: '512-byte blocks, 4K clusters, no inline-data', blockSize: 512, clusterSize: 4096, features: 'noinline-data', indexed: true, names: 3500 },
  { name: '2K blocks, 8K clusters, metaecc', blockSize: 2048, clusterSize: 8192, features: 'metaecc', indexed: true, names: 1200 },
];

const caller = { uid: 0, gid: 0 };

/** Bits in use in slot 0's extent allocator (debugfs.ocfs2 stat). */
async function extentAllocUsed(image: string): Promise<number> {
  const m = /Bitmap Total: \d+\s+Used: (\d+)/.exec(await debugfs(image, 'stat //extent_alloc:0000'));
  if (!m) throw new Error('debugfs.ocfs2 stat //extent_alloc:0000 gave no bitmap counts');
  return Number(m[1]);
}

async function checkIndex(t: Test, vol: Volume, dir: Inode, what: string): Promise<DxFacts | null> {
  const { problems, facts } = await checkDxIndex(vol, dir);
  t.same(problems.slice(0, 20), [], `${what}: the index finds every name, counts and free-space list exact ${JSON.stringify(facts)}`);
  return facts;
}

for (const c of cases) {
  t.test(`an indexed directory's index follows every change: ${c.name}`, async (t) => {
    const rng = new Rng(seedFrom(t) ^ c.blockSize);
    const { image, targets } = await makeFixture(t, c);
    const model: Model = new Map();
    const names = makeNames(rng, c.names);
    let vol = await mountRw(image);
    try {
      const dir = await dirOf(vol, '/d');
      t.ok(dir.di.i_dyn_features & (OCFS2_INDEXED_DIR_FL | OCFS2_INLINE_DATA_FL), '/d starts inline or indexed');
      await applyOps(vol, dir, names.slice(0, 150).map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
      t.ok(dir.di.i_dyn_features & OCFS2_INDEXED_DIR_FL, 'after 150 names /d is an indexed block directory');
      await checkIndex(t, vol, dir, '150 names');
      await applyOps(vol, dir, names.slice(150).map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
      await checkAgainstModel(t, vol, dir, vol.rootIno, model, [], 'filled');
      const full = await checkIndex(t, vol, dir, `${c.names} names`);
      t.ok(full && !full.inline && full.clusters > 1, 'the index moved out of its root and split into several leaf clusters');
      if (c.blockSize === 512) t.ok(full && full.treeDepth > 0, 'the index tree grew a level');

      const gone = names.filter(() => rng.float() < 0.4);
      await applyOps(vol, dir, rng.shuffle(gone).map((name) => ({ kind: 'remove', name })), model, rng);
      await checkAgainstModel(t, vol, dir, vol.rootIno, model, gone, 'thinned');
      await checkIndex(t, vol, dir, `${model.size} names after removals`);

      const more = makeNames(rng, 400, new Set(names));
      await applyOps(vol, dir, more.map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
      await applyOps(vol, dir, [...model.keys()].filter((_, i) => i % 7 === 0)
        .map((name) => ({ kind: 'repoint', name, target: rng.pick(targets) })), model, rng);
      await checkAgainstModel(t, vol, dir, vol.rootIno, model, gone.slice(0, 200), 'refilled');
      await checkIndex(t, vol, dir, `${model.size} names after refilling`);
    } finally {
      await vol.unmount();
    }
    await checkOnDisk(t, image, model, 'after filling, thinning and refilling');

    // Emptied, then removed: the index goes with the directory.
    vol = await mountRw(image);
    try {
      const dir = await dirOf(vol, '/d');
      await checkIndex(t, vol, dir, 'after a remount');
      await applyOps(vol, dir, [...model.keys()].map((name) => ({ kind: 'remove', name })), model, rng);
      const empty = await checkIndex(t, vol, dir, 'emptied');
      t.equal(empty?.entries, 2, 'an emptied index holds "." and ".." only');
      await vol.rmdir(vol.rootIno, Buffer.from('d'));
      t.equal(await lookupEntry(vol, await vol.iget(vol.rootIno), Buffer.from('d')), null, 'rmdir removed /d');

      // A directory this engine makes: indexed from the start without inline-data, at its expansion with it.
      await vol.mkdir(vol.rootIno, Buffer.from('e'), 0o755, caller);
      const e = await dirOf(vol, '/e');
      const eModel: Model = new Map();
      await applyOps(vol, e, makeNames(rng, 300).map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), eModel, rng);
      await checkIndex(t, vol, e, 'a directory made by mkdir, 300 names');
      for (const name of [...eModel.keys()].slice(0, 100)) {
        await applyOps(vol, e, [{ kind: 'remove', name }], eModel, rng);
      }
      await checkIndex(t, vol, e, 'a directory made by mkdir, 100 names removed');
    } finally {
      await vol.unmount();
    }
    await assertFsckClean(t, image, 'volume after rmdir of the indexed directory and a new one');

    // fsck does not check a metadata block's bit: removing /e (its index a root and leaves, no extent blocks)
    // must give back exactly one bit of the extent allocator, the root's.
    const before = await extentAllocUsed(image);
    vol = await mountRw(image);
    try {
      for (const s of await readDirSlots(vol, await dirOf(vol, '/e'))) {
        if (s.name.toString() !== '.' && s.name.toString() !== '..') await vol.unlink((await dirOf(vol, '/e')).ino, s.name);
      }
      await vol.rmdir(vol.rootIno, Buffer.from('e'));
    } finally {
      await vol.unmount();
    }
    t.equal(await extentAllocUsed(image), before - 1, `rmdir gives the index root's bit back to extent_alloc:0000 (${before} used before)`);
    await assertFsckClean(t, image, 'volume after the last rmdir');
  });
}

/**
 * A free-space list another writer left damaged (looping back on itself, or
 * pointing at a block that is not the directory's) is relinked from the
 * blocks on the next add: the name goes in, nothing is lost, and the list is
 * exact again. Without the relinking the walk would spin or fail on a
 * foreign block.
 */
t.test('a damaged free-space list is relinked from the blocks, nothing lost', async (t) => {
  const rng = new Rng(seedFrom(t));
  const c: VolumeCase = { name: '4K/4K', blockSize: 4096, clusterSize: 4096, indexed: true };
  const { image, targets } = await makeFixture(t, c);
  const model: Model = new Map();
  const vol = await mountRw(image);
  try {
    const dir = await dirOf(vol, '/d');
    await applyOps(vol, dir, makeNames(rng, 800).map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
    const damage = async (what: string, next: (head: number) => number) => {
      const tx = new Transaction(vol, `damage: ${what}`);
      const root = await tx.block(dir.di.i_dx_root, 'dx root');
      const head = Number(root.readBigUInt64LE(DX_ROOT.dr_free_blk[0]));
      t.not(head, 0, `${what}: the list has a head to damage`);
      const block = await tx.block(head, 'dir block');
      const tr = decodeDirTrailer(block, head, dir.ino);
      tr.db_free_next = next(head);
      encodeDirTrailer(tr, block);
      await tx.commit();
      const before = await checkDxIndex(vol, dir);
      t.ok(before.problems.length > 0, `${what}: the checker sees the damage (${before.problems[0]})`);
      // Long names: the walk must go past blocks with a little room to the damage.
      const more = Array.from({ length: 40 }, (_, i) => `${what.replace(/ /g, '-')}-${i}-`.padEnd(200, 'z'));
      await applyOps(vol, dir, more.map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
      await checkAgainstModel(t, vol, dir, vol.rootIno, model, [], `after adds over ${what}`);
      await checkIndex(t, vol, dir, `after adds over ${what}`);
    };
    await damage('a list that loops', (head) => head);
    await damage('a list that leaves the directory', () => vol.rootIno);
  } finally {
    await vol.unmount();
  }
  await checkOnDisk(t, image, model, 'after the relinked lists');
});
