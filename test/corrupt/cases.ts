/**
 * The catalogue: one corruption per case, what it damages, and what a mount must do
 * (see corpus.ts for the kinds of expectation). Names carry the fsck.ocfs2 / fswreck
 * check code (fsck_type.h) where one describes the damage.
 */
import * as fs from 'node:fs/promises';
import type { Volume } from '../../fs/volume';
import { OCFS2_DX_FLAG_INLINE } from '../../fs/format';
import {
  type Base, type BaseKind, type Located, BLOCK_SIZE, CHECK_AT, CLUSTER_SIZE, OFF, contentOf, inlineDirRecordOffset, patchBlock,
  readBlock, writeBlock, writeU64,
} from './corpus';

export type Expect =
  | { kind: 'refuse'; errno: string; message: (at: Located) => RegExp }
  | { kind: 'rwRefuse'; errno: string; message: (at: Located) => RegExp }
  | {
    kind: 'damagedOp';
    /** What the operation is, for messages ("read /frag"). */
    what: string;
    op: (vol: Volume) => Promise<unknown>;
    errno: string;
    message: (at: Located) => RegExp;
    /** The operation needs a read-write mount. */
    rw?: boolean;
  }
  | { kind: 'corrected'; what: string; op: (vol: Volume) => Promise<Buffer | string>; want: () => Buffer | string };

export interface CorruptCase {
  name: string;
  /** fsck.ocfs2 check code (fswreck catalogue) for the damage, where there is one. */
  fsckCode?: string;
  base: BaseKind;
  damage: (image: string, base: Base) => Promise<void>;
  expect: Expect;
  /** Paths the damage makes unreachable (prefix match); everything else in INTACT must still read. */
  damaged?: string[];
  /** Why fsck.ocfs2 -fn (1.8.7) is not expected to complain about this damage (default: it must). */
  fsckSilent?: string;
}

/** What must stay readable after any damage (minus each case's `damaged`). */
export const INTACT = ['/keep', '/link', '/dir/sibling', '/small/a', '/bigdir/f00150', '/frag', '/inl'];

export async function resolve(vol: Volume, p: string): Promise<number> {
  let ino = vol.rootIno;
  for (const part of p.split('/').filter(Boolean)) ino = (await vol.lookup(ino, Buffer.from(part))).ino;
  return ino;
}

export async function readPath(vol: Volume, p: string): Promise<Buffer> {
  const ino = await resolve(vol, p);
  const { size } = await vol.getattr(ino);
  const fh = await vol.open(ino, 0);
  try {
    return await vol.read(ino, fh, 0, size);
  } finally {
    await vol.release(ino, fh);
  }
}

const UNKNOWN_INCOMPAT = 0x10000;
const UNKNOWN_RO_COMPAT = 0x8;

const sb = (edit: (b: Buffer) => void, keepCheck = false) => (image: string, base: Base) =>
  patchBlock(image, 2, edit, { metaEcc: base.metaEcc, checkAt: CHECK_AT.inode, keepCheck });
const inode = (which: (at: Located) => number, edit: (b: Buffer, at: Located) => void, keepCheck = false) => (image: string, base: Base) =>
  patchBlock(image, which(base.at), (b) => edit(b, base.at), { metaEcc: base.metaEcc, checkAt: CHECK_AT.inode, keepCheck });
const extentBlock = (edit: (b: Buffer, at: Located) => void, keepCheck = false) => (image: string, base: Base) =>
  patchBlock(image, base.at.fragExtentBlock, (b) => edit(b, base.at), { metaEcc: base.metaEcc, checkAt: CHECK_AT.extentBlock, keepCheck });
const dirBlock = (edit: (b: Buffer) => void, keepCheck = false) => (image: string, base: Base) =>
  patchBlock(image, base.at.bigdirBlock, edit, { metaEcc: base.metaEcc, checkAt: CHECK_AT.dirBlock, keepCheck });
const dxRoot = (edit: (b: Buffer) => void) => (image: string, base: Base) =>
  patchBlock(image, base.at.bigdirDxRoot, edit, { metaEcc: base.metaEcc, checkAt: CHECK_AT.dxRoot });
const group = (which: (at: Located) => number, edit: (b: Buffer, at: Located) => void) => (image: string, base: Base) =>
  patchBlock(image, which(base.at), (b) => edit(b, base.at), { metaEcc: base.metaEcc, checkAt: CHECK_AT.groupDesc });

const flipBits = (b: Buffer, ...bits: number[]) => {
  for (const bit of bits) b[bit >>> 3] ^= 1 << (bit & 7);
};

/** Second record of /bigdir's first block ("..") : offset of its rec_len. */
function secondRecLenOffset(b: Buffer): number {
  return b.readUInt16LE(OFF.rec_len) + OFF.rec_len;
}

/** Names /bigdir's first block must and must not hold for the index case below (its op and INTACT rely on it). */
const FIRST_BLOCK_NAME = 'f00000';
const LATER_BLOCK_NAMES = ['f00150', 'f00199'];

/**
 * Drops from /bigdir's index every entry that points to the directory's first block (dx_dirent_blk), as if the
 * index had lost them: the names stay in the block, where a scan finds them, but the index no longer knows them.
 * Walks the root's extent list (depth 0: one level of leaf clusters) with byte edits only.
 */
async function dropIndexEntriesOfFirstBlock(image: string, base: Base): Promise<void> {
  const { bigdirDxRoot, bigdirBlock } = base.at;
  const first = await readBlock(image, bigdirBlock);
  if (!first.includes(FIRST_BLOCK_NAME) || LATER_BLOCK_NAMES.some((n) => first.includes(n))) {
    throw new Error(`/bigdir's first block ${bigdirBlock} does not hold ${FIRST_BLOCK_NAME} alone of ${[FIRST_BLOCK_NAME, ...LATER_BLOCK_NAMES].join(' ')}`);
  }
  const root = await readBlock(image, bigdirDxRoot);
  if (root[OFF.dr_flags] & OCFS2_DX_FLAG_INLINE) throw new Error(`/bigdir's dx root ${bigdirDxRoot} is inline: expected leaves`);
  if (root.readUInt16LE(OFF.dr_list + OFF.l_tree_depth) !== 0) throw new Error(`/bigdir's dx root ${bigdirDxRoot}: expected a tree of depth 0`);
  let dropped = 0;
  const dropFrom = (leaf: Buffer) => {
    const list = OFF.dl_list;
    const used = leaf.readUInt16LE(list + OFF.de_num_used);
    const entry = (i: number) => list + OFF.de_entries + i * OFF.dx_entry_size;
    let kept = 0;
    for (let i = 0; i < used; i++) {
      if (leaf.readBigUInt64LE(entry(i) + OFF.dx_dirent_blk) === BigInt(bigdirBlock)) {
        dropped++;
        continue;
      }
      leaf.copy(leaf, entry(kept), entry(i), entry(i) + OFF.dx_entry_size);
      kept++;
    }
    leaf.fill(0, entry(kept), entry(used));
    leaf.writeUInt16LE(kept, list + OFF.de_num_used);
  };
  const recs = root.readUInt16LE(OFF.dr_list + OFF.l_next_free_rec);
  for (let r = 0; r < recs; r++) {
    const rec = OFF.dr_list + OFF.l_recs + r * 0x10;
    const start = Number(root.readBigUInt64LE(rec + OFF.e_blkno));
    const blocks = root.readUInt16LE(rec + OFF.e_leaf_clusters) * (CLUSTER_SIZE / BLOCK_SIZE);
    for (let blk = start; blk < start + blocks; blk++) {
      await patchBlock(image, blk, dropFrom, { metaEcc: base.metaEcc, checkAt: CHECK_AT.dxLeaf });
    }
  }
  if (dropped === 0) throw new Error(`/bigdir's index has no entry for its first block ${bigdirBlock}`);
  await patchBlock(image, bigdirDxRoot, (b) => b.writeUInt32LE(b.readUInt32LE(OFF.dr_num_entries) - dropped, OFF.dr_num_entries),
    { metaEcc: base.metaEcc, checkAt: CHECK_AT.dxRoot });
}

const readFrag = (vol: Volume) => readPath(vol, '/frag');
const readdirBigdir = async (vol: Volume) => vol.readdir(await resolve(vol, '/bigdir'));
const mknodInBigdir = async (vol: Volume) => vol.mknod(await resolve(vol, '/bigdir'), Buffer.from('new'), 0o100644, 0, { uid: 0, gid: 0 });
const unlinkFirstBlockName = async (vol: Volume) => vol.unlink(await resolve(vol, '/bigdir'), Buffer.from(FIRST_BLOCK_NAME));
const lookupVictim = async (vol: Volume) => vol.lookup(await resolve(vol, '/dir'), Buffer.from('victim'));

export const CASES: CorruptCase[] = [
  // ---- superblock ----
  {
    name: 'superblock signature destroyed',
    base: 'default',
    damage: sb((b) => b.write('XXXXXX', OFF.i_signature, 'latin1')),
    expect: { kind: 'refuse', errno: 'EINVAL', message: () => /no OCFS2 superblock found/ },
  },
  {
    name: 'superblock s_blocksize_bits says 2048 on a 1K-block volume',
    base: 'default',
    damage: sb((b) => b.writeUInt32LE(11, OFF.s_blocksize_bits)),
    expect: { kind: 'refuse', errno: 'EINVAL', message: () => /s_blocksize_bits says 2048 bytes but it was found with block size 1024/ },
  },
  {
    name: 'superblock carries an unknown incompat feature bit',
    base: 'default',
    damage: sb((b) => b.writeUInt32LE(b.readUInt32LE(OFF.s_feature_incompat) | UNKNOWN_INCOMPAT, OFF.s_feature_incompat)),
    expect: { kind: 'refuse', errno: 'EINVAL', message: () => /unsupported incompat feature\(s\): 0x10000/ },
  },
  {
    name: 'superblock carries an unknown ro-compat feature bit',
    base: 'writable',
    damage: sb((b) => b.writeUInt32LE(b.readUInt32LE(OFF.s_feature_ro_compat) | UNKNOWN_RO_COMPAT, OFF.s_feature_ro_compat)),
    expect: { kind: 'rwRefuse', errno: 'EROFS', message: () => /unsupported ro-compat feature\(s\): 0x8.*mount with -o ro/ },
    fsckSilent: 'fsck.ocfs2 1.8.7 does not check ro-compat bits',
  },
  {
    name: 'superblock metaecc: one flipped bit in s_root_blkno is corrected',
    fsckCode: 'INODE_BLOCK_ECC',
    base: 'metaecc',
    damage: sb((b) => flipBits(b, OFF.s_root_blkno * 8 + 1), true),
    expect: { kind: 'corrected', what: 'read /keep', op: (vol) => readPath(vol, '/keep'), want: () => contentOf('/keep') },
  },
  {
    name: 'superblock metaecc: two flipped bits in the label refuse the mount',
    fsckCode: 'INODE_BLOCK_ECC',
    base: 'metaecc',
    damage: sb((b) => flipBits(b, (OFF.id2 + 0x50) * 8 + 3, (OFF.id2 + 0x52) * 8 + 6), true),
    expect: { kind: 'refuse', errno: 'EINVAL', message: () => /metaecc/ },
  },

  // ---- inodes ----
  {
    name: 'inode signature of /dir/victim',
    base: 'default',
    damage: inode((at) => at.victimInode, (b) => b.write('INODX01', OFF.i_signature, 'latin1')),
    expect: { kind: 'damagedOp', what: 'lookup /dir/victim', op: lookupVictim, errno: 'EIO', message: (at) => new RegExp(`dinode ${at.victimInode}: i_signature`) },
  },
  {
    name: 'inode i_blkno of /dir/victim does not match its block',
    fsckCode: 'INODE_BLKNO',
    base: 'default',
    damage: inode((at) => at.victimInode, (b, at) => writeU64(b, OFF.i_blkno, at.victimInode + 1)),
    expect: { kind: 'damagedOp', what: 'lookup /dir/victim', op: lookupVictim, errno: 'EIO', message: (at) => new RegExp(`dinode ${at.victimInode}: i_blkno ${at.victimInode + 1} does not match`) },
  },
  {
    name: 'inode i_fs_generation of /dir/victim is another volume\'s',
    fsckCode: 'INODE_GEN',
    base: 'default',
    damage: inode((at) => at.victimInode, (b, at) => b.writeUInt32LE((at.fsGeneration ^ 0x5a5a) >>> 0, OFF.i_fs_generation)),
    expect: { kind: 'damagedOp', what: 'lookup /dir/victim', op: lookupVictim, errno: 'EIO', message: (at) => new RegExp(`dinode ${at.victimInode}: i_fs_generation`) },
  },
  {
    name: 'inode of /dir/victim lost OCFS2_VALID_FL (entry points to a free inode)',
    fsckCode: 'INODE_VALID_FLAG',
    base: 'default',
    damage: inode((at) => at.victimInode, (b) => b.writeUInt32LE(b.readUInt32LE(OFF.i_flags) & ~1, OFF.i_flags)),
    expect: { kind: 'damagedOp', what: 'lookup /dir/victim', op: lookupVictim, errno: 'EIO', message: (at) => new RegExp(`points to unused inode ${at.victimInode}`) },
  },
  {
    name: 'inode of /dir/victim: extent list l_count larger than the inode holds',
    fsckCode: 'EXTENT_LIST_COUNT',
    base: 'default',
    damage: inode((at) => at.victimInode, (b) => b.writeUInt16LE(1000, OFF.id2 + OFF.l_count)),
    expect: { kind: 'damagedOp', what: 'lookup /dir/victim', op: lookupVictim, errno: 'EIO', message: (at) => new RegExp(`dinode ${at.victimInode}: id2.i_list: l_count 1000 > \\d+ records that fit`) },
  },
  {
    name: 'directory entry of /dir/victim names an inode past the end of the volume',
    fsckCode: 'DIRENT_INODE_RANGE',
    base: 'default',
    damage: inode((at) => at.dirInode, (b) => writeU64(b, inlineDirRecordOffset(b, 2), 1 << 30)),
    expect: { kind: 'damagedOp', what: 'lookup /dir/<first name>', op: async (vol) => {
      const dir = await resolve(vol, '/dir');
      const first = (await vol.readdir(dir))[2];
      return vol.lookup(dir, first.name);
    }, errno: 'EIO', message: () => new RegExp(`inode block number ${1 << 30} is outside the volume`) },
    damaged: ['/dir/'],
  },
  {
    name: 'inline-data file /inl with i_size larger than its inline data',
    fsckCode: 'INODE_INLINE_SIZE',
    base: 'default',
    damage: inode((at) => at.inlInode, (b) => writeU64(b, OFF.i_size, 3000)),
    expect: { kind: 'damagedOp', what: 'read /inl', op: (vol) => readPath(vol, '/inl'), errno: 'EIO', message: (at) => new RegExp(`${at.inlInode}`) },
    damaged: ['/inl'],
  },
  {
    name: 'metaecc: one flipped bit in /dir/victim\'s i_size is corrected',
    fsckCode: 'INODE_BLOCK_ECC',
    base: 'metaecc',
    damage: inode((at) => at.victimInode, (b) => flipBits(b, OFF.i_size * 8 + 13), true),
    expect: { kind: 'corrected', what: 'read /dir/victim', op: (vol) => readPath(vol, '/dir/victim'), want: () => contentOf('/dir/victim') },
  },
  {
    name: 'metaecc: two flipped bits in /dir/victim\'s inode',
    fsckCode: 'INODE_BLOCK_ECC',
    base: 'metaecc',
    damage: inode((at) => at.victimInode, (b) => flipBits(b, OFF.i_size * 8 + 13, OFF.i_size * 8 + 2), true),
    expect: { kind: 'damagedOp', what: 'lookup /dir/victim', op: lookupVictim, errno: 'EIO', message: (at) => new RegExp(`inode ${at.victimInode}: metaecc`) },
    fsckSilent: 'fsck.ocfs2\'s inode scan does not verify metaecc, and the wrong i_size is legal on a sparse volume',
  },

  // ---- extent blocks ----
  {
    name: 'extent block signature of /frag',
    fsckCode: 'EXTENT_EB_INVALID',
    base: 'default',
    damage: extentBlock((b) => b.write('EXBLKXX', OFF.h_signature, 'latin1')),
    expect: { kind: 'damagedOp', what: 'read /frag', op: readFrag, errno: 'EIO', message: (at) => new RegExp(`extent block ${at.fragExtentBlock}: h_signature`) },
    damaged: ['/frag'],
  },
  {
    name: 'extent block h_blkno of /frag does not match its block',
    fsckCode: 'EB_BLKNO',
    base: 'default',
    damage: extentBlock((b, at) => writeU64(b, OFF.h_blkno, at.fragExtentBlock + 7)),
    expect: { kind: 'damagedOp', what: 'read /frag', op: readFrag, errno: 'EIO', message: (at) => new RegExp(`extent block ${at.fragExtentBlock}: h_blkno`) },
    damaged: ['/frag'],
  },
  {
    name: 'extent block l_next_free_rec > l_count',
    fsckCode: 'EXTENT_LIST_FREE',
    base: 'default',
    damage: extentBlock((b) => b.writeUInt16LE(b.readUInt16LE(OFF.h_list + OFF.l_count) + 1, OFF.h_list + OFF.l_next_free_rec)),
    expect: { kind: 'damagedOp', what: 'read /frag', op: readFrag, errno: 'EIO', message: (at) => new RegExp(`extent block ${at.fragExtentBlock}: h_list: l_next_free_rec \\d+ > l_count`) },
    damaged: ['/frag'],
  },
  {
    name: 'extent block points to itself (a loop: root depth 2, block depth 1, child = itself)',
    base: 'default',
    damage: async (image, base) => {
      await patchBlock(image, base.at.fragInode, (b) => b.writeUInt16LE(2, OFF.i_list_depth), { metaEcc: base.metaEcc, checkAt: CHECK_AT.inode });
      await extentBlock((b, at) => {
        b.writeUInt16LE(1, OFF.h_list + OFF.l_tree_depth);
        writeU64(b, OFF.h_list + OFF.l_recs + OFF.e_blkno, at.fragExtentBlock);
      })(image, base);
    },
    expect: { kind: 'damagedOp', what: 'read /frag', op: readFrag, errno: 'EIO', message: (at) => new RegExp(`extent block ${at.fragExtentBlock} appears twice in the tree \\(loop\\)`) },
    damaged: ['/frag'],
  },
  {
    name: 'extent block points to itself without changing depths',
    fsckCode: 'EXTENT_LIST_DEPTH',
    base: 'default',
    damage: async (image, base) => {
      await extentBlock((b, at) => {
        b.writeUInt16LE(1, OFF.h_list + OFF.l_tree_depth);
        writeU64(b, OFF.h_list + OFF.l_recs + OFF.e_blkno, at.fragExtentBlock);
      })(image, base);
    },
    expect: { kind: 'damagedOp', what: 'read /frag', op: readFrag, errno: 'EIO', message: (at) => new RegExp(`extent block ${at.fragExtentBlock} has l_tree_depth 1, expected 0`) },
    damaged: ['/frag'],
  },
  {
    name: 'leaf extent record points past the end of the volume',
    fsckCode: 'EXTENT_BLKNO_RANGE',
    base: 'default',
    damage: extentBlock((b) => writeU64(b, OFF.h_list + OFF.l_recs + OFF.e_blkno, 1 << 30)),
    expect: { kind: 'damagedOp', what: 'read /frag', op: readFrag, errno: 'EIO', message: (at) => new RegExp(`extent block ${at.fragExtentBlock} record 0 maps 1 clusters at block ${1 << 30}, outside the volume`) },
    damaged: ['/frag'],
  },
  {
    name: 'two leaf records of /frag\'s extent block overlap',
    fsckCode: 'EXTENT_OVERLAP',
    base: 'default',
    damage: extentBlock((b) => b.writeUInt32LE(0, OFF.h_list + OFF.l_recs + 0x10)),
    expect: { kind: 'damagedOp', what: 'read /frag', op: readFrag, errno: 'EIO', message: () => /extent at cpos 0 overlaps the one at cpos 0/ },
    damaged: ['/frag'],
  },
  {
    name: 'metaecc: one flipped bit in /frag\'s extent block is corrected',
    fsckCode: 'INODE_BLOCK_ECC',
    base: 'metaecc',
    damage: extentBlock((b) => flipBits(b, (OFF.h_list + OFF.l_recs + OFF.e_blkno) * 8 + 4), true),
    expect: { kind: 'corrected', what: 'read /frag', op: readFrag, want: () => contentOf('/frag') },
  },

  // ---- directory blocks ----
  {
    name: 'dir block record with rec_len 0',
    fsckCode: 'DIRENT_LENGTH',
    base: 'default',
    damage: dirBlock((b) => b.writeUInt16LE(0, secondRecLenOffset(b))),
    expect: { kind: 'damagedOp', what: 'readdir /bigdir', op: readdirBigdir, errno: 'EIO', message: (at) => new RegExp(`dir block ${at.bigdirBlock}: dirent at offset \\d+: rec_len 0 smaller than minimal`) },
    damaged: ['/bigdir/'],
  },
  {
    name: 'dir block record with rec_len running past the end of the block',
    fsckCode: 'DIRENT_LENGTH',
    base: 'default',
    damage: dirBlock((b) => b.writeUInt16LE(BLOCK_SIZE, secondRecLenOffset(b))),
    expect: { kind: 'damagedOp', what: 'readdir /bigdir', op: readdirBigdir, errno: 'EIO', message: (at) => new RegExp(`dir block ${at.bigdirBlock}: dirent at offset \\d+: rec_len ${BLOCK_SIZE} runs past the end`) },
    damaged: ['/bigdir/'],
  },
  {
    name: 'dir block trailer signature (indexed-dirs volume)',
    base: 'default',
    damage: dirBlock((b) => b.write('DIRTRLX', BLOCK_SIZE - 64 + 0x10, 'latin1')),
    expect: { kind: 'damagedOp', what: 'readdir /bigdir', op: readdirBigdir, errno: 'EIO', message: (at) => new RegExp(`dir block ${at.bigdirBlock}: trailer: db_signature`) },
    damaged: ['/bigdir/'],
  },
  {
    // The blocks between the old i_size and the end of the last cluster are allocated but were never
    // formatted (zeros): the walk meets one of those before the hole, and either names the damage.
    name: '/bigdir\'s i_size reaches past its allocated blocks',
    fsckCode: 'DIR_HOLE',
    base: 'default',
    damage: inode((at) => at.bigdirInode, (b) => writeU64(b, OFF.i_size, Number(b.readBigUInt64LE(OFF.i_size)) + 16 * BLOCK_SIZE)),
    expect: { kind: 'damagedOp', what: 'readdir /bigdir', op: readdirBigdir, errno: 'EIO', message: (at) => new RegExp(`directory ${at.bigdirInode}: block \\d+ is in a hole|dir block \\d+: dirent at offset 0: rec_len 0`) },
    damaged: ['/bigdir/'],
  },
  {
    name: 'metaecc: one flipped bit in a dir block is corrected',
    fsckCode: 'INODE_BLOCK_ECC',
    base: 'metaecc',
    damage: dirBlock((b) => flipBits(b, (secondRecLenOffset(b) + 4) * 8 + 1), true),
    expect: { kind: 'corrected', what: 'lookup /bigdir/f00000', op: async (vol) => String((await vol.lookup(await resolve(vol, '/bigdir'), Buffer.from('f00000'))).size), want: () => '0' },
  },
  {
    name: 'metaecc: two flipped bits in a dir block',
    fsckCode: 'INODE_BLOCK_ECC',
    base: 'metaecc',
    damage: dirBlock((b) => flipBits(b, (secondRecLenOffset(b) + 4) * 8 + 1, 100 * 8 + 7), true),
    expect: { kind: 'damagedOp', what: 'readdir /bigdir', op: readdirBigdir, errno: 'EIO', message: (at) => new RegExp(`dir block ${at.bigdirBlock}: metaecc`) },
    damaged: ['/bigdir/'],
  },
  {
    // Reading never needs the index (names are found by one scan of the blocks); adding a name does.
    name: '/bigdir\'s dx root signature (indexed-dirs volume)',
    fsckCode: 'DX_TREE_CORRUPT',
    base: 'default',
    damage: dxRoot((b) => b.write('DXDIRXX', 0, 'latin1')),
    expect: {
      kind: 'damagedOp', rw: true, what: 'create /bigdir/new (adds to the index)', errno: 'EIO', op: mknodInBigdir,
      message: (at) => new RegExp(`dx root ${at.bigdirDxRoot}: dr_signature`),
    },
  },
  {
    name: '/bigdir\'s dx root names another directory as its owner (dr_dir_blkno)',
    base: 'default',
    damage: dxRoot((b) => writeU64(b, 0x30, 12345)),
    expect: {
      kind: 'damagedOp', rw: true, what: 'create /bigdir/new (adds to the index)', errno: 'EIO', op: mknodInBigdir,
      message: (at) => new RegExp(`dx root ${at.bigdirDxRoot}: dr_dir_blkno 12345 != directory ${at.bigdirInode}`),
    },
    fsckSilent: 'fsck.ocfs2 1.8.7 does not check dr_dir_blkno (it reaches the root through the directory)',
  },
  {
    // Lookups in a directory this small scan its blocks and find the name; removing it must also remove its index
    // entry, and finding none is damage: the unlink fails whole rather than leave the index as it is.
    name: '/bigdir\'s index lost the entries of its first block\'s names',
    fsckCode: 'DX_LOOKUP_FAILED',
    base: 'default',
    damage: dropIndexEntriesOfFirstBlock,
    expect: {
      kind: 'damagedOp', rw: true, what: `unlink /bigdir/${FIRST_BLOCK_NAME} (removes its index entry)`, errno: 'EIO',
      op: unlinkFirstBlockName,
      message: (at) => new RegExp(`directory ${at.bigdirInode}: its index has no entry for a name in block ${at.bigdirBlock} \\(hash 0x[0-9a-f]+/0x[0-9a-f]+\\); run fsck\\.ocfs2`),
    },
  },
  {
    name: 'inline directory record with rec_len 0',
    fsckCode: 'DIRENT_LENGTH',
    base: 'default',
    damage: inode((at) => at.smallInode, (b) => b.writeUInt16LE(0, inlineDirRecordOffset(b, 2) + OFF.rec_len)),
    expect: { kind: 'damagedOp', what: 'readdir /small', op: async (vol) => vol.readdir(await resolve(vol, '/small')), errno: 'EIO', message: (at) => new RegExp(`inline directory ${at.smallInode}: dirent at offset \\d+: rec_len 0`) },
    damaged: ['/small/'],
  },

  // ---- group descriptors (read only by allocation: a read-write mount) ----
  {
    name: 'group descriptor signature of inode_alloc:0000\'s first group',
    fsckCode: 'CHAIN_LINK_MAGIC',
    base: 'writable',
    damage: group((at) => at.inodeAllocGroup, (b) => b.write('GROUPXX', OFF.bg_signature, 'latin1')),
    expect: {
      kind: 'damagedOp', rw: true, what: 'mkdir /newdir (allocates an inode)', errno: 'EIO',
      op: (vol) => vol.mkdir(vol.rootIno, Buffer.from('newdir'), 0o755, { uid: 0, gid: 0 }),
      message: (at) => new RegExp(`group desc ${at.inodeAllocGroup}: bg_signature: bad signature`),
    },
  },
  {
    name: 'group descriptor chain loop in the global bitmap (a group names itself next)',
    fsckCode: 'GROUP_CHAIN_LOOP',
    base: 'writable',
    damage: group((at) => at.globalBitmapGroup, (b, at) => writeU64(b, OFF.bg_next_group, at.globalBitmapGroup)),
    expect: {
      kind: 'damagedOp', rw: true, what: 'write 64 KiB at 1 MiB into /keep (allocates clusters)', errno: 'EIO',
      op: async (vol) => {
        const ino = await resolve(vol, '/keep');
        const fh = await vol.open(ino, 2);
        try {
          await vol.write(ino, fh, 1 << 20, Buffer.alloc(65536, 1));
          await vol.fsync(ino, fh, false);
        } finally {
          await vol.release(ino, fh);
        }
      },
      message: (at) => new RegExp(`group ${at.globalBitmapGroup} appears twice in the chains \\(loop\\)`),
    },
  },

  // ---- whole image ----
  {
    name: 'image truncated before /keep\'s data (shorter than the superblock claims)',
    base: 'default',
    damage: async (image, base) => {
      await fs.truncate(image, base.at.keepDataBlock * BLOCK_SIZE);
    },
    // A refusal at mount would do as well; a mount that works must fail the read, never return zeros.
    expect: { kind: 'damagedOp', what: 'read /keep', op: (vol) => readPath(vol, '/keep'), errno: 'EIO', message: () => /outside|beyond|past the end|end of/ },
    damaged: ['/keep', '/frag', '/bigdir/', '/small/'],
  },
  {
    name: 'zero-filled image (no superblock)',
    base: 'default',
    damage: async (image) => {
      const { size } = await fs.stat(image);
      await fs.truncate(image, 0);
      await fs.truncate(image, size);
    },
    expect: { kind: 'refuse', errno: 'EINVAL', message: () => /no OCFS2 superblock found/ },
  },
  {
    name: 'journal:0000 marked dirty (OCFS2_JOURNAL_DIRTY_FL)',
    base: 'default',
    damage: inode((at) => at.journal0Inode, (b) => b.writeUInt32LE(b.readUInt32LE(OFF.ij_flags) | 1, OFF.ij_flags)),
    expect: { kind: 'refuse', errno: 'EINVAL', message: () => /journal of slot\(s\) 0 needs recovery/ },
  },
  {
    name: 'slot map shows slot 1 in use by node 7',
    base: 'default',
    damage: async (image, base) => {
      const b = await readBlock(image, base.at.slotMapBlock);
      b.writeUInt8(1, 8); // se_slots[1].es_valid
      b.writeUInt32LE(7, 12); // se_slots[1].es_node_num
      await writeBlock(image, base.at.slotMapBlock, b);
    },
    expect: { kind: 'refuse', errno: 'EBUSY', message: () => /slot map shows the volume in use \(slot 1 by node 7\)/ },
    fsckSilent: 'a slot in use is not damage to fsck.ocfs2 (it is how a crashed node\'s slot looks)',
  },
];
