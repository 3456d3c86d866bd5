/**
 * The journal inode's own flags: OCFS2_JOURNAL_DIRTY_FL says "this slot's
 * journal may hold transactions not yet home" (set while a node has the slot
 * mounted, cleared at clean unmount and after replay), and
 * ij_recovery_generation counts replays so other nodes can tell a recovery
 * happened. The kernel writes this block directly, outside any transaction,
 * because it is the journal's own state; so does o2fuse, from here only.
 */
import createDebug from 'debug';
import type { VolumeContext } from '../context';
import { readInodeBlock } from '../blocks';
import { decodeDinode, encodeDinode, DINODE_CHECK_OFFSET } from '../format/dinode';
import { computeBlockCheck } from '../format/blockcheck';
import { OCFS2_JOURNAL_DIRTY_FL } from '../format/constants';

const trace = createDebug('o2fuse:journal');

export async function journalIsDirty(ctx: VolumeContext, ino: number): Promise<boolean> {
  const { di } = await readInodeBlock(ctx, ino);
  return (di.ij_flags & OCFS2_JOURNAL_DIRTY_FL) !== 0;
}

/**
 * Sets or clears the dirty flag of the journal inode `ino` (and counts a
 * recovery when `recovered`), writes the block and flushes.
 */
export async function setJournalDirty(ctx: VolumeContext, ino: number, dirty: boolean, recovered = false): Promise<void> {
  const { block } = await readInodeBlock(ctx, ino);
  const buf = Buffer.from(block);
  const di = decodeDinode(buf, ino);
  di.ij_flags = dirty ? di.ij_flags | OCFS2_JOURNAL_DIRTY_FL : di.ij_flags & ~OCFS2_JOURNAL_DIRTY_FL;
  if (recovered) di.ij_recovery_generation = (di.ij_recovery_generation + 1) >>> 0;
  encodeDinode(di, buf);
  if (ctx.features.metaEcc) computeBlockCheck(buf, DINODE_CHECK_OFFSET);
  await ctx.device.write(buf, ino * ctx.geo.blockSize);
  await ctx.device.flush();
  ctx.cache.put(ino, buf, 'inode');
  trace('journal inode %d: %s%s', ino, dirty ? 'dirty' : 'clean', recovered ? `, recovery generation ${di.ij_recovery_generation}` : '');
}
