/**
 * A volume exactly as `mkfs.ocfs2 -M local` makes it with its own defaults
 * (indexed-dirs, xattr, refcount, discontig-bg, inline-data, ...) mounts
 * read-write through bin/o2fuse and takes a workload through the kernel's
 * FUSE client: nested directories, a 2,000-name directory (its index moves
 * out of the root and splits), renames across directories, hard and
 * symbolic links, a 3 MiB file, removals, and rmdir of an indexed
 * directory. After the unmount fsck.ocfs2 -fn is clean; then the kernel's
 * own OCFS2 driver checksums every file, removes and adds names in the big
 * directory through the index this engine wrote, and fsck is clean again;
 * o2fuse then reads the kernel's changes.
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { makeImage } from '../lib/volume';
import { mountO2fuse } from '../lib/mount';
import { assertFsckClean } from '../lib/fsck';
import { kernelRun, kernelUnavailable } from '../lib/kernel';
import { debugfs } from '../lib/debugfs';
import { rngFrom } from '../lib/seed';

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
const contentOf = (p: string, n: number) => Buffer.from(`${p}\n`.repeat(n));

t.test('a volume with mkfs.ocfs2\'s default features is written through the mount', async (t) => {
  const rng = rngFrom(t);
  const image = await makeImage(t, { sizeBytes: 512 * 1024 * 1024 });
  const stats = await debugfs(image, 'stats');
  t.match(stats, /indexed-dirs/, 'mkfs.ocfs2 made an indexed-dirs volume');
  t.match(stats, /refcount/, 'with refcount and the rest of its defaults');

  /** Path (relative to the root) -> md5 of the file's bytes, for every regular file. */
  const files = new Map<string, string>();
  const m = await mountO2fuse(t, image);
  try {
    const at = (p: string) => path.join(m.dir, p);
    const write = async (p: string, data: Buffer) => {
      await fs.writeFile(at(p), data);
      files.set(p, md5(data));
    };
    await fs.mkdir(at('a/b/c'), { recursive: true });
    await fs.mkdir(at('big'));
    for (let i = 0; i < 2000; i++) await write(`big/n${i}-${'x'.repeat(i % 40)}`, contentOf(`big/${i}`, 1 + (i % 9)));
    await write('a/b/c/large', Buffer.alloc(3 * 1024 * 1024, 0x5a));
    await write('a/small', Buffer.from('small\n'));
    await fs.symlink('b/c/large', at('a/sym'));
    await fs.link(at('a/small'), at('a/b/hard'));
    files.set('a/b/hard', files.get('a/small')!);
    // Renames out of, into and within the big directory.
    const names = [...files.keys()].filter((p) => p.startsWith('big/'));
    for (const p of rng.shuffle([...names]).slice(0, 200)) {
      const to = rng.float() < 0.5 ? `a/b/${path.basename(p)}` : `big/r-${path.basename(p)}`;
      await fs.rename(at(p), at(to));
      files.set(to, files.get(p)!);
      files.delete(p);
    }
    for (const p of [...files.keys()].filter((q) => q.startsWith('big/')).filter(() => rng.float() < 0.33)) {
      await fs.unlink(at(p));
      files.delete(p);
    }
    // An indexed directory of 300 names, emptied and removed.
    await fs.mkdir(at('gone'));
    for (let i = 0; i < 300; i++) await fs.writeFile(at(`gone/g${i}`), 'g');
    for (let i = 0; i < 300; i++) await fs.unlink(at(`gone/g${i}`));
    await fs.rmdir(at('gone'));
    const listed = (await fs.readdir(at('big'))).length;
    t.equal(listed, [...files.keys()].filter((p) => p.startsWith('big/')).length, 'the big directory lists what it should');
  } finally {
    await m.unmount();
  }
  await assertFsckClean(t, image, 'mkfs.ocfs2 default volume after the workload through the mount');

  const skip = kernelUnavailable();
  if (skip) {
    t.comment(`the kernel part is skipped: ${skip}`);
    return;
  }
  const bigNames = [...files.keys()].filter((p) => p.startsWith('big/'));
  const kernelRemoves = bigNames.filter((_, i) => i % 5 === 0);
  const script = [
    'set -e',
    'echo BEGIN sums; find . -path ./lost+found -prune -o -type f -print0 | xargs -0 md5sum; echo END sums',
    ...kernelRemoves.map((p) => `rm -- '${p}'`),
    'for i in $(seq 1 150); do echo k$i > big/kernel-$i; done',
    'echo BEGIN big; ls big | wc -l; echo END big',
  ].join('\n') + '\n';
  const r = await kernelRun(image, script);
  t.equal(r.code, 0, 'the script ran on the kernel mount (its rm found every name through the index)', { output: r.output.slice(-3000) });
  const out = r.scriptOutput.split('\n');
  const sums = new Map(out.slice(out.indexOf('BEGIN sums') + 1, out.indexOf('END sums')).map((l) => {
    const [sum, p] = l.split(/\s+/, 2);
    return [p.replace(/^\.\//, ''), sum] as [string, string];
  }));
  const wrong = [...files].filter(([p, sum]) => sums.get(p) !== sum).map(([p]) => p);
  t.same(wrong.slice(0, 10), [], `the kernel reads the same bytes in all ${files.size} files`);
  t.equal(sums.size, files.size, 'and no other files');
  for (const p of kernelRemoves) files.delete(p);
  const inBig = [...files.keys()].filter((p) => p.startsWith('big/')).length + 150;
  t.equal(Number(out[out.indexOf('BEGIN big') + 1]), inBig, 'after its removals and adds the kernel counts what it should');
  t.same(r.kernelLines.filter((l) => /error|corrupt|bad entry/i.test(l)), [], 'no OCFS2 errors from the kernel');
  await assertFsckClean(t, image, 'volume after the kernel changed it');

  const again = await mountO2fuse(t, image, { options: 'ro' });
  try {
    const big = await fs.readdir(path.join(again.dir, 'big'));
    t.equal(big.length, inBig, 'o2fuse lists the big directory as the kernel left it');
    t.equal(await fs.readFile(path.join(again.dir, 'big/kernel-77'), 'utf8'), 'k77\n', 'and reads a file the kernel wrote');
  } finally {
    await again.unmount();
  }
});
