/**
 * The inodes mkfs writes: system files (allocators, journal, local alloc,
 * truncate log, heartbeat, slot map, bad_blocks), and directories, each one
 * block built from a decoded Dinode. Fields follow what mkfs.ocfs2 sets:
 * generation = the volume's fs generation, uid/gid 0, all three times the
 * format time, i_suballoc_slot/bit from where the inode was allocated.
 */
import {
  OCFS2_BITMAP_FL, OCFS2_CHAIN_FL, OCFS2_DEALLOC_FL, OCFS2_HEARTBEAT_FL, OCFS2_INDEXED_DIR_FL, OCFS2_INLINE_DATA_FL,
  OCFS2_JOURNAL_FL, OCFS2_LOCAL_ALLOC_FL, OCFS2_SYSTEM_FL, OCFS2_VALID_FL, S_IFDIR, S_IFREG,
} from '../format/constants';
import { Dinode, emptyDinode, encodeDinode, extentRecsPerInode, localAllocSize, maxInlineDataWithXattr, truncateRecsPerInode } from '../format/dinode';
import { emptyExtentList, ExtentList } from '../format/extent';
import { ChainList } from '../format/group';
import { ClusterExtent } from './clusterAllocator';
import { encodeInlineDir } from './directories';
import { Geometry } from './geometry';
import { DirPlan, SuballocAddr } from './plan';

export interface InodeContext {
  geometry: Geometry;
  fsGeneration: number;
  nowSeconds: number;
  /** Record i_suballoc_loc (discontig-bg volumes, as the kernel and libocfs2 do for slot allocators). */
  suballocLoc: boolean;
}

function baseDinode(ctx: InodeContext, addr: SuballocAddr, mode: number, flags: number, links: number): Dinode {
  const d = emptyDinode(ctx.geometry.blockSizeBytes, addr.blkno);
  d.i_generation = ctx.fsGeneration;
  d.i_fs_generation = ctx.fsGeneration;
  d.i_suballoc_slot = addr.slot;
  d.i_suballoc_bit = addr.bit;
  // Inodes of global_inode_alloc carry no location (mkfs.ocfs2 writes 0 there).
  d.i_suballoc_loc = ctx.suballocLoc && addr.slot !== 0xffff ? addr.groupBlkno : 0;
  d.i_mode = mode;
  d.i_flags = flags;
  d.i_links_count = links;
  d.i_atime = d.i_ctime = d.i_mtime = ctx.nowSeconds;
  return d;
}

function encode(ctx: InodeContext, d: Dinode): Buffer {
  const block = Buffer.alloc(ctx.geometry.blockSizeBytes);
  encodeDinode(d, block);
  return block;
}

/** An extent list over `extents`, in file order from cpos 0. */
export function extentListOf(g: Geometry, extents: readonly ClusterExtent[]): ExtentList {
  const list = emptyExtentList(extentRecsPerInode(g.blockSizeBytes));
  let cpos = 0;
  extents.forEach((e, k) => {
    const rec = list.l_recs[k];
    rec.e_cpos = cpos;
    rec.e_leaf_clusters = e.countClusters;
    rec.e_int_clusters = e.countClusters;
    rec.e_blkno = e.startCluster * g.blocksPerCluster;
    cpos += e.countClusters;
  });
  list.l_next_free_rec = extents.length;
  return list;
}


function clustersOf(extents: readonly ClusterExtent[]): number {
  return extents.reduce((n, e) => n + e.countClusters, 0);
}

/** A regular system file with data in `extents` (heartbeat, slot_map, journal, bad_blocks). */
export function systemFileBlock(
  ctx: InodeContext,
  addr: SuballocAddr,
  extents: readonly ClusterExtent[],
  sizeBytes: number,
  extraFlags = 0,
): Buffer {
  const d = baseDinode(ctx, addr, S_IFREG | 0o644, OCFS2_VALID_FL | OCFS2_SYSTEM_FL | extraFlags, 1);
  d.list = extentListOf(ctx.geometry, extents);
  d.i_clusters = clustersOf(extents);
  d.i_size = sizeBytes;
  return encode(ctx, d);
}

export function heartbeatBlock(ctx: InodeContext, addr: SuballocAddr, extents: readonly ClusterExtent[], sizeBytes: number): Buffer {
  return systemFileBlock(ctx, addr, extents, sizeBytes, OCFS2_HEARTBEAT_FL);
}

/** A journal inode: clean (ij_flags 0), i_size covering every cluster. */
export function journalInodeBlock(ctx: InodeContext, addr: SuballocAddr, extents: readonly ClusterExtent[]): Buffer {
  return systemFileBlock(ctx, addr, extents, clustersOf(extents) * ctx.geometry.clusterSizeBytes, OCFS2_JOURNAL_FL);
}

/** A chain allocator inode (global_bitmap, global_inode_alloc, inode_alloc:N, extent_alloc:N). */
export function chainAllocatorBlock(
  ctx: InodeContext,
  addr: SuballocAddr,
  chain: ChainList,
  counts: { used: number; total: number; clusters: number; sizeBytes: number },
): Buffer {
  const d = baseDinode(ctx, addr, S_IFREG | 0o644, OCFS2_VALID_FL | OCFS2_SYSTEM_FL | OCFS2_BITMAP_FL | OCFS2_CHAIN_FL, 1);
  delete d.list;
  d.chain = chain;
  d.i_used = counts.used;
  d.i_total = counts.total;
  d.i_clusters = counts.clusters;
  d.i_size = counts.sizeBytes;
  return encode(ctx, d);
}

/** An empty local alloc: no window of the global bitmap yet (la_bm_off 0, i_total 0). */
export function localAllocBlock(ctx: InodeContext, addr: SuballocAddr): Buffer {
  const d = baseDinode(ctx, addr, S_IFREG | 0o644, OCFS2_VALID_FL | OCFS2_SYSTEM_FL | OCFS2_BITMAP_FL | OCFS2_LOCAL_ALLOC_FL, 1);
  delete d.list;
  const size = localAllocSize(ctx.geometry.blockSizeBytes);
  d.lab = { la_bm_off: 0, la_size: size, la_reserved1: 0, la_reserved2: Buffer.alloc(8), la_bitmap: Buffer.alloc(size) };
  return encode(ctx, d);
}

/** An empty truncate log. */
export function truncateLogBlock(ctx: InodeContext, addr: SuballocAddr): Buffer {
  const d = baseDinode(ctx, addr, S_IFREG | 0o644, OCFS2_VALID_FL | OCFS2_SYSTEM_FL | OCFS2_DEALLOC_FL, 1);
  delete d.list;
  d.dealloc = { tl_count: truncateRecsPerInode(ctx.geometry.blockSizeBytes), tl_used: 0, tl_reserved1: 0, tl_recs: [] };
  return encode(ctx, d);
}

/** A directory inode: inline data, or one extent over its blocks (and i_dx_root when indexed). */
export function directoryInodeBlock(ctx: InodeContext, dir: DirPlan): Buffer {
  const g = ctx.geometry;
  const flags = OCFS2_VALID_FL | (dir.system ? OCFS2_SYSTEM_FL : 0);
  const d = baseDinode(ctx, dir.inode, S_IFDIR | 0o755, flags, dir.links);
  if (dir.inline) {
    delete d.list;
    const idCount = maxInlineDataWithXattr(g.blockSizeBytes);
    d.i_dyn_features |= OCFS2_INLINE_DATA_FL;
    d.data = { id_count: idCount, id_reserved0: 0, id_reserved1: 0, id_data: encodeInlineDir(dir.entries, idCount) };
    d.i_size = idCount;
  } else {
    const extent = dir.extent as ClusterExtent;
    d.list = extentListOf(g, [extent]);
    d.i_clusters = extent.countClusters;
    d.i_size = dir.blknos.length * g.blockSizeBytes;
    if (dir.dx) {
      d.i_dyn_features |= OCFS2_INDEXED_DIR_FL;
      d.i_dx_root = dir.dx.blkno;
    }
  }
  return encode(ctx, d);
}
