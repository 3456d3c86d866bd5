/**
 * A few corpus cases (cases.ts) through the real daemon (`bin/o2fuse mount`, read-only but for one): the
 * errno of the damaged operation reaches the caller through the kernel (EIO), the daemon
 * keeps running and serving (the next ls and reads work, the same failing call fails the
 * same way again), and it unmounts and exits normally afterwards. A refused mount
 * (dirty journal, unknown incompat feature) makes `o2fuse mount` exit non-zero with the
 * engine's message and leaves nothing mounted.
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { o2fuseMountAt } from '../../fs/fuse/mountinfo';
import { pidAlive } from '../../bin/registry';
import { MountFailed, mountO2fuse, type MountedO2fuse } from '../lib/mount';
import { type Base, contentOf, copyOf, makeBase } from './corpus';
import { CASES, type CorruptCase } from './cases';
import { fsckComplaints } from './check';

const CASE_TIMEOUT_MS = 120_000;
const CALL_MS_MAX = 20_000;

function byName(prefix: string): CorruptCase {
  const c = CASES.find((x) => x.name.startsWith(prefix));
  if (!c) throw new Error(`no corpus case "${prefix}"`);
  return c;
}

/** The errno code a VFS call fails with ('OK' if it succeeds; 'HANG' if it does not settle in time). */
async function codeOf(p: Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('HANG'), CALL_MS_MAX);
  });
  const outcome = p.then(() => 'OK', (err: NodeJS.ErrnoException) => err.code ?? String(err));
  return Promise.race([outcome, limit]).finally(() => clearTimeout(timer));
}

async function damagedImage(base: Base, c: CorruptCase): Promise<string> {
  const image = await copyOf(base, `fuse-${c.name}`);
  await c.damage(image, base);
  return image;
}

async function damagedMount(t: Test, base: Base, c: CorruptCase): Promise<MountedO2fuse> {
  return mountO2fuse(t, await damagedImage(base, c), { options: 'ro' });
}


/** After the damage: the daemon is alive, ls / and the untouched files still work. */
async function stillServing(t: Test, m: MountedO2fuse): Promise<void> {
  t.ok(pidAlive(m.pid), `the daemon (pid ${m.pid}) is still running`);
  const names = (await fs.readdir(m.dir)).sort().join(' ');
  t.equal(names, 'bigdir dir frag inl keep link lost+found small', 'ls / still works');
  t.ok((await fs.readFile(path.join(m.dir, 'keep'))).equals(contentOf('/keep')), '/keep still reads right');
  t.ok((await fs.readFile(path.join(m.dir, 'dir', 'sibling'))).equals(contentOf('/dir/sibling')), '/dir/sibling still reads right');
  t.equal(await fs.readlink(path.join(m.dir, 'link')), 'keep', '/link still resolves');
}

t.test('damaged images through the FUSE daemon', async (t) => {
  const base = await makeBase(t, 'default');

  await t.test('an extent block with a bad signature: read gets EIO, stat and everything else work', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const m = await damagedMount(t, base, byName('extent block signature of /frag'));
    const frag = path.join(m.dir, 'frag');
    t.equal(await codeOf(fs.readFile(frag)), 'EIO', 'cat /frag fails with EIO');
    t.equal((await fs.stat(frag)).size, contentOf('/frag').length, 'stat /frag works (the inode is fine)');
    t.equal(await codeOf(fs.readFile(frag)), 'EIO', 'cat /frag fails with EIO again');
    await stillServing(t, m);
    await m.unmount();
    t.notOk(pidAlive(m.pid), 'the daemon exits after the unmount');
  });

  await t.test('an inode with a bad signature: stat gets EIO, its directory still lists', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const m = await damagedMount(t, base, byName('inode signature of /dir/victim'));
    const victim = path.join(m.dir, 'dir', 'victim');
    t.equal(await codeOf(fs.stat(victim)), 'EIO', 'stat /dir/victim fails with EIO');
    t.equal(await codeOf(fs.readFile(victim)), 'EIO', 'cat /dir/victim fails with EIO');
    t.same((await fs.readdir(path.join(m.dir, 'dir'))).sort(), ['sibling', 'victim'], 'ls /dir lists both names (readdir does not need the inode)');
    await stillServing(t, m);
    await m.unmount();
    t.notOk(pidAlive(m.pid), 'the daemon exits after the unmount');
  });

  await t.test('a dir block with rec_len 0: ls of that directory gets EIO, ls / works', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const m = await damagedMount(t, base, byName('dir block record with rec_len 0'));
    t.equal(await codeOf(fs.readdir(path.join(m.dir, 'bigdir'))), 'EIO', 'ls /bigdir fails with EIO');
    t.equal(await codeOf(fs.stat(path.join(m.dir, 'bigdir', 'f00150'))), 'EIO', 'stat /bigdir/f00150 fails with EIO (lookup scans the damaged block)');
    await stillServing(t, m);
    t.equal(await codeOf(fs.readdir(path.join(m.dir, 'bigdir'))), 'EIO', 'ls /bigdir still fails with EIO');
    await m.unmount();
  });

  await t.test('an index that lost a block\'s names, mounted read-write: rm of one gets EIO and changes nothing', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const image = await damagedImage(base, byName('/bigdir\'s index lost the entries of its first block\'s names'));
    const before = await fsckComplaints(image);
    t.ok(before.some((l) => l.includes('"f00000"')), 'fsck.ocfs2 -fn reports the name as missing from the index');
    const m = await mountO2fuse(t, image);
    const bigdir = path.join(m.dir, 'bigdir');
    t.equal(await codeOf(fs.unlink(path.join(bigdir, 'f00000'))), 'EIO', 'rm /bigdir/f00000 fails with EIO');
    t.equal(await codeOf(fs.unlink(path.join(bigdir, 'f00000'))), 'EIO', 'and again when retried');
    t.equal(await codeOf(fs.stat(path.join(bigdir, 'f00000'))), 'OK', 'the name is still there (stat)');
    const names = await fs.readdir(bigdir);
    t.equal(names.length, 200, 'ls /bigdir lists all 200 names');
    t.ok(names.includes('f00000'), 'f00000 among them');
    await fs.writeFile(path.join(bigdir, 'added'), 'x');
    await fs.unlink(path.join(bigdir, 'added'));
    t.pass('a name added to and removed from the same directory works (the index holds it)');
    await stillServing(t, m);
    await m.unmount();
    t.notOk(pidAlive(m.pid), 'the daemon exits after the unmount');
    t.same(await fsckComplaints(image), before, 'fsck.ocfs2 -fn finds what it found before the mount: the failed rm wrote nothing');
  });

  for (const [prefix, message] of [
    ['journal:0000 marked dirty', /journal of slot\(s\) 0 needs recovery/],
    ['superblock carries an unknown incompat feature bit', /unsupported incompat feature\(s\): 0x10000/],
  ] as const) {
    await t.test(`refused mount through the CLI: ${prefix}`, { timeout: CASE_TIMEOUT_MS }, async (t) => {
      const c = byName(prefix);
      const image = await copyOf(base, `fuse-${c.name}`);
      await c.damage(image, base);
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'o2fuse-corrupt-mnt-'));
      t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
      const err = await mountO2fuse(t, image, { options: 'ro', dir }).then(
        (m) => m.unmount().then(() => new Error('the mount succeeded')),
        (e: Error) => e,
      );
      t.ok(err instanceof MountFailed, 'o2fuse mount fails', { diagnostic: !(err instanceof MountFailed), error: err.message });
      if (err instanceof MountFailed) {
        t.not(err.code, 0, `o2fuse mount exits ${err.code}`);
        t.match(err.stderr, message, 'and says why');
        t.match(err.stderr, image, 'naming the device');
      }
      t.notOk(o2fuseMountAt(dir), 'nothing is mounted on the mount point');
    });
  }
});
