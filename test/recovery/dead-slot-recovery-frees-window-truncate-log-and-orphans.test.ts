/**
 * completeSlotRecovery on state made by hand: on an o2fuse image mounted
 * read-write (slot 0), slot 1 is given, inside transactions, what a node
 * that died leaves behind:
 * - a local alloc window: a file's clusters (bits set: handed out) followed by
 *   clusters claimed from the global bitmap and never handed out (bits clear);
 * - a truncate log with more records than one recovery transaction takes,
 *   each a run claimed from the global bitmap that no file owns;
 * - an orphan (a file with its name removed, nlink 0, OCFS2_ORPHANED_FL,
 *   i_orphaned_slot 1, entered in orphan_dir:0001);
 * - its slot map entry.
 * Then: slotNeedsRecovery says so, completeSlotRecovery(vol, 1) gives every
 * cluster back except the file's (which libocfs2 still reads intact), the
 * window, the log, the orphan dir and the slot map entry are empty, a second
 * call finds nothing to do, and fsck.ocfs2 -fn finds the volume clean after
 * unmount. Two geometries: 4 KiB blocks and clusters, and 1 KiB blocks with
 * 16 KiB clusters (where a cluster number used as a block number, or the
 * reverse, frees the wrong bits).
 * Also: a window whose bits are all clear (the simplest leftover), and the
 * bad slot numbers refused.
 */
import t, { type Test } from 'tap';
import { assertFsckClean } from '../lib/fsck';
import { debugfs } from '../lib/debugfs';
import { cat } from '../lib/oracle';
import { Rng } from '../lib/seed';
import { writableImage, mountEngine, O_RDWR, ROOT, MiB } from '../rw/helpers';
import type { Volume } from '../../fs/volume';
import { withTransaction, editInode } from '../../fs/transaction';
import { addEntry, removeEntry } from '../../fs/dirUpdate';
import { dataExtents } from '../../fs/file';
import { orphanName } from '../../fs/orphan';
import { writeSlot } from '../../fs/slotMap';
import { setDinodeLinksCount } from '../../fs/format/dinode';
import { setBit } from '../../fs/format/group';
import { completeSlotRecovery, recoveryReasons, slotMapEntry, slotNeedsRecovery, TRUNCATE_RECS_PER_TX } from '../../fs/recovery/slotRecovery';
import {
  GLOBAL_BITMAP_SYSTEM_INODE, LOCAL_ALLOC_SYSTEM_INODE, OCFS2_FT_REG_FILE, OCFS2_ORPHANED_FL, ORPHAN_DIR_SYSTEM_INODE,
  SLOT_MAP_SYSTEM_INODE, TRUNCATE_LOG_SYSTEM_INODE, systemInodeName,
} from '../../fs/format/constants';

const SLOT = 1;

async function freeClusters(vol: Volume): Promise<number> {
  const gb = (await vol.iget(vol.systemFile(systemInodeName(GLOBAL_BITMAP_SYSTEM_INODE)))).di;
  return gb.i_total - gb.i_used;
}

async function sysInode(vol: Volume, index: number, slot?: number) {
  return vol.iget(vol.systemFile(systemInodeName(index, slot)));
}

/** A file of `bytes` written through the engine and closed; its single extent's first cluster. */
async function writeFile(vol: Volume, name: string, data: Buffer): Promise<{ ino: number; cluster: number; clusters: number }> {
  const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(name), 0o644, O_RDWR, ROOT);
  await vol.write(attr.ino, fh, 0, data);
  await vol.fsync(attr.ino, fh, false);
  await vol.release(attr.ino, fh);
  const extents = await dataExtents(vol, await vol.iget(attr.ino));
  if (extents.length !== 1) throw new Error(`${name}: expected one extent on a fresh volume, got ${extents.length}`);
  return { ino: attr.ino, cluster: extents[0].blkno / vol.geo.bpc, clusters: extents[0].clusters };
}

async function orphanEntries(vol: Volume, slot: number): Promise<string[]> {
  const entries = await vol.readdir(vol.systemFile(systemInodeName(ORPHAN_DIR_SYSTEM_INODE, slot)));
  return entries.map((e) => e.name.toString('latin1')).filter((n) => n !== '.' && n !== '..');
}

const geometries = [
  { blockSize: 4096, clusterSize: 4096 },
  { blockSize: 1024, clusterSize: 16384 },
];

for (const geo of geometries) {
  t.test(`a dead slot's window, truncate log, orphan and slot map entry are recovered: ${geo.blockSize}/${geo.clusterSize}`, async (t) => {
    const cs = geo.clusterSize;
    const image = await writableImage(t, { ...geo, slots: 2, sizeBytes: 512 * MiB });
    const vol = await mountEngine(image);
    t.notOk(await slotNeedsRecovery(vol, SLOT), 'a fresh slot 1 needs nothing');

    const rng = new Rng(11);
    const orphan = await writeFile(vol, 'orphan', rng.bytes(3 * cs));
    // Written last, so the clusters after it are free for the window's tail.
    const keptData = rng.bytes(5 * cs + 100);
    const kept = await writeFile(vol, 'kept', keptData);
    const before = await freeClusters(vol);
    t.comment(`file "kept": clusters ${kept.cluster}+${kept.clusters}; orphan ${orphan.ino}: clusters ${orphan.cluster}+${orphan.clusters}`);

    // The dead node's local alloc window: "kept"'s clusters (handed out) and `spare` more, never handed out.
    const spare = 37;
    const windowStart = kept.cluster;
    const windowBits = kept.clusters + spare;
    const records: { t_start: number; t_clusters: number }[] = [];
    await vol.metaLock.run(() => withTransaction(vol, 'test: slot 1 dies', async (tx) => {
      const run = await vol.alloc.claimClusters(tx, spare, spare, kept.cluster + kept.clusters);
      if (run.cluster !== kept.cluster + kept.clusters) throw new Error(`window tail landed at ${run.cluster}, not after "kept"`);
      const la = await editInode(tx, await sysInode(vol, LOCAL_ALLOC_SYSTEM_INODE, SLOT));
      la.i_total = windowBits;
      la.i_used = kept.clusters;
      la.lab!.la_bm_off = windowStart;
      for (let i = 0; i < kept.clusters; i++) setBit(la.lab!.la_bitmap, i);

      // More records than one recovery transaction frees, spread over the volume's groups.
      const tl = await editInode(tx, await sysInode(vol, TRUNCATE_LOG_SYSTEM_INODE, SLOT));
      const n = TRUNCATE_RECS_PER_TX + 9;
      const step = Math.floor(vol.geo.totalClusters / n);
      for (let i = 0; i < n; i++) {
        const len = 1 + (i % 3);
        const got = await vol.alloc.claimClusters(tx, len, len, i * step + 5);
        records.push({ t_start: got.cluster, t_clusters: got.count });
        tl.dealloc!.tl_recs[i] = { t_start: got.cluster, t_clusters: got.count };
      }
      tl.dealloc!.tl_used = n;

      // The orphan: no name, no links, in orphan_dir:0001.
      const inode = await vol.iget(orphan.ino);
      await removeEntry(vol, tx, await vol.iget(vol.rootIno), Buffer.from('orphan'));
      const di = await editInode(tx, inode);
      setDinodeLinksCount(di, 0);
      di.i_flags |= OCFS2_ORPHANED_FL;
      di.i_orphaned_slot = SLOT;
      await addEntry(vol, tx, await sysInode(vol, ORPHAN_DIR_SYSTEM_INODE, SLOT), orphanName(orphan.ino), orphan.ino, OCFS2_FT_REG_FILE);

      await writeSlot(vol, tx, await sysInode(vol, SLOT_MAP_SYSTEM_INODE), SLOT, 7);
    }));
    const truncated = records.reduce((s, r) => s + r.t_clusters, 0);
    t.equal(await freeClusters(vol), before - spare - truncated, 'the window and the truncate log hold their clusters');
    t.same(await recoveryReasons(vol, SLOT), [
      `local alloc window in use (${kept.clusters}/${windowBits} bits at cluster ${windowStart})`,
      `${records.length} truncate log record(s)`,
      '1 orphan entry',
      'slot map entry set (node 7)',
    ], 'slotNeedsRecovery sees all four');
    t.ok(await slotNeedsRecovery(vol, SLOT), 'slot 1 needs recovery');

    const report = await completeSlotRecovery(vol, SLOT);
    t.same(report, {
      slot: SLOT, localAllocFreedClusters: spare, truncateLogRecords: records.length, truncateLogFreedClusters: truncated,
      orphansResolved: 1, slotMapCleared: true,
    }, 'the report counts what was done');
    t.equal(await freeClusters(vol), before + orphan.clusters,
      'every cluster is back: the window\'s unused ones, the truncate log\'s and the orphan\'s ("kept" keeps its own)');
    const la = (await sysInode(vol, LOCAL_ALLOC_SYSTEM_INODE, SLOT)).di;
    t.same([la.i_total, la.i_used, la.lab!.la_bm_off, la.lab!.la_bitmap.every((b) => b === 0)], [0, 0, 0, true],
      'the window is empty');
    t.equal((await sysInode(vol, TRUNCATE_LOG_SYSTEM_INODE, SLOT)).di.dealloc!.tl_used, 0, 'the truncate log is empty');
    t.same(await orphanEntries(vol, SLOT), [], 'orphan_dir:0001 is empty');
    t.equal(await slotMapEntry(vol, SLOT), null, 'slot 1 is free in the slot map');
    t.notOk(await slotNeedsRecovery(vol, SLOT), 'nothing left to do');
    t.same(await completeSlotRecovery(vol, SLOT), {
      slot: SLOT, localAllocFreedClusters: 0, truncateLogRecords: 0, truncateLogFreedClusters: 0, orphansResolved: 0,
      slotMapCleared: false,
    }, 'a second recovery does nothing');
    await vol.unmount();

    const laText = await debugfs(image, `stat //${systemInodeName(LOCAL_ALLOC_SYSTEM_INODE, SLOT)}`);
    t.match(laText, /Bitmap Total: 0\s+Used: 0/, 'debugfs.ocfs2: local_alloc:0001 is empty');
    t.match(await debugfs(image, `stat //${systemInodeName(TRUNCATE_LOG_SYSTEM_INODE, SLOT)}`), /Used: 0/,
      'debugfs.ocfs2: truncate_log:0001 has no records');
    t.ok((await cat(image, '/kept')).equals(keptData), 'libocfs2 reads "kept" intact: its clusters were not freed');
    await assertFsckClean(t, image);
  });
}

t.test('a window whose bits are all clear goes back whole', async (t: Test) => {
  const image = await writableImage(t, { blockSize: 2048, clusterSize: 8192, slots: 3, sizeBytes: 256 * MiB });
  const vol = await mountEngine(image);
  const before = await freeClusters(vol);
  const bits = 300;
  let start = 0;
  await vol.metaLock.run(() => withTransaction(vol, 'test: slot 2 window', async (tx) => {
    const run = await vol.alloc.claimClusters(tx, bits, bits, 1000);
    start = run.cluster;
    const la = await editInode(tx, await sysInode(vol, LOCAL_ALLOC_SYSTEM_INODE, 2));
    la.i_total = bits;
    la.i_used = 0;
    la.lab!.la_bm_off = start;
  }));
  t.equal(await freeClusters(vol), before - bits, 'the window took its clusters');
  t.ok(await slotNeedsRecovery(vol, 2), 'slot 2 needs recovery');
  t.notOk(await slotNeedsRecovery(vol, 1), 'slot 1 does not');
  const report = await completeSlotRecovery(vol, 2);
  t.equal(report.localAllocFreedClusters, bits, `all ${bits} clusters freed`);
  t.equal(await freeClusters(vol), before, 'the free count is back');
  await vol.unmount();
  await assertFsckClean(t, image);
});

t.test('slots outside the volume are refused', async (t) => {
  const image = await writableImage(t, { slots: 2, sizeBytes: 128 * MiB });
  const vol = await mountEngine(image);
  await t.rejects(completeSlotRecovery(vol, 2), RangeError, 'slot 2 of 2');
  await t.rejects(slotNeedsRecovery(vol, -1), RangeError, 'slot -1');
  await t.rejects(completeSlotRecovery(vol, 0.5), RangeError, 'slot 0.5');
  await vol.unmount();
  await assertFsckClean(t, image);
});
