/**
 * The split rules of a full index leaf (ocfs2_dx_dir_find_leaf_split), which
 * names alone cannot reach in a test's time (they need hundreds of names
 * sharing one 32-bit hash): entries are added to a real directory's index
 * by hash directly (fs/dxIndex.ts indexAdd), on 4K blocks in 4K clusters
 * (one leaf per cluster, 253 entries), in a transaction that is then
 * aborted, so the volume is left as it was.
 *
 *  - a full leaf with several major hashes splits at the first hash above
 *    the cluster's own from its middle, and the entries at or above it move;
 *  - a full leaf whose entries all share the new name's major hash cannot
 *    split: ENOSPC, as the kernel answers;
 *  - a full leaf whose entries all share the cluster's own hash splits at
 *    that hash + 1 (nothing moves) and the new entry goes to the new cluster;
 *  - a hash below the full cluster's goes to the cluster that serves it.
 */
import t from 'tap';
import { Transaction } from '../../fs/transaction';
import { indexAdd } from '../../fs/dxIndex';
import { DX_LEAF_LIST_OFFSET, DX_ROOT, DX_ROOT_UNION_OFFSET } from '../../fs/format/dx';
import { decodeExtentList } from '../../fs/format/extent';
import { FsError } from '../../fs/errors';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountRw } from './dir-workload';

const ROOT = { uid: 0, gid: 0 };
const used = (leaf: Buffer) => leaf.readUInt16LE(DX_LEAF_LIST_OFFSET + 6);

t.test('a full index leaf splits by the kernel\'s rules, or answers ENOSPC', async (t) => {
  const image = await makeImage(t, { sizeBytes: 128 << 20, features: 'noinline-data,norefcount' });
  const vol = await mountRw(image);
  try {
    const attr = await vol.mkdir(vol.rootIno, Buffer.from('x'), 0o755, ROOT);
    const dir = await vol.iget(attr.ino);
    const tx = new Transaction(vol, 'split rules (aborted)');
    try {
      const di = await tx.inode(dir.ino);
      const blk = dir.di.i_dx_root + 1; // any block: the entries name no dirent here
      const root = await tx.block(di.i_dx_root, 'dx root');
      const records = () => {
        const list = decodeExtentList(root, DX_ROOT_UNION_OFFSET, 243, 'dx root');
        return list.l_recs.slice(0, list.l_next_free_rec).map((r) => r.e_cpos);
      };
      const leafOf = async (k: number) => tx.block(decodeExtentList(root, DX_ROOT_UNION_OFFSET, 243, 'dx root').l_recs[k].e_blkno, 'dx leaf');
      const add = (major: number, minor: number) => indexAdd(vol, tx, di, { major_hash: major, minor_hash: minor }, blk);

      // "." and ".." (hash 0) plus 251 entries of hash 0x1000 fill the first leaf (after the root moved out).
      for (let i = 0; i < 251; i++) await add(0x1000, i);
      t.same(records(), [0], 'the root moved out into one leaf cluster at hash 0');
      t.equal(used(await leafOf(0)), 253, 'its leaf is full');

      await add(0x1000, 999);
      t.same(records(), [0, 0x1000], 'a full leaf of two hashes splits at the higher one');
      t.equal(used(await leafOf(0)), 2, 'only "." and ".." stay');
      t.equal(used(await leafOf(1)), 252, 'the 251 entries of 0x1000 moved, and the new one joined them');

      await add(0x1000, 1000);
      let err: unknown = null;
      try {
        await add(0x1000, 1001);
      } catch (e) {
        err = e;
      }
      t.equal(err instanceof FsError ? err.errno : String(err), 'ENOSPC', 'a full leaf of one hash, the new name\'s: ENOSPC');
      t.same(records(), [0, 0x1000], 'and nothing was split');

      await add(0x1005, 1);
      t.same(records(), [0, 0x1000, 0x1001], 'a full leaf of its cluster\'s own hash splits at that hash + 1');
      t.equal(used(await leafOf(1)), 253, 'nothing moved out of it');
      t.equal(used(await leafOf(2)), 1, 'the new entry went to the new cluster');

      await add(0x0800, 7);
      t.equal(used(await leafOf(0)), 3, 'a hash below 0x1000 goes to the cluster at 0');
      t.equal(root.readUInt32LE(DX_ROOT.dr_num_entries[0]), 2 + 251 + 2 + 1 + 1, 'dr_num_entries counts every entry');
      t.equal(root.readUInt32LE(DX_ROOT.dr_clusters[0]), 3, 'dr_clusters counts the leaf clusters');
    } finally {
      tx.abort();
    }
  } finally {
    await vol.unmount();
  }
  await assertFsckClean(t, image, 'volume after the aborted transaction');
});
