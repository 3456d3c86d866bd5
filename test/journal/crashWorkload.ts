/**
 * A metadata-heavy workload for the crash tests, seeded, written once and
 * driven either through the engine (EngineDriver) or through a mounted
 * directory (VfsDriver, in kill9-through-fuse): creates, appends, overwrites,
 * truncates up and down, renames of files (within and across directories,
 * over existing files) and of directories, unlinks (some while the file is
 * open: orphans), mkdir/rmdir, a directory grown to a few hundred entries,
 * and fsync of files and directories between them. Every call is recorded
 * in a DurableModel (crashHelpers.ts): invalidations before the call (a call that
 * fails half-way leaves its paths unknown), promises only after an fsync
 * succeeded.
 *
 * The sequence depends only on the seed and the model, so runs with the same
 * seed do the same calls up to the crash. The workload stops at the first
 * failing call and returns its error: the caller decides whether the failure
 * was the crash (device powered off, daemon killed) or a bug.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Rng } from '../lib/seed';
import type { Volume } from '../../fs/volume';
import { DurableModel, parentOf, under, resolvePath, splitPath, O_RDWR, ROOT } from './crashHelpers';

/** What the workload needs from a filesystem; paths are absolute within it. */
export interface Driver<H> {
  mkdir(p: string): Promise<void>;
  rmdir(p: string): Promise<void>;
  /** Creates (exclusively) and opens read-write. */
  create(p: string): Promise<H>;
  write(h: H, offset: number, data: Buffer): Promise<void>;
  truncate(h: H, size: number): Promise<void>;
  fsync(h: H): Promise<void>;
  fsyncDir(p: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(p: string): Promise<void>;
  close(h: H): Promise<void>;
}

export interface WorkloadOptions {
  seed: number;
  blockSize: number;
  clusterSize: number;
  /** Random steps after the set-up (each one or a few calls). */
  steps: number;
  /** Share of steps that add an entry to /big (the growing directory). */
  bigShare?: number;
  /**
   * Files created and fsynced one by one in /warm before the random steps: they fill the journal's log early,
   * so that a run wraps it (and checkpoints) in its middle rather than near its end.
   */
  warmupFiles?: number;
  /** Called as each call starts, with its number (from 1): a test may crash the filesystem from here. */
  onCall?: (n: number) => void;
}

interface FileState<H> {
  path: string;
  content: Buffer;
  h: H;
}

export interface WorkloadResult {
  /** Calls that succeeded. */
  calls: number;
  fsyncs: number;
  /** The call that failed, and how (undefined: the workload ran to its end). */
  failed?: { call: string; error: unknown };
  /** Entries /big reached. */
  bigEntries: number;
}

/** Sizes at the edges that matter: inline data, blocks, clusters. */
export function edgeSizes(bs: number, cs: number): number[] {
  const inlineMax = bs - 200;
  return [0, 1, 100, inlineMax - 1, inlineMax + 1, bs - 1, bs + 1, cs - 1, cs + 1, 2 * cs + 3, 40_000];
}

export class Workload<H> {
  readonly model = new DurableModel();
  private readonly rng: Rng;
  private readonly files: Array<FileState<H>> = [];
  /** Unlinked (or renamed over) while open: still writable through their handles. */
  private readonly orphans: Array<FileState<H>> = [];
  private readonly dirs: string[] = ['/'];
  private calls = 0;
  private started = 0;
  private fsyncs = 0;
  private readonly sizes: number[];

  constructor(private readonly driver: Driver<H>, private readonly o: WorkloadOptions) {
    this.rng = new Rng(o.seed);
    this.sizes = edgeSizes(o.blockSize, o.clusterSize);
  }

  /** Runs to the end (or to the first failing call); `after` runs last (e.g. the unmount), counted as a call. */
  async run(after?: { call: string; fn: () => Promise<void> }): Promise<WorkloadResult> {
    let failed: WorkloadResult['failed'];
    try {
      await this.setUp();
      for (let step = 0; step < this.o.steps; step++) await this.step(step);
      await this.finish();
      if (after) await this.call(after.call, after.fn);
    } catch (err) {
      if (!(err instanceof CallFailed)) throw err;
      failed = { call: err.call, error: err.cause };
    }
    return { calls: this.calls, fsyncs: this.fsyncs, failed, bigEntries: this.files.filter((f) => parentOf(f.path) === '/big').length };
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.o.onCall?.(++this.started);
    try {
      const r = await fn();
      this.calls++;
      return r;
    } catch (err) {
      throw new CallFailed(what, err);
    }
  }

  private async setUp(): Promise<void> {
    for (const d of ['/a', '/a/b', '/c', '/big']) await this.mkdir(d);
    await this.fsyncDir('/');
    if (this.o.warmupFiles) {
      await this.mkdir('/warm');
      for (let i = 0; i < this.o.warmupFiles; i++) await this.createFile(`/warm/w${i}`, this.rng.int(1, 3000), 1);
    }
  }

  private async mkdir(p: string): Promise<void> {
    this.model.created(p);
    await this.call(`mkdir ${p}`, () => this.driver.mkdir(p));
    this.dirs.push(p);
  }

  private async fsyncDir(p: string): Promise<void> {
    await this.call(`fsync dir ${p}`, () => this.driver.fsyncDir(p));
    this.fsyncs++;
    this.model.dirFsynced(p);
  }

  private async fsyncFile(f: FileState<H>): Promise<void> {
    await this.call(`fsync ${f.path}`, () => this.driver.fsync(f.h));
    this.fsyncs++;
    if (this.files.includes(f)) this.model.fsynced(f.path, f.content);
  }

  private pickFile(): FileState<H> | undefined {
    return this.files.length ? this.rng.pick(this.files) : undefined;
  }

  private workDirs(): string[] {
    return this.dirs.filter((d) => d !== '/big' && !under(d, '/big'));
  }

  private data(n: number): Buffer {
    return this.rng.bytes(n);
  }

  private async createFile(p: string, size: number, fsyncChance: number): Promise<void> {
    this.model.created(p);
    const h = await this.call(`create ${p}`, () => this.driver.create(p));
    const f: FileState<H> = { path: p, content: Buffer.alloc(0), h };
    this.files.push(f);
    if (size > 0) {
      const bytes = this.data(size);
      // Two writes for the larger ones: the second one is an append.
      const cut = size > 1000 ? this.rng.int(1, size - 1) : size;
      await this.writeAt(f, 0, bytes.subarray(0, cut));
      if (cut < size) await this.writeAt(f, cut, bytes.subarray(cut));
    }
    if (this.rng.bool(fsyncChance)) await this.fsyncFile(f);
  }

  private async writeAt(f: FileState<H>, offset: number, bytes: Buffer): Promise<void> {
    if (this.files.includes(f)) this.model.changed(f.path);
    await this.call(`write ${f.path} @${offset}+${bytes.length}`, () => this.driver.write(f.h, offset, bytes));
    const end = Math.max(f.content.length, offset + bytes.length);
    const next = Buffer.alloc(end);
    f.content.copy(next);
    bytes.copy(next, offset);
    f.content = next;
  }

  private async truncate(f: FileState<H>, size: number): Promise<void> {
    this.model.changed(f.path);
    await this.call(`truncate ${f.path} ${size}`, () => this.driver.truncate(f.h, size));
    const next = Buffer.alloc(size);
    f.content.copy(next, 0, 0, Math.min(size, f.content.length));
    f.content = next;
  }

  private async step(k: number): Promise<void> {
    const rng = this.rng;
    const bigShare = this.o.bigShare ?? 0.3;
    if (rng.bool(bigShare)) {
      await this.createFile(`/big/e${k}-${'x'.repeat(rng.int(0, 40))}`, rng.int(0, 300), 0.2);
      return;
    }
    const r = rng.int(0, 99);
    const f = this.pickFile();
    const dirs = this.workDirs();
    const dir = rng.pick(dirs);
    const join = (d: string, name: string) => (d === '/' ? `/${name}` : `${d}/${name}`);
    if (r < 20 || !f) {
      await this.createFile(join(dir, `f${k}`), rng.pick(this.sizes), 0.5);
    } else if (r < 36) {
      const n = rng.pick(this.sizes.filter((s) => s > 0));
      await this.writeAt(f, f.content.length, this.data(n));
      if (rng.bool(0.4)) await this.fsyncFile(f);
    } else if (r < 42) {
      const at = rng.int(0, f.content.length);
      await this.writeAt(f, at, this.data(rng.int(1, this.o.blockSize + 10)));
      if (rng.bool(0.4)) await this.fsyncFile(f);
    } else if (r < 50) {
      const size = rng.bool(0.6) ? rng.int(0, f.content.length) : f.content.length + rng.int(1, 2 * this.o.clusterSize);
      await this.truncate(f, size);
      if (rng.bool(0.4)) await this.fsyncFile(f);
    } else if (r < 62) {
      await this.renameFile(f, k, dirs);
    } else if (r < 72) {
      await this.unlinkFile(f);
    } else if (r < 76) {
      await this.releaseOrphan();
    } else if (r < 81) {
      if (splitPath(dir).length < 4) await this.mkdir(join(dir, `d${k}`));
    } else if (r < 86) {
      await this.rmdirSome();
    } else if (r < 90) {
      await this.renameDir(k);
    } else if (r < 95) {
      await this.fsyncFile(f);
    } else {
      await this.fsyncDir(rng.pick(this.dirs));
    }
  }

  private async renameFile(f: FileState<H>, k: number, dirs: string[]): Promise<void> {
    const rng = this.rng;
    const overTarget = rng.bool(0.3) ? this.files.filter((g) => g !== f) : [];
    const over = overTarget.length ? rng.pick(overTarget) : undefined;
    const targetDir = rng.bool(0.5) ? parentOf(f.path) : rng.pick(dirs);
    const to = over ? over.path : `${targetDir === '/' ? '' : targetDir}/r${k}`;
    const from = f.path;
    this.model.removed(from);
    this.model.created(to);
    await this.call(`rename ${from} -> ${to}`, () => this.driver.rename(from, to));
    if (over) {
      this.files.splice(this.files.indexOf(over), 1);
      this.orphans.push(over);
    }
    f.path = to;
    if (rng.bool(0.4)) await this.fsyncFile(f);
    if (rng.bool(0.3)) await this.fsyncDir(parentOf(from));
  }

  private async unlinkFile(f: FileState<H>): Promise<void> {
    const whileOpen = this.rng.bool(0.2);
    this.files.splice(this.files.indexOf(f), 1);
    this.model.removed(f.path);
    if (!whileOpen) await this.call(`close ${f.path}`, () => this.driver.close(f.h));
    await this.call(`unlink ${f.path}`, () => this.driver.unlink(f.path));
    if (whileOpen) this.orphans.push(f);
    if (this.rng.bool(0.4)) await this.fsyncDir(parentOf(f.path));
  }

  private async releaseOrphan(): Promise<void> {
    const o = this.orphans.shift();
    if (!o) return;
    await this.writeAt(o, o.content.length, this.data(this.rng.int(1, 5000)));
    await this.call(`close orphan (was ${o.path})`, () => this.driver.close(o.h));
  }

  private async rmdirSome(): Promise<void> {
    const empty = this.dirs.filter((d) => d !== '/' && d !== '/big' && !this.dirs.some((e) => e !== d && under(e, d)) &&
      !this.files.some((f) => under(f.path, d)));
    if (!empty.length) return;
    const d = this.rng.pick(empty);
    this.model.removed(d);
    await this.call(`rmdir ${d}`, () => this.driver.rmdir(d));
    this.dirs.splice(this.dirs.indexOf(d), 1);
    if (this.rng.bool(0.4)) await this.fsyncDir(parentOf(d));
  }

  private async renameDir(k: number): Promise<void> {
    // /big stays where it is: it is the directory that grows.
    const candidates = this.dirs.filter((d) => d !== '/' && d !== '/big');
    if (!candidates.length) return;
    const from = this.rng.pick(candidates);
    const parents = this.dirs.filter((d) => d !== from && d !== '/big' && !under(d, from) && splitPath(d).length < 4);
    const parent = this.rng.pick(parents);
    const to = `${parent === '/' ? '' : parent}/m${k}`;
    this.model.removed(from);
    this.model.created(to);
    this.model.movedTree(from, to);
    await this.call(`rename dir ${from} -> ${to}`, () => this.driver.rename(from, to));
    const remap = (p: string) => (p === from || under(p, from) ? to + p.slice(from.length) : p);
    for (let i = 0; i < this.dirs.length; i++) this.dirs[i] = remap(this.dirs[i]);
    for (const f of this.files) f.path = remap(f.path);
    if (this.rng.bool(0.3)) await this.fsyncDir(parentOf(from));
  }

  /** After a crash: closes every handle still open, ignoring failures (the filesystem is gone). */
  async abandon(): Promise<void> {
    for (const f of [...this.orphans.splice(0), ...this.files]) await this.driver.close(f.h).catch(() => undefined);
  }

  private async finish(): Promise<void> {
    for (const o of this.orphans.splice(0)) await this.call(`close orphan (was ${o.path})`, () => this.driver.close(o.h));
    for (const f of this.files) await this.call(`close ${f.path}`, () => this.driver.close(f.h));
  }
}

class CallFailed extends Error {
  constructor(readonly call: string, override readonly cause: unknown) {
    super(`${call}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

// ---- drivers ----

export interface EngineHandle {
  ino: number;
  fh: number;
}

/** Drives the engine API (fs/volume.ts) by path. */
export class EngineDriver implements Driver<EngineHandle> {
  constructor(readonly vol: Volume) {}

  private async parentAndName(p: string): Promise<{ parent: number; name: Buffer }> {
    const parts = splitPath(p);
    const name = parts.pop();
    if (name === undefined) throw new Error(`no name in ${p}`);
    return { parent: await resolvePath(this.vol, `/${parts.join('/')}`), name: Buffer.from(name) };
  }

  async mkdir(p: string): Promise<void> {
    const { parent, name } = await this.parentAndName(p);
    await this.vol.mkdir(parent, name, 0o755, ROOT);
  }
  async rmdir(p: string): Promise<void> {
    const { parent, name } = await this.parentAndName(p);
    await this.vol.rmdir(parent, name);
  }
  async create(p: string): Promise<EngineHandle> {
    const { parent, name } = await this.parentAndName(p);
    const { attr, fh } = await this.vol.create(parent, name, 0o644, O_RDWR, ROOT);
    return { ino: attr.ino, fh };
  }
  async write(h: EngineHandle, offset: number, data: Buffer): Promise<void> {
    const n = await this.vol.write(h.ino, h.fh, offset, data);
    if (n !== data.length) throw new Error(`short write: ${n} of ${data.length}`);
  }
  async truncate(h: EngineHandle, size: number): Promise<void> {
    await this.vol.setattr(h.ino, { size });
  }
  async fsync(h: EngineHandle): Promise<void> {
    await this.vol.fsync(h.ino, h.fh, false);
  }
  async fsyncDir(p: string): Promise<void> {
    await this.vol.fsyncdir(await resolvePath(this.vol, p), false);
  }
  async rename(from: string, to: string): Promise<void> {
    const a = await this.parentAndName(from);
    const b = await this.parentAndName(to);
    await this.vol.rename(a.parent, a.name, b.parent, b.name, 0);
  }
  async unlink(p: string): Promise<void> {
    const { parent, name } = await this.parentAndName(p);
    await this.vol.unlink(parent, name);
  }
  async close(h: EngineHandle): Promise<void> {
    await this.vol.flush(h.ino, h.fh);
    await this.vol.release(h.ino, h.fh);
  }
}

/** Drives a mounted directory through the VFS (node:fs/promises). */
export class VfsDriver implements Driver<fsp.FileHandle> {
  constructor(readonly root: string) {}

  private at(p: string): string {
    return path.join(this.root, p);
  }

  async mkdir(p: string): Promise<void> {
    await fsp.mkdir(this.at(p), { mode: 0o755 });
  }
  async rmdir(p: string): Promise<void> {
    await fsp.rmdir(this.at(p));
  }
  async create(p: string): Promise<fsp.FileHandle> {
    return fsp.open(this.at(p), 'wx+', 0o644);
  }
  async write(h: fsp.FileHandle, offset: number, data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await h.write(data, done, data.length - done, offset + done);
      if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten}`);
      done += bytesWritten;
    }
  }
  async truncate(h: fsp.FileHandle, size: number): Promise<void> {
    await h.truncate(size);
  }
  async fsync(h: fsp.FileHandle): Promise<void> {
    await h.sync();
  }
  async fsyncDir(p: string): Promise<void> {
    const h = await fsp.open(this.at(p), 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  }
  async rename(from: string, to: string): Promise<void> {
    await fsp.rename(this.at(from), this.at(to));
  }
  async unlink(p: string): Promise<void> {
    await fsp.unlink(this.at(p));
  }
  async close(h: fsp.FileHandle): Promise<void> {
    await h.close();
  }
}
