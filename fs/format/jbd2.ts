/**
 * JBD2, the journal in each slot's journal:NNNN file; big-endian throughout
 * (/usr/include/ocfs2/jbd2.h, plus the checksum v2/v3 tag and tail formats of
 * the kernel's include/linux/jbd2.h). Block 0 of the file is the journal
 * superblock; the log holds descriptor blocks (a header then block tags,
 * each followed by a 16-byte UUID unless JBD2_FLAG_SAME_UUID), the journaled
 * blocks themselves, revoke blocks and commit blocks.
 */
import { decodeFields, Decoded, encodeFields, FormatError, isZero, omitFields, pickFields } from './layout';

export const JBD2_MAGIC_NUMBER = 0xc03b3998;

export const JBD2_DESCRIPTOR_BLOCK = 1;
export const JBD2_COMMIT_BLOCK = 2;
export const JBD2_SUPERBLOCK_V1 = 3;
export const JBD2_SUPERBLOCK_V2 = 4;
export const JBD2_REVOKE_BLOCK = 5;

export const JBD2_CRC32_CHKSUM = 1;
export const JBD2_MD5_CHKSUM = 2;
export const JBD2_SHA2_CHKSUM = 3;
export const JBD2_CRC32_CHKSUM_SIZE = 4;
export const JBD2_CHECKSUM_BYTES = 8;

export const JBD2_FLAG_ESCAPE = 1;
export const JBD2_FLAG_SAME_UUID = 2;
export const JBD2_FLAG_DELETED = 4;
export const JBD2_FLAG_LAST_TAG = 8;

export const JBD2_FEATURE_COMPAT_CHECKSUM = 0x00000001;
export const JBD2_FEATURE_INCOMPAT_REVOKE = 0x00000001;
export const JBD2_FEATURE_INCOMPAT_64BIT = 0x00000002;
export const JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT = 0x00000004;
/** Kernel jbd2 features that ocfs2-tools' header predates (OCFS2 does not set them). */
export const JBD2_FEATURE_INCOMPAT_CSUM_V2 = 0x00000008;
export const JBD2_FEATURE_INCOMPAT_CSUM_V3 = 0x00000010;
export const JBD2_FEATURE_INCOMPAT_FAST_COMMIT = 0x00000020;
export const JBD2_KNOWN_COMPAT_FEATURES = 0;
export const JBD2_KNOWN_ROCOMPAT_FEATURES = 0;
export const JBD2_KNOWN_INCOMPAT_FEATURES = JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT;

/** journal_header_t */
export const JOURNAL_HEADER = {
  h_magic: [0x00, 'be32'],
  h_blocktype: [0x04, 'be32'],
  h_sequence: [0x08, 'be32'],
} as const;
export const JOURNAL_HEADER_SIZE = 0x0c;
export type JournalHeader = Decoded<typeof JOURNAL_HEADER>;

/**
 * journal_superblock_t (s_header flattened in). s_checksum_type and
 * s_checksum are the kernel's later names for bytes inside s_padding: they
 * are decoded as views and, when encoding, written over s_padding.
 */
export const JOURNAL_SUPERBLOCK = {
  ...JOURNAL_HEADER,
  s_blocksize: [0x0c, 'be32'],
  s_maxlen: [0x10, 'be32'],
  s_first: [0x14, 'be32'],
  s_sequence: [0x18, 'be32'],
  s_start: [0x1c, 'be32'],
  s_errno: [0x20, 'be32'],
  s_feature_compat: [0x24, 'be32'],
  s_feature_incompat: [0x28, 'be32'],
  s_feature_ro_compat: [0x2c, 'be32'],
  s_uuid: [0x30, 'bytes', 16],
  s_nr_users: [0x40, 'be32'],
  s_dynsuper: [0x44, 'be32'],
  s_max_transaction: [0x48, 'be32'],
  s_max_trans_data: [0x4c, 'be32'],
  s_padding: [0x50, 'bytes', 44 * 4],
  s_checksum_type: [0x50, 'u8'],
  s_checksum: [0xfc, 'be32'],
} as const;
export const JOURNAL_SUPERBLOCK_USERS_OFFSET = 0x100;
/** sizeof(journal_superblock_t) */
export const JOURNAL_SUPERBLOCK_SIZE = 0x400;
const JSB_BASE = omitFields(JOURNAL_SUPERBLOCK, ['s_checksum_type', 's_checksum']);
const JSB_VIEWS = pickFields(JOURNAL_SUPERBLOCK, ['s_checksum_type', 's_checksum']);

export interface JournalSuperblock extends Decoded<typeof JOURNAL_SUPERBLOCK> {
  /** s_users[16*48], as much of it as the block holds (a 512-byte block holds none). */
  s_users: Buffer;
  /** Bytes after the superblock up to the block end, kept only when not all zero. */
  tail?: Buffer;
}

/** struct commit_header */
export const COMMIT_HEADER = {
  ...JOURNAL_HEADER,
  h_chksum_type: [0x0c, 'u8'],
  h_chksum_size: [0x0d, 'u8'],
  h_padding: [0x0e, 'bytes', 2],
  h_chksum: [0x10, 'be32', JBD2_CHECKSUM_BYTES],
  h_commit_sec: [0x30, 'be64'],
  h_commit_nsec: [0x38, 'be32'],
} as const;
export const COMMIT_HEADER_SIZE = 0x40;
export interface CommitBlock extends Decoded<typeof COMMIT_HEADER> {
  tail?: Buffer;
}

/** journal_revoke_header_t; records from 0x10, r_count = bytes used including the header. */
export const JOURNAL_REVOKE_HEADER = {
  ...JOURNAL_HEADER,
  r_count: [0x0c, 'be32'],
} as const;
export const JOURNAL_REVOKE_HEADER_SIZE = 0x10;
export interface RevokeBlock extends Decoded<typeof JOURNAL_REVOKE_HEADER> {
  /** Revoked block numbers. */
  records: number[];
  /** jbd2_journal_block_tail.t_checksum (csum v2/v3) */
  tailChecksum?: number;
  tail?: Buffer;
}

/** journal_block_tag_t as in ocfs2-tools' jbd2.h (no checksums): 8 bytes, 12 with 64bit. */
export const JOURNAL_BLOCK_TAG = {
  t_blocknr: [0x00, 'be32'],
  t_flags: [0x04, 'be32'],
  t_blocknr_high: [0x08, 'be32'],
} as const;
/** The kernel's journal_block_tag_t under csum v2: 16-bit checksum and flags; 10 bytes, 14 with 64bit. */
export const JOURNAL_BLOCK_TAG_CSUM_V2 = {
  t_blocknr: [0x00, 'be32'],
  t_checksum: [0x04, 'be16'],
  t_flags: [0x06, 'be16'],
  t_blocknr_high: [0x08, 'be32'],
} as const;
/** journal_block_tag3_t (csum v3): always 16 bytes. */
export const JOURNAL_BLOCK_TAG3 = {
  t_blocknr: [0x00, 'be32'],
  t_flags: [0x04, 'be32'],
  t_blocknr_high: [0x08, 'be32'],
  t_checksum: [0x0c, 'be32'],
} as const;
/** jbd2_journal_block_tail: the last 4 bytes of descriptor and revoke blocks under csum v2/v3. */
export const JBD2_BLOCK_TAIL_SIZE = 4;

export interface JournalTag {
  t_blocknr: number;
  t_flags: number;
  t_blocknr_high: number;
  t_checksum: number;
  /** The UUID after the tag (absent when JBD2_FLAG_SAME_UUID). */
  uuid?: Buffer;
}

export interface DescriptorBlock extends JournalHeader {
  tags: JournalTag[];
  tailChecksum?: number;
  /** Bytes after the last tag (or before the tail), kept only when not all zero. */
  tail?: Buffer;
}

function hasCsum(incompat: number): boolean {
  return (incompat & (JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3)) !== 0;
}

/** journal_tag_bytes: size of one tag for the journal's features. */
export function journalTagBytes(featureIncompat: number): number {
  if (featureIncompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) return 16;
  let size = 12;
  if (featureIncompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) size += 2;
  return featureIncompat & JBD2_FEATURE_INCOMPAT_64BIT ? size : size - 4;
}

/** Bytes of one revoke record (8 with 64bit). */
export function revokeRecordBytes(featureIncompat: number): number {
  return featureIncompat & JBD2_FEATURE_INCOMPAT_64BIT ? 8 : 4;
}

/** A tag's full block number (t_blocknr_high counts only with 64bit). */
export function journalTagBlocknr(tag: JournalTag, featureIncompat: number): number {
  return featureIncompat & JBD2_FEATURE_INCOMPAT_64BIT ? tag.t_blocknr_high * 2 ** 32 + tag.t_blocknr : tag.t_blocknr;
}

export function decodeJournalHeader(block: Buffer, what = 'journal block'): JournalHeader {
  const h = decodeFields(JOURNAL_HEADER, block, 0, what);
  if (h.h_magic !== JBD2_MAGIC_NUMBER) throw new FormatError(`${what}: h_magic 0x${h.h_magic.toString(16)} is not JBD2_MAGIC_NUMBER`);
  return h;
}

/** Block 0 of a journal file. */
export function decodeJournalSuperblock(block: Buffer, what = 'journal superblock'): JournalSuperblock {
  const h = decodeJournalHeader(block, what);
  if (h.h_blocktype !== JBD2_SUPERBLOCK_V1 && h.h_blocktype !== JBD2_SUPERBLOCK_V2) {
    throw new FormatError(`${what}: h_blocktype ${h.h_blocktype} is not a superblock (3 or 4)`);
  }
  if (block.length < JOURNAL_SUPERBLOCK_USERS_OFFSET) throw new FormatError(`${what}: block of ${block.length} bytes`);
  const jsb = decodeFields(JOURNAL_SUPERBLOCK, block, 0, what);
  const usersEnd = Math.min(block.length, JOURNAL_SUPERBLOCK_SIZE);
  const out: JournalSuperblock = { ...jsb, s_users: Buffer.from(block.subarray(JOURNAL_SUPERBLOCK_USERS_OFFSET, usersEnd)) };
  if (!isZero(block, usersEnd)) out.tail = Buffer.from(block.subarray(usersEnd));
  return out;
}

export function encodeJournalSuperblock(jsb: JournalSuperblock, block: Buffer): void {
  block.fill(0);
  encodeFields(JSB_BASE, jsb, block, 0, 'journal superblock');
  encodeFields(JSB_VIEWS, jsb, block, 0, 'journal superblock');
  const room = Math.min(block.length, JOURNAL_SUPERBLOCK_SIZE) - JOURNAL_SUPERBLOCK_USERS_OFFSET;
  if (jsb.s_users.length > room) throw new RangeError(`journal superblock: s_users of ${jsb.s_users.length} bytes > ${room}`);
  jsb.s_users.copy(block, JOURNAL_SUPERBLOCK_USERS_OFFSET);
  if (jsb.tail) jsb.tail.copy(block, JOURNAL_SUPERBLOCK_SIZE);
}

/** Tags of a descriptor block (until JBD2_FLAG_LAST_TAG or the space ends), for the journal's incompat features. */
export function decodeDescriptorBlock(block: Buffer, featureIncompat: number, what = 'journal descriptor'): DescriptorBlock {
  const h = decodeJournalHeader(block, what);
  if (h.h_blocktype !== JBD2_DESCRIPTOR_BLOCK) throw new FormatError(`${what}: h_blocktype ${h.h_blocktype} is not a descriptor`);
  const tagBytes = journalTagBytes(featureIncompat);
  const end = block.length - (hasCsum(featureIncompat) ? JBD2_BLOCK_TAIL_SIZE : 0);
  const tags: JournalTag[] = [];
  let off = JOURNAL_HEADER_SIZE;
  while (off + tagBytes <= end) {
    const tag = decodeTag(block, off, featureIncompat, `${what}: tag at offset ${off}`);
    off += tagBytes;
    if (!(tag.t_flags & JBD2_FLAG_SAME_UUID)) {
      if (off + 16 > end) throw new FormatError(`${what}: tag at offset ${off - tagBytes}: UUID runs past the block`);
      tag.uuid = Buffer.from(block.subarray(off, off + 16));
      off += 16;
    }
    tags.push(tag);
    if (tag.t_flags & JBD2_FLAG_LAST_TAG) break;
  }
  const d: DescriptorBlock = { ...h, tags };
  if (hasCsum(featureIncompat)) d.tailChecksum = block.readUInt32BE(end);
  if (!isZero(block, off, end)) d.tail = Buffer.from(block.subarray(off, end));
  return d;
}

function decodeTag(block: Buffer, off: number, incompat: number, what: string): JournalTag {
  if (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) return decodeFields(JOURNAL_BLOCK_TAG3, block, off, what);
  const is64 = (incompat & JBD2_FEATURE_INCOMPAT_64BIT) !== 0;
  if (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) {
    const t = decodeFields(is64 ? JOURNAL_BLOCK_TAG_CSUM_V2 : omitFields(JOURNAL_BLOCK_TAG_CSUM_V2, ['t_blocknr_high']), block, off, what);
    return { t_blocknr_high: 0, ...t };
  }
  const t = decodeFields(is64 ? JOURNAL_BLOCK_TAG : omitFields(JOURNAL_BLOCK_TAG, ['t_blocknr_high']), block, off, what);
  return { t_blocknr_high: 0, t_checksum: 0, ...t };
}

function encodeTag(tag: JournalTag, block: Buffer, off: number, incompat: number): void {
  const is64 = (incompat & JBD2_FEATURE_INCOMPAT_64BIT) !== 0;
  if (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) encodeFields(JOURNAL_BLOCK_TAG3, tag, block, off, 'journal tag');
  else if (incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) {
    encodeFields(is64 ? JOURNAL_BLOCK_TAG_CSUM_V2 : omitFields(JOURNAL_BLOCK_TAG_CSUM_V2, ['t_blocknr_high']), tag, block, off, 'journal tag');
  } else encodeFields(is64 ? JOURNAL_BLOCK_TAG : omitFields(JOURNAL_BLOCK_TAG, ['t_blocknr_high']), tag, block, off, 'journal tag');
}

/** Writes the whole block. */
export function encodeDescriptorBlock(d: DescriptorBlock, block: Buffer, featureIncompat: number): void {
  block.fill(0);
  encodeFields(JOURNAL_HEADER, d, block, 0, 'journal descriptor');
  const tagBytes = journalTagBytes(featureIncompat);
  const end = block.length - (hasCsum(featureIncompat) ? JBD2_BLOCK_TAIL_SIZE : 0);
  let off = JOURNAL_HEADER_SIZE;
  for (const tag of d.tags) {
    const need = tagBytes + (tag.t_flags & JBD2_FLAG_SAME_UUID ? 0 : 16);
    if (off + need > end) throw new RangeError(`journal descriptor: tags overflow the block at ${off}`);
    encodeTag(tag, block, off, featureIncompat);
    off += tagBytes;
    if (!(tag.t_flags & JBD2_FLAG_SAME_UUID)) {
      (tag.uuid ?? Buffer.alloc(16)).copy(block, off);
      off += 16;
    }
  }
  if (d.tail) d.tail.copy(block, off);
  if (hasCsum(featureIncompat)) block.writeUInt32BE(d.tailChecksum ?? 0, end);
}

export function decodeRevokeBlock(block: Buffer, featureIncompat: number, what = 'journal revoke'): RevokeBlock {
  const h = decodeJournalHeader(block, what);
  if (h.h_blocktype !== JBD2_REVOKE_BLOCK) throw new FormatError(`${what}: h_blocktype ${h.h_blocktype} is not a revoke block`);
  const r = decodeFields(JOURNAL_REVOKE_HEADER, block, 0, what);
  const end = block.length - (hasCsum(featureIncompat) ? JBD2_BLOCK_TAIL_SIZE : 0);
  if (r.r_count < JOURNAL_REVOKE_HEADER_SIZE || r.r_count > end) throw new FormatError(`${what}: r_count ${r.r_count} outside [16, ${end}]`);
  const rec = revokeRecordBytes(featureIncompat);
  const records: number[] = [];
  for (let off = JOURNAL_REVOKE_HEADER_SIZE; off + rec <= r.r_count; off += rec) {
    records.push(rec === 8 ? checkedBe64(block, off, `${what}: record at ${off}`) : block.readUInt32BE(off));
  }
  const out: RevokeBlock = { ...r, records };
  if (hasCsum(featureIncompat)) out.tailChecksum = block.readUInt32BE(end);
  if (!isZero(block, r.r_count, end)) out.tail = Buffer.from(block.subarray(r.r_count, end));
  return out;
}

export function encodeRevokeBlock(r: RevokeBlock, block: Buffer, featureIncompat: number): void {
  block.fill(0);
  encodeFields(JOURNAL_REVOKE_HEADER, r, block, 0, 'journal revoke');
  const rec = revokeRecordBytes(featureIncompat);
  let off = JOURNAL_REVOKE_HEADER_SIZE;
  for (const b of r.records) {
    if (rec === 8) {
      block.writeUInt32BE(Math.floor(b / 2 ** 32), off);
      block.writeUInt32BE(b % 2 ** 32, off + 4);
    } else block.writeUInt32BE(b, off);
    off += rec;
  }
  if (r.tail) r.tail.copy(block, r.r_count);
  if (hasCsum(featureIncompat)) block.writeUInt32BE(r.tailChecksum ?? 0, block.length - JBD2_BLOCK_TAIL_SIZE);
}

export function decodeCommitBlock(block: Buffer, what = 'journal commit'): CommitBlock {
  const h = decodeJournalHeader(block, what);
  if (h.h_blocktype !== JBD2_COMMIT_BLOCK) throw new FormatError(`${what}: h_blocktype ${h.h_blocktype} is not a commit block`);
  const c: CommitBlock = decodeFields(COMMIT_HEADER, block, 0, what);
  if (!isZero(block, COMMIT_HEADER_SIZE)) c.tail = Buffer.from(block.subarray(COMMIT_HEADER_SIZE));
  return c;
}

export function encodeCommitBlock(c: CommitBlock, block: Buffer): void {
  block.fill(0);
  encodeFields(COMMIT_HEADER, c, block, 0, 'journal commit');
  if (c.tail) c.tail.copy(block, COMMIT_HEADER_SIZE);
}

function checkedBe64(block: Buffer, off: number, what: string): number {
  const hi = block.readUInt32BE(off);
  if (hi > 0x1fffff) throw new FormatError(`${what}: 64-bit value out of range`);
  return hi * 2 ** 32 + block.readUInt32BE(off + 4);
}
