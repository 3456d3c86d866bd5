/**
 * Ready-made specs: a tree with one of everything o2tool can write, sized to the
 * volume's geometry so it exercises block and cluster edges.
 */
import type { Spec, SpecEntry } from './spec';

export interface Geometry {
  blockSize: number;
  clusterSize: number;
  /** The volume has inline-data (mkfs default); inline entries are left out otherwise. */
  inlineData?: boolean;
  /** The volume has unwritten extents (mkfs default). */
  unwritten?: boolean;
}

/** The largest inline file and the longest fast symlink target on a block size. */
export function inlineMaxBytes(blockSize: number): number {
  return blockSize - 200; // offsetof(struct ocfs2_dinode, id2.i_data.id_data) = 0xC8
}
export function fastSymlinkMaxBytes(blockSize: number): number {
  return blockSize - 193; // target + NUL within blocksize - offsetof(id2.i_symlink) (0xC0)
}

/**
 * Directories, files of edge sizes, inline files, sparse files (holes, unwritten
 * extents, a file that is one hole), fast and slow symlinks, hard links, device nodes,
 * a FIFO, a socket, a 600-entry directory, names with blanks, '%', UTF-8 and a newline,
 * owners, modes and nanosecond times.
 */
export function richSpec(g: Geometry, seed = 1): Spec {
  const bs = g.blockSize;
  const cs = g.clusterSize;
  const MiB = 1024 * 1024;
  const s = (n: number): number => (seed * 1000 + n) >>> 0;
  const e: SpecEntry[] = [
    { kind: 'mkdir', path: '/d1', mode: 0o750, uid: 1000, gid: 100, atime: 1600000000, mtime: { sec: 1700000000, nsec: 123456789 }, ctime: 1700000001 },
    { kind: 'mkdir', path: '/d1/d2' },
    { kind: 'mkdir', path: '/d1/d2/d3', mode: 0o1777 },
    { kind: 'file', path: '/d1/one-byte', size: 1, seed: s(1) },
    { kind: 'file', path: '/d1/one-block', size: bs, seed: s(2) },
    { kind: 'file', path: '/d1/block-plus-one', size: bs + 1, seed: s(3) },
    { kind: 'file', path: '/d1/clusters-unaligned', size: 3 * cs + 17, seed: s(4), mode: 0o600, uid: 1, gid: 2 },
    { kind: 'file', path: '/d1/d2/big', size: 5 * MiB + 123, seed: s(5), atime: { sec: 1500000000, nsec: 1 }, mtime: { sec: 1500000001, nsec: 999999999 }, ctime: 1500000002 },
    { kind: 'file', path: '/empty', size: 0, seed: 0 },
    { kind: 'sparse', path: '/sparse', size: 20 * MiB, seed: s(6), ranges: [
      { offset: 0, length: 10 },
      { offset: 5 * cs + 3, length: 5000 },
      { offset: 10 * MiB, length: 100000 },
      ...(g.unwritten === false ? [] : [{ offset: 15 * MiB, length: 2 * cs, unwritten: true }]),
    ] },
    { kind: 'sparse', path: '/tail-data', size: 3 * MiB, seed: s(7), ranges: [{ offset: 3 * MiB - 10, length: 10 }] },
    { kind: 'sparse', path: '/all-hole', size: 1 * MiB + 5, seed: 0, ranges: [] },
    { kind: 'symlink', path: '/fast', target: 'd1/d2/big' },
    { kind: 'symlink', path: '/fast-longest', target: 'f'.repeat(fastSymlinkMaxBytes(bs)) },
    { kind: 'symlink', path: '/slow-shortest', target: 's'.repeat(fastSymlinkMaxBytes(bs) + 1) },
    { kind: 'symlink', path: '/slow-long', target: `/${'long/'.repeat(799)}end` }, // 3999 bytes
    { kind: 'symlink', path: '/dangling', target: 'no such file', uid: 5, gid: 6 },
    { kind: 'link', existing: '/d1/one-byte', path: '/d1/d2/hard' },
    { kind: 'link', existing: '/d1/one-byte', path: '/hard2' },
    { kind: 'node', path: '/fifo', node: 'fifo' },
    { kind: 'node', path: '/sock', node: 'sock' },
    { kind: 'node', path: '/null', node: 'chr', major: 1, minor: 3, mode: 0o666 },
    { kind: 'node', path: '/wide', node: 'blk', major: 259, minor: 70000, mode: 0o600 },
    { kind: 'dir', path: '/many', count: 600 },
    { kind: 'mkdir', path: '/we ird%dir' },
    { kind: 'file', path: '/we ird%dir/na\tme\nwith newline', size: 33, seed: s(8) },
    { kind: 'file', path: '/we ird%dir/ünïcødé', size: 44, seed: s(9) },
  ];
  if (g.unwritten !== false) e.push({ kind: 'unwritten', path: '/prealloc', size: 3 * cs + 5 });
  if (g.inlineData !== false) {
    e.push(
      { kind: 'inline', path: '/d1/inline-small', size: 100, seed: s(10) },
      { kind: 'inline', path: '/d1/inline-max', size: inlineMaxBytes(bs), seed: s(11) },
      { kind: 'inline', path: '/d1/inline-empty', size: 0, seed: 0 },
    );
  }
  return e;
}
