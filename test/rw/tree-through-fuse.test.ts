/**
 * A tree of thousands of files written through a real FUSE mount (bin/o2fuse
 * mount, the background daemon), with every operation applied to a shadow
 * directory on the host as well:
 * - files at block and cluster edges (0, 1, bs-1, bs, bs+1, cs-1, cs, cs+1,
 *   the inline-data limit, several MiB up to 20 MiB), nested directories,
 *   long and non-ASCII names;
 * - then random changes: writes inside and past the end (sparse files with
 *   holes), truncates down and up, renames of files and directories within
 *   and across directories and over existing targets, renames that must fail
 *   (into its own subtree, over a non-empty directory, file over directory,
 *   directory over file), hard links, fast and slow symlinks, deletes of
 *   files and directories. Each call must succeed or fail exactly as it
 *   does on the host.
 * Afterwards the mount reads like the shadow (types, modes, link counts,
 * sizes, bytes, symlink targets); after the unmount fsck.ocfs2 -fn is clean
 * and libocfs2 (o2tool dump) reads the same, content sha256 per path; after a
 * remount the mount reads the same again. Two geometries; seeded ($SEED).
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { dumpEntries, type DumpEntry } from '../lib/oracle';
import { shadowEntries } from '../lib/shadow';
import { rngFrom, type Rng } from '../lib/seed';
import { tempDir } from '../lib/volume';
import { writableImage, MiB } from './helpers';

interface Config {
  name: string;
  blockSize: number;
  clusterSize: number;
  features?: string;
  /** Mount option transport= (the default when unset). */
  transport?: string;
  files: number;
  changes: number;
}

const configs: Config[] = [
  { name: '4K blocks, 4K clusters, inline-data', blockSize: 4096, clusterSize: 4096, files: 1500, changes: 1200 },
  { name: '1K blocks, 16K clusters, no inline-data', blockSize: 1024, clusterSize: 16384, features: 'noinline-data', files: 1500, changes: 1200 },
  // The libfuse transport names files by path: its path cache (fs/fuse/paths.ts) must follow every rename and removal.
  { name: '4K blocks, 4K clusters, through libfuse', blockSize: 4096, clusterSize: 4096, transport: 'libfuse', files: 400, changes: 800 },
];

/** The tree as the workload knows it (paths relative to the root, '/'-separated). */
class Tree {
  files = new Set<string>();
  dirs = new Set<string>(['']);
  symlinks = new Set<string>();

  all(): string[] {
    return [...this.files, ...this.symlinks, ...[...this.dirs].filter((d) => d !== '')];
  }

  /** A path (and everything under it, for a directory) moved. */
  move(from: string, to: string): void {
    const remap = (set: Set<string>) => {
      for (const p of [...set]) {
        if (p === from || p.startsWith(`${from}/`)) {
          set.delete(p);
          set.add(to + p.slice(from.length));
        }
      }
    };
    remap(this.files);
    remap(this.symlinks);
    remap(this.dirs);
  }

  remove(p: string): void {
    this.files.delete(p);
    this.symlinks.delete(p);
    this.dirs.delete(p);
  }

  isEmptyDir(p: string): boolean {
    return !this.all().some((q) => q.startsWith(`${p}/`));
  }
}

const errCode = (e: unknown) => (e as NodeJS.ErrnoException).code ?? String(e);

/** Runs one operation on the host shadow and on the mount: both must succeed, or fail with the same code. */
class Twin {
  ops = 0;
  failures = new Map<string, number>();
  constructor(readonly host: string, readonly mnt: string) {}

  async apply(desc: string, op: (root: string) => Promise<unknown>): Promise<boolean> {
    this.ops++;
    let hostErr = '';
    let mntErr = '';
    await op(this.host).catch((e) => (hostErr = errCode(e)));
    await op(this.mnt).catch((e) => (mntErr = errCode(e)));
    if (hostErr !== mntErr) throw new Error(`${desc}: host ${hostErr || 'ok'}, o2fuse ${mntErr || 'ok'}`);
    if (hostErr) this.failures.set(`${desc.split(' ')[0]} ${hostErr}`, (this.failures.get(`${desc.split(' ')[0]} ${hostErr}`) ?? 0) + 1);
    return !hostErr;
  }
}

function sizesFor(bs: number, cs: number): number[] {
  const inlineMax = bs - 200; // about what an inode holds inline (the exact limit is near: both sides of it get tested)
  return [0, 1, 2, 100, inlineMax - 1, inlineMax, inlineMax + 1, bs - 1, bs, bs + 1, 2 * bs + 7, cs - 1, cs, cs + 1,
    2 * cs, 3 * cs + 5, 64 * 1024 + 3, 200 * 1024];
}

function nameFor(rng: Rng, i: number): string {
  const r = rng.int(0, 19);
  if (r === 0) return `long-${i}-`.padEnd(rng.int(100, 255), 'x');
  if (r === 1) return `näme-${i}-ü€`;
  return `f${i}`;
}

async function writeAt(root: string, rel: string, offset: number, data: Buffer): Promise<void> {
  const fh = await fs.open(path.join(root, rel), 'r+');
  try {
    for (let at = 0; at < data.length; at += MiB) {
      const part = data.subarray(at, Math.min(data.length, at + MiB));
      const { bytesWritten } = await fh.write(part, 0, part.length, offset + at);
      if (bytesWritten !== part.length) throw new Error(`short write ${bytesWritten} of ${part.length}`);
    }
  } finally {
    await fh.close();
  }
}

/** The comparable view: type, mode, link count, size (not for directories: their sizes are the filesystem's), bytes or target. */
function comparable(entries: readonly DumpEntry[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const size = e.type === 'dir' ? '' : ` size=${e.size}`;
    const data = e.type === 'file' ? ` sha256=${e.sha256}` : e.type === 'symlink' ? ` target=${e.target}` : '';
    const mode = e.type === 'symlink' ? '' : ` mode=${e.mode?.toString(8)}`;
    out.set(e.path, `${e.type}${mode} nlink=${e.nlink}${size}${data}`);
  }
  return out;
}

function diff(want: Map<string, string>, got: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, line] of want) if (got.get(p) !== line) out.push(`${p}: want "${line}", got "${got.get(p) ?? 'nothing'}"`);
  for (const p of got.keys()) if (!want.has(p)) out.push(`${p}: unexpected "${got.get(p)}"`);
  return out;
}

const FIELDS = ['mode', 'nlink', 'size', 'data'] as const;

async function runConfig(t: Test, c: Config): Promise<void> {
  const rng = rngFrom(t);
  const { blockSize: bs, clusterSize: cs } = c;
  const image = await writableImage(t, { blockSize: bs, clusterSize: cs, features: c.features, sizeBytes: 1024 * MiB });
  const host = path.join(await tempDir(t), 'shadow');
  await fs.mkdir(host);
  await fs.mkdir(path.join(host, 'lost+found'), { mode: 0o755 });
  const transport = c.transport ? `transport=${c.transport}` : undefined;
  const m = await mountO2fuse(t, image, { options: transport });
  const twin = new Twin(host, m.dir);
  const tree = new Tree();
  const started = Date.now();
  let bytesWritten = 0;
  const data = (n: number) => {
    bytesWritten += n;
    return rng.bytes(n);
  };
  const pick = <T>(s: Iterable<T>): T | undefined => {
    const list = [...s];
    return list.length ? rng.pick(list) : undefined;
  };
  const join = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);

  // Directories, nested.
  for (let i = 0; i < 40; i++) {
    const parent = rng.pick([...tree.dirs]);
    const p = join(parent, `d${i}`);
    if (await twin.apply(`mkdir ${p}`, (r) => fs.mkdir(path.join(r, p)))) tree.dirs.add(p);
  }
  // Files at the edges, and a few big ones.
  const sizes = sizesFor(bs, cs);
  for (let i = 0; i < c.files; i++) {
    const dir = rng.pick([...tree.dirs]);
    const p = join(dir, nameFor(rng, i));
    const size = i < 8 ? rng.pick([MiB, 3 * MiB + 1, 7 * MiB - 1, 20 * MiB - 3]) : rng.pick(sizes);
    const bytes = data(size);
    if (await twin.apply(`create ${p}`, (r) => fs.writeFile(path.join(r, p), bytes, { flag: 'wx', mode: 0o644 }))) tree.files.add(p);
  }
  t.comment(`created ${tree.files.size} files in ${tree.dirs.size - 1} directories: ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // Changes.
  const changeStarted = Date.now();
  for (let k = 0; k < c.changes; k++) {
    const r = rng.int(0, 99);
    const file = pick(tree.files);
    const dir = rng.pick([...tree.dirs]);
    if (r < 15 && file) {
      // Overwrite inside, or write past the end (a hole between).
      const st = await fs.stat(path.join(host, file));
      const past = rng.bool(0.5);
      const offset = past ? st.size + rng.pick([1, bs, cs + 3, MiB, 5 * MiB]) : rng.int(0, st.size);
      const bytes = data(rng.pick([1, bs - 1, cs + 1, 3 * cs, 100_000]));
      await twin.apply(`write ${file} @${offset}+${bytes.length}`, (root) => writeAt(root, file, offset, bytes));
    } else if (r < 25 && file) {
      const st = await fs.stat(path.join(host, file));
      const size = rng.pick([0, 1, bs - 1, cs + 1, rng.int(0, st.size), st.size + rng.int(1, 3 * cs), st.size + 2 * MiB]);
      await twin.apply(`truncate ${file} ${size}`, (root) => fs.truncate(path.join(root, file), size));
    } else if (r < 40) {
      // Rename a file or symlink: same dir, across dirs, or over an existing file.
      const src = rng.bool(0.8) ? file : pick(tree.symlinks);
      if (!src) continue;
      const over = rng.bool(0.3) ? pick(tree.files) : undefined;
      const dst = over ?? join(dir, `r${k}`);
      if (await twin.apply(`rename ${src} -> ${dst}`, (root) => fs.rename(path.join(root, src), path.join(root, dst)))) {
        if (dst !== src) {
          tree.remove(dst);
          tree.move(src, dst);
        }
      }
    } else if (r < 50) {
      // Rename a directory: anywhere, over an (empty or not) directory, over a file, into itself.
      const src = pick([...tree.dirs].filter((d) => d !== ''));
      if (!src) continue;
      const kind = rng.int(0, 4);
      let dst: string;
      if (kind === 0) dst = pick([...tree.dirs].filter((d) => d !== '' && d !== src)) ?? join(dir, `rd${k}`);
      else if (kind === 1 && file) dst = file;
      else if (kind === 2) dst = join(src, `inside${k}`);
      else dst = join(dir, `rd${k}`);
      const ok = await twin.apply(`rename dir ${src} -> ${dst}`, (root) => fs.rename(path.join(root, src), path.join(root, dst)));
      if (ok && dst !== src) {
        tree.remove(dst);
        tree.move(src, dst);
      }
    } else if (r < 58 && file) {
      const dst = join(dir, `l${k}`);
      if (await twin.apply(`link ${file} -> ${dst}`, (root) => fs.link(path.join(root, file), path.join(root, dst)))) tree.files.add(dst);
    } else if (r < 66) {
      const len = rng.pick([1, 10, 60, bs - 201, bs - 1, bs + 1, 4000, 4095]);
      const target = `t${k}-`.padEnd(len, 'abcdefgh/');
      const dst = join(dir, `s${k}`);
      if (await twin.apply(`symlink ${dst} (${len})`, (root) => fs.symlink(target, path.join(root, dst)))) tree.symlinks.add(dst);
    } else if (r < 72 && file) {
      if (await twin.apply(`unlink ${file}`, (root) => fs.unlink(path.join(root, file)))) tree.remove(file);
    } else if (r < 76) {
      const s = pick(tree.symlinks);
      if (s && (await twin.apply(`unlink ${s}`, (root) => fs.unlink(path.join(root, s))))) tree.remove(s);
    } else if (r < 79) {
      const d = pick([...tree.dirs].filter((x) => x !== ''));
      if (!d) continue;
      // Empty a small one first (rmdir of a non-empty one must fail the same way).
      const inside = tree.all().filter((q) => q.startsWith(`${d}/`));
      if (inside.length <= 6) {
        for (const p of inside.sort((a, b) => b.length - a.length)) {
          const isDir = tree.dirs.has(p);
          if (await twin.apply(`${isDir ? 'rmdir' : 'unlink'} ${p}`, (root) => (isDir ? fs.rmdir(path.join(root, p)) : fs.unlink(path.join(root, p))))) tree.remove(p);
        }
      }
      if (await twin.apply(`rmdir ${d}`, (root) => fs.rmdir(path.join(root, d)))) tree.remove(d);
    } else if (r < 90) {
      const p = join(dir, `n${k}`);
      const bytes = data(rng.pick(sizes));
      if (await twin.apply(`create ${p}`, (root) => fs.writeFile(path.join(root, p), bytes, { flag: 'wx', mode: 0o644 }))) tree.files.add(p);
    } else {
      const p = join(dir, `nd${k}`);
      if (await twin.apply(`mkdir ${p}`, (root) => fs.mkdir(path.join(root, p)))) tree.dirs.add(p);
    }
  }
  const failures = [...twin.failures].map(([k, v]) => `${k}: ${v}`).join(', ');
  t.comment(`${c.changes} random changes (${twin.ops} calls on each side) in ${((Date.now() - changeStarted) / 1000).toFixed(1)} s; ` +
    `expected failures: ${failures || 'none'}; ${(bytesWritten / MiB).toFixed(0)} MiB written in all`);
  t.pass(`every call succeeded or failed as on the host (${twin.ops})`);

  const want = comparable(await shadowEntries(host, { fields: FIELDS }));
  // Hard links are separate inodes to the kernel's FUSE side: let its 1 s attribute cache expire first.
  await new Promise((r) => setTimeout(r, 1500));
  let compareStarted = Date.now();
  t.same(diff(want, comparable(await shadowEntries(m.dir, { fields: FIELDS }))).slice(0, 20), [],
    `the mount reads like the shadow (${want.size} paths)`);
  t.comment(`compare through the mount: ${((Date.now() - compareStarted) / 1000).toFixed(1)} s`);
  await m.unmount();
  await assertFsckClean(t, image, 'volume after the workload');
  compareStarted = Date.now();
  t.same(diff(want, comparable(await dumpEntries(image, { fields: FIELDS }))).slice(0, 20), [],
    `libocfs2 (o2tool dump) reads the same ${want.size} paths: modes, link counts, sizes, sha256 per file, targets`);
  t.comment(`o2tool dump: ${((Date.now() - compareStarted) / 1000).toFixed(1)} s`);

  const again = await mountO2fuse(t, image, { options: ['ro', transport].filter(Boolean).join(',') });
  t.same(diff(want, comparable(await shadowEntries(again.dir, { fields: FIELDS }))).slice(0, 20), [],
    'after a remount the mount still reads like the shadow');
  await again.unmount();
  await assertFsckClean(t, image, 'volume after the read-only remount');
  t.comment(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

for (const c of configs) {
  t.test(`a tree built through FUSE reads back like its shadow: ${c.name}`, { timeout: 600_000 }, async (t) => {
    try {
      await runConfig(t, c);
    } catch (err) {
      t.fail((err as Error).message, { stack: (err as Error).stack });
    }
  });
}
