/**
 * Checksum features. JBD2_FEATURE_COMPAT_CHECKSUM: each commit block holds
 * crc32_be (seeded ~0) over its transaction's descriptor and logged blocks;
 * a transaction with a matching sum, or with the "unused" form (type 0,
 * size 0, sum 0), is replayed, and the first mismatch ends the log there
 * (the kernel's reading: that commit never completed), so neither it nor
 * anything after it is replayed. csum v3 (16-byte tags, 4-byte block
 * tails): the layout is read, the crc32c checksums are not verified.
 */
import t from 'tap';
import { crc32Be, replayJournal, scanJournal } from '../../fs/journal/replay';
import {
  JBD2_CRC32_CHKSUM, JBD2_CRC32_CHKSUM_SIZE, JBD2_FEATURE_COMPAT_CHECKSUM, JBD2_FEATURE_INCOMPAT_CSUM_V3,
  JBD2_FEATURE_INCOMPAT_REVOKE, decodeCommitBlock, encodeCommitBlock,
} from '../../fs/format/jbd2';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab } from './replayHarness';

t.test('crc32Be is the kernel\'s crc32_be (CRC-32/MPEG-2 with seed ~0)', async (t) => {
  t.equal(crc32Be(0xffffffff, Buffer.from('123456789')), 0x0376e6e7, 'CRC-32/MPEG-2 check value');
  t.equal((crc32Be(0xffffffff, Buffer.from('123456789')) ^ 0xffffffff) >>> 0, 0xfc891918, 'CRC-32/BZIP2 check value');
  const whole = crc32Be(0xffffffff, Buffer.from('abcdefgh'));
  t.equal(crc32Be(crc32Be(0xffffffff, Buffer.from('abcd')), Buffer.from('efgh')), whole, 'chains across buffers');
});

t.test('commit block checksums (JBD2_FEATURE_COMPAT_CHECKSUM)', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 1024, files: { a: 1, b: 2, c: 3, d: 4 } });
  const original = lab.jsb;
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => lab.files.get(n)!);
  const at = (ino: number, sec: number) => lab.inodeWith(ino, (di) => { di.i_mtime = sec; });
  const cOld = await lab.readHome(c);
  const dOld = await lab.readHome(d);
  const a1 = await at(a, 1610000001);
  const b2 = await at(b, 1610000002);
  const c3 = await at(c, 1610000003);
  const d4 = await at(d, 1610000004);
  const start = lab.first;
  const { copies } = await lab.writeLog(start, 500, [
    { blocks: [{ blkno: a, data: a1 }] },
    { blocks: [{ blkno: b, data: b2 }] },
    { blocks: [{ blkno: c, data: c3 }] },
    { blocks: [{ blkno: d, data: d4 }] },
  ], { s_feature_compat: JBD2_FEATURE_COMPAT_CHECKSUM });
  // Each transaction is descriptor, one copy, commit, laid out from s_first without wrapping.
  const setSum = async (tx: number, form: 'right' | 'unused' | 'wrong') => {
    const descAt = copies[tx][0] - 1;
    const commitAt = copies[tx][0] + 1;
    const sum = crc32Be(crc32Be(0xffffffff, await lab.space.read(descAt)), await lab.space.read(copies[tx][0]));
    const commit = decodeCommitBlock(await lab.space.read(commitAt));
    commit.h_chksum_type = form === 'unused' ? 0 : JBD2_CRC32_CHKSUM;
    commit.h_chksum_size = form === 'unused' ? 0 : JBD2_CRC32_CHKSUM_SIZE;
    commit.h_chksum = [form === 'unused' ? 0 : form === 'right' ? sum : (sum ^ 1) >>> 0, 0, 0, 0, 0, 0, 0, 0];
    const block = Buffer.alloc(lab.blockSize);
    encodeCommitBlock(commit, block);
    await lab.space.write(commitAt, block);
  };
  await setSum(0, 'right');
  await setSum(1, 'unused');
  await setSum(2, 'wrong');
  await setSum(3, 'right');

  const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
  t.same(scan.transactions.map((x) => x.sequence), [500, 501], 'the right and the unused checksums pass');
  t.match(scan.endReason, /commit block of transaction 502 at log block \d+ has checksum 0x[0-9a-f]+ \(type 1, size 4\)/,
    'the wrong checksum ends the log');
  t.equal(scan.nextSequence, 503, 'the next sequence is past the transaction that failed');

  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 2, blocksWritten: 2, blocksRevoked: 0, nextSequence: 503 }, 'the report');
  t.ok((await lab.readHome(a)).equals(a1) && (await lab.readHome(b)).equals(b2), 'the first two transactions are home');
  t.ok((await lab.readHome(c)).equals(cOld), 'the transaction with the wrong checksum is not');
  t.ok((await lab.readHome(d)).equals(dOld), 'nor the one after it, whatever its checksum');

  // fsck.ocfs2 1.8.7 knows no JBD2 compat feature: put the superblock back as mkfs made it before judging.
  await lab.space.writeSuperblock({ ...(await lab.space.readSuperblock()), s_feature_compat: original.s_feature_compat });
  await lab.close();
  await assertFsckClean(t, lab.image);
});

t.test('csum v3 layout: 16-byte tags and block tails are read (checksums not verified)', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 4096 });
  const original = lab.jsb;
  const a = lab.files.get('a')!;
  const b = lab.files.get('b')!;
  const aOld = await lab.readHome(a);
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1620000001; });
  const b1 = await lab.inodeWith(b, (di) => { di.i_mtime = 1620000001; });
  await lab.writeLog(lab.first + 4, 90, [{ blocks: [{ blkno: a, data: a1 }, { blkno: b, data: b1 }] }, { revokes: [a] }],
    { s_feature_incompat: JBD2_FEATURE_INCOMPAT_CSUM_V3 | JBD2_FEATURE_INCOMPAT_REVOKE });
  const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
  t.same(scan.transactions.map((x) => [x.tags.map((g) => g.blkno), x.revokes]), [[[a, b], []], [[], [a]]],
    'tags and revoke records decode in the v3 layout');
  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 2, blocksWritten: 1, blocksRevoked: 1, nextSequence: 93 }, 'the report');
  t.ok((await lab.readHome(a)).equals(aOld), 'the revoked block is untouched');
  t.ok((await lab.readHome(b)).equals(b1), 'the other block is home');

  await lab.space.writeSuperblock({ ...(await lab.space.readSuperblock()), s_feature_incompat: original.s_feature_incompat });
  await lab.close();
  await assertFsckClean(t, lab.image);
});
