/**
 * A file the kernel reflinked leaves its refcount tree when o2fuse deletes
 * it. The kernel's OCFS2 driver (kernel-run, with a static reflink helper)
 * makes a file shared by three reflinks, a fourth reflink whose every
 * extent it then copied on write (still in the tree, sharing nothing), and
 * a second tree whose only remaining inode is such a copied file. Through
 * an o2fuse mount: the copied reflink is removed (the tree counts one inode
 * fewer), a reflink still sharing clusters is refused with EOPNOTSUPP and
 * left intact, and the last inode of the second tree is removed (its tree
 * freed). fsck.ocfs2 -fn is clean; the kernel then finds the shared files
 * unchanged and removes them, which frees the first tree, and the extent
 * allocator is back where it was before any reflink. Before this, o2fuse
 * freed such files without touching the tree: its count stayed one too high
 * (fsck.ocfs2 -fn: REFCOUNT_COUNT), and the second tree outlived its last
 * file, a block allocated to nobody that fsck.ocfs2 does not report (the
 * extent allocator's count here does).
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
sha256sum orig shared1 shared2 > sums || exit 1
echo made
`;

const KERNEL_CHECKS_AND_REMOVES = `
sha256sum -c sums || exit 1
rm orig shared1 shared2 sums || exit 1
ls
echo removed
`;

t.test('reflinked files leave their refcount tree when o2fuse deletes them', { skip }, async (t) => {
  const tar = await staticHelpersTar(t, ['reflink']);
  const image = await makeImage(t, { sizeBytes: 256 * 1024 * 1024 });
  const baseline = await extentAllocUsed(image);
  const made = await kernelRun(image, KERNEL_REFLINKS, { data: tar });
  t.equal(made.code, 0, `the kernel made the reflinks\n${made.output}`);
  await assertFsckClean(t, image, 'volume the kernel wrote');
  const first = await treeOf(image, '/orig');
  const second = await treeOf(image, '/solo-copy');
  t.equal(first.count, 4, 'orig, shared1, shared2 and cow share the first tree');
  t.equal(second.count, 1, 'solo-copy is the second tree\'s only inode');
  t.equal((await debugfs(image, 'stat /cow')).includes('Refcounted'), true, 'cow is still in the tree');
  t.notMatch(await debugfs(image, 'stat /cow'), /0x2 Refcounted/, 'but none of its extents is shared any more');
  const withTrees = await extentAllocUsed(image);
  t.equal(withTrees, baseline + 2, 'the two trees took two blocks of the extent allocator');

  const m = await mountO2fuse(t, image);
  const at = (f: string) => path.join(m.dir, f);
  fs.unlinkSync(at('cow'));
  t.throws(() => fs.unlinkSync(at('shared1')), { code: 'ENOTSUP' }, 'a reflink still sharing clusters is refused (EOPNOTSUPP)');
  t.ok(fs.existsSync(at('shared1')), 'and stays');
  fs.unlinkSync(at('solo-copy'));
  t.same(fs.readdirSync(m.dir).sort(), ['lost+found', 'orig', 'shared1', 'shared2', 'sums']);
  await m.unmount();
  await assertFsckClean(t, image, 'after o2fuse removed the copied reflinks');
  t.equal((await treeOf(image, '/orig')).count, 3, 'the first tree counts one inode fewer');
  t.equal(await extentAllocUsed(image), baseline + 1, 'the second tree, left with no inode, is freed');

  const removed = await kernelRun(image, KERNEL_CHECKS_AND_REMOVES);
  t.equal(removed.code, 0, `the kernel found the shared files intact and removed them\n${removed.output}`);
  t.match(removed.scriptOutput, /removed/);
  await assertFsckClean(t, image, 'after the kernel removed the rest');
  t.equal(await extentAllocUsed(image), baseline, 'the kernel freed the first tree with its last file: nothing is left allocated');
});
