/**
 * Backup superblocks: copies of block 2 at 1G, 4G, 16G, 64G, 256G and 1T
 * (ocfs2_backup_super_blkno), each in a cluster of its own that the global
 * bitmap marks used. A backup exists only where the volume has blocks past
 * it (ocfs2_get_backup_super_offsets: fs_blocks > blkno).
 */
import { backupSuperBlkno, OCFS2_MAX_BACKUP_SUPERBLOCKS } from '../format/constants';
import { Geometry } from './geometry';

/** Block numbers of the backups this volume holds (empty below 1 GiB + 1 block). */
export function backupSuperBlknos(g: Pick<Geometry, 'blockSizeBytes' | 'totalBlocks'>): number[] {
  const out: number[] = [];
  for (let i = 0; i < OCFS2_MAX_BACKUP_SUPERBLOCKS; i++) {
    const blkno = backupSuperBlkno(g.blockSizeBytes, i);
    if (blkno === 0 || blkno >= g.totalBlocks) break;
    out.push(blkno);
  }
  return out;
}

export function backupSuperClusters(g: Pick<Geometry, 'blockSizeBytes' | 'totalBlocks' | 'blocksPerCluster'>): number[] {
  return backupSuperBlknos(g).map((b) => Math.floor(b / g.blocksPerCluster));
}
