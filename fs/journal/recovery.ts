/**
 * Mount-time journal recovery: what a node does before it trusts any
 * metadata. Every slot whose journal inode says dirty (a node died with it
 * mounted, or this engine was killed) is replayed (fs/journal/replay.ts),
 * then its flag is cleared and its recovery generation counted, as the
 * kernel's ocfs2_replay_journal does. The caller drops every cached block
 * afterwards: replay rewrote them underneath.
 *
 * Replay only makes the metadata consistent; what the dead node held in
 * memory-backed structures (its local alloc window, truncate log, orphans,
 * its slot map entry) is completed later, through transactions, once this
 * mount's own journal is open (fs/recovery/slotRecovery.ts).
 */
import createDebug from 'debug';
import type { VolumeContext } from '../context';
import type { Dinode } from '../format/dinode';
import { JournalSpace } from './space';
import { replayJournal, type ReplayReport } from './replay';
import { journalIsDirty, setJournalDirty } from './journalInode';

const trace = createDebug('o2fuse:journal');

export interface JournalSlot {
  slot: number;
  ino: number;
}

export async function dirtyJournals(ctx: VolumeContext, journals: readonly JournalSlot[]): Promise<JournalSlot[]> {
  const out: JournalSlot[] = [];
  for (const j of journals) if (await journalIsDirty(ctx, j.ino)) out.push(j);
  return out;
}

/** Replays the dirty journals among `journals`; returns one report per journal replayed. */
export async function replayDirtyJournals(ctx: VolumeContext, journals: readonly JournalSlot[],
  readDinode: (ino: number) => Promise<Dinode>): Promise<ReplayReport[]> {
  const reports: ReplayReport[] = [];
  const volumeBlocks = Math.floor(ctx.device.size / ctx.geo.blockSize);
  for (const j of await dirtyJournals(ctx, journals)) {
    const space = await JournalSpace.open(ctx, j.slot, j.ino, await readDinode(j.ino));
    const report = await replayJournal(ctx.device, space, volumeBlocks);
    await setJournalDirty(ctx, j.ino, false, true);
    trace('slot %d: journal replayed: %d transactions, %d blocks written, %d revoked, next sequence %d', j.slot,
      report.transactions, report.blocksWritten, report.blocksRevoked, report.nextSequence);
    reports.push(report);
  }
  return reports;
}
