/**
 * The journal writer, engine-level, on image files (a "crash" is a copy of
 * the image taken while the volume is mounted, after the journal committed):
 *
 * - metadata changes stay off their home blocks until a checkpoint, are in
 *   the log after a commit, and a crash copy replays to them (o2fuse's
 *   mount, and fsck.ocfs2 -y as an independent replayer);
 * - a small journal wraps many times; crash copies taken between commits
 *   all replay to a consistent volume holding every synced change;
 * - a freed cluster is not reused before the transaction that freed it
 *   commits;
 * - revoke: a directory block that was journaled, then freed with its
 *   directory and reused for file data, is not written back over the data
 *   by a replay (o2fuse's, or fsck.ocfs2's);
 * - a clean unmount leaves the journal empty (s_start 0), its inode's dirty
 *   flag clear, and the next mount's transactions continue the sequence;
 * - a commit and a checkpoint hand their blocks to the device gathered, as
 *   the transaction holds them: no request carries a copy of them.
 * fsck.ocfs2 -fn clean on every volume written.
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Test } from 'tap';
import { Volume } from '../../fs/volume';
import { FileDevice, nodeFileSyscalls, type FileSyscalls } from '../../io/fileDevice';
import { mapRange } from '../../fs/file';
import { systemInodeName, JOURNAL_SYSTEM_INODE, OCFS2_JOURNAL_DIRTY_FL } from '../../fs/format/constants';
import { readInodeBlock } from '../../fs/blocks';
import { JournalSpace } from '../../fs/journal/space';
import { assertFsckClean, fsckReplayAndRepair } from '../lib/fsck';
import { Rng } from '../lib/seed';
import { writableImage, O_RDWR, ROOT, MiB } from '../rw/helpers';

const B = (s: string) => Buffer.from(s);
/** No background commits: the test decides when the journal commits. */
const QUIET = { readOnly: false, commitIntervalMs: 3_600_000 };

async function mount(image: string): Promise<Volume> {
  return Volume.mount(await FileDevice.open(image), QUIET);
}

async function copyImage(t: Test, image: string, name: string): Promise<string> {
  const to = path.join(path.dirname(image), name);
  await fs.copyFile(image, to);
  return to;
}

async function readHome(image: string, blkno: number, bs: number): Promise<Buffer> {
  const fh = await fs.open(image, 'r');
  try {
    const buf = Buffer.alloc(bs);
    await fh.read(buf, 0, bs, blkno * bs);
    return buf;
  } finally {
    await fh.close();
  }
}

/** fsck.ocfs2 -fy as a replayer (fsckReplayAndRepair): what its two runs printed. */
async function fsckReplay(image: string): Promise<string> {
  const { replay, repair } = await fsckReplayAndRepair(image);
  return replay.text + replay.stderr + repair.text + repair.stderr;
}

async function readAll(vol: Volume, name: string): Promise<Buffer> {
  const a = await vol.lookup(vol.rootIno, B(name));
  const fh = await vol.open(a.ino, 0);
  try {
    return await vol.read(a.ino, fh, 0, a.size + 1);
  } finally {
    await vol.release(a.ino, fh);
  }
}

t.test('changes stay in the log until a checkpoint; a crash copy replays them (o2fuse and fsck.ocfs2 -y)', async (t) => {
  const image = await writableImage(t, { sizeBytes: 128 * MiB });
  const vol = await mount(image);
  const bs = vol.geo.blockSize;
  const homeBefore = await readHome(image, vol.rootIno, bs);
  for (let i = 0; i < 20; i++) {
    const f = await vol.create(vol.rootIno, B(`f${i}`), 0o644, O_RDWR, ROOT);
    await vol.write(f.attr.ino, f.fh, 0, B(`content ${i}\n`.repeat(i * 50 + 1)));
    await vol.release(f.attr.ino, f.fh);
  }
  await vol.mkdir(vol.rootIno, B('d'), 0o755, ROOT);
  await vol.syncMetadata();
  t.ok((await readHome(image, vol.rootIno, bs)).equals(homeBefore), 'the root inode\'s home block is unchanged after a commit');
  t.ok(vol.journal!.stats.commits >= 1, `the journal committed (${vol.journal!.stats.commits} commits, ${vol.journal!.stats.logBlocksWritten} log blocks)`);
  const crashed = await copyImage(t, image, 'crashed.img');
  const forFsck = await copyImage(t, image, 'fsck.img');

  await vol.unmount();
  t.notOk((await readHome(image, vol.rootIno, bs)).equals(homeBefore), 'after unmount the root inode is home');
  await assertFsckClean(t, image, 'the cleanly unmounted volume');

  const again = await mount(crashed);
  const names = (await again.readdir(again.rootIno)).map((e) => e.name.toString()).filter((n) => /^f\d+$|^d$/.test(n)).sort();
  t.equal(names.length, 21, 'the crash copy replays to all 20 files and the directory');
  t.ok((await readAll(again, 'f7')).equals(B('content 7\n'.repeat(351))), 'a file\'s data is there');
  await again.unmount();
  await assertFsckClean(t, crashed, 'the crash copy after o2fuse\'s replay');

  const out = await fsckReplay(forFsck);
  t.match(out, /journal replayed successfully|Replaying/i, 'fsck.ocfs2 -y replays o2fuse\'s journal');
  await assertFsckClean(t, forFsck, 'the crash copy after fsck.ocfs2\'s replay');
  const byFsck = await mount(forFsck);
  t.ok((await readAll(byFsck, 'f7')).equals(B('content 7\n'.repeat(351))), 'fsck\'s replay gives the same file');
  t.equal((await byFsck.readdir(byFsck.rootIno)).filter((e) => /^f\d+$|^d$/.test(e.name.toString())).length, 21, 'and the same names');
  await byFsck.unmount();
});

t.test('a small journal wraps; crash copies between commits all replay to every synced change', async (t) => {
  const seed = Number(process.env.SEED ?? 4242);
  t.comment(`seed=${seed} (repeat with SEED=${seed})`);
  const rng = new Rng(seed);
  const image = await writableImage(t, { sizeBytes: 128 * MiB, blockSize: 4096, clusterSize: 4096, journalBytes: 4 * MiB + 64 * 1024 });
  const vol = await mount(image);
  const capacity = vol.journal!.capacity;
  const synced = new Map<string, Buffer>();
  const copies: { image: string; files: Map<string, Buffer> }[] = [];
  for (let round = 0; round < 120; round++) {
    for (let k = 0; k < 8; k++) {
      const name = `r${round}-${k}`;
      const data = rng.bytes(rng.int(1, 6000));
      const f = await vol.create(vol.rootIno, B(name), 0o644, O_RDWR, ROOT);
      await vol.write(f.attr.ino, f.fh, 0, data);
      await vol.release(f.attr.ino, f.fh);
      synced.set(name, data);
    }
    const victims = [...synced.keys()].filter(() => rng.int(0, 9) === 0);
    for (const v of victims) {
      await vol.unlink(vol.rootIno, B(v));
      synced.delete(v);
    }
    await vol.syncMetadata();
    if (round % 24 === 23) copies.push({ image: await copyImage(t, image, `crash-${round}.img`), files: new Map(synced) });
  }
  const st = vol.journal!.stats;
  t.ok(st.logBlocksWritten > 2 * capacity, `the log wrapped: ${st.logBlocksWritten} log blocks written through a ${capacity}-block log, ${st.checkpoints} checkpoints`);
  await vol.unmount();
  await assertFsckClean(t, image, 'the cleanly unmounted volume');
  for (const c of copies) {
    const v = await mount(c.image);
    let bad = 0;
    for (const [name, data] of c.files) if (!(await readAll(v, name)).equals(data)) bad++;
    const count = (await v.readdir(v.rootIno)).filter((e) => /^r\d+-\d+$/.test(e.name.toString())).length;
    t.equal(bad, 0, `${path.basename(c.image)}: all ${c.files.size} synced files read back`);
    t.equal(count, c.files.size, `${path.basename(c.image)}: and no other file`);
    await v.unmount();
    await assertFsckClean(t, c.image, path.basename(c.image));
  }
});

t.test('a freed cluster is not reused before the transaction that freed it commits', async (t) => {
  const image = await writableImage(t, { sizeBytes: 64 * MiB });
  const vol = await mount(image);
  const len = 256 * 1024;
  const a = await vol.create(vol.rootIno, B('a'), 0o644, O_RDWR, ROOT);
  await vol.write(a.attr.ino, a.fh, 0, Buffer.alloc(len, 1));
  await vol.fsync(a.attr.ino, a.fh, false);
  const [aSeg] = await mapRange(vol, await vol.iget(a.attr.ino), 0, len);
  await vol.release(a.attr.ino, a.fh);
  await vol.unlink(vol.rootIno, B('a'));

  const b = await vol.create(vol.rootIno, B('b'), 0o644, O_RDWR, ROOT);
  await vol.write(b.attr.ino, b.fh, 0, Buffer.alloc(len, 2));
  const [bSeg] = await mapRange(vol, await vol.iget(b.attr.ino), 0, len);
  t.not(bSeg.deviceOffset, aSeg.deviceOffset, 'before the commit, a new file does not get the freed clusters');
  await vol.syncMetadata();
  const c = await vol.create(vol.rootIno, B('c'), 0o644, O_RDWR, ROOT);
  await vol.write(c.attr.ino, c.fh, 0, Buffer.alloc(len, 3));
  const [cSeg] = await mapRange(vol, await vol.iget(c.attr.ino), 0, len);
  t.equal(cSeg.deviceOffset, aSeg.deviceOffset, 'after the commit, it does');
  await vol.release(b.attr.ino, b.fh);
  await vol.release(c.attr.ino, c.fh);
  await vol.unmount();
  await assertFsckClean(t, image);
});

t.test('revoke: a journaled directory block freed and reused for data is not replayed over the data', async (t) => {
  const image = await writableImage(t, { sizeBytes: 64 * MiB, blockSize: 4096, clusterSize: 4096, features: 'noinline-data' });
  const vol = await mount(image);
  // A block directory (no inline data): its blocks are journaled metadata.
  const d = await vol.mkdir(vol.rootIno, B('d'), 0o755, ROOT);
  for (let i = 0; i < 40; i++) await vol.mknod(d.ino, B(`entry-with-a-long-name-${i}`), 0o100644, 0, ROOT);
  const dirInode = await vol.iget(d.ino);
  const [dirSeg] = await mapRange(vol, dirInode, 0, vol.geo.blockSize);
  const dirBlk = dirSeg.deviceOffset! / vol.geo.blockSize;
  await vol.syncMetadata(); // the directory block is in the log (transaction N)
  for (let i = 0; i < 40; i++) await vol.unlink(d.ino, B(`entry-with-a-long-name-${i}`));
  await vol.rmdir(vol.rootIno, B('d'));
  await vol.syncMetadata(); // the free and its revoke commit (N+k): the cluster is reusable now
  // A file takes the cluster and its data goes straight to the device.
  const data = Buffer.alloc(64 * 1024, 0x5a);
  let got = -1;
  for (let i = 0; i < 8 && got !== dirBlk; i++) {
    const f = await vol.create(vol.rootIno, B(`data${i}`), 0o644, O_RDWR, ROOT);
    await vol.write(f.attr.ino, f.fh, 0, data);
    await vol.fsync(f.attr.ino, f.fh, false);
    const segs = await mapRange(vol, await vol.iget(f.attr.ino), 0, data.length);
    for (const s of segs) {
      const first = s.deviceOffset! / vol.geo.blockSize;
      if (dirBlk >= first && dirBlk < first + s.length / vol.geo.blockSize) got = dirBlk;
    }
    await vol.release(f.attr.ino, f.fh);
  }
  t.equal(got, dirBlk, `a data file now holds the directory's old block ${dirBlk}`);
  t.ok(vol.journal!.stats.revokes > 0, `revoke records were committed (${vol.journal!.stats.revokes})`);
  const crashed = await copyImage(t, image, 'crashed.img');
  const forFsck = await copyImage(t, image, 'fsck.img');
  await vol.unmount();

  t.ok((await readHome(crashed, dirBlk, vol.geo.blockSize)).equals(data.subarray(0, vol.geo.blockSize)), 'the crash copy holds the file data in that block');
  const again = await mount(crashed);
  await again.unmount();
  t.ok((await readHome(crashed, dirBlk, vol.geo.blockSize)).equals(data.subarray(0, vol.geo.blockSize)), 'o2fuse\'s replay left the data alone (revoked)');
  await assertFsckClean(t, crashed, 'after o2fuse\'s replay');
  await fsckReplay(forFsck);
  t.ok((await readHome(forFsck, dirBlk, vol.geo.blockSize)).equals(data.subarray(0, vol.geo.blockSize)), 'fsck.ocfs2\'s replay left it alone too');
  await assertFsckClean(t, forFsck, 'after fsck.ocfs2\'s replay');
});

t.test('a clean unmount leaves the journal empty and clean; the sequence continues across mounts', async (t) => {
  const image = await writableImage(t, { sizeBytes: 64 * MiB });
  const journalState = async () => {
    const v = await Volume.mount(await FileDevice.open(image), { readOnly: true });
    const ino = v.systemFile(systemInodeName(JOURNAL_SYSTEM_INODE, 0));
    const { di } = await readInodeBlock(v, ino);
    const jsb = await (await JournalSpace.open(v, 0, ino, di)).readSuperblock();
    await v.unmount();
    return { dirty: (di.ij_flags & OCFS2_JOURNAL_DIRTY_FL) !== 0, start: jsb.s_start, sequence: jsb.s_sequence };
  };
  let vol = await mount(image);
  await vol.mkdir(vol.rootIno, B('x'), 0o755, ROOT);
  await vol.syncMetadata();
  const firstTid = vol.journal!.runningTid;
  await vol.unmount();
  const after1 = await journalState();
  t.same([after1.dirty, after1.start], [false, 0], 'after unmount: dirty flag clear, s_start 0');
  t.ok(after1.sequence >= firstTid, `s_sequence ${after1.sequence} is past the transactions used (${firstTid})`);
  vol = await mount(image);
  t.ok(vol.journal!.runningTid >= after1.sequence, 'the next mount continues the sequence');
  await vol.unmount();
  await assertFsckClean(t, image);
});

t.test('a commit and a checkpoint write their blocks gathered, never joined into a copy', async (t) => {
  const image = await writableImage(t, { sizeBytes: 64 * MiB });
  const bs = 4096;
  const plain: number[] = [];
  const gathered: number[] = [];
  const recording: FileSyscalls = {
    ...nodeFileSyscalls,
    write: (fd, buf, off, len, pos) => {
      plain.push(len);
      return nodeFileSyscalls.write(fd, buf, off, len, pos);
    },
    writev: (fd, bufs, pos) => {
      gathered.push(bufs.length);
      return nodeFileSyscalls.writev(fd, bufs, pos);
    },
  };
  const vol = await Volume.mount(await FileDevice.open(image, { syscalls: recording }), QUIET);
  t.equal(vol.geo.blockSize, bs);
  // 600 new inodes: the transaction's blocks run in the log, and at home (one inode group) in long runs.
  for (let i = 0; i < 600; i++) {
    const f = await vol.create(vol.rootIno, B(`g${i}`), 0o644, O_RDWR, ROOT);
    await vol.release(f.attr.ino, f.fh);
  }
  plain.length = 0;
  gathered.length = 0;
  await vol.syncMetadata();
  t.ok(gathered.some((n) => n > 100), `the log went out gathered (${gathered.length} requests, up to ${Math.max(...gathered)} buffers)`);
  t.same(plain.filter((n) => n > bs), [], 'no plain write of more than one block while committing');
  plain.length = 0;
  gathered.length = 0;
  await vol.journal!.checkpoint();
  t.ok(gathered.some((n) => n > 100), `the checkpoint wrote runs of blocks gathered (up to ${Math.max(...gathered)} buffers)`);
  t.same(plain.filter((n) => n > bs), [], 'no plain write of more than one block while checkpointing');
  await vol.unmount();
  await assertFsckClean(t, image);
  const again = await mount(image);
  t.equal((await again.readdir(again.rootIno)).filter((e) => /^g\d+$/.test(e.name.toString())).length, 600, 'every file is there');
  await again.unmount();
});

t.test('a log write that fails aborts the journal: fsync and later changes fail, the next mount replays to a consistent volume', async (t) => {
  const { FaultyDevice } = await import('../../io/faultyDevice');
  const image = await writableImage(t, { sizeBytes: 64 * MiB });
  const dev = new FaultyDevice(await FileDevice.open(image), { cache: 'writethrough' });
  const vol = await Volume.mount(dev, QUIET);
  const keep = await vol.create(vol.rootIno, B('kept'), 0o644, O_RDWR, ROOT);
  await vol.write(keep.attr.ino, keep.fh, 0, B('synced before the failure'));
  await vol.fsync(keep.attr.ino, keep.fh, false);
  await vol.release(keep.attr.ino, keep.fh);

  const space = vol.journal!.space;
  const bs = vol.geo.blockSize;
  const logStart = space.physical(1) * bs;
  const logEnd = (space.physical(space.blocks - 1) + 1) * bs;
  const rule = dev.fail({ op: 'write', startByte: logStart, endByte: logEnd });
  const f = await vol.create(vol.rootIno, B('lost'), 0o644, O_RDWR, ROOT);
  let err = '';
  await vol.fsync(f.attr.ino, f.fh, false).catch((e: Error) => (err = e.message));
  t.match(err, /EIO|abort/, `fsync reports the failed log write: ${err}`);
  t.ok(rule.hits > 0, 'a log write was failed');
  let later = '';
  await vol.mkdir(vol.rootIno, B('after'), 0o755, ROOT).catch((e: Error) => (later = e.message));
  t.match(later, /aborted/, 'a later change is refused: the journal is aborted');
  t.ok((await vol.read(keep.attr.ino, 0, 0, 100)).equals(B('synced before the failure')), 'reads still work');
  await vol.unmount().catch(() => undefined);

  const again = await mount(image);
  t.ok((await readAll(again, 'kept')).equals(B('synced before the failure')), 'after remount (replay) the synced file is there');
  await again.unmount();
  await assertFsckClean(t, image, 'the volume after the aborted journal was replayed');
});
