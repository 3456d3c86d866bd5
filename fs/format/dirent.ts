/**
 * Directory entries (struct ocfs2_dir_entry, packed, 4-byte aligned records)
 * and the dir block trailer (struct ocfs2_dir_block_trailer "DIRTRL1"), which
 * takes the last 64 bytes of every directory block on volumes with metaecc
 * or indexed-dirs (ocfs2_supports_dir_trailer). Inline directories (data in
 * the inode) have no trailer. The trailer mirrors a dirent with inode 0 and
 * rec_len 64, so code unaware of it sees an unused entry.
 */
import {
  OCFS2_DIR_TRAILER_SIGNATURE, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_META_ECC,
  OCFS2_MAX_FILENAME_LEN,
} from './constants';
import {
  checkSignature, decodeFields, Decoded, encodeFields, FormatError, isZero, signatureBytes, writeSignature,
} from './layout';

/** struct ocfs2_dir_entry; name at 0x0C. */
export const DIR_ENTRY = {
  inode: [0x00, 'u64'],
  rec_len: [0x08, 'u16'],
  name_len: [0x0a, 'u8'],
  file_type: [0x0b, 'u8'],
} as const;
/** OCFS2_DIR_MEMBER_LEN = offsetof(struct ocfs2_dir_entry, name) */
export const OCFS2_DIR_MEMBER_LEN = 0x0c;
export const OCFS2_DIR_PAD = 4;
export const OCFS2_DIR_ROUND = OCFS2_DIR_PAD - 1;

/** OCFS2_DIR_REC_LEN: bytes a record needs for a name of nameLen bytes. */
export function OCFS2_DIR_REC_LEN(nameLen: number): number {
  return (nameLen + OCFS2_DIR_MEMBER_LEN + OCFS2_DIR_ROUND) & ~OCFS2_DIR_ROUND;
}
export const OCFS2_DIR_MIN_REC_LEN = OCFS2_DIR_REC_LEN(1);

export interface DirEntry extends Decoded<typeof DIR_ENTRY> {
  /** name_len bytes (names are bytes, not necessarily UTF-8). */
  name: Buffer;
  /** Byte offset of the record in the block (or inline data area) it was read from. */
  offset: number;
  /** Bytes of the record after the name, kept only when not all zero (stale names of merged entries). */
  tail?: Buffer;
}

/** struct ocfs2_dir_block_trailer: 64 bytes at the end of a dir block. */
export const DIR_TRAILER = {
  db_compat_inode: [0x00, 'u64'],
  db_compat_rec_len: [0x08, 'u16'],
  db_compat_name_len: [0x0a, 'u8'],
  db_reserved0: [0x0b, 'u8'],
  db_reserved1: [0x0c, 'u16'],
  db_free_rec_len: [0x0e, 'u16'],
  db_signature: [0x10, 'bytes', 8],
  db_reserved2: [0x18, 'bytes', 8],
  db_free_next: [0x20, 'u64'],
  db_blkno: [0x28, 'u64'],
  db_parent_dinode: [0x30, 'u64'],
  db_check: [0x38, 'bytes', 8],
} as const;
/** sizeof(struct ocfs2_dir_block_trailer) */
export const DIR_TRAILER_SIZE = 0x40;
export type DirTrailer = Decoded<typeof DIR_TRAILER>;

/** ocfs2_dir_trailer_blk_off: where the trailer starts in a block. */
export function dirTrailerBlkOff(blockSizeBytes: number): number {
  return blockSizeBytes - DIR_TRAILER_SIZE;
}

/** Offset of db_check from the start of a dir block (for blockcheck). */
export function dirBlockCheckOffset(blockSizeBytes: number): number {
  return dirTrailerBlkOff(blockSizeBytes) + DIR_TRAILER.db_check[0];
}

/** ocfs2_supports_dir_trailer: whether (non-inline) dir blocks of a volume carry trailers. */
export function volumeHasDirTrailers(featureIncompat: number): boolean {
  return (featureIncompat & (OCFS2_FEATURE_INCOMPAT_META_ECC | OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS)) !== 0;
}

/** The string of a name (latin1 keeps bytes 1:1; use .name for bytes). */
export function dirEntryName(de: Pick<DirEntry, 'name'>): string {
  return de.name.toString('utf8');
}

/**
 * Reads the record at `offset` of buf[.., end) and checks it the way
 * ocfs2_check_dir_entry does: rec_len at least the minimum, a multiple of 4,
 * large enough for name_len, and not past `end`. Errors name `what` and the offset.
 */
export function decodeDirEntry(buf: Buffer, offset: number, end: number, what: string): DirEntry {
  // The message prefix is built only for an error: listing a directory decodes every record, and a string per
  // record (with an object spread) was most of what a 5,000-entry listing cost.
  const at = () => `${what}: dirent at offset ${offset}`;
  if (offset + OCFS2_DIR_MEMBER_LEN > end) throw new FormatError(`${at()}: header runs past the end (${end})`);
  const h = decodeFields(DIR_ENTRY, buf, offset, at);
  const recLen = h.rec_len;
  if (recLen < OCFS2_DIR_MIN_REC_LEN) throw new FormatError(`${at()}: rec_len ${recLen} smaller than minimal ${OCFS2_DIR_MIN_REC_LEN}`);
  if (recLen % OCFS2_DIR_PAD !== 0) throw new FormatError(`${at()}: rec_len ${recLen} % 4 != 0`);
  if (recLen < OCFS2_DIR_REC_LEN(h.name_len)) throw new FormatError(`${at()}: rec_len ${recLen} too small for name_len ${h.name_len}`);
  if (offset + recLen > end) throw new FormatError(`${at()}: rec_len ${recLen} runs past the end (${end})`);
  const nameStart = offset + OCFS2_DIR_MEMBER_LEN;
  const de: DirEntry = {
    inode: h.inode, rec_len: recLen, name_len: h.name_len, file_type: h.file_type,
    name: Buffer.from(buf.subarray(nameStart, nameStart + h.name_len)), offset,
  };
  const recEnd = offset + recLen;
  if (!isZero(buf, nameStart + h.name_len, recEnd)) de.tail = Buffer.from(buf.subarray(nameStart + h.name_len, recEnd));
  return de;
}

/** Writes one record at de.offset (header, name, then tail or zeros up to rec_len). */
export function encodeDirEntry(de: DirEntry, buf: Buffer, offset = de.offset): void {
  const at = `dirent at offset ${offset}`;
  if (de.name.length !== de.name_len) throw new RangeError(`${at}: name is ${de.name.length} bytes, name_len ${de.name_len}`);
  if (de.name_len > OCFS2_MAX_FILENAME_LEN) throw new RangeError(`${at}: name_len ${de.name_len} > ${OCFS2_MAX_FILENAME_LEN}`);
  if (de.rec_len < OCFS2_DIR_REC_LEN(de.name_len) || de.rec_len % OCFS2_DIR_PAD !== 0) {
    throw new RangeError(`${at}: rec_len ${de.rec_len} invalid for name_len ${de.name_len}`);
  }
  encodeFields(DIR_ENTRY, de, buf, offset, at);
  const nameStart = offset + OCFS2_DIR_MEMBER_LEN;
  de.name.copy(buf, nameStart);
  const restStart = nameStart + de.name_len;
  const recEnd = offset + de.rec_len;
  buf.fill(0, restStart, recEnd);
  if (de.tail) {
    if (restStart + de.tail.length > recEnd) throw new RangeError(`${at}: tail does not fit in rec_len`);
    de.tail.copy(buf, restStart);
  }
}

/**
 * Iterates the records tiling buf[start, end) (a dir block without its
 * trailer, or an inline dir's id_data up to i_size). Unused records
 * (inode 0) are yielded too: they carry free space.
 */
export function* iterateDirEntries(buf: Buffer, start: number, end: number, what = 'dir block'): Generator<DirEntry> {
  let off = start;
  while (off < end) {
    const de = decodeDirEntry(buf, off, end, what);
    yield de;
    off += de.rec_len;
  }
}

export interface DirBlock {
  /** Every record, in order, used or not. */
  entries: DirEntry[];
  trailer?: DirTrailer;
}

export interface DirBlockOptions {
  /** Block number it was read from (checked against db_blkno when there is a trailer). */
  blkno?: number;
  /** The volume puts trailers in dir blocks (volumeHasDirTrailers). */
  hasTrailer: boolean;
  /** Directory inode owning the block (checked against db_parent_dinode). */
  parentBlkno?: number;
}

/** Decodes a whole directory block: records up to the trailer, and the trailer. */
export function decodeDirBlock(block: Buffer, opts: DirBlockOptions): DirBlock {
  const what = opts.blkno !== undefined ? `dir block ${opts.blkno}` : 'dir block';
  const end = opts.hasTrailer ? dirTrailerBlkOff(block.length) : block.length;
  const entries = [...iterateDirEntries(block, 0, end, what)];
  const db: DirBlock = { entries };
  if (opts.hasTrailer) db.trailer = decodeDirTrailer(block, opts.blkno, opts.parentBlkno);
  return db;
}

/** Checks and decodes the trailer of a dir block (ocfs2_check_dir_trailer). */
export function decodeDirTrailer(block: Buffer, blkno?: number, parentBlkno?: number): DirTrailer {
  const what = blkno !== undefined ? `dir block ${blkno}: trailer` : 'dir block trailer';
  const off = dirTrailerBlkOff(block.length);
  checkSignature(block, off + DIR_TRAILER.db_signature[0], OCFS2_DIR_TRAILER_SIGNATURE, `${what}: db_signature`);
  const t = decodeFields(DIR_TRAILER, block, off, what);
  if (blkno !== undefined && t.db_blkno !== blkno) throw new FormatError(`${what}: db_blkno ${t.db_blkno} does not match the block it was read from`);
  if (parentBlkno !== undefined && t.db_parent_dinode !== parentBlkno) {
    throw new FormatError(`${what}: db_parent_dinode ${t.db_parent_dinode} != directory ${parentBlkno}`);
  }
  return t;
}

export function encodeDirTrailer(t: DirTrailer, block: Buffer): void {
  const off = dirTrailerBlkOff(block.length);
  encodeFields(DIR_TRAILER, t, block, off, 'dir trailer');
  writeSignature(block, off + DIR_TRAILER.db_signature[0], OCFS2_DIR_TRAILER_SIGNATURE);
}

/** Writes the whole block; the records must tile [0, end) exactly. */
export function encodeDirBlock(db: DirBlock, block: Buffer): void {
  const end = db.trailer ? dirTrailerBlkOff(block.length) : block.length;
  block.fill(0);
  let off = 0;
  for (const de of db.entries) {
    if (off + de.rec_len > end) throw new RangeError(`dir block: record at ${off} (rec_len ${de.rec_len}) runs past ${end}`);
    encodeDirEntry(de, block, off);
    off += de.rec_len;
  }
  if (off !== end) throw new RangeError(`dir block: records cover ${off} bytes, expected ${end}`);
  if (db.trailer) encodeDirTrailer(db.trailer, block);
}

/** A new trailer for a dir block (ocfs2_init_dir_trailer). */
export function newDirTrailer(blkno: number, parentBlkno: number): DirTrailer {
  return {
    db_compat_inode: 0, db_compat_rec_len: DIR_TRAILER_SIZE, db_compat_name_len: 0, db_reserved0: 0, db_reserved1: 0,
    db_free_rec_len: 0, db_signature: signatureBytes(OCFS2_DIR_TRAILER_SIGNATURE), db_reserved2: Buffer.alloc(8),
    db_free_next: 0, db_blkno: blkno, db_parent_dinode: parentBlkno, db_check: Buffer.alloc(8),
  };
}

/** A record for a name (tail-free), with rec_len the minimum unless given. */
export function newDirEntry(inode: number, name: Buffer | string, fileType: number, recLen?: number): DirEntry {
  const n = typeof name === 'string' ? Buffer.from(name) : name;
  if (n.length > OCFS2_MAX_FILENAME_LEN) throw new RangeError(`name of ${n.length} bytes > ${OCFS2_MAX_FILENAME_LEN}`);
  return { inode, rec_len: recLen ?? OCFS2_DIR_REC_LEN(n.length), name_len: n.length, file_type: fileType, name: n, offset: 0 };
}
