/**
 * The dump format shared by `o2tool dump` (libocfs2's view of a volume) and shadow.ts
 * (the view through a mounted directory), so the two compare line by line.
 *
 * One line per path, sorted bytewise by encoded path (C strcmp), root first as "/":
 *
 *   PATH TYPE [mode=0644] [uid=N] [gid=N] [nlink=N] [size=N] [ino=N]
 *             [atime=S.NNNNNNNNN] [mtime=...] [ctime=...] [DATA] [map=...]
 *
 * - PATH: absolute; every byte outside 0x21..0x7e, and '%', written %XX (uppercase hex).
 * - TYPE: file dir symlink fifo sock chr blk.
 * - mode: the permission bits (07777) in 4 octal digits.
 * - ino: the inode's block number (o2tool); st_ino (shadow).
 * - times: seconds '.' nanoseconds, always 9 digits.
 * - DATA (field "data"): sha256=HEX of a file's bytes; target=ENCODED for a symlink
 *   (same escaping as PATH); rdev=MAJOR:MINOR for chr/blk; nothing for others.
 * - map (files only, off unless asked for): the allocated ranges in bytes, logical order,
 *   logically adjacent extents of the same kind merged: "map=0+4096,8192+65536u"
 *   ('u' = unwritten), "map=inline" for inline data, "map=-" for none.
 * Fields appear in the order above; which ones is chosen per dump (DEFAULT_FIELDS unless
 * told otherwise), and both producers leave out the same ones.
 */

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'sock' | 'chr' | 'blk' | 'unknown';

export type DumpField = 'mode' | 'uid' | 'gid' | 'nlink' | 'size' | 'ino' | 'atime' | 'mtime' | 'ctime' | 'data' | 'map';

/** Canonical field order. */
export const ALL_FIELDS: readonly DumpField[] = [
  'mode', 'uid', 'gid', 'nlink', 'size', 'ino', 'atime', 'mtime', 'ctime', 'data', 'map',
];

/** What `o2tool dump` prints without -f: everything but the extent map. */
export const DEFAULT_FIELDS: readonly DumpField[] = ALL_FIELDS.filter((f) => f !== 'map');

export interface Timespec {
  sec: number;
  nsec: number;
}

export interface DumpEntry {
  /** Encoded absolute path. */
  path: string;
  type: NodeType;
  mode?: number;
  uid?: number;
  gid?: number;
  nlink?: number;
  size?: number;
  ino?: number;
  atime?: Timespec;
  mtime?: Timespec;
  ctime?: Timespec;
  sha256?: string;
  /** Encoded symlink target. */
  target?: string;
  rdev?: { major: number; minor: number };
  /** The map value as printed: "0+4096,8192+4096u", "inline" or "-". */
  map?: string;
}

export interface DumpOptions {
  /** Fields to print; default DEFAULT_FIELDS. */
  fields?: readonly DumpField[];
  /** Add the extent map (same as including 'map' in fields). */
  map?: boolean;
  /** Subtree to dump (decoded absolute path); default "/". */
  path?: string;
}

export function resolveFields(o: DumpOptions = {}): DumpField[] {
  const set = new Set<DumpField>(o.fields ?? DEFAULT_FIELDS);
  if (o.map) set.add('map');
  return ALL_FIELDS.filter((f) => set.has(f));
}

/** Percent-encodes bytes the way o2tool does. */
export function encodeBytes(bytes: Buffer): string {
  let out = '';
  for (const c of bytes) {
    out += c <= 0x20 || c >= 0x7f || c === 0x25 ? `%${c.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(c);
  }
  return out;
}

/** Encodes a (UTF-8) path or name. */
export function encodePath(p: string | Buffer): string {
  return encodeBytes(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
}

export function decodeToBytes(encoded: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === '%') {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(encoded.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

export function formatTime(t: Timespec): string {
  return `${t.sec}.${String(t.nsec).padStart(9, '0')}`;
}

function parseTime(s: string): Timespec {
  const m = /^(\d+)\.(\d{9})$/.exec(s);
  if (!m) throw new Error(`bad time "${s}" in dump`);
  return { sec: Number(m[1]), nsec: Number(m[2]) };
}

function need<T>(v: T | undefined, field: string, e: DumpEntry): T {
  if (v === undefined) throw new Error(`dump entry ${e.path} lacks ${field}`);
  return v;
}

/** One dump line for an entry, with exactly the given fields (canonical order). */
export function formatEntry(e: DumpEntry, fields: readonly DumpField[]): string {
  const on = new Set(fields);
  const parts = [e.path, e.type];
  if (on.has('mode')) parts.push(`mode=${need(e.mode, 'mode', e).toString(8).padStart(4, '0')}`);
  if (on.has('uid')) parts.push(`uid=${need(e.uid, 'uid', e)}`);
  if (on.has('gid')) parts.push(`gid=${need(e.gid, 'gid', e)}`);
  if (on.has('nlink')) parts.push(`nlink=${need(e.nlink, 'nlink', e)}`);
  if (on.has('size')) parts.push(`size=${need(e.size, 'size', e)}`);
  if (on.has('ino')) parts.push(`ino=${need(e.ino, 'ino', e)}`);
  if (on.has('atime')) parts.push(`atime=${formatTime(need(e.atime, 'atime', e))}`);
  if (on.has('mtime')) parts.push(`mtime=${formatTime(need(e.mtime, 'mtime', e))}`);
  if (on.has('ctime')) parts.push(`ctime=${formatTime(need(e.ctime, 'ctime', e))}`);
  if (on.has('data')) {
    if (e.type === 'file') parts.push(`sha256=${need(e.sha256, 'sha256', e)}`);
    else if (e.type === 'symlink') parts.push(`target=${need(e.target, 'target', e)}`);
    else if (e.type === 'chr' || e.type === 'blk') {
      const r = need(e.rdev, 'rdev', e);
      parts.push(`rdev=${r.major}:${r.minor}`);
    }
  }
  if (on.has('map') && e.type === 'file') parts.push(`map=${need(e.map, 'map', e)}`);
  return parts.join(' ');
}

/** Bytewise order of encoded paths (what C strcmp gives; encoded paths are ASCII). */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The whole dump text: sorted lines, each ending in a newline. */
export function formatDump(entries: readonly DumpEntry[], fields: readonly DumpField[]): string {
  return [...entries]
    .sort((a, b) => comparePaths(a.path, b.path))
    .map((e) => `${formatEntry(e, fields)}\n`)
    .join('');
}

export function parseDumpLine(line: string): DumpEntry {
  const [path, type, ...rest] = line.split(' ');
  if (!path || !type) throw new Error(`bad dump line "${line}"`);
  const e: DumpEntry = { path, type: type as NodeType };
  for (const kv of rest) {
    const eq = kv.indexOf('=');
    const k = kv.slice(0, eq);
    const v = kv.slice(eq + 1);
    switch (k) {
      case 'mode': e.mode = parseInt(v, 8); break;
      case 'uid': e.uid = Number(v); break;
      case 'gid': e.gid = Number(v); break;
      case 'nlink': e.nlink = Number(v); break;
      case 'size': e.size = Number(v); break;
      case 'ino': e.ino = Number(v); break;
      case 'atime': e.atime = parseTime(v); break;
      case 'mtime': e.mtime = parseTime(v); break;
      case 'ctime': e.ctime = parseTime(v); break;
      case 'sha256': e.sha256 = v; break;
      case 'target': e.target = v; break;
      case 'rdev': {
        const [major, minor] = v.split(':').map(Number);
        e.rdev = { major, minor };
        break;
      }
      case 'map': e.map = v; break;
      default: throw new Error(`unknown field "${k}" in dump line "${line}"`);
    }
  }
  return e;
}

export function parseDump(text: string): DumpEntry[] {
  return text.split('\n').filter(Boolean).map(parseDumpLine);
}

/** Entries by path. */
export function byPath(entries: readonly DumpEntry[]): Map<string, DumpEntry> {
  return new Map(entries.map((e) => [e.path, e]));
}
