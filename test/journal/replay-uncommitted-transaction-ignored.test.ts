/**
 * A trailing transaction whose commit block never reached the log did not
 * happen: replay writes the committed transaction before it and nothing of
 * the uncommitted one (as fsck.ocfs2 -y), and the next sequence is one past
 * the uncommitted one so its blocks can never be taken for a later
 * transaction's. What an uncommitted transaction holds is not even judged:
 * a tag outside the volume there is no error.
 */
import t from 'tap';
import { replayJournal, scanJournal } from '../../fs/journal/replay';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab, assertSameBlocks } from './replayHarness';

t.test('a trailing transaction without its commit block is ignored', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 1024, clusterSize: 4096 });
  const a = lab.files.get('a')!;
  const b = lab.files.get('b')!;
  const bOld = await lab.readHome(b);
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1510000000; });
  const a2 = await lab.inodeWith(a, (di) => { di.i_mtime = 1520000000; });
  const b2 = await lab.inodeWith(b, (di) => { di.i_mtime = 1520000000; });
  await lab.writeLog(lab.first + 1, 20, [
    { blocks: [{ blkno: a, data: a1 }] },
    { blocks: [{ blkno: a, data: a2 }, { blkno: b, data: b2 }], commit: false },
  ]);
  const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
  t.same(scan.transactions.map((x) => x.sequence), [20], 'only the committed transaction is returned');
  t.equal(scan.nextSequence, 22, 'the next sequence skips the uncommitted transaction\'s');
  t.match(scan.endReason, /transaction 21 \(2 block\(s\)\) has no commit block/, 'the end reason names it');

  const { copy } = await lab.oracleReplay(t);
  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 1, blocksWritten: 1, blocksRevoked: 0, nextSequence: 22 }, 'the report');
  t.ok((await lab.readHome(a)).equals(a1), 'a holds the committed copy, not the uncommitted one');
  t.ok((await lab.readHome(b)).equals(bOld), 'b is untouched');
  await assertSameBlocks(t, lab.image, copy, [a, b], lab.blockSize, 'home blocks');

  await lab.setJournalDirty(false);
  await lab.close();
  await assertFsckClean(t, lab.image);
});

t.test('an uncommitted transaction naming a block outside the volume is ignored, not an error', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 4096 });
  const a = lab.files.get('a')!;
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1530000000; });
  await lab.writeLog(lab.first, 5, [
    { blocks: [{ blkno: a, data: a1 }] },
    { blocks: [{ blkno: lab.volumeBlocks + 100, data: Buffer.alloc(lab.blockSize, 1) }], commit: false },
  ]);
  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 1, blocksWritten: 1, blocksRevoked: 0, nextSequence: 7 }, 'the report');
  t.ok((await lab.readHome(a)).equals(a1), 'the committed transaction is replayed');
  await lab.close();
  await assertFsckClean(t, lab.image);
});
