/**
 * One committed transaction that logs a real inode block (a file made
 * through the engine, with a new i_mode and i_mtime) is written home by
 * replayJournal: the home block equals the logged copy and what
 * fsck.ocfs2 -y's replay writes, the journal superblock is reset (s_start 0,
 * s_sequence one past the transaction, as fsck writes it), the device is
 * flushed after the home writes and again after the superblock, and the
 * volume is clean. On 4 KiB blocks, and on 1 KiB blocks with metaecc.
 */
import t from 'tap';
import { replayJournal, scanJournal } from '../../fs/journal/replay';
import { assertFsckClean } from '../lib/fsck';
import { JournalLab, assertSameBlocks, readImageBlock } from './replayHarness';

const variants = [
  { name: '4 KiB blocks', blockSize: 4096, features: undefined },
  { name: '1 KiB blocks, metaecc', blockSize: 1024, features: 'metaecc' },
];

for (const v of variants) {
  t.test(`one transaction changes an inode's mode and mtime (${v.name})`, async (t) => {
    const lab = await JournalLab.create(t, { blockSize: v.blockSize, features: v.features });
    const ino = lab.files.get('a')!;
    const before = await lab.dinode(ino);
    const changed = await lab.inodeWith(ino, (di) => {
      di.i_mode = (di.i_mode & ~0o7777) | 0o600;
      di.i_mtime = 1600000000;
      di.i_mtime_nsec = 123456789;
    });
    const start = lab.first + 3;
    const { copies } = await lab.writeLog(start, 41, [{ blocks: [{ blkno: ino, data: changed }] }]);

    const scan = await scanJournal(lab.space, lab.jsb, lab.volumeBlocks);
    t.same(scan.transactions, [{ sequence: 41, tags: [{ blkno: ino, logBlock: copies[0][0], escaped: false }], revokes: [] }],
      'the scan finds the one committed transaction and where its copy is');
    t.equal(scan.nextSequence, 42 + 1, 'the next sequence is one past where the log ended (kernel and fsck.ocfs2 alike)');
    t.match(scan.endReason, /log block \d+ is not a journal block/, 'the zero block after the commit ends the log');

    const { copy } = await lab.oracleReplay(t);

    // Watch the device: home writes, flush, journal superblock, flush.
    const events: string[] = [];
    const dev = lab.device;
    const write = dev.write.bind(dev);
    const flush = dev.flush.bind(dev);
    const jsbByte = lab.space.physical(0) * lab.blockSize;
    dev.write = async (buf, offset) => {
      events.push(offset === jsbByte ? 'jsb' : `home ${offset / lab.blockSize}`);
      return write(buf, offset);
    };
    dev.flush = async () => {
      events.push('flush');
      return flush();
    };
    const report = await replayJournal(dev, lab.space, lab.volumeBlocks);
    dev.write = write;
    dev.flush = flush;

    t.same(report, { slot: 0, transactions: 1, blocksWritten: 1, blocksRevoked: 0, nextSequence: 43 }, 'the report');
    t.same(events, [`home ${ino}`, 'flush', 'jsb', 'flush'], 'home blocks are durable before the log is reset, and the reset is flushed');
    t.ok((await lab.readHome(ino)).equals(changed), 'the home block is the logged copy');
    const after = await lab.dinode(ino);
    t.equal(after.i_mode & 0o7777, 0o600, 'i_mode changed');
    t.equal(after.i_mtime, 1600000000, 'i_mtime changed');
    t.not(before.i_mtime, after.i_mtime);
    const jsb = await lab.space.readSuperblock();
    t.equal(jsb.s_start, 0, 's_start is 0: the log is empty');
    t.equal(jsb.s_sequence, 43, 's_sequence is the next sequence');

    await assertSameBlocks(t, lab.image, copy, [ino], lab.blockSize, 'home block');
    const oracleJsb = await readImageBlock(copy, lab.space.physical(0), lab.blockSize);
    t.ok(oracleJsb.equals(await lab.readHome(lab.space.physical(0))), 'the journal superblock is what fsck.ocfs2 writes after its replay');

    t.same(await replayJournal(dev, lab.space, lab.volumeBlocks),
      { slot: 0, transactions: 0, blocksWritten: 0, blocksRevoked: 0, nextSequence: 44 }, 'a second replay finds nothing to do');

    await lab.setJournalDirty(false);
    await lab.close();
    await assertFsckClean(t, lab.image);
  });
}
