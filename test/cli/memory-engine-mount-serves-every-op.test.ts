/**
 * The fuse-native adapter end to end, over the in-memory engine and the real
 * command line: every file operation reaches the engine as the right call,
 * O_DIRECT is visible in open flags (mknod + open, no create), utimens
 * stamps what fuse-native can carry, and unmount writes back.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants } from 'node:fs';
import { mountO2fuse } from '../lib/mount';
import { run } from '../lib/exec';
import { tempDir } from '../lib/volume';
import { assertNothingLeft, memoryCliCommand } from './helpers';

interface OpRecord {
  op: string;
  [key: string]: unknown;
}

function readOpLog(file: string): OpRecord[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as OpRecord);
}

t.test('file operations through the mount reach the engine', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'mem.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  const opLog = path.join(dir, 'ops.jsonl');
  const marker = path.join(dir, 'unmounted');
  const m = await mountO2fuse(t, image, { command: memoryCliCommand(), env: { O2FUSE_TEST_OPLOG: opLog, O2FUSE_TEST_MARKER: marker } });
  const p = (name: string) => path.join(m.dir, name);
  const fsp = fs.promises;

  t.equal(await fsp.readFile(p('hello'), 'utf8'), 'hello from the memory engine\n', 'read');
  t.same((await fsp.readdir(m.dir)).sort(), ['hello'], 'readdir');

  await fsp.writeFile(p('a.txt'), 'alpha');
  t.equal(await fsp.readFile(p('a.txt'), 'utf8'), 'alpha', 'write then read');
  const mknod = readOpLog(opLog).find((r) => r.op === 'mknod');
  t.ok(mknod, 'a new file is made with mknod (create is not implemented)');
  t.same(mknod?.caller, { uid: 0, gid: 0 }, 'new files belong to the daemon user');

  const big = Buffer.alloc(3 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
  await fsp.writeFile(p('big'), big);
  t.ok((await fsp.readFile(p('big'))).equals(big), '3 MiB round trip');

  const fh = await fsp.open(p('big'), constants.O_RDWR | constants.O_DIRECT);
  await fh.close();
  const opens = readOpLog(opLog).filter((r) => r.op === 'open');
  t.ok(opens.some((r) => r.direct === true), 'O_DIRECT reaches the engine in the open flags');

  await fsp.mkdir(p('d'));
  await fsp.rename(p('a.txt'), p('d/b.txt'));
  t.same(await fsp.readdir(p('d')), ['b.txt'], 'mkdir + rename');
  await t.rejects(fsp.stat(p('a.txt')), { code: 'ENOENT' }, 'the old name is gone');
  t.equal(await fsp.readFile(p('d/b.txt'), 'utf8'), 'alpha', 'the renamed file keeps its data');

  await fsp.symlink('d/b.txt', p('sl'));
  t.equal(await fsp.readlink(p('sl')), 'd/b.txt', 'symlink + readlink');
  t.equal(await fsp.readFile(p('sl'), 'utf8'), 'alpha', 'following the symlink');

  await fsp.link(p('d/b.txt'), p('hard'));
  t.equal((await fsp.stat(p('hard'))).nlink, 2, 'link raises the link count');
  t.equal((await fsp.stat(p('hard'))).ino, (await fsp.lstat(p('d/b.txt'))).ino, 'both names have one st_ino');

  await fsp.truncate(p('hard'), 2);
  t.equal(await fsp.readFile(p('hard'), 'utf8'), 'al', 'truncate');
  await fsp.chmod(p('hard'), 0o600);
  t.equal((await fsp.stat(p('hard'))).mode & 0o7777, 0o600, 'chmod');
  await fsp.chown(p('hard'), 12, 34);
  const owned = await fsp.stat(p('hard'));
  t.same([owned.uid, owned.gid], [12, 34], 'chown');

  const when = new Date('2001-02-03T04:05:06.789Z');
  await fsp.utimes(p('hard'), when, when);
  const stamped = await fsp.stat(p('hard'));
  t.equal(stamped.mtimeMs, when.getTime(), 'utimes with one time for both: mtime (milliseconds)');
  t.equal(stamped.atimeMs, when.getTime(), 'utimes with one time for both: atime');

  const sfs = await fsp.statfs(m.dir);
  t.equal(sfs.blocks, 1 << 20, 'statfs blocks');
  t.equal(sfs.bsize, 4096, 'statfs block size');

  await fsp.unlink(p('hard'));
  await fsp.unlink(p('sl'));
  await fsp.unlink(p('d/b.txt'));
  await fsp.rmdir(p('d'));
  await t.rejects(fsp.rmdir(p('hello')), { code: 'ENOTDIR' }, 'errors come back as their errno');
  await t.rejects(fsp.readFile(p('nope')), { code: 'ENOENT' });
  await t.rejects(fsp.writeFile(p('x'.repeat(256)), 'x'), { code: 'ENAMETOOLONG' }, '256-byte names are refused');
  t.same((await fsp.readdir(m.dir)).sort(), ['big', 'hello'], 'unlink + rmdir');

  const r = await run('umount', [m.dir]);
  t.equal(r.code, 0, `umount: ${r.stderr}`);
  await m.unmount();
  t.equal(fs.readFileSync(marker, 'utf8'), 'unmounted\n', 'engine.unmount() ran after umount');
  t.equal(readOpLog(opLog).pop()?.op, 'unmount', 'unmount is the last engine call');
  assertNothingLeft(t, m.dir, 'after umount');
});

t.test('a read-only mount refuses writes in the kernel', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'mem.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  const m = await mountO2fuse(t, image, { command: memoryCliCommand(), options: 'ro' });
  await t.rejects(fs.promises.writeFile(path.join(m.dir, 'x'), 'x'), { code: 'EROFS' });
  t.equal(await fs.promises.readFile(path.join(m.dir, 'hello'), 'utf8'), 'hello from the memory engine\n');
});
