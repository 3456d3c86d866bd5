/**
 * POSIX behaviour of the namespace, at the engine level (Volume directly,
 * nanosecond times, rename flags) and through a real FUSE mount (the kernel
 * in the loop, as applications see it):
 * - times: create sets atime = mtime = ctime and stamps the parent; a write
 *   moves mtime and ctime only; chmod moves ctime only; rename moves the
 *   moved inode's ctime (and a replaced target's) and both directories'
 *   mtime and ctime; link and unlink stamp the inode's ctime and the
 *   directory; utimens sets exactly the times given (through the libfuse
 *   transport: milliseconds, atime and mtime alike; README "Known limits");
 * - rename corner cases: over a file, a directory over an empty directory,
 *   ENOTEMPTY, EISDIR, ENOTDIR, EINVAL (into its own subtree), ENOTEMPTY
 *   (over its own ancestor), onto itself, between two links of one inode,
 *   RENAME_NOREPLACE and RENAME_EXCHANGE (engine);
 * - link counts: a directory has 2 + its subdirectories, through mkdir,
 *   rmdir and renames across directories; hard links count;
 * - EEXIST, ENOTDIR, EISDIR, ENAMETOOLONG (256-byte names; 255 works),
 *   EMLINK (32000 links to one file; 32000 subdirectories without indexed
 *   directories, by mkdir, rename and RENAME_EXCHANGE: engine; past that on
 *   indexed directories: link-count-past-16-bits.test.ts), EFBIG
 *   (a write or truncate past the largest file size);
 * - permissions with -o default_permissions,allow_other, exercised by an
 *   unprivileged uid (setpriv): reading allowed, writing and listing denied
 *   by mode bits, the sticky directory, ownership and chmod.
 * fsck.ocfs2 -fn clean after each.
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { run, runOk } from '../lib/exec';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import type { Volume } from '../../fs/volume';
import type { Attr, Timespec } from '../../fs/api';
import { maxFileBytes } from '../../fs/fileWrite';
import { writableImage, mountEngine, outcome, O_RDWR, O_RDONLY, ROOT, MiB } from './helpers';

const B = (s: string) => Buffer.from(s);
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ns = (ts: Timespec) => BigInt(ts.sec) * 1_000_000_000n + BigInt(ts.nsec);

interface Times { a: bigint; m: bigint; c: bigint }
const timesOf = (a: Attr): Times => ({ a: ns(a.atime), m: ns(a.mtime), c: ns(a.ctime) });

/** Which of atime/mtime/ctime moved between two snapshots ("mc" = mtime and ctime). */
function moved(before: Times, after: Times): string {
  return `${after.a !== before.a ? 'a' : ''}${after.m !== before.m ? 'm' : ''}${after.c !== before.c ? 'c' : ''}`;
}

async function lookupIno(vol: Volume, parent: number, name: string): Promise<number> {
  return (await vol.lookup(parent, B(name))).ino;
}

t.test('engine: times of create, write, chmod, rename, link, unlink, truncate and utimens', async (t) => {
  const image = await writableImage(t, { sizeBytes: 128 * MiB });
  const vol = await mountEngine(image);
  const root = vol.rootIno;
  const a = await vol.mkdir(root, B('a'), 0o755, ROOT);
  const b = await vol.mkdir(root, B('b'), 0o755, ROOT);
  const T = async (ino: number) => timesOf(await vol.getattr(ino));

  let dirA = await T(a.ino);
  const { attr, fh } = await vol.create(a.ino, B('f'), 0o644, O_RDWR, ROOT);
  const f = attr.ino;
  const created = await T(f);
  t.ok(created.a === created.m && created.m === created.c, 'create: atime = mtime = ctime');
  t.ok(Date.now() * 1e6 - Number(created.c) < 5e9, 'and they are now');
  t.equal(moved(dirA, await T(a.ino)), 'mc', 'create: the parent\'s mtime and ctime move');

  let before = await T(f);
  await vol.write(f, fh, 0, B('hello'));
  t.equal(moved(before, await T(f)), 'mc', 'write: mtime and ctime move, atime does not');
  await vol.fsync(f, fh, false);
  before = await T(f);
  await vol.setattr(f, { mode: 0o600 });
  t.equal(moved(before, await T(f)), 'c', 'chmod: ctime only');
  before = await T(f);
  await vol.setattr(f, { uid: 1000, gid: 1000 });
  t.equal(moved(before, await T(f)), 'c', 'chown: ctime only');
  before = await T(f);
  await vol.setattr(f, { size: 2 });
  t.equal(moved(before, await T(f)), 'mc', 'truncate: mtime and ctime');

  before = await T(f);
  dirA = await T(a.ino);
  let dirB = await T(b.ino);
  await vol.rename(a.ino, B('f'), b.ino, B('g'), 0);
  t.equal(moved(before, await T(f)), 'c', 'rename: the moved inode\'s ctime only');
  t.equal(moved(dirA, await T(a.ino)), 'mc', 'rename: the source directory\'s mtime and ctime');
  t.equal(moved(dirB, await T(b.ino)), 'mc', 'rename: the target directory\'s mtime and ctime');

  const other = (await vol.create(b.ino, B('victim'), 0o644, O_RDWR, ROOT));
  await vol.link(other.attr.ino, root, B('victim-link'));
  let victim = await T(other.attr.ino);
  before = await T(f);
  await vol.rename(b.ino, B('g'), b.ino, B('victim'), 0);
  t.equal(moved(before, await T(f)), 'c', 'rename over a target: the moved inode\'s ctime');
  t.equal(moved(victim, await T(other.attr.ino)), 'c', 'and the replaced target\'s ctime (it lost a link)');
  t.equal((await vol.getattr(other.attr.ino)).nlink, 1, 'the replaced target keeps its other link');
  await vol.release(other.attr.ino, other.fh);

  before = await T(f);
  dirA = await T(a.ino);
  await vol.link(f, a.ino, B('f-link'));
  t.equal(moved(before, await T(f)), 'c', 'link: the inode\'s ctime');
  t.equal(moved(dirA, await T(a.ino)), 'mc', 'link: the directory\'s mtime and ctime');
  before = await T(f);
  dirA = await T(a.ino);
  await vol.unlink(a.ino, B('f-link'));
  t.equal(moved(before, await T(f)), 'c', 'unlink: the inode\'s ctime');
  t.equal(moved(dirA, await T(a.ino)), 'mc', 'unlink: the directory\'s mtime and ctime');

  victim = await T(f);
  const given = { atime: { sec: 1_234_567_890, nsec: 123_456_789 }, mtime: { sec: 987_654_321, nsec: 987_654_321 } };
  const after = await vol.setattr(f, given);
  t.same([after.atime, after.mtime], [given.atime, given.mtime], 'utimens: atime and mtime are exactly what was given (ns)');
  t.ok(ns(after.ctime) > victim.c, 'and ctime moves to now');
  await vol.release(f, fh);
  await vol.unmount();
  const again = await mountEngine(image);
  const kept = await again.getattr(f);
  t.same([kept.atime, kept.mtime], [given.atime, given.mtime], 'the given times are on disk (after a remount)');
  await again.unmount();
  await assertFsckClean(t, image);
});

t.test('engine: rename corner cases, RENAME_NOREPLACE and RENAME_EXCHANGE', async (t) => {
  const image = await writableImage(t, { blockSize: 1024, clusterSize: 4096, sizeBytes: 128 * MiB });
  const vol = await mountEngine(image);
  const root = vol.rootIno;
  const mk = async (parent: number, name: string) => (await vol.mkdir(parent, B(name), 0o755, ROOT)).ino;
  const file = async (parent: number, name: string, text: string) => {
    const { attr, fh } = await vol.create(parent, B(name), 0o644, O_RDWR, ROOT);
    await vol.write(attr.ino, fh, 0, B(text));
    await vol.release(attr.ino, fh);
    return attr.ino;
  };
  const d1 = await mk(root, 'd1');
  const d2 = await mk(root, 'd2');
  const sub = await mk(d1, 'sub');
  const deep = await mk(sub, 'deep');
  await mk(root, 'empty');
  const full = await mk(root, 'full');
  await file(full, 'x', 'x');
  const f1 = await file(root, 'f1', 'one');
  const f2 = await file(root, 'f2', 'two');
  const rename = (p: number, n: string, q: number, m: string, flags = 0) => outcome(vol.rename(p, B(n), q, B(m), flags));

  t.equal(await rename(root, 'f1', root, 'f2'), 'ok', 'a file over a file');
  t.equal(await lookupIno(vol, root, 'f2'), f1, 'the name now means the moved file');
  t.equal(await outcome(vol.getattr(f2)), 'ESTALE', 'the replaced file (no links, not open) is freed');
  t.equal(await rename(root, 'd2', root, 'empty'), 'ok', 'a directory over an empty directory');
  t.equal(await lookupIno(vol, root, 'empty'), d2, 'which is replaced');
  t.equal(await rename(root, 'empty', root, 'full'), 'ENOTEMPTY', 'a directory over a non-empty one: ENOTEMPTY');
  t.equal(await rename(root, 'f2', root, 'full'), 'EISDIR', 'a file over a directory: EISDIR');
  t.equal(await rename(root, 'empty', root, 'f2'), 'ENOTDIR', 'a directory over a file: ENOTDIR');
  t.equal(await rename(root, 'd1', deep, 'moved'), 'EINVAL', 'a directory into its own subtree: EINVAL');
  t.equal(await rename(root, 'd1', sub, 'x'), 'EINVAL', 'into its own child: EINVAL');
  t.equal(await rename(sub, 'deep', root, 'd1'), 'ENOTEMPTY', 'over its own ancestor: ENOTEMPTY');
  t.equal(await rename(root, 'f2', root, 'f2'), 'ok', 'onto itself: nothing happens');
  t.equal(await lookupIno(vol, root, 'f2'), f1, 'still there');
  await vol.link(f1, d1, B('f1-link'));
  t.equal(await rename(root, 'f2', d1, 'f1-link'), 'ok', 'between two links of one inode: nothing happens');
  t.equal(await lookupIno(vol, root, 'f2'), f1, 'both names stay');
  t.equal((await vol.getattr(f1)).nlink, 2, 'and both links');
  t.equal(await rename(root, 'nothing', root, 'x'), 'ENOENT', 'a missing source: ENOENT');
  t.equal(await rename(root, 'f2', root, '.'), 'EBUSY', '"." as the target: EBUSY');
  t.equal(await rename(root, 'f2', root, 'x'.repeat(256)), 'ENAMETOOLONG', 'a 256-byte target name: ENAMETOOLONG');

  t.equal(await rename(root, 'f2', root, 'full', RENAME_NOREPLACE), 'EEXIST', 'NOREPLACE over an existing name: EEXIST');
  t.equal(await rename(root, 'f2', root, 'f3', RENAME_NOREPLACE), 'ok', 'NOREPLACE to a free name');
  t.equal(await rename(root, 'f3', root, 'nope', RENAME_EXCHANGE), 'ENOENT', 'EXCHANGE with a missing target: ENOENT');
  t.equal(await rename(root, 'f3', root, 'x', RENAME_EXCHANGE | RENAME_NOREPLACE), 'EINVAL', 'both flags: EINVAL');
  const nlinkRoot = (await vol.getattr(root)).nlink;
  const nlinkD1 = (await vol.getattr(d1)).nlink;
  t.equal(await rename(root, 'f3', d1, 'sub', RENAME_EXCHANGE), 'ok', 'EXCHANGE a file and a directory across directories');
  t.equal(await lookupIno(vol, root, 'f3'), sub, 'the directory took the file\'s name');
  t.equal(await lookupIno(vol, d1, 'sub'), f1, 'and the file the directory\'s');
  t.equal((await vol.readdir(sub)).find((e) => e.name.toString() === '..')?.ino, root, 'the moved directory\'s ".." follows it');
  t.equal((await vol.getattr(root)).nlink, nlinkRoot + 1, 'the directory gaining a subdirectory gains a link');
  t.equal((await vol.getattr(d1)).nlink, nlinkD1 - 1, 'the one losing it loses one');
  t.equal(await rename(root, 'f3', sub, 'deep', RENAME_EXCHANGE), 'EINVAL', 'EXCHANGE a directory with its own child: EINVAL');
  await vol.unmount();
  await assertFsckClean(t, image);
});

t.test('engine: link counts, EEXIST, ENOTDIR, EISDIR, ENAMETOOLONG, EFBIG', async (t) => {
  const image = await writableImage(t, { blockSize: 2048, clusterSize: 8192, sizeBytes: 128 * MiB });
  const vol = await mountEngine(image);
  const root = vol.rootIno;
  const rootLinks = (await vol.getattr(root)).nlink;
  t.equal(rootLinks, 3, 'the root of a fresh volume: 2 + lost+found');
  const d = await vol.mkdir(root, B('d'), 0o755, ROOT);
  t.equal(d.nlink, 2, 'a new directory has 2 links');
  for (let i = 0; i < 5; i++) await vol.mkdir(d.ino, B(`s${i}`), 0o755, ROOT);
  t.equal((await vol.getattr(d.ino)).nlink, 7, '2 + 5 subdirectories');
  t.equal((await vol.getattr(root)).nlink, rootLinks + 1, 'the root gained one');
  await vol.rmdir(d.ino, B('s0'));
  await vol.rename(d.ino, B('s1'), root, B('s1'), 0);
  t.equal((await vol.getattr(d.ino)).nlink, 5, 'rmdir and a move out take one each');
  t.equal((await vol.getattr(root)).nlink, rootLinks + 2, 'the move in adds one');
  const { attr, fh } = await vol.create(d.ino, B('f'), 0o644, O_RDWR, ROOT);
  await vol.link(attr.ino, root, B('f1'));
  await vol.link(attr.ino, d.ino, B('f2'));
  t.equal((await vol.getattr(attr.ino)).nlink, 3, 'hard links count');
  t.equal((await vol.getattr(d.ino)).nlink, 5, 'files do not change a directory\'s count');

  t.equal(await outcome(vol.mkdir(d.ino, B('f'), 0o755, ROOT)), 'EEXIST', 'mkdir over a file: EEXIST');
  t.equal(await outcome(vol.create(d.ino, B('s2'), 0o644, O_RDWR, ROOT)), 'EEXIST', 'create over a directory: EEXIST');
  t.equal(await outcome(vol.symlink(d.ino, B('f2'), B('x'), ROOT)), 'EEXIST', 'symlink over a link: EEXIST');
  t.equal(await outcome(vol.link(attr.ino, d.ino, B('f1'))), 'ok', 'a link under another directory\'s name is fine');
  t.equal(await outcome(vol.link(attr.ino, d.ino, B('f1'))), 'EEXIST', 'but not twice');
  t.equal(await outcome(vol.link(d.ino, root, B('dlink'))), 'EPERM', 'a hard link to a directory: EPERM');
  t.equal(await outcome(vol.create(attr.ino, B('x'), 0o644, O_RDWR, ROOT)), 'ENOTDIR', 'create under a file: ENOTDIR');
  t.equal(await outcome(vol.lookup(attr.ino, B('x'))), 'ENOTDIR', 'lookup under a file: ENOTDIR');
  t.equal(await outcome(vol.rmdir(d.ino, B('f'))), 'ENOTDIR', 'rmdir of a file: ENOTDIR');
  t.equal(await outcome(vol.unlink(root, B('d'))), 'EISDIR', 'unlink of a directory: EISDIR');
  t.equal(await outcome(vol.open(d.ino, O_RDWR)), 'EISDIR', 'opening a directory for writing: EISDIR');
  t.equal(await outcome(vol.setattr(d.ino, { size: 0 })), 'EISDIR', 'truncating a directory: EISDIR');
  t.equal(await outcome(vol.rmdir(root, B('d'))), 'ENOTEMPTY', 'rmdir of a non-empty directory: ENOTEMPTY');

  const n255 = 'n'.repeat(255);
  const n256 = 'n'.repeat(256);
  for (const [what, call] of [
    ['create', (n: string) => vol.create(d.ino, B(n), 0o644, O_RDWR, ROOT).then((r) => vol.release(r.attr.ino, r.fh))],
    ['mkdir', (n: string) => vol.mkdir(d.ino, B(`${n.slice(1)}d`), 0o755, ROOT)],
    ['symlink', (n: string) => vol.symlink(d.ino, B(`${n.slice(1)}s`), B('target'), ROOT)],
    ['link', (n: string) => vol.link(attr.ino, d.ino, B(`${n.slice(1)}l`))],
  ] as const) {
    t.equal(await outcome(call(n256)), 'ENAMETOOLONG', `${what} with a 256-byte name: ENAMETOOLONG`);
    t.equal(await outcome(call(n255)), 'ok', `${what} with a 255-byte name works`);
  }
  t.equal(await outcome(vol.lookup(d.ino, B(n256))), 'ENAMETOOLONG', 'lookup of a 256-byte name: ENAMETOOLONG');
  t.equal(await outcome(vol.unlink(d.ino, B(n256))), 'ENAMETOOLONG', 'unlink of a 256-byte name: ENAMETOOLONG');
  t.equal((await vol.lookup(d.ino, B(n255))).size, 0, 'the 255-byte name is found');
  t.equal(await outcome(vol.symlink(d.ino, B('long-target'), B('t'.repeat(4096)), ROOT)), 'ENAMETOOLONG',
    'a symlink target of PATH_MAX bytes: ENAMETOOLONG');
  t.equal(await outcome(vol.symlink(d.ino, B('longest-target'), B('t'.repeat(4095)), ROOT)), 'ok',
    'a 4095-byte target works (on 2K blocks: a slow symlink over two blocks)');
  t.equal((await vol.readlink(await lookupIno(vol, d.ino, 'longest-target'))).toString(), 't'.repeat(4095), 'and reads back');

  const max = maxFileBytes(vol.geo);
  t.equal(await outcome(vol.write(attr.ino, fh, max, B('x'))), 'EFBIG', 'a write at the largest file size: EFBIG');
  t.equal(await outcome(vol.setattr(attr.ino, { size: max + 1 })), 'EFBIG', 'a truncate past it: EFBIG');
  t.equal(await vol.write(attr.ino, fh, max - 3, B('abcdef')), 3, 'a write across it is cut short there');
  await vol.setattr(attr.ino, { size: 0 });
  await vol.release(attr.ino, fh);
  await vol.unmount();
  await assertFsckClean(t, image);
});

t.test('engine: EMLINK at 32000 links, and at 32000 subdirectories without indexed directories', {
  timeout: 600_000, skip: process.env.O2FUSE_SKIP_SLOW ? 'O2FUSE_SKIP_SLOW is set (about a minute)' : false,
}, async (t) => {
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 512 * MiB });
  let vol = await mountEngine(image);
  let root = vol.rootIno;
  const links = await vol.mkdir(root, B('links'), 0o755, ROOT);
  const { attr, fh } = await vol.create(root, B('f'), 0o644, O_RDWR, ROOT);
  await vol.release(attr.ino, fh);
  let started = Date.now();
  for (let i = 1; i < 32000; i++) await vol.link(attr.ino, links.ino, B(`l${i}`));
  t.comment(`31999 links: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.equal((await vol.getattr(attr.ino)).nlink, 32000, '32000 links');
  t.equal(await outcome(vol.link(attr.ino, links.ino, B('one-more'))), 'EMLINK', 'the next link: EMLINK');
  t.equal(await outcome(vol.rename(root, B('f'), links.ino, B('l1'), 0)), 'ok', 'a rename onto one of its own links is fine');
  await vol.unmount();
  await assertFsckClean(t, image, 'the volume with 32000 links to one file');

  // A directory's count takes more than 16 bits only when it is indexed (ocfs2_read_links_count): without the
  // feature the kernel's ocfs2_link_max is OCFS2_LINK_MAX for directories too.
  const plain = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 512 * MiB, features: 'noindexed-dirs' });
  vol = await mountEngine(plain);
  root = vol.rootIno;
  const dirs = await vol.mkdir(root, B('dirs'), 0o755, ROOT);
  started = Date.now();
  for (let i = 0; i < 31998; i++) await vol.mkdir(dirs.ino, B(`d${i}`), 0o755, ROOT);
  t.comment(`31998 subdirectories: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.equal((await vol.getattr(dirs.ino)).nlink, 32000, 'a directory with 31998 subdirectories has 32000 links');
  t.equal(await outcome(vol.mkdir(dirs.ino, B('one-more'), 0o755, ROOT)), 'EMLINK', 'the next mkdir: EMLINK');
  await vol.mkdir(root, B('extra'), 0o755, ROOT);
  t.equal(await outcome(vol.rename(root, B('extra'), dirs.ino, B('extra'), 0)), 'EMLINK', 'moving a directory into it: EMLINK');
  await vol.release(...(await vol.create(dirs.ino, B('swap'), 0o644, O_RDONLY, ROOT).then((r) => [r.attr.ino, r.fh] as const)));
  t.equal(await outcome(vol.rename(root, B('extra'), dirs.ino, B('swap'), RENAME_EXCHANGE)), 'EMLINK',
    'exchanging a directory outside for a file inside: EMLINK');
  t.equal(await outcome(vol.rename(dirs.ino, B('swap'), root, B('extra'), RENAME_EXCHANGE)), 'EMLINK',
    'the same exchange asked from the other side: EMLINK');
  t.equal(await outcome(vol.rename(dirs.ino, B('d0'), dirs.ino, B('d0-renamed'), 0)), 'ok', 'a rename inside it is fine');
  t.equal(await outcome(vol.create(dirs.ino, B('file'), 0o644, O_RDONLY, ROOT).then((r) => vol.release(r.attr.ino, r.fh))), 'ok',
    'and files are still welcome');
  await vol.unmount();
  await assertFsckClean(t, plain, 'the volume without indexed directories');
});

// ---------------------------------------------------------------- through the mount

/** Runs a snippet of node as uid/gid 1000 with no groups; it prints a JSON object of outcomes. */
async function asUser(snippet: string, env: Record<string, string>): Promise<Record<string, string>> {
  const script = `
const fs = require('node:fs/promises');
const out = {};
const tryIt = async (k, f) => { try { await f(); out[k] = 'ok'; } catch (e) { out[k] = e.code || String(e); } };
(async () => { ${snippet} })().then(() => console.log(JSON.stringify(out)), (e) => { console.error(e); process.exit(2); });
`;
  const r = await run('setpriv', ['--reuid=1000', '--regid=1000', '--clear-groups', process.execPath, '-e', script], {
    env: { ...process.env, ...env },
  });
  if (r.code !== 0) throw new Error(`unprivileged child failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.text) as Record<string, string>;
}

t.test('through the mount: permissions with default_permissions, as an unprivileged user', async (t) => {
  const image = await writableImage(t, { sizeBytes: 128 * MiB });
  const m = await mountO2fuse(t, image, { options: 'default_permissions,allow_other' });
  const at = (p: string) => path.join(m.dir, p);
  await fs.writeFile(at('public'), 'readable');
  await fs.chmod(at('public'), 0o644);
  await fs.mkdir(at('private'), { mode: 0o700 });
  await fs.writeFile(at('private/secret'), 'no');
  await fs.mkdir(at('tmp'));
  await fs.chmod(at('tmp'), 0o1777);
  await fs.writeFile(at('tmp/roots'), 'root owns this');
  await fs.writeFile(at('mine'), 'for uid 1000');
  await fs.chown(at('mine'), 1000, 1000);
  await fs.chmod(at('mine'), 0o600);
  const got = await asUser(`
    const M = process.env.MNT;
    await tryIt('read public', () => fs.readFile(M + '/public'));
    await tryIt('write public', () => fs.appendFile(M + '/public', 'x'));
    await tryIt('create in root dir', () => fs.writeFile(M + '/new', 'x'));
    await tryIt('list private', () => fs.readdir(M + '/private'));
    await tryIt('read private/secret', () => fs.readFile(M + '/private/secret'));
    await tryIt('mkdir in sticky tmp', () => fs.mkdir(M + '/tmp/mine'));
    await tryIt('unlink root file in sticky tmp', () => fs.unlink(M + '/tmp/roots'));
    await tryIt('rename root file in sticky tmp', () => fs.rename(M + '/tmp/roots', M + '/tmp/stolen'));
    await tryIt('write own file', () => fs.appendFile(M + '/mine', ' and more'));
    await tryIt('chmod own file', () => fs.chmod(M + '/mine', 0o640));
    await tryIt('chmod root file', () => fs.chmod(M + '/public', 0o666));
    await tryIt('chown own file to root', () => fs.chown(M + '/mine', 0, 0));
    await tryIt('utimes root file', () => fs.utimes(M + '/public', 1, 1));
    await tryIt('unlink in root dir', () => fs.unlink(M + '/public'));
  `, { MNT: m.dir });
  t.same(got, {
    'read public': 'ok',
    'write public': 'EACCES',
    'create in root dir': 'EACCES',
    'list private': 'EACCES',
    'read private/secret': 'EACCES',
    'mkdir in sticky tmp': 'ok',
    'unlink root file in sticky tmp': 'EPERM',
    'rename root file in sticky tmp': 'EPERM',
    'write own file': 'ok',
    'chmod own file': 'ok',
    'chmod root file': 'EPERM',
    'chown own file to root': 'EPERM',
    'utimes root file': 'EPERM',
    'unlink in root dir': 'EACCES',
  }, 'the kernel enforces the mode bits, sticky bit and ownership kept on the volume');
  t.equal(await fs.readFile(at('mine'), 'utf8'), 'for uid 1000 and more', 'the permitted write landed');
  t.equal((await fs.stat(at('mine'))).mode & 0o7777, 0o640, 'the permitted chmod too');
  t.equal(await fs.readFile(at('public'), 'utf8'), 'readable', 'the denied ones did nothing');
  t.ok((await fs.stat(at('tmp/mine'))).isDirectory(), 'the directory made in the sticky directory exists');
  await m.unmount();
  await assertFsckClean(t, image);
});

t.test('through the mount: times, rename corner cases, link counts and errors', async (t) => {
  const image = await writableImage(t, { blockSize: 1024, clusterSize: 4096, sizeBytes: 128 * MiB });
  const m = await mountO2fuse(t, image);
  const at = (p: string) => path.join(m.dir, p);
  const T = async (p: string) => {
    const s = await fs.lstat(at(p), { bigint: true });
    return { a: s.atimeNs, m: s.mtimeNs, c: s.ctimeNs } as Times;
  };
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: NodeJS.ErrnoException) => e.code ?? String(e));
  const pause = () => sleep(30); // the transport carries milliseconds

  await fs.mkdir(at('a'));
  await fs.mkdir(at('b'));
  await pause();
  let dirA = await T('a');
  await fs.writeFile(at('a/f'), '');
  const c0 = await T('a/f');
  t.ok(c0.a === c0.m && c0.m === c0.c, 'create: atime = mtime = ctime');
  t.equal(moved(dirA, await T('a')), 'mc', 'create: the parent\'s mtime and ctime');
  await pause();
  let before = await T('a/f');
  await fs.appendFile(at('a/f'), 'data');
  t.equal(moved(before, await T('a/f')), 'mc', 'write: mtime and ctime');
  await pause();
  before = await T('a/f');
  await fs.chmod(at('a/f'), 0o600);
  t.equal(moved(before, await T('a/f')), 'c', 'chmod: ctime only');
  await pause();
  before = await T('a/f');
  dirA = await T('a');
  const dirB = await T('b');
  await fs.rename(at('a/f'), at('b/g'));
  t.equal(moved(before, await T('b/g')), 'c', 'rename: the moved inode\'s ctime only');
  t.equal(moved(dirA, await T('a')), 'mc', 'rename: the source directory\'s mtime and ctime');
  t.equal(moved(dirB, await T('b')), 'mc', 'rename: the target directory\'s mtime and ctime');
  await pause();
  await runOk('touch', ['-d', '@1234567890.123', at('b/g')]);
  const s = await fs.stat(at('b/g'));
  t.equal(s.mtimeMs, 1234567890123, 'touch -d (utimens): mtime as given, to the millisecond');
  t.equal(s.atimeMs, 1234567890123, 'and atime');

  // Rename corner cases (the kernel checks some itself; the daemon must agree with the rest).
  await fs.writeFile(at('f1'), 'one');
  await fs.writeFile(at('f2'), 'two');
  await fs.mkdir(at('d1/sub/deep'), { recursive: true });
  await fs.mkdir(at('empty'));
  await fs.mkdir(at('full'));
  await fs.writeFile(at('full/x'), 'x');
  t.equal(await code(fs.rename(at('f1'), at('f2'))), 'ok', 'a file over a file');
  t.equal(await fs.readFile(at('f2'), 'utf8'), 'one', 'the target now has the moved file\'s bytes');
  t.equal(await code(fs.rename(at('d1/sub'), at('empty'))), 'ok', 'a directory over an empty directory');
  t.ok((await fs.stat(at('empty/deep'))).isDirectory(), 'which took its place (with its contents)');
  t.equal(await code(fs.rename(at('empty'), at('full'))), 'ENOTEMPTY', 'over a non-empty directory: ENOTEMPTY');
  t.equal(await code(fs.rename(at('f2'), at('full'))), 'EISDIR', 'a file over a directory: EISDIR');
  t.equal(await code(fs.rename(at('empty'), at('f2'))), 'ENOTDIR', 'a directory over a file: ENOTDIR');
  t.equal(await code(fs.rename(at('empty'), at('empty/deep/x'))), 'EINVAL', 'into its own subtree: EINVAL');
  t.equal(await code(fs.rename(at('f2'), at('f2'))), 'ok', 'onto itself');
  t.equal(await fs.readFile(at('f2'), 'utf8'), 'one', 'which changes nothing');

  // Link counts.
  t.equal((await fs.stat(at('d1'))).nlink, 2, 'd1 lost its subdirectory: 2 links');
  t.equal((await fs.stat(at('empty'))).nlink, 3, 'the moved directory has one subdirectory: 3');
  await fs.link(at('f2'), at('a/f2-link'));
  t.equal((await fs.stat(at('f2'))).nlink, 2, 'a hard link makes 2');
  await fs.mkdir(at('d1/n1'));
  await fs.mkdir(at('d1/n2'));
  t.equal((await fs.stat(at('d1'))).nlink, 4, 'two new subdirectories: 4');

  // Errors.
  t.equal(await code(fs.mkdir(at('f2'))), 'EEXIST', 'mkdir over a file: EEXIST');
  t.equal(await code(fs.link(at('f2'), at('a/f2-link'))), 'EEXIST', 'link over a link: EEXIST');
  t.equal(await code(fs.symlink('x', at('f2'))), 'EEXIST', 'symlink over a file: EEXIST');
  t.equal(await code(fs.writeFile(at('f2/x'), '')), 'ENOTDIR', 'a file as a directory: ENOTDIR');
  t.equal(await code(fs.open(at('d1'), 'r+')), 'EISDIR', 'opening a directory for writing: EISDIR');
  t.equal(await code(fs.unlink(at('d1'))), 'EISDIR', 'unlink of a directory: EISDIR');
  t.equal(await code(fs.rmdir(at('f2'))), 'ENOTDIR', 'rmdir of a file: ENOTDIR');
  t.equal(await code(fs.rmdir(at('full'))), 'ENOTEMPTY', 'rmdir of a non-empty directory: ENOTEMPTY');
  const n255 = 'n'.repeat(255);
  const n256 = 'n'.repeat(256);
  t.equal(await code(fs.writeFile(at(n256), '')), 'ENAMETOOLONG', 'create with a 256-byte name: ENAMETOOLONG');
  t.equal(await code(fs.mkdir(at(n256))), 'ENAMETOOLONG', 'mkdir with a 256-byte name: ENAMETOOLONG');
  t.equal(await code(fs.symlink('x', at(n256))), 'ENAMETOOLONG', 'symlink with a 256-byte name: ENAMETOOLONG');
  t.equal(await code(fs.link(at('f2'), at(n256))), 'ENAMETOOLONG', 'link with a 256-byte name: ENAMETOOLONG');
  t.equal(await code(fs.rename(at('f2'), at(n256))), 'ENAMETOOLONG', 'rename to a 256-byte name: ENAMETOOLONG');
  t.equal(await code(fs.writeFile(at(n255), 'ok')), 'ok', 'a 255-byte name works');
  t.equal(await fs.readFile(at(n255), 'utf8'), 'ok', 'and reads back');
  const fh = await fs.open(at('big'), 'w');
  const max = 4096 * 2 ** 32 - 4096; // 4K clusters
  t.equal(await code(fh.write(Buffer.from('x'), 0, 1, max)), 'EFBIG', 'a write at the largest file size: EFBIG');
  t.equal((await fh.write(Buffer.from('abcdef'), 0, 6, max - 2)).bytesWritten, 2, 'a write across it is cut short');
  await fh.truncate(0);
  await fh.close();
  await m.unmount();
  await assertFsckClean(t, image);
});
