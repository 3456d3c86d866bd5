/**
 * Chain allocators of a new volume: the global bitmap (one bit per
 * cluster, a group per cl_cpg clusters with its descriptor in the group's
 * first cluster, the first group's at s_first_cluster_group) and the
 * suballocators (global_inode_alloc, inode_alloc:N, extent_alloc:N) whose
 * groups hand out blocks. Group descriptors and the chain lists of the
 * allocator inodes are built here.
 *
 * The global bitmap's descriptors are produced in batches: a large volume
 * has one per cluster group (133 thousand on a 16 TiB volume of 4K blocks
 * and clusters) and they are never all in memory at once.
 */
import { ChainList, ChainRec, emptyGroupDesc, encodeGroupDesc, GROUP_DESC_BITMAP_OFFSET, GroupDesc, setBit } from '../format/group';
import { ClusterExtent } from './clusterAllocator';
import { clusterGroupBits, clusterGroupDescBlkno, Geometry } from './geometry';
import { ChainAllocatorPlan, SuballocGroupPlan } from './plan';

export interface GroupDescInput {
  blkno: number;
  bits: number;
  bitmapBytes: number;
  chain: number;
  nextGroup: number;
  parentBlkno: number;
  fsGeneration: number;
}

function newGroupDesc(blockSizeBytes: number, d: GroupDescInput): GroupDesc {
  const gd = emptyGroupDesc(blockSizeBytes, d.bitmapBytes);
  gd.bg_bits = d.bits;
  gd.bg_chain = d.chain;
  gd.bg_generation = d.fsGeneration;
  gd.bg_next_group = d.nextGroup;
  gd.bg_parent_dinode = d.parentBlkno;
  gd.bg_blkno = d.blkno;
  return gd;
}

/** A suballocator group's descriptor block with bits [0, usedBits) set. */
export function suballocGroupBlock(blockSizeBytes: number, grp: SuballocGroupPlan, parentBlkno: number, fsGeneration: number): Buffer {
  const gd = newGroupDesc(blockSizeBytes, { ...grp, parentBlkno, fsGeneration });
  for (let b = 0; b < grp.usedBits; b++) setBit(gd.bg_bitmap, b);
  gd.bg_free_bits_count = grp.bits - grp.usedBits;
  const block = Buffer.alloc(blockSizeBytes);
  encodeGroupDesc(gd, block);
  return block;
}

/** The id2 chain list and id1 counts of a suballocator inode. */
export function suballocChainList(plan: ChainAllocatorPlan, chainRecs: number): { chain: ChainList; used: number; total: number; clusters: number } {
  const recs: ChainRec[] = [];
  let used = 0;
  let total = 0;
  let clusters = 0;
  for (const grp of plan.groups) {
    const rec = recs[grp.chain] ?? (recs[grp.chain] = { c_free: 0, c_total: 0, c_blkno: 0 });
    // A chain starts at its first group; later ones hang off bg_next_group.
    if (rec.c_blkno === 0) rec.c_blkno = grp.blkno;
    rec.c_total += grp.bits;
    rec.c_free += grp.bits - grp.usedBits;
    used += grp.usedBits;
    total += grp.bits;
    clusters += grp.extent.countClusters;
  }
  return {
    chain: {
      cl_cpg: plan.cpg, cl_bpc: plan.bpc, cl_count: chainRecs, cl_next_free_rec: recs.length,
      cl_reserved1: Buffer.alloc(8), cl_recs: recs,
    },
    used, total, clusters,
  };
}

/** Used bits of each cluster group, from the sorted used extents. */
export function clusterGroupUsage(g: Geometry, used: readonly ClusterExtent[]): Uint32Array {
  const counts = new Uint32Array(g.clusterGroupCount);
  for (const e of used) {
    let c = e.startCluster;
    const end = e.startCluster + e.countClusters;
    // An extent may cross groups (not in mkfs's own layout, but cheap to allow).
    while (c < end) {
      const group = Math.floor(c / g.groupClusters);
      const groupEnd = Math.min(end, (group + 1) * g.groupClusters);
      counts[group] += groupEnd - c;
      c = groupEnd;
    }
  }
  return counts;
}

export interface GlobalBitmapSummary {
  chain: ChainList;
  usedClusters: number;
}

/** The global bitmap inode's chain list: group i on chain i % cl_count, as mkfs.ocfs2 lays it out. */
export function globalBitmapChainList(g: Geometry, usage: Uint32Array): GlobalBitmapSummary {
  const chainCount = Math.min(g.clusterGroupCount, g.chainRecsPerInode);
  const recs: ChainRec[] = Array.from({ length: chainCount }, () => ({ c_free: 0, c_total: 0, c_blkno: 0 }));
  let usedClusters = 0;
  for (let i = 0; i < g.clusterGroupCount; i++) {
    const rec = recs[i % chainCount];
    if (i < chainCount) rec.c_blkno = clusterGroupDescBlkno(g, i);
    const bits = clusterGroupBits(g, i);
    rec.c_total += bits;
    rec.c_free += bits - usage[i];
    usedClusters += usage[i];
  }
  return {
    chain: {
      cl_cpg: g.bitmapCpg, cl_bpc: 1, cl_count: g.chainRecsPerInode, cl_next_free_rec: chainCount,
      cl_reserved1: Buffer.alloc(8), cl_recs: recs,
    },
    usedClusters,
  };
}

/**
 * The cluster group descriptors, `batchGroups` at a time, in group order.
 * `used` must be sorted by startCluster and not overlap.
 */
export function* clusterGroupBlocks(
  g: Geometry,
  used: readonly ClusterExtent[],
  bitmapInodeBlkno: number,
  fsGeneration: number,
  batchGroups: number,
): Generator<{ blkno: number; block: Buffer }[]> {
  const chainCount = Math.min(g.clusterGroupCount, g.chainRecsPerInode);
  const bitmapBytes = g.blockSizeBytes - GROUP_DESC_BITMAP_OFFSET;
  let k = 0; // first used extent that may still reach the current group
  let batch: { blkno: number; block: Buffer }[] = [];
  for (let i = 0; i < g.clusterGroupCount; i++) {
    const start = i * g.groupClusters;
    const bits = clusterGroupBits(g, i);
    const end = start + bits;
    const gd = newGroupDesc(g.blockSizeBytes, {
      blkno: clusterGroupDescBlkno(g, i), bits, bitmapBytes, chain: i % chainCount,
      nextGroup: i + chainCount < g.clusterGroupCount ? clusterGroupDescBlkno(g, i + chainCount) : 0,
      parentBlkno: bitmapInodeBlkno, fsGeneration,
    });
    while (k < used.length && used[k].startCluster + used[k].countClusters <= start) k++;
    let usedBits = 0;
    for (let j = k; j < used.length && used[j].startCluster < end; j++) {
      const from = Math.max(start, used[j].startCluster);
      const to = Math.min(end, used[j].startCluster + used[j].countClusters);
      for (let c = from; c < to; c++) setBit(gd.bg_bitmap, c - start);
      usedBits += Math.max(0, to - from);
    }
    gd.bg_free_bits_count = bits - usedBits;
    const block = Buffer.alloc(g.blockSizeBytes);
    encodeGroupDesc(gd, block);
    batch.push({ blkno: gd.bg_blkno, block });
    if (batch.length === batchGroups) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
