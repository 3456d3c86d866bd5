/**
 * Every block size (512..4096) with cluster sizes 4K, 64K and 1M, with 1 and
 * 8 slots: o2fuse's mkfs writes a volume fsck.ocfs2 -fn accepts without a
 * word, and debugfs.ocfs2 `stats` shows the block size, cluster size, slot
 * count, label and features asked for.
 */
import t from 'tap';
import { formatImage, fsckStrict, inParallel, MiB, superblockStats, tempDir } from './helpers';

const BLOCKS = [512, 1024, 2048, 4096];
const CLUSTERS = [4096, 65536, 1048576];
const SLOTS = [1, 8];
// Big enough for 8 journals of the default size (4K blocks: 16 MiB each from 128 MiB on), small
// enough to check fast (fsck.ocfs2's time grows with the volume).
const sizeFor = (blockSizeBytes: number): number => (blockSizeBytes === 4096 ? 256 : 128) * MiB;
const DEFAULT_FEATURES = {
  compat: ['backup-super', 'strict-journal-super'],
  incompat: ['local', 'sparse', 'extended-slotmap', 'inline-data', 'append-dio', 'indexed-dirs'],
  roCompat: ['unwritten'],
};

t.test('geometry matrix', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-matrix-');
  const cases = BLOCKS.flatMap((b) => CLUSTERS.flatMap((c) => SLOTS.map((n) => ({ b, c, n }))));
  // mkfs, fsck and debugfs run two volumes at a time (fsck.ocfs2 is the slow part); the assertions follow in order.
  const checked = new Map<string, { result: Awaited<ReturnType<typeof formatImage>>['result']; fsck: Awaited<ReturnType<typeof fsckStrict>>; st: Awaited<ReturnType<typeof superblockStats>> }>();
  await inParallel(cases, 2, async ({ b, c, n }) => {
    const name = `b${b}-c${c / 1024}k-n${n}`;
    const { image, result } = await formatImage(dir, `${name}.img`, sizeFor(b), {
      blockSizeBytes: b, clusterSizeBytes: c, slots: n, label: labelOf(b, c, n),
    });
    checked.set(name, { result, fsck: await fsckStrict(image), st: await superblockStats(image) });
  });
  for (const { b, c, n } of cases) {
    const name = `b${b}-c${c / 1024}k-n${n}`;
    const { result, fsck, st } = checked.get(name) as NonNullable<ReturnType<typeof checked.get>>;
    t.test(name, async (t) => {
      t.equal(result.blockSizeBytes, b, 'result: block size');
      t.equal(result.clusterSizeBytes, c, 'result: cluster size');
      t.equal(result.slots, n, 'result: slots');
      t.ok(fsck.clean, 'fsck.ocfs2 -fn finds nothing', { exitCode: fsck.code, complaints: fsck.complaints, fsckOutput: fsck.clean ? '' : fsck.output });
      t.equal(st.blockSize, b, 'debugfs: block size');
      t.equal(st.clusterSize, c, 'debugfs: cluster size');
      t.equal(st.maxSlots, n, 'debugfs: slots');
      t.equal(st.label, labelOf(b, c, n), 'debugfs: label');
      t.equal(st.uuid, result.uuid, 'debugfs: uuid');
      t.same(st.compat.sort(), [...DEFAULT_FEATURES.compat].sort(), 'debugfs: compat features');
      t.same(st.incompat.sort(), [...DEFAULT_FEATURES.incompat].sort(), 'debugfs: incompat features');
      t.same(st.roCompat.sort(), [...DEFAULT_FEATURES.roCompat].sort(), 'debugfs: ro-compat features');
    });
  }
});

function labelOf(b: number, c: number, n: number): string {
  return `mx${b}c${c / 1024}n${n}`;
}
