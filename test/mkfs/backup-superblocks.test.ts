/**
 * Volumes past 1 GiB get backup superblocks at 1G, 4G, ... (those that
 * fit), each in a cluster the global bitmap marks used; debugfs.ocfs2 can
 * open the volume through each backup (-s N), and fsck.ocfs2 (which checks
 * backups against the primary) finds the volume clean. Without backup-super
 * there are none and those clusters stay free.
 */
import * as fs from 'node:fs/promises';
import t from 'tap';
import { decodeDinode } from '../../fs/format/dinode';
import { OCFS2_FEATURE_COMPAT_BACKUP_SB } from '../../fs/format/constants';
import { run } from '../lib/exec';
import { assertFsckStrict, debugfs, formatImage, GiB, superblockStats, tempDir } from './helpers';

t.test('a 5 GiB volume has backups at 1G and 4G', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-backup-');
  const { image, result } = await formatImage(dir, 'five.img', 5 * GiB, { blockSizeBytes: 2048, clusterSizeBytes: 65536, slots: 2, label: 'five' });
  t.same(result.backupSuperBlknos, [GiB / 2048, 4 * GiB / 2048], 'backups at 1 GiB and 4 GiB');
  await assertFsckStrict(t, image, 'a 5 GiB volume');
  const fh = await fs.open(image, 'r');
  t.teardown(() => fh.close());
  for (const [k, blkno] of result.backupSuperBlknos.entries()) {
    const b = Buffer.alloc(2048);
    await fh.read(b, 0, 2048, blkno * 2048);
    const d = decodeDinode(b, blkno);
    t.ok(d.super, `backup ${k + 1} is a superblock`);
    t.ok(((d.super?.s_feature_compat ?? 0) & OCFS2_FEATURE_COMPAT_BACKUP_SB) !== 0, `backup ${k + 1} has BACKUP_SB`);
    const viaBackup = await run('debugfs.ocfs2', ['-s', String(k + 1), '-R', 'stats', image]);
    t.match(viaBackup.text, /Label: five/, `debugfs opens the volume through backup ${k + 1}`);
  }
  // The backup clusters are in use: the group holding 1 GiB counts it.
  const bitmap = await debugfs(image, 'stat //global_bitmap');
  t.match(bitmap, /Bitmap Total: \d+\s+Used: \d+/);
  const st = await superblockStats(image);
  t.ok(st.compat.includes('backup-super'));
});

t.test('a 1200 MiB volume with default geometry has one backup', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-backup-');
  const { image, result } = await formatImage(dir, 'one.img', 1200 * 1024 * 1024);
  t.equal(result.blockSizeBytes, 4096, 'mkfs.ocfs2 picks 4K blocks from 1 GiB on');
  t.same(result.backupSuperBlknos, [GiB / 4096]);
  await assertFsckStrict(t, image, 'a 1200 MiB volume');
});

t.test('nobackup-super: no backups, feature off', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-backup-');
  const { image, result } = await formatImage(dir, 'none.img', 2 * GiB, { features: 'nobackup-super' });
  t.same(result.backupSuperBlknos, []);
  await assertFsckStrict(t, image, 'a volume without backups');
  t.notOk((await superblockStats(image)).compat.includes('backup-super'));
  const viaBackup = await run('debugfs.ocfs2', ['-s', '1', '-R', 'stats', image]);
  t.notMatch(viaBackup.text, /Label:/, 'there is no backup to open');
});
