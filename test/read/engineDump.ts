/**
 * The engine's view of a volume in the dump format of `o2tool dump` (test/lib/dumpFormat.ts),
 * taken through the Engine interface only (readdir, lookup, getattr, read, readlink), plus
 * the extent map read from the engine's own extent walk, so that a mounted Volume and
 * libocfs2 compare line by line:
 *
 *   t.equal(await engineDump(vol, { map: true }), await dump(image, { map: true }));
 */
import { createHash } from 'node:crypto';
import type { Volume } from '../../fs/volume';
import type { Attr, Engine } from '../../fs/api';
import { dataExtents } from '../../fs/file';
import { isUnwritten } from '../../fs/extentMap';
import {
  type DumpEntry, type DumpOptions, type NodeType, encodeBytes, formatDump, resolveFields,
} from '../lib/dumpFormat';

const READ_CHUNK_BYTES = 1024 * 1024;

const S_IFMT = 0o170000;
const TYPES: Record<number, NodeType> = {
  0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o010000: 'fifo',
  0o140000: 'sock', 0o020000: 'chr', 0o060000: 'blk',
};

export function typeOfMode(mode: number): NodeType {
  return TYPES[mode & S_IFMT] ?? 'unknown';
}

/** An OCFS2 i_rdev as the kernel stores it (huge_encode_dev of a new-style dev_t) split into major:minor. */
export function splitRdev(rdev: number): { major: number; minor: number } {
  const dev = rdev >>> 0;
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}

/** A file's whole content read through engine.read in chunks (checks each chunk's length). */
export async function readAll(engine: Engine, ino: number, size: number): Promise<Buffer> {
  const fh = await engine.open(ino, 0);
  try {
    const parts: Buffer[] = [];
    for (let off = 0; off < size; off += READ_CHUNK_BYTES) {
      const want = Math.min(READ_CHUNK_BYTES, size - off);
      const got = await engine.read(ino, fh, off, want);
      if (got.length !== want) throw new Error(`inode ${ino}: read at ${off} gave ${got.length} bytes, expected ${want}`);
      parts.push(got);
    }
    const tail = await engine.read(ino, fh, size, 4096);
    if (tail.length !== 0) throw new Error(`inode ${ino}: read at i_size ${size} gave ${tail.length} bytes`);
    return Buffer.concat(parts);
  } finally {
    await engine.release(ino, fh);
  }
}

/** The map field as o2tool prints it: byte ranges in logical order, adjacent extents of one kind merged. */
export async function engineMap(vol: Volume, ino: number): Promise<string> {
  const inode = await vol.iget(ino);
  if (inode.inline) return 'inline';
  const runs: { start: number; end: number; u: boolean }[] = [];
  const cs = vol.geo.clusterSize;
  for (const e of await dataExtents(vol, inode)) {
    const start = e.cpos * cs;
    const end = (e.cpos + e.clusters) * cs;
    const u = isUnwritten(e);
    const last = runs[runs.length - 1];
    if (last && last.end === start && last.u === u) last.end = end;
    else runs.push({ start, end, u });
  }
  return runs.length ? runs.map((r) => `${r.start}+${r.end - r.start}${r.u ? 'u' : ''}`).join(',') : '-';
}

function entryOf(path: string, a: Attr): DumpEntry {
  return {
    path,
    type: typeOfMode(a.mode),
    mode: a.mode & 0o7777,
    uid: a.uid,
    gid: a.gid,
    nlink: a.nlink,
    size: a.size,
    ino: a.ino,
    atime: a.atime,
    mtime: a.mtime,
    ctime: a.ctime,
  };
}

export interface EngineDumpProblem {
  path: string;
  problem: string;
}

/**
 * Walks the tree from the root: readdir gives the names, lookup (checked against the
 * readdir entry's inode and type) gives the attributes, read/readlink the data.
 * Inconsistencies between readdir and lookup are collected in `problems`.
 */
export async function engineEntries(vol: Volume, o: DumpOptions = {}, problems: EngineDumpProblem[] = []): Promise<DumpEntry[]> {
  const fields = new Set(resolveFields(o));
  const out: DumpEntry[] = [];
  const visit = async (rel: Buffer, attr: Attr): Promise<void> => {
    const relText = encodeBytes(rel);
    const e = entryOf(relText, attr);
    if (fields.has('data')) {
      if (e.type === 'file') e.sha256 = createHash('sha256').update(await readAll(vol, attr.ino, attr.size)).digest('hex');
      else if (e.type === 'symlink') e.target = encodeBytes(await vol.readlink(attr.ino));
      else if (e.type === 'chr' || e.type === 'blk') e.rdev = splitRdev(attr.rdev);
    }
    if (fields.has('map') && e.type === 'file') e.map = await engineMap(vol, attr.ino);
    out.push(e);
    if (e.type !== 'dir') return;
    const entries = await vol.readdir(attr.ino);
    for (const de of entries) {
      const name = de.name.toString('latin1');
      if (name === '.' || name === '..') continue;
      const child = await vol.lookup(attr.ino, de.name);
      const childRel = rel.length === 1 ? Buffer.concat([rel, de.name]) : Buffer.concat([rel, Buffer.from('/'), de.name]);
      if (child.ino !== de.ino) problems.push({ path: encodeBytes(childRel), problem: `readdir says inode ${de.ino}, lookup ${child.ino}` });
      if (de.type !== 0 && de.type !== (child.mode & S_IFMT)) {
        problems.push({ path: encodeBytes(childRel), problem: `readdir type 0${de.type.toString(8)}, inode mode 0${child.mode.toString(8)}` });
      }
      await visit(childRel, child);
    }
  };
  await visit(Buffer.from('/'), await vol.getattr(vol.rootIno));
  return out;
}

export async function engineDump(vol: Volume, o: DumpOptions = {}, problems?: EngineDumpProblem[]): Promise<string> {
  return formatDump(await engineEntries(vol, o, problems), resolveFields(o));
}

/** The first `max` lines that differ between two dumps, as "-want / +got" pairs (empty: equal). */
export function dumpDiff(want: string, got: string, max = 20): string[] {
  const w = want.split('\n');
  const g = new Set(got.split('\n'));
  const ws = new Set(w);
  const out: string[] = [];
  for (const line of w) if (!g.has(line) && out.length < max) out.push(`- ${line}`);
  for (const line of got.split('\n')) if (!ws.has(line) && out.length < 2 * max) out.push(`+ ${line}`);
  return out;
}
