/**
 * The edges of directory changes:
 *  - a full inline directory becomes a block directory of one block when the
 *    stretched last record takes the new name, and of two blocks when it
 *    does not (ocfs2_find_dir_space_id's blocks_wanted), with 4K blocks in 4K
 *    clusters (so two blocks means two clusters), with and without metaecc;
 *  - refused changes (an existing name, ".", "..", a missing name, a name too
 *    long or with "/") change nothing;
 *  - an aborted transaction leaves the directory and the engine's maps as
 *    they were.
 * fsck.ocfs2 -fn is clean after each volume's changes.
 */
import t, { type Test } from 'tap';
import { Transaction } from '../../fs/transaction';
import { addEntry, removeEntry, setEntryInode, isEmptyDir, forgetPlacement } from '../../fs/dirUpdate';
import { readDirSlots, lookupEntry } from '../../fs/dir';
import { OCFS2_FT_REG_FILE } from '../../fs/format/constants';
import { FsError } from '../../fs/errors';
import { Rng, seedFrom } from '../lib/seed';
import { statPath } from '../lib/debugfs';
import {
  type Model, type Op, type VolumeCase, applyOps, checkAgainstModel, checkOnDisk, dirOf, makeFixture, mountRw,
} from './dir-workload';

function nameOf(prefix: string, len: number): string {
  return (prefix + 'x'.repeat(len)).slice(0, len);
}

async function rejects(t: Test, p: Promise<unknown>, errno: string, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: succeeded, expected ${errno}`);
  } catch (err) {
    t.equal(err instanceof FsError ? err.errno : String(err), errno, `${what}: ${errno}`);
  }
}

const expansionCases: (VolumeCase & { lastName: number; blocks: number })[] = [
  // 15 names of 244 bytes fill the 3864 bytes after "." and ".." but 24; a 20-byte name then needs the stretched last record.
  { name: '4K/4K: one block', blockSize: 4096, clusterSize: 4096, lastName: 20, blocks: 1 },
  // A 255-byte name does not fit the stretched last record either: two blocks, two clusters.
  { name: '4K/4K: two blocks', blockSize: 4096, clusterSize: 4096, lastName: 255, blocks: 2 },
  { name: '4K/4K metaecc: two blocks', blockSize: 4096, clusterSize: 4096, features: 'metaecc', lastName: 255, blocks: 2 },
  { name: '4K/16K metaecc: one block', blockSize: 4096, clusterSize: 16384, features: 'metaecc', lastName: 20, blocks: 1 },
];

for (const c of expansionCases) {
  t.test(`a full inline directory becomes a block directory: ${c.name}`, async (t) => {
    const rng = new Rng(seedFrom(t));
    const { image, targets } = await makeFixture(t, c);
    const model: Model = new Map();
    const target = targets[0];
    const vol = await mountRw(image);
    try {
      const dir = await dirOf(vol, '/d');
      t.ok(dir.inline, '/d starts inline');
      const fill: Op[] = [];
      for (let i = 0; i < 15; i++) fill.push({ kind: 'add', name: nameOf(`n${i}-`, 244), target });
      await applyOps(vol, dir, fill, model, rng, 1);
      t.ok(dir.inline, '15 names of 244 bytes still fit inline');
      await applyOps(vol, dir, [{ kind: 'add', name: nameOf('last-', c.lastName), target }], model, rng, 1);
      t.notOk(dir.inline, 'the next name made it a block directory');
      t.equal(dir.di.i_size, c.blocks * c.blockSize, `i_size is ${c.blocks} block(s)`);
      t.equal(dir.di.i_clusters, Math.ceil((c.blocks * c.blockSize) / c.clusterSize), 'clusters cover the blocks');
      const slots = await readDirSlots(vol, dir);
      t.equal(slots.find((s) => s.name.toString() === nameOf('last-', c.lastName))?.lblk, c.blocks - 1,
        `the new name is in block ${c.blocks - 1}`);
      await checkAgainstModel(t, vol, dir, vol.rootIno, model, [], 'after expansion');
    } finally {
      await vol.unmount();
    }
    const st = await statPath(image, '/d');
    t.equal(st.dynFeatures & 1, 0, 'debugfs: no InlineData any more');
    t.equal(st.sizeBytes, c.blocks * c.blockSize, 'debugfs: Size');
    await checkOnDisk(t, image, model, 'after expansion');
  });
}

t.test('refused changes leave the directory as it was', async (t) => {
  const rng = new Rng(seedFrom(t));
  const c: VolumeCase = { name: '1K/4K', blockSize: 1024, clusterSize: 4096 };
  const { image, targets } = await makeFixture(t, c);
  const model: Model = new Map();
  const target = targets[1];
  const vol = await mountRw(image);
  try {
    const dir = await dirOf(vol, '/d');
    const names = Array.from({ length: 40 }, (_, i) => nameOf(`e${i}-`, 10 + i * 5));
    await applyOps(vol, dir, names.map((name) => ({ kind: 'add', name, target })), model, rng, 4);
    const before = (await readDirSlots(vol, dir)).map((s) => `${s.name}:${s.ino}:${s.lblk}:${s.offset}`);
    const sizeBefore = dir.di.i_size;

    const attempt = async (what: string, errno: string, fn: (tx: Transaction) => Promise<unknown>) => {
      const tx = new Transaction(vol, what);
      await rejects(t, fn(tx), errno, what);
      tx.abort();
    };
    const B = (s: string) => Buffer.from(s);
    await attempt('adding an existing name', 'EEXIST', (tx) => addEntry(vol, tx, dir, B(names[3]), target.ino, OCFS2_FT_REG_FILE));
    await attempt('adding "."', 'EEXIST', (tx) => addEntry(vol, tx, dir, B('.'), target.ino, OCFS2_FT_REG_FILE));
    await attempt('adding ".."', 'EEXIST', (tx) => addEntry(vol, tx, dir, B('..'), target.ino, OCFS2_FT_REG_FILE));
    await attempt('adding a 256-byte name', 'ENAMETOOLONG', (tx) => addEntry(vol, tx, dir, Buffer.alloc(256, 0x61), target.ino, OCFS2_FT_REG_FILE));
    await attempt('adding a name with "/"', 'EINVAL', (tx) => addEntry(vol, tx, dir, B('a/b'), target.ino, OCFS2_FT_REG_FILE));
    await attempt('adding with file type 0', 'EINVAL', (tx) => addEntry(vol, tx, dir, B('zz'), target.ino, 0));
    await attempt('removing a missing name', 'ENOENT', (tx) => removeEntry(vol, tx, dir, B('no-such-name')));
    await attempt('removing "."', 'EINVAL', (tx) => removeEntry(vol, tx, dir, B('.')));
    await attempt('removing ".."', 'EINVAL', (tx) => removeEntry(vol, tx, dir, B('..')));
    await attempt('repointing a missing name', 'ENOENT', (tx) => setEntryInode(vol, tx, dir, B('no-such-name'), target.ino, OCFS2_FT_REG_FILE));
    const file = await vol.iget(target.ino);
    await attempt('adding to a regular file', 'ENOTDIR', (tx) => addEntry(vol, tx, file, B('x'), target.ino, OCFS2_FT_REG_FILE));

    // Changes made and then abandoned: the next transaction starts from the committed state.
    const tx = new Transaction(vol, 'abandoned');
    for (let i = 0; i < 30; i++) await addEntry(vol, tx, dir, B(nameOf(`ghost${i}-`, 200)), target.ino, OCFS2_FT_REG_FILE);
    await removeEntry(vol, tx, dir, B(names[0]));
    tx.abort();
    const after = (await readDirSlots(vol, dir)).map((s) => `${s.name}:${s.ino}:${s.lblk}:${s.offset}`);
    t.same(after, before, 'the directory is unchanged (names, blocks and offsets)');
    t.equal(dir.di.i_size, sizeBefore, 'i_size unchanged');
    t.equal(await lookupEntry(vol, dir, B(nameOf('ghost0-', 200))), null, 'an abandoned name is not found');
    await applyOps(vol, dir, [{ kind: 'remove', name: names[0] }, { kind: 'add', name: 'after-abort', target }], model, rng, 2);
    // Without its placement map the directory is scanned again and the changes land in the same places.
    forgetPlacement(dir);
    await applyOps(vol, dir, [{ kind: 'remove', name: names[1] }, { kind: 'add', name: 'after-rescan', target }], model, rng, 2);
    await checkAgainstModel(t, vol, dir, vol.rootIno, model, [names[0], names[1]], 'after the refusals, the abort and a rescan');
    t.notOk(await isEmptyDir(vol, dir), 'isEmptyDir is false for a directory with names');
  } finally {
    await vol.unmount();
  }
  await checkOnDisk(t, image, model, 'after refused changes');
});
