/**
 * Tree specs: typed objects -> the line format `o2tool populate` reads, and what a volume
 * built from a spec must then contain.
 *
 * Spec text (one command per line, '#' starts a comment line, tokens split on blanks;
 * paths and symlink targets are percent-encoded like dump paths; numbers are decimal,
 * or 0x hex, with an optional K/M/G suffix; parents must be created before children):
 *
 *   mkdir     PATH [ATTR...]                      directory (default mode 0755)
 *   file      PATH SIZE SEED [ATTR...]            extent-based file, bytes [0,SIZE) of stream SEED
 *   inline    PATH SIZE SEED [ATTR...]            inline-data file (volume needs inline-data;
 *                                                 SIZE <= blocksize - 200)
 *   sparse    PATH SIZE SEED RANGES [ATTR...]     i_size SIZE; data only in RANGES
 *                                                 RANGES = OFF:LEN[,OFF:LEN...]; "uOFF:LEN" is an
 *                                                 unwritten extent (reads zeros); holes elsewhere;
 *                                                 RANGES "-" = no data at all (one hole)
 *   unwritten PATH SIZE [ATTR...]                 = sparse PATH SIZE 0 u0:SIZE
 *   symlink   PATH TARGET [ATTR...]               fast (in the inode) when TARGET is at most
 *                                                 blocksize - 193 bytes, else slow (data blocks)
 *   link      EXISTING NEWPATH                    hard link (raises the link count)
 *   node      PATH fifo|sock|chr|blk [MAJ:MIN] [ATTR...]
 *   dir       PATH N [ATTR...]                    directory with N empty files f00000, f00001, ...
 *
 *   ATTR: mode=OCTAL (permission bits) uid=N gid=N atime=S[.FRACTION] mtime=... ctime=...
 *   Defaults: files and nodes 0644 (sock 0755), directories 0755, symlinks 0777, uid=gid=0,
 *   times = when o2tool ran (whole seconds). Data writes follow libocfs2: whole blocks,
 *   clusters allocated whole and the unwritten parts zeroed.
 */
import { type Range, genBytes, sha256Hex, sparseContent } from './content';
import { type DumpEntry, type NodeType, type Timespec, encodePath, formatTime } from './dumpFormat';

export type TimeArg = Timespec | number;

export interface Attrs {
  mode?: number;
  uid?: number;
  gid?: number;
  atime?: TimeArg;
  mtime?: TimeArg;
  ctime?: TimeArg;
}

export type SpecEntry =
  | ({ kind: 'mkdir'; path: string } & Attrs)
  | ({ kind: 'file'; path: string; size: number; seed: number } & Attrs)
  | ({ kind: 'inline'; path: string; size: number; seed: number } & Attrs)
  | ({ kind: 'sparse'; path: string; size: number; seed: number; ranges: Range[] } & Attrs)
  | ({ kind: 'unwritten'; path: string; size: number } & Attrs)
  | ({ kind: 'symlink'; path: string; target: string } & Attrs)
  | { kind: 'link'; existing: string; path: string }
  | ({ kind: 'node'; path: string; node: 'fifo' | 'sock' | 'chr' | 'blk'; major?: number; minor?: number } & Attrs)
  | ({ kind: 'dir'; path: string; count: number } & Attrs);

export type Spec = readonly SpecEntry[];

function toTimespec(t: TimeArg): Timespec {
  return typeof t === 'number' ? { sec: t, nsec: 0 } : t;
}

function attrText(a: Attrs): string {
  const out: string[] = [];
  if (a.mode !== undefined) out.push(`mode=${a.mode.toString(8).padStart(4, '0')}`);
  if (a.uid !== undefined) out.push(`uid=${a.uid}`);
  if (a.gid !== undefined) out.push(`gid=${a.gid}`);
  if (a.atime !== undefined) out.push(`atime=${formatTime(toTimespec(a.atime))}`);
  if (a.mtime !== undefined) out.push(`mtime=${formatTime(toTimespec(a.mtime))}`);
  if (a.ctime !== undefined) out.push(`ctime=${formatTime(toTimespec(a.ctime))}`);
  return out.map((s) => ` ${s}`).join('');
}

function rangesText(ranges: readonly Range[]): string {
  if (!ranges.length) return '-';
  return ranges.map((r) => `${r.unwritten ? 'u' : ''}${r.offset}:${r.length}`).join(',');
}

/** One spec line. */
export function specLine(e: SpecEntry): string {
  const p = encodePath(e.path);
  switch (e.kind) {
    case 'mkdir': return `mkdir ${p}${attrText(e)}`;
    case 'file': return `file ${p} ${e.size} ${e.seed >>> 0}${attrText(e)}`;
    case 'inline': return `inline ${p} ${e.size} ${e.seed >>> 0}${attrText(e)}`;
    case 'sparse': return `sparse ${p} ${e.size} ${e.seed >>> 0} ${rangesText(e.ranges)}${attrText(e)}`;
    case 'unwritten': return `unwritten ${p} ${e.size}${attrText(e)}`;
    case 'symlink': return `symlink ${p} ${encodePath(e.target)}${attrText(e)}`;
    case 'link': return `link ${encodePath(e.existing)} ${p}`;
    case 'node': {
      const dev = e.node === 'chr' || e.node === 'blk' ? ` ${e.major ?? 0}:${e.minor ?? 0}` : '';
      return `node ${p} ${e.node}${dev}${attrText(e)}`;
    }
    case 'dir': return `dir ${p} ${e.count}${attrText(e)}`;
  }
}

export function specText(spec: Spec): string {
  return spec.map((e) => `${specLine(e)}\n`).join('');
}

/** Names of the files a `dir` entry creates. */
export function dirEntryNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `f${String(i).padStart(5, '0')}`);
}

/** The bytes a file entry holds (file, inline, sparse, unwritten). */
export function expectedContent(e: SpecEntry): Buffer {
  switch (e.kind) {
    case 'file':
    case 'inline':
      return genBytes(e.seed, 0, e.size);
    case 'sparse':
      return sparseContent(e.seed, e.size, e.ranges);
    case 'unwritten':
      return Buffer.alloc(e.size);
    default:
      throw new Error(`${e.kind} ${e.path} has no content`);
  }
}

/**
 * The map o2tool dump -m must print for a file entry on a volume with this cluster size.
 * Ranges overlapping at cluster granularity are not modelled (data written into an
 * unwritten cluster splits it the way libocfs2 chooses): such specs throw.
 */
export function expectedMap(e: SpecEntry, clusterBytes: number): string {
  const up = (n: number): number => Math.ceil(n / clusterBytes) * clusterBytes;
  const down = (n: number): number => Math.floor(n / clusterBytes) * clusterBytes;
  let ranges: Range[];
  switch (e.kind) {
    case 'inline': return 'inline';
    case 'file': ranges = e.size ? [{ offset: 0, length: e.size }] : []; break;
    case 'unwritten': ranges = e.size ? [{ offset: 0, length: e.size, unwritten: true }] : []; break;
    case 'sparse': ranges = e.ranges; break;
    default: throw new Error(`${e.kind} ${e.path} has no map`);
  }
  const runs = ranges
    .map((r) => ({ start: down(r.offset), end: up(r.offset + r.length), u: !!r.unwritten }))
    .sort((a, b) => a.start - b.start);
  const merged: typeof runs = [];
  for (const r of runs) {
    const last = merged[merged.length - 1];
    if (last && r.start < last.end && r.u !== last.u) {
      throw new Error(`expectedMap: written and unwritten ranges share a cluster in ${e.path}`);
    }
    if (last && r.start <= last.end && r.u === last.u) last.end = Math.max(last.end, r.end);
    else merged.push({ ...r });
  }
  return merged.length ? merged.map((r) => `${r.start}+${r.end - r.start}${r.u ? 'u' : ''}`).join(',') : '-';
}

/** What the dump must show for one path; absent fields are not checked. */
export type Expectation = Partial<DumpEntry> & { path: string; type: NodeType };

export interface ExpectOptions {
  /** Cluster size: add expected maps for files (compare against a dump taken with -m). */
  clusterBytes?: number;
  /** The volume has /lost+found (mkfs.ocfs2 makes one). Default true. */
  lostFound?: boolean;
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

/** Every path a volume built from spec (on a fresh mkfs volume) holds, with its expected fields. */
export function expectTree(spec: Spec, o: ExpectOptions = {}): Map<string, Expectation> {
  const out = new Map<string, Expectation>();
  const byDecoded = new Map<string, Expectation>();
  const add = (decoded: string, x: Omit<Expectation, 'path'>): Expectation => {
    const e: Expectation = { path: encodePath(decoded), ...x };
    out.set(e.path, e);
    byDecoded.set(decoded, e);
    return e;
  };
  const times = (e: Attrs): Partial<DumpEntry> => {
    const t: Partial<DumpEntry> = {};
    if (e.atime !== undefined) t.atime = toTimespec(e.atime);
    if (e.mtime !== undefined) t.mtime = toTimespec(e.mtime);
    if (e.ctime !== undefined) t.ctime = toTimespec(e.ctime);
    return t;
  };
  const owner = (e: Attrs, defMode: number): Partial<DumpEntry> => ({
    mode: e.mode ?? defMode, uid: e.uid ?? 0, gid: e.gid ?? 0, ...times(e),
  });
  const lostFound = o.lostFound ?? true;
  const aliases: string[] = [];
  add('/', { type: 'dir', nlink: 2 + (lostFound ? 1 : 0) });
  if (lostFound) add('/lost+found', { type: 'dir', nlink: 2, mode: 0o755 });
  const bump = (decoded: string): void => {
    const dir = byDecoded.get(decoded);
    if (!dir || dir.type !== 'dir') throw new Error(`spec: parent ${decoded} is not a directory`);
    dir.nlink = (dir.nlink ?? 2) + 1;
  };
  for (const e of spec) {
    if (e.kind !== 'link' && byDecoded.has(e.path)) throw new Error(`spec: ${e.path} twice`);
    switch (e.kind) {
      case 'mkdir':
      case 'dir': {
        bump(parentOf(e.path));
        add(e.path, { type: 'dir', nlink: 2, ...owner(e, 0o755) });
        if (e.kind === 'dir') {
          const sha = sha256Hex('');
          for (const name of dirEntryNames(e.count)) {
            add(`${e.path}/${name}`, { type: 'file', size: 0, nlink: 1, mode: 0o644, uid: 0, gid: 0, sha256: sha, ...(o.clusterBytes ? { map: '-' } : {}) });
          }
        }
        break;
      }
      case 'file':
      case 'inline':
      case 'sparse':
      case 'unwritten':
        add(e.path, {
          type: 'file', size: e.size, nlink: 1, sha256: sha256Hex(expectedContent(e)), ...owner(e, 0o644),
          ...(o.clusterBytes ? { map: expectedMap(e, o.clusterBytes) } : {}),
        });
        break;
      case 'symlink':
        add(e.path, { type: 'symlink', size: Buffer.byteLength(e.target), nlink: 1, target: encodePath(e.target), ...owner(e, 0o777) });
        break;
      case 'node':
        add(e.path, {
          type: e.node, nlink: 1, size: 0, ...owner(e, e.node === 'sock' ? 0o755 : 0o644),
          ...(e.node === 'chr' || e.node === 'blk' ? { rdev: { major: e.major ?? 0, minor: e.minor ?? 0 } } : {}),
        });
        break;
      case 'link': {
        const target = byDecoded.get(e.existing);
        if (!target || target.type === 'dir') throw new Error(`spec: link to ${e.existing}, not a non-directory`);
        target.nlink = (target.nlink ?? 1) + 1;
        byDecoded.set(e.path, target);
        aliases.push(e.path);
        break;
      }
    }
  }
  // a hard link shows every field of its inode, including link counts raised later
  for (const alias of aliases) out.set(encodePath(alias), { ...byDecoded.get(alias)!, path: encodePath(alias) });
  return out;
}

/**
 * Differences between a dump and a spec's expectations, one readable line each
 * (empty = match). Paths in `ignore` (decoded) and below them are skipped.
 */
export function diffAgainstSpec(entries: readonly DumpEntry[], expected: Map<string, Expectation>, ignore: readonly string[] = []): string[] {
  const skip = ignore.map((p) => encodePath(p));
  const skipped = (p: string): boolean => skip.some((s) => p === s || p.startsWith(`${s}/`));
  const diffs: string[] = [];
  const seen = new Set<string>();
  for (const e of entries) {
    if (skipped(e.path)) continue;
    seen.add(e.path);
    const x = expected.get(e.path);
    if (!x) {
      diffs.push(`${e.path}: in the volume but not in the spec`);
      continue;
    }
    for (const k of Object.keys(x) as (keyof DumpEntry)[]) {
      if (k === 'path') continue;
      const want = JSON.stringify(x[k]);
      const got = JSON.stringify(e[k]);
      if (e[k] === undefined) continue; // the dump left this field out
      if (want !== got) diffs.push(`${e.path}: ${k} is ${got}, spec says ${want}`);
    }
  }
  for (const p of expected.keys()) {
    if (!seen.has(p) && !skipped(p)) diffs.push(`${p}: in the spec but not in the volume`);
  }
  return diffs;
}
