/**
 * Geometry defaults follow mkfs.ocfs2 1.8.7: for the same device size and
 * flags, `mkfs.ocfs2 -n` (its dry run) and o2fuse's dry run agree on block
 * size, cluster size, volume size, cluster groups, journal size, extent
 * allocator reserve and slot count.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { FileDevice } from '../../io/fileDevice';
import { formatVolume, parseMkfsArgs } from '../../fs/mkfs';
import { run } from '../lib/exec';
import { GiB, MiB, tempDir } from './helpers';

interface Summary {
  blockSize: number;
  clusterSize: number;
  volumeBytes: number;
  clusters: number;
  groups: number;
  tail: number;
  groupClusters: number;
  extentAllocBytes: number;
  journalBytes: number;
  slots: number;
}

function parseDryRun(text: string): Summary {
  const num = (re: RegExp): number => {
    const m = re.exec(text);
    if (!m) throw new Error(`mkfs.ocfs2 -n: ${re} not found in:\n${text}`);
    return Number(m[1]);
  };
  return {
    blockSize: num(/^Block size: (\d+)/m),
    clusterSize: num(/^Cluster size: (\d+)/m),
    volumeBytes: num(/^Volume size: (\d+)/m),
    clusters: num(/^Volume size: \d+ \((\d+) clusters\)/m),
    groups: num(/^Cluster groups: (\d+)/m),
    tail: num(/tail covers (\d+) clusters/),
    groupClusters: num(/rest cover (\d+) clusters/),
    extentAllocBytes: num(/^Extent allocator size: (\d+)/m),
    journalBytes: num(/^Journal size: (\d+)/m),
    slots: num(/^Node slots: (\d+)/m),
  };
}

const CASES: { size: number; args: string[] }[] = [
  { size: 64 * MiB, args: ['-M', 'local'] },
  { size: 200 * MiB, args: ['-M', 'local'] },
  { size: 300 * MiB, args: ['-M', 'local'] },
  { size: 700 * MiB, args: ['-M', 'local'] },
  { size: 3 * GiB / 2, args: ['-M', 'local'] },
  { size: 12 * GiB, args: ['-M', 'local'] },
  { size: 100 * GiB, args: ['-M', 'local'] },
  { size: 3 * 1024 * GiB, args: ['-M', 'local'] },
  { size: 300 * MiB, args: ['-M', 'cluster'] },
  { size: 5 * GiB, args: ['-M', 'cluster'] },
  { size: 20 * GiB, args: ['-M', 'cluster'] },
  { size: 1200 * MiB, args: ['-M', 'local', '-b', '512', '-C', '1M', '-N', '8'] },
  { size: 1200 * MiB, args: ['-M', 'local', '-b', '2048', '-C', '64K', '-N', '3', '-J', 'size=5M'] },
  { size: 5 * GiB, args: ['-M', 'local', '-T', 'mail'] },
  { size: 5 * GiB, args: ['-M', 'local', '-T', 'datafiles'] },
  { size: 70 * GiB, args: ['-M', 'local', '-T', 'vmstore', '-N', '4'] },
];

t.test('dry runs agree with mkfs.ocfs2 -n', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-defaults-');
  for (const { size, args } of CASES) {
    const image = path.join(dir, 'dev.img');
    await fs.rm(image, { force: true });
    await fs.writeFile(image, '');
    await fs.truncate(image, size);
    const ref = await run('mkfs.ocfs2', ['-n', '-x', ...args, image]);
    const what = `${size} bytes, ${args.join(' ')}`;
    if (ref.code !== 0) {
      t.fail(`mkfs.ocfs2 -n failed for ${what}: ${ref.stderr}`);
      continue;
    }
    const want = parseDryRun(ref.text);
    const parsed = parseMkfsArgs([...args, image]);
    const device = await FileDevice.open(image, { readOnly: true });
    try {
      const r = await formatVolume(device, { ...parsed.options, dryRun: true });
      const got: Summary = {
        blockSize: r.blockSizeBytes, clusterSize: r.clusterSizeBytes, volumeBytes: r.volumeBytes, clusters: r.totalClusters,
        groups: r.clusterGroups, tail: r.tailGroupClusters, groupClusters: r.groupClusters,
        extentAllocBytes: r.extentAllocBytesPerSlot, journalBytes: r.journalSizeBytes, slots: r.slots,
      };
      t.same(got, want, what);
    } finally {
      await device.close();
    }
  }
});
