/**
 * The field-table machinery and the unions: 64-bit values past 2^53 are a
 * FormatError naming the field (never silently rounded); integer arrays;
 * sub-tables keep their offsets; extent records encode the interior or the
 * leaf view by tree depth; a dinode's id1 is written in the view its flags
 * select; bytes outside any field (stale dirent names, id2 slack) survive a
 * decode/encode round trip. Hand-built (no tool here makes them): a
 * discontiguous block group (bg_list) and a refcount tree root (rf_list).
 */
import t from 'tap';
import * as v8 from 'node:v8';
import {
  decodeDinode, decodeDirBlock, decodeExtentList, decodeFields, emptyDinode, emptyExtentList, emptyExtentRec, encodeDinode,
  encodeDirBlock, encodeExtentList, encodeFields, FormatError, layoutSize, newDirEntry, newDirTrailer, OCFS2_BITMAP_FL,
  OCFS2_CHAIN_FL, OCFS2_DIR_REC_LEN, OCFS2_FT_REG_FILE, OCFS2_JOURNAL_FL, omitFields, pickFields, readU64,
  setExtentRecClusters, writeU64, zeroFields, dinodeId2Offset, chainRecsPerInode, emptyGroupDesc, groupBitmapSize,
  OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, encodeGroupDesc, decodeGroupDesc, groupIsDiscontig, GROUP_DESC_LIST_OFFSET,
  RefcountBlock, signatureBytes, OCFS2_REFCOUNT_BLOCK_SIGNATURE, OCFS2_REFCOUNT_TREE_FL, extentRecsPerRefcountBlock,
  encodeRefcountBlock, decodeRefcountBlock,
} from '../../fs/format';

t.test('u64 fields', async (t) => {
  const b = Buffer.alloc(8);
  writeU64(b, 0, 2 ** 53 - 1, 'x');
  t.equal(readU64(b, 0, 'x'), 2 ** 53 - 1, 'the largest safe integer round-trips');
  b.writeUInt32LE(0xffffffff, 4);
  t.throws(() => readU64(b, 0, 'dinode 7.i_size'), { name: 'FormatError', message: /^dinode 7\.i_size: 64-bit value/ });
  t.throws(() => writeU64(b, 0, -1, 'x'), RangeError);
  t.throws(() => writeU64(b, 0, 2 ** 53, 'x'), RangeError);
});

t.test('arrays, sub-tables, sizes', async (t) => {
  const L = { a: [0, 'u16'], arr: [2, 'u32', 3], tail: [14, 'bytes', 2] } as const;
  t.equal(layoutSize(L), 16);
  const b = Buffer.alloc(16);
  encodeFields(L, { a: 1, arr: [2, 3, 4], tail: Buffer.from([9, 9]) }, b);
  t.same(decodeFields(L, b), { a: 1, arr: [2, 3, 4], tail: Buffer.from([9, 9]) });
  t.same(zeroFields(L), { a: 0, arr: [0, 0, 0], tail: Buffer.alloc(2) });
  t.same(pickFields(L, ['arr']), { arr: [2, 'u32', 3] }, 'picked fields keep their offsets');
  t.same(Object.keys(omitFields(L, ['a'])), ['arr', 'tail']);
  t.throws(() => encodeFields(L, { a: 1, arr: [1, 2, 3, 4], tail: Buffer.alloc(2) }, b), RangeError, 'too many elements');
  t.throws(() => encodeFields(L, { a: 1, arr: [1], tail: Buffer.alloc(3) }, b), RangeError, 'too many bytes');
});

t.test('extent records: interior vs leaf view', async (t) => {
  const b = Buffer.alloc(16 + 2 * 16);
  const list = emptyExtentList(2, 1);
  list.l_next_free_rec = 1;
  setExtentRecClusters(list.l_recs[0], 1, 0x12345678);
  list.l_recs[0].e_blkno = 99;
  encodeExtentList(list, b, 0);
  t.equal(b.readUInt32LE(16 + 4), 0x12345678, 'depth > 0 writes e_int_clusters (32 bits)');
  const leaf = emptyExtentList(2, 0);
  leaf.l_next_free_rec = 1;
  setExtentRecClusters(leaf.l_recs[0], 0, 300);
  leaf.l_recs[0].e_flags = 1;
  encodeExtentList(leaf, b, 0);
  t.same([b.readUInt16LE(20), b[22], b[23]], [300, 0, 1], 'depth 0 writes e_leaf_clusters, e_reserved1, e_flags');
  const back = decodeExtentList(b, 0, 2, 'list');
  t.equal(back.l_recs[0].e_leaf_clusters, 300);
  t.equal(back.l_recs[0].e_int_clusters, (1 << 24) | 300, 'both views are decoded');
  t.throws(() => setExtentRecClusters(leaf.l_recs[0], 0, 70000), RangeError, 'a leaf record holds at most 65535 clusters');
});

t.test('dinode id1: the view its flags select is the one written', async (t) => {
  const bs = 1024;
  const j = emptyDinode(bs, 10);
  j.i_flags = OCFS2_JOURNAL_FL;
  j.ij_flags = 1;
  j.ij_recovery_generation = 7;
  j.i_rdev = 123456; // not the journal view: ignored
  const raw = Buffer.alloc(bs);
  encodeDinode(j, raw);
  t.same([raw.readUInt32LE(0xb8), raw.readUInt32LE(0xbc)], [1, 7], 'journal1');
  const back = decodeDinode(raw, 10);
  t.equal(back.i_rdev, 7 * 2 ** 32 + 1, 'i_rdev is the same 8 bytes seen as one number');

  const g = emptyDinode(bs, 11);
  g.i_flags = OCFS2_BITMAP_FL | OCFS2_CHAIN_FL;
  delete g.list;
  g.chain = { cl_cpg: 1, cl_bpc: 1, cl_count: chainRecsPerInode(bs), cl_next_free_rec: 0, cl_reserved1: Buffer.alloc(8), cl_recs: [] };
  g.i_used = 5;
  g.i_total = 0xffffffff; // i_rdev would be out of u64-safe range; the bitmap view does not care
  encodeDinode(g, raw);
  const gb = decodeDinode(raw, 11);
  t.same([gb.i_used, gb.i_total], [5, 0xffffffff], 'bitmap1');
  t.equal(gb.chain!.cl_recs.length, 0, 'zeroed unused chain records are left out when decoding');
  t.ok(raw.subarray(dinodeId2Offset + 0x10, bs).every((b) => b === 0), 'missing chain records are written as zeros');

  // Records in use are always decoded; unused ones only when they hold something, which is then kept byte for byte.
  g.chain.cl_next_free_rec = 1;
  g.chain.cl_recs = [{ c_free: 3, c_total: 7, c_blkno: 99 }];
  encodeDinode(g, raw);
  t.same(decodeDinode(raw, 11).chain!.cl_recs, [{ c_free: 3, c_total: 7, c_blkno: 99 }], 'the record in use, nothing more');
  raw.writeUInt32LE(0xdead, dinodeId2Offset + 0x10 + 5 * 0x10 + 4); // c_total of unused record 5
  const odd = decodeDinode(raw, 11);
  t.equal(odd.chain!.cl_recs.length, chainRecsPerInode(bs), 'a non-zero unused record: all cl_count records decoded');
  t.equal(odd.chain!.cl_recs[5].c_total, 0xdead);
  const again = Buffer.alloc(bs);
  encodeDinode(odd, again);
  t.ok(again.equals(raw), 'and encoded back byte for byte');
});

t.test("an inode's extent list: records past l_next_free_rec, zero or not, round-trip", async (t) => {
  const bs = 4096;
  const d = emptyDinode(bs, 13);
  const count = d.list!.l_count;
  d.list!.l_next_free_rec = 1;
  d.list!.l_recs[0] = { e_cpos: 0, e_int_clusters: 3, e_leaf_clusters: 3, e_reserved1: 0, e_flags: 0, e_blkno: 4096 };
  const raw = Buffer.alloc(bs);
  encodeDinode(d, raw);

  // Unused records all zero: only the one in use is carried, yet l_recs reads as all l_count of them.
  const zeroTail = Buffer.alloc(bs);
  encodeDinode(decodeDinode(raw, 13), zeroTail);
  t.ok(zeroTail.equals(raw), 'encoded back byte for byte without reading l_recs');
  const read = decodeDinode(raw, 13);
  t.equal(read.list!.l_recs.length, count, 'l_recs has l_count records');
  t.same(read.list!.l_recs[0], d.list!.l_recs[0], 'the record in use');
  t.same(read.list!.l_recs[count - 1], emptyExtentRec(), 'and zero ones after it');
  const afterRead = Buffer.alloc(bs);
  encodeDinode(read, afterRead);
  t.ok(afterRead.equals(raw), 'encoded back byte for byte after reading l_recs');
  const dirty = Buffer.alloc(bs, 0xee);
  encodeDinode(decodeDinode(raw, 13), dirty);
  t.ok(dirty.equals(raw), 'the unused records are written as zeros over whatever the buffer held');

  // A non-zero byte in an unused record: kept.
  raw[dinodeId2Offset + 16 + 7 * 16 + 2] = 0x5a;
  const odd = Buffer.alloc(bs);
  encodeDinode(decodeDinode(raw, 13), odd);
  t.ok(odd.equals(raw), 'a non-zero unused record survives untouched');
  const oddRead = decodeDinode(raw, 13);
  t.equal(oddRead.list!.l_recs[7].e_cpos, 0x5a0000, 'and reads as what it holds');
});

t.test("an inode's extent list: replacing l_recs unread is encoded; every decoded list shares one hidden class", async (t) => {
  const bs = 4096;
  const d = emptyDinode(bs, 13);
  d.list!.l_next_free_rec = 1;
  d.list!.l_recs[0] = { e_cpos: 0, e_int_clusters: 3, e_leaf_clusters: 3, e_reserved1: 0, e_flags: 0, e_blkno: 4096 };
  const raw = Buffer.alloc(bs);
  encodeDinode(d, raw);

  const replaced = decodeDinode(raw, 13);
  const recs = replaced.list!.l_recs.map(() => emptyExtentRec());
  recs[0] = { e_cpos: 0, e_int_clusters: 5, e_leaf_clusters: 5, e_reserved1: 0, e_flags: 0, e_blkno: 8192 };
  replaced.list!.l_recs = recs;
  t.equal(replaced.list!.l_recs, recs, 'the assigned array is what reads back');
  const out = Buffer.alloc(bs);
  encodeDinode(replaced, out);
  t.same(decodeDinode(out, 13).list!.l_recs[0], recs[0], 'and what is encoded, not the bytes it was decoded from');

  // With the accessor defined per object, V8 gave the first lists a hidden class each and later ones a dictionary
  // each (slow properties): after many decodes, lists must still share one hidden class with fast properties.
  v8.setFlagsFromString('--allow-natives-syntax');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const fastProperties = new Function('a', 'return %HasFastProperties(a)') as (a: object) => boolean;
  const lists = Array.from({ length: 100 }, () => decodeDinode(raw, 13).list!);
  t.ok(sameMap(lists[0], lists[99]), 'the first and the hundredth decoded list share a hidden class');
  t.ok(fastProperties(lists[99]), 'with fast properties');
});

t.test('bytes outside fields survive: id2 slack and stale dirent names', async (t) => {
  const bs = 512;
  const d = emptyDinode(bs, 12);
  d.list!.l_count = 5; // less than fits: the rest of id2 is slack
  d.list!.l_recs.length = 5;
  const raw = Buffer.alloc(bs);
  encodeDinode(d, raw);
  raw[dinodeId2Offset + 16 + 5 * 16 + 3] = 0xaa;
  const back = decodeDinode(raw, 12);
  t.ok(back.tail, 'non-zero slack is kept');
  const again = Buffer.alloc(bs);
  encodeDinode(back, again);
  t.ok(again.equals(raw), 'and written back');

  const blk = Buffer.alloc(bs);
  const a = newDirEntry(5, '.', 2);
  const b = newDirEntry(5, '..', 2);
  const c = newDirEntry(77, 'deleted-then-merged', OCFS2_FT_REG_FILE);
  b.rec_len = bs - 64 - a.rec_len;
  encodeDirBlock({ entries: [a, b], trailer: newDirTrailer(40, 5) }, blk);
  // A stale name inside '..'s record, as the kernel leaves it after merging a deleted entry.
  blk.write('deleted-then-merged', a.rec_len + OCFS2_DIR_REC_LEN(2) + 12, 'latin1');
  const db = decodeDirBlock(blk, { blkno: 40, hasTrailer: true });
  t.ok(db.entries[1].tail, 'the stale bytes are kept with the record');
  const blk2 = Buffer.alloc(bs);
  encodeDirBlock(db, blk2);
  t.ok(blk2.equals(blk), 'and written back');
  t.equal(c.rec_len, OCFS2_DIR_REC_LEN(19));
  t.throws(() => decodeFields({ x: [0, 'u64'] } as const, Buffer.alloc(8, 0xff), 0, 'thing 3'), FormatError);
});

t.test('a discontiguous block group: 256-byte bitmap, then bg_list at 0x140', async (t) => {
  for (const bs of [512, 4096]) {
    const gd = emptyGroupDesc(bs, groupBitmapSize(bs, true, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG));
    t.ok(gd.bg_list, `${bs}: a 256-byte bitmap ends where bg_list starts`);
    gd.bg_blkno = 1000;
    gd.bg_bits = 2048;
    gd.bg_free_bits_count = 2040;
    gd.bg_bitmap[0] = 0xff;
    gd.bg_list!.l_next_free_rec = 2;
    gd.bg_list!.l_recs[0] = { ...gd.bg_list!.l_recs[0], e_cpos: 0, e_leaf_clusters: 4, e_blkno: 1000 };
    gd.bg_list!.l_recs[1] = { ...gd.bg_list!.l_recs[1], e_cpos: 4, e_leaf_clusters: 4, e_blkno: 5000 };
    const raw = Buffer.alloc(bs);
    encodeGroupDesc(gd, raw);
    t.equal(raw.readUInt16LE(GROUP_DESC_LIST_OFFSET + 4), 2, 'l_next_free_rec at 0x144');
    const back = decodeGroupDesc(raw, { expectedBlkno: 1000 });
    t.ok(groupIsDiscontig(back), 'ocfs2_gd_is_discontig');
    t.equal(back.bg_list!.l_recs[1].e_blkno, 5000);
    const again = Buffer.alloc(bs);
    encodeGroupDesc(back, again);
    t.ok(again.equals(raw), 're-encodes to the same bytes');
  }
  const whole = emptyGroupDesc(4096, groupBitmapSize(4096, false, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG));
  t.equal(whole.bg_size, 4032, 'cluster groups use the whole block');
  t.equal(whole.bg_list, undefined, 'and have no bg_list');
});

t.test('a refcount tree root (OCFS2_REFCOUNT_TREE_FL: rf_list instead of rf_records)', async (t) => {
  const bs = 1024;
  const rb: RefcountBlock = {
    rf_signature: signatureBytes(OCFS2_REFCOUNT_BLOCK_SIGNATURE), rf_suballoc_slot: 0, rf_suballoc_bit: 4, rf_fs_generation: 3,
    rf_blkno: 321, rf_parent: 0, rf_check: Buffer.alloc(8), rf_last_eb_blk: 0, rf_count: 2, rf_flags: OCFS2_REFCOUNT_TREE_FL,
    rf_clusters: 1, rf_cpos: 0, rf_generation: 77, rf_reserved0: 0, rf_suballoc_loc: 0, rf_reserved1: Buffer.alloc(48),
    rf_list: { ...emptyExtentList(extentRecsPerRefcountBlock(bs)), l_next_free_rec: 1 },
  };
  rb.rf_list!.l_recs[0] = { ...rb.rf_list!.l_recs[0], e_cpos: 0, e_leaf_clusters: 1, e_blkno: 400 };
  const raw = Buffer.alloc(bs);
  encodeRefcountBlock(rb, raw);
  const back = decodeRefcountBlock(raw, 321);
  t.equal(back.rf_records, undefined, 'no record list in a tree root');
  t.equal(back.rf_list!.l_recs[0].e_blkno, 400);
  const again = Buffer.alloc(bs);
  encodeRefcountBlock(back, again);
  t.ok(again.equals(raw), 're-encodes to the same bytes');
});
