/**
 * The Linux kernel's OCFS2 driver (kernel-run, under qemu) and o2fuse agree
 * on the trees o2fuse builds: the kernel reads a depth-2 tree of 700
 * non-mergeable extents, a file of split unwritten extents and a depth-1
 * tree of unwritten extents o2fuse split in the middle of full leaves
 * exactly as written; then it changes them itself (a write into a hole in
 * the middle, which takes its record rotation paths, an append, a truncate
 * through the middle, writes into unwritten extents, some the first record
 * of a leaf, which its merge code takes only with the leaf left of it full,
 * ocfs2_figure_merge_contig_type), and fsck.ocfs2 -fn, libocfs2
 * and o2fuse all read the result as the kernel wrote it. Finally o2fuse
 * truncates the kernel-changed trees to nothing and the space comes back.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { Rng, seedFrom } from '../lib/seed';
import { kernelRun, kernelUnavailable } from '../lib/kernel';
import { assertFsckClean } from '../lib/fsck';
import {
  assertContent, assertOracleContent, assertTree, createFile, freshImage, mountRw, openFile, preallocUnwritten,
  spaceCounts, truncateBoth, unmountAndFsck, writeBoth, type TestFile,
} from './extent-harness';

const skip = kernelUnavailable() ?? false;
const cs = 4096;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The shadow of `printf DATA | dd of=F bs=1 seek=OFF conv=notrunc`. */
function shadowWrite(f: TestFile, offset: number, data: Buffer): void {
  if (offset + data.length > f.shadow.length) {
    const grown = Buffer.alloc(offset + data.length);
    f.shadow.copy(grown);
    f.shadow = grown;
  }
  data.copy(f.shadow, offset);
}

function shadowTruncate(f: TestFile, size: number): void {
  const next = Buffer.alloc(size);
  f.shadow.copy(next, 0, 0, Math.min(size, f.shadow.length));
  f.shadow = next;
}

t.test('the kernel reads and changes trees o2fuse built; o2fuse reads and frees what the kernel left', { skip }, async (t) => {
  const rng = new Rng(seedFrom(t));
  const image = await freshImage(t, { blockSize: 512, clusterSize: cs });
  let vol = await mountRw(image);
  const start = await spaceCounts(vol);
  let f = await createFile(vol, 'f');
  for (let i = 0; i < 700; i++) await writeBoth(vol, f, 2 * i * cs + rng.int(0, 100), rng.bytes(rng.int(1, 3000)));
  t.equal((await assertTree(t, vol, f.ino, 'built')).depth, 2, 'f has a depth-2 tree');
  let u = await createFile(vol, 'u');
  await truncateBoth(vol, u, 40 * cs);
  await preallocUnwritten(vol, u.ino, 0, 40);
  for (const c of [3, 10, 11, 25, 39]) await writeBoth(vol, u, c * cs + 100, rng.bytes(50));
  await assertTree(t, vol, u.ino, 'u built');
  // p: 150 unwritten extents of 3 clusters (a depth-1 tree); o2fuse writes the middle cluster of 60 of them, each
  // turning one record into three in a full leaf in the middle of the tree.
  let p = await createFile(vol, 'p');
  await truncateBoth(vol, p, 600 * cs);
  for (let k = 0; k < 150; k++) await preallocUnwritten(vol, p.ino, 4 * k, 3);
  for (const k of rng.shuffle(Array.from({ length: 150 }, (_, k) => k)).slice(0, 60)) {
    await writeBoth(vol, p, (4 * k + 1) * cs + 10, rng.bytes(100));
  }
  t.ok((await assertTree(t, vol, p.ino, 'p built')).leaves > 5, 'p\'s records fill several leaves');
  await assertContent(t, vol, f, 'built');
  await assertContent(t, vol, u, 'built');
  await assertContent(t, vol, p, 'built');
  for (const x of [f, u, p]) await vol.release(x.ino, x.fh);
  await unmountAndFsck(t, vol, image, 'volume o2fuse built');

  const midHole = (2 * 351 + 1) * cs + 7;
  const unwrittenSpot = 30 * cs + 5;
  const r = await kernelRun(image, [
    'sha256sum f u',
    `printf 'KERNEL-MIDDLE' | dd of=f bs=1 seek=${midHole} conv=notrunc 2>/dev/null`,
    `printf 'KERNEL-APPEND' >> f`,
    `printf 'KERNEL-UNWRITTEN' | dd of=u bs=1 seek=${unwrittenSpot} conv=notrunc 2>/dev/null`,
    // The first cluster of every extent of p: some are the first record of a leaf, which the kernel's merge code
    // can only take if the leaf left of it is full.
    `k=0; while [ $k -lt 150 ]; do printf 'K' | dd of=p bs=1 seek=$((k * ${4 * cs} + 3)) conv=notrunc 2>/dev/null; k=$((k + 1)); done`,
    'sync',
    'sha256sum f u p',
    `truncate -s ${301 * cs + 17} f`,
    'sync',
    'sha256sum f',
  ].join('\n'));
  t.equal(r.code, 0, 'the kernel mounted the volume and ran the script', { output: r.output });
  const errors = r.kernelLines.filter((l) => /ERROR|error|corrupt/i.test(l));
  t.same(errors, [], 'the kernel logged no OCFS2 errors');
  const sums = r.scriptOutput.split('\n').filter((l) => /^[0-9a-f]{64} /.test(l)).map((l) => l.split(/\s+/));
  t.equal(sums.length, 6, 'six checksums came back', { output: r.scriptOutput });
  t.same(sums.slice(0, 2).map((s) => s[0]), [sha(f.shadow), sha(u.shadow)], 'the kernel reads both files as o2fuse wrote them');
  shadowWrite(f, midHole, Buffer.from('KERNEL-MIDDLE'));
  shadowWrite(f, f.shadow.length, Buffer.from('KERNEL-APPEND'));
  shadowWrite(u, unwrittenSpot, Buffer.from('KERNEL-UNWRITTEN'));
  for (let k = 0; k < 150; k++) shadowWrite(p, k * 4 * cs + 3, Buffer.from('K'));
  t.same(sums.slice(2, 5).map((s) => s[0]), [sha(f.shadow), sha(u.shadow), sha(p.shadow)], 'and writes into them as expected');
  shadowTruncate(f, 301 * cs + 17);
  t.equal(sums[5]?.[0], sha(f.shadow), 'and truncates f as expected');
  await assertFsckClean(t, image, 'volume after the kernel changed it');
  await assertOracleContent(t, image, f);
  await assertOracleContent(t, image, u);
  await assertOracleContent(t, image, p);

  vol = await mountRw(image);
  f = await openFile(vol, f);
  u = await openFile(vol, u);
  p = await openFile(vol, p);
  await assertTree(t, vol, p.ino, 'p as the kernel left it');
  await assertContent(t, vol, p, 'as the kernel left it');
  await assertTree(t, vol, f.ino, 'f as the kernel left it');
  await assertTree(t, vol, u.ino, 'u as the kernel left it');
  await assertContent(t, vol, f, 'as the kernel left it');
  await assertContent(t, vol, u, 'as the kernel left it');
  // o2fuse changes the kernel's trees in turn.
  await writeBoth(vol, f, 5 * cs + 3, rng.bytes(2 * cs));
  await writeBoth(vol, u, 20 * cs, rng.bytes(cs));
  await assertTree(t, vol, f.ino, 'f changed again by o2fuse');
  await assertContent(t, vol, f, 'changed again by o2fuse');
  await assertContent(t, vol, u, 'changed again by o2fuse');
  for (const x of [f, u, p]) await truncateBoth(vol, x, 0);
  const end = await spaceCounts(vol);
  t.equal(end.extentBlocksUsed, start.extentBlocksUsed, 'every extent block is freed (the kernel\'s too)');
  for (const x of [f, u, p]) await vol.release(x.ino, x.fh);
  await unmountAndFsck(t, vol, image, 'volume at the end');
});
