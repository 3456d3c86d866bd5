/**
 * A volume made by mkfs.ocfs2 and filled by libocfs2 (the o2tool oracle),
 * mounted through the real command line and the real engine: the mount's
 * source is exactly the device as given and its type fuse.o2fuse, files read
 * back what libocfs2 wrote, a read-only mount changes no byte of the image,
 * and the same works in the form mount(8) uses.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { o2fuseMountAt } from '../../fs/fuse/mountinfo';
import { liveRecord } from '../../bin/registry';
import { defaultLockDir, deviceLockName } from '../../io/deviceLock';
import { run } from '../lib/exec';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse, waitForExit, forceUnmount } from '../lib/mount';
import { dirEntryNames, expectedContent, populate, type Spec, type SpecEntry } from '../lib/oracle';
import { makeImage, tempDir } from '../lib/volume';
import { o2fuseBin } from './helpers';

const MTIME_S = 1_000_000_000;

const spec: Spec = [
  { kind: 'mkdir', path: '/d' },
  { kind: 'file', path: '/d/f', size: 100_000, seed: 3, mode: 0o640, uid: 12, gid: 34, mtime: MTIME_S },
  { kind: 'inline', path: '/small', size: 100, seed: 4 },
  { kind: 'sparse', path: '/sp', size: 1 << 20, seed: 5, ranges: [{ offset: 65536, length: 8192 }] },
  { kind: 'symlink', path: '/sl', target: 'd/f' },
  { kind: 'dir', path: '/many', count: 500 },
];

function entry(p: string): SpecEntry {
  return spec.find((e) => e.path === p)!;
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function populatedImage(t: Parameters<typeof makeImage>[0]): Promise<string> {
  const image = await makeImage(t, { sizeBytes: 128 << 20, blockSize: 1024 });
  await populate(image, spec);
  return image;
}

t.test('mount -o ro through o2fuse mount: contents, identity, nothing written', async (t) => {
  const image = await populatedImage(t);
  const before = sha256File(image);
  const m = await mountO2fuse(t, image, { options: 'ro' });
  const p = (name: string) => path.join(m.dir, name);

  const mnt = o2fuseMountAt(m.dir)!;
  t.equal(mnt.source, image, 'the mount source is the device exactly as given');
  t.equal(mnt.fsType, 'fuse.o2fuse', 'the type is fuse.o2fuse');
  t.ok(mnt.options.includes('ro'), 'the kernel shows ro');

  t.same((await fs.promises.readdir(m.dir)).sort(), ['d', 'lost+found', 'many', 'sl', 'small', 'sp']);
  t.ok((await fs.promises.readFile(p('d/f'))).equals(expectedContent(entry('/d/f'))), 'an extent file reads back');
  t.ok((await fs.promises.readFile(p('small'))).equals(expectedContent(entry('/small'))), 'an inline file reads back');
  t.ok((await fs.promises.readFile(p('sp'))).equals(expectedContent(entry('/sp'))), 'a sparse file reads back, holes as zeros');
  t.equal(await fs.promises.readlink(p('sl')), 'd/f', 'symlink target');
  t.same((await fs.promises.readdir(p('many'))).sort(), dirEntryNames(500), 'a 500-entry directory lists whole');

  const st = await fs.promises.stat(p('d/f'));
  t.equal(st.size, 100_000);
  t.equal(st.mode & 0o7777, 0o640);
  t.same([st.uid, st.gid], [12, 34]);
  t.equal(st.mtimeMs, MTIME_S * 1000, 'mtime');
  const root = await fs.promises.stat(m.dir);
  t.ok(root.ino > 0, 'inode numbers come from the volume (use_ino)');
  const df = await fs.promises.statfs(m.dir);
  t.ok(df.blocks > 0 && df.bfree <= df.blocks, 'statfs counts');

  await t.rejects(fs.promises.writeFile(p('new'), 'x'), { code: 'EROFS' }, 'a read-only mount refuses writes');

  const rw = await run(o2fuseBin(), ['mount', '-o', 'remount,rw', image, m.dir]);
  if (rw.code === 0) {
    t.ok(o2fuseMountAt(m.dir)!.options.includes('rw'), 'remount rw applied');
  } else {
    t.match(rw.stderr, /cannot (switch|remount)/, `remount rw refused with a reason: ${rw.stderr.trim()}`);
    t.ok(o2fuseMountAt(m.dir)!.options.includes('ro'), 'and the mount stays ro');
  }
  const ro = await run(o2fuseBin(), ['mount', '-o', 'remount,ro', image, m.dir]);
  t.equal(ro.code, 0, `remount ro: ${ro.stderr}`);

  const pid = m.pid;
  const u = await run('umount', [m.dir]);
  t.equal(u.code, 0, `umount: ${u.stderr}`);
  t.ok(await waitForExit(pid, 10_000), 'the daemon exits after umount');
  t.notOk(fs.existsSync(path.join(defaultLockDir(), await deviceLockName(image))), 'the device lock is released');
  t.equal(sha256File(image), before, 'a read-only mount wrote nothing');
  await assertFsckClean(t, image);
});

t.test('the mount.fuse form and mount -t fuse.o2fuse', async (t) => {
  const image = await populatedImage(t);
  const dir = path.join(await tempDir(t), 'mnt');
  fs.mkdirSync(dir);
  t.teardown(() => forceUnmount(dir));

  const direct = await run(o2fuseBin(), [image, dir, '-o', 'ro,dev,suid']);
  t.equal(direct.code, 0, `o2fuse DEV DIR -o ro,dev,suid: ${direct.stderr}`);
  const flags = o2fuseMountAt(dir)?.options ?? [];
  t.notOk(flags.includes('nodev') || flags.includes('nosuid'), `dev and suid reach the kernel (${flags.join(',')})`);
  t.equal(await fs.promises.readlink(path.join(dir, 'sl')), 'd/f');
  const pid = liveRecord(dir)!.pid;
  await run('umount', [dir]);
  t.ok(await waitForExit(pid, 10_000), 'the daemon exits');

  const installed = '/usr/local/sbin/o2fuse';
  const launcher = o2fuseBin();
  let link: string | undefined;
  try {
    link = fs.readlinkSync(installed);
  } catch {
    link = undefined;
  }
  if (link !== undefined && path.resolve(path.dirname(installed), link) !== launcher) {
    t.comment(`${installed} points to ${link}, not this checkout: skipping mount -t fuse.o2fuse`);
    return;
  }
  if (link === undefined) {
    if (fs.existsSync(installed)) {
      t.comment(`${installed} is not our symlink: skipping mount -t fuse.o2fuse`);
      return;
    }
    const inst = await run(launcher, ['install']);
    t.equal(inst.code, 0, `o2fuse install: ${inst.stdout.toString()}${inst.stderr}`);
    t.teardown(() => fs.rmSync(installed, { force: true }));
  }
  const mounted = await run('mount', ['-t', 'fuse.o2fuse', '-o', 'ro,noatime', image, dir]);
  t.equal(mounted.code, 0, `mount -t fuse.o2fuse: ${mounted.stderr}`);
  const m = o2fuseMountAt(dir);
  t.equal(m?.source, image, 'source as given to mount(8)');
  t.ok(m?.options.includes('noatime'), 'noatime reaches the kernel');
  t.ok((await fs.promises.readFile(path.join(dir, 'd/f'))).equals(expectedContent(entry('/d/f'))), 'reads through mount(8)');
  const again = await run('mount', ['-o', 'remount,ro', dir]);
  t.equal(again.code, 0, `mount -o remount,ro DIR: ${again.stderr}`);
  const pid2 = liveRecord(dir)!.pid;
  const u = await run('umount', [dir]);
  t.equal(u.code, 0);
  t.ok(await waitForExit(pid2, 10_000), 'the daemon exits after umount');
});
