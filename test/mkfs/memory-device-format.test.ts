/**
 * formatVolume works on any Device: on the in-memory device engine tests
 * use, a 1 GiB volume costs only the chunks mkfs writes, and the saved image
 * is one fsck.ocfs2 -fn accepts.
 */
import * as path from 'node:path';
import t from 'tap';
import { MemoryDevice } from '../../io/memoryDevice';
import { formatVolume } from '../../fs/mkfs';
import { assertFsckStrict, GiB, MiB, superblockStats, tempDir } from './helpers';

t.test('a volume on a memory device', async (t) => {
  const device = new MemoryDevice(GiB);
  const result = await formatVolume(device, { slots: 4, label: 'mem', clusterSizeBytes: 8192 });
  t.equal(result.zeroedBytes, 0, 'a fresh memory device reads as zeros: nothing to wipe');
  t.ok(device.allocatedBytes < 16 * MiB, `only written chunks cost memory (${device.allocatedBytes} bytes)`);
  const dir = await tempDir(t, 'o2fuse-mkfs-mem-');
  const image = path.join(dir, 'mem.img');
  await device.saveTo(image);
  await assertFsckStrict(t, image, 'the memory volume');
  const st = await superblockStats(image);
  t.equal(st.label, 'mem');
  t.equal(st.clusterSize, 8192);
  t.equal(st.maxSlots, 4);
});
