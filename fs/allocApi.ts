/**
 * What the allocators offer the rest of the engine (implemented in
 * fs/suballoc.ts). All calls run inside a metadata transaction, under the
 * volume's metadata lock, and dirty the group descriptors and allocator
 * inodes they touch through that transaction.
 */
import type { Transaction } from './transaction';

/** A run of physical clusters. */
export interface ClusterRun {
  /** First cluster number on the volume. */
  cluster: number;
  count: number;
}

/** A block taken from a suballocator (inode_alloc:NNNN or extent_alloc:NNNN). */
export interface MetaBlockClaim {
  blkno: number;
  /** i_suballoc_slot / h_suballoc_slot */
  slot: number;
  /** i_suballoc_bit / h_suballoc_bit */
  bit: number;
  /** The group descriptor that owns the bit (i_suballoc_loc / h_suballoc_loc on discontig-bg volumes). */
  groupBlkno: number;
}

export interface Allocator {
  /**
   * Claims between minCount and maxCount contiguous free clusters from the
   * global bitmap, preferring ones at or after goalCluster. ENOSPC when no run
   * of minCount exists.
   */
  claimClusters(tx: Transaction, minCount: number, maxCount: number, goalCluster?: number): Promise<ClusterRun>;
  /** Returns clusters to the global bitmap. */
  freeClusters(tx: Transaction, run: ClusterRun): Promise<void>;
  /** Claims one inode block (kind 'inode') or extent/dx block (kind 'extent') from this slot's suballocator. */
  claimMetaBlock(tx: Transaction, kind: 'inode' | 'extent'): Promise<MetaBlockClaim>;
  /** Frees a suballocated block back to the allocator that owns it (by slot and bit, as recorded in the block). */
  freeMetaBlock(tx: Transaction, kind: 'inode' | 'extent', owner: { blkno: number; slot: number; bit: number; loc: number }): Promise<void>;
  /** Free clusters in the global bitmap (for statfs). */
  freeClusterCount(): Promise<number>;
}
