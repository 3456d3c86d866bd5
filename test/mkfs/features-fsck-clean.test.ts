/**
 * Feature choices: o2fuse's default set, everything switched off, and each
 * optional feature mkfs must write when asked (metaecc, indexed-dirs with an
 * inline index and with dx leaf blocks, xattr/refcount/discontig-bg, cluster
 * stacks) make volumes fsck.ocfs2 -fn accepts, with the feature words
 * debugfs.ocfs2 reports; features it cannot write are refused by name.
 */
import * as fs from 'node:fs/promises';
import t from 'tap';
import { FileDevice } from '../../io/fileDevice';
import { CHECK_OFFSET, dirBlockCheckOffsetOf, verifyBlockCheck } from '../../fs/format/blockcheck';
import { decodeDinode } from '../../fs/format/dinode';
import { formatVolume, MkfsUsageError } from '../../fs/mkfs';
import { assertFsckStrict, debugfs, formatImage, lsDir, MiB, superblockStats, tempDir } from './helpers';

const SIZE = 256 * MiB;

t.test('default features are the ones the engine writes', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-feat-');
  const { image, result } = await formatImage(dir, 'default.img', SIZE, { label: 'dflt' });
  await assertFsckStrict(t, image, 'a default volume');
  const st = await superblockStats(image);
  t.same(st.incompat.sort(), ['append-dio', 'extended-slotmap', 'indexed-dirs', 'inline-data', 'local', 'sparse']);
  t.same(st.compat.sort(), ['backup-super', 'strict-journal-super']);
  t.same(st.roCompat, ['unwritten']);
  t.equal(result.featureText, 'local sparse extended-slotmap backup-super unwritten inline-data strict-journal-super indexed-dirs append-dio');
});

t.test('every optional feature off', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-feat-');
  const { image } = await formatImage(dir, 'off.img', SIZE, {
    features: 'nosparse,nounwritten,noinline-data,noextended-slotmap,nobackup-super,noappend-dio,noindexed-dirs', slots: 3,
  });
  await assertFsckStrict(t, image, 'a volume without optional features');
  const st = await superblockStats(image);
  t.same(st.incompat, ['local'], 'only local in incompat');
  t.same(st.compat, ['strict-journal-super'], 'only strict-journal-super in compat');
  t.same(st.roCompat, [], 'nothing in ro-compat');
  // Without inline-data the root directory lives in a directory block.
  const root = await debugfs(image, 'stat /');
  t.match(root, /Dynamic Features: \(0x0\)/, 'root is not inline');
  t.same((await lsDir(image, '/')).map((e) => e.name), ['.', '..', 'lost+found']);
});

t.test('max-compat level', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-feat-');
  const { image } = await formatImage(dir, 'compat.img', SIZE, { featureLevel: 'max-compat' });
  await assertFsckStrict(t, image, 'a max-compat volume');
  const st = await superblockStats(image);
  t.same(st.incompat, ['local']);
  t.same(st.compat.sort(), ['backup-super', 'strict-journal-super']);
});

t.test('metaecc: every metadata block carries a valid check', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-feat-');
  for (const features of ['metaecc', 'metaecc,noinline-data', 'metaecc,indexed-dirs,noinline-data']) {
    const { image, result } = await formatImage(dir, 'ecc.img', SIZE, { features, slots: 4, blockSizeBytes: 1024 });
    await assertFsckStrict(t, image, `a ${features} volume`);
    const st = await superblockStats(image);
    t.ok(st.incompat.includes('metaecc'), `${features}: debugfs reports metaecc`);
    const bs = result.blockSizeBytes;
    const fh = await fs.open(image, 'r');
    try {
      const block = async (blkno: number): Promise<Buffer> => {
        const b = Buffer.alloc(bs);
        await fh.read(b, 0, bs, blkno * bs);
        return b;
      };
      t.equal(verifyBlockCheck(await block(2), CHECK_OFFSET.dinode), 'ok', `${features}: superblock check`);
      const root = await block(result.rootBlkno);
      t.equal(verifyBlockCheck(root, CHECK_OFFSET.dinode), 'ok', `${features}: root inode check`);
      t.not(root.readUInt32LE(CHECK_OFFSET.dinode), 0, `${features}: root inode crc is set`);
      t.equal(verifyBlockCheck(await block(result.firstClusterGroupBlkno), CHECK_OFFSET.groupDesc), 'ok', `${features}: first group descriptor check`);
      const d = decodeDinode(root, result.rootBlkno);
      if (d.list && d.list.l_next_free_rec > 0) {
        const dirBlock = await block(d.list.l_recs[0].e_blkno);
        t.equal(verifyBlockCheck(dirBlock, dirBlockCheckOffsetOf(bs)), 'ok', `${features}: root dir block check`);
      }
      if (d.i_dx_root) t.equal(verifyBlockCheck(await block(d.i_dx_root), CHECK_OFFSET.dxRoot), 'ok', `${features}: dx root check`);
    } finally {
      await fh.close();
    }
  }
});

t.test('indexed-dirs: inline index and dx leaf blocks', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-feat-');
  {
    const { image } = await formatImage(dir, 'dx1.img', SIZE, { features: 'indexed-dirs,noinline-data', slots: 2, blockSizeBytes: 4096 });
    await assertFsckStrict(t, image, 'an indexed-dirs volume');
    t.match(await debugfs(image, 'stat /'), /IndexedDir/, 'root is indexed');
    t.match(await debugfs(image, 'stat /lost+found'), /IndexedDir/, 'lost+found is indexed');
    t.match(await debugfs(image, 'stat //orphan_dir:0001'), /IndexedDir/, 'orphan dirs are indexed');
  }
  {
    // 40 slots on 512-byte blocks: the system directory's 247 entries outgrow the dx root (19).
    const { image } = await formatImage(dir, 'dx2.img', SIZE, {
      features: 'indexed-dirs,noinline-data', slots: 40, blockSizeBytes: 512, journalSizeBytes: 4 * MiB,
    });
    await assertFsckStrict(t, image, 'an indexed-dirs volume with dx leaves');
    t.match(await debugfs(image, 'dx_dump //'), /Dir Index Leaf/, 'the system directory has dx leaves');
    t.match(await debugfs(image, 'stat //journal:0039'), /Flags: Valid System Journal/, 'lookup through the index finds journal:0039');
  }
  {
    // With inline-data, only the system directory (too big to be inline with 8 slots) needs an index.
    const { image } = await formatImage(dir, 'dx3.img', SIZE, { features: 'indexed-dirs', slots: 8, blockSizeBytes: 1024 });
    await assertFsckStrict(t, image, 'an indexed-dirs + inline-data volume');
    t.match(await debugfs(image, 'stat //'), /IndexedDir/, 'the system directory is indexed');
    t.match(await debugfs(image, 'stat /'), /InlineData/, 'root stays inline');
  }
});

t.test("mkfs.ocfs2's default set: xattr, indexed-dirs, refcount, discontig-bg", async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-feat-');
  const { image } = await formatImage(dir, 'full.img', SIZE, { features: 'xattr,indexed-dirs,refcount,discontig-bg', slots: 2 });
  await assertFsckStrict(t, image, 'a volume with mkfs.ocfs2 default features');
  const st = await superblockStats(image);
  for (const f of ['xattr', 'indexed-dirs', 'refcount', 'discontig-bg']) t.ok(st.incompat.includes(f), `debugfs reports ${f}`);
  t.match(st.raw, /Extended Attributes Inline Size: 256/);
  t.notMatch(st.raw, /Hash: 0 \(0x0\)/, 's_uuid_hash is set');
  t.match(await debugfs(image, 'stat //inode_alloc:0000'), /Size\s*\n\t0\s+\d+\s+2048\s+\d+\s+\d+\s+\d+\s+256/, 'discontig-bg suballocator groups use 256-byte bitmaps');
});

t.test('cluster volumes: no stack, o2cb, pcmk', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-feat-');
  {
    const { image, result } = await formatImage(dir, 'cl.img', SIZE, { mountType: 'cluster' });
    await assertFsckStrict(t, image, 'a cluster volume');
    t.equal(result.slots, 2, 'mkfs.ocfs2 gives a volume under 2 GiB 2 slots');
    t.notOk((await superblockStats(image)).incompat.includes('local'));
  }
  {
    const { image } = await formatImage(dir, 'o2cb.img', SIZE, { mountType: 'cluster', clusterStack: 'o2cb', clusterName: 'mycl', slots: 4 });
    await assertFsckStrict(t, image, 'an o2cb volume');
    const st = await superblockStats(image);
    t.ok(st.incompat.includes('clusterinfo'));
    t.match(st.raw, /Cluster stack: o2cb/);
    t.match(st.raw, /Cluster name: mycl/);
  }
  {
    const { image } = await formatImage(dir, 'pcmk.img', SIZE, { mountType: 'cluster', clusterStack: 'pcmk', clusterName: 'pc', slots: 4, globalHeartbeat: false });
    await assertFsckStrict(t, image, 'a pcmk volume');
    const st = await superblockStats(image);
    t.ok(st.incompat.includes('userspace-stack'));
    t.match(st.raw, /Cluster stack: pcmk/);
  }
});

t.test('features that cannot be written are refused by name', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-feat-');
  const image = `${dir}/q.img`;
  await fs.writeFile(image, '');
  await fs.truncate(image, SIZE);
  const device = await FileDevice.open(image);
  t.teardown(() => device.close());
  await t.rejects(formatVolume(device, { features: 'usrquota' }), { name: 'MkfsUsageError', message: /usrquota/ });
  await t.rejects(formatVolume(device, { features: 'grpquota' }), MkfsUsageError);
  await t.rejects(formatVolume(device, { clusterStack: 'o2cb', clusterName: 'x' }), { message: /local volume/ });
  await t.rejects(formatVolume(device, { features: 'nosparse,unwritten' }), { message: /conflicting/ });
  await t.rejects(formatVolume(device, { features: 'bogus' }), { message: /unsupported feature "bogus"/ });
  t.equal((await device.read(2 * 512, 8)).toString('latin1').replace(/\0+$/, ''), '', 'nothing was written');
});
