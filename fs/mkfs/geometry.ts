/**
 * Volume geometry: block and cluster size, the global bitmap's cluster
 * groups, suballocator group sizes, journal and extent-allocator sizes.
 * Pure arithmetic from the device size and the options, with the defaults
 * mkfs.ocfs2 1.8.7 picks (mkfs.c fill_defaults, journal_size_*,
 * figure_extent_alloc_size, ocfs2_calc_cluster_groups).
 */
import {
  OCFS2_MAX_BLOCKSIZE, OCFS2_MAX_CLUSTERSIZE, OCFS2_MAX_SLOTS, OCFS2_MIN_BLOCKSIZE, OCFS2_MIN_CLUSTERSIZE,
  OCFS2_MIN_CLUSTER_TO_JOURNAL_SIZE_SHIFT, OCFS2_MIN_JOURNAL_SIZE, OCFS2_SUPER_BLOCK_BLKNO,
} from '../format/constants';
import { chainRecsPerInode } from '../format/dinode';
import { GROUP_DESC_BITMAP_OFFSET } from '../format/group';
import { MkfsUsageError } from './errors';

export type FsType = 'default' | 'datafiles' | 'mail' | 'vmstore';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** mkfs.h CLUSTERS_MAX: the global bitmap counts clusters in 32 bits. */
export const CLUSTERS_MAX = 0xffffffff - 1;
/** mkfs.h MAX_EXTALLOC_RESERVE_PERCENT */
const MAX_EXTALLOC_RESERVE_PERCENT = 5;
/** figure_journal_size: below this many blocks there is no room for a journal. */
const MIN_VOLUME_BLOCKS = 2048;

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export function log2(n: number): number {
  if (!isPowerOfTwo(n)) throw new RangeError(`${n} is not a power of two`);
  return Math.round(Math.log2(n));
}

export function checkBlockSize(bytes: number): void {
  if (!isPowerOfTwo(bytes) || bytes < OCFS2_MIN_BLOCKSIZE || bytes > OCFS2_MAX_BLOCKSIZE) {
    throw new MkfsUsageError(`bad block size ${bytes}: use 512, 1024, 2048 or 4096 bytes`);
  }
}

export function checkClusterSize(bytes: number): void {
  if (!isPowerOfTwo(bytes) || bytes < OCFS2_MIN_CLUSTERSIZE || bytes > OCFS2_MAX_CLUSTERSIZE) {
    throw new MkfsUsageError(`bad cluster size ${bytes}: use a power of two from 4K to 1M (4096 .. 1048576 bytes)`);
  }
}

/** mkfs.ocfs2's default block size: 512 up to 3 MiB, else 4K from 1 GiB, halving per halving of size, at least 1K. */
export function defaultBlockSize(volumeBytes: number): number {
  if (volumeBytes <= 3 * MiB) return OCFS2_MIN_BLOCKSIZE;
  let bs = OCFS2_MAX_BLOCKSIZE;
  let shift = 30;
  while (bs > 1024) {
    if (volumeBytes >= 2 ** shift) break;
    bs /= 2;
    shift--;
  }
  return bs;
}

/** The smallest cluster size from 4K that keeps the cluster count under CLUSTERS_MAX (-T datafiles/vmstore: by size). */
export function defaultClusterSize(volumeBytes: number, fsType: FsType): number {
  if (fsType === 'datafiles' || fsType === 'vmstore') {
    const gigs = Math.floor(volumeBytes / GiB);
    if (gigs < 2) throw new MkfsUsageError(`-T ${fsType} needs a device of at least 2 GiB`);
    if (gigs < 64) return 128 * 1024;
    if (gigs < 96) return 256 * 1024;
    if (gigs < 128) return 512 * 1024;
    return 1024 * 1024;
  }
  let cs = OCFS2_MIN_CLUSTERSIZE;
  while (cs < OCFS2_MAX_CLUSTERSIZE && Math.floor(volumeBytes / cs) > CLUSTERS_MAX) cs *= 2;
  return cs;
}

/** mkfs.ocfs2's default slot count for a cluster volume; a local volume has one. */
export function defaultSlots(mountType: 'local' | 'cluster', volumeBytes: number): number {
  if (mountType === 'local') return 1;
  const gigs = Math.floor(volumeBytes / GiB);
  if (gigs < 2) return 2;
  if (gigs < 10) return 4;
  if (gigs < 1024) return 8;
  return 16;
}

/** ocfs2_clusters_per_group: a suballocator group spans 1, 2 or 4 MiB by block size. */
export function suballocClustersPerGroup(blockSizeBytes: number, clusterSizeBytes: number): number {
  const mb = blockSizeBytes >= 2048 ? 4 : blockSizeBytes === 1024 ? 2 : 1;
  return Math.max(1, (mb * MiB) / clusterSizeBytes);
}

/** journal_size_default and the -T variants, in blocks. */
function defaultJournalBlocks(volumeBlocks: number, blockSizeBytes: number, fsType: FsType): number {
  switch (fsType) {
    case 'datafiles':
      return 8192;
    case 'mail':
      return volumeBlocks < 262144 ? 16384 : volumeBlocks < 524288 ? 32768 : 65536;
    case 'vmstore':
      return volumeBlocks < 262144 ? 8192 : volumeBlocks < 524288 ? 16384 : 32768;
    default:
      if (volumeBlocks < 32768) return OCFS2_MIN_JOURNAL_SIZE / blockSizeBytes;
      if (volumeBlocks < 262144) return 4096;
      return Math.min(65536, Math.max(16384, Math.floor(volumeBlocks / 160)));
  }
}

export interface GeometryInput {
  /** Bytes the volume spans (the device size, or less when a size was given). */
  volumeBytes: number;
  blockSizeBytes?: number;
  clusterSizeBytes?: number;
  slots?: number;
  mountType: 'local' | 'cluster';
  fsType: FsType;
  journalSizeBytes?: number;
  /** JBD2 64-bit block numbers (-J block64): lifts the 2^32-block limit. */
  journal64: boolean;
}

export interface Geometry {
  blockSizeBytes: number;
  blockSizeBits: number;
  clusterSizeBytes: number;
  clusterSizeBits: number;
  blocksPerCluster: number;
  /** clusterSizeBits - blockSizeBits */
  clusterToBlockShift: number;
  /** Whole clusters; the volume ends at the last whole cluster. */
  totalClusters: number;
  totalBlocks: number;
  volumeBytes: number;
  slots: number;

  /** Cluster holding the first group descriptor (the first cluster after the superblock). */
  firstClusterGroupCluster: number;
  /** s_first_cluster_group: block of group 0's descriptor. */
  firstClusterGroupBlkno: number;
  /** cl_cpg of the global bitmap: bits in a full cluster group (block size - 64) * 8. */
  bitmapCpg: number;
  /** Clusters in each full group (bitmapCpg, or all clusters when fewer). */
  groupClusters: number;
  clusterGroupCount: number;
  tailGroupClusters: number;
  /** Chain records that fit in an allocator inode. */
  chainRecsPerInode: number;

  /** Suballocator (inode_alloc, extent_alloc) group size in clusters, and bits (blocks) per group. */
  suballocCpg: number;
  suballocBitsPerGroup: number;

  journalClusters: number;
  journalBlocks: number;
  /** Clusters mkfs.ocfs2 grows each slot's extent allocator by (whole suballocator groups; may be 0). */
  extentAllocClustersPerSlot: number;
}

export function blocksToClustersCeil(g: Pick<Geometry, 'blocksPerCluster'>, blocks: number): number {
  return Math.ceil(blocks / g.blocksPerCluster);
}

export function clusterToBlkno(g: Pick<Geometry, 'blocksPerCluster'>, cluster: number): number {
  return cluster * g.blocksPerCluster;
}

export function computeGeometry(input: GeometryInput): Geometry {
  const { volumeBytes, mountType, fsType } = input;
  if (!Number.isSafeInteger(volumeBytes) || volumeBytes <= 0) throw new MkfsUsageError(`bad volume size ${volumeBytes}`);
  if (input.blockSizeBytes !== undefined) checkBlockSize(input.blockSizeBytes);
  if (input.clusterSizeBytes !== undefined) checkClusterSize(input.clusterSizeBytes);
  const blockSizeBytes = input.blockSizeBytes ?? defaultBlockSize(volumeBytes);
  const clusterSizeBytes = input.clusterSizeBytes ?? defaultClusterSize(volumeBytes, fsType);
  if (clusterSizeBytes < blockSizeBytes) {
    throw new MkfsUsageError(`cluster size ${clusterSizeBytes} is smaller than block size ${blockSizeBytes}: a cluster holds whole blocks`);
  }
  const blockSizeBits = log2(blockSizeBytes);
  const clusterSizeBits = log2(clusterSizeBytes);
  const blocksPerCluster = clusterSizeBytes / blockSizeBytes;

  const totalClusters = Math.floor(volumeBytes / clusterSizeBytes);
  const totalBlocks = totalClusters * blocksPerCluster;
  if (totalBlocks < MIN_VOLUME_BLOCKS || totalClusters < 2) {
    throw new MkfsUsageError(
      `volume of ${volumeBytes} bytes is too small: with ${blockSizeBytes}-byte blocks and ${clusterSizeBytes}-byte clusters ` +
        `it holds ${totalBlocks} blocks, and a journal needs a volume of at least ${MIN_VOLUME_BLOCKS} blocks`,
      'ENOSPC',
    );
  }
  if (totalClusters > CLUSTERS_MAX) {
    throw new MkfsUsageError(`${totalClusters} clusters do not fit the 32-bit global bitmap: use a larger cluster size (-C)`);
  }
  if (!input.journal64 && totalBlocks > 0xffffffff) {
    throw new MkfsUsageError(
      `${totalBlocks} blocks overflow the journal's 32-bit block numbers: use a larger block size (-b) or -J block64`,
    );
  }

  const slots = input.slots ?? defaultSlots(mountType, volumeBytes);
  if (!Number.isInteger(slots) || slots < 1 || slots > OCFS2_MAX_SLOTS) {
    throw new MkfsUsageError(`bad slot count ${slots}: use 1 to ${OCFS2_MAX_SLOTS} (-N)`);
  }

  // The first whole cluster after blocks 0..2 (OCFS1 headers, superblock).
  const clusterToBlockShift = clusterSizeBits - blockSizeBits;
  const firstClusterGroupCluster = Math.ceil((OCFS2_SUPER_BLOCK_BLKNO + 1) / blocksPerCluster);
  const firstClusterGroupBlkno = firstClusterGroupCluster * blocksPerCluster;

  const bitmapCpg = (blockSizeBytes - GROUP_DESC_BITMAP_OFFSET) * 8;
  const groupClusters = Math.min(bitmapCpg, totalClusters);
  const clusterGroupCount = Math.ceil(totalClusters / groupClusters);
  const tailGroupClusters = totalClusters % groupClusters || groupClusters;

  const suballocCpg = suballocClustersPerGroup(blockSizeBytes, clusterSizeBytes);
  const suballocBitsPerGroup = suballocCpg * blocksPerCluster;

  // mkfs.ocfs2's journal_min_size: a transaction may need more than a cluster of credits, the kernel
  // caps one at 1/4 of the journal, halved for reservations: at least 8 clusters plus one.
  const minJournalBytes = clusterSizeBytes * 2 ** OCFS2_MIN_CLUSTER_TO_JOURNAL_SIZE_SHIFT + clusterSizeBytes;
  // mkfs.ocfs2's guess at the overhead besides the journals.
  const fits = (jBlocks: number): boolean => jBlocks * slots + 1024 <= totalBlocks;
  let journalClusters: number;
  if (input.journalSizeBytes !== undefined) {
    if (!Number.isSafeInteger(input.journalSizeBytes) || input.journalSizeBytes < OCFS2_MIN_JOURNAL_SIZE) {
      throw new MkfsUsageError(`bad journal size ${input.journalSizeBytes}: at least ${OCFS2_MIN_JOURNAL_SIZE} bytes (4M)`);
    }
    if (!fits(Math.floor(input.journalSizeBytes / blockSizeBytes))) {
      throw new MkfsUsageError(
        `journal size ${input.journalSizeBytes} is too big: ${slots} journal(s) of it do not fit a volume of ${totalBlocks} blocks`,
        'ENOSPC',
      );
    }
    journalClusters = Math.ceil(input.journalSizeBytes / clusterSizeBytes);
    if (journalClusters * clusterSizeBytes < minJournalBytes) {
      throw new MkfsUsageError(
        `journal size ${input.journalSizeBytes} is too small for ${clusterSizeBytes}-byte clusters: at least ${minJournalBytes} bytes (9 clusters)`,
      );
    }
  } else {
    journalClusters = Math.ceil((defaultJournalBlocks(totalBlocks, blockSizeBytes, fsType) * blockSizeBytes) / clusterSizeBytes);
    if (journalClusters * clusterSizeBytes < minJournalBytes) {
      journalClusters = minJournalBytes / clusterSizeBytes;
      if (!fits(minJournalBytes / blockSizeBytes)) {
        throw new MkfsUsageError(
          `volume too small for ${slots} journal(s) of at least ${minJournalBytes} bytes with ${clusterSizeBytes}-byte clusters: ` +
            'use a larger device, fewer slots (-N) or a smaller cluster size (-C)',
          'ENOSPC',
        );
      }
    }
  }
  const journalBlocks = journalClusters * blocksPerCluster;

  const extentAllocClustersPerSlot = extentAllocClusters(fsType, suballocCpg, clusterSizeBytes, slots, totalClusters * clusterSizeBytes);

  return {
    blockSizeBytes, blockSizeBits, clusterSizeBytes, clusterSizeBits, blocksPerCluster, clusterToBlockShift,
    totalClusters, totalBlocks, volumeBytes: totalClusters * clusterSizeBytes, slots,
    firstClusterGroupCluster, firstClusterGroupBlkno, bitmapCpg, groupClusters, clusterGroupCount, tailGroupClusters,
    chainRecsPerInode: chainRecsPerInode(blockSizeBytes), suballocCpg, suballocBitsPerGroup,
    journalClusters, journalBlocks, extentAllocClustersPerSlot,
  };
}

/**
 * figure_extent_alloc_size: whole suballocator groups per slot so that all
 * slots together reserve about 0.1% of the volume (0.3% for datafiles and
 * vmstore), one group fewer when that would pass 5%.
 */
function extentAllocClusters(fsType: FsType, cpg: number, clusterSizeBytes: number, slots: number, volumeBytes: number): number {
  const targetPercent = fsType === 'datafiles' || fsType === 'vmstore' ? 0.3 : 0.1;
  const unit = cpg * clusterSizeBytes * slots;
  const percentOf = (groups: number): number => (groups * unit * 100) / volumeBytes;
  // The first group count reaching the target (mkfs.ocfs2 counts up from 1; this jumps there).
  let groups = Math.max(1, Math.ceil((targetPercent * volumeBytes) / (100 * unit)));
  while (groups > 1 && percentOf(groups - 1) >= targetPercent) groups--;
  while (percentOf(groups) < targetPercent) groups++;
  if (percentOf(groups) > MAX_EXTALLOC_RESERVE_PERCENT) groups--;
  return cpg * groups;
}

/** Cluster group i: the block of its descriptor and the first cluster its bits cover. */
export function clusterGroupDescBlkno(g: Geometry, group: number): number {
  return group === 0 ? g.firstClusterGroupBlkno : group * g.groupClusters * g.blocksPerCluster;
}

export function clusterGroupBits(g: Geometry, group: number): number {
  return group === g.clusterGroupCount - 1 ? g.tailGroupClusters : g.groupClusters;
}
