/**
 * Open-but-unlinked inodes (orphans), at the engine level:
 * - a file unlinked while open is entered in orphan_dir:0000 (the engine's
 *   readdir of it, and debugfs.ocfs2 on a copy of the image), stays readable
 *   and writable through its handles, and is freed at its last release: the
 *   entry goes and every cluster and inode bit comes back;
 * - an open directory that is removed is an orphan too, and the orphan
 *   directory's link count follows it;
 * - orphans left by a crash (the image copied while they were open, the slot
 *   map still saying "mounted") are freed at the next read-write mount once
 *   the slot is cleared by hand (fsck.ocfs2 -y would free them itself: shown
 *   first, on another copy);
 * - an unmount with files still open leaves their orphans, and the next mount
 *   frees them;
 * - an inode freed (unlink of a closed file, last release of an orphan)
 *   while the flusher is still writing its pages back: the free waits for
 *   that write, so it cannot land in the file that reuses the clusters;
 * - an append-dio orphan ("dio-<blkno>", OCFS2_DIO_ORPHANED_FL, clusters
 *   allocated past i_size by a direct write that never finished), crafted
 *   with the engine's own transaction API, is trimmed back to i_size at mount,
 *   its flag cleared and its entry removed; libocfs2 reads the same bytes.
 * fsck.ocfs2 -fn clean at the end of each.
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import { assertFsckClean, fsckReplayAndRepair, runFsck } from '../lib/fsck';
import { debugfs, lsDir, statPath, superblockStats } from '../lib/debugfs';
import { cat } from '../lib/oracle';
import { copyImage } from '../lib/volume';
import { Rng } from '../lib/seed';
import { Volume } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';
import { FaultyDevice } from '../../io/faultyDevice';
import { writebackInode } from '../../fs/fileIo';
import { mapRange } from '../../fs/file';
import { editInode } from '../../fs/transaction';
import { addEntry } from '../../fs/dirUpdate';
import { orphanName } from '../../fs/orphan';
import {
  OCFS2_DIO_ORPHANED_FL, OCFS2_FT_REG_FILE, OCFS2_ORPHANED_FL, ORPHAN_DIR_SYSTEM_INODE, SLOT_MAP_SYSTEM_INODE,
  systemInodeName,
} from '../../fs/format/constants';
import { writableImage, mountEngine, allocCounts, assertCountsBack, outcome, O_RDONLY, O_RDWR, ROOT, MiB } from './helpers';

const ORPHAN_DIR = systemInodeName(ORPHAN_DIR_SYSTEM_INODE, 0);

async function orphanNames(vol: Volume): Promise<string[]> {
  const entries = await vol.readdir(vol.systemFile(ORPHAN_DIR));
  return entries.map((e) => e.name.toString('latin1')).filter((n) => n !== '.' && n !== '..').sort();
}

/** Waits until the device has every write, then copies the image: what a power cut leaves. */
/**
 * A copy of a mounted volume's image as a crash would leave it: what the
 * journal committed is in the log (replayed by the next mount), nothing of
 * the running transaction.
 */
async function crashCopy(t: Test, vol: Volume, image: string): Promise<string> {
  await vol.syncMetadata();
  return copyImage(t, image);
}

/** A copy of a mounted volume's image with every committed change at home, for tools that do not replay. */
async function checkpointedCopy(t: Test, vol: Volume, image: string): Promise<string> {
  await vol.checkpoint();
  return copyImage(t, image);
}


t.test('an open file unlinked is an orphan: readable and writable through its handles, freed at the last release', async (t) => {
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 128 * MiB });
  const vol = await mountEngine(image);
  const start = await allocCounts(vol);
  const data = new Rng(1).bytes(300 * 1024 + 17);
  const { attr, fh } = await vol.create(vol.rootIno, Buffer.from('victim'), 0o644, O_RDWR, ROOT);
  const ino = attr.ino;
  t.equal(await vol.write(ino, fh, 0, data), data.length, 'written');
  await vol.fsync(ino, fh, false);
  const fh2 = await vol.open(ino, O_RDONLY);
  const used = await allocCounts(vol);
  t.ok(used.freeClusters < start.freeClusters, `the file holds ${start.freeClusters - used.freeClusters} clusters`);

  await vol.unlink(vol.rootIno, Buffer.from('victim'));
  t.equal(await outcome(vol.lookup(vol.rootIno, Buffer.from('victim'))), 'ENOENT', 'the name is gone');
  t.same(await orphanNames(vol), [orphanName(ino).toString()], 'orphan_dir:0000 holds it under its block number in 16 hex digits');
  const inode = await vol.iget(ino);
  t.equal(inode.nlink, 0, 'no links');
  t.ok(inode.di.i_flags & OCFS2_ORPHANED_FL, 'OCFS2_ORPHANED_FL set');
  t.equal(inode.di.i_orphaned_slot, 0, 'i_orphaned_slot says slot 0');
  t.equal((await allocCounts(vol)).freeClusters, used.freeClusters, 'nothing freed yet');

  // libocfs2 sees the same (on a copy: the volume is still mounted).
  const copy = await checkpointedCopy(t, vol, image);
  const ls = await lsDir(copy, `//${ORPHAN_DIR}`);
  t.same(ls.filter((e) => e.name !== '.' && e.name !== '..').map((e) => [e.name, e.blkno, e.nlink, e.sizeBytes]),
    [[orphanName(ino).toString(), ino, 0, data.length]], 'debugfs.ocfs2 lists the orphan entry (inode, nlink 0, size)');

  t.ok((await vol.read(ino, fh2, 0, data.length + 10)).equals(data), 'still readable through the other handle');
  const more = new Rng(2).bytes(3 * 4096 + 5);
  t.equal(await vol.write(ino, fh, data.length + 8192, more), more.length, 'and writable past its end (a hole between)');
  await vol.fsync(ino, fh, false);
  const all = await vol.read(ino, fh2, 0, 10 * MiB);
  t.equal(all.length, data.length + 8192 + more.length, 'the size grew');
  t.ok(all.subarray(0, data.length).equals(data) && all.subarray(data.length + 8192).equals(more) &&
    all.subarray(data.length, data.length + 8192).every((b) => b === 0), 'old bytes, zeros, new bytes');

  await vol.release(ino, fh);
  t.same(await orphanNames(vol), [orphanName(ino).toString()], 'one handle left: still an orphan');
  t.equal((await vol.getattr(ino)).nlink, 0, 'still there');
  await vol.release(ino, fh2);
  t.same(await orphanNames(vol), [], 'the last release removes the orphan entry');
  t.equal(await outcome(vol.getattr(ino)), 'ESTALE', 'and frees the inode');
  assertCountsBack(t, start, await allocCounts(vol), 'after the last release');
  await vol.unmount();
  t.equal((await statPath(image, `<${ino}>`)).flags.includes('Valid'), false, 'debugfs: the inode block is no longer valid');
  await assertFsckClean(t, image);
});

t.test('an open directory removed is an orphan; the orphan directory counts its link', async (t) => {
  const image = await writableImage(t, { blockSize: 1024, clusterSize: 4096, sizeBytes: 128 * MiB, features: 'noinline-data' });
  const vol = await mountEngine(image);
  const start = await allocCounts(vol);
  const orphanDirIno = vol.systemFile(ORPHAN_DIR);
  const before = (await vol.getattr(orphanDirIno)).nlink;
  const d = await vol.mkdir(vol.rootIno, Buffer.from('d'), 0o755, ROOT);
  const fh = await vol.open(d.ino, O_RDONLY);
  await vol.rmdir(vol.rootIno, Buffer.from('d'));
  t.same(await orphanNames(vol), [orphanName(d.ino).toString()], 'the directory is in orphan_dir:0000');
  t.equal((await vol.getattr(orphanDirIno)).nlink, before + 1, 'whose link count grew by one (the orphan\'s "..")');
  t.equal((await vol.getattr(d.ino)).nlink, 0, 'the removed directory has no links');
  t.equal(await outcome(vol.create(d.ino, Buffer.from('x'), 0o644, O_RDWR, ROOT)), 'ENOENT', 'nothing can be created in it');
  await vol.release(d.ino, fh);
  t.same(await orphanNames(vol), [], 'freed at release');
  t.equal((await vol.getattr(orphanDirIno)).nlink, before, 'the orphan directory\'s link count is back');
  assertCountsBack(t, start, await allocCounts(vol), 'after the release');
  await vol.unmount();
  await assertFsckClean(t, image);
});

t.test('orphans left by a crash are freed at the next read-write mount', async (t) => {
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 128 * MiB });
  let vol = await mountEngine(image);
  const kept = await vol.create(vol.rootIno, Buffer.from('kept'), 0o644, O_RDWR, ROOT);
  await vol.write(kept.attr.ino, kept.fh, 0, Buffer.from('still here'));
  await vol.release(kept.attr.ino, kept.fh);
  const afterKept = await allocCounts(vol);
  const f = await vol.create(vol.rootIno, Buffer.from('f'), 0o644, O_RDWR, ROOT);
  await vol.write(f.attr.ino, f.fh, 0, new Rng(3).bytes(MiB + 1));
  await vol.fsync(f.attr.ino, f.fh, false);
  const d = await vol.mkdir(vol.rootIno, Buffer.from('d'), 0o755, ROOT);
  const dfh = await vol.open(d.ino, O_RDONLY);
  await vol.unlink(vol.rootIno, Buffer.from('f'));
  await vol.rmdir(vol.rootIno, Buffer.from('d'));
  const names = [orphanName(f.attr.ino).toString(), orphanName(d.ino).toString()].sort();
  t.same(await orphanNames(vol), names, 'two orphans (a file and a directory)');
  const crashed = await crashCopy(t, vol, image);
  const crashedToo = await copyImage(t, crashed);

  // The original finishes normally.
  await vol.release(f.attr.ino, f.fh);
  await vol.release(d.ino, dfh);
  await vol.unmount();
  await assertFsckClean(t, image, 'volume that was unmounted cleanly');

  // What fsck.ocfs2 -y does with such a volume: it frees the orphans itself (so it cannot stand in for a crash here).
  const { repair: y } = await fsckReplayAndRepair(crashedToo);
  t.match(`${y.text}${y.stderr}`, /\[INODE_ORPHANED\] Inode \d+ was found in the orphan directory/, 'fsck.ocfs2 -y frees orphans itself');

  // The crashed image: the slot map still says slot 0 is in use and its journal is dirty; the next
  // read-write mount replays the journal, takes the slot back and frees the orphans.
  t.match((await runFsck(crashed)).complaints.join('\n'), /journal/i, 'fsck.ocfs2 -fn sees the dirty journal of the crashed image');
  vol = await mountEngine(crashed);
  t.same(await orphanNames(vol), [], 'the mount emptied orphan_dir:0000');
  t.equal(await outcome(vol.getattr(f.attr.ino)), 'ESTALE', 'the file orphan is freed');
  t.equal(await outcome(vol.getattr(d.ino)), 'ESTALE', 'the directory orphan is freed');
  const now = await allocCounts(vol);
  assertCountsBack(t, afterKept, now, 'after recovery (compared with the state before the orphans were made)');
  t.equal((await vol.lookup(vol.rootIno, Buffer.from('kept'))).size, 10, 'the file that was not orphaned is untouched');
  await vol.unmount();
  await assertFsckClean(t, crashed, 'recovered volume');
});

t.test('an unmount with files still open leaves orphans the next mount frees', async (t) => {
  const image = await writableImage(t, { blockSize: 2048, clusterSize: 8192, sizeBytes: 128 * MiB, features: 'metaecc' });
  let vol = await mountEngine(image);
  const start = await allocCounts(vol);
  const inos: number[] = [];
  for (let i = 0; i < 5; i++) {
    const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(`f${i}`), 0o644, O_RDWR, ROOT);
    await vol.write(attr.ino, fh, i * 10000, new Rng(i).bytes(50000 * i + 1));
    await vol.unlink(vol.rootIno, Buffer.from(`f${i}`));
    inos.push(attr.ino);
    void fh; // left open on purpose
  }
  t.equal((await orphanNames(vol)).length, 5, 'five orphans');
  await vol.unmount();
  t.same((await runFsck(image)).complaints, ['** Skipping orphan dir replay because -n was given.'],
    'fsck.ocfs2 -fn: consistent, with orphans to replay');
  vol = await mountEngine(image);
  t.same(await orphanNames(vol), [], 'the next mount freed them');
  for (const ino of inos) t.equal(await outcome(vol.getattr(ino)), 'ESTALE', `inode ${ino} is free`);
  assertCountsBack(t, start, await allocCounts(vol), 'after the recovery');
  await vol.unmount();
  await assertFsckClean(t, image);
});

for (const geo of [{ blockSize: 4096, clusterSize: 4096 }, { blockSize: 512, clusterSize: 65536 }]) {
  t.test(`an append-dio orphan is trimmed back to i_size at mount: ${geo.blockSize}/${geo.clusterSize}`, async (t) => {
    const cs = geo.clusterSize;
    const image = await writableImage(t, { ...geo, sizeBytes: 256 * MiB });
    let vol = await mountEngine(image);
    const data = new Rng(7).bytes(5 * cs);
    const { attr, fh } = await vol.create(vol.rootIno, Buffer.from('dio'), 0o644, O_RDWR, ROOT);
    const ino = attr.ino;
    await vol.write(ino, fh, 0, data);
    await vol.fsync(ino, fh, false);
    await vol.release(ino, fh);
    const full = await allocCounts(vol);
    // What a crash in the middle of an appending direct write leaves: clusters past i_size, the flag, the entry.
    const size = 2 * cs + 123;
    const dioName = Buffer.from(`dio-${orphanName(ino).toString()}`);
    await vol.metaLock.run(async () => {
      const tx = vol.begin('craft an append-dio orphan');
      const inode = await vol.iget(ino);
      const di = await editInode(tx, inode);
      di.i_size = size;
      di.i_flags |= OCFS2_DIO_ORPHANED_FL;
      di.i_dio_orphaned_slot = 0;
      await addEntry(vol, tx, await vol.iget(vol.systemFile(ORPHAN_DIR)), dioName, ino, OCFS2_FT_REG_FILE);
      await tx.commit();
    });
    t.same(await orphanNames(vol), [dioName.toString()], 'orphan_dir:0000 holds the dio- entry');
    await vol.unmount();
    const crafted = await statPath(image, '/dio');
    t.equal(crafted.clusters, 5, 'five clusters allocated');
    t.equal(crafted.sizeBytes, size, 'i_size covers under three');

    vol = await mountEngine(image);
    t.same(await orphanNames(vol), [], 'the mount removed the dio- entry');
    const inode = await vol.iget(ino);
    t.equal(inode.di.i_flags & OCFS2_DIO_ORPHANED_FL, 0, 'OCFS2_DIO_ORPHANED_FL is clear');
    t.equal(inode.di.i_clusters, 3, 'the clusters past i_size are freed (three left)');
    t.equal(inode.size, size, 'i_size unchanged');
    t.equal(inode.nlink, 1, 'the file keeps its name');
    t.equal((await allocCounts(vol)).freeClusters, full.freeClusters + 2, 'two clusters back in the global bitmap');
    const fh2 = await vol.open(ino, O_RDONLY);
    t.ok((await vol.read(ino, fh2, 0, 10 * cs)).equals(data.subarray(0, size)), 'the bytes inside i_size are intact');
    await vol.release(ino, fh2);
    await vol.unmount();
    await assertFsckClean(t, image);
    const st = await statPath(image, '/dio');
    t.equal(st.clusters, 3, 'debugfs: three clusters');
    t.notOk(st.flags.some((f) => /dio/i.test(f)), 'debugfs shows no dio flag');
    t.ok((await cat(image, '/dio')).equals(data.subarray(0, size)), 'libocfs2 reads the same bytes');
  });
}

for (const how of ['unlink of a closed file', 'last release of an orphan'] as const) {
  t.test(`an inode freed while its pages are being written back: ${how}`, async (t) => {
    const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 128 * MiB });
    const dev = new FaultyDevice(await FileDevice.open(image), { cache: 'writethrough' });
    const vol = await Volume.mount(dev, { readOnly: false });
    const len = 64 * 1024;
    const f = await vol.create(vol.rootIno, Buffer.from('f'), 0o644, O_RDWR, ROOT);
    await vol.write(f.attr.ino, f.fh, 0, Buffer.alloc(len, 0x11));
    await vol.fsync(f.attr.ino, f.fh, false);
    // An overwrite: dirty pages, not yet on the device. In two writes, the first of part of a page: whole pages that
    // do not continue the last write would go straight to the device (fs/fileIo.ts, writeThrough).
    const over = Buffer.alloc(len, 0xaa);
    await vol.write(f.attr.ino, f.fh, 0, over.subarray(0, 100));
    await vol.write(f.attr.ino, f.fh, 100, over.subarray(100));
    if (how === 'unlink of a closed file') await vol.release(f.attr.ino, f.fh);
    const inode = await vol.iget(f.attr.ino);
    const [seg] = await mapRange(vol, inode, 0, len);
    // The flusher's write-back of those pages, caught at the device.
    const hold = dev.hold({ op: 'write', startByte: seg.deviceOffset!, endByte: seg.deviceOffset! + len });
    const wb = writebackInode(vol, inode);
    await hold.arrived();
    let freed = false;
    const free = (how === 'unlink of a closed file'
      ? vol.unlink(vol.rootIno, Buffer.from('f'))
      : vol.unlink(vol.rootIno, Buffer.from('f')).then(() => vol.release(f.attr.ino, f.fh))).then(() => (freed = true));
    await new Promise((r) => setTimeout(r, 100));
    t.notOk(freed, 'the inode is not freed while a write-back of its pages is in flight');
    // Someone else allocates as soon as it may: the first free clusters are the ones the file had (freed
    // clusters are reusable once the journal transaction that freed them has committed).
    let gIno = 0;
    const other = (async () => {
      const g = await vol.create(vol.rootIno, Buffer.from('g'), 0o644, O_RDWR, ROOT);
      await free;
      await vol.syncMetadata();
      await vol.write(g.attr.ino, g.fh, 0, Buffer.alloc(len, 0x22));
      await vol.release(g.attr.ino, g.fh);
      gIno = g.attr.ino;
    })();
    await new Promise((r) => setTimeout(r, 100));
    hold.release();
    await Promise.all([wb, free, other]);
    t.ok(freed, 'freed once the write-back landed');
    const [gseg] = await mapRange(vol, await vol.iget(gIno), 0, len);
    t.equal(gseg.deviceOffset, seg.deviceOffset, 'the new file got the freed clusters');
    const raw = await dev.read(gseg.deviceOffset!, len);
    t.ok(raw.every((b) => b === 0x22), 'and its bytes on the device are its own, not the dead file\'s late write-back');
    await vol.unmount();
    await assertFsckClean(t, image);
  });
}
