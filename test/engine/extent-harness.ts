/**
 * Shared pieces of the extent-tree and file-write tests: a read-write
 * volume on a fresh image, files made through the engine, a shadow copy of
 * each file's bytes to compare with, the space accounting that must come
 * back after everything is freed, and a checker for the shape every change
 * must leave the extent tree in (the invariants listed in fs/extentTree.ts).
 */
import type { Test } from 'tap';
import { FileDevice } from '../../io/fileDevice';
import { Volume } from '../../fs/volume';
import type { Inode } from '../../fs/inode';
import type { Extent } from '../../fs/extentMap';
import { readExtentBlock } from '../../fs/blocks';
import { readFileData } from '../../fs/file';
import { extentRecClusters } from '../../fs/format/extent';
import { EXTENT_ALLOC_SYSTEM_INODE, OCFS2_EXT_UNWRITTEN, systemInodeName } from '../../fs/format/constants';
import { type Transaction, editInode } from '../../fs/transaction';
import { ExtentTree, dinodeExtentRoot, freeRuns, insertExtent } from '../../fs/extentTree';
import { makeImage, type ImageOptions } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { cat } from '../lib/oracle';

export const O_RDWR = 2;
const CALLER = { uid: 0, gid: 0 };

/** A fresh image (noindexed-dirs: these tests are about file extent trees, and directories stay small and plain). */
export async function freshImage(t: Test, o: ImageOptions & { features?: string } = {}): Promise<string> {
  const features = ['noindexed-dirs', ...(o.features ? [o.features] : [])].join(',');
  return makeImage(t, { sizeBytes: 256 * 1024 * 1024, ...o, features });
}

export async function mountRw(image: string): Promise<Volume> {
  return Volume.mount(await FileDevice.open(image), { readOnly: false });
}

export interface TestFile {
  name: string;
  ino: number;
  fh: number;
  /** What the file must read as. */
  shadow: Buffer;
}

export async function createFile(vol: Volume, name: string): Promise<TestFile> {
  const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(name), 0o644, O_RDWR, CALLER);
  return { name, ino: attr.ino, fh, shadow: Buffer.alloc(0) };
}

/** Reopens a file by name on a (re)mounted volume. */
export async function openFile(vol: Volume, f: TestFile): Promise<TestFile> {
  const attr = await vol.lookup(vol.rootIno, Buffer.from(f.name));
  const fh = await vol.open(attr.ino, O_RDWR);
  return { ...f, ino: attr.ino, fh };
}

/** Writes through the engine and applies the same write to the shadow (only the bytes reported written). */
export async function writeBoth(vol: Volume, f: TestFile, offset: number, data: Buffer): Promise<number> {
  const n = await vol.write(f.ino, f.fh, offset, data);
  const end = offset + n;
  if (end > f.shadow.length) {
    const grown = Buffer.alloc(end);
    f.shadow.copy(grown);
    f.shadow = grown;
  }
  data.copy(f.shadow, offset, 0, n);
  return n;
}

export async function truncateBoth(vol: Volume, f: TestFile, size: number): Promise<void> {
  await vol.setattr(f.ino, { size });
  const next = Buffer.alloc(size);
  f.shadow.copy(next, 0, 0, Math.min(size, f.shadow.length));
  f.shadow = next;
}

/** First differing byte of two buffers (-1 when equal, length when one is a prefix of the other). */
export function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function diffReport(t: Test, got: Buffer, size: number, f: TestFile, message: string): boolean {
  const at = firstDiff(got, f.shadow);
  const same = size === f.shadow.length && at < 0;
  return t.ok(same, message, same ? {} : {
    size, expectedSize: f.shadow.length, firstDifferenceAt: at,
    got: got.subarray(Math.max(0, at - 4), at + 12).toString('hex'),
    expected: f.shadow.subarray(Math.max(0, at - 4), at + 12).toString('hex'),
  });
}

/**
 * The file reads back equal to the shadow twice: through the engine's read
 * (page cache and all), and, after fsync, straight from the device through
 * the extent map (what a remount, libocfs2 or the kernel would see; the page
 * cache would hide bytes the write path failed to zero on disk).
 */
export async function assertContent(t: Test, vol: Volume, f: TestFile, what: string): Promise<boolean> {
  const attr = await vol.getattr(f.ino);
  const got = await vol.read(f.ino, f.fh, 0, Math.max(attr.size, f.shadow.length) + 1);
  const viaEngine = diffReport(t, got, attr.size, f, `${what}: ${f.name} reads back as written (${f.shadow.length} bytes)`);
  await vol.fsync(f.ino, f.fh, false);
  const inode = await vol.iget(f.ino);
  const raw = await readFileData(vol, inode, 0, inode.size + 1);
  const onDisk = diffReport(t, raw, inode.size, f, `${what}: ${f.name} is on the device as written`);
  return viaEngine && onDisk;
}

/** libocfs2 (the o2tool oracle) reads the file equal to the shadow: run on an unmounted image. */
export async function assertOracleContent(t: Test, image: string, f: TestFile): Promise<boolean> {
  const got = await cat(image, `/${f.name}`);
  const at = firstDiff(got, f.shadow);
  return t.ok(at < 0, `libocfs2 reads ${f.name} as written (${f.shadow.length} bytes)`,
    at < 0 ? {} : { size: got.length, expectedSize: f.shadow.length, firstDifferenceAt: at });
}

/** Global free clusters and the extent suballocator's use: what allocation and freeing must balance. */
export interface SpaceCounts {
  freeClusters: number;
  extentBlocksUsed: number;
  /** Clusters the extent suballocator holds (it grows by whole groups and never gives them back). */
  extentAllocClusters: number;
}

export async function spaceCounts(vol: Volume): Promise<SpaceCounts> {
  const ea = await vol.iget(vol.systemFile(systemInodeName(EXTENT_ALLOC_SYSTEM_INODE, vol.slot)));
  return {
    freeClusters: await vol.alloc.freeClusterCount(),
    extentBlocksUsed: ea.di.i_used,
    extentAllocClusters: ea.di.i_clusters,
  };
}

/** After freeing everything a test allocated, the counts are back where they started. */
export function assertSpaceBack(t: Test, start: SpaceCounts, now: SpaceCounts, what: string): void {
  t.equal(now.extentBlocksUsed, start.extentBlocksUsed, `${what}: every extent block is freed`);
  const grown = now.extentAllocClusters - start.extentAllocClusters;
  t.equal(now.freeClusters + grown, start.freeClusters,
    `${what}: every data cluster is freed (${grown} clusters went to new extent-allocator groups)`);
}

export interface TreeShape {
  depth: number;
  extentBlocks: number;
  leaves: number;
  records: number;
  extents: Extent[];
  /** Broken invariants, described; empty when the tree is well formed. */
  problems: string[];
}

/**
 * Walks the inode's extent tree from disk (through the block cache) and
 * checks every invariant fs/extentTree.ts promises.
 */
export async function treeShape(vol: Volume, inode: Inode): Promise<TreeShape> {
  const di = inode.di;
  const problems: string[] = [];
  const shape: TreeShape = { depth: 0, extentBlocks: 0, leaves: 0, records: 0, extents: [], problems };
  const root = di.list;
  if (!root) return shape;
  shape.depth = root.l_tree_depth;
  const leavesInOrder: number[] = [];
  const bpc = vol.geo.bpc;
  const walk = async (list: typeof root, where: string, rangeStart: number, rangeEnd: number, exactEnd: boolean): Promise<number> => {
    const depth = list.l_tree_depth;
    const n = list.l_next_free_rec;
    if (n > list.l_count) problems.push(`${where}: l_next_free_rec ${n} > l_count ${list.l_count}`);
    const recs = list.l_recs.slice(0, n).map((r) => ({ cpos: r.e_cpos, clusters: extentRecClusters(r, depth), blkno: r.e_blkno, flags: r.e_flags }));
    // Records a change gave up are zeroed, as the kernel leaves them (debugfs.ocfs2 and fsck only read up to n).
    for (let i = n; i < list.l_count; i++) {
      const r = list.l_recs[i];
      if (r && (r.e_cpos || r.e_int_clusters || r.e_leaf_clusters || r.e_reserved1 || r.e_flags || r.e_blkno)) {
        problems.push(`${where}: record ${i} past l_next_free_rec ${n} is not zero`);
      }
    }
    if (depth === 0) {
      let prevEnd = -1;
      for (const r of recs) {
        if (r.clusters === 0) problems.push(`${where}: empty leaf record at cpos ${r.cpos}`);
        if (r.clusters > 0xffff) problems.push(`${where}: leaf record of ${r.clusters} clusters`);
        if (r.cpos < prevEnd) problems.push(`${where}: records overlap or are unsorted at cpos ${r.cpos}`);
        if (r.cpos < rangeStart || r.cpos + r.clusters > rangeEnd) {
          problems.push(`${where}: record ${r.cpos}+${r.clusters} outside its range ${rangeStart}..${rangeEnd}`);
        }
        if (r.blkno % bpc) problems.push(`${where}: record at cpos ${r.cpos} starts mid-cluster (block ${r.blkno})`);
        prevEnd = r.cpos + r.clusters;
        shape.extents.push(r);
      }
      shape.records += recs.length;
      return recs.length ? prevEnd : rangeStart;
    }
    if (n === 0) problems.push(`${where}: empty interior list`);
    let end = rangeStart;
    for (let i = 0; i < n; i++) {
      const r = recs[i];
      const last = i === n - 1;
      if (i === 0 && r.cpos !== rangeStart) problems.push(`${where}: first interior record starts at ${r.cpos}, not ${rangeStart}`);
      if (!last && r.cpos + r.clusters !== recs[i + 1].cpos) {
        problems.push(`${where}: interior record ${i} (${r.cpos}+${r.clusters}) does not reach the next (${recs[i + 1].cpos})`);
      }
      const eb = await readExtentBlock(vol, r.blkno);
      shape.extentBlocks++;
      if (eb.h_list.l_tree_depth !== depth - 1) problems.push(`extent block ${r.blkno}: depth ${eb.h_list.l_tree_depth}, parent ${depth}`);
      if (eb.h_list.l_next_free_rec === 0) problems.push(`extent block ${r.blkno} is empty`);
      if (eb.h_list.l_tree_depth === 0) {
        leavesInOrder.push(r.blkno);
        shape.leaves++;
      }
      const childEnd = await walk(eb.h_list, `extent block ${r.blkno}`, r.cpos, last ? rangeEnd : recs[i + 1].cpos, exactEnd && last);
      if (last && exactEnd && r.cpos + r.clusters !== childEnd) {
        problems.push(`${where}: rightmost interior record ends at ${r.cpos + r.clusters}, its last leaf record at ${childEnd}`);
      }
      end = childEnd;
    }
    return end;
  };
  await walk(root, `inode ${inode.ino} root`, 0, Infinity, true);
  const wantLast = leavesInOrder.length ? leavesInOrder[leavesInOrder.length - 1] : 0;
  if (di.i_last_eb_blk !== wantLast) problems.push(`i_last_eb_blk ${di.i_last_eb_blk}, rightmost leaf ${wantLast}`);
  for (let i = 0; i < leavesInOrder.length; i++) {
    const eb = await readExtentBlock(vol, leavesInOrder[i]);
    const want = i + 1 < leavesInOrder.length ? leavesInOrder[i + 1] : 0;
    if (eb.h_next_leaf_blk !== want) problems.push(`leaf ${leavesInOrder[i]}: h_next_leaf_blk ${eb.h_next_leaf_blk}, expected ${want}`);
    // The kernel's merge code reads the leaf left of another as full (ocfs2_figure_merge_contig_type).
    const { l_next_free_rec: used, l_count: count } = eb.h_list;
    if (i + 1 < leavesInOrder.length && used !== count) problems.push(`leaf ${leavesInOrder[i]} is not the rightmost but holds ${used} of ${count} records`);
  }
  const mapped = shape.extents.reduce((s, e) => s + e.clusters, 0);
  if (mapped !== di.i_clusters) problems.push(`i_clusters ${di.i_clusters}, clusters mapped ${mapped}`);
  return shape;
}

/** Where the engine's cached leaf list (inode.extents) and the tree on disk map clusters differently. */
function cacheProblems(cached: readonly Extent[] | undefined, onDisk: readonly Extent[], bpc: number): string[] {
  if (!cached) return [];
  const flat = (list: readonly Extent[]): Map<number, string> => {
    const m = new Map<number, string>();
    for (const e of list) for (let i = 0; i < e.clusters; i++) m.set(e.cpos + i, `${e.blkno + i * bpc}/${e.flags}`);
    return m;
  };
  const a = flat(cached);
  const b = flat(onDisk);
  const out: string[] = [];
  for (const c of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(c) !== b.get(c)) out.push(`cluster ${c}: cached ${a.get(c) ?? 'hole'}, on disk ${b.get(c) ?? 'hole'}`);
    if (out.length >= 5) break;
  }
  return out;
}

export async function assertTree(t: Test, vol: Volume, ino: number, what: string): Promise<TreeShape> {
  const inode = await vol.iget(ino);
  const shape = await treeShape(vol, inode);
  shape.problems.push(...cacheProblems(inode.extents, shape.extents, vol.geo.bpc));
  t.same(shape.problems, [], `${what}: the extent tree is well formed (depth ${shape.depth}, ${shape.extentBlocks} extent blocks, ${shape.records} records)`);
  return shape;
}

/** Unmounts, then fsck.ocfs2 -fn must find nothing. */
export async function unmountAndFsck(t: Test, vol: Volume, image: string, what: string): Promise<boolean> {
  await vol.unmount();
  return assertFsckClean(t, image, what);
}

/**
 * Runs an extent-tree change on a file's mapping behind the page cache's
 * back (the test's stand-in for fallocate): dirty pages are written back
 * first and the file's cached pages are forgotten after, as the engine does
 * around a truncate.
 */
export async function behindCache<T>(vol: Volume, ino: number, label: string, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  await vol.fsync(ino, 0, false);
  try {
    return await withTx(vol, label, fn);
  } finally {
    const inode = await vol.iget(ino);
    vol.pages.drop(ino);
    inode.gen++;
  }
}

/** Runs fn in one transaction under the metadata lock (as the engine's own operations do), committing it. */
export async function withTx<T>(vol: Volume, label: string, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  return vol.metaLock.run(async () => {
    const tx = vol.begin(label);
    try {
      const r = await fn(tx);
      await tx.commit();
      return r;
    } catch (err) {
      tx.abort();
      throw err;
    }
  });
}

/**
 * Maps the holes of clusters [cpos, cpos+count) as unwritten extents, with
 * 0xEE on the device underneath so a read of stale bytes would show. The
 * file must already reach that far (fsck allows no clusters past i_size).
 */
export async function preallocUnwritten(vol: Volume, ino: number, cpos: number, count: number): Promise<number> {
  const { bpc, clusterSize } = vol.geo;
  const inode = await vol.iget(ino);
  const holes: { cpos: number; count: number }[] = [];
  const extents = (await treeShape(vol, inode)).extents;
  let c = cpos;
  for (const e of extents) {
    if (e.cpos + e.clusters <= c) continue;
    if (e.cpos >= cpos + count) break;
    if (e.cpos > c) holes.push({ cpos: c, count: e.cpos - c });
    c = Math.max(c, e.cpos + e.clusters);
  }
  if (c < cpos + count) holes.push({ cpos: c, count: cpos + count - c });
  let mapped = 0;
  await behindCache(vol, ino, `prealloc ${ino}`, async (tx) => {
    const di = await editInode(tx, inode);
    for (const h of holes) {
      let at = h.cpos;
      let left = h.count;
      while (left > 0) {
        const run = await vol.alloc.claimClusters(tx, 1, left);
        await vol.device.write(Buffer.alloc(run.count * clusterSize, 0xee), run.cluster * clusterSize);
        await insertExtent(vol, tx, inode, { cpos: at, clusters: run.count, blkno: run.cluster * bpc, flags: OCFS2_EXT_UNWRITTEN }, di);
        at += run.count;
        left -= run.count;
        mapped += run.count;
      }
    }
  });
  return mapped;
}

/**
 * Moves clusters [cpos, cpos+count) of one extent to newly claimed clusters,
 * bytes and flags and all (ExtentTree.remap, the copy on write's step), and
 * frees the old ones: the file reads the same, its tree is split where the
 * range cuts the extent. Returns the runs the range was mapped to before.
 */
export async function relocate(vol: Volume, ino: number, cpos: number, count: number, flags: number): Promise<Extent[]> {
  const { bpc, clusterSize } = vol.geo;
  const inode = await vol.iget(ino);
  return behindCache(vol, ino, `relocate ${ino}`, async (tx) => {
    const di = await editInode(tx, inode, { extentsChanged: true });
    const tree = new ExtentTree(vol, tx, dinodeExtentRoot(di, { sparse: vol.features.sparse }));
    const replaced: Extent[] = [];
    let at = cpos;
    let left = count;
    while (left > 0) {
      const run = await vol.alloc.claimClusters(tx, 1, left);
      const moved = await tree.remap(at, run.count, run.cluster * bpc, flags);
      if (moved.done !== run.count) throw new Error(`remap of ${run.count} clusters at ${at} did ${moved.done}`);
      for (const r of moved.replaced) {
        await vol.device.write(await vol.device.read(r.blkno * vol.geo.blockSize, r.clusters * clusterSize),
          (run.cluster + (r.cpos - at)) * clusterSize);
      }
      replaced.push(...moved.replaced);
      at += run.count;
      left -= run.count;
    }
    await freeRuns(vol, tx, replaced);
    return replaced;
  });
}
