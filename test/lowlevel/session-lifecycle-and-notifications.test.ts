/**
 * How a low-level session ends, and what it can tell the kernel:
 * - umount -l of a busy mount detaches it at once; the session serves the
 *   open file until it is closed, then ends (no hung mount);
 * - abort() (fusectl) ends a session from the kernel side;
 * - a refused mount (no such mount point) leaves no mount and no session;
 * - the source is kept exactly as given, relative or odd;
 * - inval_entry / inval_inode / delete notifications reach the kernel:
 *   a name cached for an hour is looked up again after inval_entry.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Volume } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';
import { LowLevelSession, MountError } from '../../fs/fuse/lowlevel/session';
import { assertFsckClean } from '../lib/fsck';
import { makeImage, tempDir } from '../lib/volume';
import { IMAGE, lowLevelUnavailable, mountLowLevel, stopSession, waitEnded } from './helpers';

const skip = lowLevelUnavailable();

t.test('umount -l of a busy mount: detached at once, the session ends when the last file closes', { skip }, async (t) => {
  const m = await mountLowLevel(t);
  await m.shOk(`printf 'still here\\n' > ${m.mnt}/a`);
  // A child holds the file open across the unmount, then reads it.
  const child = spawn('sh', ['-c', `exec 3<${m.mnt}/a; echo open; read go; cat <&3`], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));

  const plain = await m.session.unmount(false);
  t.notOk(plain.ok, `a plain unmount of a busy mount fails (${plain.message})`);
  const lazy = await m.session.unmount(true);
  t.ok(lazy.ok && lazy.lazy, 'with lazyIfBusy it is detached');
  t.notOk(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${m.mnt} `), 'the mount point is free at once');
  t.ok(m.session.alive(), 'the session still serves the open file');
  child.stdin.end('go\n');
  await closed;
  t.equal(out, 'open\nstill here\n', 'the open file reads after the detach');
  t.ok(await waitEnded(m.session, 30_000), 'the session ends once the file is closed');
  await m.close();
  await assertFsckClean(t, m.image);
});

t.test('abort() ends a session from the kernel side', { skip }, async (t) => {
  const m = await mountLowLevel(t);
  await m.shOk(`ls ${m.mnt}`);
  t.ok(await m.session.abort(), 'the fusectl abort file took the write');
  t.ok(await waitEnded(m.session, 30_000), 'the session ended');
  const after = await m.sh(`ls ${m.mnt}`);
  t.not(after.code, 0, `the dead mount refuses access until unmounted (${after.stderr.trim()})`);
  await m.close();
  t.notOk(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${m.mnt} `), 'close() removed the dead mount');
  await assertFsckClean(t, m.image);
});

t.test('a refused mount leaves nothing behind; the source is kept as given', { skip }, async (t) => {
  const dir = await tempDir(t, 'o2fuse-lowlevel-');
  const image = await makeImage(t, { ...IMAGE, dir });
  const odd = path.join(dir, '-odd name,x.img');
  fs.renameSync(image, odd);
  const engine = await Volume.mount(await FileDevice.open(odd), { readOnly: true });
  t.teardown(() => engine.unmount());
  const fdsBefore = fs.readdirSync('/proc/self/fd').length;
  await t.rejects(LowLevelSession.mount(engine, path.join(dir, 'missing'), { fsname: odd }), MountError, 'mount on a missing directory is refused');
  t.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore, 'the /dev/fuse descriptor was closed');

  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const relative = path.relative(process.cwd(), odd);
  const session = await LowLevelSession.mount(engine, mnt, { fsname: relative, readOnly: true, noatime: true, dev: false, suid: false });
  t.teardown(() => stopSession(session));
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.includes(` ${mnt} `)) ?? '';
  const [before, after] = line.split(' - ');
  t.equal(after.split(' ')[0], 'fuse.o2fuse', 'type fuse.o2fuse');
  t.equal(after.split(' ')[1].replace(/\\040/g, ' '), relative, 'the source is the relative path exactly as given');
  t.match(before.split(' ')[5], /^ro,nosuid,nodev,noatime/, 'ro, nosuid, nodev, noatime reached the kernel');
  t.match(after, /user_id=0,group_id=0/, 'the kernel took the fuse options');
  t.equal(await stopSession(session), 'unmounted');
});

t.test('notifications: inval_entry makes the kernel look a cached name up again', { skip }, async (t) => {
  const m = await mountLowLevel(t, { options: { entryTimeoutSec: 3600, attrTimeoutSec: 3600 } });
  const root = m.engine.rootIno;
  await m.shOk(`printf x > ${m.mnt}/a && stat ${m.mnt}/a > /dev/null`);
  const lookups = () => m.session.stats().byOpcode.LOOKUP ?? 0;

  // Other test files running beside this one drop the kernel's caches (echo 3 > /proc/sys/vm/drop_caches), which
  // evicts the name too: a second look rules that out, while a kernel that looked the name up every time would
  // fail both.
  let asked = -1;
  for (let attempt = 0; attempt < 3 && asked !== 0; attempt++) {
    const cached = lookups();
    await m.shOk(`stat ${m.mnt}/a > /dev/null && stat ${m.mnt}/a > /dev/null`);
    asked = lookups() - cached;
  }
  t.equal(asked, 0, 'a name cached for an hour is not looked up again');
  const base = lookups();
  t.equal(await m.session.invalEntry(root, Buffer.from('a')), true, 'inval_entry of a cached name');
  await m.shOk(`stat ${m.mnt}/a > /dev/null`);
  t.equal(lookups(), base + 1, 'after inval_entry the kernel asks again');
  t.equal(await m.session.invalEntry(root, Buffer.from('never-seen')), false, 'inval_entry of an unknown name: false');

  t.equal(await m.session.invalInode(root), true, 'inval_inode of the root (always cached)');
  t.equal(await m.session.invalInode(root, -1), true, 'inval_inode of attributes only');
  t.equal(await m.session.invalInode(999_999_999), false, 'inval_inode of an inode the kernel does not have: false');

  const ino = Number((await m.shOk(`stat -c %i ${m.mnt}/a`)).trim());
  t.equal(await m.session.notifyDelete(root, ino, Buffer.from('a')), true, 'notify_delete of a cached name');
  t.ok(m.session.stats().notifications >= 6, 'notifications are counted');
  await m.close();
  await assertFsckClean(t, m.image);
});
