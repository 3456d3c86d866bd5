/**
 * Several committed transactions that log the same inode block: after
 * replay the home block holds the last transaction's copy (and is written
 * once), another block logged only by the first transaction is home too,
 * the result matches fsck.ocfs2 -y's replay byte for byte, and the volume is
 * clean.
 */
import t from 'tap';
import { replayJournal } from '../../fs/journal/replay';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab, assertSameBlocks } from './replayHarness';

t.test('the last of several transactions logging one block wins', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 2048, clusterSize: 8192 });
  const a = lab.files.get('a')!;
  const b = lab.files.get('b')!;
  const aAt = (sec: number) => lab.inodeWith(a, (di) => {
    di.i_mtime = sec;
    di.i_ctime = sec;
  });
  const a1 = await aAt(1500000001);
  const a2 = await aAt(1500000002);
  const a3 = await aAt(1500000003);
  const b1 = await lab.inodeWith(b, (di) => {
    di.i_uid = 1234;
  });
  await lab.writeLog(lab.first, 1000, [
    { blocks: [{ blkno: a, data: a1 }, { blkno: b, data: b1 }] },
    { blocks: [{ blkno: a, data: a2 }] },
    { blocks: [{ blkno: a, data: a3 }] },
  ]);
  const { copy } = await lab.oracleReplay(t);

  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 3, blocksWritten: 2, blocksRevoked: 0, nextSequence: 1004 },
    'three transactions, two distinct home blocks written once each');
  t.ok((await lab.readHome(a)).equals(a3), 'inode a holds the third transaction\'s copy');
  t.equal((await lab.dinode(a)).i_mtime, 1500000003);
  t.ok((await lab.readHome(b)).equals(b1), 'inode b, logged only by the first transaction, holds that copy');
  await assertSameBlocks(t, lab.image, copy, [a, b], lab.blockSize, 'home blocks');

  await lab.setJournalDirty(false);
  await lab.close();
  await assertFsckClean(t, lab.image);
});
