/**
 * A new slot journal: the JBD2 v2 superblock in the journal file's first
 * block (big-endian), over a log that reads as zeros.
 *
 * mkfs.ocfs2 (ocfs2_init_journal_superblock) writes s_first 1 (2 with
 * 512-byte blocks, where the 1 KiB superblock spans two blocks),
 * s_sequence 1, s_nr_users 1, the volume UUID, and JBD2 64-bit block
 * numbers only for -J block64. It leaves s_start at 1; o2fuse writes 0,
 * JBD2's "nothing to replay" (what fsck.ocfs2 and the kernel write after a
 * replay), so no reader ever scans the log of a fresh journal. The journal
 * inode's ij_flags has no OCFS2_JOURNAL_DIRTY_FL: the journal is clean.
 */
import {
  encodeJournalSuperblock, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_MAGIC_NUMBER, JBD2_SUPERBLOCK_V2, JournalSuperblock,
} from '../format/jbd2';

export interface JournalSuperblockInput {
  blockSizeBytes: number;
  journalBlocks: number;
  uuid: Buffer;
  journal64: boolean;
}

export function journalSuperblockFor(input: JournalSuperblockInput): JournalSuperblock {
  if (input.journalBlocks < 1024) throw new RangeError(`journal of ${input.journalBlocks} blocks: JBD2 needs at least 1024`);
  return {
    h_magic: JBD2_MAGIC_NUMBER,
    h_blocktype: JBD2_SUPERBLOCK_V2,
    h_sequence: 0,
    s_blocksize: input.blockSizeBytes,
    s_maxlen: input.journalBlocks,
    s_first: input.blockSizeBytes === 512 ? 2 : 1,
    s_sequence: 1,
    s_start: 0,
    s_errno: 0,
    s_feature_compat: 0,
    s_feature_incompat: input.journal64 ? JBD2_FEATURE_INCOMPAT_64BIT : 0,
    s_feature_ro_compat: 0,
    s_uuid: Buffer.from(input.uuid),
    s_nr_users: 1,
    s_dynsuper: 0,
    s_max_transaction: 0,
    s_max_trans_data: 0,
    s_padding: Buffer.alloc(44 * 4),
    s_checksum_type: 0,
    s_checksum: 0,
    s_users: Buffer.alloc(Math.max(0, Math.min(input.blockSizeBytes, 0x400) - 0x100)),
  };
}

export function journalSuperblockBlock(input: JournalSuperblockInput): Buffer {
  const block = Buffer.alloc(input.blockSizeBytes);
  encodeJournalSuperblock(journalSuperblockFor(input), block);
  return block;
}
