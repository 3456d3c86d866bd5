/**
 * Corrupt blocks (real ones from a fresh volume, damaged one field at a
 * time) decode to a FormatError — errno EIO — whose message names the
 * structure, the block and the field: bad signatures, a block that does not
 * say it lives where it was read, counts larger than their arrays,
 * directory records with rec_len 0 / unaligned / too short / past the end,
 * and 64-bit values no volume can hold.
 */
import t from 'tap';
import { errnoOf } from '../../fs/errors';
import {
  decodeDinode, decodeDirBlock, decodeDxLeaf, decodeDxRoot, decodeExtentBlock, decodeGroupDesc, DINODE, dinodeId2Offset,
  emptyDxLeaf, emptyDxRoot, emptyExtentBlock, encodeDxLeaf, encodeDxRoot, encodeExtentBlock, EXTENT_BLOCK_LIST_OFFSET,
  FormatError, GROUP_DESC, iterateDirEntries, DX_LEAF_LIST_OFFSET, DX_ROOT,
} from '../../fs/format';
import { Image, makeVolume, runHelper, scratchDir, systemInode, walkMetadata } from './helpers';
import { assertFsckClean } from '../lib/fsck';

const { dir, cleanup } = scratchDir('corrupt');
t.teardown(cleanup);
const file = makeVolume(dir, 'v', { blockSize: 4096, clusterSize: 4096, slots: 2 });
runHelper(file, 'mkdir', 'd', '200');
const img = new Image(file);
t.teardown(() => img.close());
const blocks = walkMetadata(img);
const first = (kind: string) => {
  const b = blocks.find((x) => x.kind === kind);
  if (!b) throw new Error(`no ${kind}`);
  return { blkno: b.blkno, bytes: Buffer.from(b.bytes) };
};

function throwsFormat(t: Tap, fn: () => unknown, pattern: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: decoded without error`);
  } catch (e) {
    t.ok(e instanceof FormatError, `${what}: a FormatError`);
    t.equal(errnoOf(e), 'EIO', `${what}: errno EIO`);
    t.match((e as Error).message, pattern, `${what}: "${(e as Error).message}"`);
  }
}
type Tap = Pick<typeof t, 'ok' | 'fail' | 'equal' | 'match'>;

t.test('dinode', async (t) => {
  const { blkno, bytes } = first('inode');
  const badSig = Buffer.from(bytes);
  badSig.write('INODE99', 0, 'latin1');
  throwsFormat(t, () => decodeDinode(badSig, blkno), new RegExp(`^dinode ${blkno}: i_signature: bad signature "INODE99"`), 'bad signature');
  throwsFormat(t, () => decodeDinode(bytes, blkno + 1), new RegExp(`^dinode ${blkno + 1}: i_blkno ${blkno} does not match`), 'read from another block');
  const huge = Buffer.from(bytes);
  huge.writeUInt32LE(0xffffffff, DINODE.i_size[0] + 4);
  throwsFormat(t, () => decodeDinode(huge, blkno), new RegExp(`^dinode ${blkno}\\.i_size: 64-bit value`), 'i_size beyond 2^53');
  throwsFormat(t, () => decodeDinode(bytes, blkno, { fsGeneration: 1 }), new RegExp(`^dinode ${blkno}: i_fs_generation`), 'other volume generation');
});

t.test('extent list in an inode: l_next_free_rec > l_count, l_count past the block', async (t) => {
  const { blkno, d } = systemInode(img, 'journal:0000');
  const raw = img.read(blkno);
  const over = Buffer.from(raw);
  over.writeUInt16LE(d.list!.l_count + 1, dinodeId2Offset + 4);
  throwsFormat(t, () => decodeDinode(over, blkno), new RegExp(`^dinode ${blkno}: id2.i_list: l_next_free_rec ${d.list!.l_count + 1} > l_count ${d.list!.l_count}`), 'l_next_free_rec > l_count');
  const big = Buffer.from(raw);
  big.writeUInt16LE(1000, dinodeId2Offset + 2);
  throwsFormat(t, () => decodeDinode(big, blkno), new RegExp(`^dinode ${blkno}: id2.i_list: l_count 1000 > 243 records that fit`), 'l_count larger than the block');
});

t.test('chain list: cl_next_free_rec > cl_count', async (t) => {
  const { blkno, d } = systemInode(img, 'global_bitmap');
  const raw = img.read(blkno);
  raw.writeUInt16LE(d.chain!.cl_count + 5, dinodeId2Offset + 6);
  throwsFormat(t, () => decodeDinode(raw, blkno), new RegExp(`^dinode ${blkno}: id2.i_chain: cl_next_free_rec ${d.chain!.cl_count + 5} > cl_count`), 'cl_next_free_rec');
});

t.test('extent block', async (t) => {
  const eb = emptyExtentBlock(4096, 777);
  const raw = Buffer.alloc(4096);
  encodeExtentBlock(eb, raw);
  throwsFormat(t, () => decodeExtentBlock(raw, 778), /^extent block 778: h_blkno 777 does not match/, 'read from another block');
  const sig = Buffer.from(raw);
  sig[0] = 0x58;
  throwsFormat(t, () => decodeExtentBlock(sig, 777), /^extent block 777: h_signature: bad signature/, 'bad signature');
  const over = Buffer.from(raw);
  over.writeUInt16LE(eb.h_list.l_count + 1, EXTENT_BLOCK_LIST_OFFSET + 4);
  throwsFormat(t, () => decodeExtentBlock(over, 777), /^extent block 777: h_list: l_next_free_rec 253 > l_count 252/, 'l_next_free_rec > l_count');
});

t.test('group descriptor', async (t) => {
  const { blkno, bytes } = first('group desc');
  throwsFormat(t, () => decodeGroupDesc(bytes, blkno + 1), new RegExp(`^group desc ${blkno + 1}: bg_blkno ${blkno} does not match`), 'read from another block');
  const free = Buffer.from(bytes);
  free.writeUInt16LE(free.readUInt16LE(GROUP_DESC.bg_bits[0]) + 1, GROUP_DESC.bg_free_bits_count[0]);
  throwsFormat(t, () => decodeGroupDesc(free, blkno), new RegExp(`^group desc ${blkno}: bg_free_bits_count \\d+ > bg_bits`), 'more free bits than bits');
  const size = Buffer.from(bytes);
  size.writeUInt16LE(5000, GROUP_DESC.bg_size[0]);
  throwsFormat(t, () => decodeGroupDesc(size, blkno), new RegExp(`^group desc ${blkno}: bg_size 5000 > 4032 bytes`), 'bitmap larger than the block');
  throwsFormat(t, () => decodeGroupDesc(bytes, { expectedBlkno: blkno, parentBlkno: 1 }), new RegExp(`^group desc ${blkno}: bg_parent_dinode \\d+ != allocator inode 1`), 'wrong parent');
});

t.test('directory block records', async (t) => {
  const { blkno, bytes } = first('dir block');
  const opts = { blkno, hasTrailer: true };
  const entries = decodeDirBlock(bytes, opts).entries;
  const second = entries[1].offset;

  const zero = Buffer.from(bytes);
  zero.writeUInt16LE(0, second + 8);
  throwsFormat(t, () => decodeDirBlock(zero, opts), new RegExp(`^dir block ${blkno}: dirent at offset ${second}: rec_len 0 smaller than minimal 16`), 'rec_len 0');

  const past = Buffer.from(bytes);
  past.writeUInt16LE(4096, second + 8);
  throwsFormat(t, () => decodeDirBlock(past, opts), new RegExp(`^dir block ${blkno}: dirent at offset ${second}: rec_len 4096 runs past the end \\(4032\\)`), 'rec_len past the end (the trailer)');

  const odd = Buffer.from(bytes);
  odd.writeUInt16LE(entries[1].rec_len + 2, second + 8);
  throwsFormat(t, () => decodeDirBlock(odd, opts), new RegExp(`^dir block ${blkno}: dirent at offset ${second}: rec_len \\d+ % 4 != 0`), 'unaligned rec_len');

  const short = Buffer.from(bytes);
  short.writeUInt8(200, second + 10);
  throwsFormat(t, () => decodeDirBlock(short, opts), new RegExp(`^dir block ${blkno}: dirent at offset ${second}: rec_len \\d+ too small for name_len 200`), 'name longer than the record');

  const trailer = Buffer.from(bytes);
  trailer.write('XXXXXXX', 4096 - 64 + 0x10, 'latin1');
  throwsFormat(t, () => decodeDirBlock(trailer, opts), new RegExp(`^dir block ${blkno}: trailer: db_signature: bad signature`), 'bad trailer signature');

  throwsFormat(t, () => decodeDirBlock(bytes, { ...opts, blkno: blkno + 1 }), new RegExp(`^dir block ${blkno + 1}: trailer: db_blkno ${blkno} does not match`), 'trailer says another block');

  const inline = Buffer.alloc(64);
  inline.writeUInt16LE(0, 8);
  throwsFormat(t, () => [...iterateDirEntries(inline, 0, 64, 'inline dir 5')], /^inline dir 5: dirent at offset 0: rec_len 0/, 'inline data dir');
});

t.test('dx root and dx leaf', async (t) => {
  const root = emptyDxRoot(4096);
  root.dr_blkno = 90;
  const raw = Buffer.alloc(4096);
  encodeDxRoot(root, raw);
  const sig = Buffer.from(raw);
  sig[1] = 0;
  throwsFormat(t, () => decodeDxRoot(sig, 90), /^dx root 90: dr_signature: bad signature/, 'root signature');
  const used = Buffer.from(raw);
  used.writeUInt16LE(root.dr_entries!.de_count + 1, DX_ROOT.dr_reserved3[0] + 112 + 6);
  throwsFormat(t, () => decodeDxRoot(used, 90), /^dx root 90: dr_entries: de_num_used 244 > de_count 243/, 'root de_num_used > de_count');

  const leaf = emptyDxLeaf(4096, 91);
  const lraw = Buffer.alloc(4096);
  encodeDxLeaf(leaf, lraw);
  throwsFormat(t, () => decodeDxLeaf(lraw, 92), /^dx leaf 92: dl_blkno 91 does not match/, 'leaf read from another block');
  lraw.writeUInt16LE(leaf.dl_list.de_count + 1, DX_LEAF_LIST_OFFSET + 6);
  throwsFormat(t, () => decodeDxLeaf(lraw, 91), /^dx leaf 91: dl_list: de_num_used 254 > de_count 253/, 'leaf de_num_used > de_count');
});

t.test('the volume the blocks came from is itself clean', async (t) => {
  await assertFsckClean(t, file);
});
