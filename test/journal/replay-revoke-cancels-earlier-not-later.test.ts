/**
 * A revoke record cancels the copies of its block logged by its own or
 * earlier transactions and not those logged later: transaction 1 logs
 * inodes a and d, transaction 2 revokes both, transaction 3 logs d again.
 * After replay a keeps its old content (its only copy is revoked) and d
 * holds transaction 3's copy. The same holds when the sequences wrap past
 * 2^32 (0xfffffffe, 0xffffffff, 0): the comparison is modulo 2^32.
 *
 * fsck.ocfs2 1.8.7 is the oracle here too, with one quirk worked around:
 * it counts revoke records as (r_count - 16) / 8 on a 64-bit host (the size
 * of a pointer) while reading 4-byte records, so of the records [a, d] it
 * reads only a. d's first copy is overwritten by transaction 3 either way,
 * so both replays must agree.
 */
import t from 'tap';
import { replayJournal, scanJournal } from '../../fs/journal/replay';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab, assertSameBlocks } from './replayHarness';

for (const firstSeq of [7, 0xfffffffe]) {
  t.test(`a revoke in transaction ${(firstSeq + 1) >>> 0} cancels transaction ${firstSeq}'s copies, not transaction ${(firstSeq + 2) >>> 0}'s`, async (t) => {
    const lab = await JournalLab.create(t, { blockSize: 4096, files: { a: 1, d: 2 } });
    const a = lab.files.get('a')!;
    const d = lab.files.get('d')!;
    const aOld = await lab.readHome(a);
    const a1 = await lab.inodeWith(a, (di) => { di.i_mtime = 1111111111; });
    const d1 = await lab.inodeWith(d, (di) => { di.i_mtime = 1222222222; });
    const d3 = await lab.inodeWith(d, (di) => { di.i_mtime = 1333333333; });
    await lab.writeLog(lab.first + 10, firstSeq, [
      { blocks: [{ blkno: a, data: a1 }, { blkno: d, data: d1 }] },
      { revokes: [a, d] },
      { blocks: [{ blkno: d, data: d3 }] },
    ]);
    const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
    t.same(scan.transactions.map((x) => x.revokes), [[], [a, d], []], 'the revoke records belong to the middle transaction');
    t.same(scan.transactions.map((x) => x.sequence), [firstSeq, (firstSeq + 1) >>> 0, (firstSeq + 2) >>> 0]);

    const { copy } = await lab.oracleReplay(t);
    const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
    t.same(report, { slot: 0, transactions: 3, blocksWritten: 1, blocksRevoked: 2, nextSequence: (firstSeq + 4) >>> 0 },
      'two copies revoked (a and d of the first transaction), one block written (d)');
    t.ok((await lab.readHome(a)).equals(aOld), 'a is untouched: its only copy was revoked');
    t.ok((await lab.readHome(d)).equals(d3), 'd holds the copy logged after the revoke');
    await assertSameBlocks(t, lab.image, copy, [a, d], lab.blockSize, 'home blocks');

    await lab.setJournalDirty(false);
    await lab.close();
    await assertFsckClean(t, lab.image);
  });
}
