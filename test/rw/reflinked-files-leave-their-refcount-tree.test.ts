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
 *
 * A second volume, of 512-byte blocks (23 records to a refcount block), has
 * a tree grown into two leaf blocks: a 32 MiB file whose reflink the kernel
 * copied every other MiB of (32 records). o2fuse deletes the reflink: every
 * count drops to one leaf by leaf, the records merge wherever they meet in
 * a leaf (32 to a handful), fsck.ocfs2 is
 * clean and the kernel reads the file unchanged. o2fuse then deletes the file:
 * the emptied leaves are freed, the root goes back to holding records and is
 * freed with its last file; both allocators are back where they were.
 *
 * A third volume has a file whose two 5000-byte attribute values (value
 * trees of their own) the kernel's reflink shares with the copy, beside its
 * data: o2fuse deletes the reflink (data and values each count once, nothing
 * freed, the kernel reads the file unchanged), then the file (everything
 * freed).
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeImage } from '../lib/volume';
import { mountO2fuse } from '../lib/mount';
import { assertFsckClean } from '../lib/fsck';
import { debugfs } from '../lib/debugfs';
import { debugfsBitmap } from './helpers';
import { baselineOf, extentAllocUsed, leavesOf, recordsOf, treeOf, type Baseline } from './refcountViews';
import { kernelRun, kernelUnavailable, staticHelpersTar } from '../lib/kernel';

const skip = kernelUnavailable() ?? false;

/** Removes `files` through an o2fuse mount; the volume is then fsck-clean and both allocators are back at `base`. */
async function removeAllThroughO2fuse(t: Test, image: string, files: readonly string[], base: Baseline, what: string): Promise<void> {
  const m = await mountO2fuse(t, image);
  for (const f of files) fs.unlinkSync(path.join(m.dir, f));
  await m.unmount();
  await assertFsckClean(t, image, 'volume o2fuse emptied');
  t.equal(await extentAllocUsed(image), base.blocks, `the extent allocator is back where it was: ${what}`);
  t.equal((await debugfsBitmap(image, 'global_bitmap')).used, base.clusters, 'and every cluster is free again');
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

t.test('reflinked files deleted through o2fuse: counts drop, unshared clusters and empty trees are freed', { skip }, async (t) => {
  const tar = await staticHelpersTar(t, ['reflink']);
  const image = await makeImage(t, { sizeBytes: 256 * 1024 * 1024 });
  const base = await baselineOf(image);
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
  t.equal(await extentAllocUsed(image), base.blocks + 5, 'the five trees took five blocks of the extent allocator');
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
  t.equal(await extentAllocUsed(image), base.blocks + 3, 'the trees left with no inode (solo-copy\'s, the pair\'s) are freed');
  t.equal((await debugfsBitmap(image, 'global_bitmap')).used, clustersMade - (8 + 8 + middle + midCopied + 8),
    `the global bitmap freed exactly what nobody shares: cow's 8, solo-copy's 8 and mid-r's ${midCopied} own clusters, part's middle ${middle}, the pair's 8`);

  const removed = await kernelRun(image, KERNEL_CHECKS_AND_REMOVES);
  t.equal(removed.code, 0, `the kernel found the files left intact and removed them\n${removed.output}`);
  t.match(removed.scriptOutput, /removed/);
  await assertFsckClean(t, image, 'volume the kernel emptied');
  t.equal(await extentAllocUsed(image), base.blocks, 'the kernel freed the other trees with their last files: nothing is left allocated');
  t.equal((await debugfsBitmap(image, 'global_bitmap')).used, base.clusters, 'and every data cluster is free again');
});

// On 512-byte blocks a refcount block holds 23 records: a file whose reflink the kernel copied on write every
// other MiB has its clusters counted in 32, in two leaf blocks under the root.
const KERNEL_LEAF_TREE = `
mkdir -p /tmp && tar -xf /dev/vdb -C /tmp || exit 1
R=/tmp/reflink
dd if=/dev/urandom of=big bs=1M count=32 2>/dev/null || exit 1
$R big big-r || exit 1
for i in 1 3 5 7 9 11 13 15 17 19 21 23 25 27 29 31; do
  dd if=/dev/urandom of=big-r bs=4096 seek=$((i * 256 + 10)) count=1 conv=notrunc 2>/dev/null || exit 1
done
sha256sum big > sums || exit 1
echo made
`;

t.test('a refcount tree grown into leaf blocks: counts drop leaf by leaf, emptied leaves and then the tree are freed', { skip }, async (t) => {
  const tar = await staticHelpersTar(t, ['reflink']);
  const image = await makeImage(t, { blockSize: 512, sizeBytes: 256 * 1024 * 1024 });
  const base = await baselineOf(image);
  const made = await kernelRun(image, KERNEL_LEAF_TREE, { data: tar });
  t.equal(made.code, 0, `the kernel made the reflink and copied half of it\n${made.output}`);
  await assertFsckClean(t, image, 'volume the kernel wrote');
  const tree = await treeOf(image, '/big');
  const before = await recordsOf(image, tree.blkno);
  t.equal(tree.count, 2, 'big and big-r share the tree');
  const leaves = await leavesOf(image, tree.blkno);
  t.ok(leaves.length >= 2, `its ${before.length} records are in ${leaves.length} leaf blocks`);
  t.equal(leaves.flat().length, before.length, 'all of them');
  t.same([...new Set(before.map((r) => r[2]))].sort(), [1, 2], 'counting the shared MiBs twice and big\'s copied ones once');
  const treeBlocks = await extentAllocUsed(image);

  const m = await mountO2fuse(t, image);
  fs.unlinkSync(path.join(m.dir, 'big-r'));
  await m.unmount();
  await assertFsckClean(t, image, 'volume o2fuse removed big-r from');
  const after = await recordsOf(image, tree.blkno);
  t.same([...new Set(after.map((r) => r[2]))], [1], 'every cluster of big now counts once');
  t.equal(after.reduce((n, r) => n + r[1], 0), before.reduce((n, r) => n + r[1], 0), 'the same clusters are counted');
  // Records merge inside a block: a run that continues across two leaves stays two records, as in the kernel.
  const unmerged = (await leavesOf(image, tree.blkno)).flatMap((recs) => recs.filter((r, i) => i > 0 && recs[i - 1][0] + recs[i - 1][1] === r[0]));
  t.same(unmerged, [], `records at one that meet in a leaf merged (${before.length} -> ${after.length})`);
  t.equal((await treeOf(image, '/big')).count, 1, 'the tree counts big alone');
  const checked = await kernelRun(image, 'sha256sum -c sums || exit 1\necho checked\n');
  t.equal(checked.code, 0, `the kernel reads big unchanged\n${checked.output}`);

  await removeAllThroughO2fuse(t, image, ['big', 'sums'], base,
    `the tree's root and leaves and the files' extent blocks are freed (${treeBlocks - base.blocks} blocks)`);
});

// A reflink shares the file's attribute values stored outside the inode too (ocfs2_reflink_xattrs): two of 5000
// bytes, each in a value tree of its own, beside three small ones kept inline.
const KERNEL_XATTR_REFLINK = `
mkdir -p /tmp && tar -xf /dev/vdb -C /tmp || exit 1
R=/tmp/reflink
X=/tmp/setxattrs
dd if=/dev/urandom of=xf bs=4096 count=8 2>/dev/null || exit 1
$X xf user.big 2 5000 && $X xf user.small 3 40 || exit 1
$R xf xf-r || exit 1
sha256sum xf > sums || exit 1
echo made
`;

t.test('a reflinked file\'s shared attribute values count one fewer when o2fuse deletes it', { skip }, async (t) => {
  const tar = await staticHelpersTar(t, ['reflink', 'setxattrs']);
  const image = await makeImage(t, { sizeBytes: 256 * 1024 * 1024 });
  const base = await baselineOf(image);
  const made = await kernelRun(image, KERNEL_XATTR_REFLINK, { data: tar });
  t.equal(made.code, 0, `the kernel made the file, its attributes and the reflink\n${made.output}`);
  await assertFsckClean(t, image, 'volume the kernel wrote');
  const tree = await treeOf(image, '/xf');
  const before = await recordsOf(image, tree.blkno);
  t.equal(tree.count, 2, 'xf and xf-r share the tree');
  t.ok(before.reduce((n, r) => n + r[1], 0) > 8, `it counts more than the data's 8 clusters: the values' too (${JSON.stringify(before)})`);
  t.same([...new Set(before.map((r) => r[2]))], [2], 'each counted twice');
  const clustersMade = (await debugfsBitmap(image, 'global_bitmap')).used;

  const m = await mountO2fuse(t, image);
  fs.unlinkSync(path.join(m.dir, 'xf-r'));
  await m.unmount();
  await assertFsckClean(t, image, 'volume o2fuse removed xf-r from');
  const after = await recordsOf(image, tree.blkno);
  t.same(after.map((r) => [r[0], r[1]]), before.map((r) => [r[0], r[1]]), 'the same clusters are counted');
  t.same([...new Set(after.map((r) => r[2]))], [1], 'now once each');
  t.equal((await debugfsBitmap(image, 'global_bitmap')).used, clustersMade, 'no cluster is freed: xf still has them all');
  const checked = await kernelRun(image, 'sha256sum -c sums || exit 1\necho checked\n');
  t.equal(checked.code, 0, `the kernel reads xf unchanged\n${checked.output}`);

  await removeAllThroughO2fuse(t, image, ['xf', 'sums'], base, 'the refcount tree and any xattr block are freed');
});
