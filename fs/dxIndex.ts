/**
 * The index of an indexed directory (OCFS2_INDEXED_DIR_FL): the dx root
 * block the inode's i_dx_root names, with the name hashes either inline in
 * the root or in leaf blocks grouped in clusters that an extent tree in the
 * root maps by hash. fs/dirUpdate.ts owns the directory's blocks and calls
 * in here for every name it adds or removes; the kernel's fs/ocfs2/dir.c
 * (ocfs2_dx_dir_*) is the model, and what it reads back must find every
 * name:
 *
 *  - Every live record of the directory, "." and ".." included (they hash to
 *    0/0), has one entry (major hash, minor hash, physical dir block). A
 *    lookup takes the extent record with the largest e_cpos <= major hash
 *    (e_cpos is a hash, not a file offset; the first record has e_cpos 0),
 *    the cluster inside it (major - e_cpos, capped at the last), and the
 *    leaf block `minor & (leaves per cluster - 1)` of that cluster.
 *  - New entries go at the end of their list; removal keeps the order.
 *  - A full inline root moves every entry into one new cluster of leaves
 *    (ocfs2_expand_inline_dx_root). A full leaf splits its cluster
 *    (ocfs2_dx_dir_rebalance): a new cluster takes the hashes from a split
 *    value up, found in the sorted leaf, and keeps each entry's leaf number.
 *    A leaf whose entries all share the new name's major hash cannot split:
 *    ENOSPC, as the kernel answers.
 *  - dr_num_entries counts the entries (the kernel's rmdir decides emptiness
 *    by it); dr_clusters the leaf clusters. Leaves are never merged or freed
 *    before the directory is.
 *
 * The root also heads the list of dir blocks with free space (dr_free_blk,
 * through each trailer's db_free_next); dirUpdate keeps that list and reads
 * and sets its head here.
 *
 * Index blocks are edited in place in the transaction's copies: a leaf is a
 * header and an array of 16-byte entries, and decoding 253 of them for each
 * create was the cost of a naive version. The root's extent list is decoded
 * only when the tree changes (fs/extentTree.ts does the tree work, through
 * an ExtentRoot over the root block).
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Transaction } from './transaction';
import type { Dinode } from './format/dinode';
import { type DxHash, dxDirNameHash, dxSeedOf } from './format/dxHash';
import {
  DX_ENTRY_LIST_ENTRIES_OFFSET, DX_ENTRY_SIZE, DX_LEAF_LIST_OFFSET, DX_ROOT, DX_ROOT_UNION_OFFSET, OCFS2_DX_FLAG_INLINE,
  dxEntriesPerLeaf, dxEntriesPerRoot, encodeDxLeaf, encodeDxRoot, extentRecsPerDxRoot, newDxLeaf, newDxRoot,
} from './format/dx';
import {
  decodeExtentList, encodeExtentList, emptyExtentList, EXTENT_BLOCK_LIST_OFFSET, EXTENT_LIST_RECS_OFFSET, EXTENT_REC_SIZE,
  type ExtentList,
} from './format/extent';
import { OCFS2_DX_ENTRIES_MAX, OCFS2_INDEXED_DIR_FL } from './format/constants';
import { peekDxLeafBytes, peekDxRootBytes, readDxLeafBytes, readDxRootBytes, readExtentBlockBytes } from './blocks';
import { ExtentTree, freeRuns, MAX_CPOS, type ExtentRoot } from './extentTree';
import { FsError } from './errors';

const trace = createDebug('o2fuse:dx');

// Byte offsets in the root block (struct ocfs2_dx_root_block).
const DR_LAST_EB_BLK = DX_ROOT.dr_last_eb_blk[0];
const DR_CLUSTERS = DX_ROOT.dr_clusters[0];
const DR_FLAGS = DX_ROOT.dr_flags[0];
const DR_NUM_ENTRIES = DX_ROOT.dr_num_entries[0];
const DR_FREE_BLK = DX_ROOT.dr_free_blk[0];

/** The hash seeds of each volume, taken from its superblock once. */
const seeds = new WeakMap<VolumeContext, readonly number[]>();

function seedOf(ctx: VolumeContext): readonly number[] {
  let seed = seeds.get(ctx);
  if (!seed) {
    seed = dxSeedOf(ctx.sb);
    seeds.set(ctx, seed);
  }
  return seed;
}

/** ocfs2_dx_dir_name_hash of `name` on this volume, as this mount adds names (VolumeContext.dxHashChars). */
export function dxHashOf(ctx: VolumeContext, name: Buffer): DxHash {
  return dxDirNameHash(name, seedOf(ctx), { signedChars: ctx.dxHashChars !== 'unsigned' });
}

/**
 * The hashes under which the index may hold `name`: dxHashOf's, then, for a
 * name with a byte of 0x80 or more, the other signedness's, computed only if
 * the caller reads on (after a miss under the first). The kernel hashes name
 * bytes as `char`, which x86 kernels read signed before 6.2 and unsigned
 * since (-funsigned-char), and ocfs2-tools signed: a volume shared across
 * that change holds non-ASCII names under either hash. A lookup or a removal
 * that misses under the first tries the second: one more probe of the index,
 * only for such names. (ext4 and f2fs, whose casefolded names' hashes changed
 * with a Unicode table fix, fall back to scanning the whole directory; here
 * only two hashes are possible, so a second probe is enough.)
 */
function* hashesOf(ctx: VolumeContext, name: Buffer): Generator<DxHash> {
  const first = dxHashOf(ctx, name);
  yield first;
  if (!name.some((b) => b >= 0x80)) return;
  const other = dxDirNameHash(name, seedOf(ctx), { signedChars: ctx.dxHashChars === 'unsigned' });
  if (other.major_hash !== first.major_hash || other.minor_hash !== first.minor_hash) yield other;
}

/** The dir blocks the index names for `name` (ocfs2_dx_dir_search's candidates), under each of its hashes in turn. */
export async function* blocksForName(ctx: VolumeContext, di: Dinode, name: Buffer): AsyncGenerator<number> {
  for (const hash of hashesOf(ctx, name)) yield* await blocksWithHash(ctx, di, hash);
}

export function isIndexed(di: Dinode): boolean {
  return (di.i_dyn_features & OCFS2_INDEXED_DIR_FL) !== 0;
}

// ---- entry lists (struct ocfs2_dx_entry_list), in place ----

interface Entry {
  major: number;
  minor: number;
  blk: number;
}

function listCount(buf: Buffer, base: number): number {
  return buf.readUInt16LE(base + 4);
}
function listUsed(buf: Buffer, base: number): number {
  return buf.readUInt16LE(base + 6);
}
function entryAt(buf: Buffer, base: number, i: number): Entry {
  const off = base + DX_ENTRY_LIST_ENTRIES_OFFSET + i * DX_ENTRY_SIZE;
  return { major: buf.readUInt32LE(off), minor: buf.readUInt32LE(off + 4), blk: Number(buf.readBigUInt64LE(off + 8)) };
}
function writeEntry(buf: Buffer, base: number, i: number, e: Entry): void {
  const off = base + DX_ENTRY_LIST_ENTRIES_OFFSET + i * DX_ENTRY_SIZE;
  buf.writeUInt32LE(e.major >>> 0, off);
  buf.writeUInt32LE(e.minor >>> 0, off + 4);
  buf.writeBigUInt64LE(BigInt(e.blk), off + 8);
}
function entriesOf(buf: Buffer, base: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0, n = listUsed(buf, base); i < n; i++) out.push(entryAt(buf, base, i));
  return out;
}
/** Rewrites the list as exactly `entries`, zeroing the slots after them. */
function setEntries(buf: Buffer, base: number, entries: readonly Entry[]): void {
  const count = listCount(buf, base);
  if (entries.length > count) throw new Error(`dx entry list: ${entries.length} entries > de_count ${count}`);
  entries.forEach((e, i) => writeEntry(buf, base, i, e));
  const from = base + DX_ENTRY_LIST_ENTRIES_OFFSET + entries.length * DX_ENTRY_SIZE;
  const to = base + DX_ENTRY_LIST_ENTRIES_OFFSET + listUsed(buf, base) * DX_ENTRY_SIZE;
  if (to > from) buf.fill(0, from, to);
  buf.writeUInt16LE(entries.length, base + 6);
}
/** ocfs2_dx_entry_list_insert: at the end. */
function appendEntry(buf: Buffer, base: number, e: Entry): void {
  const used = listUsed(buf, base);
  if (used >= listCount(buf, base)) throw new Error('dx entry list is full');
  writeEntry(buf, base, used, e);
  buf.writeUInt16LE(used + 1, base + 6);
}
/** ocfs2_dx_list_remove_entry: the later entries move down, the freed slot is zeroed. */
function removeEntryAt(buf: Buffer, base: number, i: number): void {
  const used = listUsed(buf, base);
  const at = (k: number) => base + DX_ENTRY_LIST_ENTRIES_OFFSET + k * DX_ENTRY_SIZE;
  buf.copy(buf, at(i), at(i + 1), at(used));
  buf.fill(0, at(used - 1), at(used));
  buf.writeUInt16LE(used - 1, base + 6);
}
function findEntry(buf: Buffer, base: number, e: Entry): number {
  for (let i = 0, n = listUsed(buf, base); i < n; i++) {
    const off = base + DX_ENTRY_LIST_ENTRIES_OFFSET + i * DX_ENTRY_SIZE;
    if (buf.readUInt32LE(off) === e.major && buf.readUInt32LE(off + 4) === e.minor &&
      Number(buf.readBigUInt64LE(off + 8)) === e.blk) return i;
  }
  return -1;
}

function byHash(a: Entry, b: Entry): number {
  return a.major - b.major || a.minor - b.minor;
}

// ---- blocks in the transaction ----

/** The transaction's copy of the directory's dx root, validated on its way in. */
async function rootBlock(ctx: VolumeContext, tx: Transaction, di: Dinode): Promise<Buffer> {
  const blkno = di.i_dx_root;
  if (!isIndexed(di) || blkno === 0) throw new Error(`directory ${di.i_blkno} has no index`);
  if (!tx.has(blkno) && !peekDxRootBytes(ctx, blkno, di.i_blkno)) await readDxRootBytes(ctx, blkno, di.i_blkno);
  return tx.blockNow(blkno, 'dx root') ?? tx.block(blkno, 'dx root');
}

async function leafBlock(ctx: VolumeContext, tx: Transaction, blkno: number): Promise<Buffer> {
  if (!tx.has(blkno) && !peekDxLeafBytes(ctx, blkno)) await readDxLeafBytes(ctx, blkno);
  return tx.blockNow(blkno, 'dx leaf') ?? tx.block(blkno, 'dx leaf');
}

function isInlineRoot(root: Buffer): boolean {
  return (root[DR_FLAGS] & OCFS2_DX_FLAG_INLINE) !== 0;
}

function u64(buf: Buffer, off: number): number {
  return Number(buf.readBigUInt64LE(off));
}

/** A freshly claimed cluster of empty leaves (ocfs2_dx_dir_format_cluster); returns its first block. */
async function newLeafCluster(ctx: VolumeContext, tx: Transaction, goalBlk: number): Promise<number> {
  const { bpc, blockSize } = ctx.geo;
  const run = await ctx.alloc.claimClusters(tx, 1, 1, Math.floor(goalBlk / bpc));
  const first = run.cluster * bpc;
  for (let i = 0; i < bpc; i++) {
    encodeDxLeaf(newDxLeaf(blockSize, first + i, ctx.fsGeneration), tx.newBlock(first + i, 'dx leaf'));
  }
  return first;
}

/**
 * The root's extent tree as fs/extentTree.ts changes it: the list decoded
 * from the root block, written back by `flush`. A record maps one cluster
 * of leaves; records are never merged (each starts its own hash range).
 */
function rootTree(ctx: VolumeContext, tx: Transaction, root: Buffer, dirIno: number): { tree: ExtentTree; flush(): void } {
  const list: ExtentList = decodeExtentList(root, DX_ROOT_UNION_OFFSET, extentRecsPerDxRoot(root.length), `dx root of directory ${dirIno}`);
  const owner: ExtentRoot = {
    owner: `dx root of directory ${dirIno}`,
    list,
    getLastEbBlk: () => u64(root, DR_LAST_EB_BLK),
    setLastEbBlk: (blkno) => root.writeBigUInt64LE(BigInt(blkno), DR_LAST_EB_BLK),
    addClusters: (delta) => {
      const n = root.readUInt32LE(DR_CLUSTERS) + delta;
      if (n < 0 || n > MAX_CPOS) throw new FsError('EIO', `dx root of directory ${dirIno}: dr_clusters would become ${n}`);
      root.writeUInt32LE(n, DR_CLUSTERS);
    },
    maxLeafClusters: 1,
  };
  return {
    tree: new ExtentTree(ctx, tx, owner),
    flush: () => { encodeExtentList(list, root, DX_ROOT_UNION_OFFSET, owner.owner); },
  };
}

/** Where a hash's entries live in an index of leaves. */
interface LeafSlot {
  /** The hash value the leaf's cluster starts at (ocfs2_dx_dir_lookup's cpos). */
  cpos: number;
  blkno: number;
}

/**
 * ocfs2_dx_dir_lookup: the leaf block for `hash`. Interior levels are
 * walked as ocfs2_find_leaf does (the record whose range holds the hash,
 * else the last); a leaf level takes the last record with e_cpos <= major.
 * Every level is read in place: a root holds up to 243 records and an
 * extent block up to 252, and decoding them for each name was most of a
 * lookup in a directory whose index tree has grown a level.
 */
async function leafFor(ctx: VolumeContext, tx: Transaction | null, root: Buffer, dirIno: number, hash: DxHash): Promise<LeafSlot> {
  const { bpc } = ctx.geo;
  const major = hash.major_hash;
  const what = `dx root of directory ${dirIno}`;
  let buf = root;
  let base = DX_ROOT_UNION_OFFSET;
  let where = what;
  const seen = new Set<number>();
  for (;;) {
    // struct ocfs2_extent_list: l_tree_depth u16 @0, l_count u16 @2, l_next_free_rec u16 @4, records from 0x10.
    const depth = buf.readUInt16LE(base);
    const n = buf.readUInt16LE(base + 4);
    if (n > buf.readUInt16LE(base + 2) || base + EXTENT_LIST_RECS_OFFSET + n * EXTENT_REC_SIZE > buf.length) {
      throw new FsError('EIO', `${where}: l_next_free_rec ${n} is past the list`);
    }
    const rec = (i: number) => base + EXTENT_LIST_RECS_OFFSET + i * EXTENT_REC_SIZE;
    if (depth === 0) {
      for (let i = n - 1; i >= 0; i--) {
        const cpos = buf.readUInt32LE(rec(i));
        if (cpos > major) continue;
        const clen = Math.max(1, buf.readUInt16LE(rec(i) + 4));
        const off = major >= cpos + clen ? clen - 1 : major - cpos;
        return { cpos: cpos + off, blkno: u64(buf, rec(i) + 8) + off * bpc + (hash.minor_hash & (bpc - 1)) };
      }
      throw new FsError('EIO', `${where}: no extent record covers hash 0x${major.toString(16)}`);
    }
    if (n === 0) throw new FsError('EIO', `${where}: empty interior extent list`);
    let i = 0;
    for (; i < n - 1; i++) {
      const cpos = buf.readUInt32LE(rec(i));
      if (major >= cpos && major < cpos + buf.readUInt32LE(rec(i) + 4)) break;
    }
    const child = u64(buf, rec(i) + 8);
    if (seen.has(child)) throw new FsError('EIO', `${what}: extent block ${child} appears twice on one path`);
    seen.add(child);
    // The tree may have changed in this transaction (a split earlier in it): its copy is the truth then.
    buf = tx?.has(child) ? await tx.block(child, 'extent block') : await readExtentBlockBytes(ctx, child);
    base = EXTENT_BLOCK_LIST_OFFSET;
    where = `${what}: extent block ${child}`;
    if (buf.readUInt16LE(base) !== depth - 1) {
      throw new FsError('EIO', `${where} has depth ${buf.readUInt16LE(base)}, expected ${depth - 1}`);
    }
  }
}

// ---- looking up ----

/**
 * ocfs2_dx_dir_search's candidates: the dir blocks whose index entries carry
 * `hash`, read from the committed index (no transaction). A lookup then
 * reads the root, one leaf and the dir block or two they name, instead of
 * every block of the directory. Names sharing a hash may share a block: each
 * block is given once.
 */
export async function blocksWithHash(ctx: VolumeContext, di: Dinode, hash: DxHash): Promise<number[]> {
  const blkno = di.i_dx_root;
  if (!isIndexed(di) || blkno === 0) throw new Error(`directory ${di.i_blkno} has no index`);
  const root = peekDxRootBytes(ctx, blkno, di.i_blkno) ?? await readDxRootBytes(ctx, blkno, di.i_blkno);
  let buf = root;
  let base = DX_ROOT_UNION_OFFSET;
  if (!isInlineRoot(root)) {
    const slot = await leafFor(ctx, null, root, di.i_blkno, hash);
    buf = peekDxLeafBytes(ctx, slot.blkno) ?? await readDxLeafBytes(ctx, slot.blkno);
    base = DX_LEAF_LIST_OFFSET;
  }
  const out: number[] = [];
  // l_num_used <= l_count was checked when the block was validated.
  for (let i = 0, n = listUsed(buf, base); i < n; i++) {
    const off = base + DX_ENTRY_LIST_ENTRIES_OFFSET + i * DX_ENTRY_SIZE;
    if (buf.readUInt32LE(off) !== hash.major_hash || buf.readUInt32LE(off + 4) !== hash.minor_hash) continue;
    const blk = u64(buf, off + 8);
    if (!out.includes(blk)) out.push(blk);
  }
  return out;
}

// ---- creating ----

/**
 * Gives a block directory its index (ocfs2_dx_dir_attach_index): a root from
 * the slot's extent allocator holding `entries` (every live record of the
 * directory: name hash and dir block), inline when they leave room for one
 * more, else in one cluster of leaves. `freeHead` starts the free-space list
 * (0 for none). Sets i_dx_root and OCFS2_INDEXED_DIR_FL in `di`.
 */
export async function createIndex(ctx: VolumeContext, tx: Transaction, di: Dinode,
  entries: readonly { hash: DxHash; blk: number }[], freeHead: number): Promise<void> {
  const { blockSize } = ctx.geo;
  const claim = await ctx.alloc.claimMetaBlock(tx, 'extent');
  const inline = entries.length < dxEntriesPerRoot(blockSize);
  const hdr = newDxRoot(blockSize, true, {
    blkno: claim.blkno, dirBlkno: di.i_blkno, fsGeneration: ctx.fsGeneration, suballocSlot: claim.slot,
    suballocBit: claim.bit, suballocLoc: claim.groupBlkno, freeListHead: freeHead,
  });
  const root = tx.newBlock(claim.blkno, 'dx root');
  encodeDxRoot(hdr, root);
  di.i_dx_root = claim.blkno;
  di.i_dyn_features |= OCFS2_INDEXED_DIR_FL;
  const list = entries.map((e) => ({ major: e.hash.major_hash, minor: e.hash.minor_hash, blk: e.blk }));
  if (inline) {
    for (const e of list) appendEntry(root, DX_ROOT_UNION_OFFSET, e);
  } else {
    await moveIntoLeaves(ctx, tx, root, di.i_blkno, list);
  }
  root.writeUInt32LE(list.length, DR_NUM_ENTRIES);
  trace('directory %d: index at block %d, %d entries%s', di.i_blkno, claim.blkno, list.length, inline ? ' inline' : '');
}

/**
 * Turns an inline root (its entries, `entries`) into a root of one leaf
 * cluster mapped at hash 0, the entries spread over the leaves by minor hash
 * (ocfs2_expand_inline_dx_root).
 */
async function moveIntoLeaves(ctx: VolumeContext, tx: Transaction, root: Buffer, dirIno: number, entries: readonly Entry[]): Promise<void> {
  const { bpc, blockSize } = ctx.geo;
  const first = await newLeafCluster(ctx, tx, u64(root, DX_ROOT.dr_blkno[0]));
  const perLeaf = dxEntriesPerLeaf(blockSize);
  const leaves = await Promise.all(Array.from({ length: bpc }, (_, i) => tx.block(first + i, 'dx leaf')));
  for (const e of entries) {
    const leaf = leaves[e.minor & (bpc - 1)];
    if (listUsed(leaf, DX_LEAF_LIST_OFFSET) >= perLeaf) {
      // Only possible when the root held more than a leaf: never for the kernel's sizes (root < leaf).
      throw new FsError('ENOSPC', `directory ${dirIno}: index entries do not fit one cluster of leaves`);
    }
    appendEntry(leaf, DX_LEAF_LIST_OFFSET, e);
  }
  root[DR_FLAGS] &= ~OCFS2_DX_FLAG_INLINE;
  root.fill(0, DX_ROOT_UNION_OFFSET);
  encodeExtentList(emptyExtentList(extentRecsPerDxRoot(blockSize)), root, DX_ROOT_UNION_OFFSET);
  const { tree, flush } = rootTree(ctx, tx, root, dirIno);
  await tree.insert({ cpos: 0, clusters: 1, blkno: first, flags: 0 });
  flush();
  trace('directory %d: index moved out of its root into leaves at block %d (%d entries)', dirIno, first, entries.length);
}

// ---- adding and removing ----

/**
 * Records a new name (its hash) living in dir block `blk` (ocfs2_dx_dir_insert
 * after ocfs2_prepare_dx_dir_for_insert): room is made first by moving an
 * inline root out to leaves or by splitting a full leaf. ENOSPC when the
 * name's leaf cannot split or the volume has no cluster for it.
 */
export async function indexAdd(ctx: VolumeContext, tx: Transaction, di: Dinode, hash: DxHash, blk: number): Promise<void> {
  const root = await rootBlock(ctx, tx, di);
  const num = root.readUInt32LE(DR_NUM_ENTRIES);
  if (num >= OCFS2_DX_ENTRIES_MAX) throw new FsError('ENOSPC', `directory ${di.i_blkno}: its index holds the most entries it can`);
  const e: Entry = { major: hash.major_hash, minor: hash.minor_hash, blk };
  if (isInlineRoot(root)) {
    if (listUsed(root, DX_ROOT_UNION_OFFSET) < listCount(root, DX_ROOT_UNION_OFFSET)) {
      appendEntry(root, DX_ROOT_UNION_OFFSET, e);
      root.writeUInt32LE(num + 1, DR_NUM_ENTRIES);
      return;
    }
    await moveIntoLeaves(ctx, tx, root, di.i_blkno, entriesOf(root, DX_ROOT_UNION_OFFSET));
  }
  let slot = await leafFor(ctx, tx, root, di.i_blkno, hash);
  let leaf = await leafBlock(ctx, tx, slot.blkno);
  if (listUsed(leaf, DX_LEAF_LIST_OFFSET) >= listCount(leaf, DX_LEAF_LIST_OFFSET)) {
    await splitLeafCluster(ctx, tx, root, di.i_blkno, slot, hash.major_hash);
    slot = await leafFor(ctx, tx, root, di.i_blkno, hash);
    leaf = await leafBlock(ctx, tx, slot.blkno);
    if (listUsed(leaf, DX_LEAF_LIST_OFFSET) >= listCount(leaf, DX_LEAF_LIST_OFFSET)) {
      throw new FsError('ENOSPC', `directory ${di.i_blkno}: index leaf ${slot.blkno} is still full after a split`);
    }
  }
  appendEntry(leaf, DX_LEAF_LIST_OFFSET, e);
  root.writeUInt32LE(num + 1, DR_NUM_ENTRIES);
}

/**
 * ocfs2_dx_dir_find_leaf_split: the lowest hash the new cluster serves,
 * from a full leaf sorted by hash. null when every entry shares the new
 * name's major hash (nothing can move).
 */
function splitHash(sorted: readonly Entry[], leafCpos: number, insertMajor: number): number | null {
  const val = sorted[0].major;
  if (sorted.every((e) => e.major === val)) {
    if (val === insertMajor) return null;
    if (val === leafCpos) return leafCpos + 1;
    return val > insertMajor ? val : insertMajor;
  }
  for (let i = sorted.length >> 1; i < sorted.length; i++) if (sorted[i].major > leafCpos) return sorted[i].major;
  return null; // entries below the cluster's own hash: a damaged leaf
}

/**
 * ocfs2_dx_dir_rebalance: a new leaf cluster at hash `split` takes, from
 * every leaf of the full leaf's cluster, the entries at or above it (each
 * into the leaf of the same number).
 */
async function splitLeafCluster(ctx: VolumeContext, tx: Transaction, root: Buffer, dirIno: number, slot: LeafSlot,
  insertMajor: number): Promise<void> {
  const { bpc } = ctx.geo;
  if (root.readUInt32LE(DR_CLUSTERS) >= MAX_CPOS) throw new FsError('ENOSPC', `directory ${dirIno}: index has the most clusters it can`);
  const full = await leafBlock(ctx, tx, slot.blkno);
  const sorted = entriesOf(full, DX_LEAF_LIST_OFFSET).sort(byHash);
  setEntries(full, DX_LEAF_LIST_OFFSET, sorted);
  const split = splitHash(sorted, slot.cpos, insertMajor);
  if (split === null) {
    throw new FsError('ENOSPC', `directory ${dirIno}: index leaf ${slot.blkno} is full of names with one hash (0x${insertMajor.toString(16)})`);
  }
  const first = await newLeafCluster(ctx, tx, slot.blkno);
  const { tree, flush } = rootTree(ctx, tx, root, dirIno);
  await tree.insert({ cpos: split, clusters: 1, blkno: first, flags: 0 });
  flush();
  const oldFirst = slot.blkno - (slot.blkno % bpc);
  for (let i = 0; i < bpc; i++) {
    const from = await leafBlock(ctx, tx, oldFirst + i);
    const to = await tx.block(first + i, 'dx leaf');
    const all = entriesOf(from, DX_LEAF_LIST_OFFSET);
    const moving = all.filter((e) => e.major >= split);
    if (moving.length === 0) continue;
    setEntries(from, DX_LEAF_LIST_OFFSET, all.filter((e) => e.major < split));
    setEntries(to, DX_LEAF_LIST_OFFSET, moving);
  }
  trace('directory %d: index cluster at hash 0x%s split at 0x%s into block %d', dirIno, slot.cpos.toString(16),
    split.toString(16), first);
}

/**
 * Drops the entry of `name`, which lived in dir block `blk` (ocfs2_delete_entry_dx), under the first of its
 * hashes (hashesOf) the index holds it under.
 */
export async function indexRemove(ctx: VolumeContext, tx: Transaction, di: Dinode, name: Buffer, blk: number): Promise<void> {
  const root = await rootBlock(ctx, tx, di);
  const tried: DxHash[] = [];
  for (const hash of hashesOf(ctx, name)) {
    tried.push(hash);
    const e: Entry = { major: hash.major_hash, minor: hash.minor_hash, blk };
    let buf = root;
    let base = DX_ROOT_UNION_OFFSET;
    if (!isInlineRoot(root)) {
      const slot = await leafFor(ctx, tx, root, di.i_blkno, hash);
      // Looked at before it joins the transaction: a leaf that turns out not to hold the entry stays out of it.
      const seen = tx.has(slot.blkno) ? null : peekDxLeafBytes(ctx, slot.blkno) ?? await readDxLeafBytes(ctx, slot.blkno);
      if (seen && findEntry(seen, DX_LEAF_LIST_OFFSET, e) < 0) continue;
      buf = await leafBlock(ctx, tx, slot.blkno);
      base = DX_LEAF_LIST_OFFSET;
    }
    const i = findEntry(buf, base, e);
    if (i < 0) continue;
    if (tried.length > 1) trace('directory %d: a name in block %d was indexed under its other hash (char signedness)', di.i_blkno, blk);
    removeEntryAt(buf, base, i);
    const num = root.readUInt32LE(DR_NUM_ENTRIES);
    if (num > 0) root.writeUInt32LE(num - 1, DR_NUM_ENTRIES);
    return;
  }
  const hashes = tried.map((h) => `0x${h.major_hash.toString(16)}/0x${h.minor_hash.toString(16)}`).join(' or ');
  throw new FsError('EIO', `directory ${di.i_blkno}: its index has no entry for a name in block ${blk} (hash ${hashes}); run fsck.ocfs2`);
}

// ---- the free-space list's head ----

export async function freeListHead(ctx: VolumeContext, tx: Transaction, di: Dinode): Promise<number> {
  return u64(await rootBlock(ctx, tx, di), DR_FREE_BLK);
}

export async function setFreeListHead(ctx: VolumeContext, tx: Transaction, di: Dinode, blkno: number): Promise<void> {
  (await rootBlock(ctx, tx, di)).writeBigUInt64LE(BigInt(blkno), DR_FREE_BLK);
}

/** Makes `blkno` the list's head (ocfs2_dx_dir_link_trailer); returns the old head, for its db_free_next. */
export async function pushFreeBlock(ctx: VolumeContext, tx: Transaction, di: Dinode, blkno: number): Promise<number> {
  const root = await rootBlock(ctx, tx, di);
  const head = u64(root, DR_FREE_BLK);
  root.writeBigUInt64LE(BigInt(blkno), DR_FREE_BLK);
  return head;
}

// ---- freeing ----

/**
 * Frees a directory's index (ocfs2_dx_dir_truncate): the leaf clusters, the
 * extent blocks of the root's tree, and the root's own bit in the extent
 * allocator it came from. Clears i_dx_root and OCFS2_INDEXED_DIR_FL in `di`.
 */
export async function freeIndex(ctx: VolumeContext, tx: Transaction, di: Dinode): Promise<void> {
  const root = await rootBlock(ctx, tx, di);
  if (!isInlineRoot(root)) {
    const { tree, flush } = rootTree(ctx, tx, root, di.i_blkno);
    const { removed } = await tree.remove(0, MAX_CPOS);
    flush();
    await freeRuns(ctx, tx, removed);
  }
  await ctx.alloc.freeMetaBlock(tx, 'extent', {
    blkno: di.i_dx_root,
    slot: root.readUInt16LE(DX_ROOT.dr_suballoc_slot[0]),
    bit: root.readUInt16LE(DX_ROOT.dr_suballoc_bit[0]),
    loc: u64(root, DX_ROOT.dr_suballoc_loc[0]),
  });
  trace('directory %d: index at block %d freed', di.i_blkno, di.i_dx_root);
  di.i_dx_root = 0;
  di.i_dyn_features &= ~OCFS2_INDEXED_DIR_FL;
}
