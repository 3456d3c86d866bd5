/**
 * Shared pieces of the read-write acceptance tests: fresh writable images
 * (mkfs.ocfs2's defaults without refcount), engine mounts, the allocator
 * counts that must balance after a workload, and the errno a rejected call
 * carried.
 */
import type { Test } from 'tap';
import { FileDevice } from '../../io/fileDevice';
import { Volume } from '../../fs/volume';
import { errnoOf } from '../../fs/errors';
import {
  EXTENT_ALLOC_SYSTEM_INODE, GLOBAL_BITMAP_SYSTEM_INODE, INODE_ALLOC_SYSTEM_INODE, OCFS2_INDEXED_DIR_FL, systemInodeName,
} from '../../fs/format/constants';
import { decodeDxRoot } from '../../fs/format/dx';
import type { ExtentList } from '../../fs/format/extent';
import { readExtentBlock } from '../../fs/blocks';
import { makeImage, type ImageOptions } from '../lib/volume';
import { debugfs } from '../lib/debugfs';

export const MiB = 1024 * 1024;
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const ROOT = { uid: 0, gid: 0 };
/**
 * What every writable test volume leaves out of mkfs.ocfs2's defaults: refcount trees (the engine refuses writing to
 * a reflinked file; the reflink tests make their volumes with them). Indexed directories stay, as mkfs.ocfs2 makes them.
 */
export const WRITABLE_FEATURES = 'norefcount';

export async function writableImage(t: Test, o: ImageOptions = {}): Promise<string> {
  const features = [WRITABLE_FEATURES, ...(o.features ? [o.features] : [])].join(',');
  return makeImage(t, { sizeBytes: 256 * MiB, ...o, features });
}

export async function mountEngine(image: string, readOnly = false): Promise<Volume> {
  return Volume.mount(await FileDevice.open(image), { readOnly });
}

/** The errno name a promise rejected with, or 'ok'. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return errnoOf(err);
  }
}

/** Allocator counts read from the engine's own view of the system inodes. */
export interface AllocCounts {
  freeClusters: number;
  inodeBlocksUsed: number;
  inodeAllocClusters: number;
  extentBlocksUsed: number;
  extentAllocClusters: number;
}

export async function allocCounts(vol: Volume): Promise<AllocCounts> {
  const get = async (name: string) => (await vol.iget(vol.systemFile(name))).di;
  const gb = await get(systemInodeName(GLOBAL_BITMAP_SYSTEM_INODE));
  const ia = await get(systemInodeName(INODE_ALLOC_SYSTEM_INODE, vol.slot));
  const ea = await get(systemInodeName(EXTENT_ALLOC_SYSTEM_INODE, vol.slot));
  return {
    freeClusters: gb.i_total - gb.i_used,
    inodeBlocksUsed: ia.i_used,
    inodeAllocClusters: ia.i_clusters,
    extentBlocksUsed: ea.i_used,
    extentAllocClusters: ea.i_clusters,
  };
}

/** What a directory keeps when emptied (directories never shrink, the kernel's neither). */
export interface DirHoldings {
  /** Its data clusters and its index's leaf clusters. */
  clusters: number;
  /** Its index's root and the extent blocks of the index's tree (from extent_alloc). */
  metaBlocks: number;
}

export async function dirHoldings(vol: Volume, ino: number): Promise<DirHoldings> {
  const di = (await vol.iget(ino)).di;
  const out = { clusters: di.i_clusters, metaBlocks: 0 };
  if (!(di.i_dyn_features & OCFS2_INDEXED_DIR_FL)) return out;
  const root = decodeDxRoot(await vol.cache.read(di.i_dx_root));
  out.clusters += root.dr_clusters;
  out.metaBlocks += 1;
  const countBlocks = async (list: ExtentList): Promise<void> => {
    if (list.l_tree_depth === 0) return;
    for (const r of list.l_recs.slice(0, list.l_next_free_rec)) {
      out.metaBlocks++;
      await countBlocks((await readExtentBlock(vol, r.e_blkno)).h_list);
    }
  };
  if (root.dr_list) await countBlocks(root.dr_list);
  return out;
}

/** What a directory kept from `before` to `after`. */
export function heldSince(before: DirHoldings, after: DirHoldings): DirHoldings {
  return { clusters: after.clusters - before.clusters, metaBlocks: after.metaBlocks - before.metaBlocks };
}

/**
 * After a workload freed everything it made, the counts are back: the
 * suballocators keep the groups they grew (as the kernel's do), so the
 * clusters those groups took are the only ones allowed to stay used, with
 * what directories that grew and stay hold (`kept`: their clusters, and
 * their index's blocks when they became indexed).
 */
export function assertCountsBack(t: Test, start: AllocCounts, now: AllocCounts, what: string,
  kept: DirHoldings = { clusters: 0, metaBlocks: 0 }): void {
  const keptClusters = kept.clusters;
  t.equal(now.inodeBlocksUsed, start.inodeBlocksUsed, `${what}: every inode is freed (inode_alloc i_used)`);
  t.equal(now.extentBlocksUsed - kept.metaBlocks, start.extentBlocksUsed,
    `${what}: every extent block is freed (extent_alloc i_used${kept.metaBlocks ? `; ${kept.metaBlocks} kept by a directory's index` : ''})`);
  const grown = now.inodeAllocClusters - start.inodeAllocClusters + now.extentAllocClusters - start.extentAllocClusters;
  const keptText = keptClusters ? `, ${keptClusters} kept by directories that grew and stay` : '';
  t.equal(now.freeClusters + grown + keptClusters, start.freeClusters,
    `${what}: every data cluster is back (${now.freeClusters} free now, ${start.freeClusters} before, ${grown} went to new suballocator groups${keptText})`);
}

/** `Total Bits` / `Free Bits`-style counts of a system file as debugfs.ocfs2 reports them (`stat //NAME`). */
export async function debugfsBitmap(image: string, systemName: string): Promise<{ total: number; used: number; free: number }> {
  const text = await debugfs(image, `stat //${systemName}`);
  const m = /Bitmap Total: (\d+)\s+Used: (\d+)\s+Free: (\d+)/.exec(text);
  if (!m) throw new Error(`debugfs stat //${systemName}: no bitmap counts in:\n${text}`);
  return { total: Number(m[1]), used: Number(m[2]), free: Number(m[3]) };
}
