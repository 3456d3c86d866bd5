/**
 * Xattrs: nothing in ocfs2-tools writes them, so these blocks are built by
 * our encoder (buildXattrRegion: layout, name hashes) and then read by the
 * independent implementation: debugfs.ocfs2 `xattr -v` must list our names
 * and values and fsck.ocfs2 -fn (which checks xattr hashes, offsets and,
 * with metaecc, the block checks) must find nothing to fix. Covered: an
 * XATTR01 block and the inline area of an inode (OCFS2_INLINE_XATTR_FL),
 * local values, on plain and metaecc volumes; and the pure round-trips of
 * blocks, buckets and value roots.
 */
import t from 'tap';
import {
  buildXattrRegion, computeBlockCheck, decodeDinode, decodeExtentBlock, decodeInlineXattr, decodeXattrBlock,
  decodeXattrBucket, DINODE_CHECK_OFFSET, emptyExtentList, encodeDinode, encodeInlineXattr, encodeXattrBlock,
  encodeXattrBucket, extentRecsPerInodeWithXattr, OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_HAS_XATTR_FL,
  OCFS2_INLINE_XATTR_FL, OCFS2_XATTR_BLOCK_SIGNATURE, OCFS2_XATTR_BUCKET_SIZE, OCFS2_XATTR_INDEX_TRUSTED,
  OCFS2_XATTR_INDEX_USER, OCFS2_XATTR_INDEXED, signatureBytes, XattrBlock, XATTR_BLOCK_ATTRS_OFFSET,
  XATTR_BLOCK_CHECK_OFFSET, xattrFullName, xattrNameHash, emptyExtentRec,
} from '../../fs/format';
import { debugfs, firstDiff, Image, makeVolume, runHelper, scratchDir } from './helpers';
import { assertFsckClean } from '../lib/fsck';

const { dir, cleanup } = scratchDir('xattr');
t.teardown(cleanup);

const attrs = [
  { type: OCFS2_XATTR_INDEX_USER, name: 'color', value: Buffer.from('blue') },
  { type: OCFS2_XATTR_INDEX_USER, name: 'a-much-longer-attribute-name', value: Buffer.from('a value of exactly eighty bytes, the largest stored local: '.padEnd(80, '.')) },
  { type: OCFS2_XATTR_INDEX_TRUSTED, name: 'x', value: Buffer.from([0, 1, 2, 3, 4, 5, 6]) },
];

for (const features of ['', 'metaecc']) {
  t.test(`xattr block and inline xattrs written by us, read by libocfs2 (${features || 'no metaecc'})`, async (t) => {
    const file = makeVolume(dir, `v-${features || 'plain'}`, { blockSize: 4096, clusterSize: 4096, slots: 2, features: features || undefined });
    const [ino, blk] = runHelper(file, 'newblock', 'withblock').map(Number);
    const [ino2] = runHelper(file, 'newblock', 'inline').map(Number);
    const img = new Image(file, true);
    t.teardown(() => img.close());
    const bs = img.blockSize;
    const metaecc = (img.sb.s_feature_incompat & OCFS2_FEATURE_INCOMPAT_META_ECC) !== 0;
    const uuidHash = img.sb.s_uuid_hash;

    // The XATTR01 block takes over the metadata block libocfs2 allocated (same suballocator bit).
    const eb = decodeExtentBlock(img.read(blk), blk);
    const xb: XattrBlock = {
      xb_signature: signatureBytes(OCFS2_XATTR_BLOCK_SIGNATURE), xb_suballoc_slot: eb.h_suballoc_slot,
      xb_suballoc_bit: eb.h_suballoc_bit, xb_fs_generation: eb.h_fs_generation, xb_blkno: blk, xb_check: Buffer.alloc(8),
      xb_flags: 0, xb_reserved0: 0, xb_reserved1: 0, xb_suballoc_loc: eb.h_suballoc_loc,
      xb_header: buildXattrRegion(attrs, bs - XATTR_BLOCK_ATTRS_OFFSET, uuidHash),
    };
    const xbRaw = Buffer.alloc(bs);
    encodeXattrBlock(xb, xbRaw);
    if (metaecc) computeBlockCheck(xbRaw, XATTR_BLOCK_CHECK_OFFSET);
    img.write(blk, xbRaw);
    const back = Buffer.alloc(bs);
    encodeXattrBlock(decodeXattrBlock(xbRaw, blk), back);
    t.ok(back.equals(xbRaw), `our xattr block round-trips (${firstDiff(xbRaw, back)})`);

    const d = decodeDinode(img.read(ino), ino);
    d.i_xattr_loc = blk;
    d.i_dyn_features |= OCFS2_HAS_XATTR_FL;
    const dRaw = Buffer.alloc(bs);
    encodeDinode(d, dRaw);
    if (metaecc) computeBlockCheck(dRaw, DINODE_CHECK_OFFSET);
    img.write(ino, dRaw);

    // Inline xattrs: the last s_xattr_inline_size bytes of the inode, the extent list shrunk to fit before them.
    const d2 = decodeDinode(img.read(ino2), ino2);
    d2.i_dyn_features |= OCFS2_HAS_XATTR_FL | OCFS2_INLINE_XATTR_FL;
    d2.i_xattr_inline_size = img.sb.s_xattr_inline_size;
    d2.list = emptyExtentList(extentRecsPerInodeWithXattr(bs, d2));
    const inline = buildXattrRegion(attrs.slice(0, 1).concat(attrs.slice(2)), d2.i_xattr_inline_size, uuidHash);
    d2.inlineXattr = Buffer.alloc(d2.i_xattr_inline_size);
    encodeInlineXattr(inline, d2.inlineXattr);
    const d2Raw = Buffer.alloc(bs);
    encodeDinode(d2, d2Raw);
    if (metaecc) computeBlockCheck(d2Raw, DINODE_CHECK_OFFSET);
    img.write(ino2, d2Raw);
    const d2Back = decodeDinode(d2Raw, ino2);
    t.same(decodeInlineXattr(d2Back.inlineXattr!).xh_entries.map(xattrFullName), ['user.color', 'trusted.x'], 'inline region decodes back');

    // debugfs prints, per entry: type, local flag, name length, value length (libocfs2's reading of our bytes).
    const table = (out: string) => [...out.matchAll(/#\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/g)].map((m) => m.slice(1).map(Number));
    const expectRows = (list: typeof attrs) => list.map((a) => [a.type, 1, a.name.length, a.value.length]);
    const listing = debugfs(file, 'xattr -v /withblock');
    t.match(listing, `Extended Attributes in block #${blk}: ${attrs.length}`, 'debugfs finds our xattr block');
    t.same(table(listing), expectRows(attrs), 'debugfs reads every entry of the block as we wrote it');
    const inlineListing = debugfs(file, 'xattr -v /inline');
    t.match(inlineListing, 'Extended Attributes inline: 2', 'debugfs finds the inline area');
    t.same(table(inlineListing), expectRows(attrs.slice(0, 1).concat(attrs.slice(2))), 'and reads its entries as we wrote them');

    await assertFsckClean(t, file, 'volume with our xattr block and inline area (hashes, offsets, checks)');
  });
}

t.test('xattr name hash: each byte rotates the hash by 5 and xors in', async (t) => {
  t.equal(xattrNameHash(0, ''), 0);
  t.equal(xattrNameHash(0, 'a'), 0x61);
  t.equal(xattrNameHash(1, 'a'), ((1 << 5) ^ 0x61) >>> 0);
  t.equal(xattrNameHash(0x80000000, 'a'), ((0x80000000 << 5) ^ (0x80000000 >>> 27) ^ 0x61) >>> 0, 'the top bits wrap around');
  t.not(xattrNameHash(7, Buffer.from([0xe9])), xattrNameHash(7, Buffer.from([0xe9]), { signedChars: false }), 'signed and unsigned chars differ for bytes >= 0x80');
});

t.test('a bucket and an indexed xattr block round-trip', async (t) => {
  const region = buildXattrRegion(attrs, OCFS2_XATTR_BUCKET_SIZE, 0x1234, 1);
  const bucket = Buffer.alloc(OCFS2_XATTR_BUCKET_SIZE);
  encodeXattrBucket(region, bucket);
  const dec = decodeXattrBucket(bucket);
  t.equal(dec.xh_num_buckets, 1);
  t.same(dec.xh_entries.map((e) => e.value), attrs.map((a) => a.value), 'values come back');
  const again = Buffer.alloc(OCFS2_XATTR_BUCKET_SIZE);
  encodeXattrBucket(dec, again);
  t.ok(again.equals(bucket), 'bucket bytes identical');

  const xb: XattrBlock = {
    xb_signature: signatureBytes(OCFS2_XATTR_BLOCK_SIGNATURE), xb_suballoc_slot: 0, xb_suballoc_bit: 3, xb_fs_generation: 9,
    xb_blkno: 55, xb_check: Buffer.alloc(8), xb_flags: OCFS2_XATTR_INDEXED, xb_reserved0: 0, xb_reserved1: 0, xb_suballoc_loc: 0,
    xb_root: {
      xt_clusters: 1, xt_reserved0: 0, xt_last_eb_blk: 0,
      xt_list: { ...emptyExtentList(2), l_next_free_rec: 1, l_recs: [{ ...emptyExtentRec(), e_leaf_clusters: 1, e_blkno: 800 }, emptyExtentRec()] },
    },
  };
  const raw = Buffer.alloc(1024);
  encodeXattrBlock(xb, raw);
  const back = decodeXattrBlock(raw, 55);
  t.equal(back.xb_root!.xt_list.l_recs[0].e_blkno, 800);
  const raw2 = Buffer.alloc(1024);
  encodeXattrBlock(back, raw2);
  t.ok(raw2.equals(raw), 'indexed block bytes identical');
});
