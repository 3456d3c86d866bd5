/**
 * A mount that cannot happen exits non-zero with the reason on stderr and
 * leaves no mount, no daemon, no record and no device lock behind: exit 0
 * must mean the mount is live, and a refused mount must not poison the
 * directory for the next one.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultLockDir, deviceLockName } from '../../io/deviceLock';
import { run } from '../lib/exec';
import { tempDir } from '../lib/volume';
import { assertNothingLeft, memoryCliCommand, o2fuseBin } from './helpers';

t.test('a file that is not OCFS2 is refused with the reason, and nothing stays', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'junk.img');
  fs.writeFileSync(image, Buffer.alloc(8 << 20, 0x5a));
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const r = await run(o2fuseBin(), ['mount', image, mnt]);
  t.not(r.code, 0, 'exit status is not 0');
  t.match(r.stderr, /cannot mount .*junk\.img/, 'stderr says what could not be mounted');
  t.match(r.stderr, /superblock|OCFS2/i, 'stderr says why');
  assertNothingLeft(t, mnt, 'after the refusal');
  t.notOk(fs.existsSync(path.join(defaultLockDir(), await deviceLockName(image))), 'the device lock is released');
  t.same(fs.readdirSync(mnt), [], 'the bare directory is untouched');
});

t.test('the mount.fuse form refuses the same way', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'junk.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const r = await run(o2fuseBin(), [image, mnt, '-o', 'rw,dev,suid']);
  t.not(r.code, 0);
  t.match(r.stderr, /cannot mount/);
  assertNothingLeft(t, mnt, 'mount.fuse form');
});

t.test('argument mistakes are refused before anything starts', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'some.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const cases: Array<[string[], RegExp]> = [
    [['mount', path.join(dir, 'missing.img'), mnt], /no such file or block device/],
    [['mount', image, path.join(dir, 'nodir')], /no such directory/],
    [['mount', image, image], /not a directory/],
    [['mount', '-o', 'bogus', image, mnt], /unknown mount option "bogus"/],
    [['mount', '-o', 'cache_size=huge', image, mnt], /not a size/],
    [['mount', image], /needs a DEVICE and a MOUNTPOINT/],
    [['mount', '-o', 'remount,ro', image, mnt], /no o2fuse daemon serves/],
    [['frobnicate'], /unknown command/],
  ];
  for (const [args, why] of cases) {
    const r = await run(o2fuseBin(), args);
    t.not(r.code, 0, `o2fuse ${args.join(' ')} fails`);
    t.match(r.stderr, why, `o2fuse ${args.join(' ')}: ${why}`);
  }
  assertNothingLeft(t, mnt, 'after the argument errors');
});

t.test('an engine failure after the device is open releases the device', async (t) => {
  // The memory engine opens; a second mount of the same device elsewhere must be refused
  // while the first is live, and succeed once the first is gone.
  const dir = await tempDir(t);
  const image = path.join(dir, 'mem.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  const [node, cli] = memoryCliCommand();
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  const first = await run(node, [cli, 'mount', image, a]);
  t.equal(first.code, 0, `first mount: ${first.stderr}`);
  t.teardown(() => run('fusermount', ['-u', a]));
  const second = await run(node, [cli, 'mount', image, b]);
  t.not(second.code, 0, 'the same device cannot be mounted twice');
  t.match(second.stderr, /in use: o2fuse pid \d+ has it mounted on/);
  assertNothingLeft(t, b, 'the refused second mount');
  const off = await run(node, [cli, 'umount', a]);
  t.equal(off.code, 0, `umount: ${off.stderr}`);
  const again = await run(node, [cli, 'mount', image, b]);
  t.equal(again.code, 0, `mounting it elsewhere afterwards works: ${again.stderr}`);
  const off2 = await run(node, [cli, 'umount', b]);
  t.equal(off2.code, 0);
  assertNothingLeft(t, a, 'end');
  assertNothingLeft(t, b, 'end');
});
