/**
 * A logged block whose content starts with the JBD2 magic is stored escaped
 * (first 4 bytes zeroed, JBD2_FLAG_ESCAPE in its tag) so the scan cannot
 * take it for a log block; replay puts the magic back. Here: a file data
 * block rewritten to start with 0xc03b3998, followed in the same
 * transaction by an inode change. The home blocks match fsck.ocfs2 -y's
 * replay and the volume is clean.
 */
import t from 'tap';
import { replayJournal, scanJournal } from '../../fs/journal/replay';
import { JBD2_MAGIC_NUMBER } from '../../fs/format/jbd2';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab, assertSameBlocks } from './replayHarness';

t.test('an escaped block gets its JBD2 magic back', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 4096, files: { big: 3 * 4096, a: 5 } });
  const big = lab.files.get('big')!;
  const a = lab.files.get('a')!;
  const dataBlk = await lab.firstDataBlock(big);
  const data = Buffer.alloc(lab.blockSize, 0x5a);
  data.writeUInt32BE(JBD2_MAGIC_NUMBER, 0);
  data.writeUInt32BE(1, 4); // a descriptor's block type and a plausible sequence: it must still be data
  data.writeUInt32BE(300, 8);
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1650000000; });
  const { copies } = await lab.writeLog(lab.first, 300, [{ blocks: [{ blkno: dataBlk, data }, { blkno: a, data: a1 }] }]);
  t.equal((await lab.space.read(copies[0][0])).readUInt32BE(0), 0, 'the logged copy is escaped');

  const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
  t.same(scan.transactions[0]?.tags.map((g) => g.escaped), [true, false], 'the scan reports which copy is escaped');

  const { copy } = await lab.oracleReplay(t);
  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 1, blocksWritten: 2, blocksRevoked: 0, nextSequence: 302 }, 'the report');
  t.ok((await lab.readHome(dataBlk)).equals(data), 'the data block is home with its magic restored');
  t.ok((await lab.readHome(a)).equals(a1), 'the inode logged after it in the same descriptor is home');
  await assertSameBlocks(t, lab.image, copy, [dataBlk, a], lab.blockSize, 'home blocks');

  await lab.setJournalDirty(false);
  await lab.close();
  await assertFsckClean(t, lab.image);
});
