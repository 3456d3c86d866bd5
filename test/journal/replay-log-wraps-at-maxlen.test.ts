/**
 * A log that starts two blocks before s_maxlen continues at s_first: the
 * first transaction's descriptor and copy sit in the last two journal
 * blocks, its commit block and the next transactions at s_first onward.
 * Replay finds all of them, writes them home like fsck.ocfs2 -y's replay,
 * and leaves the volume clean.
 */
import t from 'tap';
import { replayJournal, scanJournal } from '../../fs/journal/replay';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab, assertSameBlocks } from './replayHarness';

t.test('a log that runs past s_maxlen wraps to s_first', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 1024, files: { a: 10, b: 20, c: 0 } });
  const [a, b, c] = ['a', 'b', 'c'].map((n) => lab.files.get(n)!);
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1400000000; });
  const b1 = await lab.inodeWith(b, (di) => { di.i_gid = 77; });
  const c1 = await lab.inodeWith(c, (di) => { di.i_mode = (di.i_mode & ~0o7777) | 0o640; });
  const start = lab.last - 2;
  const { copies, end } = await lab.writeLog(start, 0x7ffffffe, [
    { blocks: [{ blkno: a, data: a1 }] },
    { blocks: [{ blkno: b, data: b1 }, { blkno: c, data: c1 }] },
  ]);
  t.same(copies, [[lab.last - 1], [lab.first + 2, lab.first + 3]], 'the crafted log wraps after its first copy');
  t.equal(end, lab.first + 5, 'and ends past s_first');

  const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
  t.same(scan.transactions.map((x) => [x.sequence, x.tags.map((g) => g.logBlock)]),
    [[0x7ffffffe, [lab.last - 1]], [0x7fffffff, [lab.first + 2, lab.first + 3]]], 'the scan follows the wrap');
  t.equal(scan.nextSequence, 0x80000001, 'sequences count on past 2^31');

  const { copy } = await lab.oracleReplay(t);
  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 2, blocksWritten: 3, blocksRevoked: 0, nextSequence: 0x80000001 }, 'the report');
  t.ok((await lab.readHome(a)).equals(a1), 'the block logged before the wrap is home');
  t.ok((await lab.readHome(b)).equals(b1) && (await lab.readHome(c)).equals(c1), 'the blocks logged after the wrap are home');
  await assertSameBlocks(t, lab.image, copy, [a, b, c], lab.blockSize, 'home blocks');

  await lab.setJournalDirty(false);
  await lab.close();
  await assertFsckClean(t, lab.image);
});
