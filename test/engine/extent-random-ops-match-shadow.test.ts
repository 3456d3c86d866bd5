/**
 * A seeded random mix of writes (small and large, anywhere, past EOF),
 * truncates up and down, hole punches, unwritten preallocations and
 * relocations (part of an extent moved to new clusters, as a copy on write
 * does) on one file, checked against a shadow copy of its bytes. Every few operations the
 * tree is checked for the invariants of fs/extentTree.ts and the file read
 * back; at intervals the volume is unmounted for fsck.ocfs2 -fn and
 * libocfs2's reading, then remounted (so later operations start from disk).
 * At the end everything is truncated away and the space must come back.
 * Small blocks make trees deep and busy; metaecc checks the checksums of
 * every block changed.
 */
import t from 'tap';
import { Rng, seedFrom } from '../lib/seed';
import { punchHole } from '../../fs/extentTree';
import type { Volume } from '../../fs/volume';
import {
  assertContent, assertOracleContent, assertSpaceBack, assertTree, createFile, freshImage, mountRw, openFile,
  preallocUnwritten, relocate, spaceCounts, treeShape, truncateBoth, unmountAndFsck, behindCache, writeBoth, type TestFile,
} from './extent-harness';

const OPS = Number(process.env.EXTENT_TEST_OPS ?? 400);
/** The fragmenting case needs more operations to reach depth 2. */
const FRAGMENT_OPS = Number(process.env.EXTENT_TEST_FRAGMENT_OPS ?? 1500);

interface Case {
  name: string;
  blockSize: number;
  clusterSize: number;
  maxBytes: number;
  features?: string;
  /** Mostly one-cluster writes, punches and preallocations, few truncates: a fragmented file and a deep tree. */
  fragment?: boolean;
}

const CASES: Case[] = [
  { name: '512-byte blocks, 4K clusters, fragmenting', blockSize: 512, clusterSize: 4096, maxBytes: 8 << 20, fragment: true },
  { name: '512-byte blocks, 4K clusters', blockSize: 512, clusterSize: 4096, maxBytes: 3 << 20 },
  { name: '1K blocks, 8K clusters, metaecc', blockSize: 1024, clusterSize: 8192, maxBytes: 6 << 20, features: 'metaecc' },
  { name: '4K blocks, 64K clusters', blockSize: 4096, clusterSize: 65536, maxBytes: 24 << 20 },
];

for (const c of CASES) {
  t.test(`random writes, truncates, punches, preallocations and relocations match a shadow copy: ${c.name}`, async (t) => {
    const seed = seedFrom(t);
    const rng = new Rng(seed ^ c.blockSize);
    const cs = c.clusterSize;
    const image = await freshImage(t, { blockSize: c.blockSize, clusterSize: cs, features: c.features, sizeBytes: 512 << 20 });
    let vol: Volume = await mountRw(image);
    let f: TestFile = await createFile(vol, 'r');
    const start = await spaceCounts(vol);
    let maxDepth = 0;
    const counts: Record<string, number> = {};

    const ops = c.fragment ? FRAGMENT_OPS : OPS;
    for (let i = 0; i < ops; i++) {
      const size = f.shadow.length;
      const sizeClusters = Math.ceil(size / cs);
      const roll = rng.float();
      const w = c.fragment
        ? { write: 0.55, append: 0.6, truncate: 0.63, punch: 0.8, relocate: 0.9, runMax: 3 }
        : { write: 0.45, append: 0.55, truncate: 0.7, punch: 0.8, relocate: 0.88, runMax: 40 };
      let op: string;
      if (roll < w.write) {
        op = 'write';
        const off = rng.int(0, c.maxBytes - 1);
        const len = c.fragment ? rng.int(1, cs) : rng.int(1, rng.bool(0.9) ? 3 * cs : 40 * cs);
        await writeBoth(vol, f, off, rng.bytes(Math.min(len, c.maxBytes - off)));
      } else if (roll < w.append) {
        op = 'append';
        await writeBoth(vol, f, size + rng.int(0, 2 * cs), rng.bytes(rng.int(1, 2 * cs)));
      } else if (roll < w.truncate) {
        op = 'truncate';
        const to = c.fragment ? rng.int(Math.floor(size * 0.9), size) : rng.bool(0.7) ? rng.int(0, size) : rng.int(0, c.maxBytes);
        await truncateBoth(vol, f, to);
      } else if (roll < w.punch && sizeClusters > 0) {
        op = 'punch';
        const cpos = rng.int(0, sizeClusters - 1);
        const n = rng.int(1, w.runMax);
        await behindCache(vol, f.ino, 'punch', async (tx) => punchHole(vol, tx, await vol.iget(f.ino), cpos, n));
        f.shadow.fill(0, cpos * cs, Math.min(size, (cpos + n) * cs));
      } else if (roll < w.relocate && sizeClusters > 0) {
        op = 'relocate';
        const extents = (await treeShape(vol, await vol.iget(f.ino))).extents;
        if (extents.length) {
          const e = extents[rng.int(0, extents.length - 1)];
          const from = e.cpos + rng.int(0, e.clusters - 1);
          const n = rng.int(1, Math.min(w.runMax, e.cpos + e.clusters - from));
          const replaced = await relocate(vol, f.ino, from, n, e.flags);
          // One piece per run of new clusters the allocator handed out: joined, they must be the extent's part.
          const was: number[][] = [];
          for (const r of [...replaced].sort((a, b) => a.cpos - b.cpos)) {
            const last = was[was.length - 1];
            if (last && last[0] + last[1] === r.cpos && last[2] + last[1] * vol.geo.bpc === r.blkno && last[3] === r.flags) last[1] += r.clusters;
            else was.push([r.cpos, r.clusters, r.blkno, r.flags]);
          }
          if (!t.same(was, [[from, n, e.blkno + (from - e.cpos) * vol.geo.bpc, e.flags]],
            `op ${i}: the relocation replaced exactly clusters ${from}..${from + n} of the extent at ${e.cpos}`)) break;
        }
      } else if (sizeClusters > 0) {
        op = 'prealloc';
        const cpos = rng.int(0, sizeClusters - 1);
        await preallocUnwritten(vol, f.ino, cpos, rng.int(1, Math.min(w.runMax, sizeClusters - cpos)));
      } else {
        op = 'skip';
      }
      counts[op] = (counts[op] ?? 0) + 1;
      if (i % 20 === 19) {
        const shape = await assertTree(t, vol, f.ino, `op ${i} (${op})`);
        maxDepth = Math.max(maxDepth, shape.depth);
        const lastEnd = shape.extents.reduce((m, e) => Math.max(m, e.cpos + e.clusters), 0);
        t.ok(lastEnd <= Math.ceil(f.shadow.length / cs), `op ${i}: nothing mapped past the last cluster of the file`);
        if (!(await assertContent(t, vol, f, `op ${i} (${op})`))) break;
      }
      if (i % 150 === 149) {
        await vol.release(f.ino, f.fh);
        if (!(await unmountAndFsck(t, vol, image, `volume after ${i + 1} operations`))) return;
        await assertOracleContent(t, image, f);
        vol = await mountRw(image);
        f = await openFile(vol, f);
      }
    }
    t.comment(`operations: ${JSON.stringify(counts)}; deepest tree: ${maxDepth}`);
    if (c.fragment) t.ok(maxDepth >= 2, `the fragmented file's tree reached depth ${maxDepth}`);
    await assertContent(t, vol, f, 'at the end');
    await truncateBoth(vol, f, 0);
    await assertTree(t, vol, f.ino, 'truncated to 0');
    assertSpaceBack(t, start, await spaceCounts(vol), 'truncated to 0');
    await vol.release(f.ino, f.fh);
    await unmountAndFsck(t, vol, image, 'volume at the end');
  });
}
