/**
 * JBD2 log blocks (big-endian): descriptor blocks in every tag format
 * (32/64-bit block numbers, no checksum, csum v2's 16-bit tag checksum,
 * csum v3's 32-bit one, the block tail), revoke blocks (4- and 8-byte
 * records) and commit blocks decode from hand-laid bytes to the values put
 * there and re-encode to the same bytes. (The journal superblock is checked
 * on real volumes in system-files-decode.)
 */
import t from 'tap';
import {
  decodeCommitBlock, decodeDescriptorBlock, decodeRevokeBlock, encodeCommitBlock, encodeDescriptorBlock,
  encodeRevokeBlock, FormatError, JBD2_COMMIT_BLOCK, JBD2_DESCRIPTOR_BLOCK, JBD2_FEATURE_INCOMPAT_64BIT,
  JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3, JBD2_FLAG_LAST_TAG, JBD2_FLAG_SAME_UUID, JBD2_MAGIC_NUMBER,
  JBD2_REVOKE_BLOCK, journalTagBlocknr, journalTagBytes,
} from '../../fs/format';

const BS = 1024;
const uuid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function header(block: Buffer, type: number, seq: number): void {
  block.writeUInt32BE(JBD2_MAGIC_NUMBER, 0);
  block.writeUInt32BE(type, 4);
  block.writeUInt32BE(seq, 8);
}

const variants: Array<{ name: string; incompat: number; tagBytes: number }> = [
  { name: '32-bit, no checksums', incompat: 0, tagBytes: 8 },
  { name: '64bit', incompat: JBD2_FEATURE_INCOMPAT_64BIT, tagBytes: 12 },
  { name: 'csum v2', incompat: JBD2_FEATURE_INCOMPAT_CSUM_V2, tagBytes: 10 },
  { name: 'csum v2 + 64bit', incompat: JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_64BIT, tagBytes: 14 },
  { name: 'csum v3', incompat: JBD2_FEATURE_INCOMPAT_CSUM_V3, tagBytes: 16 },
  { name: 'csum v3 + 64bit', incompat: JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_64BIT, tagBytes: 16 },
];

for (const v of variants) {
  t.test(`descriptor block, ${v.name}: ${v.tagBytes}-byte tags`, async (t) => {
    t.equal(journalTagBytes(v.incompat), v.tagBytes, 'journal_tag_bytes');
    const is64 = (v.incompat & JBD2_FEATURE_INCOMPAT_64BIT) !== 0;
    const v3 = (v.incompat & JBD2_FEATURE_INCOMPAT_CSUM_V3) !== 0;
    const v2 = (v.incompat & JBD2_FEATURE_INCOMPAT_CSUM_V2) !== 0;
    const raw = Buffer.alloc(BS);
    header(raw, JBD2_DESCRIPTOR_BLOCK, 77);
    // Lay out three tags by hand: first with a UUID, then two SAME_UUID, the last flagged LAST_TAG.
    const tags = [
      { nr: 1000, high: 2, flags: 0, csum: 0xbeef },
      { nr: 1001, high: 2, flags: JBD2_FLAG_SAME_UUID, csum: 0x1234 },
      { nr: 5, high: 0, flags: JBD2_FLAG_SAME_UUID | JBD2_FLAG_LAST_TAG, csum: 0x00ff },
    ];
    let off = 12;
    for (const tag of tags) {
      raw.writeUInt32BE(tag.nr, off);
      if (v3) {
        raw.writeUInt32BE(tag.flags, off + 4);
        raw.writeUInt32BE(tag.high, off + 8);
        raw.writeUInt32BE(tag.csum, off + 12);
      } else if (v2) {
        raw.writeUInt16BE(tag.csum, off + 4);
        raw.writeUInt16BE(tag.flags, off + 6);
        if (is64) raw.writeUInt32BE(tag.high, off + 8);
      } else {
        raw.writeUInt32BE(tag.flags, off + 4);
        if (is64) raw.writeUInt32BE(tag.high, off + 8);
      }
      off += v.tagBytes;
      if (!(tag.flags & JBD2_FLAG_SAME_UUID)) {
        uuid.copy(raw, off);
        off += 16;
      }
    }
    if (v2 || v3) raw.writeUInt32BE(0xcafef00d, BS - 4);

    const d = decodeDescriptorBlock(raw, v.incompat);
    t.equal(d.h_sequence, 77);
    t.equal(d.tags.length, 3, 'stops at JBD2_FLAG_LAST_TAG');
    t.same(d.tags.map((x) => journalTagBlocknr(x, v.incompat)), tags.map((x) => (is64 ? x.high * 2 ** 32 + x.nr : x.nr)), 'block numbers (high word only with 64bit)');
    t.same(d.tags.map((x) => x.t_flags), tags.map((x) => x.flags), 'flags');
    t.same(d.tags.map((x) => x.t_checksum), tags.map((x) => (v2 || v3 ? x.csum : 0)), 'tag checksums');
    t.ok(d.tags[0].uuid?.equals(uuid), 'the first tag carries the UUID');
    t.equal(d.tags[1].uuid, undefined, 'SAME_UUID tags do not');
    if (v2 || v3) t.equal(d.tailChecksum, 0xcafef00d, 'block tail checksum');
    const again = Buffer.alloc(BS);
    encodeDescriptorBlock(d, again, v.incompat);
    t.ok(again.equals(raw), 're-encodes to the same bytes');
  });
}

t.test('revoke blocks: 4-byte and 8-byte records, r_count in bytes', async (t) => {
  for (const incompat of [0, JBD2_FEATURE_INCOMPAT_64BIT, JBD2_FEATURE_INCOMPAT_64BIT | JBD2_FEATURE_INCOMPAT_CSUM_V3]) {
    const rec = incompat & JBD2_FEATURE_INCOMPAT_64BIT ? 8 : 4;
    const raw = Buffer.alloc(BS);
    header(raw, JBD2_REVOKE_BLOCK, 9);
    const blocks = [17, 4242, rec === 8 ? 2 ** 40 + 3 : 99];
    raw.writeUInt32BE(16 + blocks.length * rec, 12);
    blocks.forEach((b, i) => {
      if (rec === 8) {
        raw.writeUInt32BE(Math.floor(b / 2 ** 32), 16 + i * 8);
        raw.writeUInt32BE(b % 2 ** 32, 20 + i * 8);
      } else raw.writeUInt32BE(b, 16 + i * 4);
    });
    const r = decodeRevokeBlock(raw, incompat);
    t.same(r.records, blocks, `${rec}-byte records decode`);
    const again = Buffer.alloc(BS);
    encodeRevokeBlock(r, again, incompat);
    t.ok(again.equals(raw), `${rec}-byte records re-encode to the same bytes`);
  }
  const bad = Buffer.alloc(BS);
  header(bad, JBD2_REVOKE_BLOCK, 1);
  bad.writeUInt32BE(5000, 12);
  t.throws(() => decodeRevokeBlock(bad, 0), FormatError, 'r_count past the block is a FormatError');
});

t.test('commit block', async (t) => {
  const raw = Buffer.alloc(BS);
  header(raw, JBD2_COMMIT_BLOCK, 12);
  raw[12] = 1; // JBD2_CRC32_CHKSUM
  raw[13] = 4;
  raw.writeUInt32BE(0xdeadbeef, 16);
  raw.writeUInt32BE(0, 48);
  raw.writeUInt32BE(1_700_000_000, 52);
  raw.writeUInt32BE(123456789, 56);
  const c = decodeCommitBlock(raw);
  t.equal(c.h_chksum_type, 1);
  t.equal(c.h_chksum_size, 4);
  t.same(c.h_chksum, [0xdeadbeef, 0, 0, 0, 0, 0, 0, 0]);
  t.equal(c.h_commit_sec, 1_700_000_000);
  t.equal(c.h_commit_nsec, 123456789);
  const again = Buffer.alloc(BS);
  encodeCommitBlock(c, again);
  t.ok(again.equals(raw), 're-encodes to the same bytes');
  const notJournal = Buffer.alloc(BS);
  t.throws(() => decodeCommitBlock(notJournal), /h_magic 0x0 is not JBD2_MAGIC_NUMBER/, 'a block without the magic is refused');
});
