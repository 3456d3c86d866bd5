/**
 * Files the kernel reflinked, deleted through o2fuse: each leaves its
 * refcount tree, and the clusters it shared count one fewer, freed when
 * nobody shares them any more. The kernel's OCFS2 driver (kernel-run, with a
 * static reflink helper) makes:
 * - a file shared by three reflinks, and a fourth reflink whose every extent
 *   it then copied on write (still in the tree, sharing nothing);
 * - a second tree whose only remaining inode is such a copied file;
 * - a 4 MiB file and a reflink of it into whose middle the kernel wrote two
 *   clusters: it copies a whole 1 MiB around them on write, so that the tree
 *   counts the file's clusters in three records (2, 1, 2), twice;
 * - a file and a reflink of it, nothing copied.
 * Through an o2fuse mount: the copied reflink and one of the sharing ones are
 * removed (the counts drop, nothing shared is freed), the last inode of the
 * second tree is removed (its tree freed), the file with the split records is
 * removed (its middle clusters, no longer shared, freed, the others counted
 * once), so is the copied reflink of the other such pair (its two shared runs
 * drop to one and join the middle's record at one: a single record, as the
 * kernel's delete leaves it), and both files of the last pair (the second
 * takes the counts to zero: clusters and tree freed). fsck.ocfs2 -fn is clean, the global bitmap
 * is down by exactly the clusters nobody shares, and the kernel then finds the
 * files left unchanged and removes them, which frees the rest: both
 * allocators are back where they were before any reflink.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeImage } from '../lib/volume';
import { mountO2fuse } from '../lib/mount';
import { assertFsckClean } from '../lib/fsck';
import { debugfs } from '../lib/debugfs';
import { debugfsBitmap } from './helpers';
import { kernelRun, kernelUnavailable, staticHelpersTar } from '../lib/kernel';

const skip = kernelUnavailable() ?? false;

/** Used bits of slot 0's extent allocator, where refcount blocks come from. */
const extentAllocUsed = async (image: string): Promise<number> => (await debugfsBitmap(image, 'extent_alloc:0000')).used;

/** The refcount tree root of a file, and how many inodes it says share it. */
async function treeOf(image: string, file: string): Promise<{ blkno: number; count: number }> {
  const stat = await debugfs(image, `stat ${file}`);
  const blkno = Number(/Refcount Block: (\d+)/.exec(stat)?.[1] ?? 0);
  const tree = await debugfs(image, `refcount <${blkno}>`);
  return { blkno, count: Number(/Reftree Count: (\d+)/.exec(tree)?.[1] ?? -1) };
}

const KERNEL_REFLINKS = `
mkdir -p /tmp && tar -xf /dev/vdb -C /tmp || exit 1
R=/tmp/reflink
dd if=/dev/urandom of=orig bs=4096 count=8 2>/dev/null || exit 1
$R orig shared1 && $R orig shared2 && $R orig cow || exit 1
dd if=/dev/urandom of=cow bs=4096 count=8 conv=notrunc 2>/dev/null || exit 1
dd if=/dev/urandom of=solo bs=4096 count=8 2>/dev/null || exit 1
$R solo solo-copy || exit 1
dd if=/dev/urandom of=solo-copy bs=4096 count=8 conv=notrunc 2>/dev/null || exit 1
rm solo || exit 1
dd if=/dev/urandom of=part bs=1M count=4 2>/dev/null || exit 1
$R part part-r || exit 1
dd if=/dev/urandom of=part-r bs=4096 seek=384 count=2 conv=notrunc 2>/dev/null || exit 1
dd if=/dev/urandom of=mid bs=1M count=4 2>/dev/null || exit 1
$R mid mid-r || exit 1
dd if=/dev/urandom of=mid-r bs=4096 seek=384 count=2 conv=notrunc 2>/dev/null || exit 1
dd if=/dev/urandom of=pair bs=4096 count=8 2>/dev/null || exit 1
$R pair pair-r || exit 1
cmp orig shared1 || exit 1
sha256sum orig shared2 part-r mid > sums || exit 1
echo made
`;

const KERNEL_CHECKS_AND_REMOVES = `
sha256sum -c sums || exit 1
rm orig shared2 part-r mid sums || exit 1
ls
echo removed
`;

/** The records of a refcount tree held in its root, as debugfs.ocfs2 lists them: [cluster, clusters, count]. */
async function recordsOf(image: string, blkno: number): Promise<number[][]> {
  const text = await debugfs(image, `refcount <${blkno}>`);
  return [...text.matchAll(/^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s*$/gm)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
}

t.test('reflinked files deleted through o2fuse: counts drop, unshared clusters and empty trees are freed', { skip }, async (t) => {
  const tar = await staticHelpersTar(t, ['reflink']);
  const image = await makeImage(t, { sizeBytes: 256 * 1024 * 1024 });
  const baseline = await extentAllocUsed(image);
  const clustersBaseline = (await debugfsBitmap(image, 'global_bitmap')).used;
  const made = await kernelRun(image, KERNEL_REFLINKS, { data: tar });
  t.equal(made.code, 0, `the kernel made the reflinks\n${made.output}`);
  await assertFsckClean(t, image, 'volume the kernel wrote');
  const first = await treeOf(image, '/orig');
  const second = await treeOf(image, '/solo-copy');
  const partTree = await treeOf(image, '/part');
  const midTree = await treeOf(image, '/mid');
  t.equal(first.count, 4, 'orig, shared1, shared2 and cow share the first tree');
  t.equal(second.count, 1, 'solo-copy is the second tree\'s only inode');
  t.equal((await debugfs(image, 'stat /cow')).includes('Refcounted'), true, 'cow is still in the tree');
  t.notMatch(await debugfs(image, 'stat /cow'), /0x2 Refcounted/, 'but none of its extents is shared any more');
  const split = await recordsOf(image, partTree.blkno);
  t.same(split.map((r) => r[2]), [2, 1, 2], `part's tree counts its clusters in three records (${JSON.stringify(split)})`);
  const middle = split[1]?.[1] ?? 0;
  const midSplit = await recordsOf(image, midTree.blkno);
  t.same(midSplit.map((r) => r[2]), [2, 1, 2], `so does mid's (${JSON.stringify(midSplit)})`);
  const midCopied = midSplit[1]?.[1] ?? 0;
  t.equal(await extentAllocUsed(image), baseline + 5, 'the five trees took five blocks of the extent allocator');
  const clustersMade = (await debugfsBitmap(image, 'global_bitmap')).used;

  const m = await mountO2fuse(t, image);
  const at = (f: string) => path.join(m.dir, f);
  for (const f of ['cow', 'shared1', 'solo-copy', 'part', 'mid-r', 'pair', 'pair-r']) fs.unlinkSync(at(f));
  t.same(fs.readdirSync(m.dir).sort(), ['lost+found', 'mid', 'orig', 'part-r', 'shared2', 'sums'], 'the seven are gone, the rest stay');
  await m.unmount();
  await assertFsckClean(t, image, 'volume o2fuse removed the reflinks from');
  t.equal((await treeOf(image, '/orig')).count, 2, 'the first tree counts orig and shared2');
  const left = await recordsOf(image, partTree.blkno);
  t.same(left, [[split[0][0], split[0][1], 1], [split[2][0], split[2][1], 1]],
    `part's tree counts its two shared ends once, its middle no more (${JSON.stringify(left)})`);
  const merged = await recordsOf(image, midTree.blkno);
  t.same(merged, [[midSplit[0][0], midSplit[0][1] + midSplit[1][1] + midSplit[2][1], 1]],
    `mid's tree is one record at one, as the kernel's delete leaves it (${JSON.stringify(merged)})`);
  t.equal(await extentAllocUsed(image), baseline + 3, 'the trees left with no inode (solo-copy\'s, the pair\'s) are freed');
  t.equal((await debugfsBitmap(image, 'global_bitmap')).used, clustersMade - (8 + 8 + middle + midCopied + 8),
    `the global bitmap freed exactly what nobody shares: cow's 8, solo-copy's 8 and mid-r's ${midCopied} own clusters, part's middle ${middle}, the pair's 8`);

  const removed = await kernelRun(image, KERNEL_CHECKS_AND_REMOVES);
  t.equal(removed.code, 0, `the kernel found the files left intact and removed them\n${removed.output}`);
  t.match(removed.scriptOutput, /removed/);
  await assertFsckClean(t, image, 'volume the kernel emptied');
  t.equal(await extentAllocUsed(image), baseline, 'the kernel freed the other trees with their last files: nothing is left allocated');
  t.equal((await debugfsBitmap(image, 'global_bitmap')).used, clustersBaseline, 'and every data cluster is free again');
});
