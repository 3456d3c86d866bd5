/**
 * The damaged-image corpus, made at test time: a fresh mkfs.ocfs2 volume populated by
 * o2tool (libocfs2), its interesting blocks located with debugfs.ocfs2 and our own
 * decoders, then one corruption per case written into a copy of the image with plain
 * node fs calls (no engine encoder makes the damage; the engine's ECC routine is used only
 * to keep a block ECC-valid when a case on a metaecc volume is not about the check).
 *
 * Cases are named for the fsck.ocfs2 check (the fswreck catalogue, fsck_type.h) that
 * describes the damage where there is one. Each says what a mount must do:
 *   refuse      the mount fails, with an errno and a message naming what and where;
 *   rwRefuse    a read-write mount fails (message), a read-only one works;
 *   damagedOp   the mount works, one operation touching the damage fails (EIO, message),
 *               and fails again when retried (a bad block is not cached as good); a
 *               change that fails this way writes nothing (fsck.ocfs2 -fn finds after
 *               the mount what it found before);
 *   corrected   (metaecc, one flipped bit) the operation succeeds with the right answer.
 * In every case the rest of the tree stays readable (`intact` paths).
 *
 * Base volumes (1K blocks, 4K clusters, 128 MiB):
 *   default   mkfs.ocfs2's default features (indexed-dirs: dir blocks carry trailers)
 *   metaecc   default + metaecc (every metadata block carries crc32 + hamming ECC)
 *   writable  default minus indexed-dirs (a volume o2fuse mounts read-write)
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { statPath } from '../lib/debugfs';
import { populate, type Spec, expectedContent } from '../lib/oracle';
import { runOk } from '../lib/exec';
import { makeImage, type TestLike } from '../lib/volume';
import {
  CHECK_OFFSET, computeBlockCheck, decodeDinode, dinodeId2Offset, dirBlockCheckOffsetOf, INLINE_DATA_DATA_OFFSET,
} from '../../fs/format';
import { extentRecsPerInode, fragmentedRanges } from '../read/readSpec';

export const BLOCK_SIZE = 1024;
export const CLUSTER_SIZE = 4096;
export const VOLUME_BYTES = 128 * 1024 * 1024;

export type BaseKind = 'default' | 'metaecc' | 'writable';

const FEATURES: Record<BaseKind, string | undefined> = {
  default: undefined,
  metaecc: 'metaecc',
  writable: 'noindexed-dirs',
};

/** Leaf records one more than fit in the inode: /frag gets an extent tree of depth 1. */
const FRAG_RANGES = extentRecsPerInode(BLOCK_SIZE) + 5;

export const SPEC: Spec = [
  { kind: 'mkdir', path: '/dir' },
  { kind: 'file', path: '/dir/victim', size: 5000, seed: 11 },
  { kind: 'file', path: '/dir/sibling', size: 3000, seed: 12 },
  { kind: 'file', path: '/keep', size: 10000, seed: 13 },
  { kind: 'sparse', path: '/frag', size: 2 * FRAG_RANGES * CLUSTER_SIZE, seed: 14, ranges: fragmentedRanges(CLUSTER_SIZE, FRAG_RANGES) },
  { kind: 'dir', path: '/bigdir', count: 200 },
  { kind: 'mkdir', path: '/small' },
  { kind: 'file', path: '/small/a', size: 10, seed: 15 },
  { kind: 'file', path: '/small/b', size: 20, seed: 16 },
  { kind: 'symlink', path: '/link', target: 'keep' },
  { kind: 'inline', path: '/inl', size: 100, seed: 17 },
];

/** The content each file of SPEC must read back as. */
export function contentOf(p: string): Buffer {
  const e = SPEC.find((x) => x.path === p);
  if (e && (e.kind === 'file' || e.kind === 'sparse' || e.kind === 'inline' || e.kind === 'unwritten')) return expectedContent(e);
  if (p.startsWith('/bigdir/')) return Buffer.alloc(0);
  throw new Error(`no content for ${p}`);
}

/** Block numbers of the structures the cases damage, found on the pristine image. */
export interface Located {
  /** /dir (an inline directory) and /dir/victim's inode. */
  dirInode: number;
  victimInode: number;
  /** /inl: an inline-data file. */
  inlInode: number;
  /** /frag's inode and its one extent block (depth 1). */
  fragInode: number;
  fragExtentBlock: number;
  /** /bigdir's inode, and its first data block (holds ".", ".." and the first names). */
  bigdirInode: number;
  bigdirBlock: number;
  /** /bigdir's dx root (i_dx_root; 0 on a volume without indexed-dirs). */
  bigdirDxRoot: number;
  /** /small: an inline directory. */
  smallInode: number;
  journal0Inode: number;
  slotMapBlock: number;
  /** The first group descriptor of chain 0 of the global bitmap and of inode_alloc:0000. */
  globalBitmapGroup: number;
  inodeAllocGroup: number;
  /** First data block of /keep (for the truncated image). */
  keepDataBlock: number;
  /** i_fs_generation of the volume. */
  fsGeneration: number;
}

export interface Base {
  kind: BaseKind;
  image: string;
  dir: string;
  at: Located;
  /** The volume carries metaecc: a corruption recomputes the check unless it means to break it. */
  metaEcc: boolean;
}

export async function readBlock(image: string, blkno: number, bs = BLOCK_SIZE): Promise<Buffer> {
  const fh = await fs.open(image, 'r');
  try {
    const buf = Buffer.alloc(bs);
    const { bytesRead } = await fh.read(buf, 0, bs, blkno * bs);
    if (bytesRead !== bs) throw new Error(`${image}: short read of block ${blkno}`);
    return buf;
  } finally {
    await fh.close();
  }
}

export async function writeBlock(image: string, blkno: number, buf: Buffer): Promise<void> {
  const fh = await fs.open(image, 'r+');
  try {
    await fh.write(buf, 0, buf.length, blkno * buf.length);
  } finally {
    await fh.close();
  }
}

async function inodeOf(image: string, filespec: string): Promise<number> {
  return (await statPath(image, filespec)).blkno;
}

async function chainHead(image: string, ino: number): Promise<number> {
  const di = decodeDinode(await readBlock(image, ino), ino);
  if (!di.chain || di.chain.cl_next_free_rec < 1) throw new Error(`inode ${ino} has no chains`);
  return di.chain.cl_recs[0].c_blkno;
}

export async function locate(image: string): Promise<Located> {
  const fragInode = await inodeOf(image, '/frag');
  const frag = decodeDinode(await readBlock(image, fragInode), fragInode);
  if (!frag.list || frag.list.l_tree_depth !== 1) throw new Error(`/frag: expected an extent tree of depth 1, got ${frag.list?.l_tree_depth}`);
  const bigdir = await statPath(image, '/bigdir');
  if (!bigdir.extents.length) throw new Error('/bigdir has no extents (inline?)');
  const small = await statPath(image, '/small');
  if (!(small.dynFeatures & 0x1)) throw new Error('/small is not an inline directory');
  const slotMap = await statPath(image, '//slot_map');
  const keep = await statPath(image, '/keep');
  const sb = decodeDinode(await readBlock(image, 2), 2);
  return {
    dirInode: await inodeOf(image, '/dir'),
    victimInode: await inodeOf(image, '/dir/victim'),
    inlInode: await inodeOf(image, '/inl'),
    fragInode,
    fragExtentBlock: frag.list.l_recs[0].e_blkno,
    bigdirInode: bigdir.blkno,
    bigdirBlock: bigdir.extents[0].blkno,
    bigdirDxRoot: decodeDinode(await readBlock(image, bigdir.blkno), bigdir.blkno).i_dx_root,
    smallInode: small.blkno,
    journal0Inode: await inodeOf(image, '//journal:0000'),
    slotMapBlock: slotMap.extents[0].blkno,
    globalBitmapGroup: await chainHead(image, await inodeOf(image, '//global_bitmap')),
    inodeAllocGroup: await chainHead(image, await inodeOf(image, '//inode_alloc:0000')),
    keepDataBlock: keep.extents[0].blkno,
    fsGeneration: sb.i_fs_generation,
  };
}

/** Makes and populates a base volume, and finds its structures. */
export async function makeBase(t: TestLike, kind: BaseKind): Promise<Base> {
  const image = await makeImage(t, { blockSize: BLOCK_SIZE, clusterSize: CLUSTER_SIZE, sizeBytes: VOLUME_BYTES, features: FEATURES[kind], name: `${kind}.img` });
  await populate(image, SPEC);
  return { kind, image, dir: path.dirname(image), at: await locate(image), metaEcc: kind === 'metaecc' };
}

/** A sparse copy of a base image for one case. */
export async function copyOf(base: Base, name: string): Promise<string> {
  const target = path.join(base.dir, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.img`);
  await runOk('cp', ['--sparse=always', base.image, target]);
  return target;
}

/** Where the block check lives in each kind of block. */
export const CHECK_AT = {
  inode: CHECK_OFFSET.dinode,
  extentBlock: CHECK_OFFSET.extentBlock,
  groupDesc: CHECK_OFFSET.groupDesc,
  dirBlock: dirBlockCheckOffsetOf(BLOCK_SIZE),
  dxRoot: CHECK_OFFSET.dxRoot,
  dxLeaf: CHECK_OFFSET.dxLeaf,
} as const;

/**
 * Reads block `blkno`, lets `edit` change it, and writes it back. On a metaecc volume the
 * check at `checkAt` is recomputed afterwards (so the block is wrong only where `edit` made
 * it wrong), unless `keepCheck` (the case is about the check itself) or checkAt is null.
 */
export async function patchBlock(image: string, blkno: number, edit: (b: Buffer) => void,
  o: { metaEcc: boolean; checkAt: number | null; keepCheck?: boolean }): Promise<void> {
  const buf = await readBlock(image, blkno);
  edit(buf);
  if (o.metaEcc && o.checkAt !== null && !o.keepCheck) computeBlockCheck(buf, o.checkAt);
  await writeBlock(image, blkno, buf);
}

/** Byte offsets of fields used by the cases (ocfs2_fs.h). */
export const OFF = {
  i_signature: 0x00,
  i_flags: 0x2c,
  i_size: 0x20,
  i_blkno: 0x50,
  i_fs_generation: 0x60,
  ij_flags: 0xb8,
  id2: dinodeId2Offset,
  /** The extent list of an inode's id2, and its records. */
  i_list_depth: dinodeId2Offset + 0x00,
  inlineData: dinodeId2Offset + INLINE_DATA_DATA_OFFSET,
  /** Superblock fields: id2 of the superblock inode. */
  s_feature_incompat: dinodeId2Offset + 0x20,
  s_feature_ro_compat: dinodeId2Offset + 0x24,
  s_root_blkno: dinodeId2Offset + 0x28,
  s_blocksize_bits: dinodeId2Offset + 0x38,
  /** Extent block: h_blkno, then h_list at 0x30. */
  h_signature: 0x00,
  h_blkno: 0x18,
  h_list: 0x30,
  /** Group descriptor. */
  bg_signature: 0x00,
  bg_next_group: 0x18,
  /** struct ocfs2_extent_list header fields, relative to the list. */
  l_tree_depth: 0x00,
  l_count: 0x02,
  l_next_free_rec: 0x04,
  l_recs: 0x10,
  /** struct ocfs2_extent_rec fields, relative to the record. */
  e_blkno: 0x08,
  /** struct ocfs2_dir_entry fields. */
  rec_len: 0x08,
  /** struct ocfs2_dx_root_block: dr_flags, dr_num_entries, and the extent list of its leaves (dr_list). */
  dr_flags: 0x2c,
  dr_num_entries: 0x38,
  dr_list: 0xc0,
  /** struct ocfs2_extent_rec: e_leaf_clusters. */
  e_leaf_clusters: 0x04,
  /** struct ocfs2_dx_leaf's entry list (dl_list), its de_num_used and entries, relative to the list. */
  dl_list: 0x28,
  de_num_used: 0x06,
  de_entries: 0x08,
  /** struct ocfs2_dx_entry: 16 bytes, the dir block its name lives in at dx_dirent_blk. */
  dx_entry_size: 0x10,
  dx_dirent_blk: 0x08,
} as const;

export function writeU64(buf: Buffer, off: number, v: number): void {
  buf.writeBigUInt64LE(BigInt(v), off);
}

/** Byte offset in an inline directory's inode block of the n-th record (0 = "."). */
export function inlineDirRecordOffset(block: Buffer, n: number): number {
  let off = OFF.inlineData;
  for (let i = 0; i < n; i++) off += block.readUInt16LE(off + OFF.rec_len);
  return off;
}
