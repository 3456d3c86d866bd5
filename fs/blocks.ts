/**
 * Validated metadata reads: one reader per block kind, each with its named
 * validator run once as the block enters the cache (ocfs2_read_inode_block →
 * ocfs2_validate_inode_block in the kernel). Metaecc is checked first; a
 * single flipped bit is corrected in the cached copy, anything worse is EIO
 * with a message naming the block. Fix corruption handling here, not in callers.
 */
import type { VolumeContext } from './context';
import { decodeDinode, DINODE_CHECK_OFFSET, type Dinode } from './format/dinode';
import { decodeExtentBlock, EXTENT_BLOCK_CHECK_OFFSET, type ExtentBlock } from './format/extent';
import { decodeGroupDesc, GROUP_DESC_CHECK_OFFSET, type GroupDesc } from './format/group';
import { decodeDirBlock, dirBlockCheckOffset, type DirBlock } from './format/dirent';
import { verifyBlockCheck } from './format/blockcheck';
import { FormatError } from './format/layout';
import { FsError } from './errors';

function eccCheck(ctx: VolumeContext, block: Buffer, blkno: number, checkOffset: number, what: string): void {
  if (!ctx.features.metaEcc) return;
  const r = verifyBlockCheck(block, checkOffset);
  if (r === 'bad') throw new FormatError(`${what} ${blkno}: metaecc checksum mismatch`);
}

/** Runs `decode` as the validator and returns its result; FormatErrors become FsError EIO naming the block. */
async function readAs<T>(ctx: VolumeContext, blkno: number, kind: string, checkOffset: number,
  decode: (block: Buffer) => T): Promise<{ block: Buffer; value: T }> {
  if (!Number.isSafeInteger(blkno) || blkno <= 0 || (blkno + 1) * ctx.geo.blockSize > ctx.device.size) {
    throw new FsError('EIO', `${kind} block number ${blkno} is outside the volume`);
  }
  try {
    let value: T | undefined;
    const block = await ctx.cache.read(blkno, kind, (b) => {
      eccCheck(ctx, b, blkno, checkOffset, kind);
      value = decode(b);
    });
    return { block, value: value ?? decode(block) };
  } catch (err) {
    if (err instanceof FormatError) throw new FsError('EIO', err.message);
    throw err;
  }
}

export async function readInodeBlock(ctx: VolumeContext, blkno: number): Promise<{ block: Buffer; di: Dinode }> {
  const { block, value } = await readAs(ctx, blkno, 'inode', DINODE_CHECK_OFFSET,
    (b) => decodeDinode(b, blkno, { fsGeneration: ctx.fsGeneration }));
  return { block, di: value };
}

export async function readExtentBlock(ctx: VolumeContext, blkno: number): Promise<ExtentBlock> {
  return (await readAs(ctx, blkno, 'extent block', EXTENT_BLOCK_CHECK_OFFSET,
    (b) => decodeExtentBlock(b, { expectedBlkno: blkno, fsGeneration: ctx.fsGeneration }))).value;
}

export async function readGroupDesc(ctx: VolumeContext, blkno: number, parent?: number): Promise<{ block: Buffer; gd: GroupDesc }> {
  const { block, value } = await readAs(ctx, blkno, 'group descriptor', GROUP_DESC_CHECK_OFFSET,
    (b) => decodeGroupDesc(b, { expectedBlkno: blkno, fsGeneration: ctx.fsGeneration, parentBlkno: parent }));
  return { block, gd: value };
}

/** A directory data block: records (and trailer where the volume has them) checked as a whole on fill. */
export async function readDirBlock(ctx: VolumeContext, blkno: number, dirIno: number): Promise<{ block: Buffer; db: DirBlock }> {
  const { block, value } = await readAs(ctx, blkno, 'dir block', dirBlockCheckOffset(ctx.geo.blockSize),
    (b) => decodeDirBlock(b, { blkno, hasTrailer: ctx.features.dirTrailers, parentBlkno: dirIno }));
  return { block, db: value };
}
