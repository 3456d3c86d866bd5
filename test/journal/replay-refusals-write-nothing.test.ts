/**
 * What replay refuses, and that a refusal writes nothing at all (the image
 * hashes the same before and after): a committed transaction whose
 * descriptor names a block outside the volume (EIO naming the slot and the
 * block, even when earlier transactions are fine); JBD2 incompat features
 * this code does not read (EINVAL naming the slot and the bits); a
 * descriptor whose tags overrun the block (EIO). And the empty log:
 * s_start 0 means nothing to do, whatever the log blocks hold.
 */
import t from 'tap';
import { replayJournal } from '../../fs/journal/replay';
import {
  JBD2_DESCRIPTOR_BLOCK, JBD2_FEATURE_INCOMPAT_FAST_COMMIT, JBD2_FLAG_SAME_UUID, JBD2_MAGIC_NUMBER,
} from '../../fs/format/jbd2';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab, imageHash } from './replayHarness';

t.test('a descriptor naming a block outside the volume: EIO, nothing written', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 2048 });
  const a = lab.files.get('a')!;
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1590000000; });
  const outside = lab.volumeBlocks + 3;
  await lab.writeLog(lab.first + 2, 60, [
    { blocks: [{ blkno: a, data: a1 }] },
    { blocks: [{ blkno: a, data: a1 }, { blkno: outside, data: Buffer.alloc(lab.blockSize, 7) }] },
  ]);
  await lab.device.flush();
  const before = await imageHash(lab.image);
  await t.rejects(replayJournal(lab.device, lab.space, lab.volumeBlocks),
    { name: 'FsError', errno: 'EIO', message: new RegExp(`journal of slot 0 .*transaction 61 logs block ${outside} .*outside the ${lab.volumeBlocks}-block volume`) },
    'EIO naming the slot, the transaction and the block');
  t.equal(await imageHash(lab.image), before, 'nothing was written: not the good transaction, not the journal superblock');
  t.equal((await lab.space.readSuperblock()).s_start, lab.first + 2, 'the log is still there for another tool');
  await lab.close();
});

t.test('JBD2 incompat features outside READABLE_INCOMPAT: EINVAL naming them, nothing written', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 4096 });
  const a = lab.files.get('a')!;
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1590000001; });
  await lab.writeLog(lab.first, 1, [{ blocks: [{ blkno: a, data: a1 }] }],
    { s_feature_incompat: lab.jsb.s_feature_incompat | JBD2_FEATURE_INCOMPAT_FAST_COMMIT | 0x100 });
  await lab.device.flush();
  const before = await imageHash(lab.image);
  await t.rejects(replayJournal(lab.device, lab.space, lab.volumeBlocks),
    { name: 'FsError', errno: 'EINVAL', message: /journal of slot 0 .*incompat feature bits 0x120 / },
    'EINVAL naming the slot and the unknown bits');
  t.equal(await imageHash(lab.image), before, 'nothing was written');
  await lab.close();
});

t.test('a descriptor whose tags overrun the block: EIO, nothing written', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 1024 });
  await lab.writeLog(lab.first, 3, []);
  // 8-byte SAME_UUID tags up to the block's end, the last one without SAME_UUID or LAST_TAG: its UUID cannot fit.
  const desc = Buffer.alloc(lab.blockSize);
  desc.writeUInt32BE(JBD2_MAGIC_NUMBER, 0);
  desc.writeUInt32BE(JBD2_DESCRIPTOR_BLOCK, 4);
  desc.writeUInt32BE(3, 8);
  for (let off = 12; off + 8 <= lab.blockSize; off += 8) {
    desc.writeUInt32BE(lab.files.get('a')!, off);
    desc.writeUInt32BE(off + 16 <= lab.blockSize ? JBD2_FLAG_SAME_UUID : 0, off + 4);
  }
  await lab.space.write(lab.first, desc);
  await lab.device.flush();
  const before = await imageHash(lab.image);
  await t.rejects(replayJournal(lab.device, lab.space, lab.volumeBlocks),
    { name: 'FsError', errno: 'EIO', message: /slot 0 .*descriptor of transaction 3 at log block \d+.*UUID runs past the block/ },
    'EIO naming the descriptor');
  t.equal(await imageHash(lab.image), before, 'nothing was written');
  await lab.close();
});

t.test('an empty log (s_start 0) is left alone', async (t) => {
  const lab = await JournalLab.create(t, { blockSize: 4096 });
  const a = lab.files.get('a')!;
  const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1590000002; });
  // A committed transaction in the log, but the superblock says the log is empty: it was replayed already.
  await lab.writeLog(lab.first, 70, [{ blocks: [{ blkno: a, data: a1 }] }]);
  lab.jsb = { ...lab.jsb, s_start: 0, s_sequence: 71 };
  await lab.space.writeSuperblock(lab.jsb);
  await lab.device.flush();
  const before = await imageHash(lab.image);
  const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
  t.same(report, { slot: 0, transactions: 0, blocksWritten: 0, blocksRevoked: 0, nextSequence: 72 },
    'nothing replayed; the next transaction is one past s_sequence, as the kernel starts a clean log');
  t.equal(await imageHash(lab.image), before, 'nothing was written');
  await lab.close();
  await assertFsckClean(t, lab.image);
});
