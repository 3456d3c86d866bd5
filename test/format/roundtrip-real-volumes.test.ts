/**
 * decode → encode gives back the exact bytes, for every metadata block
 * reachable from the superblock of real volumes: mkfs.ocfs2 at block sizes
 * 512..4096 with different feature sets, plus what libocfs2 writes for
 * indexed directories, fragmented directories (extent blocks) and refcount
 * trees (fixtures/o2helper.c).
 */
import t from 'tap';
import { firstDiff, Image, makeVolume, MetaBlock, runHelper, scratchDir, VolumeSpec, walkMetadata } from './helpers';
import { assertFsckClean } from '../lib/fsck';
import {
  decodeExtentBlockHeader, encodeExtentBlockWith, EXTENT_BLOCK_LIST_OFFSET, peekExtentBlock, readListExtents,
} from '../../fs/format/extent';

interface Case {
  name: string;
  spec: VolumeSpec;
  /** o2helper commands run after mkfs */
  setup: string[][];
  /** kinds of block the walk must have met */
  expectKinds: string[];
}

const cases: Case[] = [
  {
    name: '4096-byte blocks, mkfs defaults, indexed dir and refcount tree from libocfs2',
    spec: { blockSize: 4096, clusterSize: 4096, slots: 2 },
    setup: [['mkdir', 'big', '400', 'dx'], ['reflink', 'shared', '4']],
    expectKinds: ['superblock', 'inode', 'group desc', 'dir block', 'dx root', 'dx leaf', 'refcount block'],
  },
  {
    // 2 slots: with more, mkfs.ocfs2 1.8.7 makes a system dir too big to be inline and
    // leaves it unindexed, which its own fsck then reports (DX_TREE_MISSING).
    name: '2048-byte blocks, 64 KiB clusters, metaecc, indexed dir',
    spec: { blockSize: 2048, clusterSize: 65536, slots: 2, features: 'metaecc' },
    setup: [['mkdir', 'big', '300', 'dx']],
    expectKinds: ['superblock', 'inode', 'group desc', 'dir block', 'dx root', 'dx leaf'],
  },
  {
    name: '1024-byte blocks, 8 KiB clusters, quotas, no inline data, old slot map, no dir index',
    spec: {
      blockSize: 1024, clusterSize: 8192, slots: 2,
      features: 'noindexed-dirs,noinline-data,noextended-slotmap,nodiscontig-bg,usrquota,grpquota',
    },
    setup: [['mkdir', 'plain', '100']],
    expectKinds: ['superblock', 'inode', 'group desc', 'dir block'],
  },
  {
    name: '512-byte blocks, metaecc, fragmented directories with extent blocks',
    spec: { blockSize: 512, clusterSize: 4096, slots: 3, features: 'metaecc,noindexed-dirs' },
    setup: [['interleave', 'frag', '2', '700']],
    expectKinds: ['superblock', 'inode', 'group desc', 'dir block', 'extent block'],
  },
];

const { dir, cleanup } = scratchDir('roundtrip');
t.teardown(cleanup);

for (const c of cases) {
  t.test(c.name, async (t) => {
    const img = makeVolume(dir, `v${c.spec.blockSize}`, c.spec);
    for (const cmd of c.setup) runHelper(img, ...cmd);
    const image = new Image(img);
    let blocks: MetaBlock[];
    try {
      blocks = walkMetadata(image);
    } finally {
      image.close();
    }
    const kinds = new Map<string, number>();
    let bad = 0;
    for (const b of blocks) {
      kinds.set(b.kind, (kinds.get(b.kind) ?? 0) + 1);
      const again = b.reencode();
      if (!again.equals(b.bytes)) {
        bad++;
        if (bad <= 5) t.fail(`${b.what}: ${firstDiff(b.bytes, again)}`);
      }
    }
    t.equal(bad, 0, `all ${blocks.length} metadata blocks re-encode to the bytes read (${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')})`);
    // The tree code's own path: headers, then the records as plain extents, written back the same way.
    const ebs = blocks.filter((b) => b.kind === 'extent block');
    let plainBad = 0;
    for (const b of ebs) {
      const eb = decodeExtentBlockHeader(b.bytes, { expectedBlkno: b.blkno });
      const peek = peekExtentBlock(b.bytes, { expectedBlkno: b.blkno });
      const { l_tree_depth: depth, l_count: count, l_next_free_rec: used } = eb.h_list;
      if (JSON.stringify(peek) !== JSON.stringify({ depth, count, used, nextLeaf: eb.h_next_leaf_blk })) {
        plainBad++;
        t.fail(`${b.what}: peekExtentBlock ${JSON.stringify(peek)} against the header's ${JSON.stringify({ depth, count, used })}`);
      }
      const recs = readListExtents(b.bytes, EXTENT_BLOCK_LIST_OFFSET, b.what);
      const again = Buffer.alloc(b.bytes.length, 0xa5);
      encodeExtentBlockWith(eb, eb.h_list.l_tree_depth, recs, again);
      if (!again.equals(b.bytes)) {
        plainBad++;
        if (plainBad <= 5) t.fail(`${b.what} as plain extents: ${firstDiff(b.bytes, again)}`);
      }
    }
    if (ebs.length) {
      // A bad header is refused by the peek as by the decoder, with the decoder's words.
      const bad = Buffer.from(ebs[0].bytes);
      bad[0] ^= 0xff;
      t.throws(() => peekExtentBlock(bad, { expectedBlkno: ebs[0].blkno }), { message: /bad signature/ }, 'a peek at a bad signature throws');
      const moved = Buffer.from(ebs[0].bytes);
      t.throws(() => peekExtentBlock(moved, { expectedBlkno: ebs[0].blkno + 1 }), { message: /h_blkno/ }, 'and at a block read from elsewhere');
    }
    if (ebs.length) t.equal(plainBad, 0, `all ${ebs.length} extent blocks read and written as plain extents give back the bytes read, and peek as their headers decode`);
    for (const k of c.expectKinds) t.ok(kinds.get(k), `the volume has at least one ${k}`);
    await assertFsckClean(t, img);
  });
}
