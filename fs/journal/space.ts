/**
 * A slot's journal file as JBD2 sees it: a circular log of journal blocks
 * numbered from 0 (block 0 holds the journal superblock), each mapped through
 * the journal inode's extents to a device block.
 *
 * The journal file is preallocated by mkfs and never changes size while
 * mounted, so its map is read once. Journal blocks are written here directly,
 * never through the metadata block cache: they are not metadata of the
 * volume, and the home copies of the blocks they carry stay cached as they are.
 */
import type { VolumeContext } from '../context';
import type { Dinode } from '../format/dinode';
import { leafExtents, type Extent } from '../extentMap';
import {
  decodeJournalSuperblock, encodeJournalSuperblock, type JournalSuperblock,
  JBD2_FEATURE_INCOMPAT_REVOKE, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3,
  JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT, JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_SUPERBLOCK_V2,
} from '../format/jbd2';
import { FsError } from '../errors';
import { FormatError } from '../format/layout';

export class JournalSpace {
  private constructor(
    private readonly ctx: Pick<VolumeContext, 'device' | 'geo'>,
    /** The journal's slot, for messages. */
    readonly slot: number,
    /** Block number of the journal inode. */
    readonly ino: number,
    private readonly extents: readonly Extent[],
    /** Journal length in blocks (what the extents map). */
    readonly blocks: number,
  ) {}

  /** The map of the journal file whose inode is `di` (at block `ino`). */
  static async open(ctx: VolumeContext, slot: number, ino: number, di: Dinode): Promise<JournalSpace> {
    if (!di.list) throw new FsError('EIO', `journal of slot ${slot} (inode ${ino}) has no extent list`);
    const extents = await leafExtents(ctx, di.list, `journal of slot ${slot} (inode ${ino})`);
    const bpc = ctx.geo.bpc;
    let blocks = 0;
    for (const e of extents) {
      if (e.cpos * bpc !== blocks) throw new FsError('EIO', `journal of slot ${slot} (inode ${ino}) has a hole at cluster ${blocks / bpc}`);
      blocks += e.clusters * bpc;
    }
    const sizeBlocks = Math.floor(di.i_size / ctx.geo.blockSize);
    if (sizeBlocks < blocks) blocks = sizeBlocks;
    if (blocks < 2) throw new FsError('EIO', `journal of slot ${slot} (inode ${ino}) is ${blocks} block(s) long`);
    return new JournalSpace(ctx, slot, ino, extents, blocks);
  }

  get blockSize(): number {
    return this.ctx.geo.blockSize;
  }

  /** The device block holding journal block `lblk`. */
  physical(lblk: number): number {
    if (!(lblk >= 0 && lblk < this.blocks)) throw new FsError('EIO', `journal of slot ${this.slot}: block ${lblk} is outside its ${this.blocks} blocks`);
    const bpc = this.ctx.geo.bpc;
    const cpos = Math.floor(lblk / bpc);
    let lo = 0;
    let hi = this.extents.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.extents[mid];
      if (cpos < e.cpos) hi = mid - 1;
      else if (cpos >= e.cpos + e.clusters) lo = mid + 1;
      else return e.blkno + (lblk - e.cpos * bpc);
    }
    throw new FsError('EIO', `journal of slot ${this.slot}: block ${lblk} is not mapped`);
  }

  read(lblk: number): Promise<Buffer> {
    return this.ctx.device.read(this.physical(lblk) * this.blockSize, this.blockSize);
  }

  write(lblk: number, buf: Buffer): Promise<void> {
    return this.ctx.device.write(buf, this.physical(lblk) * this.blockSize);
  }

  /**
   * Writes `bufs` to consecutive journal blocks from `lblk`, wrapping from the
   * end of the log (`last`, exclusive) to `first`: runs that are contiguous on
   * the device go out as one request.
   */
  async writeRun(lblk: number, bufs: readonly Buffer[], first: number, last: number): Promise<void> {
    const writes: Promise<void>[] = [];
    let i = 0;
    while (i < bufs.length) {
      const start = lblk;
      const phys = this.physical(start);
      let n = 1;
      lblk = lblk + 1 >= last ? first : lblk + 1;
      while (i + n < bufs.length && lblk !== first && this.physical(lblk) === phys + n) {
        n++;
        lblk = lblk + 1 >= last ? first : lblk + 1;
      }
      writes.push(this.ctx.device.writev(bufs.slice(i, i + n), phys * this.blockSize));
      i += n;
    }
    await Promise.all(writes);
  }

  async readSuperblock(): Promise<JournalSuperblock> {
    const what = `journal superblock of slot ${this.slot} (block ${this.physical(0)})`;
    let jsb: JournalSuperblock;
    try {
      jsb = decodeJournalSuperblock(await this.read(0), what);
    } catch (err) {
      if (err instanceof FormatError) throw new FsError('EIO', err.message);
      throw err;
    }
    if (jsb.s_blocksize !== this.blockSize) throw new FsError('EIO', `${what}: s_blocksize ${jsb.s_blocksize} is not the volume's ${this.blockSize}`);
    if (jsb.s_maxlen > this.blocks || jsb.s_maxlen < 2) throw new FsError('EIO', `${what}: s_maxlen ${jsb.s_maxlen} does not fit the ${this.blocks}-block journal file`);
    if (jsb.s_first < 1 || jsb.s_first >= jsb.s_maxlen) throw new FsError('EIO', `${what}: s_first ${jsb.s_first} is outside 1..${jsb.s_maxlen - 1}`);
    // s_start is not checked here: mkfs.ocfs2 leaves 1 in clean journals (below s_first on small blocks), and
    // only a journal whose inode is marked dirty is ever replayed from it (replay checks it then).
    return jsb;
  }

  async writeSuperblock(jsb: JournalSuperblock): Promise<void> {
    const buf = Buffer.alloc(this.blockSize);
    encodeJournalSuperblock(jsb, buf);
    await this.write(0, buf);
  }
}

/** The features this code reads (replay) and writes (the log): anything else is refused. */
export const READABLE_INCOMPAT = JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT |
  JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT;
export const WRITABLE_INCOMPAT = JBD2_FEATURE_INCOMPAT_REVOKE | JBD2_FEATURE_INCOMPAT_64BIT;
export const WRITABLE_COMPAT = 0;

/** Why this journal cannot be written by o2fuse (null: it can). */
export function unwritableBecause(jsb: JournalSuperblock): string | null {
  if (jsb.h_blocktype !== JBD2_SUPERBLOCK_V2) return `it is a version 1 journal superblock`;
  const inc = jsb.s_feature_incompat & ~WRITABLE_INCOMPAT;
  if (inc) return `it has JBD2 incompat feature bits 0x${inc.toString(16)} this writer does not produce`;
  const compat = jsb.s_feature_compat & ~WRITABLE_COMPAT & JBD2_FEATURE_COMPAT_CHECKSUM;
  if (compat) return 'it asks for JBD2 v1 commit checksums, which this writer does not produce';
  if (jsb.s_feature_ro_compat) return `it has JBD2 ro-compat feature bits 0x${jsb.s_feature_ro_compat.toString(16)}`;
  return null;
}
