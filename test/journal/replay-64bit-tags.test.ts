/**
 * A journal with JBD2_FEATURE_INCOMPAT_64BIT (mkfs -J block64) has 12-byte
 * tags carrying a high word and 8-byte revoke records. Replay reads both:
 * the tagged blocks are written home as fsck.ocfs2 -y writes them, an
 * 8-byte revoke record cancels an earlier copy, and a tag whose high word
 * is set names a block past 2^32, outside the volume: EIO naming it, and
 * nothing written.
 *
 * (The revoke case has no oracle: fsck.ocfs2 1.8.7 reads revoke records as
 * 4 bytes whatever the features.)
 */
import t from 'tap';
import { replayJournal, scanJournal } from '../../fs/journal/replay';
import { JBD2_FEATURE_INCOMPAT_64BIT, journalTagBytes } from '../../fs/format/jbd2';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab, assertSameBlocks, imageHash } from './replayHarness';

t.test('64-bit tags are replayed', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 4096, journal64: true });
  t.ok(lab.jsb.s_feature_incompat & JBD2_FEATURE_INCOMPAT_64BIT, 'the journal has the 64bit feature');
  t.equal(journalTagBytes(lab.jsb.s_feature_incompat), 12, 'so its tags are 12 bytes');
  const a = lab.files.get('a')!;
  const b = lab.files.get('b')!;
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1560000000; });
  const b1 = await lab.inodeWith(b, (di) => { di.i_atime = 1560000001; });
  const a2 = await lab.inodeWith(a, (di) => { di.i_mtime = 1560000002; });
  await lab.writeLog(lab.first + 7, 9, [
    { blocks: [{ blkno: a, data: a1 }, { blkno: b, data: b1 }] },
    { blocks: [{ blkno: a, data: a2 }] },
  ]);
  const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
  t.same(scan.transactions.map((x) => x.tags.map((g) => g.blkno)), [[a, b], [a]], 'the tags decode as 12-byte tags');

  const { copy } = await lab.oracleReplay(t);
  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 2, blocksWritten: 2, blocksRevoked: 0, nextSequence: 12 }, 'the report');
  t.ok((await lab.readHome(a)).equals(a2) && (await lab.readHome(b)).equals(b1), 'the home blocks hold the last copies');
  await assertSameBlocks(t, lab.image, copy, [a, b], lab.blockSize, 'home blocks');

  await lab.setJournalDirty(false);
  await lab.close();
  await assertFsckClean(t, lab.image);
});

t.test('an 8-byte revoke record cancels an earlier copy in a 64-bit journal', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 4096, journal64: true });
  const a = lab.files.get('a')!;
  const b = lab.files.get('b')!;
  const aOld = await lab.readHome(a);
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1570000000; });
  const b1 = await lab.inodeWith(b, (di) => { di.i_mtime = 1570000000; });
  await lab.writeLog(lab.first, 1, [{ blocks: [{ blkno: a, data: a1 }, { blkno: b, data: b1 }] }, { revokes: [a] }]);
  const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
  t.same(scan.transactions[1]?.revokes, [a], 'the record decodes as 8 bytes');
  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 2, blocksWritten: 1, blocksRevoked: 1, nextSequence: 4 }, 'the report');
  t.ok((await lab.readHome(a)).equals(aOld), 'a is untouched');
  t.ok((await lab.readHome(b)).equals(b1), 'b is home');
  await lab.close();
  await assertFsckClean(t, lab.image);
});

t.test('a tag with its high word set names a block outside the volume: EIO, nothing written', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 4096, journal64: true });
  const a = lab.files.get('a')!;
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1580000000; });
  await lab.writeLog(lab.first, 1, [
    { blocks: [{ blkno: a, data: a1 }] },
    { blocks: [{ blkno: a, data: a1 }], editTags: (tags) => { tags[0].t_blocknr_high = 1; } },
  ]);
  await lab.device.flush();
  const before = await imageHash(lab.image);
  const far = 2 ** 32 + a;
  await t.rejects(replayJournal(lab.device, lab.space, lab.volumeBlocks),
    { name: 'FsError', errno: 'EIO', message: new RegExp(`slot 0.*transaction 2 logs block ${far} .*outside the ${lab.volumeBlocks}-block volume`) },
    'EIO naming the slot, the transaction and the block');
  t.equal(await imageHash(lab.image), before, 'nothing was written (not even the first transaction)');
  await lab.close();
});
