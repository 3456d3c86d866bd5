/**
 * An independent check of an indexed directory, stricter than fsck.ocfs2
 * (which checks only that every name is found through the index): from the
 * blocks, decoded by the format layer alone,
 *  - every live record ("." and ".." included) has exactly one index entry,
 *    in the leaf the kernel's lookup computes, naming its dir block, and no
 *    entry is left over;
 *  - dr_num_entries counts the entries, dr_clusters the leaf clusters, and
 *    an extent record's e_cpos is at most the hashes of its leaves;
 *  - the free-space list holds exactly the blocks whose db_free_rec_len is
 *    not 0, without loops, and each db_free_rec_len is the block's largest
 *    hole (0 under 16 bytes), as ocfs2_find_max_rec_len computes it.
 * Returns the problems found (empty when the directory is right).
 */
import type { Volume } from '../../fs/volume';
import type { Inode } from '../../fs/inode';
import { readDirSlots, dirBlockNumber } from '../../fs/dir';
import { decodeDxLeaf, decodeDxRoot, OCFS2_DX_FLAG_INLINE, type DxEntry } from '../../fs/format/dx';
import { decodeDirTrailer, dirTrailerBlkOff, iterateDirEntries, OCFS2_DIR_REC_LEN } from '../../fs/format/dirent';
import { dxDirNameHash, dxSeedOf } from '../../fs/format/dxHash';
import { leafExtents } from '../../fs/extentMap';
import { OCFS2_INDEXED_DIR_FL } from '../../fs/format/constants';

export interface DxFacts {
  inline: boolean;
  entries: number;
  clusters: number;
  treeDepth: number;
  freeList: number;
}

export async function checkDxIndex(vol: Volume, dir: Inode): Promise<{ problems: string[]; facts: DxFacts | null }> {
  const problems: string[] = [];
  const di = dir.di;
  if (!(di.i_dyn_features & OCFS2_INDEXED_DIR_FL)) {
    if (!di.data) problems.push(`directory ${dir.ino} is a block directory without an index`);
    return { problems, facts: null };
  }
  const { blockSize, bpc } = vol.geo;
  // Through the cache: with the journal, a committed block reaches its home only at checkpoint.
  const raw = async (blkno: number) => Buffer.from(await vol.cache.read(blkno));
  const root = decodeDxRoot(await raw(di.i_dx_root), { expectedBlkno: di.i_dx_root, dirBlkno: dir.ino, fsGeneration: vol.fsGeneration });
  const seed = dxSeedOf(vol.sb);
  const key = (e: DxEntry) => `${e.dx_major_hash}/${e.dx_minor_hash}/${e.dx_dirent_blk}`;

  // Where each entry is, by the kernel's lookup.
  const inline = (root.dr_flags & OCFS2_DX_FLAG_INLINE) !== 0;
  const byLeaf = new Map<number, DxEntry[]>();
  let entryCount = 0;
  let clusters = 0;
  let records: { cpos: number; clusters: number; blkno: number }[] = [];
  if (inline) {
    const list = root.dr_entries!;
    byLeaf.set(0, list.de_entries.slice(0, list.de_num_used));
    entryCount = list.de_num_used;
  } else {
    records = await leafExtents(vol, root.dr_list!, `dx root of ${dir.ino}`);
    if (records[0]?.cpos !== 0) problems.push(`first dx extent record starts at hash ${records[0]?.cpos}, not 0`);
    for (const r of records) {
      clusters += r.clusters;
      for (let c = 0; c < r.clusters; c++) {
        for (let b = 0; b < bpc; b++) {
          const blkno = r.blkno + c * bpc + b;
          const leaf = decodeDxLeaf(await raw(blkno), { expectedBlkno: blkno, fsGeneration: vol.fsGeneration });
          const used = leaf.dl_list.de_entries.slice(0, leaf.dl_list.de_num_used);
          byLeaf.set(blkno, used);
          entryCount += used.length;
          for (const e of used) {
            if (e.dx_major_hash < r.cpos + c) problems.push(`leaf ${blkno} holds hash 0x${e.dx_major_hash.toString(16)} below its cluster's 0x${(r.cpos + c).toString(16)}`);
          }
        }
      }
    }
    if (root.dr_clusters !== clusters) problems.push(`dr_clusters ${root.dr_clusters}, leaf clusters ${clusters}`);
  }
  const leafOf = (major: number, minor: number): number => {
    if (inline) return 0;
    let r = records[0];
    for (const x of records) if (x.cpos <= major) r = x;
    const off = major >= r.cpos + r.clusters ? r.clusters - 1 : major - r.cpos;
    return r.blkno + off * bpc + (minor & (bpc - 1));
  };
  const unclaimed = new Map<number, Map<string, number>>();
  for (const [leaf, list] of byLeaf) {
    const m = new Map<string, number>();
    for (const e of list) m.set(key(e), (m.get(key(e)) ?? 0) + 1);
    unclaimed.set(leaf, m);
  }
  const slots = await readDirSlots(vol, dir);
  for (const s of slots) {
    const h = dxDirNameHash(s.name, seed);
    const blk = await dirBlockNumber(vol, dir, s.lblk);
    const k = `${h.major_hash}/${h.minor_hash}/${blk}`;
    const m = unclaimed.get(leafOf(h.major_hash, h.minor_hash));
    const n = m?.get(k) ?? 0;
    if (n === 0) problems.push(`"${s.name.toString('latin1')}" (block ${blk}) has no index entry where a lookup looks`);
    else m!.set(k, n - 1);
    if (problems.length > 30) break;
  }
  for (const [leaf, m] of unclaimed) for (const [k, n] of m) if (n > 0) problems.push(`leaf ${leaf}: ${n} entr(ies) ${k} name nothing`);
  if (root.dr_num_entries !== entryCount) problems.push(`dr_num_entries ${root.dr_num_entries}, entries ${entryCount}`);
  if (entryCount !== slots.length) problems.push(`${entryCount} index entries for ${slots.length} names`);

  // The free-space list.
  const blocks = di.i_size / blockSize;
  const trailerAt = dirTrailerBlkOff(blockSize);
  const shouldList = new Set<number>();
  for (let lblk = 0; lblk < blocks; lblk++) {
    const blkno = await dirBlockNumber(vol, dir, lblk);
    const block = await raw(blkno);
    let hole = 0;
    for (const de of iterateDirEntries(block, 0, trailerAt)) {
      hole = Math.max(hole, de.inode === 0 ? de.rec_len : de.rec_len - OCFS2_DIR_REC_LEN(de.name_len));
    }
    const want = hole >= 16 ? hole : 0;
    const t = decodeDirTrailer(block, blkno, dir.ino);
    if (t.db_free_rec_len !== want) problems.push(`block ${blkno}: db_free_rec_len ${t.db_free_rec_len}, largest hole ${want}`);
    if (t.db_free_rec_len !== 0) shouldList.add(blkno);
    else if (t.db_free_next !== 0) problems.push(`block ${blkno} is off the list but db_free_next is ${t.db_free_next}`);
  }
  const listed = new Set<number>();
  for (let b = root.dr_free_blk; b !== 0;) {
    if (listed.has(b)) {
      problems.push(`free-space list loops at block ${b}`);
      break;
    }
    listed.add(b);
    if (!shouldList.has(b)) problems.push(`block ${b} is on the free-space list without room (or is not the directory's)`);
    try {
      b = decodeDirTrailer(await raw(b), b, dir.ino).db_free_next;
    } catch (err) {
      problems.push(`the free-space list leaves the directory at block ${b}: ${(err as Error).message}`);
      break;
    }
  }
  for (const b of shouldList) if (!listed.has(b)) problems.push(`block ${b} has room but is not on the free-space list`);
  return {
    problems,
    facts: { inline, entries: entryCount, clusters, treeDepth: inline ? 0 : root.dr_list!.l_tree_depth, freeList: listed.size },
  };
}
