/**
 * The libocfs2 oracle itself: a tree o2tool writes on a volume mkfs.ocfs2 made is
 * accepted by fsck.ocfs2 -fn, and o2tool dump / cat read back exactly what the spec
 * says (sizes, contents from the generator, holes and unwritten extents as zeros,
 * links, symlinks, nodes, owners, modes, times, allocation maps), and debugfs.ocfs2
 * agrees on the on-disk shapes (inline data, fast/slow symlinks, extents).
 */
import t from 'tap';
import { statPath } from '../lib/debugfs';
import { fastSymlinkMaxBytes, richSpec } from '../lib/fixtures';
import { assertFsckClean } from '../lib/fsck';
import {
  type SpecEntry, byPath, cat, diffAgainstSpec, dumpEntries, encodePath, expectTree, expectedContent, populate,
} from '../lib/oracle';
import { makeImage } from '../lib/volume';

interface Case {
  name: string;
  blockSize: number;
  clusterSize: number;
  features?: string;
  inlineData?: boolean;
}

const cases: Case[] = [
  { name: '4K blocks, 4K clusters', blockSize: 4096, clusterSize: 4096 },
  { name: '512-byte blocks, 4K clusters', blockSize: 512, clusterSize: 4096 },
  { name: '4K blocks, 1M clusters', blockSize: 4096, clusterSize: 1024 * 1024 },
  { name: '1K blocks, 8K clusters, metaecc', blockSize: 1024, clusterSize: 8192, features: 'metaecc' },
  { name: '4K/4K without inline-data', blockSize: 4096, clusterSize: 4096, features: 'noinline-data', inlineData: false },
];

const fileKinds = new Set(['file', 'inline', 'sparse', 'unwritten']);

for (const c of cases) {
  t.test(`o2tool-built tree is fsck-clean and reads back as specified: ${c.name}`, async (t) => {
    const image = await makeImage(t, { blockSize: c.blockSize, clusterSize: c.clusterSize, features: c.features });
    const spec = richSpec({ blockSize: c.blockSize, clusterSize: c.clusterSize, inlineData: c.inlineData });
    await populate(image, spec);
    await assertFsckClean(t, image);

    const entries = await dumpEntries(image, { map: true });
    const diffs = diffAgainstSpec(entries, expectTree(spec, { clusterBytes: c.clusterSize }));
    t.same(diffs, [], 'dump (all fields, with maps) matches the spec');
    const dumped = byPath(entries);

    for (const e of spec) {
      if (!fileKinds.has(e.kind)) continue;
      const got = await cat(image, e.path);
      const want = expectedContent(e);
      t.ok(got.equals(want), `cat ${e.path}: ${got.length} bytes equal the generator's ${want.length}`);
    }
    for (const e of spec.filter((x): x is Extract<SpecEntry, { kind: 'symlink' }> => x.kind === 'symlink')) {
      t.equal((await cat(image, e.path)).toString(), e.target, `cat ${e.path} gives the target`);
    }

    const ino = (p: string): number | undefined => dumped.get(encodePath(p))?.ino;
    t.equal(ino('/d1/d2/hard'), ino('/d1/one-byte'), 'a hard link names the same inode');
    t.equal(ino('/hard2'), ino('/d1/one-byte'), 'a second hard link too');

    const fastLongest = await statPath(image, '/fast-longest');
    t.equal(fastLongest.clusters, 0, `a ${fastSymlinkMaxBytes(c.blockSize)}-byte target is a fast symlink`);
    t.equal(fastLongest.fastSymlinkTarget?.length, fastSymlinkMaxBytes(c.blockSize), 'debugfs reads the fast target');
    t.ok((await statPath(image, '/slow-shortest')).clusters > 0, 'one byte more makes a slow symlink');
    t.ok((await statPath(image, '/slow-long')).clusters > 0, 'a 3999-byte target is a slow symlink (several blocks on small block sizes)');
    if (c.inlineData !== false) {
      const inl = await statPath(image, '/d1/inline-max');
      t.ok(inl.dynFeatures & 0x1, 'inline-max has OCFS2_INLINE_DATA_FL');
      t.equal(inl.clusters, 0, 'and no clusters');
    }
    const big = await statPath(image, '/d1/d2/big');
    t.equal(big.dynFeatures & 0x1, 0, 'a regular "file" entry is extent-based');
    const sparse = await statPath(image, '/sparse');
    const unwrittenRecs = sparse.extents.filter((r) => r.flags & 0x1);
    t.equal(unwrittenRecs.length > 0, true, 'the sparse file has an unwritten extent');
    const fromDebugfs = sparse.extents
      .map((r) => `${r.cpos * c.clusterSize}+${r.countClusters * c.clusterSize}${r.flags & 1 ? 'u' : ''}`)
      .join(',');
    t.equal(fromDebugfs, dumped.get('/sparse')?.map, 'debugfs extents agree with the dump map');
  });
}

t.test('inline on a volume without inline-data is refused with a message', async (t) => {
  const image = await makeImage(t, { features: 'noinline-data' });
  await t.rejects(populate(image, [{ kind: 'inline', path: '/x', size: 10, seed: 1 }]), /no inline-data feature/);
});

t.test('a spec error names the line', async (t) => {
  const image = await makeImage(t);
  await t.rejects(populate(image, 'mkdir /a\nfile /a/b/c 10 1\n'), /spec line 2: .*parent/);
  await t.rejects(populate(image, 'mkdir /a\nmkdir /a\n'), /already exists/);
  await t.rejects(populate(image, 'frobnicate /x\n'), /unknown command/);
});
