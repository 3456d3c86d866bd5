/**
 * Recovery of a slot's JBD2 journal: the kernel's three passes
 * (fs/jbd2/recovery.c: PASS_SCAN, PASS_REVOKE, PASS_REPLAY) and what
 * fsck.ocfs2 does with a dirty journal, over a JournalSpace.
 *
 * The log is circular over journal blocks [s_first, s_maxlen) and starts at
 * s_start with transaction s_sequence. Each transaction is descriptor blocks
 * (each followed by the blocks its tags describe), revoke blocks, and one
 * commit block, all stamped with the transaction's sequence; the first block
 * whose magic or sequence is not the expected one ends the log. A
 * transaction whose commit block never made it to the log did not happen.
 *
 * The scan is pure reads and throws before anything is written when a
 * committed transaction names a block outside the volume or cannot be
 * decoded: replay either writes every committed block or none.
 *
 * Checksums: with JBD2_FEATURE_COMPAT_CHECKSUM the commit block's crc32_be
 * over the transaction's descriptor and data blocks is verified as the kernel
 * does (a mismatch ends the log there). The csum v2/v3 checksums (crc32c
 * seeded from the journal UUID, on descriptor and revoke tails, tags and
 * commit blocks) are NOT verified: OCFS2 never sets those features, and only
 * their tag and tail layouts are honoured.
 */
import createDebug from 'debug';
import type { Device } from '../../io/device';
import { FsError } from '../errors';
import { FormatError } from '../format/layout';
import {
  decodeCommitBlock, decodeDescriptorBlock, decodeRevokeBlock, journalTagBlocknr, type JournalSuperblock,
  JBD2_COMMIT_BLOCK, JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_DESCRIPTOR_BLOCK, JBD2_FEATURE_COMPAT_CHECKSUM,
  JBD2_FLAG_ESCAPE, JBD2_MAGIC_NUMBER, JBD2_REVOKE_BLOCK, JBD2_SUPERBLOCK_V2,
} from '../format/jbd2';
import { READABLE_INCOMPAT, type JournalSpace } from './space';

const trace = createDebug('o2fuse:journal');

export interface ReplayedTransaction {
  sequence: number;
  /** Home block number, journal block holding its copy, whether the copy's first 4 bytes were escaped. */
  tags: { blkno: number; logBlock: number; escaped: boolean }[];
  /** Block numbers revoked by this transaction's revoke blocks. */
  revokes: number[];
}

export interface JournalScan {
  transactions: ReplayedTransaction[];
  /** sequence the next transaction would have */
  nextSequence: number;
  /** why the scan stopped, for the trace */
  endReason: string;
}

export interface ReplayReport {
  slot: number;
  /** Committed transactions found (and replayed). */
  transactions: number;
  /** Home blocks written: a block logged by several transactions is written once, with its last copy. */
  blocksWritten: number;
  /** Tags skipped because a revoke record of the same or a later transaction cancels them. */
  blocksRevoked: number;
  nextSequence: number;
}

/** Home-block writes in flight at once during replay. */
const REPLAY_WRITES_IN_FLIGHT_MAX = 32;

/** tid_gt: `a` is after `b`, sequences compared modulo 2^32 (they wrap). */
function tidGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

function nextTid(seq: number): number {
  return (seq + 1) >>> 0;
}

/** Incompat bits as the kernel sees them: a v1 superblock has no feature fields. */
function incompatOf(jsb: JournalSuperblock): number {
  return jsb.h_blocktype === JBD2_SUPERBLOCK_V2 ? jsb.s_feature_incompat >>> 0 : 0;
}

function compatOf(jsb: JournalSuperblock): number {
  return jsb.h_blocktype === JBD2_SUPERBLOCK_V2 ? jsb.s_feature_compat >>> 0 : 0;
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

/** A transaction being read, whose commit block has not been seen yet. */
interface OpenTransaction extends ReplayedTransaction {
  /**
   * What makes it unreplayable. Kept, not thrown, until the commit block is
   * found: a transaction without one is ignored whatever it holds, as the
   * kernel never looks inside it.
   */
  problem?: string;
}

/**
 * Pass 1 of recovery: walks the log from s_start/s_sequence and returns
 * every COMMITTED transaction (a trailing transaction without its commit
 * block is not one). Pure reads.
 */
export async function scanJournal(space: JournalSpace, jsb: JournalSuperblock, volumeBlocks: number): Promise<JournalScan> {
  const where = `journal of slot ${space.slot} (inode ${space.ino})`;
  const incompat = incompatOf(jsb);
  const unknown = (incompat & ~READABLE_INCOMPAT) >>> 0;
  if (unknown) {
    throw new FsError('EINVAL', `${where}: JBD2 incompat feature bits ${hex(unknown)} (of ${hex(incompat)}) are not ` +
      'supported, so its log cannot be replayed');
  }
  if (jsb.s_start === 0) {
    // As the kernel: a clean log's next transaction is one past s_sequence, so no stale commit block can match it.
    return { transactions: [], nextSequence: nextTid(jsb.s_sequence), endReason: 'the log is empty (s_start 0)' };
  }
  const first = jsb.s_first;
  const last = jsb.s_maxlen;
  if (!(first >= 1 && first < last && last <= space.blocks && jsb.s_start >= first && jsb.s_start < last)) {
    throw new FsError('EIO', `${where}: journal superblock has s_first ${first}, s_maxlen ${last}, s_start ${jsb.s_start} ` +
      `for a ${space.blocks}-block journal file`);
  }
  const logLength = last - first;
  const wrap = (lblk: number): number => (lblk >= last ? lblk - logLength : lblk);
  const commitChecksums = (compatOf(jsb) & JBD2_FEATURE_COMPAT_CHECKSUM) !== 0;

  const transactions: ReplayedTransaction[] = [];
  let seq = jsb.s_sequence >>> 0;
  let lblk = jsb.s_start;
  /** Log blocks walked: more than the log holds means the walk came round to its own start. */
  let walked = 0;
  let open: OpenTransaction | undefined;
  let crcSum = 0xffffffff;
  let endReason = '';

  const opened = (): OpenTransaction => (open ??= { sequence: seq, tags: [], revokes: [] });

  for (;;) {
    if (walked >= logLength) {
      endReason = `the walk went round the whole ${logLength}-block log`;
      break;
    }
    const here = lblk;
    const block = await space.read(here);
    lblk = wrap(lblk + 1);
    walked++;
    const magic = block.readUInt32BE(0);
    const blocktype = block.readUInt32BE(4);
    const sequence = block.readUInt32BE(8);
    if (magic !== JBD2_MAGIC_NUMBER) {
      endReason = `log block ${here} is not a journal block (magic ${hex(magic)})`;
      break;
    }
    if (sequence !== seq) {
      endReason = `log block ${here} has sequence ${sequence}, not ${seq}`;
      break;
    }
    if (blocktype === JBD2_DESCRIPTOR_BLOCK) {
      const tx = opened();
      let tags: ReturnType<typeof decodeDescriptorBlock>['tags'];
      try {
        tags = decodeDescriptorBlock(block, incompat, `${where}: descriptor of transaction ${seq} at log block ${here}`).tags;
      } catch (err) {
        // Right magic and sequence but tags that overrun the block: not a torn write but damage, and without its tag
        // count the rest of the log (this transaction's commit block included) cannot be found.
        if (err instanceof FormatError) throw new FsError('EIO', `${err.message}; nothing was replayed`);
        throw err;
      }
      if (commitChecksums) crcSum = crc32Be(crcSum, block);
      for (const tag of tags) {
        const blkno = journalTagBlocknr(tag, incompat);
        const logBlock = lblk;
        lblk = wrap(lblk + 1);
        walked++;
        if (commitChecksums) crcSum = crc32Be(crcSum, await space.read(logBlock));
        if (!(blkno >= 0 && blkno < volumeBlocks)) {
          tx.problem ??= `${where}: transaction ${seq} logs block ${blkno} (descriptor at log block ${here}), ` +
            `outside the ${volumeBlocks}-block volume`;
        }
        tx.tags.push({ blkno, logBlock, escaped: (tag.t_flags & JBD2_FLAG_ESCAPE) !== 0 });
      }
      continue;
    }
    if (blocktype === JBD2_REVOKE_BLOCK) {
      const tx = opened();
      try {
        tx.revokes.push(...decodeRevokeBlock(block, incompat, `${where}: revoke block at log block ${here}`).records);
      } catch (err) {
        if (!(err instanceof FormatError)) throw err;
        tx.problem ??= err.message;
      }
      continue;
    }
    if (blocktype === JBD2_COMMIT_BLOCK) {
      if (commitChecksums) {
        const c = decodeCommitBlock(block);
        const found = c.h_chksum[0] >>> 0;
        const matches = crcSum === found && c.h_chksum_type === JBD2_CRC32_CHKSUM && c.h_chksum_size === JBD2_CRC32_CHKSUM_SIZE;
        const unused = c.h_chksum_type === 0 && c.h_chksum_size === 0 && found === 0;
        if (!matches && !unused) {
          // The kernel takes a bad commit checksum for a commit that never completed: the log ends before it.
          endReason = `commit block of transaction ${seq} at log block ${here} has checksum ${hex(found)} ` +
            `(type ${c.h_chksum_type}, size ${c.h_chksum_size}), the transaction's blocks sum to ${hex(crcSum)}; ` +
            'it and anything after it are ignored';
          open = undefined;
          break;
        }
        crcSum = 0xffffffff;
      }
      const tx = opened();
      if (tx.problem) throw new FsError('EIO', `${tx.problem}; nothing was replayed`);
      transactions.push({ sequence: tx.sequence, tags: tx.tags, revokes: tx.revokes });
      open = undefined;
      seq = nextTid(seq);
      continue;
    }
    endReason = `log block ${here} has block type ${blocktype}`;
    break;
  }
  if (open) {
    endReason += `; transaction ${open.sequence} (${open.tags.length} block(s)) has no commit block and is ignored`;
  }
  // As the kernel and fsck.ocfs2: restart one past where the log ended, so a stale commit block cannot match.
  const nextSequence = nextTid(seq);
  trace('%s: %d committed transaction(s) from %d at log block %d; scan ended: %s', where, transactions.length,
    jsb.s_sequence, jsb.s_start, endReason);
  return { transactions, nextSequence, endReason };
}

/**
 * Replays the journal of `space` if its superblock says the log is not empty
 * (s_start != 0): revoke pass, then writes every committed transaction's
 * blocks to their home locations (un-escaping JBD2_FLAG_ESCAPE blocks;
 * skipping a tag whose block is revoked by a revoke record with sequence >=
 * the tag's transaction, with wrapping sequence comparison), flushes the
 * device, then resets the journal superblock (s_start = 0, s_sequence =
 * nextSequence) and flushes again. Does not touch the journal inode (the
 * caller clears OCFS2_JOURNAL_DIRTY_FL). Returns what it did.
 */
export async function replayJournal(device: Device, space: JournalSpace, volumeBlocks: number): Promise<ReplayReport> {
  const jsb = await space.readSuperblock();
  const report: ReplayReport = { slot: space.slot, transactions: 0, blocksWritten: 0, blocksRevoked: 0, nextSequence: 0 };
  if (jsb.s_start === 0) {
    report.nextSequence = nextTid(jsb.s_sequence);
    trace('journal of slot %d: clean (s_start 0, s_sequence %d), nothing to replay', space.slot, jsb.s_sequence);
    return report;
  }
  const scan = await scanJournal(space, jsb, volumeBlocks);
  report.transactions = scan.transactions.length;
  report.nextSequence = scan.nextSequence;

  // PASS_REVOKE: per block, the latest transaction that revoked it.
  const revokedUpTo = new Map<number, number>();
  for (const tx of scan.transactions) {
    for (const blkno of tx.revokes) {
      const known = revokedUpTo.get(blkno);
      if (known === undefined || tidGt(tx.sequence, known)) revokedUpTo.set(blkno, tx.sequence);
    }
  }

  // PASS_REPLAY, folded: a block logged more than once ends up with its last unrevoked copy, so only that one is
  // written (the device may complete writes to one block in any order, so two of them must never be in flight).
  const latest = new Map<number, { logBlock: number; escaped: boolean }>();
  for (const tx of scan.transactions) {
    let replayed = 0;
    let revoked = 0;
    for (const tag of tx.tags) {
      const upTo = revokedUpTo.get(tag.blkno);
      if (upTo !== undefined && !tidGt(tx.sequence, upTo)) {
        revoked++;
        continue;
      }
      latest.set(tag.blkno, { logBlock: tag.logBlock, escaped: tag.escaped });
      replayed++;
    }
    report.blocksRevoked += revoked;
    trace('journal of slot %d: transaction %d: %d block(s) replayed, %d revoked, %d revoke record(s)', space.slot,
      tx.sequence, replayed, revoked, tx.revokes.length);
  }

  const blockSize = space.blockSize;
  const pending = [...latest];
  const writeOne = async ([blkno, copy]: [number, { logBlock: number; escaped: boolean }]): Promise<void> => {
    const buf = await space.read(copy.logBlock);
    if (copy.escaped) buf.writeUInt32BE(JBD2_MAGIC_NUMBER, 0);
    await device.write(buf, blkno * blockSize);
  };
  let next = 0;
  const workers = Array.from({ length: Math.min(REPLAY_WRITES_IN_FLIGHT_MAX, pending.length) }, async () => {
    while (next < pending.length) await writeOne(pending[next++]);
  });
  await Promise.all(workers);
  report.blocksWritten = pending.length;
  await device.flush();

  // Only now may the log be forgotten: every replayed block is durable at home.
  await space.writeSuperblock({ ...jsb, s_start: 0, s_sequence: scan.nextSequence });
  await device.flush();
  trace('journal of slot %d: replayed %d transaction(s), %d block(s) written, %d revoked; next sequence %d',
    space.slot, report.transactions, report.blocksWritten, report.blocksRevoked, report.nextSequence);
  return report;
}

const CRC32_BE_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * The kernel's crc32_be(seed, data): MSB-first CRC-32, no final inversion;
 * JBD2_FEATURE_COMPAT_CHECKSUM commit blocks hold it seeded with ~0.
 * (It belongs beside crc32Le in fs/format/crc32.ts.)
 */
export function crc32Be(seed: number, buf: Uint8Array): number {
  let crc = seed >>> 0;
  for (let i = 0; i < buf.length; i++) crc = ((crc << 8) ^ CRC32_BE_TABLE[((crc >>> 24) ^ buf[i]) & 0xff]) >>> 0;
  return crc;
}
