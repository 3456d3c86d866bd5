/**
 * Deleting a file the kernel gave extended attributes gives back everything
 * they took. The kernel's OCFS2 driver (kernel-run) sets attributes of every
 * shape its format has: local values in the inode's inline area, values too
 * big for their entry (value trees of clusters) inline, in an xattr block and
 * in buckets, and indexed xattr blocks whose buckets live in a tree of
 * clusters. The engine, reading the volume, checks each file holds the shape
 * meant for it. Then, through a real o2fuse mount: rm, rm -r of a directory
 * with attributes, the last of two hard links, a rename over a file, and an
 * open file unlinked and closed (the orphan path). fsck.ocfs2 -fn is clean
 * (before this, a value tree's clusters stayed marked in the global bitmap,
 * and a file with an xattr block could not be removed at all: EOPNOTSUPP),
 * the free clusters grow by exactly what the files' data, value trees and
 * bucket trees held, and the kernel then reuses the space for new
 * attributes and fsck is clean again. 4 KiB blocks, and 512-byte blocks
 * with metaecc, where a bucket spans eight blocks. Last, the kernel unlinks
 * three such files while it holds them open and crashes: the o2fuse mount
 * that recovers the orphans frees everything they held, back to the counts
 * of a freshly formatted volume (before, that mount failed: EOPNOTSUPP).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeImage } from '../lib/volume';
import { mountO2fuse } from '../lib/mount';
import { assertFsckClean } from '../lib/fsck';
import { kernelRun, kernelUnavailable, staticHelpersTar } from '../lib/kernel';
import { kernelCrashedImage } from '../lib/kernelCrash';
import { runMkfs } from '../../fs/mkfs/cli';
import type { Volume } from '../../fs/volume';
import { mountEngine, debugfsBitmap } from './helpers';
import { readXattrBlock } from '../../fs/blocks';
import { forEachXattrBucket } from '../../fs/xattrFree';
import { decodeInlineXattr, type XattrRegion } from '../../fs/format/xattr';
import { OCFS2_INLINE_XATTR_FL } from '../../fs/format/constants';

const skip = kernelUnavailable() ?? false;
/** Where xattr blocks come from. */
const EXTENT_ALLOC = 'extent_alloc:0000';

/** What a file's attributes hold, read by the engine. */
interface Usage {
  inlineEntries: number;
  /** Values stored outside their entries, by where the entry is. */
  inlineOutside: number;
  blockOutside: number;
  bucketOutside: number;
  block: 'none' | 'plain' | 'indexed';
  buckets: number;
  /** Global-bitmap clusters the file holds: data, value trees and the bucket tree. */
  clusters: number;
}

async function usageOf(vol: Volume, name: string): Promise<Usage> {
  let ino = vol.rootIno;
  for (const part of name.split('/')) ino = (await vol.lookup(ino, Buffer.from(part))).ino;
  const { di } = await vol.iget(ino);
  const u: Usage = { inlineEntries: 0, inlineOutside: 0, blockOutside: 0, bucketOutside: 0, block: 'none', buckets: 0,
    clusters: di.i_clusters };
  const values = (r: XattrRegion): number => {
    let n = 0;
    for (const e of r.xh_entries) {
      if (e.valueRoot) {
        n++;
        u.clusters += e.valueRoot.xr_clusters;
      }
    }
    return n;
  };
  if ((di.i_dyn_features & OCFS2_INLINE_XATTR_FL) && di.inlineXattr) {
    const r = decodeInlineXattr(di.inlineXattr);
    u.inlineEntries = r.xh_count;
    u.inlineOutside = values(r);
  }
  if (di.i_xattr_loc) {
    const xb = await readXattrBlock(vol, di.i_xattr_loc);
    if (xb.xb_header) {
      u.block = 'plain';
      u.blockOutside = values(xb.xb_header);
    } else if (xb.xb_root) {
      u.block = 'indexed';
      u.clusters += xb.xb_root.xt_clusters;
      await forEachXattrBucket(vol, xb.xb_root.xt_list, name, (r) => {
        u.buckets++;
        u.bucketOutside += values(r);
      });
    }
  }
  return u;
}

async function readOnly<T>(image: string, fn: (vol: Volume) => Promise<T>): Promise<T> {
  const vol = await mountEngine(image, true);
  try {
    return await fn(vol);
  } finally {
    await vol.unmount();
  }
}

async function freeBytes(image: string): Promise<number> {
  return readOnly(image, async (vol) => {
    const s = await vol.statfs();
    return s.bfree * s.frsize;
  });
}

const KERNEL_SETS = `
mkdir -p /tmp && tar -xf /dev/vdb -C /tmp || exit 1
X=/tmp/setxattrs
touch small big block buckets local-buckets linked victim replacement open-later || exit 1
dd if=/dev/zero of=data bs=4096 count=25 2>/dev/null || exit 1
mkdir dir && touch dir/inner || exit 1
$X small user.s 1 10 || exit 1
$X big user.b 1 300 || exit 1
$X block user.k 40 60 && $X block trusted.v 2 5000 || exit 1
$X buckets user.x 300 100 || exit 1
$X local-buckets user.l 400 30 || exit 1
$X data user.d 10 200 || exit 1
$X dir user.dir 30 120 || exit 1
$X dir/inner user.i 3 150 || exit 1
$X linked user.h 5 500 && ln linked linked2 || exit 1
$X victim user.v 50 90 || exit 1
$X open-later user.o 3 1000 || exit 1
echo set
`;

/** What the kernel does with the space given back: new files with attributes of every shape. */
const KERNEL_REUSES = `
mkdir -p /tmp && tar -xf /dev/vdb -C /tmp || exit 1
X=/tmp/setxattrs
ls
for f in n1 n2 n3; do touch $f || exit 1; done
$X n1 user.a 300 100 && $X n2 user.b 40 60 && $X n3 user.c 2 5000 || exit 1
echo reused
`;

const OUTSIDE_INODE = ['xattr block', 'value tree in a block', 'indexed block', 'several buckets', 'value tree in a bucket'];
/** Files with attributes of three shapes, unlinked while open, then the crash (kernelCrash.ts appends it). */
const KERNEL_ORPHANS = `
mkdir -p /tmp && tar -xf /dev/vdb -C /tmp || exit 1
X=/tmp/setxattrs
touch o1 o2 o3 || exit 1
$X o1 user.b 1 300 && $X o2 user.k 40 60 && $X o2 trusted.v 2 5000 && $X o3 user.x 300 100 || exit 1
exec 3<o1 4<o2 5<o3
rm o1 o2 o3 || exit 1
sync
`;

const CASES = [
  { name: '4 KiB blocks, mkfs.ocfs2 defaults', blockSize: 4096, features: undefined,
    shapes: ['inline', 'value tree inline', ...OUTSIDE_INODE] },
  { name: '512-byte blocks with metaecc', blockSize: 512, features: 'metaecc', shapes: OUTSIDE_INODE },
];

t.test('files with the kernel\'s extended attributes are freed whole', { skip }, async (t) => {
  const tar = await staticHelpersTar(t, ['setxattrs']);

  for (const c of CASES) {
    await t.test(c.name, async (t) => {
      const image = await makeImage(t, { blockSize: c.blockSize, features: c.features, sizeBytes: 512 * 1024 * 1024 });
      const set = await kernelRun(image, KERNEL_SETS, { data: tar });
      t.equal(set.code, 0, `the kernel set the attributes\n${set.output}`);
      await assertFsckClean(t, image, 'volume the kernel wrote');

      const gone = ['small', 'big', 'block', 'buckets', 'local-buckets', 'data', 'dir', 'dir/inner', 'linked', 'victim', 'open-later'];
      const usage = await readOnly(image, async (vol) => {
        const m = new Map<string, Usage>();
        for (const f of gone) m.set(f, await usageOf(vol, f));
        return m;
      });
      const u = (f: string) => usage.get(f)!;
      t.comment(JSON.stringify(Object.fromEntries(usage)));
      // The shapes the files were made to have (the kernel keeps no inline area with 512-byte blocks), or the test
      // would not test them.
      const shapes = new Set<string>();
      for (const x of usage.values()) {
        if (x.inlineEntries) shapes.add('inline');
        if (x.inlineOutside) shapes.add('value tree inline');
        if (x.block === 'plain') shapes.add('xattr block');
        if (x.blockOutside) shapes.add('value tree in a block');
        if (x.block === 'indexed') shapes.add('indexed block');
        if (x.buckets > 1) shapes.add('several buckets');
        if (x.bucketOutside) shapes.add('value tree in a bucket');
      }
      t.same(c.shapes.filter((s) => !shapes.has(s)), [], `the files hold every shape meant: ${[...shapes].join(', ')}`);
      t.ok(u('data').clusters >= 25 + 10, 'data: 25 data clusters and 10 value trees');
      const expected = [...usage.values()].reduce((n, x) => n + x.clusters, 0);
      const before = await freeBytes(image);

      const m = await mountO2fuse(t, image);
      const at = (f: string) => path.join(m.dir, f);
      for (const f of ['small', 'big', 'block', 'buckets', 'local-buckets', 'data', 'linked']) fs.unlinkSync(at(f));
      t.ok(fs.existsSync(at('linked2')), 'the other link stays');
      fs.unlinkSync(at('linked2'));
      fs.rmSync(at('dir'), { recursive: true });
      fs.renameSync(at('replacement'), at('victim'));
      const fd = fs.openSync(at('open-later'), 'r');
      fs.unlinkSync(at('open-later'));
      t.equal(fs.fstatSync(fd).nlink, 0, 'open-later is open and unlinked');
      fs.closeSync(fd);
      t.same(fs.readdirSync(m.dir).sort(), ['lost+found', 'victim'], 'only the renamed file is left');
      await m.unmount();
      await assertFsckClean(t, image, 'after o2fuse removed the files');

      const after = await freeBytes(image);
      const clusterSize = 4096;
      t.equal(after - before, expected * clusterSize,
        `the free space grew by the ${expected} clusters the files' data, value trees and bucket trees held`);

      const reuse = await kernelRun(image, KERNEL_REUSES, { data: tar });
      t.equal(reuse.code, 0, `the kernel reused the space\n${reuse.output}`);
      t.match(reuse.scriptOutput, /reused/);
      await assertFsckClean(t, image, 'after the kernel reused the space');
    });
  }
  await t.test('open files the kernel unlinked before it crashed: orphans freed at mount', async (t) => {
    // o2fuse's mkfs defaults leave xattr out (it does not write them); the kernel needs it to set any.
    const mkfsArgs = ['--fs-features=xattr'];
    const size = 256 * 1024 * 1024;
    const image = await kernelCrashedImage(t, { mkfsArgs, sizeBytes: size, data: tar, script: KERNEL_ORPHANS });
    if (!image) return;
    // The same format again, untouched: where the counts must come back to.
    const fresh = path.join(path.dirname(image), 'fresh.img');
    t.equal(await runMkfs(['-q', '-F', '-M', 'local', ...mkfsArgs, fresh, `${size}B`], { stdout: () => {}, stderr: () => {} }), 0);
    const m = await mountO2fuse(t, image);
    t.same(fs.readdirSync(m.dir).sort(), ['lost+found'], 'the unlinked files are gone');
    await m.unmount();
    await assertFsckClean(t, image, 'after the mount recovered the orphans');
    t.equal(await freeBytes(image), await freeBytes(fresh), 'every cluster the orphans held (value trees, buckets) is free again');
    t.equal((await debugfsBitmap(image, EXTENT_ALLOC)).used, (await debugfsBitmap(fresh, EXTENT_ALLOC)).used, 'and every xattr block');
  });
});
