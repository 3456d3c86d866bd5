/**
 * The indexed-directory hash against directories libocfs2 indexed
 * (ocfs2_dx_dir_build): every name in the directory hashes, with the
 * volume's seed, to a dx entry pointing at the dirent's block; that entry
 * sits in the leaf block the kernel's lookup arithmetic picks; the index
 * holds nothing else; and our decoded entries are exactly what
 * debugfs.ocfs2 dx_dump prints. Names include long ones (several 16-byte
 * chunks) and non-ASCII UTF-8, where signed and unsigned char differ.
 */
import t from 'tap';
import {
  decodeDinode, decodeDirBlock, decodeDxLeaf, decodeDxRoot, DxEntry, dxDirNameHash, dxHashIdx, dxSeedOf,
  OCFS2_DX_FLAG_INLINE, OCFS2_INDEXED_DIR_FL,
} from '../../fs/format';
import { debugfs, Image, makeVolume, runHelper, scratchDir, VolumeSpec } from './helpers';
import { assertFsckClean } from '../lib/fsck';

const { dir, cleanup } = scratchDir('dxhash');
t.teardown(cleanup);

const cases: Array<{ name: string; spec: VolumeSpec; files: number; inline: boolean }> = [
  { name: '4096-byte blocks, 400 names (index in leaf blocks)', spec: { blockSize: 4096, clusterSize: 4096, slots: 2 }, files: 400, inline: false },
  // Enough names that the directory is not inline data, few enough for the root block to hold the index.
  { name: '4096-byte blocks, 150 names (index inline in the root)', spec: { blockSize: 4096, clusterSize: 4096, slots: 2 }, files: 150, inline: true },
  { name: '2048-byte blocks, 32 KiB clusters, metaecc, 300 names', spec: { blockSize: 2048, clusterSize: 32768, slots: 2, features: 'metaecc' }, files: 300, inline: false },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const file = makeVolume(dir, `v${c.spec.blockSize}-${c.files}`, c.spec);
    const dirBlkno = Number(runHelper(file, 'mkdir', 'd', String(c.files), 'dx')[0]);
    const img = new Image(file);
    t.teardown(() => img.close());
    const seed = dxSeedOf(img.sb);
    const di = decodeDinode(img.read(dirBlkno), dirBlkno);
    t.ok(di.i_dyn_features & OCFS2_INDEXED_DIR_FL, 'libocfs2 indexed the directory');
    const root = decodeDxRoot(img.read(di.i_dx_root), { expectedBlkno: di.i_dx_root, dirBlkno });
    t.equal(Boolean(root.dr_flags & OCFS2_DX_FLAG_INLINE), c.inline, c.inline ? 'root holds the entries inline' : 'root points at leaf clusters');

    // Every dx entry, with the block it was found in.
    const found: Array<DxEntry & { leaf: number }> = [];
    if (root.dr_entries) {
      for (const e of root.dr_entries.de_entries.slice(0, root.dr_entries.de_num_used)) found.push({ ...e, leaf: root.dr_blkno });
    } else {
      for (const rec of img.leafRecords(root.dr_list!)) {
        for (let b = 0; b < rec.e_leaf_clusters * img.blocksPerCluster; b++) {
          const lb = rec.e_blkno + b;
          const leaf = decodeDxLeaf(img.read(lb), lb);
          for (const e of leaf.dl_list.de_entries.slice(0, leaf.dl_list.de_num_used)) found.push({ ...e, leaf: lb });
        }
      }
    }
    t.equal(found.length, root.dr_num_entries, 'dr_num_entries counts the entries found');

    // Every name of the directory.
    const names: Array<{ name: Buffer; blk: number }> = [];
    for (const blk of img.fileBlocks(di.list!, Math.ceil(di.i_size / img.blockSize))) {
      for (const de of decodeDirBlock(img.read(blk), { blkno: blk, hasTrailer: true, parentBlkno: dirBlkno }).entries) {
        if (de.inode !== 0) names.push({ name: de.name, blk });
      }
    }
    t.equal(names.length, found.length, `the index has one entry per name (${names.length})`);

    const unmatched = [...found];
    let misplaced = 0;
    let notFound = 0;
    let signedMatters = 0;
    for (const n of names) {
      const h = dxDirNameHash(n.name, seed);
      const i = unmatched.findIndex((e) => e.dx_major_hash === h.major_hash && e.dx_minor_hash === h.minor_hash && e.dx_dirent_blk === n.blk);
      if (i < 0) {
        if (++notFound <= 5) t.fail(`name ${JSON.stringify(n.name.toString())} in block ${n.blk}: hash ${h.major_hash.toString(16)}/${h.minor_hash.toString(16)} not in the index`);
        continue;
      }
      const e = unmatched.splice(i, 1)[0];
      if (n.name.some((b) => b >= 0x80)) {
        const u = dxDirNameHash(n.name, seed, { signedChars: false });
        if (u.major_hash !== h.major_hash || u.minor_hash !== h.minor_hash) signedMatters++;
      }
      if (!root.dr_list) continue;
      // The kernel's lookup: the last record with e_cpos <= major hash, the cluster within it, then minor hash bits.
      const recs = img.leafRecords(root.dr_list);
      let rec = recs[0];
      for (const r of recs) if (r.e_cpos <= h.major_hash) rec = r;
      const clusterOff = Math.min(h.major_hash - rec.e_cpos, rec.e_leaf_clusters - 1);
      const want = rec.e_blkno + clusterOff * img.blocksPerCluster + dxHashIdx(h.minor_hash, img.sb.s_blocksize_bits, img.sb.s_clustersize_bits);
      if (e.leaf !== want && ++misplaced <= 5) t.fail(`name ${JSON.stringify(n.name.toString())}: in leaf ${e.leaf}, lookup says ${want}`);
    }
    t.equal(notFound, 0, 'every name hashes (signed chars) to an entry pointing at its block');
    t.equal(unmatched.length, 0, 'no index entry is left over');
    if (root.dr_list) t.equal(misplaced, 0, 'every entry sits in the leaf block the lookup arithmetic picks');
    t.ok(signedMatters > 0, 'non-ASCII names hash differently with unsigned chars, and the signed hash is the one on disk');

    // debugfs.ocfs2 dx_dump lists the same entries.
    const dump = debugfs(file, 'dx_dump /d');
    const dumped = [...dump.matchAll(/\(0x([0-9a-f]+) 0x([0-9a-f]+)\)\s+(\d+)/g)].map((m) => `${parseInt(m[1], 16)}/${parseInt(m[2], 16)}@${m[3]}`).sort();
    const ours = found.map((e) => `${e.dx_major_hash}/${e.dx_minor_hash}@${e.dx_dirent_blk}`).sort();
    t.same(dumped, ours, 'debugfs.ocfs2 dx_dump shows exactly the decoded entries');

    await assertFsckClean(t, file);
  });
}

t.test('"." and ".." hash to 0/0; names past 16 bytes use every chunk; only seed words 0-1 matter', async (t) => {
  const seed = [1, 2, 3, 4];
  t.same(dxDirNameHash('.', seed), { major_hash: 0, minor_hash: 0 });
  t.same(dxDirNameHash('..', seed), { major_hash: 0, minor_hash: 0 });
  const a = dxDirNameHash('0123456789abcdef-tail-a', seed);
  const b = dxDirNameHash('0123456789abcdef-tail-b', seed);
  t.not(a.major_hash, b.major_hash, 'bytes after the first 16 change the hash');
  t.not(dxDirNameHash('x', [1, 2, 3, 4]).major_hash, dxDirNameHash('x', [9, 2, 3, 4]).major_hash, 's_dx_seed[0] is part of the seed');
  // The TEA transform only reads and updates words 0 and 1 of the state (as in ext3).
  t.same(dxDirNameHash('x', [1, 2, 3, 4]), dxDirNameHash('x', [1, 2, 7, 8]), 's_dx_seed[2] and s_uuid_hash do not change the result');
});
