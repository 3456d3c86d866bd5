/**
 * A tree libocfs2 wrote reads back through a real read-only FUSE mount
 * (`bin/o2fuse mount -o ro`, the background daemon) exactly as libocfs2 reads it.
 *
 * For block/cluster sizes 4K/4K, 512/4K, 4K/1M and 2K/64K with mkfs.ocfs2's default
 * features, 4K/4K with --fs-feature-level=max-features (metaecc, indexed-dirs, quotas),
 * 2K/64K with noinline-data,nosparse and 4K/4K with every optional feature off: o2tool
 * populates readSpec.ts (nested dirs, a directory of 3,000 entries (400 on the large-cluster
 * geometries, for time), inline and extent files at
 * block and cluster edges, holes, unwritten extents, a depth >= 1 extent tree, hard links,
 * fast and slow symlinks, nodes), then the shadow dump of the mount (lstat, readdir, read,
 * readlink through the kernel) equals `o2tool dump` line by line: names, types, modes,
 * owners, link counts, sizes, inode numbers (o2fuse mounts with use_ino, so st_ino is the
 * inode's block number), atime/mtime/ctime to the millisecond (fuse-native carries
 * milliseconds only, so libocfs2's nanoseconds are cut to milliseconds before comparing),
 * content sha256, symlink targets and device numbers. statfs (stat -f) agrees with the
 * global bitmap as debugfs.ocfs2 prints it. After the unmount the image is byte-for-byte
 * unchanged and fsck.ocfs2 -fn finds it clean.
 */
import t from 'tap';
import { run } from '../lib/exec';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { DEFAULT_FIELDS, dump, populate } from '../lib/oracle';
import { shadowDump } from '../lib/shadow';
import { makeImage } from '../lib/volume';
import { dumpDiff } from './engineDump';
import { readSpec } from './readSpec';
import { bitmapStats, sha256OfFile } from './volumeFacts';

interface Config {
  name: string;
  blockSize: number;
  clusterSize: number;
  features?: string;
  featureLevel?: string;
  inlineData: boolean;
  sparse: boolean;
  unwritten: boolean;
  /** Entries in /many: 3,000 where the directory's shape differs most (small blocks, dx trees and trailers, none), fewer elsewhere to keep the file under 3 minutes. */
  manyCount: number;
}

const DEFAULTS = { inlineData: true, sparse: true, unwritten: true };
const ALL_OFF = 'noinline-data,nosparse,nounwritten,noindexed-dirs,noxattr,norefcount,nodiscontig-bg,noextended-slotmap,noappend-dio';

const configs: Config[] = [
  { name: '4K/4K, default features', blockSize: 4096, clusterSize: 4096, ...DEFAULTS, manyCount: 3000 },
  { name: '512/4K, default features', blockSize: 512, clusterSize: 4096, ...DEFAULTS, manyCount: 3000 },
  { name: '4K/1M, default features', blockSize: 4096, clusterSize: 1 << 20, ...DEFAULTS, manyCount: 400 },
  { name: '2K/64K, default features', blockSize: 2048, clusterSize: 65536, ...DEFAULTS, manyCount: 400 },
  { name: '4K/4K, max features (metaecc, indexed-dirs, quotas)', blockSize: 4096, clusterSize: 4096, featureLevel: 'max-features', ...DEFAULTS, manyCount: 3000 },
  { name: '2K/64K, noinline-data,nosparse', blockSize: 2048, clusterSize: 65536, features: 'noinline-data,nosparse', inlineData: false, sparse: false, unwritten: false, manyCount: 400 },
  { name: '4K/4K, every optional feature off', blockSize: 4096, clusterSize: 4096, features: ALL_OFF, inlineData: false, sparse: false, unwritten: false, manyCount: 3000 },
];

/** fuse-native passes times as milliseconds: cut libocfs2's nanoseconds the same way. */
function timesToMs(dumpText: string): string {
  return dumpText.replace(/(time=\d+\.\d{3})\d{6}/g, '$1000000');
}

// Every configuration over the kernel transport (the default as root: nanosecond times compared exactly), and
// the first one over libfuse too (times to the millisecond, all fuse-native carries).
const runs: Array<{ c: Config; transport: 'kernel' | 'libfuse' }> = [
  ...configs.map((c) => ({ c, transport: 'kernel' as const })),
  { c: configs[0], transport: 'libfuse' },
];

for (const { c, transport } of runs) {
  t.test(`a libocfs2-built tree reads back through a read-only FUSE mount (${transport}): ${c.name}`, { timeout: 240_000 }, async (t) => {
    const image = await makeImage(t, { blockSize: c.blockSize, clusterSize: c.clusterSize, features: c.features, featureLevel: c.featureLevel });
    await populate(image, readSpec(c));
    const before = await sha256OfFile(image);
    const fields = DEFAULT_FIELDS;
    const exact = await dump(image, { fields });
    const want = transport === 'libfuse' ? timesToMs(exact) : exact;

    let started = Date.now();
    const m = await mountO2fuse(t, image, { options: `ro,transport=${transport}` });
    const mountMs = Date.now() - started;
    started = Date.now();
    const got = await shadowDump(m.dir, { fields });
    t.comment(`mount took ${mountMs} ms; shadow dump of ${want.split('\n').length - 1} paths through FUSE ${Date.now() - started} ms`);
    t.same(dumpDiff(want, got), [], `the mount's shadow dump equals o2tool dump (${fields.join(' ')}; times ${transport === 'libfuse' ? 'in ms' : 'in ns'})`);
    t.ok(got === want, 'line for line, in the same order');

    const st = await run('stat', ['-f', '-c', '%S %b %f %a %l', m.dir]);
    t.equal(st.code, 0, 'stat -f on the mount works');
    const [frsize, blocks, bfree, bavail, namemax] = st.text.trim().split(' ').map(Number);
    const bm = await bitmapStats(image);
    const bpc = c.clusterSize / c.blockSize;
    t.same(
      { frsize, blocks, bfree, bavail, namemax },
      { frsize: c.blockSize, blocks: bm.total * bpc, bfree: bm.free * bpc, bavail: bm.free * bpc, namemax: 255 },
      `df: ${bm.total} clusters, ${bm.free} free (debugfs.ocfs2 stat //global_bitmap) in ${c.blockSize}-byte blocks`,
    );

    await m.unmount();
    t.equal(await sha256OfFile(image), before, 'the read-only mount left the image byte-for-byte unchanged');
    await assertFsckClean(t, image);
  });
}
