/**
 * Changing an extent tree: inserting leaf records, unmapping ranges,
 * converting unwritten extents to written, growing and shrinking the tree.
 * Reading trees is fs/extentMap.ts; this is the write side (the kernel's
 * alloc.c), for any tree whose root is an extent list held by some owner
 * (a dinode's id2.i_list today; dx roots, xattr and refcount trees plug in
 * through ExtentRoot, as ocfs2_extent_tree_operations does in the kernel).
 *
 * The shape every change leaves (what the kernel's readers rely on):
 * - all leaves at depth 0, each extent block's l_tree_depth one less than its parent's;
 * - interior records tile their parent's range: record i covers
 *   [e_cpos, next record's e_cpos); the root's first interior record starts at
 *   cpos 0 and the rightmost record at every level ends exactly where the
 *   rightmost leaf record ends (ocfs2_adjust_rightmost_records);
 * - every leaf record lies inside the range its parents give its leaf, records
 *   sorted, non-overlapping, at most maxLeafClusters (e_leaf_clusters is 16-bit);
 * - no empty extent blocks: a block that loses its last record is freed;
 * - h_next_leaf_blk chains the leaves left to right; the owner's last_eb_blk
 *   names the rightmost leaf (0 when the root is the leaf);
 * - the owner's cluster count (i_clusters) equals the clusters mapped.
 *
 * - every leaf but the rightmost is full (the kernel's merge code relies on
 *   it: ocfs2_figure_merge_contig_type calls a left neighbour that is not
 *   full corrupt).
 *
 * Leaves are added only at the right edge, as in the kernel: records a
 * change gives to or takes from another leaf are dealt out again over the
 * leaves from there to the right edge (packLeaves: the effect of the
 * kernel's rotations right on insert and left on removal). A full rightmost
 * leaf, or an interior node, is split in place, B-tree fashion, and the new
 * sibling linked after it; a full root moves its records into a new extent
 * block and becomes one level deeper (ocfs2_shift_tree_depth). New blocks a
 * change needs are claimed before anything is modified, so ENOSPC leaves
 * the tree as it was.
 *
 * Every block change goes through the caller's Transaction. Extent blocks
 * this module has read or written in a transaction are kept decoded per
 * transaction, so several changes in one transaction see each other.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import { editInode } from './transaction';
import type { Inode } from './inode';
import type { Dinode } from './format/dinode';
import type { MetaBlockClaim } from './allocApi';
import type { Extent } from './extentMap';
import {
  type ExtentBlockHeader, type ExtentBlockPeek, type ExtentList, type ExtentRec, decodeExtentBlockHeader, emptyExtentBlock, emptyExtentRec,
  encodeExtentBlockWith, EXTENT_BLOCK_LIST_OFFSET, EXTENT_LIST_RECS_OFFSET, EXTENT_REC_SIZE, extentRecClusters,
  extentRecsPerExtentBlock, peekExtentBlock, readExtentsAt, readListExtents, setExtentRecClusters, writeExtentsAt,
} from './format/extent';
import { OCFS2_EXT_REFCOUNTED, OCFS2_EXT_UNWRITTEN } from './format/constants';
import { decreaseRefcount, refcountRootOf } from './refcountDecrease';
import { readExtentBlockBytes } from './blocks';
import { FsError, errnoOf } from './errors';

const trace = createDebug('o2fuse:extent');

/** e_leaf_clusters is a u16. */
export const MAX_LEAF_CLUSTERS = 0xffff;
/** The kernel's OCFS2_MAX_PATH_DEPTH is 5 (root + 4 levels): deeper trees it refuses to walk. */
export const MAX_EXTENT_TREE_DEPTH = 4;
/** Largest logical cluster + 1 a tree can map (e_cpos and i_clusters are u32). */
export const MAX_CPOS = 0xffffffff;

/** What a tree's owner provides (the kernel's ocfs2_extent_tree_operations). */
export interface ExtentRoot {
  /** For messages: "inode 1234". */
  readonly owner: string;
  /** The root list, changed in place; the owner's holder writes it back (a dinode: at commit). */
  readonly list: ExtentList;
  getLastEbBlk(): number;
  setLastEbBlk(blkno: number): void;
  /** Adds `delta` (may be negative) to the owner's mapped-cluster count. */
  addClusters(delta: number): void;
  /** Longest leaf record (xattr trees limit it further); at most MAX_LEAF_CLUSTERS. */
  readonly maxLeafClusters: number;
  /** Checks an insert before anything changes (the kernel's eo_insert_check). */
  insertCheck?(ext: Extent): void;
  /** Called once at the end of every change that touched the root (roots in raw blocks re-encode here). */
  dirty?(): void | Promise<void>;
}

/**
 * The root of a dinode's data tree. `di` is the transaction's decoded copy
 * (tx.inode / editInode), encoded at commit, so changes to it need no flush.
 */
export function dinodeExtentRoot(di: Dinode, opts: { sparse: boolean }): ExtentRoot {
  if (!di.list) throw new FsError('EIO', `inode ${di.i_blkno} has no extent list (inline data or special inode)`);
  const list = di.list;
  return {
    owner: `inode ${di.i_blkno}`,
    list,
    getLastEbBlk: () => di.i_last_eb_blk,
    setLastEbBlk: (blkno) => { di.i_last_eb_blk = blkno; },
    addClusters: (delta) => {
      const n = di.i_clusters + delta;
      if (n < 0 || n > MAX_CPOS) throw new FsError('EIO', `inode ${di.i_blkno}: i_clusters would become ${n}`);
      di.i_clusters = n;
    },
    maxLeafClusters: MAX_LEAF_CLUSTERS,
    insertCheck: (ext) => {
      // Without sparse-alloc a file is mapped from cluster 0 without holes: it only ever grows at its end.
      if (!opts.sparse && ext.cpos !== di.i_clusters) {
        throw new FsError('EIO', `inode ${di.i_blkno}: insert at cluster ${ext.cpos} on a non-sparse volume whose file ends at ${di.i_clusters}`);
      }
    },
  };
}

// ---- nodes: a list (the root's or an extent block's) as plain records ----

interface Node {
  /** 0 for the root. */
  blkno: number;
  depth: number;
  /** l_count */
  count: number;
  /** Used records; interior records carry flags 0. */
  recs: Extent[];
  eb?: ExtentBlockHeader;
}

/** A leaf of the leaf chain: its capacity, the records it holds and the leaf after it (0 after the rightmost). */
interface LeafSummary {
  blkno: number;
  count: number;
  used: number;
  next: number;
}

/** The nodes from the root (0) down to a leaf, and which record was followed at each interior node. */
interface Path {
  nodes: Node[];
  idx: number[];
}

function recsOf(list: ExtentList): Extent[] {
  const depth = list.l_tree_depth;
  const out: Extent[] = [];
  for (let i = 0; i < list.l_next_free_rec; i++) {
    const r = list.l_recs[i];
    out.push({ cpos: r.e_cpos, clusters: extentRecClusters(r, depth), blkno: r.e_blkno, flags: depth > 0 ? 0 : r.e_flags });
  }
  return out;
}

/**
 * Writes `recs` into the list's records in place, zeroing the rest. A list
 * holds l_count records (243 in an inode); building a new array of them for
 * every change was most of an extending write's tree work.
 */
function storeRecs(list: ExtentList, depth: number, recs: readonly Extent[]): void {
  if (recs.length > list.l_count) throw new Error(`storeRecs: ${recs.length} records > l_count ${list.l_count}`);
  const out = list.l_recs;
  list.l_tree_depth = depth;
  list.l_next_free_rec = recs.length;
  for (let i = 0; i < recs.length; i++) {
    const e = recs[i];
    const r = out[i] ?? (out[i] = emptyExtentRec());
    clearRec(r);
    r.e_cpos = e.cpos;
    r.e_blkno = e.blkno;
    if (depth === 0) r.e_flags = e.flags;
    setExtentRecClusters(r, depth, e.clusters);
  }
  for (let i = recs.length; i < list.l_count; i++) {
    const r = out[i];
    if (r === undefined) out[i] = emptyExtentRec();
    else clearRec(r);
  }
  out.length = list.l_count;
}

function clearRec(r: ExtentRec): void {
  r.e_cpos = 0;
  r.e_int_clusters = 0;
  r.e_leaf_clusters = 0;
  r.e_reserved1 = 0;
  r.e_flags = 0;
  r.e_blkno = 0;
}

function endOf(recs: readonly Extent[]): number {
  const last = recs[recs.length - 1];
  return last ? last.cpos + last.clusters : 0;
}

function copyRec(e: Extent): Extent {
  return { cpos: e.cpos, clusters: e.clusters, blkno: e.blkno, flags: e.flags };
}

/**
 * Sorted, without empty records, neighbours merged when logically and
 * physically contiguous with equal flags (ocfs2_extent_rec_contig).
 */
function normalizeLeaf(recs: Extent[], bpc: number, maxLeaf: number): Extent[] {
  const sorted = recs.filter((r) => r.clusters > 0).sort((a, b) => a.cpos - b.cpos);
  const out: Extent[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev && prev.flags === r.flags && prev.cpos + prev.clusters === r.cpos &&
        prev.blkno + prev.clusters * bpc === r.blkno && prev.clusters + r.clusters <= maxLeaf) {
      prev.clusters += r.clusters;
    } else {
      out.push(copyRec(r));
    }
  }
  for (let i = 1; i < out.length; i++) {
    if (out[i].cpos < out[i - 1].cpos + out[i - 1].clusters) {
      throw new FsError('EIO', `extent records overlap at cpos ${out[i].cpos}`);
    }
  }
  return out;
}

/** Splits `recs` into ceil(n/count) pieces: full pieces then the rest at the right edge (appends), even pieces elsewhere. */
function splitRecs(recs: Extent[], count: number, rightmost: boolean): Extent[][] {
  const pieces = Math.ceil(recs.length / count);
  const out: Extent[][] = [];
  if (rightmost) {
    for (let i = 0; i < recs.length; i += count) out.push(recs.slice(i, i + count));
  } else {
    let at = 0;
    for (let p = 0; p < pieces; p++) {
      const n = Math.ceil((recs.length - at) / (pieces - p));
      out.push(recs.slice(at, at + n));
      at += n;
    }
  }
  return out;
}

/** Key of the decoded extent blocks this module touched in a transaction, so later changes in it see earlier ones. */
const TX_NODES = {};

/** Changes to one extent tree inside one transaction. */
export class ExtentTree {
  private readonly nodes: Map<number, Node>;
  private pool: MetaBlockClaim[] = [];
  private readonly bpc: number;
  /** Start of the leftmost leaf this change gave records to or took records from, other than the rightmost. */
  private packFrom = Infinity;
  /** Records the leaves from packFrom on hold past their capacity: they go to the right edge. */
  private overflow = 0;

  constructor(private readonly ctx: VolumeContext, private readonly tx: Transaction, readonly root: ExtentRoot) {
    this.nodes = tx.local(TX_NODES, () => new Map<number, Node>());
    this.bpc = ctx.geo.bpc;
  }

  // ---- blocks ----

  private rootNode(): Node {
    const list = this.root.list;
    return { blkno: 0, depth: list.l_tree_depth, count: list.l_count, recs: recsOf(list) };
  }

  private async readNode(blkno: number, expectDepth: number): Promise<Node> {
    let node = this.nodes.get(blkno);
    if (!node) {
      let buf: Buffer;
      if (this.tx.has(blkno)) {
        // Changed earlier in this transaction by someone else: its bytes in the transaction are the truth.
        buf = await this.tx.block(blkno, 'extent block');
      } else {
        buf = await readExtentBlockBytes(this.ctx, blkno);
      }
      const eb = decodeExtentBlockHeader(buf, { expectedBlkno: blkno, fsGeneration: this.ctx.fsGeneration });
      const recs = readListExtents(buf, EXTENT_BLOCK_LIST_OFFSET, `extent block ${blkno}: h_list`);
      node = { blkno, depth: eb.h_list.l_tree_depth, count: eb.h_list.l_count, recs, eb };
      this.nodes.set(blkno, node);
    }
    if (node.depth !== expectDepth) {
      throw new FsError('EIO', `${this.root.owner}: extent block ${blkno} has l_tree_depth ${node.depth}, expected ${expectDepth}`);
    }
    return node;
  }

  private async writeNode(node: Node): Promise<void> {
    // A leaf holding more than it can waits for packLeaves, which writes it.
    if (node.recs.length > node.count && node.blkno !== 0) return;
    if (node.blkno === 0) {
      storeRecs(this.root.list, node.depth, node.recs);
      return;
    }
    const buf = await this.tx.block(node.blkno, 'extent block');
    encodeExtentBlockWith(node.eb!, node.depth, node.recs, buf);
  }

  /** Claims `n` extent blocks now, so that the change that needs them cannot fail half-way. */
  private async reserve(n: number): Promise<void> {
    const got: MetaBlockClaim[] = [];
    try {
      while (got.length < n) got.push(await this.ctx.alloc.claimMetaBlock(this.tx, 'extent'));
    } catch (err) {
      for (const c of got) await this.ctx.alloc.freeMetaBlock(this.tx, 'extent', { blkno: c.blkno, slot: c.slot, bit: c.bit, loc: c.groupBlkno });
      throw err;
    }
    this.pool.push(...got);
  }

  private async releasePool(): Promise<void> {
    const left = this.pool;
    this.pool = [];
    for (const c of left) await this.ctx.alloc.freeMetaBlock(this.tx, 'extent', { blkno: c.blkno, slot: c.slot, bit: c.bit, loc: c.groupBlkno });
  }

  private async newNode(depth: number): Promise<Node> {
    const claim = this.pool.pop() ?? await this.ctx.alloc.claimMetaBlock(this.tx, 'extent');
    const { blockSize } = this.ctx.geo;
    const eb = emptyExtentBlock(blockSize, claim.blkno);
    eb.h_suballoc_slot = claim.slot;
    eb.h_suballoc_bit = claim.bit;
    eb.h_suballoc_loc = claim.groupBlkno;
    eb.h_fs_generation = this.ctx.fsGeneration;
    eb.h_list.l_tree_depth = depth;
    const buf = this.tx.has(claim.blkno) ? await this.tx.block(claim.blkno, 'extent block') : this.tx.newBlock(claim.blkno, 'extent block');
    encodeExtentBlockWith(eb, depth, [], buf);
    const node: Node = { blkno: claim.blkno, depth, count: eb.h_list.l_count, recs: [], eb };
    this.nodes.set(claim.blkno, node);
    trace('%s: new extent block %d at depth %d', this.root.owner, claim.blkno, depth);
    return node;
  }

  private async freeNode(node: Node): Promise<void> {
    const eb = node.eb!;
    this.nodes.delete(node.blkno);
    await this.ctx.alloc.freeMetaBlock(this.tx, 'extent', {
      blkno: node.blkno, slot: eb.h_suballoc_slot, bit: eb.h_suballoc_bit, loc: eb.h_suballoc_loc,
    });
    trace('%s: freed extent block %d', this.root.owner, node.blkno);
  }

  // ---- paths ----

  /**
   * The path to the leaf whose range holds `cpos` (the kernel's
   * __ocfs2_find_path: the record whose range holds it, else the rightmost).
   * A first record starting after `cpos` is stretched down to it, so the
   * leaf's range always holds cpos.
   */
  private async findPath(cpos: number): Promise<Path> {
    let node = this.rootNode();
    const path: Path = { nodes: [node], idx: [] };
    while (node.depth > 0) {
      const recs = node.recs;
      if (recs.length === 0) throw new FsError('EIO', `${this.root.owner}: empty interior extent list in block ${node.blkno}`);
      let i = 0;
      while (i + 1 < recs.length && recs[i + 1].cpos <= cpos) i++;
      if (i === 0 && recs[0].cpos > cpos) {
        recs[0].clusters += recs[0].cpos - cpos;
        recs[0].cpos = cpos;
        await this.writeNode(node);
      }
      const child = await this.readNode(recs[i].blkno, node.depth - 1);
      path.idx.push(i);
      path.nodes.push(child);
      node = child;
    }
    return path;
  }

  /** [start, end) of the cpos range the path's leaf owns. */
  private static leafRange(path: Path): { start: number; end: number } {
    let start = 0;
    let end = Infinity;
    for (let k = 0; k < path.idx.length; k++) {
      const recs = path.nodes[k].recs;
      const i = path.idx[k];
      start = recs[i].cpos;
      if (i + 1 < recs.length) end = Math.min(end, recs[i + 1].cpos);
    }
    return { start, end };
  }

  private static isRightmost(path: Path, k: number): boolean {
    for (let l = 0; l < k; l++) if (path.idx[l] !== path.nodes[l].recs.length - 1) return false;
    return true;
  }

  /**
   * New extent blocks that giving node k `n` records will take (splits up
   * the path, a depth shift at the root). EFBIG, before anything changes,
   * when the tree would have to grow past MAX_EXTENT_TREE_DEPTH.
   */
  private blocksNeeded(path: Path, k: number, n: number): number {
    let need = 0;
    let level = k;
    let count = n;
    for (;;) {
      const node = path.nodes[level];
      if (count <= node.count) return need;
      if (level === 0) {
        if (node.depth >= MAX_EXTENT_TREE_DEPTH) {
          throw new FsError('EFBIG', `${this.root.owner}: extent tree would exceed depth ${MAX_EXTENT_TREE_DEPTH}`);
        }
        const per = extentRecsPerExtentBlock(this.ctx.geo.blockSize);
        return need + 1 + Math.ceil(count / per) - 1;
      }
      const pieces = Math.ceil(count / node.count);
      need += pieces - 1;
      count = path.nodes[level - 1].recs.length + pieces - 1;
      level--;
    }
  }

  /**
   * Gives node k of the path the records `recs`, splitting, growing or removing nodes as needed. A leaf that is not
   * the rightmost keeps what it is given in memory, however many (packLeaves redistributes them when the change
   * ends); the blocks its overflow will take at the right edge are claimed now.
   */
  private async setRecs(path: Path, k: number, recs: Extent[]): Promise<void> {
    const node = path.nodes[k];
    if (node.depth === 0 && k > 0 && !ExtentTree.isRightmost(path, k)) {
      const over = Math.max(0, recs.length - node.count) - Math.max(0, node.recs.length - node.count);
      if (over > 0) {
        const right = await this.findPath(MAX_CPOS - 1);
        const rk = right.nodes.length - 1;
        const need = this.blocksNeeded(right, rk, right.nodes[rk].recs.length + this.overflow + over);
        if (need > this.pool.length) await this.reserve(need - this.pool.length);
      }
      // Counted once the blocks are claimed: a refused claim leaves this tree as it was.
      this.overflow += over;
      if (recs.length === 0) return this.fixNode(path, k, recs);
      node.recs = recs;
      // Still exactly full: nothing moves.
      if (recs.length !== node.count) this.packFrom = Math.min(this.packFrom, ExtentTree.leafRange(path).start);
      return this.writeNode(node);
    }
    // The rightmost leaf also takes, at the end of the change, what leaves to its left hold past their capacity.
    const pending = node.depth === 0 && k > 0 ? this.overflow : 0;
    const need = this.blocksNeeded(path, k, recs.length + pending);
    if (need > this.pool.length) await this.reserve(need - this.pool.length);
    await this.fixNode(path, k, recs);
  }

  private async fixNode(path: Path, k: number, recs: Extent[]): Promise<void> {
    const node = path.nodes[k];
    if (recs.length <= node.count) {
      if (recs.length === 0 && k > 0) return this.removeNode(path, k);
      if (recs.length === 0) node.depth = 0; // the whole tree is gone: the root is an empty leaf again
      node.recs = recs;
      return this.writeNode(node);
    }
    if (k === 0) {
      // The root is full: its records move into a new block and the root points at it (ocfs2_shift_tree_depth).
      if (node.depth >= MAX_EXTENT_TREE_DEPTH) {
        throw new FsError('EFBIG', `${this.root.owner}: extent tree would exceed depth ${MAX_EXTENT_TREE_DEPTH}`);
      }
      const child = await this.newNode(node.depth);
      node.depth += 1;
      node.recs = [{ cpos: 0, clusters: endOf(recs), blkno: child.blkno, flags: 0 }];
      await this.writeNode(node);
      path.nodes.splice(1, 0, child);
      path.idx.unshift(0);
      return this.fixNode(path, 1, recs);
    }
    const pieces = splitRecs(recs, node.count, ExtentTree.isRightmost(path, k));
    const parent = path.nodes[k - 1];
    const i = path.idx[k - 1];
    const precs = parent.recs.slice();
    const old = precs[i];
    const oldEnd = i + 1 < precs.length ? precs[i + 1].cpos : old.cpos + old.clusters;
    const siblings: Node[] = [node];
    for (let p = 1; p < pieces.length; p++) siblings.push(await this.newNode(node.depth));
    if (node.depth === 0) {
      // New leaves go right after this one in the leaf chain.
      const after = node.eb!.h_next_leaf_blk;
      for (let p = 0; p < siblings.length; p++) {
        siblings[p].eb!.h_next_leaf_blk = p + 1 < siblings.length ? siblings[p + 1].blkno : after;
      }
    }
    const entries: Extent[] = [];
    for (let p = 0; p < pieces.length; p++) {
      siblings[p].recs = pieces[p];
      await this.writeNode(siblings[p]);
      const start = p === 0 ? old.cpos : pieces[p][0].cpos;
      const end = p + 1 < pieces.length ? pieces[p + 1][0].cpos : Math.max(oldEnd, endOf(pieces[p]));
      entries.push({ cpos: start, clusters: end - start, blkno: siblings[p].blkno, flags: 0 });
    }
    precs.splice(i, 1, ...entries);
    trace('%s: split block %d into %d', this.root.owner, node.blkno, pieces.length);
    return this.fixNode(path, k - 1, precs);
  }

  /** Node k lost its last record: unlink it from the leaf chain and its parent, and free it. */
  private async removeNode(path: Path, k: number): Promise<void> {
    const node = path.nodes[k];
    if (node.depth === 0) {
      const left = await this.leftLeaf(path, k);
      if (left) {
        left.eb!.h_next_leaf_blk = node.eb!.h_next_leaf_blk;
        await this.writeNode(left);
      }
    }
    await this.freeNode(node);
    const parent = path.nodes[k - 1];
    const i = path.idx[k - 1];
    const precs = parent.recs.map(copyRec);
    const [removed] = precs.splice(i, 1);
    if (precs.length > 0) {
      if (i > 0) {
        // The left neighbour takes over the range (exact at the right edge later, by fixRightEdge).
        const prev = precs[i - 1];
        const end = i < precs.length ? precs[i].cpos : removed.cpos + removed.clusters;
        prev.clusters = Math.max(0, end - prev.cpos);
      } else {
        const first = precs[0];
        if (first.cpos > removed.cpos) {
          first.clusters += first.cpos - removed.cpos;
          first.cpos = removed.cpos;
          await this.lowerSubtreeStart(first.blkno, parent.depth - 1, removed.cpos);
        }
      }
    }
    return this.fixNode(path, k - 1, precs);
  }

  /** The leaf left of the path's leaf (null for the leftmost). */
  private async leftLeaf(path: Path, k: number): Promise<Node | null> {
    for (let level = k - 1; level >= 0; level--) {
      const i = path.idx[level];
      if (i === 0) continue;
      let depth = path.nodes[level].depth - 1;
      let node = await this.readNode(path.nodes[level].recs[i - 1].blkno, depth);
      while (depth > 0) {
        depth--;
        node = await this.readNode(node.recs[node.recs.length - 1].blkno, depth);
      }
      return node;
    }
    return null;
  }

  /** Moves the start of the leftmost records of an interior subtree down to `cpos` (tiling after a left neighbour went). */
  private async lowerSubtreeStart(blkno: number, depth: number, cpos: number): Promise<void> {
    while (depth > 0) {
      const node = await this.readNode(blkno, depth);
      const first = node.recs[0];
      if (!first || first.cpos <= cpos) return;
      first.clusters += first.cpos - cpos;
      first.cpos = cpos;
      await this.writeNode(node);
      blkno = first.blkno;
      depth--;
    }
  }

  // ---- the whole-tree fix-ups every change ends with ----

  /** A root with one child that fits in it takes the child's records (one level less). */
  private async shrinkDepth(): Promise<void> {
    for (;;) {
      const root = this.rootNode();
      if (root.depth === 0 || root.recs.length !== 1) return;
      const child = await this.readNode(root.recs[0].blkno, root.depth - 1);
      if (child.recs.length > root.count) return;
      root.depth = child.depth;
      root.recs = child.recs.map(copyRec);
      await this.writeNode(root);
      await this.freeNode(child);
      trace('%s: tree depth down to %d', this.root.owner, root.depth);
    }
  }

  /** The root's first interior record starts at cpos 0 (as after ocfs2_shift_tree_depth), down the left edge. */
  private async fixLeftEdge(): Promise<void> {
    const root = this.rootNode();
    if (root.depth === 0 || root.recs.length === 0 || root.recs[0].cpos === 0) return;
    const first = root.recs[0];
    first.clusters += first.cpos;
    first.cpos = 0;
    await this.writeNode(root);
    await this.lowerSubtreeStart(first.blkno, root.depth - 1, 0);
  }

  /** Rightmost interior records end where the last leaf record ends; last_eb_blk names the rightmost leaf. */
  private async fixRightEdge(): Promise<void> {
    const path: Node[] = [this.rootNode()];
    while (path[path.length - 1].depth > 0) {
      const n = path[path.length - 1];
      if (n.recs.length === 0) throw new FsError('EIO', `${this.root.owner}: empty interior extent list in block ${n.blkno}`);
      path.push(await this.readNode(n.recs[n.recs.length - 1].blkno, n.depth - 1));
    }
    const leaf = path[path.length - 1];
    const end = endOf(leaf.recs);
    for (let k = path.length - 2; k >= 0; k--) {
      const n = path[k];
      const last = n.recs[n.recs.length - 1];
      const want = Math.max(0, end - last.cpos);
      if (last.clusters !== want) {
        last.clusters = want;
        await this.writeNode(n);
      }
    }
    const lastEb = leaf.blkno;
    if (this.root.getLastEbBlk() !== lastEb) this.root.setLastEbBlk(lastEb);
  }

  /**
   * Every leaf but the rightmost full, as the kernel keeps its trees (it adds leaves only at the right edge and
   * rotates records right on an insert, left on a removal) and as its merge code reads them
   * (ocfs2_figure_merge_contig_type calls a left neighbour that is not full corrupt). The records of the leaves
   * from the leftmost one this change touched to the rightmost are dealt out again, each leaf filled in turn: what
   * the last cannot hold goes to new leaves after it, leaves left with nothing are freed, and the interior records
   * right of that point are recomputed from the leaves.
   */
  private async packLeaves(): Promise<void> {
    const from = this.packFrom;
    this.packFrom = Infinity;
    this.overflow = 0;
    if (from === Infinity || this.rootNode().depth === 0) return;
    const first = await this.findPath(from);
    const head = first.nodes[first.nodes.length - 1];
    const chain: LeafSummary[] = [];
    const seen = new Set([head.blkno]);
    for (let next = head.eb!.h_next_leaf_blk; next !== 0; next = chain[chain.length - 1].next) {
      if (seen.has(next)) throw new FsError('EIO', `${this.root.owner}: the leaf chain comes back to block ${next}`);
      seen.add(next);
      chain.push(await this.leafSummary(next));
    }
    if (!await this.rotate(head, chain)) {
      const leaves: Node[] = [head];
      for (const leaf of chain) leaves.push(await this.readNode(leaf.blkno, 0));
      if (!await this.dealOut(leaves, from)) return;
    }
    await this.retile(this.rootNode(), from, 0, Infinity);
  }

  /**
   * The kernel's rotation: the head leaf holds `d` records more (or fewer) than it can, and every leaf after it but
   * the rightmost is full. Each of those gives its last d records to the next (or takes the next one's first -d).
   * A leaf this change has not decoded is shifted in its block, with no decoding: a write into a preallocated file
   * splits an unwritten extent in the middle of its tree every time, and decoding and encoding every leaf to its
   * right was nearly all its cost. False, with nothing changed, when the leaves are not in that shape (dealOut then
   * does it record by record).
   */
  private async rotate(head: Node, chain: readonly LeafSummary[]): Promise<boolean> {
    const cap = head.count;
    const d = head.recs.length - cap;
    if (d === 0 || Math.abs(d) > cap || chain.length === 0) return false;
    const inner = chain.slice(0, -1);
    if (inner.some((leaf) => leaf.count !== cap || leaf.used !== cap)) return false;
    const middle = inner.map((leaf) => leaf.blkno);
    const last = await this.readNode(chain[chain.length - 1].blkno, 0);
    if (last.count !== cap || last.recs.length + d < 1) return false;
    const base = EXTENT_BLOCK_LIST_OFFSET + EXTENT_LIST_RECS_OFFSET;
    const at = (i: number): number => base + i * EXTENT_REC_SIZE;
    const what = (blkno: number): string => `extent block ${blkno}: h_list`;
    if (d > 0) {
      let carry = head.recs.slice(cap);
      head.recs = head.recs.slice(0, cap);
      await this.writeNode(head);
      for (const blkno of middle) {
        const node = this.nodes.get(blkno);
        if (node) {
          const out = node.recs.slice(cap - d);
          node.recs = carry.concat(node.recs.slice(0, cap - d));
          await this.writeNode(node);
          carry = out;
          continue;
        }
        const buf = await this.leafCopy(blkno, cap);
        const out = readExtentsAt(buf, at(cap - d), d, 0, what(blkno), cap - d);
        buf.copyWithin(at(d), at(0), at(cap - d));
        writeExtentsAt(buf, at(0), carry, 0, what(blkno));
        carry = out;
      }
      const recs = carry.concat(last.recs);
      if (recs.length <= cap) {
        last.recs = recs;
        await this.writeNode(last);
      } else {
        // The rightmost leaf overflows: new leaves after it, from the blocks setRecs reserved.
        const right = await this.findPath(MAX_CPOS - 1);
        await this.fixNode(right, right.nodes.length - 1, recs);
      }
    } else {
      const m = -d;
      const firstOf = async (j: number): Promise<Extent[]> => {
        if (j === middle.length) return last.recs.slice(0, m);
        const node = this.nodes.get(middle[j]);
        return node ? node.recs.slice(0, m) : readExtentsAt(await this.leafBytes(middle[j]), at(0), m, 0, what(middle[j]));
      };
      head.recs = head.recs.concat(await firstOf(0));
      await this.writeNode(head);
      for (let j = 0; j < middle.length; j++) {
        // The next leaf's first records are read before this one changes, and it changes only after.
        const incoming = await firstOf(j + 1);
        const node = this.nodes.get(middle[j]);
        if (node) {
          node.recs = node.recs.slice(m).concat(incoming);
          await this.writeNode(node);
          continue;
        }
        const buf = await this.leafCopy(middle[j], cap);
        buf.copyWithin(at(0), at(m), at(cap));
        writeExtentsAt(buf, at(cap - m), incoming, 0, what(middle[j]));
      }
      last.recs = last.recs.slice(m);
      await this.writeNode(last);
    }
    trace('%s: rotated %d record(s) %s through %d leaves', this.root.owner, Math.abs(d), d > 0 ? 'right' : 'left', chain.length + 1);
    return true;
  }

  /**
   * Deals the records of `leaves` (from the leftmost one this change touched to the rightmost) out again, each leaf
   * filled in turn: what the last cannot hold goes to new leaves after it, and leaves left with nothing are freed.
   * False when every leaf was already as it should be.
   */
  private async dealOut(leaves: Node[], from: number): Promise<boolean> {
    const cap = leaves[0].count;
    if (leaves.every((l, i) => i === leaves.length - 1 ? l.recs.length <= cap : l.recs.length === cap)) return false;
    // A plain loop: V8's flatMap took a quarter of a random write's CPU into a preallocated file of 45 leaves.
    const all: Extent[] = [];
    for (const l of leaves) for (const r of l.recs) all.push(r);
    let at = 0;
    for (let i = 0; i < leaves.length - 1; i++) {
      leaves[i].recs = all.slice(at, at + cap);
      at += leaves[i].recs.length;
      if (leaves[i].recs.length) await this.writeNode(leaves[i]);
    }
    const rest = all.slice(at);
    const right = await this.findPath(MAX_CPOS - 1);
    const rk = right.nodes.length - 1;
    trace('%s: %d records dealt out again over %d leaves from cpos %d', this.root.owner, all.length, leaves.length, from);
    right.nodes[rk].recs = [];
    if (rest.length > 0) {
      await this.fixNode(right, rk, rest);
    } else {
      // The rightmost leaf, and any before it the records did not reach, are empty: each goes in its turn.
      for (;;) {
        const path = await this.findPath(MAX_CPOS - 1);
        const k = path.nodes.length - 1;
        if (k === 0 || path.nodes[k].recs.length > 0) break;
        await this.fixNode(path, k, []);
      }
    }
    return true;
  }

  /**
   * The transaction's copy of a full leaf, to shift in place. Read through leafBytes first: on a cache miss tx.block
   * reads the device without the checks (metaecc among them) that the bytes are then rewritten under.
   */
  private async leafCopy(blkno: number, cap: number): Promise<Buffer> {
    await this.leafBytes(blkno);
    const buf = await this.tx.block(blkno, 'extent block');
    const leaf = this.leafHeader(buf, blkno);
    if (leaf.count !== cap || leaf.used !== cap) {
      throw new FsError('EIO', `${this.root.owner}: extent block ${blkno} changed under a rotation (${leaf.used} of ${leaf.count} records)`);
    }
    return buf;
  }

  /** A leaf's bytes as this transaction sees them, to read: its copy in the transaction, else the validated block. */
  private async leafBytes(blkno: number): Promise<Buffer> {
    return this.tx.has(blkno) ? this.tx.block(blkno, 'extent block') : readExtentBlockBytes(this.ctx, blkno);
  }

  private leafHeader(buf: Buffer, blkno: number): ExtentBlockPeek {
    const peek = peekExtentBlock(buf, { expectedBlkno: blkno, fsGeneration: this.ctx.fsGeneration });
    if (peek.depth !== 0) throw new FsError('EIO', `${this.root.owner}: extent block ${blkno} has l_tree_depth ${peek.depth}, expected 0`);
    return peek;
  }

  /** A leaf of the chain as it is now, without decoding its records (a decoded one from its node). */
  private async leafSummary(blkno: number): Promise<LeafSummary> {
    const node = this.nodes.get(blkno);
    if (node) return { blkno, count: node.count, used: node.recs.length, next: node.eb!.h_next_leaf_blk };
    const peek = this.leafHeader(await this.leafBytes(blkno), blkno);
    return { blkno, count: peek.count, used: peek.used, next: peek.nextLeaf };
  }

  /** The cpos of a leaf's first record (0 when it has none), without decoding the rest. */
  private async leafFirstCpos(blkno: number): Promise<number> {
    const node = this.nodes.get(blkno);
    if (node) return node.recs.length ? node.recs[0].cpos : 0;
    const buf = await this.leafBytes(blkno);
    if (this.leafHeader(buf, blkno).used === 0) return 0;
    return readExtentsAt(buf, EXTENT_BLOCK_LIST_OFFSET + EXTENT_LIST_RECS_OFFSET, 1, 0, `extent block ${blkno}: h_list`)[0].cpos;
  }

  /** The cpos of the first leaf record under interior `node`. */
  private async firstLeafCpos(node: Node): Promise<number> {
    while (node.depth > 1) node = await this.readNode(node.recs[0].blkno, node.depth - 1);
    return this.leafFirstCpos(node.recs[0].blkno);
  }

  /**
   * Recomputes the interior records of `node` (which covers [start, end)) right of the record holding cpos `from`
   * (packLeaves moved records only between the leaves from there on): each starts where its subtree's first leaf
   * record starts, and the one before each reaches it (the last reaches the node's end; at the right edge
   * fixRightEdge sets it). The holder keeps its start, which may lie below its first leaf record: raising it would
   * leave a gap after the record before it.
   */
  private async retile(node: Node, from: number, start: number, end: number): Promise<void> {
    if (node.depth === 0) return;
    const recs = node.recs;
    let h = 0;
    while (h + 1 < recs.length && recs[h + 1].cpos <= from) h++;
    let changed = false;
    if (h === 0 && recs[0].cpos !== start) {
      recs[0].cpos = start;
      changed = true;
    }
    for (let i = h + 1; i < recs.length; i++) {
      const cpos = node.depth === 1 ? await this.leafFirstCpos(recs[i].blkno)
        : await this.firstLeafCpos(await this.readNode(recs[i].blkno, node.depth - 1));
      if (recs[i].cpos !== cpos) {
        recs[i].cpos = cpos;
        changed = true;
      }
    }
    for (let i = h; i < recs.length; i++) {
      const e = i + 1 < recs.length ? recs[i + 1].cpos : end;
      if (e !== Infinity && recs[i].clusters !== e - recs[i].cpos) {
        recs[i].clusters = e - recs[i].cpos;
        changed = true;
      }
    }
    if (changed) await this.writeNode(node);
    // Leaves hold no interior records: they are not read (rotate left most of them undecoded).
    if (node.depth === 1) return;
    for (let i = h; i < recs.length; i++) {
      const e = i + 1 < recs.length ? recs[i + 1].cpos : end;
      await this.retile(await this.readNode(recs[i].blkno, node.depth - 1), from, recs[i].cpos, e);
    }
  }

  private async finish(): Promise<void> {
    try {
      await this.packLeaves();
      await this.shrinkDepth();
      await this.fixLeftEdge();
      await this.fixRightEdge();
      await this.releasePool();
      await this.root.dirty?.();
    } catch (err) {
      // The blocks these steps take were claimed before the change began. Running out here would leave the tree
      // half-changed, which must not pass for a refusal the caller can take back (an insert stopped short): EIO
      // makes the caller drop the whole transaction.
      if (errnoOf(err) === 'ENOSPC') {
        throw new FsError('EIO', `${this.root.owner}: out of space finishing a tree change whose blocks were reserved: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  // ---- operations ----

  /**
   * Maps `ext.clusters` clusters at logical `ext.cpos` to blocks from
   * `ext.blkno` (cluster aligned). The range must be a hole. Merges with a
   * contiguous neighbour in the same leaf; splits runs longer than a leaf
   * record holds. Returns the clusters mapped: all of them, or with
   * `partial` the first ones when the volume ran out of extent blocks part
   * way (ENOSPC before any is mapped always throws, leaving the tree as it
   * was; without `partial` a later ENOSPC throws with a prefix mapped, and
   * the caller must abort the transaction).
   */
  async insert(ext: Extent, opts: { partial?: boolean } = {}): Promise<number> {
    const { bpc } = this;
    if (!Number.isSafeInteger(ext.cpos) || !Number.isSafeInteger(ext.clusters) || ext.clusters <= 0 || ext.cpos < 0 ||
        ext.cpos + ext.clusters > MAX_CPOS) {
      throw new FsError('EINVAL', `${this.root.owner}: insert of ${ext.clusters} clusters at cpos ${ext.cpos}`);
    }
    if (ext.blkno <= 0 || ext.blkno % bpc !== 0) throw new FsError('EINVAL', `${this.root.owner}: insert at unaligned block ${ext.blkno}`);
    if ((ext.flags & OCFS2_EXT_UNWRITTEN) && !this.ctx.features.unwritten) {
      throw new FsError('EINVAL', `${this.root.owner}: unwritten extents need the unwritten feature`);
    }
    this.root.insertCheck?.(ext);
    const maxLeaf = Math.min(this.root.maxLeafClusters, MAX_LEAF_CLUSTERS);
    let cpos = ext.cpos;
    let blkno = ext.blkno;
    let left = ext.clusters;
    let added = 0;
    try {
      while (left > 0) {
        const path = await this.findPath(cpos);
        const range = ExtentTree.leafRange(path);
        const n = Math.min(left, range.end - cpos, maxLeaf);
        const leaf = path.nodes[path.nodes.length - 1];
        for (const r of leaf.recs) {
          if (r.clusters > 0 && r.cpos < cpos + n && cpos < r.cpos + r.clusters) {
            throw new FsError('EIO', `${this.root.owner}: insert at cpos ${cpos}+${n} overlaps the extent at ${r.cpos}+${r.clusters}`);
          }
        }
        const recs = normalizeLeaf([...leaf.recs, { cpos, clusters: n, blkno, flags: ext.flags }], bpc, maxLeaf);
        await this.setRecs(path, path.nodes.length - 1, recs);
        this.root.addClusters(n);
        added += n;
        cpos += n;
        blkno += n * bpc;
        left -= n;
      }
    } catch (err) {
      if (!(opts.partial && added > 0 && errnoOf(err) === 'ENOSPC')) throw err;
      trace('%s: insert at %d stopped after %d of %d clusters: %s', this.root.owner, ext.cpos, added, ext.clusters, (err as Error).message);
    } finally {
      // Pieces already inserted stay consistent even when a later piece fails.
      if (added > 0 || this.pool.length) await this.finish();
    }
    return added;
  }

  /**
   * Unmaps [cpos, cpos+clusters) (records trimmed or split at the edges) and
   * returns the physical runs it unmapped, in no particular order; freeing
   * their clusters is the caller's. Works from the right; with `maxLeaves`
   * it stops after that many leaves and says whether it got to the start.
   * A refcounted (reflinked) record is refused with EOPNOTSUPP unless
   * `refcounted` says the caller lowers the counts of what comes back with
   * OCFS2_EXT_REFCOUNTED (releaseRuns) instead of freeing it.
   */
  async remove(cpos: number, clusters: number, opts: { maxLeaves?: number; refcounted?: boolean } = {}):
    Promise<{ removed: Extent[]; done: boolean }> {
    const { bpc } = this;
    const start = cpos;
    const endAll = Math.min(cpos + clusters, MAX_CPOS);
    const removed: Extent[] = [];
    if (clusters <= 0 || start >= endAll) return { removed, done: true };
    const maxLeaves = opts.maxLeaves ?? Infinity;
    let end = endAll;
    let leaves = 0;
    let done = false;
    let total = 0;
    try {
      while (leaves < maxLeaves) {
        const path = await this.findPath(end - 1);
        const range = ExtentTree.leafRange(path);
        const s = Math.max(start, range.start);
        const leaf = path.nodes[path.nodes.length - 1];
        const keep: Extent[] = [];
        const gone: Extent[] = [];
        for (const r of leaf.recs) {
          const rEnd = r.cpos + r.clusters;
          if (r.clusters === 0 || rEnd <= s || r.cpos >= end) {
            keep.push(r);
            continue;
          }
          if (r.flags & OCFS2_EXT_REFCOUNTED && !opts.refcounted) {
            throw new FsError('EOPNOTSUPP', `${this.root.owner}: extent at cpos ${r.cpos} is refcounted (reflinked); o2fuse cannot unmap it`);
          }
          const a = Math.max(r.cpos, s);
          const b = Math.min(rEnd, end);
          if (r.cpos < a) keep.push({ cpos: r.cpos, clusters: a - r.cpos, blkno: r.blkno, flags: r.flags });
          if (b < rEnd) keep.push({ cpos: b, clusters: rEnd - b, blkno: r.blkno + (b - r.cpos) * bpc, flags: r.flags });
          gone.push({ cpos: a, clusters: b - a, blkno: r.blkno + (a - r.cpos) * bpc, flags: r.flags });
        }
        if (gone.length) {
          const recs = normalizeLeaf(keep, bpc, Math.min(this.root.maxLeafClusters, MAX_LEAF_CLUSTERS));
          await this.setRecs(path, path.nodes.length - 1, recs);
          for (const g of gone) total += g.clusters;
          removed.push(...gone);
        }
        leaves++;
        if (range.start <= start || leaves >= maxLeaves) {
          done = range.start <= start;
          break;
        }
        end = range.start;
      }
    } finally {
      if (total > 0) this.root.addClusters(-total);
      await this.finish();
    }
    return { removed, done };
  }

  /**
   * Clears OCFS2_EXT_UNWRITTEN on [cpos, cpos+clusters), splitting records
   * into up to three (ocfs2_mark_extent_written). Every cluster of the range
   * must be mapped; already-written parts stay as they are. Returns the
   * clusters converted from cpos on: all, or with `partial` the prefix done
   * before the volume ran out of extent blocks (as insert).
   */
  async markWritten(cpos: number, clusters: number, opts: { partial?: boolean } = {}): Promise<number> {
    return this.rewrite(cpos, clusters, 'mark them written', opts, (part, out) => {
      out.push(part.flags & OCFS2_EXT_UNWRITTEN ? { ...part, flags: part.flags & ~OCFS2_EXT_UNWRITTEN } : part);
    });
  }

  /**
   * Points [cpos, cpos+clusters) at other clusters: the run from block
   * `blkno` (cluster aligned), with `flags`, splitting records at the edges
   * into up to three, as markWritten does (the kernel's copy on write maps its
   * new clusters so, ocfs2_replace_clusters). Every cluster of the range must
   * be mapped. i_clusters does not change. Returns how many clusters from
   * cpos were remapped (all, or with `partial` the prefix done before the
   * volume ran out of extent blocks, as insert) and the runs they were
   * mapped to before, flags and all, for the caller to let go of.
   */
  async remap(cpos: number, clusters: number, blkno: number, flags: number, opts: { partial?: boolean } = {}):
    Promise<{ done: number; replaced: Extent[] }> {
    if (blkno <= 0 || blkno % this.bpc !== 0) throw new FsError('EINVAL', `${this.root.owner}: remap to unaligned block ${blkno}`);
    const replaced: Extent[] = [];
    const done = await this.rewrite(cpos, clusters, 'remap them', opts, (part, out, gone) => {
      out.push({ cpos: part.cpos, clusters: part.clusters, blkno: blkno + (part.cpos - cpos) * this.bpc, flags });
      gone.push(part);
    }, replaced);
    return { done, replaced };
  }

  /**
   * The leaf-by-leaf walk of markWritten and remap: each record's part inside
   * [cpos, cpos+clusters) goes to `change`, which puts what replaces it in
   * `out` (and what it let go of in `gone`, collected into `released` once its
   * leaf is written); the parts outside stay. EIO when a cluster of the range
   * is not mapped. Returns the clusters done from cpos, as markWritten.
   */
  private async rewrite(cpos: number, clusters: number, what: string, opts: { partial?: boolean },
    change: (part: Extent, out: Extent[], gone: Extent[]) => void, released: Extent[] = []): Promise<number> {
    const { bpc } = this;
    const endAll = cpos + clusters;
    let c = cpos;
    try {
      while (c < endAll) {
        const path = await this.findPath(c);
        const range = ExtentTree.leafRange(path);
        const segEnd = Math.min(endAll, range.end);
        const leaf = path.nodes[path.nodes.length - 1];
        const out: Extent[] = [];
        const gone: Extent[] = [];
        let covered = 0;
        for (const r of leaf.recs) {
          const rEnd = r.cpos + r.clusters;
          if (r.clusters === 0 || rEnd <= c || r.cpos >= segEnd) {
            out.push(r);
            continue;
          }
          const a = Math.max(r.cpos, c);
          const b = Math.min(rEnd, segEnd);
          covered += b - a;
          if (r.cpos < a) out.push({ cpos: r.cpos, clusters: a - r.cpos, blkno: r.blkno, flags: r.flags });
          change({ cpos: a, clusters: b - a, blkno: r.blkno + (a - r.cpos) * bpc, flags: r.flags }, out, gone);
          if (b < rEnd) out.push({ cpos: b, clusters: rEnd - b, blkno: r.blkno + (b - r.cpos) * bpc, flags: r.flags });
        }
        if (covered !== segEnd - c) {
          throw new FsError('EIO', `${this.root.owner}: clusters ${c}..${segEnd} are not all mapped; cannot ${what}`);
        }
        const recs = normalizeLeaf(out, bpc, Math.min(this.root.maxLeafClusters, MAX_LEAF_CLUSTERS));
        await this.setRecs(path, path.nodes.length - 1, recs);
        released.push(...gone);
        c = segEnd;
      }
    } catch (err) {
      if (!(opts.partial && c > cpos && errnoOf(err) === 'ENOSPC')) throw err;
    } finally {
      await this.finish();
    }
    return c - cpos;
  }

  /** Every leaf record as the transaction sees the tree now, in cpos order. */
  async extents(): Promise<Extent[]> {
    const out: Extent[] = [];
    const walk = async (node: Node): Promise<void> => {
      if (node.depth === 0) {
        for (const r of node.recs) if (r.clusters > 0) out.push(copyRec(r));
        return;
      }
      for (const r of node.recs) await walk(await this.readNode(r.blkno, node.depth - 1));
    };
    await walk(this.rootNode());
    return out;
  }
}

// ---- the data tree of an inode ----

function inodeTree(ctx: VolumeContext, tx: Transaction, inode: Inode, di: Dinode): ExtentTree {
  // The cached leaf list is stale once this commits.
  tx.onCommit(() => { inode.extents = undefined; });
  return new ExtentTree(ctx, tx, dinodeExtentRoot(di, { sparse: ctx.features.sparse }));
}

async function txDinode(tx: Transaction, inode: Inode, di?: Dinode): Promise<Dinode> {
  return di ?? editInode(tx, inode);
}

/** Maps a run of clusters into the inode's data tree (i_clusters grows by ext.clusters). */
export async function insertExtent(ctx: VolumeContext, tx: Transaction, inode: Inode, ext: Extent, di?: Dinode): Promise<void> {
  await inodeTree(ctx, tx, inode, await txDinode(tx, inode, di)).insert(ext);
}

/** Unmaps [cpos, cpos+clusters) without freeing anything; returns the unmapped runs. */
export async function removeRange(ctx: VolumeContext, tx: Transaction, inode: Inode, cpos: number, clusters: number,
  di?: Dinode): Promise<Extent[]> {
  return (await inodeTree(ctx, tx, inode, await txDinode(tx, inode, di)).remove(cpos, clusters)).removed;
}

/** Gives unmapped runs (what ExtentTree.remove returned) back to the global bitmap. */
export async function freeRuns(ctx: VolumeContext, tx: Transaction, runs: readonly Extent[]): Promise<void> {
  const { bpc } = ctx.geo;
  for (const r of runs) await ctx.alloc.freeClusters(tx, { cluster: r.blkno / bpc, count: r.clusters });
}

/**
 * Lets go of unmapped runs of `di`'s data: a refcounted one (reflinked) counts
 * one fewer in the inode's refcount tree, and only the clusters nobody shares
 * any more are freed (fs/refcountDecrease.ts); the others are freed.
 */
export async function releaseRuns(ctx: VolumeContext, tx: Transaction, di: Dinode, runs: readonly Extent[]): Promise<void> {
  const { bpc } = ctx.geo;
  const owned = runs.filter((r) => !(r.flags & OCFS2_EXT_REFCOUNTED));
  await freeRuns(ctx, tx, owned);
  for (const r of runs) {
    if (!(r.flags & OCFS2_EXT_REFCOUNTED)) continue;
    const unshared = await decreaseRefcount(ctx, tx, refcountRootOf(di, r.cpos), `inode ${di.i_blkno}`, r.blkno / bpc, r.clusters);
    for (const run of unshared) await ctx.alloc.freeClusters(tx, run);
  }
}

/**
 * Unmaps [cpos, cpos+clusters) and lets go of its clusters (fallocate's punch
 * hole; releaseRuns: a reflinked run counts one fewer). A hole in the middle
 * of a file needs sparse-alloc.
 */
export async function punchHole(ctx: VolumeContext, tx: Transaction, inode: Inode, cpos: number, clusters: number,
  di?: Dinode): Promise<Extent[]> {
  const d = await txDinode(tx, inode, di);
  if (!ctx.features.sparse && cpos + clusters < d.i_clusters) {
    throw new FsError('EOPNOTSUPP', 'punching a hole needs the sparse feature');
  }
  const { removed } = await inodeTree(ctx, tx, inode, d).remove(cpos, clusters, { refcounted: true });
  await releaseRuns(ctx, tx, d, removed);
  return removed;
}

/** Converts [cpos, cpos+clusters) from unwritten to written. */
export async function markWritten(ctx: VolumeContext, tx: Transaction, inode: Inode, cpos: number, clusters: number,
  di?: Dinode): Promise<void> {
  await inodeTree(ctx, tx, inode, await txDinode(tx, inode, di)).markWritten(cpos, clusters);
}

/**
 * Unmaps every cluster at or past logical cluster `keepClusters` and lets go
 * of them (releaseRuns: freed, or for a reflinked run counted one fewer in the
 * refcount tree), freeing extent blocks that empty and lowering the tree when
 * the root can hold what is left. `freed` is every run unmapped. With
 * `maxLeaves` it does at most that many leaves; `done` says whether it
 * finished (call again in a new transaction if not).
 */
export async function truncateClustersStep(ctx: VolumeContext, tx: Transaction, inode: Inode, di: Dinode,
  keepClusters: number, maxLeaves?: number): Promise<{ freed: Extent[]; done: boolean }> {
  const tree = inodeTree(ctx, tx, inode, di);
  // Refcounted runs come back to releaseRuns, which lowers their counts, or calls an inode without a tree damaged.
  const { removed, done } = await tree.remove(keepClusters, MAX_CPOS - keepClusters, { maxLeaves, refcounted: true });
  await releaseRuns(ctx, tx, di, removed);
  return { freed: removed, done };
}

/** truncateClustersStep to the end, in the caller's transaction and dinode. */
export async function truncateClusters(ctx: VolumeContext, tx: Transaction, inode: Inode, di: Dinode,
  keepClusters: number): Promise<Extent[]> {
  return (await truncateClustersStep(ctx, tx, inode, di, keepClusters)).freed;
}

/** truncateClusters with the inode taken into `tx` here. */
export async function truncateTo(ctx: VolumeContext, tx: Transaction, inode: Inode, keepClusters: number): Promise<Extent[]> {
  return truncateClusters(ctx, tx, inode, await editInode(tx, inode), keepClusters);
}
