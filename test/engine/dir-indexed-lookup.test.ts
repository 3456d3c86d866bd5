/**
 * Lookups through the dx index (fs/dir.ts, fs/dirUpdate.ts): a fresh mount
 * finds names in a large indexed directory, for a stat or for a change, by
 * reading the root, the index path and one dir block, not the whole
 * directory, and builds neither map; after as many index lookups as the
 * directory has blocks it builds the name map (the rent-or-buy rule of
 * fs/scanOrIndex.ts). With every lookup sent through the index
 * (dirLookups: 'index'), every name of the model is found, removed and
 * never-made names are not, before and after changes made through the
 * index; debugfs.ocfs2 and fsck.ocfs2 -fn agree after. A directory whose
 * dx root is damaged answers EIO naming it, and the rest of the volume
 * goes on working.
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import { Rng, seedFrom } from '../lib/seed';
import { FileDevice } from '../../io/fileDevice';
import { Volume } from '../../fs/volume';
import { indexLookupStats, lookupEntry } from '../../fs/dir';
import { SCAN_MAX_BLOCKS } from '../../fs/scanOrIndex';
import { addEntry, placementOf, removeEntry } from '../../fs/dirUpdate';
import { Transaction, editInode } from '../../fs/transaction';
import { dinodeLinksCount, setDinodeLinksCount } from '../../fs/format/dinode';
import { FsError } from '../../fs/errors';
import { readDxRootBytes } from '../../fs/blocks';
import { DX_ROOT_UNION_OFFSET } from '../../fs/format/dx';
import {
  type Model, type VolumeCase, applyOps, checkAgainstModel, checkOnDisk, dirOf, makeFixture, makeNames, mountRw,
} from './dir-workload';

const cases: (VolumeCase & { names: number })[] = [
  // ~800 dir blocks; the index tree one level deep, its root pointing at two or more extent blocks (28 records
  // each), so a lookup must pick the right one.
  { name: '512-byte blocks, 4K clusters, no inline-data', blockSize: 512, clusterSize: 4096, features: 'noinline-data', indexed: true, names: 6000 },
  // mkfs.ocfs2's geometry: ~40 blocks, below SCAN_MAX_BLOCKS, so only dirLookups: 'index' looks up through the index.
  { name: '4K blocks, 4K clusters, inline-data', blockSize: 4096, clusterSize: 4096, indexed: true, names: 1500 },
];

/** The errno a promise rejects with ('no error' when it resolves). */
async function errnoOf(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'no error', (e: unknown) => (e instanceof FsError ? e.errno : String(e)));
}

async function mount(image: string, dirLookups: 'auto' | 'index'): Promise<Volume> {
  return Volume.mount(await FileDevice.open(image), { readOnly: false, dirLookups });
}

for (const c of cases) {
  t.test(`lookups through the dx index: ${c.name}`, async (t) => {
    const rng = new Rng(seedFrom(t) ^ c.blockSize);
    const { image, targets } = await makeFixture(t, c);
    const model: Model = new Map();
    const names = makeNames(rng, c.names);
    let vol = await mountRw(image);
    try {
      await applyOps(vol, await dirOf(vol, '/d'), names.map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
    } finally {
      await vol.unmount();
    }

    // A fresh mount: one lookup reads a handful of blocks, whatever the size of the directory.
    vol = await mount(image, c.blockSize === 512 ? 'auto' : 'index');
    let blocks = 0;
    try {
      const dir = await dirOf(vol, '/d');
      blocks = dir.di.i_size / c.blockSize;
      if (c.blockSize === 512) t.ok(blocks > SCAN_MAX_BLOCKS, `/d has ${blocks} blocks, more than ${SCAN_MAX_BLOCKS}`);
      const name = rng.pick(names);
      const missesBefore = vol.cache.stats.misses;
      const e = await lookupEntry(vol, dir, Buffer.from(name, 'latin1'));
      const read = vol.cache.stats.misses - missesBefore;
      t.equal(e?.ino, model.get(name)!.ino, 'a cold lookup finds the name');
      t.ok(read <= 4, `it read ${read} blocks (the dx root, an extent block, a leaf, a dir block at most) of the ${blocks}-block directory`);
      t.equal(dir.dirIndex, undefined, 'and built no name map');
      const absent = makeNames(rng, 1, new Set(names))[0];
      t.equal(await lookupEntry(vol, dir, Buffer.from(absent, 'latin1')), null, 'a cold lookup of an absent name finds nothing');

      // A cold change finds its name (and that a new one is not there yet) the same way: no scan, no placement map.
      const victim = rng.pick([...model.keys()].filter((n) => n !== name));
      let misses = vol.cache.stats.misses;
      await applyOps(vol, dir, [{ kind: 'remove', name: victim }], model, rng, 1);
      const unlinkRead = vol.cache.stats.misses - misses;
      t.ok(unlinkRead <= 12, `a cold unlink read ${unlinkRead} blocks (its name's index path and dir block, inodes, allocator)`);
      // A new name goes into the first block on the free-space list with room for it (ocfs2_find_dir_space_dx):
      // a short one fits in one of the first few, a long one may walk far down the list (as in the kernel).
      let fresh = '';
      while (fresh.length === 0 || fresh.length > 12) fresh = makeNames(rng, 1, new Set([...names, ...model.keys()]))[0];
      misses = vol.cache.stats.misses;
      await applyOps(vol, dir, [{ kind: 'add', name: fresh, target: rng.pick(targets) }], model, rng, 1);
      const createRead = vol.cache.stats.misses - misses;
      t.ok(createRead <= Math.max(8, blocks / 10), `a cold create of a ${fresh.length}-byte name read ${createRead} blocks, not the ${blocks}-block directory`);
      t.equal(placementOf(dir), null, 'and built no placement map');
      t.equal(await lookupEntry(vol, dir, Buffer.from(victim, 'latin1')), null, 'the removed name is gone');
      t.equal((await lookupEntry(vol, dir, Buffer.from(fresh, 'latin1')))?.ino, model.get(fresh)!.ino, 'the new one is there');

      if (c.blockSize === 512) {
        const root = await readDxRootBytes(vol, dir.di.i_dx_root, dir.ino);
        const depth = root.readUInt16LE(DX_ROOT_UNION_OFFSET);
        const recs = root.readUInt16LE(DX_ROOT_UNION_OFFSET + 4);
        t.ok(depth === 1 && recs >= 2, `the index tree is one level deep, its root pointing at ${recs} extent blocks`);
        // Rent or buy: index lookups until there have been as many as the directory has blocks, then the map.
        blocks = dir.di.i_size / c.blockSize; // the create may have grown it
        const before = indexLookupStats.lookups;
        const keys = [...model.keys()];
        for (let i = 0; dir.dirIndex === undefined && i < 10 * blocks; i++) {
          await lookupEntry(vol, dir, Buffer.from(keys[i % keys.length], 'latin1'));
        }
        t.equal(indexLookupStats.lookups - before, blocks - 4, `after ${blocks} index lookups in all (the four above included) the next one builds the name map`);
        t.ok(dir.dirIndex, 'and the directory now has its map');
        await checkAgainstModel(t, vol, dir, vol.rootIno, model, [], 'through the map built after the index lookups');
      }
    } finally {
      await vol.unmount();
    }

    // Every lookup through the index: the whole model, absent names, and changes made meanwhile.
    vol = await mount(image, 'index');
    // From the model: the cold unlink above removed one of the names already.
    const gone = [...model.keys()].filter(() => rng.float() < 0.4);
    try {
      const dir = await dirOf(vol, '/d');
      await checkAgainstModel(t, vol, dir, vol.rootIno, model, makeNames(rng, 300, new Set([...names, ...model.keys()])), 'cold, through the index');
      t.equal(dir.dirIndex, undefined, 'no name map was built');
      await applyOps(vol, dir, rng.shuffle(gone).map((name) => ({ kind: 'remove', name })), model, rng);
      const more = makeNames(rng, 300, new Set([...names, ...model.keys()]));
      await applyOps(vol, dir, more.map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
      // Names taken, and names this transaction itself adds or removes: the index and the transaction's own changes.
      const taken = rng.pick([...model.keys()]);
      t.equal(await errnoOf(applyOps(vol, dir, [{ kind: 'add', name: taken, target: rng.pick(targets) }], new Map(model), rng)), 'EEXIST',
        'adding a name the directory has: EEXIST, found through the index');
      // One transaction adds a name, finds it there (EEXIST), removes it, adds it again, and removes one it did not add.
      const again = makeNames(rng, 1, new Set([...names, ...more, ...model.keys()]))[0];
      const againBuf = Buffer.from(again, 'latin1');
      const target = rng.pick(targets);
      const old = rng.pick([...model.keys()]);
      const tx = new Transaction(vol, 'add, remove and add one name');
      await addEntry(vol, tx, dir, againBuf, target.ino, target.fileType);
      t.equal(await errnoOf(addEntry(vol, tx, dir, againBuf, target.ino, target.fileType)), 'EEXIST',
        'the same transaction sees the name it added (EEXIST)');
      await removeEntry(vol, tx, dir, againBuf);
      await addEntry(vol, tx, dir, againBuf, target.ino, target.fileType);
      const oldTarget = model.get(old)!;
      await removeEntry(vol, tx, dir, Buffer.from(old, 'latin1'));
      t.equal(await errnoOf(removeEntry(vol, tx, dir, Buffer.from(old, 'latin1'))), 'ENOENT',
        'and that a name it removed is gone, though the committed index still has it (ENOENT)');
      for (const [ino, d] of [[target.ino, 1], [oldTarget.ino, -1]]) {
        const di = await editInode(tx, await vol.iget(ino));
        setDinodeLinksCount(di, dinodeLinksCount(di) + d);
      }
      await tx.commit();
      model.set(again, target);
      model.delete(old);
      await checkAgainstModel(t, vol, dir, vol.rootIno, model, gone, 'after removals and additions, through the index');
      t.equal(dir.dirIndex, undefined, 'still no name map');
      t.equal(placementOf(dir), null, 'and no placement map: every change found its names through the index');
    } finally {
      await vol.unmount();
    }
    await checkOnDisk(t, image, model, 'after changes looked up through the index');

    // A damaged dx root: lookups in /d answer EIO naming it, the rest of the volume works.
    vol = await mountRw(image);
    let root = 0;
    try {
      root = (await dirOf(vol, '/d')).di.i_dx_root;
    } finally {
      await vol.unmount();
    }
    const fh = await fs.open(image, 'r+');
    try {
      await fh.write(Buffer.from('NOTADXRT'), 0, 8, root * c.blockSize);
    } finally {
      await fh.close();
    }
    vol = await mount(image, 'index');
    try {
      const dir = await dirOf(vol, '/d');
      const err = await lookupEntry(vol, dir, Buffer.from([...model.keys()][0], 'latin1')).then(() => null, (e: unknown) => e);
      t.ok(err instanceof FsError && err.errno === 'EIO' && /dx root/.test(err.message), `a lookup in /d answers EIO naming the dx root (${String(err)})`);
      const again = await lookupEntry(vol, dir, Buffer.from([...model.keys()][0], 'latin1')).then(() => null, (e: unknown) => e);
      t.ok(again instanceof FsError && again.errno === 'EIO', 'and again on retry (nothing damaged was cached)');
      t.ok(await dirOf(vol, '/t0'), 'lookups elsewhere go on working');
    } finally {
      await vol.unmount();
    }
  });
}
