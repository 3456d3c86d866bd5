/**
 * computeGeometry's limits, without touching a device: cluster groups and
 * the first group descriptor for every block/cluster size pair, the journal
 * minimum of 8 clusters + 1, and clear refusals for volumes that are too
 * small, block numbers that overflow a 32-bit journal, and journals that do
 * not fit.
 */
import t from 'tap';
import { MemoryDevice } from '../../io/memoryDevice';
import { computeGeometry, formatVolume, MkfsUsageError } from '../../fs/mkfs';
import { GiB, MiB } from './helpers';

const base = { mountType: 'local' as const, fsType: 'default' as const, journal64: false };

t.test('group geometry for every block and cluster size', async (t) => {
  for (const b of [512, 1024, 2048, 4096]) {
    for (const c of [4096, 8192, 65536, 262144, 1048576]) {
      const g = computeGeometry({ ...base, volumeBytes: 4 * GiB, blockSizeBytes: b, clusterSizeBytes: c });
      const what = `b${b} c${c}`;
      t.equal(g.bitmapCpg, (b - 64) * 8, `${what}: a group descriptor's bitmap fills its block`);
      t.equal(g.groupClusters * (g.clusterGroupCount - 1) + g.tailGroupClusters, g.totalClusters, `${what}: groups cover the volume`);
      t.equal(g.firstClusterGroupBlkno * b >= 3 * b, true, `${what}: the first descriptor is past the superblock`);
      t.equal(g.firstClusterGroupBlkno % g.blocksPerCluster, 0, `${what}: ... at a cluster boundary`);
      t.ok(g.journalClusters * c >= 9 * c, `${what}: journal of at least 9 clusters`);
      t.ok(g.suballocBitsPerGroup <= 2048, `${what}: a suballocator group fits a 256-byte bitmap`);
    }
  }
});

t.test('refusals', async (t) => {
  t.throws(() => computeGeometry({ ...base, volumeBytes: 512 * 1024 }), MkfsUsageError, 'too small for a journal');
  t.throws(() => computeGeometry({ ...base, volumeBytes: 64 * MiB, journalSizeBytes: 64 * MiB }), /too big/);
  t.throws(() => computeGeometry({ ...base, volumeBytes: 3 * 1024 * GiB, blockSizeBytes: 512 }), /32-bit block numbers.*block64/);
  t.doesNotThrow(() => computeGeometry({ ...base, volumeBytes: 3 * 1024 * GiB, blockSizeBytes: 512, journal64: true }), '-J block64 lifts it');
  t.throws(() => computeGeometry({ ...base, volumeBytes: 64 * MiB, blockSizeBytes: 768 }), /bad block size 768/);
  t.throws(() => computeGeometry({ ...base, volumeBytes: 64 * MiB, clusterSizeBytes: 2048 }), /bad cluster size 2048/);
  t.throws(() => computeGeometry({ ...base, volumeBytes: 64 * MiB, slots: 0 }), /bad slot count 0/);
});

t.test('a plan that does not fit says what did not fit', async (t) => {
  const device = new MemoryDevice(64 * MiB);
  await t.rejects(formatVolume(device, { slots: 20, dryRun: true }), { errno: 'ENOSPC', message: /no room for journal:00\d\d/ });
});
