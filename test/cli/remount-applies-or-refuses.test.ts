/**
 * `-o remount` changes a live mount through its daemon, or refuses with a
 * message; it never starts a second daemon and never leaves the kernel's
 * flags and the engine's state disagreeing.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { o2fuseMountAt } from '../../fs/fuse/mountinfo';
import { liveRecords } from '../../bin/registry';
import { run } from '../lib/exec';
import { mountO2fuse } from '../lib/mount';
import { tempDir } from '../lib/volume';
import { memoryCliCommand } from './helpers';

async function memoryImage(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const image = path.join(await tempDir(t), 'mem.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  return image;
}

function kernelFlags(dir: string): string[] {
  return o2fuseMountAt(dir)?.options ?? [];
}

const [node, cli] = memoryCliCommand();

t.test('remount ro then rw is applied to the kernel and the engine', async (t) => {
  const image = await memoryImage(t);
  const m = await mountO2fuse(t, image, { command: memoryCliCommand() });
  const file = path.join(m.dir, 'f');
  await fs.promises.writeFile(file, 'one');

  const ro = await run(node, [cli, 'mount', '-o', 'remount,ro', image, m.dir]);
  t.equal(ro.code, 0, `remount,ro: ${ro.stderr}`);
  t.ok(kernelFlags(m.dir).includes('ro'), 'the kernel shows ro');
  await t.rejects(fs.promises.writeFile(file, 'two'), { code: 'EROFS' }, 'writes are refused');

  // What mount(8) passes for `mount -o remount,rw DIR`: the live options, then ours.
  const rw = await run(node, [cli, image, m.dir, '-o', 'rw,nosuid,nodev,relatime,remount,user_id=0,group_id=0']);
  t.equal(rw.code, 0, `remount,rw in the mount.fuse form: ${rw.stderr}`);
  t.ok(kernelFlags(m.dir).includes('rw'), 'the kernel shows rw');
  await fs.promises.writeFile(file, 'three');
  t.equal(await fs.promises.readFile(file, 'utf8'), 'three', 'writes work again');
  t.equal(liveRecords().filter((r) => r.mountpoint === m.dir).length, 1, 'still one daemon');
  t.equal(liveRecords().find((r) => r.mountpoint === m.dir)?.pid, m.pid, 'the same daemon');
});

t.test('remount ro is refused while a file is open for writing, and nothing changes', async (t) => {
  const image = await memoryImage(t);
  const m = await mountO2fuse(t, image, { command: memoryCliCommand() });
  const fh = await fs.promises.open(path.join(m.dir, 'w'), 'w');
  t.teardown(() => fh.close().catch(() => undefined));
  const r = await run(node, [cli, 'mount', '-o', 'remount,ro', image, m.dir]);
  t.not(r.code, 0, 'refused');
  t.match(r.stderr, /cannot remount .*refused to remount/, 'says the kernel refused');
  t.ok(kernelFlags(m.dir).includes('rw'), 'still rw');
  await fh.write('still writable');
  await fh.close();
});

t.test('an engine that cannot change live refuses with a message and stays as it was', async (t) => {
  const image = await memoryImage(t);
  const m = await mountO2fuse(t, image, { command: memoryCliCommand(), env: { O2FUSE_TEST_NO_REMOUNT: '1' } });
  const r = await run(node, [cli, 'mount', '-o', 'remount,ro', image, m.dir], { env: { ...process.env, O2FUSE_TEST_NO_REMOUNT: '1' } });
  t.not(r.code, 0, 'refused');
  t.match(r.stderr, /cannot switch a live mount to ro .*umount and mount again/, 'says what to do instead');
  t.ok(kernelFlags(m.dir).includes('rw'), 'the kernel still shows rw');
  await fs.promises.writeFile(path.join(m.dir, 'f'), 'ok');

  const same = await run(node, [cli, 'mount', '-o', 'remount,rw', image, m.dir]);
  t.equal(same.code, 0, `a remount that changes nothing succeeds: ${same.stderr}`);
  const defaults = await run(node, [cli, 'mount', '-o', 'remount,dx_hash=signed,unaligned_dio=range,cache_size=256M,commit=5', image, m.dir]);
  t.equal(defaults.code, 0, `so does one restating session options at their defaults: ${defaults.stderr}`);
  const dxHash = await run(node, [cli, 'mount', '-o', 'remount,dx_hash=unsigned', image, m.dir]);
  t.match(dxHash.stderr, /dx_hash cannot change on a live mount/, 'dx_hash cannot change live');
  const fixed = await run(node, [cli, 'mount', '-o', 'remount,allow_other', image, m.dir]);
  t.not(fixed.code, 0, 'allow_other cannot change live');
  t.match(fixed.stderr, /allow_other cannot change on a live mount/);
  if (process.getuid?.() === 0) {
    const spin = await run(node, [cli, 'mount', '-o', 'remount,spin_us=200', image, m.dir]);
    t.match(spin.stderr, /spin_us cannot change on a live mount/, 'nor can the poll reader\'s spin budget');
  }
  const bad = await run(node, [cli, 'mount', '-o', 'remount,bogus', image, m.dir]);
  t.match(bad.stderr, /unknown mount option "bogus"/, 'unknown options are refused on remount too');
  t.equal(liveRecords().filter((rec) => rec.mountpoint === m.dir).length, 1, 'no second daemon');
});

t.test('remount of a directory nobody serves is refused and starts nothing', async (t) => {
  const dir = await tempDir(t);
  const image = await memoryImage(t);
  const r = await run(node, [cli, 'mount', '-o', 'remount,ro', image, dir]);
  t.not(r.code, 0);
  t.match(r.stderr, /no o2fuse daemon serves it/);
  t.notOk(o2fuseMountAt(fs.realpathSync(dir)), 'nothing mounted');
  t.equal(liveRecords().filter((rec) => rec.mountpoint === fs.realpathSync(dir)).length, 0, 'no daemon started');
});
