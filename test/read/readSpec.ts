/**
 * The tree the read-side conformance tests build with o2tool (libocfs2) and then
 * read back through o2fuse: one of every on-disk shape a reader must handle,
 * sized to the volume's geometry so that block and cluster edges are crossed.
 *
 * - nested directories with owners, modes and nanosecond times;
 * - extent files of sizes 0, 1, bs-1, bs, bs+1, cs-1, cs, cs+1 and a few MiB;
 * - inline-data files (empty, small, the largest that fits) when the volume has inline-data;
 * - sparse files (volumes with sparse allocation): a hole at the head, in the middle, at the tail,
 *   a file that is one hole;
 * - unwritten extents (alone and next to data) when the volume has them;
 * - a fragmented file whose leaf records overflow the inode (an extent tree of depth >= 1),
 *   when that costs less than 16 MiB of clusters;
 * - hard links (across directories), fast and slow symlinks (both edges), a dangling one;
 * - a FIFO and device nodes; a directory of `manyCount` entries (3,000 by default);
 * - names with blanks, '%' and UTF-8, and one of 255 bytes (the longest a dirent holds).
 */
import { fastSymlinkMaxBytes, inlineMaxBytes } from '../lib/fixtures';
import type { Spec, SpecEntry } from '../lib/spec';
import type { Range } from '../lib/content';

export interface ReadGeometry {
  blockSize: number;
  clusterSize: number;
  /** The volume has inline-data. */
  inlineData: boolean;
  /** The volume has sparse allocation (holes): without it, files with holes are corrupt (fsck INODE_CLUSTERS). */
  sparse: boolean;
  /** The volume has unwritten extents. */
  unwritten: boolean;
  /** Entries in /many (default 3000). */
  manyCount?: number;
}

const MiB = 1024 * 1024;
/** offsetof(struct ocfs2_dinode, id2.i_list.l_recs), and the size of one extent record. */
const INODE_LIST_RECS_OFFSET = 0xc0 + 0x10;
const EXTENT_REC_BYTES = 0x10;
/** Largest allocation the fragmented file may take (it is a tree-depth test, not a space test). */
const FRAGMENTED_BYTES_MAX = 16 * MiB;

/** Leaf records that fit in the inode's own extent list (ocfs2_extent_recs_per_inode). */
export function extentRecsPerInode(blockSize: number): number {
  return Math.floor((blockSize - INODE_LIST_RECS_OFFSET) / EXTENT_REC_BYTES);
}

/** Data ranges one cluster long with a one-cluster hole between each: one leaf record per range. */
export function fragmentedRanges(clusterSize: number, count: number): Range[] {
  return Array.from({ length: count }, (_, i) => ({ offset: 2 * i * clusterSize, length: clusterSize }));
}

/** The edge sizes every geometry gets, by file name (the sort order of the names is irrelevant). */
export function edgeSizes(blockSize: number, clusterSize: number): Record<string, number> {
  return {
    zero: 0,
    one: 1,
    'bs-1': blockSize - 1,
    bs: blockSize,
    'bs+1': blockSize + 1,
    'cs-1': clusterSize - 1,
    cs: clusterSize,
    'cs+1': clusterSize + 1,
    'several-MiB': 3 * MiB + 5,
  };
}

export function readSpec(g: ReadGeometry, seed = 7): Spec {
  const bs = g.blockSize;
  const cs = g.clusterSize;
  const s = (n: number): number => (seed * 1000 + n) >>> 0;
  const e: SpecEntry[] = [
    { kind: 'mkdir', path: '/a', mode: 0o750, uid: 1000, gid: 100, atime: 1600000000, mtime: { sec: 1700000000, nsec: 123456789 }, ctime: 1700000001 },
    { kind: 'mkdir', path: '/a/b', uid: 4294967294, gid: 65534 },
    { kind: 'mkdir', path: '/a/b/c', mode: 0o1777 },
    { kind: 'mkdir', path: '/a/b/c/d' },
    { kind: 'mkdir', path: '/sizes' },
    { kind: 'mkdir', path: '/sparse' },
    { kind: 'mkdir', path: '/links' },
  ];
  let n = 1;
  for (const [name, size] of Object.entries(edgeSizes(bs, cs))) {
    e.push({ kind: 'file', path: `/sizes/${name}`, size, seed: s(n++) });
  }
  e.push({ kind: 'file', path: '/a/b/c/d/deep', size: 2 * cs + 3, seed: s(n++), mode: 0o600, uid: 7, gid: 8,
    atime: { sec: 1500000000, nsec: 1 }, mtime: { sec: 1500000001, nsec: 999999999 }, ctime: 1500000002 });
  if (g.inlineData) {
    e.push(
      { kind: 'inline', path: '/sizes/inline-empty', size: 0, seed: 0 },
      { kind: 'inline', path: '/sizes/inline-small', size: 100, seed: s(n++) },
      { kind: 'inline', path: '/sizes/inline-max', size: inlineMaxBytes(bs), seed: s(n++) },
    );
  }
  if (g.sparse) e.push(
    { kind: 'sparse', path: '/sparse/head-hole', size: 4 * cs + 10, seed: s(n++), ranges: [{ offset: 3 * cs + 5, length: cs + 5 }] },
    { kind: 'sparse', path: '/sparse/middle-hole', size: 6 * cs, seed: s(n++), ranges: [{ offset: 0, length: cs + 1 }, { offset: 5 * cs - 3, length: cs + 3 }] },
    { kind: 'sparse', path: '/sparse/tail-hole', size: 8 * MiB, seed: s(n++), ranges: [{ offset: 0, length: bs + 7 }] },
    { kind: 'sparse', path: '/sparse/all-hole', size: 2 * MiB + 3, seed: 0, ranges: [] },
  );
  if (g.unwritten) {
    e.push(
      { kind: 'unwritten', path: '/sparse/prealloc', size: 3 * cs + 5 },
      { kind: 'sparse', path: '/sparse/data-then-unwritten', size: 6 * cs, seed: s(n++), ranges: [
        { offset: 10, length: cs - 10 },
        { offset: 2 * cs, length: 2 * cs, unwritten: true },
      ] },
    );
  }
  const frag = extentRecsPerInode(bs) + 5;
  if (g.sparse && frag * cs <= FRAGMENTED_BYTES_MAX) {
    e.push({ kind: 'sparse', path: '/sparse/fragmented', size: 2 * frag * cs, seed: s(n++), ranges: fragmentedRanges(cs, frag) });
  }
  e.push(
    { kind: 'link', existing: '/sizes/bs+1', path: '/links/hard-1' },
    { kind: 'link', existing: '/sizes/bs+1', path: '/a/b/hard-2' },
    { kind: 'symlink', path: '/links/fast', target: '../sizes/several-MiB' },
    { kind: 'symlink', path: '/links/fast-longest', target: 'f'.repeat(fastSymlinkMaxBytes(bs)) },
    { kind: 'symlink', path: '/links/slow-shortest', target: 's'.repeat(fastSymlinkMaxBytes(bs) + 1) },
    { kind: 'symlink', path: '/links/slow-long', target: `/${'long/'.repeat(799)}end` },
    { kind: 'symlink', path: '/links/dangling', target: 'no such file', uid: 5, gid: 6 },
    { kind: 'node', path: '/fifo', node: 'fifo' },
    { kind: 'node', path: '/null', node: 'chr', major: 1, minor: 3, mode: 0o666 },
    { kind: 'node', path: '/wide', node: 'blk', major: 259, minor: 70000, mode: 0o600 },
    { kind: 'dir', path: '/many', count: g.manyCount ?? 3000 },
    { kind: 'mkdir', path: '/we ird%dir' },
    { kind: 'file', path: '/we ird%dir/na me', size: 33, seed: s(n++) },
    { kind: 'file', path: '/we ird%dir/ünïcødé', size: 44, seed: s(n++) },
    { kind: 'file', path: `/a/${'n'.repeat(255)}`, size: 1, seed: s(n++) },
  );
  return e;
}
