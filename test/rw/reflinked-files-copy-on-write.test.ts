/**
 * Writing to files the kernel reflinked: o2fuse copies each shared cluster a
 * change touches to a new one (the old bytes, the write's over them) and
 * lowers the old cluster's count, as the kernel's ocfs2_refcount_cow does;
 * the files it shares with never change.
 *
 * The scripted case, on 32 KiB clusters so that writes cover clusters only
 * in part: the kernel makes a 1 MiB file and three reflinks of it, a reflink
 * whose original it then deletes (every count at one), and a file of
 * unwritten clusters with one written cluster, reflinked. Through an o2fuse
 * mount: buffered writes inside a cluster and across three, an O_DIRECT
 * write, a write over the end of file, a truncate into a shared cluster and
 * back up, a punched hole whose edge falls in a shared cluster, and writes
 * into a shared unwritten cluster and into a cluster counted once (written
 * in place, no longer flagged shared). Each file reads back as its model
 * through the mount and after a remount, fsck.ocfs2 -fn (which checks every
 * count against the extents) is clean, the global bitmap grew by exactly
 * the clusters copied. Then fsx (fsxModel.ts) through the mount on the same
 * volume, over both files of one reflinked pair and one file of another,
 * whose original must keep its bytes, and fsck again. The kernel then reads
 * every file as the models say, copies another cluster itself, and removes
 * everything: both allocators are back where they were before the kernel's
 * reflinks, which they could not be with a count wrong either way.
 *
 * The growing case, on 512-byte blocks (23 records to a refcount block, 23
 * leaves to its root): one-byte writes into every other cluster of a 4 MiB
 * reflink, in a random order, each splitting a record in the middle of the
 * tree. The tree's root moves its records to a leaf, leaves divide, until
 * the root lists all 23 it holds and the next write is refused with
 * EOPNOTSUPP, having changed nothing. fsck.ocfs2 is clean, the leaves count
 * every cluster, and the kernel reads both files, copies more of them on
 * write in the tree o2fuse grew, and frees it all.
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import * as os from 'node:os';
import { execFileSync } from 'node:child_process';
import { makeImage } from '../lib/volume';
import { mountO2fuse } from '../lib/mount';
import { assertFsckClean } from '../lib/fsck';
import { debugfs } from '../lib/debugfs';
import { debugfsBitmap } from './helpers';
import { baselineOf, extentsOf, leavesOf } from './refcountViews';
import { kernelRun, kernelUnavailable, staticHelpersTar } from '../lib/kernel';
import { rngFrom } from '../lib/seed';
import { FileModel, nextStep } from '../iopath/fsxModel';
import { mountStep, openMountFile, type MountFile } from '../iopath/fsxMount';

const skip = kernelUnavailable() ?? false;
const CLUSTER = 32 * 1024;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A sha256sum -c list of `files` (name -> bytes). */
const sumsOf = (files: Map<string, Buffer>): string => [...files].map(([name, bytes]) => `${sha256(bytes)}  ${name}\n`).join('');

const KERNEL_MAKES = `
mkdir -p /tmp && tar -xf /dev/vdb -C /tmp || exit 1
R=/tmp/reflink
dd if=/dev/urandom of=orig bs=32768 count=32 2>/dev/null || exit 1
$R orig a && $R orig b && $R orig c || exit 1
dd if=/dev/urandom of=lone bs=32768 count=8 2>/dev/null || exit 1
$R lone lone-r && rm lone || exit 1
/tmp/prealloc un 0 262144 || exit 1
dd if=/dev/urandom of=un bs=32768 seek=2 count=1 conv=notrunc 2>/dev/null || exit 1
$R un un-r || exit 1
dd if=/dev/urandom of=p bs=4096 count=300 2>/dev/null || exit 1
$R p p-r || exit 1
dd if=/dev/urandom of=q bs=4096 count=370 2>/dev/null || exit 1
$R q q-r || exit 1
sha256sum orig un q > sums || exit 1
echo made
`;

const KERNEL_CHECKS = `
sha256sum -c models || exit 1
sha256sum -c fsx-models || exit 1
dd if=/dev/urandom of=a bs=32768 seek=20 count=1 conv=notrunc 2>/dev/null || exit 1
sha256sum -c sums || exit 1
rm orig a b c lone-r un un-r p p-r q q-r sums models fsx-models || exit 1
ls
echo removed
`;

/** Whether `file` has an extent flagged refcounted (OCFS2_EXT_REFCOUNTED, 0x2). */
async function hasSharedExtent(image: string, file: string): Promise<boolean> {
  return (await extentsOf(image, file)).some((e) => (e[3] & 2) !== 0);
}

t.test('writes to reflinked files copy the shared clusters they touch; the other files keep their bytes', { skip }, async (t) => {
  const tar = await staticHelpersTar(t, ['reflink', 'prealloc']);
  const image = await makeImage(t, { clusterSize: CLUSTER, sizeBytes: 256 * 1024 * 1024 });
  const base = await baselineOf(image);
  const made = await kernelRun(image, KERNEL_MAKES, { data: tar });
  t.equal(made.code, 0, `the kernel made the files and their reflinks\n${made.output}`);
  await assertFsckClean(t, image, 'volume the kernel wrote');
  await t.test('scripted writes, truncates and a punch', (t) => scripted(t, image));
  await t.test('fsx through the mount over reflinked files: every read as the model, the original untouched', (t) => fsx(t, image));

  const checked = await kernelRun(image, KERNEL_CHECKS);
  t.equal(checked.code, 0, `the kernel reads every file as its model and orig, un and q as it wrote them, copies on write itself, then removes them\n${checked.output}`);
  t.match(checked.scriptOutput, /removed/);
  await assertFsckClean(t, image, 'volume the kernel emptied');
  t.same(await baselineOf(image), base, 'both allocators are back where they were before the reflinks');
});

async function scripted(t: Test, image: string): Promise<void> {
  t.ok(await hasSharedExtent(image, '/un-r'), 'un-r shares its extents (unwritten ones too)');
  const usedMade = (await debugfsBitmap(image, 'global_bitmap')).used;
  const loneBefore = await extentsOf(image, '/lone-r');
  t.same(loneBefore.map((e) => [e[0], e[1], e[3]]), [[0, 8, 2]], 'lone-r is one shared extent of 8 clusters');

  let m = await mountO2fuse(t, image);
  const at = (f: string) => path.join(m.dir, f);
  const files = ['orig', 'a', 'b', 'c', 'lone-r', 'un', 'un-r'];
  const model = new Map(files.map((f) => {
    const fm = new FileModel(f, 2 << 20);
    fm.write(0, fs.readFileSync(at(f)));
    return [f, fm];
  }));
  t.equal(model.get('a')!.size, 1 << 20, 'a is the 1 MiB file the kernel wrote');
  const write = (f: string, offset: number, data: Buffer, flags = 'r+'): void => {
    const fd = fs.openSync(at(f), flags === 'direct' ? fs.constants.O_RDWR | fs.constants.O_DIRECT : flags);
    try {
      t.equal(fs.writeSync(fd, data, 0, data.length, offset), data.length, `${f}: ${data.length} bytes at ${offset}`);
    } finally {
      fs.closeSync(fd);
    }
    model.get(f)!.write(offset, data);
  };
  const bytes = (n: number, v: number) => Buffer.alloc(n, v);

  // a: inside cluster 1; O_DIRECT in cluster 6; across clusters 9-11; over the end (cluster 31, and a new 32).
  write('a', 40000, bytes(100, 0xa1));
  write('a', 204800, bytes(4096, 0xa2), 'direct');
  write('a', 300000, bytes(70000, 0xa3));
  write('a', (1 << 20) - 1000, bytes(5000, 0xa4));
  // b: cut inside cluster 15 (its tail zeroed in a copy; 16-31 let go of), then longer again (a hole).
  fs.truncateSync(at('b'), 500123);
  model.get('b')!.truncate(500123);
  fs.truncateSync(at('b'), 900000);
  model.get('b')!.truncate(900000);
  // c: clusters 2-5 punched out, the hole's last 5 bytes in cluster 6 zeroed in a copy.
  execFileSync('fallocate', ['-p', '-o', '65536', '-l', '131077', at('c')]);
  model.get('c')!.punch(65536, 131077);
  // lone-r: every count is one, so its cluster 0 is written in place.
  write('lone-r', 0, bytes(10, 0xb1));
  // un-r: a shared unwritten cluster (copied as zeros) and the shared written one.
  write('un-r', CLUSTER + 100, bytes(300, 0xc1));
  write('un-r', 2 * CLUSTER + 10, bytes(50, 0xc2));
  fs.writeFileSync(at('models'), sumsOf(new Map([...model].filter(([f]) => f !== 'orig' && f !== 'un').map(([f, fm]) => [f, fm.content()]))));

  const check = (when: string) => {
    for (const [f, want] of model) t.equal(sha256(fs.readFileSync(at(f))), sha256(want.content()), `${f} reads as its model ${when}`);
  };
  check('through the mount');
  await m.unmount();
  m = await mountO2fuse(t, image);
  check('after a remount');
  await m.unmount();
  await assertFsckClean(t, image, 'volume o2fuse copied on write in');

  // Copies: a 6 (clusters 1, 6, 9-11, 31) and its new cluster 32, b 1, c 1, un-r 2; lone-r none.
  const copies = 6 + 1 + 1 + 1 + 2;
  t.equal((await debugfsBitmap(image, 'global_bitmap')).used, usedMade + copies,
    `the global bitmap grew by the ${copies} clusters copied and written, nothing shared was freed or lost`);
  t.ok(await hasSharedExtent(image, '/a'), 'a still shares the clusters it did not write');
  const bpc = CLUSTER / 4096;
  t.same(await extentsOf(image, '/lone-r'), [[0, 1, loneBefore[0][2], 0], [1, 7, loneBefore[0][2] + bpc, 2]],
    'lone-r\'s cluster 0, counted once, was written where it was and is no longer flagged shared; the rest still are');
}

interface FsxFile extends MountFile {
  model: FileModel;
}

async function fsx(t: Test, image: string): Promise<void> {
  const rng = rngFrom(t);
  const m = await mountO2fuse(t, image);
  const files: FsxFile[] = [];
  for (const name of ['p', 'p-r', 'q-r']) {
    const model = new FileModel(name, 1536 * 1024);
    model.write(0, fs.readFileSync(path.join(m.dir, name)));
    files.push({ model, ...(await openMountFile(m.dir, name)) });
  }
  const failures: string[] = [];
  const worker = async (f: FsxFile, r: ReturnType<typeof rngFrom>): Promise<void> => {
    for (let i = 0; i < 150 && failures.length === 0; i++) {
      const s = nextStep(r, f.model, { block: 4096, maxIo: 96 * 1024 });
      const result = await mountStep(f, s);
      if (s.data && result !== s.length) failures.push(`${f.model.name}: ${s.op} wrote ${String(result)}`);
      if (result instanceof Buffer) {
        const wrong = f.model.checkRead(s, result);
        if (wrong) failures.push(`${f.model.name}: ${wrong}; last ops: ${f.model.recent()}`);
      }
      f.model.apply(s);
    }
  };
  await Promise.all(files.map((f) => worker(f, rng.fork())));
  t.same(failures, [], 'every read matched the model while the files ran');
  for (const f of files) {
    await f.buffered.close();
    await f.direct.close();
  }
  const models = new Map(files.map((f) => [f.model.name, Buffer.from(f.model.content())]));
  fs.writeFileSync(path.join(m.dir, 'fsx-models'), sumsOf(models));
  await m.unmount();
  await assertFsckClean(t, image, 'volume fsx ran on');
}

const KERNEL_BIG = `
mkdir -p /tmp && tar -xf /dev/vdb -C /tmp || exit 1
dd if=/dev/urandom of=big bs=4096 count=1024 2>/dev/null || exit 1
/tmp/reflink big big-r || exit 1
sha256sum big > sums || exit 1
echo made
`;

t.test('copies on write scattered over a reflink grow its refcount tree into leaves, until its root is full', { skip }, async (t) => {
  const rng = rngFrom(t);
  const tar = await staticHelpersTar(t, ['reflink']);
  // 512-byte blocks: 23 records to a block, 23 leaves to the root.
  const image = await makeImage(t, { blockSize: 512, sizeBytes: 256 * 1024 * 1024 });
  const base = await baselineOf(image);
  const made = await kernelRun(image, KERNEL_BIG, { data: tar });
  t.equal(made.code, 0, `the kernel made a 4 MiB file and its reflink\n${made.output}`);
  const treeBlk = Number(/Refcount Block: (\d+)/.exec(await debugfs(image, 'stat /big'))?.[1] ?? 0);
  t.same(await leavesOf(image, treeBlk), [], 'the tree\'s root holds its one record');

  const m = await mountO2fuse(t, image);
  const file = path.join(m.dir, 'big-r');
  const model = new FileModel('big-r', 4 << 20);
  model.write(0, fs.readFileSync(file));
  // Every other cluster, in a random order: each copy splits a record in the middle of the tree's range.
  const order = rng.shuffle(Array.from({ length: 512 }, (_, k) => 2 * k + 1));
  const fd = fs.openSync(file, 'r+');
  let done = 0;
  let refused: NodeJS.ErrnoException | undefined;
  for (const c of order) {
    const byte = Buffer.from([(done % 250) + 1]);
    try {
      fs.writeSync(fd, byte, 0, 1, c * 4096 + 100);
    } catch (err) {
      refused = err as NodeJS.ErrnoException;
      break;
    }
    model.write(c * 4096 + 100, byte);
    done++;
  }
  fs.closeSync(fd);
  // errno 95, which Node names ENOTSUP.
  t.equal(refused?.errno, -os.constants.errno.EOPNOTSUPP, `after ${done} copies the root's list is full and the next is refused with EOPNOTSUPP`);
  t.ok(done > 23 * 6, `far more copies than one block of records would allow (${done})`);
  t.equal(sha256(fs.readFileSync(file)), sha256(model.content()), 'big-r reads as every write that was taken, the refused one left out');
  fs.writeFileSync(path.join(m.dir, 'models'), sumsOf(new Map([['big-r', model.content()]])));
  await m.unmount();
  await assertFsckClean(t, image, 'volume whose refcount tree o2fuse grew');
  const leaves = await leavesOf(image, treeBlk);
  t.equal(leaves.length, 23, 'the tree has the 23 leaves its root lists at most');
  t.ok(leaves.every((recs) => recs.length <= 23 && recs.length > 0), 'each leaf holds between 1 and 23 records');
  const counts = leaves.flat();
  t.equal(counts.filter((r) => r[2] === 1).reduce((n, r) => n + r[1], 0), done, 'the clusters big-r let go of count once (big\'s)');
  t.equal(counts.reduce((n, r) => n + r[1], 0), 1024, 'the tree still counts all of big\'s 1024 clusters');

  const checked = await kernelRun(image, `
sha256sum -c sums || exit 1
sha256sum -c models || exit 1
dd if=/dev/urandom of=big-r bs=4096 seek=100 count=300 conv=notrunc 2>/dev/null || exit 1
dd if=/dev/urandom of=big bs=4096 seek=0 count=40 conv=notrunc 2>/dev/null || exit 1
rm big big-r sums models || exit 1
echo removed
`);
  t.equal(checked.code, 0, `the kernel reads both files, copies more of them on write itself, and removes them\n${checked.output}`);
  await assertFsckClean(t, image, 'volume the kernel emptied');
  t.same(await baselineOf(image), base, 'both allocators are back where they were: the leaves o2fuse added were freed with the tree');
});
