/**
 * Where mkfs puts things: an in-memory model of the global bitmap while the
 * volume is planned. Nothing is freed during mkfs, so allocation is a
 * cursor that moves forward from the first group descriptor, stepping over
 * "obstacles" (each cluster group's descriptor cluster and the backup
 * superblock clusters). Gaps skipped by a contiguous request are kept and
 * offered first to later small requests, so little is stranded.
 *
 * The model never holds one bit per cluster: a 16 TiB volume has 2^32 4K
 * clusters. Used space is the fixed reservations (computed) plus the list of
 * extents handed out, and each group descriptor's bitmap is filled from that
 * list when the volume is written.
 */
import { MkfsUsageError } from './errors';
import { Geometry } from './geometry';

/** A run of clusters. */
export interface ClusterExtent {
  startCluster: number;
  countClusters: number;
}

export class ClusterAllocator {
  private cursor: number;
  /** Skipped free runs, in cluster order, offered before the cursor. */
  private readonly holes: ClusterExtent[] = [];
  /** Everything handed out, in allocation order. */
  readonly allocated: ClusterExtent[] = [];
  private readonly backupClusters: readonly number[];

  constructor(readonly geometry: Geometry, backupSuperClusters: readonly number[]) {
    this.backupClusters = [...backupSuperClusters].sort((a, b) => a - b);
    this.cursor = geometry.firstClusterGroupCluster + 1;
  }

  /** Clusters reserved before any allocation: the leading clusters, group descriptors, backup supers. */
  isReserved(cluster: number): boolean {
    const g = this.geometry;
    if (cluster <= g.firstClusterGroupCluster) return true;
    if (cluster % g.groupClusters === 0) return true;
    return this.backupClusters.includes(cluster);
  }

  /** The first reserved cluster at or after `cluster` (totalClusters when none). */
  private nextReserved(cluster: number): number {
    const g = this.geometry;
    let next = Math.ceil(cluster / g.groupClusters) * g.groupClusters;
    for (const b of this.backupClusters) {
      if (b >= cluster) {
        next = Math.min(next, b);
        break;
      }
    }
    return Math.min(next, g.totalClusters);
  }

  private take(start: number, count: number): ClusterExtent {
    const e = { startCluster: start, countClusters: count };
    this.allocated.push(e);
    return e;
  }

  private noSpace(what: string, count: number): MkfsUsageError {
    const g = this.geometry;
    return new MkfsUsageError(
      `volume too small: no room for ${what} (${count} cluster(s) of ${g.clusterSizeBytes} bytes) in ${g.totalClusters} clusters; ` +
        'use a larger device, fewer slots (-N) or a smaller journal (-J size=)',
      'ENOSPC',
    );
  }

  /** `count` adjacent clusters (allocator groups, directory blocks, small system files). */
  allocContiguous(count: number, what: string): ClusterExtent {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`${what}: bad cluster count ${count}`);
    for (let k = 0; k < this.holes.length; k++) {
      const h = this.holes[k];
      if (h.countClusters >= count) {
        const e = this.take(h.startCluster, count);
        h.startCluster += count;
        h.countClusters -= count;
        if (h.countClusters === 0) this.holes.splice(k, 1);
        return e;
      }
    }
    const total = this.geometry.totalClusters;
    let p = this.cursor;
    // Each round passes one reserved cluster; there are at most groups + backups of them.
    while (p < total) {
      if (this.isReserved(p)) {
        p++;
        continue;
      }
      const stop = this.nextReserved(p);
      if (stop - p >= count) {
        this.cursor = p + count;
        return this.take(p, count);
      }
      this.holes.push({ startCluster: p, countClusters: stop - p });
      p = stop;
    }
    this.cursor = total;
    throw this.noSpace(what, count);
  }

  /**
   * `count` clusters in as few runs as the reserved clusters allow, from the
   * cursor on (journals: they may cross cluster groups, whose descriptors
   * split them). Fails when more than `maxExtents` runs would be needed.
   */
  allocExtents(count: number, maxExtents: number, what: string): ClusterExtent[] {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`${what}: bad cluster count ${count}`);
    const total = this.geometry.totalClusters;
    const out: ClusterExtent[] = [];
    let need = count;
    let p = this.cursor;
    while (need > 0) {
      if (p >= total) throw this.noSpace(what, count);
      if (this.isReserved(p)) {
        p++;
        continue;
      }
      const run = Math.min(need, this.nextReserved(p) - p);
      if (out.length === maxExtents) {
        throw new MkfsUsageError(
          `${what} would need more than ${maxExtents} extents (an inode holds ${maxExtents}): ` +
            'use a smaller journal (-J size=), a larger block size (-b) or a larger cluster size (-C)',
        );
      }
      out.push(this.take(p, run));
      need -= run;
      p += run;
    }
    this.cursor = p;
    return out;
  }

  /**
   * Every used cluster range, sorted: the leading clusters, the group
   * descriptor clusters and backup supers, and all allocations. The group
   * bitmaps are filled from this.
   */
  usedExtents(): ClusterExtent[] {
    const g = this.geometry;
    const out: ClusterExtent[] = [{ startCluster: 0, countClusters: g.firstClusterGroupCluster + 1 }];
    for (let i = 1; i < g.clusterGroupCount; i++) out.push({ startCluster: i * g.groupClusters, countClusters: 1 });
    for (const b of this.backupClusters) out.push({ startCluster: b, countClusters: 1 });
    out.push(...this.allocated.filter((e) => e.countClusters > 0));
    out.sort((a, b) => a.startCluster - b.startCluster);
    for (let k = 1; k < out.length; k++) {
      const prev = out[k - 1];
      if (out[k].startCluster < prev.startCluster + prev.countClusters) {
        throw new Error(`mkfs internal: clusters ${out[k].startCluster} allocated twice`);
      }
    }
    return out;
  }
}
