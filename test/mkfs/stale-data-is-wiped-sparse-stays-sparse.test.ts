/**
 * mkfs on a device that is not known to be zero (a re-used image or block
 * device) wipes what could be mistaken for metadata: stale bytes in the
 * journals, the heartbeat area, the allocator groups and both ends of the
 * volume. It reads before it writes, so a sparse image whose holes already
 * read as zeros stays sparse, and a volume formatted over an old one (by
 * mkfs.ocfs2, with another geometry) is fsck-clean.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { FileDevice } from '../../io/fileDevice';
import { formatVolume } from '../../fs/mkfs';
import { runOk } from '../lib/exec';
import { assertFsckStrict, debugfs, MiB, superblockStats, tempDir } from './helpers';

const SIZE = 96 * MiB;

t.test('garbage everywhere: the volume is clean and its journals read as zeros', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-wipe-');
  const image = path.join(dir, 'garbage.img');
  await fs.writeFile(image, Buffer.alloc(SIZE, 0xa5));
  const device = await FileDevice.open(image);
  let result;
  try {
    result = await formatVolume(device, { slots: 2, blockSizeBytes: 1024, features: 'noinline-data' });
  } finally {
    await device.close();
  }
  t.ok(result.zeroedBytes > 0, `stale data was overwritten (${result.zeroedBytes} bytes)`);
  await assertFsckStrict(t, image, 'a volume formatted over garbage');
  const fh = await fs.open(image, 'r');
  t.teardown(() => fh.close());
  for (const j of result.journals) {
    for (const e of j.extents) {
      const bytes = e.clusters * result.clusterSizeBytes;
      const buf = Buffer.alloc(bytes);
      await fh.read(buf, 0, bytes, e.blkno * result.blockSizeBytes);
      // The first block is the journal superblock; everything after it must be zeros.
      const firstBlockEnd = e === j.extents[0] ? result.blockSizeBytes : 0;
      t.ok(buf.subarray(firstBlockEnd).every((b) => b === 0), `journal of slot ${j.slot} reads as zeros past its superblock`);
    }
  }
  t.match(await debugfs(image, 'logdump 0'), /Start Log Blknum: 0/, 'journal is clean (s_start 0)');
});

t.test('a sparse image is not filled in', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-wipe-');
  const image = path.join(dir, 'sparse.img');
  await fs.writeFile(image, '');
  await fs.truncate(image, 1024 * MiB);
  const device = await FileDevice.open(image);
  let result;
  try {
    // deviceIsZeroed is not set: mkfs must find the zeros itself.
    result = await formatVolume(device, { slots: 4 });
  } finally {
    await device.close();
  }
  t.equal(result.zeroedBytes, 0, 'nothing needed zeroing');
  const st = await fs.stat(image);
  t.ok(st.blocks * 512 < 32 * MiB, `allocated ${st.blocks * 512} bytes of ${st.size}`);
  await assertFsckStrict(t, image, 'the sparse volume');
});

t.test('formatting over a mkfs.ocfs2 volume of another geometry', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-wipe-');
  const image = path.join(dir, 'old.img');
  await fs.writeFile(image, '');
  await fs.truncate(image, 256 * MiB);
  await runOk('mkfs.ocfs2', ['-q', '-F', '-x', '-M', 'local', '-b', '4096', '-C', '8K', '-N', '4', '-L', 'old', image]);
  const device = await FileDevice.open(image);
  try {
    await formatVolume(device, { slots: 3, blockSizeBytes: 512, clusterSizeBytes: 4096, label: 'new' });
  } finally {
    await device.close();
  }
  await assertFsckStrict(t, image, 'the reformatted volume');
  const st = await superblockStats(image);
  t.equal(st.label, 'new');
  t.equal(st.blockSize, 512);
});
