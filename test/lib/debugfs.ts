/**
 * debugfs.ocfs2 -R 'CMD' IMAGE, and parsers for the few answers tests read.
 *
 * debugfs.ocfs2 1.8.7 exits 0 even when a command fails ("stat: Directory entry not
 * found '/x'" on stderr), so debugfs() treats any stderr text as failure. Its command
 * line splits on spaces with no quoting: name a path with spaces by inode number,
 * "<BLKNO>" (debugfs's own filespec syntax). It has no write commands.
 */
import { run, SETUP_HINT } from './exec';

/** Runs one debugfs command; rejects with its message when it reports an error. */
export async function debugfs(image: string, cmd: string): Promise<string> {
  const r = await run('debugfs.ocfs2', ['-R', cmd, image]).catch((e: Error) => {
    throw new Error(`${e.message} (${SETUP_HINT})`);
  });
  const err = r.stderr.split('\n').filter((l) => l && !/^debugfs\.ocfs2 \d/.test(l));
  if (r.code !== 0 || err.length) {
    throw new Error(`debugfs.ocfs2 -R '${cmd}' ${image}: exit ${r.code}: ${err.join('\n')}`);
  }
  return r.text;
}

export interface ExtentRec {
  /** Logical start, in clusters. */
  cpos: number;
  countClusters: number;
  /** Physical start block. */
  blkno: number;
  /** e_flags: 0x1 unwritten, 0x2 refcounted. */
  flags: number;
}

export interface InodeStat {
  blkno: number;
  /** Permission bits (debugfs prints them without the type). */
  mode: number;
  /** debugfs's words: Regular, Directory, Symbolic Link, FIFO, Socket, Char Device, Block Device... */
  type: string;
  /** Flag words: Valid, System, Orphaned... */
  flags: string[];
  /** Dynamic features: the number, and words such as InlineData, IndexedDir. */
  dynFeatures: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  nlink: number;
  clusters: number;
  /** Depth of the inode's extent tree (undefined for inline data and fast symlinks). */
  treeDepth?: number;
  /** Leaf extent records of the whole tree, in the order debugfs prints them. */
  extents: ExtentRec[];
  fastSymlinkTarget?: string;
  /** Block number of the directory index root, for indexed directories. */
  dxRootBlkno?: number;
  raw: string;
}

/** Parses `stat FILESPEC` (which prints the inode and, for a deep tree, every extent block). */
export function parseStat(text: string): InodeStat {
  const num = (re: RegExp, what: string): number => {
    const m = re.exec(text);
    if (!m) throw new Error(`debugfs stat: no ${what} in:\n${text}`);
    return Number(m[1]);
  };
  const typeFlags = /Type: (.+?)\s+Attr: \S+\s+Flags: (.*)$/m.exec(text);
  const dyn = /Dynamic Features: \((0x[0-9a-fA-F]+)\)/.exec(text);
  const st: InodeStat = {
    blkno: num(/Inode: (\d+)/, 'Inode'),
    mode: parseInt(/Mode: (\d+)/.exec(text)?.[1] ?? 'x', 8),
    type: typeFlags?.[1] ?? '',
    flags: (typeFlags?.[2] ?? '').trim().split(/\s+/).filter(Boolean),
    dynFeatures: dyn ? parseInt(dyn[1], 16) : 0,
    uid: num(/User: (\d+)/, 'User'),
    gid: num(/Group: (\d+)/, 'Group'),
    sizeBytes: num(/Size: (\d+)/, 'Size'),
    nlink: num(/Links: (\d+)/, 'Links'),
    clusters: num(/Clusters: (\d+)/, 'Clusters'),
    extents: [],
    raw: text,
  };
  const depth = /Tree Depth: (\d+)/.exec(text);
  if (depth) st.treeDepth = Number(depth[1]);
  const fast = /Fast Symlink Destination: (.*)$/m.exec(text);
  if (fast) st.fastSymlinkTarget = fast[1];
  const dx = /Indexed Tree Root: (\d+)/.exec(text);
  if (dx) st.dxRootBlkno = Number(dx[1]);
  // Rows after a "Tree Depth: 0" header are leaf records (they carry a Flags column).
  let inLeaf = false;
  for (const line of text.split('\n')) {
    const hdr = /Tree Depth: (\d+)/.exec(line);
    if (hdr) {
      inLeaf = hdr[1] === '0';
      continue;
    }
    const row = /^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(0x[0-9a-fA-F]+)/.exec(line);
    if (inLeaf && row) {
      st.extents.push({
        cpos: Number(row[1]),
        countClusters: Number(row[2]),
        blkno: Number(row[3]),
        flags: parseInt(row[4], 16),
      });
    }
  }
  return st;
}

/** stat of a path ("/a/b") or of an inode ("<17>"). */
export async function statPath(image: string, filespec: string): Promise<InodeStat> {
  return parseStat(await debugfs(image, `stat ${filespec}`));
}

export interface LsEntry {
  blkno: number;
  /** ls-style mode string, e.g. "drwxr-xr-x" (debugfs prints 'f' for a FIFO). */
  modeString: string;
  nlink: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  name: string;
}

/** Parses `ls -l DIR`: one entry per line, "." and ".." included. */
export function parseLs(text: string): LsEntry[] {
  const out: LsEntry[] = [];
  const re = /^\s*(\d+)\s+(\S{10})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d{2}-\w{3}-\d{4} \d{2}:\d{2} (.*)$/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    out.push({
      blkno: Number(m[1]),
      modeString: m[2],
      nlink: Number(m[3]),
      uid: Number(m[4]),
      gid: Number(m[5]),
      sizeBytes: Number(m[6]),
      name: m[7],
    });
  }
  return out;
}

export async function lsDir(image: string, filespec: string): Promise<LsEntry[]> {
  return parseLs(await debugfs(image, `ls -l ${filespec}`));
}

export interface SuperblockStats {
  blockSize: number;
  clusterSize: number;
  rootBlkno: number;
  systemDirBlkno: number;
  maxSlots: number;
  label: string;
  uuid: string;
  /** Feature words as debugfs names them (e.g. "sparse", "inline-data", "unwritten"). */
  compat: string[];
  incompat: string[];
  roCompat: string[];
  raw: string;
}

/** Parses `stats` (the superblock). */
export async function superblockStats(image: string): Promise<SuperblockStats> {
  const text = await debugfs(image, 'stats');
  const field = (re: RegExp): string => {
    const m = re.exec(text);
    if (!m) throw new Error(`debugfs stats: ${re} not found in:\n${text}`);
    return m[1];
  };
  const words = (re: RegExp): string[] => (re.exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  return {
    blockSize: 1 << Number(field(/Block Size Bits: (\d+)/)),
    clusterSize: 1 << Number(field(/Cluster Size Bits: (\d+)/)),
    rootBlkno: Number(field(/Root Blknum: (\d+)/)),
    systemDirBlkno: Number(field(/System Dir Blknum: (\d+)/)),
    maxSlots: Number(field(/Max Node Slots: (\d+)/)),
    label: /Label: ?(.*)$/m.exec(text)?.[1] ?? '',
    uuid: field(/UUID: (\S+)/),
    compat: words(/Feature Compat: \d+ (.*)$/m),
    incompat: words(/Feature Incompat: \d+ (.*)$/m),
    roCompat: words(/Feature RO compat: \d+ (.*)$/m),
    raw: text,
  };
}
