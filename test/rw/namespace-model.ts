/**
 * An in-memory model of a directory tree and a random driver that applies
 * the same namespace operations to the model and to the engine (Volume),
 * predicting each call's errno as Linux would return it, and checks the
 * engine against the model after every step.
 *
 * The model knows inodes by the numbers the engine gave them; files carry
 * their bytes, symlinks their targets, directories their entries and parent.
 * Files that lost their last name while open live on (orphans) until their
 * last handle goes.
 */
import type { Volume } from '../../fs/volume';
import type { Attr } from '../../fs/api';
import { errnoOf } from '../../fs/errors';
import { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK } from '../../fs/format/constants';
import type { Rng } from '../lib/seed';
import { O_RDONLY, O_RDWR, ROOT, MiB } from './helpers';

export type Kind = 'file' | 'dir' | 'symlink';

export interface MNode {
  ino: number;
  kind: Kind;
  mode: number;
  /** Names pointing at a file or symlink (directories: computed). */
  links: number;
  data: Buffer;
  target: Buffer;
  entries: Map<string, number>;
  /** Directories: the parent's inode and this directory's name there. */
  parent: number;
  name: string;
  /** A directory removed while open (an orphan until its last handle goes). */
  removed?: boolean;
}

export interface Handle {
  ino: number;
  fh: number;
}

const TYPE_BITS: Record<Kind, number> = { file: S_IFREG, dir: S_IFDIR, symlink: S_IFLNK };

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

/** A mismatch between the engine and the model: the run stops there. */
export class Divergence extends Error {
  constructor(message: string, readonly detail: Record<string, unknown> = {}) {
    super(message);
    this.name = 'Divergence';
  }
}

export class Model {
  readonly nodes = new Map<number, MNode>();
  readonly open: Handle[] = [];
  /** Directories the workload leaves alone (lost+found). */
  readonly reserved = new Set<number>();

  constructor(readonly rootIno: number) {}

  static async load(vol: Volume): Promise<Model> {
    const m = new Model(vol.rootIno);
    const visit = async (ino: number, parent: number, name: string): Promise<void> => {
      const a = await vol.getattr(ino);
      const node = m.add(ino, kindOf(a.mode), a.mode & 0o7777, parent, name);
      if (node.kind === 'file') {
        node.data = await readAll(vol, ino, a.size);
        node.links = a.nlink;
      } else if (node.kind === 'symlink') {
        node.target = await vol.readlink(ino);
        node.links = a.nlink;
      } else {
        for (const e of await vol.readdir(ino)) {
          const n = e.name.toString('latin1');
          if (n === '.' || n === '..') continue;
          node.entries.set(n, e.ino);
          if (!m.nodes.has(e.ino)) await visit(e.ino, ino, n);
        }
      }
    };
    await visit(vol.rootIno, vol.rootIno, '');
    return m;
  }

  add(ino: number, kind: Kind, mode: number, parent: number, name: string): MNode {
    const node: MNode = { ino, kind, mode, links: kind === 'dir' ? 0 : 1, data: Buffer.alloc(0), target: Buffer.alloc(0), entries: new Map(), parent, name };
    this.nodes.set(ino, node);
    return node;
  }

  node(ino: number): MNode {
    const n = this.nodes.get(ino);
    if (!n) throw new Error(`model: no inode ${ino}`);
    return n;
  }

  nlink(n: MNode): number {
    if (n.kind !== 'dir') return n.links;
    if (n.removed) return 0;
    let subdirs = 0;
    for (const ino of n.entries.values()) if (this.node(ino).kind === 'dir') subdirs++;
    return 2 + subdirs;
  }

  isOpen(ino: number): boolean {
    return this.open.some((h) => h.ino === ino);
  }

  /** Every live directory (reachable from the root), root first. */
  dirs(): MNode[] {
    const out: MNode[] = [];
    const walk = (n: MNode) => {
      out.push(n);
      for (const ino of n.entries.values()) {
        const c = this.node(ino);
        if (c.kind === 'dir') walk(c);
      }
    };
    walk(this.node(this.rootIno));
    return out;
  }

  path(dirIno: number, name?: string): string {
    const parts: string[] = [];
    let n = this.node(dirIno);
    while (n.ino !== this.rootIno) {
      parts.unshift(n.name);
      n = this.node(n.parent);
    }
    if (name !== undefined) parts.push(name);
    return `/${parts.map(short).join('/')}`;
  }

  /** Whether directory `anc` is `dir` or above it. */
  isAncestor(anc: number, dir: number): boolean {
    let n = this.node(dir);
    for (;;) {
      if (n.ino === anc) return true;
      if (n.ino === this.rootIno) return false;
      n = this.node(n.parent);
    }
  }

  /** A name went away from a file or symlink: forget it unless it still has names or handles. */
  dropFileLink(n: MNode): void {
    n.links--;
    if (n.links === 0 && !this.isOpen(n.ino)) this.nodes.delete(n.ino);
  }

  removeDir(n: MNode): void {
    if (this.isOpen(n.ino)) n.removed = true;
    else this.nodes.delete(n.ino);
  }

  /** No name left (a file's last link gone, a directory removed): lives only while open. */
  unlinked(n: MNode): boolean {
    return n.kind === 'dir' ? n.removed === true : n.links === 0;
  }

  /** Forgets the handles (released, or dropped by an unmount) and the orphans they kept. */
  closeAll(): void {
    const open = this.open.splice(0);
    for (const h of open) {
      const n = this.nodes.get(h.ino);
      if (n && this.unlinked(n)) this.nodes.delete(h.ino);
    }
  }
}

export function kindOf(mode: number): Kind {
  switch (mode & S_IFMT) {
    case S_IFDIR: return 'dir';
    case S_IFLNK: return 'symlink';
    case S_IFREG: return 'file';
    default: throw new Error(`unexpected mode 0${mode.toString(8)}`);
  }
}

function short(name: string): string {
  return name.length > 24 ? `${name.slice(0, 8)}…(${name.length})` : name;
}

export async function readAll(vol: Volume, ino: number, size: number): Promise<Buffer> {
  const fh = await vol.open(ino, O_RDONLY);
  try {
    return await vol.read(ino, fh, 0, size + 1);
  } finally {
    await vol.release(ino, fh);
  }
}

// ---------------------------------------------------------------- checks

function expectEq(what: string, got: unknown, want: unknown, detail: Record<string, unknown> = {}): void {
  if (got !== want) throw new Divergence(`${what}: engine says ${String(got)}, model ${String(want)}`, detail);
}

/** One directory: readdir (names, inodes, types, "." and ".."), lookups and attributes of every entry. */
export async function checkDir(vol: Volume, m: Model, dirIno: number): Promise<void> {
  const d = m.node(dirIno);
  const where = m.path(dirIno);
  const attr = await vol.getattr(dirIno);
  expectEq(`${where}: type`, attr.mode & S_IFMT, S_IFDIR);
  expectEq(`${where}: nlink (2 + subdirectories)`, attr.nlink, m.nlink(d));
  const listed = await vol.readdir(dirIno);
  const seen = new Map<string, { ino: number; type: number }>();
  for (const e of listed) {
    const name = e.name.toString('latin1');
    if (seen.has(name)) throw new Divergence(`${where}: readdir lists "${short(name)}" twice`);
    seen.set(name, { ino: e.ino, type: e.type });
  }
  expectEq(`${where}: "." points at itself`, seen.get('.')?.ino, dirIno);
  expectEq(`${where}: ".." points at the parent`, seen.get('..')?.ino, d.parent);
  seen.delete('.');
  seen.delete('..');
  const extra = [...seen.keys()].filter((n) => !d.entries.has(n)).map(short);
  const missing = [...d.entries.keys()].filter((n) => !seen.has(n)).map(short);
  if (extra.length || missing.length) throw new Divergence(`${where}: readdir differs from the model`, { extra, missing });
  for (const [name, ino] of d.entries) {
    const c = m.node(ino);
    const e = seen.get(name)!;
    expectEq(`${m.path(dirIno, name)}: readdir inode`, e.ino, ino);
    expectEq(`${m.path(dirIno, name)}: readdir type`, e.type, TYPE_BITS[c.kind]);
    const a = await vol.lookup(dirIno, Buffer.from(name, 'latin1'));
    checkAttr(m, m.path(dirIno, name), a, c);
  }
}

function checkAttr(m: Model, where: string, a: Attr, c: MNode): void {
  expectEq(`${where}: lookup inode`, a.ino, c.ino);
  expectEq(`${where}: type`, a.mode & S_IFMT, TYPE_BITS[c.kind]);
  expectEq(`${where}: nlink`, a.nlink, m.nlink(c));
  if (c.kind !== 'symlink') expectEq(`${where}: mode`, (a.mode & 0o7777).toString(8), c.mode.toString(8));
  if (c.kind === 'file') expectEq(`${where}: size`, a.size, c.data.length);
  if (c.kind === 'symlink') expectEq(`${where}: size`, a.size, c.target.length);
}

/** A file's bytes (through a fresh handle) or a symlink's target. */
export async function checkContent(vol: Volume, m: Model, ino: number, where: string): Promise<void> {
  const c = m.node(ino);
  if (c.kind === 'symlink') {
    const got = await vol.readlink(ino);
    if (!got.equals(c.target)) throw new Divergence(`${where}: readlink differs`, { got: got.length, want: c.target.length });
    return;
  }
  if (c.kind !== 'file') return;
  const got = await readAll(vol, ino, c.data.length);
  if (!got.equals(c.data)) {
    let at = 0;
    while (at < Math.min(got.length, c.data.length) && got[at] === c.data[at]) at++;
    throw new Divergence(`${where}: content differs at byte ${at}`, { size: got.length, want: c.data.length });
  }
}

/** The whole tree, every directory and every file's bytes. */
export async function checkTree(vol: Volume, m: Model): Promise<number> {
  let n = 0;
  for (const d of m.dirs()) {
    await checkDir(vol, m, d.ino);
    n++;
    for (const [name, ino] of d.entries) {
      if (m.node(ino).kind !== 'dir') {
        await checkContent(vol, m, ino, m.path(d.ino, name));
        n++;
      }
    }
  }
  return n;
}

// ---------------------------------------------------------------- the driver

export interface Step {
  op: string;
  /** What the model predicts: 'ok' or an errno name. */
  expect: string;
  /** Directories and files whose state the step may change, checked afterwards. */
  dirs: number[];
  files: number[];
}

export interface DriverOptions {
  blockSize: number;
  clusterSize: number;
  /** Chance that a step keeps a file handle open (for orphans). */
  keepOpen: number;
}

const SHORT_NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
const LONG_NAMES = [200, 240, 255].map((len, i) => `L${i}`.padEnd(len, String.fromCharCode(0x61 + i)));

export class Driver {
  constructor(readonly vol: Volume, readonly m: Model, readonly rng: Rng, readonly o: DriverOptions,
    /** Outcomes so far ("rename over -> ENOTEMPTY": n), kept across drivers of one run. */
    readonly counts = new Map<string, number>()) {}

  private name(): string {
    return this.rng.bool(0.12) ? this.rng.pick(LONG_NAMES) : this.rng.pick(SHORT_NAMES);
  }

  private dir(): MNode {
    const dirs = this.m.dirs().filter((d) => !this.m.reserved.has(d.ino));
    // Favour deeper directories a little, so trees grow.
    return this.rng.bool(0.3) ? dirs[dirs.length - 1 - this.rng.int(0, Math.min(2, dirs.length - 1))] : this.rng.pick(dirs);
  }

  /** A random existing entry of a random directory, or a random name there (maybe absent). */
  private entry(preferExisting = 0.8): { dir: MNode; name: string } {
    for (let i = 0; i < 6; i++) {
      const dir = this.dir();
      if (dir.entries.size && this.rng.bool(preferExisting)) {
        const names = [...dir.entries.keys()].filter((n) => !this.m.reserved.has(dir.entries.get(n)!));
        if (names.length) return { dir, name: this.rng.pick(names) };
      }
    }
    return { dir: this.dir(), name: this.name() };
  }

  private files(): MNode[] {
    return [...this.m.nodes.values()].filter((n) => n.kind === 'file');
  }

  private note(op: string, result: string): void {
    const key = `${op} -> ${result}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Runs the call and compares its outcome with the prediction. */
  private async call<T>(desc: string, op: string, expect: string, fn: () => Promise<T>): Promise<T | undefined> {
    let got = 'ok';
    let value: T | undefined;
    let message = '';
    try {
      value = await fn();
    } catch (err) {
      got = errnoOf(err);
      message = (err as Error).message;
      if (got === 'EIO' && !(err as { errno?: unknown }).errno) message = (err as Error).stack ?? message;
    }
    this.note(op, got);
    if (got !== expect) throw new Divergence(`${desc}: engine ${got}, expected ${expect}`, { engineError: message });
    return value;
  }

  private randomData(len: number): Buffer {
    return this.rng.bytes(len);
  }

  async step(): Promise<{ desc: string; dirs: number[]; files: number[] }> {
    const r = this.rng.int(0, 99);
    const { vol, m } = this;
    const B = (s: string) => Buffer.from(s, 'latin1');
    if (r < 14) {
      const dir = this.dir();
      const name = this.name();
      const desc = `create ${m.path(dir.ino, name)}`;
      const expect = dir.entries.has(name) ? 'EEXIST' : 'ok';
      const res = await this.call(desc, 'create', expect, () => vol.create(dir.ino, B(name), 0o644, O_RDWR, ROOT));
      if (res) {
        m.add(res.attr.ino, 'file', 0o644, dir.ino, name);
        dir.entries.set(name, res.attr.ino);
        if (this.rng.bool(this.o.keepOpen)) m.open.push({ ino: res.attr.ino, fh: res.fh });
        else await vol.release(res.attr.ino, res.fh);
      }
      return { desc, dirs: [dir.ino], files: res ? [res.attr.ino] : [] };
    }
    if (r < 22) {
      const dir = this.dir();
      const name = this.name();
      const desc = `mkdir ${m.path(dir.ino, name)}`;
      const expect = dir.entries.has(name) ? 'EEXIST' : 'ok';
      const a = await this.call(desc, 'mkdir', expect, () => vol.mkdir(dir.ino, B(name), 0o755, ROOT));
      if (a) {
        // A setgid directory hands the bit down to new subdirectories (inode_init_owner).
        m.add(a.ino, 'dir', dir.mode & 0o2000 ? 0o2755 : 0o755, dir.ino, name);
        dir.entries.set(name, a.ino);
      }
      return { desc, dirs: a ? [dir.ino, a.ino] : [dir.ino], files: [] };
    }
    if (r < 27) {
      const dir = this.dir();
      const name = this.name();
      const bs = this.o.blockSize;
      const len = this.rng.pick([1, 20, 60, bs - 200, bs - 1, bs, bs + 77, 4095].filter((n) => n > 0 && n < 4096));
      const target = Buffer.from(this.rng.bytes(len).toString('base64').slice(0, len), 'latin1');
      const desc = `symlink ${m.path(dir.ino, name)} (target of ${len} bytes)`;
      const expect = dir.entries.has(name) ? 'EEXIST' : 'ok';
      const a = await this.call(desc, 'symlink', expect, () => vol.symlink(dir.ino, B(name), target, ROOT));
      if (a) {
        const n = m.add(a.ino, 'symlink', 0o777, dir.ino, name);
        n.target = target;
        dir.entries.set(name, a.ino);
      }
      return { desc, dirs: [dir.ino], files: a ? [a.ino] : [] };
    }
    if (r < 33) {
      const src = this.entry(1);
      const srcIno = src.dir.entries.get(src.name);
      const dir = this.dir();
      const name = this.name();
      if (srcIno === undefined) return { desc: 'link (nothing to link)', dirs: [], files: [] };
      const s = m.node(srcIno);
      const desc = `link ${m.path(src.dir.ino, src.name)} -> ${m.path(dir.ino, name)}`;
      const expect = dir.entries.has(name) ? 'EEXIST' : s.kind === 'dir' ? 'EPERM' : 'ok';
      const a = await this.call(desc, 'link', expect, () => vol.link(srcIno, dir.ino, B(name)));
      if (a) {
        s.links++;
        dir.entries.set(name, srcIno);
      }
      return { desc, dirs: [dir.ino, src.dir.ino], files: [srcIno] };
    }
    if (r < 43) {
      const { dir, name } = this.entry(0.85);
      const ino = dir.entries.get(name);
      const desc = `unlink ${m.path(dir.ino, name)}`;
      const expect = ino === undefined ? 'ENOENT' : m.node(ino).kind === 'dir' ? 'EISDIR' : 'ok';
      await this.call(desc, 'unlink', expect, () => vol.unlink(dir.ino, B(name)));
      if (expect === 'ok') {
        dir.entries.delete(name);
        m.dropFileLink(m.node(ino!));
      }
      return { desc, dirs: [dir.ino], files: ino !== undefined && m.nodes.has(ino) ? [ino] : [] };
    }
    if (r < 49) {
      const { dir, name } = this.entry(0.85);
      const ino = dir.entries.get(name);
      const desc = `rmdir ${m.path(dir.ino, name)}`;
      const n = ino === undefined ? undefined : m.node(ino);
      const expect = !n ? 'ENOENT' : n.kind !== 'dir' ? 'ENOTDIR' : n.entries.size ? 'ENOTEMPTY' : 'ok';
      await this.call(desc, 'rmdir', expect, () => vol.rmdir(dir.ino, B(name)));
      if (expect === 'ok') {
        dir.entries.delete(name);
        m.removeDir(n!);
      }
      return { desc, dirs: n && n.kind === 'dir' && m.nodes.has(n.ino) ? [dir.ino, n.ino] : [dir.ino], files: [] };
    }
    if (r < 69) return this.rename();
    if (r < 81) return this.write();
    if (r < 88) return this.truncate();
    if (r < 91) {
      const { dir, name } = this.entry(1);
      const ino = dir.entries.get(name);
      // chmod(2) follows symlinks: the model leaves symlink inodes' modes alone.
      if (ino === undefined || m.node(ino).kind === 'symlink') return { desc: 'chmod (nothing)', dirs: [], files: [] };
      const n = m.node(ino);
      const mode = this.rng.pick([0o600, 0o644, 0o755, 0o700, 0o2755, 0o1777]);
      const desc = `chmod 0${mode.toString(8)} ${m.path(dir.ino, name)}`;
      await this.call(desc, 'chmod', 'ok', () => vol.setattr(ino, { mode }));
      n.mode = mode;
      return { desc, dirs: [dir.ino], files: [] };
    }
    if (r < 95) {
      // Open a file or a directory and keep the handle: removing its last name makes an orphan.
      if (this.rng.bool(0.25)) {
        const dirs = m.dirs().filter((d) => d.ino !== m.rootIno && !m.reserved.has(d.ino));
        if (!dirs.length) return { desc: 'opendir (no directories)', dirs: [], files: [] };
        const d = this.rng.pick(dirs);
        const fh = await vol.open(d.ino, O_RDONLY);
        m.open.push({ ino: d.ino, fh });
        return { desc: `open directory ${m.path(d.ino)}`, dirs: [d.ino], files: [] };
      }
      const files = this.files().filter((f) => f.links > 0);
      if (!files.length) return { desc: 'open (no files)', dirs: [], files: [] };
      const f = this.rng.pick(files);
      const fh = await vol.open(f.ino, O_RDWR);
      m.open.push({ ino: f.ino, fh });
      return { desc: `open inode ${f.ino}`, dirs: [], files: [f.ino] };
    }
    if (m.open.length) {
      const i = this.rng.int(0, m.open.length - 1);
      const [h] = m.open.splice(i, 1);
      const n = m.node(h.ino);
      await vol.release(h.ino, h.fh);
      const desc = `release inode ${h.ino}${m.unlinked(n) ? ' (orphan)' : ''}`;
      if (m.unlinked(n) && !m.isOpen(h.ino)) {
        m.nodes.delete(h.ino);
        // The last close frees an orphan: the inode is gone (not valid on disk).
        const got = await errnoOfCall(vol.getattr(h.ino));
        if (got !== 'ESTALE') throw new Divergence(`${desc}: getattr of the freed inode gives ${got}, expected ESTALE`);
        return { desc, dirs: [], files: [] };
      }
      return { desc, dirs: [], files: [h.ino] };
    }
    return { desc: 'release (none open)', dirs: [], files: [] };
  }

  private async rename(): Promise<{ desc: string; dirs: number[]; files: number[] }> {
    const { vol, m, rng } = this;
    const B = (s: string) => Buffer.from(s, 'latin1');
    const src = this.entry(0.9);
    let dst: { dir: MNode; name: string };
    const roll = rng.int(0, 9);
    if (roll < 4) dst = this.entry(1); // over an existing entry
    else if (roll < 5) dst = { dir: src.dir, name: src.name }; // onto itself
    else dst = { dir: this.dir(), name: this.name() };
    const srcIno = src.dir.entries.get(src.name);
    const dstIno = dst.dir.entries.get(dst.name);
    const flags = rng.bool(0.1) ? RENAME_NOREPLACE : rng.bool(0.1) ? RENAME_EXCHANGE : 0;
    const fl = flags === RENAME_NOREPLACE ? ' NOREPLACE' : flags === RENAME_EXCHANGE ? ' EXCHANGE' : '';
    const desc = `rename${fl} ${m.path(src.dir.ino, src.name)} -> ${m.path(dst.dir.ino, dst.name)}`;
    const s = srcIno === undefined ? undefined : m.node(srcIno);
    const d = dstIno === undefined ? undefined : m.node(dstIno);
    // Linux's order of checks (do_renameat2, then vfs_rename, then ocfs2_rename).
    let expect = 'ok';
    if (!s) expect = 'ENOENT';
    else if (flags & RENAME_NOREPLACE && d) expect = 'EEXIST';
    else if (flags & RENAME_EXCHANGE && !d) expect = 'ENOENT';
    else if (src.dir.ino !== dst.dir.ino && s.kind === 'dir' && m.isAncestor(s.ino, dst.dir.ino)) expect = 'EINVAL';
    else if (src.dir.ino !== dst.dir.ino && d && d.kind === 'dir' && m.isAncestor(d.ino, src.dir.ino)) {
      expect = flags & RENAME_EXCHANGE ? 'EINVAL' : 'ENOTEMPTY';
    } else if (d && d.ino === s.ino) expect = 'ok';
    else if (d && !(flags & RENAME_EXCHANGE)) {
      if (s.kind === 'dir' && d.kind !== 'dir') expect = 'ENOTDIR';
      else if (s.kind !== 'dir' && d.kind === 'dir') expect = 'EISDIR';
      else if (d.kind === 'dir' && d.entries.size) expect = 'ENOTEMPTY';
    }
    await this.call(desc, flags ? `rename${fl}` : d ? 'rename over' : 'rename', expect, () =>
      vol.rename(src.dir.ino, B(src.name), dst.dir.ino, B(dst.name), flags));
    const dirs = [src.dir.ino, dst.dir.ino];
    const files: number[] = [];
    if (expect !== 'ok' || !s || (d && d.ino === s.ino)) return { desc, dirs, files };
    if (flags & RENAME_EXCHANGE) {
      src.dir.entries.set(src.name, d!.ino);
      dst.dir.entries.set(dst.name, s.ino);
      if (s.kind === 'dir') Object.assign(s, { parent: dst.dir.ino, name: dst.name });
      if (d!.kind === 'dir') Object.assign(d!, { parent: src.dir.ino, name: src.name });
      for (const n of [s, d!]) (n.kind === 'dir' ? dirs : files).push(n.ino);
      return { desc, dirs, files };
    }
    src.dir.entries.delete(src.name);
    if (d) {
      if (d.kind === 'dir') m.removeDir(d);
      else m.dropFileLink(d);
      if (m.nodes.has(d.ino)) (d.kind === 'dir' ? dirs : files).push(d.ino);
    }
    dst.dir.entries.set(dst.name, s.ino);
    if (s.kind === 'dir') {
      s.parent = dst.dir.ino;
      s.name = dst.name;
      dirs.push(s.ino);
    } else files.push(s.ino);
    return { desc, dirs, files };
  }

  /** A handle on a file: an open one (maybe an orphan's) or a new one released afterwards. */
  private async handleOn(): Promise<{ f: MNode; fh: number; temp: boolean } | null> {
    const { vol, m, rng } = this;
    const fileHandles = m.open.filter((h) => m.node(h.ino).kind === 'file');
    if (fileHandles.length && rng.bool(0.4)) {
      const h = rng.pick(fileHandles);
      return { f: m.node(h.ino), fh: h.fh, temp: false };
    }
    const files = this.files().filter((f) => f.links > 0);
    if (!files.length) return null;
    const f = rng.pick(files);
    return { f, fh: await vol.open(f.ino, O_RDWR), temp: true };
  }

  private async write(): Promise<{ desc: string; dirs: number[]; files: number[] }> {
    const { vol, rng } = this;
    const h = await this.handleOn();
    if (!h) return { desc: 'write (no files)', dirs: [], files: [] };
    const { f, fh } = h;
    const cs = this.o.clusterSize;
    const big = rng.bool(0.02);
    const len = big ? rng.int(1, 3 * MiB) : rng.pick([1, rng.int(1, 600), this.o.blockSize, rng.int(1, 2 * cs), cs]);
    const offset = rng.bool(0.25) ? f.data.length : rng.int(0, f.data.length + (rng.bool(0.3) ? 4 * cs : 16));
    const data = this.randomData(len);
    const desc = `write ${len} bytes at ${offset} of inode ${f.ino} (size ${f.data.length})`;
    const n = await this.call(desc, 'write', 'ok', () => vol.write(f.ino, fh, offset, data));
    if (n !== len) throw new Divergence(`${desc}: short write of ${n}`);
    const end = offset + len;
    if (end > f.data.length) {
      const grown = Buffer.alloc(end);
      f.data.copy(grown);
      f.data = grown;
    }
    data.copy(f.data, offset);
    if (h.temp) await vol.release(f.ino, fh);
    return { desc, dirs: [], files: [f.ino] };
  }

  private async truncate(): Promise<{ desc: string; dirs: number[]; files: number[] }> {
    const { vol, m, rng } = this;
    const { dir, name } = this.entry(1);
    const ino = dir.entries.get(name);
    if (ino === undefined) return { desc: 'truncate (nothing)', dirs: [], files: [] };
    const f = m.node(ino);
    const cs = this.o.clusterSize;
    const size = rng.pick([0, 1, rng.int(0, f.data.length), f.data.length + rng.int(1, 3 * cs), cs, cs + 1, this.o.blockSize - 1]);
    const desc = `truncate ${m.path(dir.ino, name)} to ${size}`;
    const expect = f.kind === 'dir' ? 'EISDIR' : f.kind === 'symlink' ? 'EINVAL' : 'ok';
    await this.call(desc, 'truncate', expect, () => vol.setattr(ino, { size }));
    if (expect === 'ok') {
      const next = Buffer.alloc(size);
      f.data.copy(next, 0, 0, Math.min(size, f.data.length));
      f.data = next;
    }
    return { desc, dirs: [dir.ino], files: [ino] };
  }

  /** Checks what a step touched. */
  async check(dirs: number[], files: number[]): Promise<void> {
    const { vol, m } = this;
    for (const d of new Set(dirs)) {
      const n = m.nodes.get(d);
      if (!n) continue;
      if (n.removed) {
        // An open directory that was removed: still there, with no links and nothing in it but "." and "..".
        expectEq(`removed directory ${d}: nlink`, (await vol.getattr(d)).nlink, 0);
        expectEq(`removed directory ${d}: entries`, (await vol.readdir(d)).length, 2);
        continue;
      }
      await checkDir(vol, m, d);
    }
    for (const f of new Set(files)) {
      const n = m.nodes.get(f);
      if (!n || n.kind === 'dir') continue;
      const a = await vol.getattr(f);
      checkAttr(m, `inode ${f}`, a, n);
      await checkContent(vol, m, f, `inode ${f}`);
    }
  }

  async releaseAll(): Promise<void> {
    for (const h of this.m.open) await this.vol.release(h.ino, h.fh);
    this.m.closeAll();
  }
}

async function errnoOfCall(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return errnoOf(err);
  }
}
