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
import { decodeDirBlock, decodeDirTrailer, dirBlockCheckOffset, type DirBlock } from './format/dirent';
import { decodeDxLeaf, decodeDxRoot, DX_LEAF_CHECK_OFFSET, DX_ROOT, DX_ROOT_CHECK_OFFSET } from './format/dx';
import {
  decodeXattrBlock, decodeXattrBucket, OCFS2_XATTR_BUCKET_SIZE, XATTR_BLOCK_CHECK_OFFSET, XATTR_HEADER_CHECK_OFFSET,
  type XattrBlock, type XattrRegion,
} from './format/xattr';
import { decodeRefcountBlock, REFCOUNT_BLOCK_CHECK_OFFSET, type RefcountBlock } from './format/refcount';
import { verifyBlockCheck } from './format/blockcheck';
import { FormatError } from './format/layout';
import { FsError } from './errors';

function eccCheck(ctx: VolumeContext, block: Buffer, blkno: number, checkOffset: number, what: string): void {
  if (!ctx.features.metaEcc) return;
  const r = verifyBlockCheck(block, checkOffset);
  if (r === 'bad') throw new FormatError(`${what} ${blkno}: metaecc checksum mismatch`);
}

/** A FormatError as the FsError EIO callers see; anything else as it is. */
export function asEio(err: unknown): unknown {
  return err instanceof FormatError ? new FsError('EIO', err.message) : err;
}

/**
 * Reads a block through the cache, running `decode` as its validator the
 * first time this copy is served as `kind`; `value` is what that run decoded
 * (undefined when the copy was validated before). FormatErrors become FsError
 * EIO naming the block.
 */
async function validated<T>(ctx: VolumeContext, blkno: number, kind: string, checkOffset: number,
  decode: (block: Buffer) => T): Promise<{ block: Buffer; value: T | undefined }> {
  if (!Number.isSafeInteger(blkno) || blkno <= 0 || (blkno + 1) * ctx.geo.blockSize > ctx.device.size) {
    throw new FsError('EIO', `${kind} block number ${blkno} is outside the volume`);
  }
  try {
    let value: T | undefined;
    const block = await ctx.cache.read(blkno, kind, (b) => {
      eccCheck(ctx, b, blkno, checkOffset, kind);
      value = decode(b);
    });
    return { block, value };
  } catch (err) {
    throw asEio(err);
  }
}

/** Like `validated`, and the decoded value whether or not validation ran now. */
async function readAs<T>(ctx: VolumeContext, blkno: number, kind: string, checkOffset: number,
  decode: (block: Buffer) => T): Promise<{ block: Buffer; value: T }> {
  const { block, value } = await validated(ctx, blkno, kind, checkOffset, decode);
  if (value !== undefined) return { block, value };
  try {
    return { block, value: decode(block) };
  } catch (err) {
    throw asEio(err);
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

/** An inode's xattr block (signature, own block number and generation checked, as ocfs2_validate_xattr_block). */
export async function readXattrBlock(ctx: VolumeContext, blkno: number): Promise<XattrBlock> {
  return (await readAs(ctx, blkno, 'xattr block', XATTR_BLOCK_CHECK_OFFSET,
    (b) => decodeXattrBlock(b, { expectedBlkno: blkno, fsGeneration: ctx.fsGeneration }))).value;
}

/**
 * The xattr bucket at `blkno` (OCFS2_XATTR_BUCKET_SIZE bytes, several blocks when they are smaller) of `owner`, metaecc
 * checked over the whole bucket. Read from the device, not through the block cache: nothing in o2fuse writes
 * buckets, and the one reader frees them.
 */
export async function readXattrBucket(ctx: VolumeContext, blkno: number, owner: string): Promise<XattrRegion> {
  const bucket = await ctx.device.read(blkno * ctx.geo.blockSize, OCFS2_XATTR_BUCKET_SIZE);
  try {
    eccCheck(ctx, bucket, blkno, XATTR_HEADER_CHECK_OFFSET, 'xattr bucket');
    return decodeXattrBucket(bucket, `xattr bucket ${blkno} of ${owner}`);
  } catch (err) {
    throw asEio(err);
  }
}

/** The root or a leaf of a refcount tree (signature, own block number and generation checked). */
export async function readRefcountBlock(ctx: VolumeContext, blkno: number): Promise<RefcountBlock> {
  return (await readAs(ctx, blkno, 'refcount block', REFCOUNT_BLOCK_CHECK_OFFSET,
    (b) => decodeRefcountBlock(b, { expectedBlkno: blkno, fsGeneration: ctx.fsGeneration }))).value;
}

/** The validated bytes of an extent block (checked once per cached copy), for walking its records in place. */
export async function readExtentBlockBytes(ctx: VolumeContext, blkno: number): Promise<Buffer> {
  return (await validated(ctx, blkno, 'extent block', EXTENT_BLOCK_CHECK_OFFSET,
    (b) => decodeExtentBlock(b, { expectedBlkno: blkno, fsGeneration: ctx.fsGeneration }))).block;
}

export async function readGroupDesc(ctx: VolumeContext, blkno: number, parent?: number): Promise<{ block: Buffer; gd: GroupDesc }> {
  const { block, value } = await readAs(ctx, blkno, 'group descriptor', GROUP_DESC_CHECK_OFFSET,
    (b) => decodeGroupDesc(b, { expectedBlkno: blkno, fsGeneration: ctx.fsGeneration, parentBlkno: parent }));
  return { block, gd: value };
}

function dirBlockDecoder(ctx: VolumeContext, blkno: number, dirIno: number): (b: Buffer) => DirBlock {
  return (b) => decodeDirBlock(b, { blkno, hasTrailer: ctx.features.dirTrailers, parentBlkno: dirIno });
}

/** A directory data block: records (and trailer where the volume has them) checked as a whole on fill. */
export async function readDirBlock(ctx: VolumeContext, blkno: number, dirIno: number): Promise<{ block: Buffer; db: DirBlock }> {
  const { block, value } = await readAs(ctx, blkno, 'dir block', dirBlockCheckOffset(ctx.geo.blockSize),
    dirBlockDecoder(ctx, blkno, dirIno));
  return { block, db: value };
}

/**
 * The validated bytes of a dir block, decoded only to validate them (once per
 * cached copy), for walking its records in place: they tile the area before
 * the trailer and each passed ocfs2_check_dir_entry's rules.
 */
export async function readDirBlockBytes(ctx: VolumeContext, blkno: number, dirIno: number): Promise<Buffer> {
  const { block, value } = await validated(ctx, blkno, 'dir block', dirBlockCheckOffset(ctx.geo.blockSize),
    dirBlockDecoder(ctx, blkno, dirIno));
  // Validated earlier, perhaps for another directory: the trailer must still name this one as its owner.
  if (value === undefined && ctx.features.dirTrailers) {
    try {
      decodeDirTrailer(block, blkno, dirIno);
    } catch (err) {
      throw asEio(err);
    }
  }
  return block;
}

/**
 * The validated bytes of a directory's dx root (signature, own block number,
 * generation and owning directory checked once per cached copy), for the
 * index code to edit in place.
 */
export async function readDxRootBytes(ctx: VolumeContext, blkno: number, dirIno: number): Promise<Buffer> {
  const { block, value } = await validated(ctx, blkno, 'dx root', DX_ROOT_CHECK_OFFSET,
    (b) => decodeDxRoot(b, { expectedBlkno: blkno, fsGeneration: ctx.fsGeneration, dirBlkno: dirIno }));
  return value === undefined ? dxRootOfDir(block, blkno, dirIno) : block;
}

/** A dx root validated earlier (perhaps for another directory) must still belong to this one. */
function dxRootOfDir(block: Buffer, blkno: number, dirIno: number): Buffer {
  if (Number(block.readBigUInt64LE(DX_ROOT.dr_dir_blkno[0])) !== dirIno) {
    throw new FsError('EIO', `dx root ${blkno}: dr_dir_blkno is not directory ${dirIno}`);
  }
  return block;
}

/**
 * readDxRootBytes without a promise when the cached copy was validated
 * before (undefined otherwise: read it): every add and removal in an
 * indexed directory takes its root.
 */
export function peekDxRootBytes(ctx: VolumeContext, blkno: number, dirIno: number): Buffer | undefined {
  const block = ctx.cache.peekValidated(blkno, 'dx root');
  return block && dxRootOfDir(block, blkno, dirIno);
}

/** The validated bytes of a dx leaf (signature, own block number and generation checked once per cached copy). */
export async function readDxLeafBytes(ctx: VolumeContext, blkno: number): Promise<Buffer> {
  return (await validated(ctx, blkno, 'dx leaf', DX_LEAF_CHECK_OFFSET,
    (b) => decodeDxLeaf(b, { expectedBlkno: blkno, fsGeneration: ctx.fsGeneration }))).block;
}

/** readDxLeafBytes without a promise when the cached copy was validated before (undefined otherwise). */
export function peekDxLeafBytes(ctx: VolumeContext, blkno: number): Buffer | undefined {
  return ctx.cache.peekValidated(blkno, 'dx leaf');
}
