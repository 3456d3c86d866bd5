/**
 * struct ocfs2_truncate_log / ocfs2_truncate_rec: clusters freed by a
 * truncate, waiting to go back to the global bitmap; the id2 of a slot's
 * truncate_log:NNNN inode (i_flags OCFS2_DEALLOC_FL).
 */
import { decodeFields, Decoded, encodeFields, FormatError } from './layout';

export const TRUNCATE_REC = {
  t_start: [0x00, 'u32'],
  t_clusters: [0x04, 'u32'],
} as const;
export const TRUNCATE_REC_SIZE = 8;
export type TruncateRec = Decoded<typeof TRUNCATE_REC>;

export const TRUNCATE_LOG = {
  tl_count: [0x00, 'u16'],
  tl_used: [0x02, 'u16'],
  tl_reserved1: [0x04, 'u32'],
} as const;
export const TRUNCATE_LOG_RECS_OFFSET = 0x08;

export interface TruncateLog extends Decoded<typeof TRUNCATE_LOG> {
  /** All tl_count records (used ones are [0, tl_used)). */
  tl_recs: TruncateRec[];
}

export function truncateRecsInBytes(bytes: number): number {
  return Math.max(0, Math.floor((bytes - TRUNCATE_LOG_RECS_OFFSET) / TRUNCATE_REC_SIZE));
}

export function decodeTruncateLog(buf: Buffer, base: number, maxRecs: number, what: string): TruncateLog {
  const hdr = decodeFields(TRUNCATE_LOG, buf, base, what);
  if (hdr.tl_count > maxRecs) throw new FormatError(`${what}: tl_count ${hdr.tl_count} > ${maxRecs} records that fit`);
  if (hdr.tl_used > hdr.tl_count) throw new FormatError(`${what}: tl_used ${hdr.tl_used} > tl_count ${hdr.tl_count}`);
  const tl_recs: TruncateRec[] = [];
  for (let i = 0; i < hdr.tl_count; i++) {
    tl_recs.push(decodeFields(TRUNCATE_REC, buf, base + TRUNCATE_LOG_RECS_OFFSET + i * TRUNCATE_REC_SIZE, `${what}.tl_recs[${i}]`));
  }
  return { ...hdr, tl_recs };
}

/** Returns bytes written. */
export function encodeTruncateLog(tl: TruncateLog, buf: Buffer, base: number, what = 'truncate log'): number {
  if (tl.tl_used > tl.tl_count || tl.tl_recs.length > tl.tl_count) throw new RangeError(`${what}: tl_used ${tl.tl_used} > tl_count ${tl.tl_count}`);
  encodeFields(TRUNCATE_LOG, tl, buf, base, what);
  for (let i = 0; i < tl.tl_count; i++) {
    const off = base + TRUNCATE_LOG_RECS_OFFSET + i * TRUNCATE_REC_SIZE;
    const rec = tl.tl_recs[i];
    if (rec) encodeFields(TRUNCATE_REC, rec, buf, off, `${what}.tl_recs[${i}]`);
    else buf.fill(0, off, off + TRUNCATE_REC_SIZE);
  }
  return TRUNCATE_LOG_RECS_OFFSET + tl.tl_count * TRUNCATE_REC_SIZE;
}
