/**
 * Shared pieces of the crash tests (issue 7): a formatted volume kept in
 * memory and cloned per crash, a reader of the crash-relevant state of a
 * volume that does not mount it (journal dirty flags, journal superblock
 * s_start, slot map), engine calls by path, and the durability model every
 * crash test checks against.
 *
 * The durability contract these tests hold o2fuse to (what the JBD2 journal
 * promises, and what fsync(2) promises on Linux OCFS2 and ext4):
 *   - a successful fsync of a file makes its bytes, its size and its current
 *     path durable (the journal commits every transaction before it, so the
 *     create, renames and directory entries that lead to it go with it);
 *   - a successful fsync of a directory makes the removal of the names
 *     unlinked or renamed away from it before that fsync durable;
 *   - anything changed after its last fsync is unknown: a crash may keep the
 *     old or the new state, and neither is checked.
 */
import { FaultyDevice } from '../../io/faultyDevice';
import { MemoryDevice } from '../../io/memoryDevice';
import { FileDevice } from '../../io/fileDevice';
import type { Device } from '../../io/device';
import { BlockCache } from '../../cache/blockCache';
import { probeSuper } from '../../fs/super';
import { featuresOf, type VolumeContext } from '../../fs/context';
import { readInodeBlock } from '../../fs/blocks';
import { readDirSlots } from '../../fs/dir';
import { readSlotMap } from '../../fs/slotMap';
import { Inode } from '../../fs/inode';
import { JournalSpace } from '../../fs/journal/space';
import { JBD2_MAGIC_NUMBER } from '../../fs/format/jbd2';
import { formatVolume, type MkfsOptions, type MkfsResult } from '../../fs/mkfs';
import type { Volume } from '../../fs/volume';
import { errnoOf } from '../../fs/errors';
import { createHash } from 'node:crypto';
import { encodeBytes, formatEntry, type DumpEntry, type DumpField, type NodeType } from '../lib/dumpFormat';
import {
  JOURNAL_SYSTEM_INODE, OCFS2_JOURNAL_DIRTY_FL, SLOT_MAP_SYSTEM_INODE, systemInodeName,
} from '../../fs/format/constants';

export const MiB = 1024 * 1024;
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const ROOT = { uid: 0, gid: 0 };

/**
 * A volume formatted once by o2fuse's own mkfs into memory; clone() gives a
 * fresh device holding it, at the cost of the blocks mkfs wrote (a scan of
 * the whole device for non-zero chunks would cost more than a crash run).
 */
export class VolumeTemplate {
  private constructor(
    private readonly source: MemoryDevice,
    private readonly ranges: ReadonlyArray<{ offset: number; length: number }>,
    readonly mkfs: MkfsResult,
  ) {}

  static async format(sizeBytes: number, options: MkfsOptions): Promise<VolumeTemplate> {
    const source = new MemoryDevice(sizeBytes, { name: 'volume template' });
    const recorder = new FaultyDevice(source, { cache: 'writethrough', closeInner: false });
    const written: Array<{ offset: number; length: number }> = [];
    recorder.onComplete((req, err) => {
      if (req.op === 'write' && !err) written.push({ offset: req.offset, length: req.length });
    });
    const mkfs = await formatVolume(recorder, { deviceIsZeroed: true, ...options });
    await recorder.close();
    return new VolumeTemplate(source, mergeRanges(written), mkfs);
  }

  get sizeBytes(): number {
    return this.source.size;
  }

  clone(name = 'crash volume'): MemoryDevice {
    const dev = new MemoryDevice(this.source.size, { name });
    for (const r of this.ranges) dev.poke(this.source.peek(r.offset, r.length), r.offset);
    return dev;
  }
}

function mergeRanges(list: Array<{ offset: number; length: number }>): Array<{ offset: number; length: number }> {
  const sorted = [...list].sort((a, b) => a.offset - b.offset);
  const out: Array<{ offset: number; length: number }> = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, r.offset + r.length - last.offset);
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

/** A view of `inner` that never closes it (a Volume closes its device at unmount; the memory must stay). */
export function borrow(inner: Device, name?: string): FaultyDevice {
  return new FaultyDevice(inner, { cache: 'writethrough', closeInner: false, name: name ?? `borrowed ${inner.name}` });
}

export interface CrashState {
  /** Slots whose journal inode has OCFS2_JOURNAL_DIRTY_FL (the kernel, fsck and o2fuse replay exactly these). */
  dirtyJournals: number[];
  /** Per slot: the journal superblock's s_start (0: nothing to replay), or an error message. */
  journalStart: Array<number | string>;
  /** Per slot: the journal superblock's s_sequence (the transaction replay expects first). */
  journalSequence: number[];
  /** Per slot: the h_sequence of the JBD2 block at s_start (null: no JBD2 header there, or s_start 0). */
  sequenceAtStart: Array<number | null>;
  /** Slots the slot map shows in use. */
  slotsInUse: number[];
}

const NO_ALLOC = new Proxy({}, { get: () => () => Promise.reject(new Error('read-only state reader')) });

/**
 * The crash-relevant state of a volume, read without mounting it (a mount is
 * what is under test): journal flags and superblocks, and the slot map.
 */
export async function crashState(device: Device): Promise<CrashState> {
  const probed = await probeSuper(device);
  const ctx: VolumeContext = {
    device,
    cache: new BlockCache(device, probed.geometry.blockSize),
    geo: { ...probed.geometry },
    sb: probed.sb,
    features: featuresOf(probed.sb),
    fsGeneration: probed.fsGeneration,
    slot: 0,
    alloc: NO_ALLOC as VolumeContext['alloc'],
    nextGeneration: () => 0,
  };
  const sysdirIno = probed.sb.s_system_dir_blkno;
  const sysdir = new Inode(sysdirIno, (await readInodeBlock(ctx, sysdirIno)).di);
  const system = new Map<string, number>();
  for (const s of await readDirSlots(ctx, sysdir)) system.set(s.name.toString('latin1'), s.ino);
  const need = (name: string): number => {
    const ino = system.get(name);
    if (ino === undefined) throw new Error(`system file ${name} is missing`);
    return ino;
  };
  const state: CrashState = { dirtyJournals: [], journalStart: [], journalSequence: [], sequenceAtStart: [], slotsInUse: [] };
  for (let slot = 0; slot < probed.sb.s_max_slots; slot++) {
    const ino = need(systemInodeName(JOURNAL_SYSTEM_INODE, slot));
    const { di } = await readInodeBlock(ctx, ino);
    if (di.ij_flags & OCFS2_JOURNAL_DIRTY_FL) state.dirtyJournals.push(slot);
    try {
      const space = await JournalSpace.open(ctx, slot, ino, di);
      const jsb = await space.readSuperblock();
      state.journalStart.push(jsb.s_start);
      state.journalSequence.push(jsb.s_sequence);
      let atStart: number | null = null;
      if (jsb.s_start !== 0) {
        const head = await space.read(jsb.s_start);
        if (head.readUInt32BE(0) === JBD2_MAGIC_NUMBER) atStart = head.readUInt32BE(8);
      }
      state.sequenceAtStart.push(atStart);
    } catch (err) {
      state.journalStart.push((err as Error).message);
      state.journalSequence.push(-1);
      state.sequenceAtStart.push(null);
    }
  }
  const slotMapIno = need(systemInodeName(SLOT_MAP_SYSTEM_INODE));
  const slots = await readSlotMap(ctx, new Inode(slotMapIno, (await readInodeBlock(ctx, slotMapIno)).di));
  slots.forEach((node, slot) => {
    if (node !== null) state.slotsInUse.push(slot);
  });
  return state;
}

/** crashState of an image file (opened read-only for the look). */
export async function crashStateOfImage(image: string): Promise<CrashState> {
  const dev = await FileDevice.open(image, { readOnly: true });
  try {
    return await crashState(borrow(dev));
  } finally {
    await dev.close();
  }
}

export function describeState(s: CrashState): string {
  const seq = s.journalSequence.map((q, i) => `${q}/${s.sequenceAtStart[i] ?? '-'}`);
  return `dirty journals [${s.dirtyJournals.join(',')}], journal s_start [${s.journalStart.join(',')}], ` +
    `s_sequence/sequence at s_start [${seq.join(',')}], slots in use [${s.slotsInUse.join(',')}]`;
}

/** What a clean volume shows: no journal dirty, no transaction left in a log, no slot taken. Empty when clean. */
export function uncleanBecause(s: CrashState): string[] {
  const out: string[] = [];
  if (s.dirtyJournals.length) out.push(`journal(s) of slot(s) ${s.dirtyJournals.join(',')} still marked dirty`);
  s.journalStart.forEach((start, slot) => {
    // Replay starts at s_start only if a JBD2 block of sequence s_sequence is there (mkfs.ocfs2 leaves s_start 1
    // over an empty log: nothing to replay).
    if (typeof start === 'string') out.push(`journal of slot ${slot} is unreadable: ${start}`);
    else if (start !== 0 && s.sequenceAtStart[slot] === s.journalSequence[slot]) {
      out.push(`journal of slot ${slot} still holds transaction ${s.journalSequence[slot]} at s_start ${start}: the kernel or fsck would replay it`);
    }
  });
  if (s.slotsInUse.length) out.push(`slot map still shows slot(s) ${s.slotsInUse.join(',')} in use`);
  return out;
}

// ---- engine calls by path ----

export function splitPath(p: string): string[] {
  return p.split('/').filter(Boolean);
}

/** The inode at an absolute path, through the engine's lookups. */
export async function resolvePath(vol: Volume, p: string): Promise<number> {
  let ino = vol.rootIno;
  for (const name of splitPath(p)) ino = (await vol.lookup(ino, Buffer.from(name))).ino;
  return ino;
}

/** A whole file's bytes through the engine. */
export async function readWhole(vol: Volume, ino: number): Promise<Buffer> {
  const attr = await vol.getattr(ino);
  const fh = await vol.open(ino, O_RDONLY);
  try {
    const parts: Buffer[] = [];
    let at = 0;
    while (at < attr.size) {
      const got = await vol.read(ino, fh, at, Math.min(MiB, attr.size - at));
      if (got.length === 0) break;
      parts.push(Buffer.from(got));
      at += got.length;
    }
    return Buffer.concat(parts);
  } finally {
    await vol.release(ino, fh);
  }
}

export function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/**
 * Expectations that survive a crash: files whose content and path were made
 * durable by fsync, and names whose removal fsync of their directory made
 * durable. Paths are absolute, '/'-separated.
 */
export class DurableModel {
  readonly present = new Map<string, Buffer>();
  readonly absent = new Set<string>();
  /** Names removed from a directory since its last fsync, by directory path. */
  private readonly removedSince = new Map<string, Set<string>>();

  /** A file's bytes and path are durable now. */
  fsynced(path: string, content: Buffer): void {
    this.present.set(path, Buffer.from(content));
    this.absent.delete(path);
  }

  /** A file changed (or its path did): whatever was durable for `path` is unknown now. */
  changed(path: string): void {
    this.present.delete(path);
  }

  /** A name appeared at `path`: neither its absence nor anything earlier is known any more. */
  created(path: string): void {
    this.present.delete(path);
    this.absent.delete(path);
    this.removedSince.get(parentOf(path))?.delete(path);
  }

  /** The name at `path` went away (unlink, rmdir, renamed away). */
  removed(path: string): void {
    this.present.delete(path);
    const dir = parentOf(path);
    let set = this.removedSince.get(dir);
    if (!set) this.removedSince.set(dir, (set = new Set()));
    set.add(path);
  }

  /** A directory moved: everything under both names is unknown. */
  movedTree(from: string, to: string): void {
    for (const key of [...this.present.keys()]) {
      if (under(key, from) || under(key, to)) this.present.delete(key);
    }
    for (const key of [...this.absent]) {
      if (under(key, from) || under(key, to)) this.absent.delete(key);
    }
    for (const dir of [...this.removedSince.keys()]) {
      if (dir === from || dir === to || under(dir, from) || under(dir, to)) this.removedSince.delete(dir);
    }
  }

  /** fsync of directory `dir` succeeded: the names removed from it since are durably gone. */
  dirFsynced(dir: string): void {
    for (const p of this.removedSince.get(dir) ?? []) this.absent.add(p);
    this.removedSince.delete(dir);
  }
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function under(p: string, dir: string): boolean {
  return p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/**
 * Checks a mounted volume against the model: every durable file reads back
 * its bytes, every durably removed name is gone. Returns the problems found.
 */
export async function checkDurable(vol: Volume, model: DurableModel): Promise<{ problems: string[]; files: number }> {
  const problems: string[] = [];
  for (const [p, want] of model.present) {
    try {
      const ino = await resolvePath(vol, p);
      const got = await readWhole(vol, ino);
      if (!got.equals(want)) {
        problems.push(`${p}: fsynced ${want.length} bytes, reads ${got.length} bytes, first difference at byte ${firstDifference(want, got)}`);
      }
    } catch (err) {
      problems.push(`${p}: fsynced ${want.length} bytes, but reading it fails: ${errnoOf(err)} ${(err as Error).message}`);
    }
  }
  for (const p of model.absent) {
    try {
      await resolvePath(vol, p);
      problems.push(`${p}: removed and its directory fsynced, but it is still there`);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') problems.push(`${p}: looking it up fails with ${errnoOf(err)} ${(err as Error).message}`);
    }
  }
  return { problems, files: model.present.size };
}

/** Waits for p at most ms; resolves either way (for tearing down an engine whose device lost power). */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<'settled' | 'timed out'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timed out'>((resolve) => {
    timer = setTimeout(() => resolve('timed out'), ms);
  });
  try {
    return await Promise.race([p.then(() => 'settled' as const, () => 'settled' as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- the whole tree as the engine sees it, in the dump format of test/lib/dumpFormat.ts ----

const S_IFMT_BITS = 0o170000;
const TYPE_OF_MODE: Record<number, NodeType> = {
  0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o010000: 'fifo', 0o140000: 'sock', 0o020000: 'chr', 0o060000: 'blk',
};

/** Every path under the root as the engine reads it (what o2tool dump prints for the same volume). */
export async function engineEntries(vol: Volume): Promise<DumpEntry[]> {
  const out: DumpEntry[] = [];
  const visit = async (ino: number, encoded: string): Promise<void> => {
    const a = await vol.getattr(ino);
    const type = TYPE_OF_MODE[a.mode & S_IFMT_BITS] ?? 'unknown';
    const e: DumpEntry = {
      path: encoded, type, mode: a.mode & 0o7777, uid: a.uid, gid: a.gid, nlink: a.nlink, size: a.size, ino,
      atime: a.atime, mtime: a.mtime, ctime: a.ctime,
    };
    if (type === 'file') e.sha256 = createHash('sha256').update(await readWhole(vol, ino)).digest('hex');
    if (type === 'symlink') e.target = encodeBytes(await vol.readlink(ino));
    out.push(e);
    if (type !== 'dir') return;
    for (const d of await vol.readdir(ino)) {
      const name = d.name.toString('latin1');
      if (name === '.' || name === '..') continue;
      await visit(d.ino, `${encoded === '/' ? '' : encoded}/${encodeBytes(d.name)}`);
    }
  };
  await visit(vol.rootIno, '/');
  return out;
}

/** Entries as one line each (dumpFormat's formatEntry), keyed by path. */
export function linesByPath(entries: readonly DumpEntry[], fields: readonly DumpField[]): Map<string, string> {
  return new Map(entries.map((e) => [e.path, formatEntry(e, fields)]));
}

/** What differs between two trees, one line per path (at most `max`). */
export function treeDiff(want: Map<string, string>, got: Map<string, string>, max = 20): string[] {
  const out: string[] = [];
  for (const [p, line] of want) if (got.get(p) !== line) out.push(`want "${line}", got "${got.get(p) ?? 'nothing'}"`);
  for (const [p, line] of got) if (!want.has(p)) out.push(`unexpected "${line}"`);
  return out.slice(0, max);
}
