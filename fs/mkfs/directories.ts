/**
 * The directories mkfs creates (root, the system directory, one orphan
 * directory per slot, lost+found): their entries laid out either inline in
 * the inode (inline-data) or in directory blocks, with a trailer at the end
 * of each block when the volume has metaecc or indexed-dirs, and, for
 * indexed directories, the dx root with inline index entries.
 *
 * Entries are packed in order; the last record of a block (or of the
 * inline area) stretches to its end, as the kernel and libocfs2 leave a new
 * directory.
 */
import { OCFS2_FT_DIR } from '../format/constants';
import {
  DirEntry, DirTrailer, dirTrailerBlkOff, encodeDirBlock, encodeDirEntry, newDirEntry, newDirTrailer,
  OCFS2_DIR_MIN_REC_LEN, OCFS2_DIR_REC_LEN,
} from '../format/dirent';
import { DxEntry, type DxRootIdentity, dxEntriesPerRoot, encodeDxLeaf, encodeDxRoot, newDxLeaf, newDxRoot } from '../format/dx';
import { dxDirNameHash } from '../format/dxHash';

/** One name in a directory being built. */
export interface NewDirEntry {
  name: string;
  inode: number;
  fileType: number;
}

/** Records of each directory block (or of the one inline area), rec_len already final. */
export type DirLayout = DirEntry[][];

/** Packs entries into areas of `areaBytes` (a block minus its trailer, or the inline id_count). */
export function layoutDirEntries(entries: readonly NewDirEntry[], areaBytes: number): DirLayout {
  const areas: DirLayout = [];
  let cur: DirEntry[] = [];
  let used = 0;
  for (const e of entries) {
    const de = newDirEntry(e.inode, e.name, e.fileType);
    if (de.rec_len > areaBytes) throw new RangeError(`dirent "${e.name}" (${de.rec_len} bytes) larger than a directory block area`);
    if (used + de.rec_len > areaBytes) {
      areas.push(cur);
      cur = [];
      used = 0;
    }
    de.offset = used;
    cur.push(de);
    used += de.rec_len;
  }
  areas.push(cur);
  for (const area of areas) {
    const last = area[area.length - 1];
    last.rec_len = areaBytes - last.offset;
  }
  return areas;
}

/** Bytes the entries take packed (to decide whether a directory fits inline). */
export function dirEntriesBytes(entries: readonly NewDirEntry[]): number {
  return entries.reduce((n, e) => n + OCFS2_DIR_REC_LEN(Buffer.byteLength(e.name)), 0);
}

/** Subdirectories add a link each: i_links_count of a new directory (the '.' and '..' entries count 2). */
export function dirLinkCount(entries: readonly NewDirEntry[]): number {
  return entries.filter((e) => e.fileType === OCFS2_FT_DIR).length;
}

/** ocfs2_figure_dirent_hole / ocfs2_find_max_rec_len: the largest free space in a block, 0 when too small for a name. */
export function largestHole(records: readonly DirEntry[]): number {
  let largest = 0;
  for (const de of records) {
    const hole = de.inode === 0 ? de.rec_len : de.rec_len - OCFS2_DIR_REC_LEN(de.name_len);
    largest = Math.max(largest, hole);
  }
  return largest >= OCFS2_DIR_MIN_REC_LEN ? largest : 0;
}

/** The inline id_data of a directory whose entries fit in `idCount` bytes. */
export function encodeInlineDir(entries: readonly NewDirEntry[], idCount: number): Buffer {
  const [records] = layoutDirEntries(entries, idCount);
  const data = Buffer.alloc(idCount);
  for (const de of records) encodeDirEntry(de, data, de.offset);
  return data;
}

export interface DirBlocksOptions {
  blockSizeBytes: number;
  /** Blocks of the directory, in file order. */
  blknos: readonly number[];
  /** The directory inode (db_parent_dinode). */
  dirBlkno: number;
  hasTrailer: boolean;
  /** Indexed directory: free-space list through the trailers (db_free_next). */
  indexed: boolean;
}

export interface EncodedDirBlocks {
  blocks: Buffer[];
  /** First block with free space (dr_free_blk of an indexed directory), 0 when none. */
  freeListHead: number;
}

/** Directory blocks for a layout made with the area size of `opts` (one block per area). */
export function encodeDirBlocks(layout: DirLayout, opts: DirBlocksOptions): EncodedDirBlocks {
  if (layout.length !== opts.blknos.length) throw new RangeError(`directory ${opts.dirBlkno}: ${layout.length} areas for ${opts.blknos.length} blocks`);
  const trailers: (DirTrailer | undefined)[] = layout.map((records, k) => {
    if (!opts.hasTrailer) return undefined;
    const t = newDirTrailer(opts.blknos[k], opts.dirBlkno);
    t.db_free_rec_len = largestHole(records);
    return t;
  });
  let freeListHead = 0;
  if (opts.indexed) {
    // The kernel's free list: every block with room, first to last.
    let prev: DirTrailer | undefined;
    layout.forEach((_, k) => {
      const t = trailers[k] as DirTrailer;
      if (t.db_free_rec_len === 0) return;
      if (prev) prev.db_free_next = opts.blknos[k];
      else freeListHead = opts.blknos[k];
      prev = t;
    });
  }
  const blocks = layout.map((records, k) => {
    const block = Buffer.alloc(opts.blockSizeBytes);
    encodeDirBlock({ entries: records, trailer: trailers[k] }, block);
    return block;
  });
  return { blocks, freeListHead };
}

/** The area of a directory block entries may use. */
export function dirBlockAreaBytes(blockSizeBytes: number, hasTrailer: boolean): number {
  return hasTrailer ? dirTrailerBlkOff(blockSizeBytes) : blockSizeBytes;
}

/** The index entries of a directory: one per used record, "." and ".." included (they hash to 0/0). */
export function dxIndexEntries(layout: DirLayout, dirBlknos: readonly number[], seed: readonly number[]): DxEntry[] {
  const entries: DxEntry[] = [];
  layout.forEach((records, k) => {
    for (const de of records) {
      if (de.inode === 0) continue;
      const h = dxDirNameHash(de.name, seed);
      entries.push({ dx_major_hash: h.major_hash, dx_minor_hash: h.minor_hash, dx_dirent_blk: dirBlknos[k] });
    }
  });
  return entries;
}

/** One cluster of dx leaves: the lowest major hash it serves (its e_cpos) and the entries of each leaf block. */
export interface DxLeafCluster {
  cpos: number;
  leaves: DxEntry[][];
}

function byHash(a: DxEntry, b: DxEntry): number {
  return a.dx_major_hash - b.dx_major_hash || a.dx_minor_hash - b.dx_minor_hash;
}

/**
 * Spreads index entries over leaf clusters the way the kernel looks them up
 * (ocfs2_dx_dir_lookup): the cluster is the extent record with the largest
 * e_cpos <= major hash, the leaf inside it is minor hash & (leaves per
 * cluster - 1). Clusters split the sorted major hashes into equal parts,
 * never between two equal major hashes; more clusters are used until every
 * leaf fits. Entries inside a leaf are sorted by hash.
 */
export function planDxLeaves(all: readonly DxEntry[], leavesPerCluster: number, leafCapacity: number, maxClusters: number): DxLeafCluster[] {
  const sorted = [...all].sort(byHash);
  for (let count = 1; count <= maxClusters; count++) {
    const starts: number[] = [0];
    for (let c = 1; c < count; c++) {
      let at = Math.max(starts[starts.length - 1] + 1, Math.floor((c * sorted.length) / count));
      while (at < sorted.length && sorted[at].dx_major_hash === sorted[at - 1].dx_major_hash) at++;
      if (at >= sorted.length) break;
      starts.push(at);
    }
    const clusters: DxLeafCluster[] = starts.map((start, c) => {
      const end = c + 1 < starts.length ? starts[c + 1] : sorted.length;
      const leaves: DxEntry[][] = Array.from({ length: leavesPerCluster }, () => []);
      for (const e of sorted.slice(start, end)) leaves[e.dx_minor_hash & (leavesPerCluster - 1)].push(e);
      // The first cluster serves every hash below the second's (cpos 0 catches "." and "..").
      return { cpos: c === 0 ? 0 : sorted[start].dx_major_hash, leaves };
    });
    if (clusters.every((cl) => cl.leaves.every((l) => l.length <= leafCapacity))) return clusters;
  }
  throw new RangeError(`${all.length} index entries do not fit ${maxClusters} clusters of dx leaves`);
}

/** A dx leaf block. */
export function buildDxLeafBlock(blockSizeBytes: number, blkno: number, fsGeneration: number, entries: readonly DxEntry[]): Buffer {
  const leaf = newDxLeaf(blockSizeBytes, blkno, fsGeneration);
  if (entries.length > leaf.dl_list.de_count) throw new RangeError(`dx leaf ${blkno}: ${entries.length} entries > ${leaf.dl_list.de_count}`);
  entries.forEach((e, k) => (leaf.dl_list.de_entries[k] = { ...e }));
  leaf.dl_list.de_num_used = entries.length;
  const block = Buffer.alloc(blockSizeBytes);
  encodeDxLeaf(leaf, block);
  return block;
}

export interface DxRootOptions extends DxRootIdentity {
  blockSizeBytes: number;
}

/**
 * A dx root: the index entries inline when they fit (what the kernel makes
 * for a new directory), else an extent list of the leaf clusters
 * (`leafClusters[k]` starts at block `leafBlknos[k]`).
 */
export function buildDxRootBlock(
  entries: readonly DxEntry[],
  leafClusters: readonly DxLeafCluster[] | undefined,
  leafBlknos: readonly number[],
  opts: DxRootOptions,
): Buffer {
  const inline = leafClusters === undefined;
  const root = newDxRoot(opts.blockSizeBytes, inline, opts);
  root.dr_num_entries = entries.length;
  if (inline) {
    const list = root.dr_entries;
    if (!list) throw new Error('mkfs internal: inline dx root without an entry list');
    const capacity = dxEntriesPerRoot(opts.blockSizeBytes);
    if (entries.length > capacity) throw new RangeError(`dx root ${opts.blkno}: ${entries.length} entries > ${capacity} inline`);
    list.de_num_used = entries.length;
    entries.forEach((e, k) => (list.de_entries[k] = { ...e }));
  } else {
    const list = root.dr_list;
    if (!list) throw new Error('mkfs internal: dx root without an extent list');
    if (leafClusters.length > list.l_count) throw new RangeError(`dx root ${opts.blkno}: ${leafClusters.length} leaf clusters > ${list.l_count} records`);
    leafClusters.forEach((cl, k) => {
      const rec = list.l_recs[k];
      rec.e_cpos = cl.cpos;
      rec.e_leaf_clusters = 1;
      rec.e_int_clusters = 1;
      rec.e_blkno = leafBlknos[k];
    });
    list.l_next_free_rec = leafClusters.length;
    root.dr_clusters = leafClusters.length;
  }
  const block = Buffer.alloc(opts.blockSizeBytes);
  encodeDxRoot(root, block);
  return block;
}
