/**
 * Recovery of a slot whose node died (or of this mount's own slot after a
 * crash), once its journal has been replayed: what a surviving OCFS2 node
 * does for a dead one (kernel ocfs2_recover_node, then
 * ocfs2_complete_recovery).
 *
 * Four parts, each in its own transactions under the volume's metadata lock:
 *
 *   1. the local alloc window: its clusters are all set in the global bitmap;
 *      the ones the window never handed out (clear bits of la_bitmap within
 *      i_total) go back, and the window is emptied (i_total = i_used = 0,
 *      la_bm_off = 0, bitmap zeroed). One transaction, so the window is never
 *      empty while its unused clusters are still lost, nor the reverse.
 *   2. the truncate log: every record (t_start / t_clusters, in clusters) is a
 *      run a truncate cut out of a file and did not yet give back; each is
 *      freed in the global bitmap and tl_used drops, from the last record
 *      down, a bounded batch per transaction (as the kernel's flush does).
 *      The two sets are disjoint: a cluster the window handed out keeps its
 *      la_bitmap bit when a truncate frees it through the log.
 *   3. the orphan directory: Orphans.recover(slot) frees or finishes what it
 *      holds.
 *   4. the slot map entry: cleared last, so recovery cut short leaves the slot
 *      still marked and the next mount does it again (each part is
 *      idempotent: an empty window, an empty log, an empty directory are
 *      left alone).
 *
 * With the journal open each transaction is atomic. Without it, commit
 * writes the inode before the group descriptors whose bits it frees: a crash
 * in between leaks clusters (fsck.ocfs2 gives them back), it never frees a
 * cluster twice.
 */
import createDebug from 'debug';
import type { Volume } from '../volume';
import type { Inode } from '../inode';
import type { Transaction } from '../transaction';
import { withTransaction, editInode } from '../transaction';
import { readDirSlots } from '../dir';
import { readSlotMap, writeSlot } from '../slotMap';
import { testBit } from '../format/group';
import {
  LOCAL_ALLOC_SYSTEM_INODE, ORPHAN_DIR_SYSTEM_INODE, SLOT_MAP_SYSTEM_INODE, TRUNCATE_LOG_SYSTEM_INODE,
  systemInodeName,
} from '../format/constants';
import { FsError } from '../errors';

const trace = createDebug('o2fuse:recovery');

/** Truncate log records freed per transaction: each may touch its own group descriptor. */
export const TRUNCATE_RECS_PER_TX = 32;

export interface SlotRecoveryReport {
  slot: number;
  /** Clusters of the local alloc window that were never handed out, now free in the global bitmap. */
  localAllocFreedClusters: number;
  /** Truncate log records replayed. */
  truncateLogRecords: number;
  truncateLogFreedClusters: number;
  /** Orphan directory entries resolved (inodes freed, append-dio orphans trimmed, stale entries dropped). */
  orphansResolved: number;
  /** Whether the slot map said the slot was in use (it no longer does). */
  slotMapCleared: boolean;
}

function checkSlot(vol: Volume, slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= vol.sb.s_max_slots) {
    throw new RangeError(`slot ${slot} is not a slot of this volume (0..${vol.sb.s_max_slots - 1})`);
  }
}

async function systemInode(vol: Volume, index: number, slot?: number): Promise<Inode> {
  return vol.iget(vol.systemFile(systemInodeName(index, slot)));
}

/** Runs of clear bits among the first `bits` of `bitmap`: [start, count] pairs. */
export function clearRuns(bitmap: Buffer, bits: number): [number, number][] {
  const runs: [number, number][] = [];
  let i = 0;
  while (i < bits) {
    if (testBit(bitmap, i)) {
      i++;
      continue;
    }
    const start = i;
    while (i < bits && !testBit(bitmap, i)) i++;
    runs.push([start, i - start]);
  }
  return runs;
}

function windowInUse(la: Inode): boolean {
  return la.di.i_total !== 0 || la.di.i_used !== 0;
}

/** Part 1: the local alloc window. Returns the clusters given back. */
async function recoverLocalAlloc(vol: Volume, slot: number): Promise<number> {
  const la = await systemInode(vol, LOCAL_ALLOC_SYSTEM_INODE, slot);
  if (!windowInUse(la)) return 0;
  return withTransaction(vol, `recovery: local alloc of slot ${slot}`, async (tx) => {
    const di = await editInode(tx, la);
    const lab = di.lab;
    if (!lab) throw new FsError('EIO', `local_alloc:${slot} (inode ${la.ino}) has no local alloc bitmap`);
    const windowBits = di.i_total;
    const start = lab.la_bm_off;
    if (windowBits > lab.la_size * 8) {
      throw new FsError('EIO', `local_alloc:${slot}: window of ${windowBits} bits exceeds its ${lab.la_size}-byte bitmap`);
    }
    if (windowBits > 0 && (start < 1 || start + windowBits > vol.geo.totalClusters)) {
      throw new FsError('EIO', `local_alloc:${slot}: window at cluster ${start} of ${windowBits} bits lies outside ` +
        `the volume's ${vol.geo.totalClusters} clusters`);
    }
    let freed = 0;
    const runs = clearRuns(lab.la_bitmap, windowBits);
    for (const [bit, count] of runs) {
      await vol.alloc.freeClusters(tx, { cluster: start + bit, count });
      freed += count;
    }
    const used = windowBits - freed;
    if (used !== di.i_used) {
      // The bitmap is what the window handed out; i_used is only its count (the kernel trusts the bitmap too).
      trace('slot %d: local alloc i_used %d, but %d bits are set; going by the bitmap', slot, di.i_used, used);
    }
    trace('slot %d: local alloc window clusters %d+%d: %d in use stay, %d freed in %d run(s)', slot, start, windowBits,
      used, freed, runs.length);
    di.i_total = 0;
    di.i_used = 0;
    lab.la_bm_off = 0;
    lab.la_bitmap.fill(0);
    return freed;
  });
}

/** Part 2: the truncate log. Returns [records, clusters]. */
async function recoverTruncateLog(vol: Volume, slot: number): Promise<[number, number]> {
  const tl = await systemInode(vol, TRUNCATE_LOG_SYSTEM_INODE, slot);
  if (!tl.di.dealloc) throw new FsError('EIO', `truncate_log:${slot} (inode ${tl.ino}) has no truncate log`);
  let records = 0;
  let clusters = 0;
  while ((tl.di.dealloc?.tl_used ?? 0) > 0) {
    const [n, c] = await withTransaction(vol, `recovery: truncate log of slot ${slot}`, (tx) => replayTail(vol, tx, tl, slot));
    records += n;
    clusters += c;
  }
  return [records, clusters];
}

/** Frees up to TRUNCATE_RECS_PER_TX records from the end of the log, in `tx`. */
async function replayTail(vol: Volume, tx: Transaction, tl: Inode, slot: number): Promise<[number, number]> {
  const di = await editInode(tx, tl);
  const log = di.dealloc!;
  let records = 0;
  let clusters = 0;
  while (log.tl_used > 0 && records < TRUNCATE_RECS_PER_TX) {
    const i = log.tl_used - 1;
    const { t_start: start, t_clusters: count } = log.tl_recs[i];
    // Cluster 0 holds the superblock and is never freed: a record starting there is an empty one.
    if (start !== 0 && count !== 0) {
      if (start + count > vol.geo.totalClusters) {
        throw new FsError('EIO', `truncate_log:${slot} record ${i}: clusters ${start}+${count} lie outside the ` +
          `volume's ${vol.geo.totalClusters} clusters`);
      }
      await vol.alloc.freeClusters(tx, { cluster: start, count });
      clusters += count;
      trace('slot %d: truncate log record %d: clusters %d+%d freed', slot, i, start, count);
    }
    log.tl_used = i;
    records++;
  }
  return [records, clusters];
}

async function orphanCount(vol: Volume, slot: number): Promise<number> {
  const dir = await systemInode(vol, ORPHAN_DIR_SYSTEM_INODE, slot);
  const entries = await readDirSlots(vol, dir);
  return entries.filter((e) => {
    const name = e.name.toString('latin1');
    return name !== '.' && name !== '..';
  }).length;
}

/** The node number in `slot`'s slot map entry, or null when free (readSlotMap reads through the block cache). */
export async function slotMapEntry(vol: Volume, slot: number): Promise<number | null> {
  checkSlot(vol, slot);
  return (await readSlotMap(vol, await systemInode(vol, SLOT_MAP_SYSTEM_INODE)))[slot];
}

/** Part 4: the slot map entry. Returns whether it was set. */
async function clearSlotMapEntry(vol: Volume, slot: number): Promise<boolean> {
  const node = await slotMapEntry(vol, slot);
  if (node === null) return false;
  const slotMap = await systemInode(vol, SLOT_MAP_SYSTEM_INODE);
  await withTransaction(vol, `recovery: slot map entry of slot ${slot} (node ${node}) cleared`, (tx) =>
    writeSlot(vol, tx, slotMap, slot, null));
  trace('slot %d: slot map entry (node %d) cleared', slot, node);
  return true;
}

/**
 * Completes recovery of `slot` on a mounted read-write Volume whose journals
 * have been replayed: returns the unused bits of the slot's local alloc window
 * to the global bitmap and empties the window; frees every cluster run
 * recorded in the slot's truncate log and empties it; resolves the slot's
 * orphan directory; clears the slot's entry in the slot map. Every change goes
 * through transactions (vol.begin / withTransaction) under vol.metaLock.
 *
 * For this mount's own slot, call it before the mount takes the slot and
 * before anything is opened: it clears the slot map entry, and orphans of
 * open files must not be freed.
 */
export async function completeSlotRecovery(vol: Volume, slot: number): Promise<SlotRecoveryReport> {
  checkSlot(vol, slot);
  if (vol.readOnly) throw new FsError('EROFS', `slot ${slot} cannot be recovered on a read-only mount`);
  const report: SlotRecoveryReport = {
    slot, localAllocFreedClusters: 0, truncateLogRecords: 0, truncateLogFreedClusters: 0, orphansResolved: 0,
    slotMapCleared: false,
  };
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await vol.metaLock.run(fn);
    } catch (err) {
      if (err instanceof FsError) throw new FsError(err.errno, `recovering slot ${slot}: ${what}: ${err.message}`);
      throw err;
    }
  };
  report.localAllocFreedClusters = await step('local alloc', () => recoverLocalAlloc(vol, slot));
  [report.truncateLogRecords, report.truncateLogFreedClusters] = await step('truncate log', () => recoverTruncateLog(vol, slot));
  report.orphansResolved = await step('orphans', () => vol.orphans.recover(slot));
  report.slotMapCleared = await step('slot map', () => clearSlotMapEntry(vol, slot));
  // Durable before the caller goes on (with the journal: committed to the log). Cut short before this, the
  // slot still reads as needing recovery, and every part is safe to redo.
  await vol.syncMetadata();
  trace('slot %d recovered: %d local alloc cluster(s) back, %d truncate log record(s) (%d clusters) freed, %d orphan(s), ' +
    'slot map entry %s', slot, report.localAllocFreedClusters, report.truncateLogRecords, report.truncateLogFreedClusters,
  report.orphansResolved, report.slotMapCleared ? 'cleared' : 'was free');
  return report;
}

/**
 * Whether `slot` has anything for completeSlotRecovery to do (window in use,
 * truncate log records, orphan entries, slot map entry set). Ask before the
 * mount takes its own slot: after that, its own entry is set.
 */
export async function slotNeedsRecovery(vol: Volume, slot: number): Promise<boolean> {
  checkSlot(vol, slot);
  const why = await recoveryReasons(vol, slot);
  if (why.length) trace('slot %d needs recovery: %s', slot, why.join(', '));
  return why.length > 0;
}

/** What completeSlotRecovery would find to do in `slot`, in words (empty: nothing). */
export async function recoveryReasons(vol: Volume, slot: number): Promise<string[]> {
  checkSlot(vol, slot);
  const why: string[] = [];
  const la = await systemInode(vol, LOCAL_ALLOC_SYSTEM_INODE, slot);
  if (windowInUse(la)) why.push(`local alloc window in use (${la.di.i_used}/${la.di.i_total} bits at cluster ${la.di.lab?.la_bm_off})`);
  const tl = await systemInode(vol, TRUNCATE_LOG_SYSTEM_INODE, slot);
  const tlUsed = tl.di.dealloc?.tl_used ?? 0;
  if (tlUsed > 0) why.push(`${tlUsed} truncate log record(s)`);
  const orphans = await orphanCount(vol, slot);
  if (orphans > 0) why.push(`${orphans} orphan entr${orphans === 1 ? 'y' : 'ies'}`);
  const node = await slotMapEntry(vol, slot);
  if (node !== null) why.push(`slot map entry set (node ${node})`);
  return why;
}
