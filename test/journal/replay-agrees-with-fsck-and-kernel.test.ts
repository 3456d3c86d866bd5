/**
 * A journal o2fuse left dirty replays to the same tree whoever replays it
 * (issue 7): o2fuse (a read-write mount and unmount), fsck.ocfs2 -y (on a
 * -M local volume 1.8.7 replays, may stop with exit 8 "Unable to access
 * cluster service", and a second -fy completes) and the Linux kernel (its
 * mount replays; the script only lists and checksums).
 *
 * The dirty journal comes from a power cut (FaultyDevice, volatile cache, on
 * the image file itself) right after o2fuse committed everything it had
 * (fsync'd files, renames, unlinks, a growing directory, and a file unlinked
 * while open: an orphan), followed by a few changes it never committed:
 * committed-but-not-checkpointed transactions are in the log, the home
 * blocks are stale. The tree the engine showed at that last commit is the
 * expectation. Then, for each of three copies of the crashed image:
 *   - the replayer succeeds;
 *   - libocfs2 (o2tool dump: paths, types, modes, owners, link counts, sizes,
 *     mtime/ctime, sha256 of every file) reads exactly the committed tree,
 *     none of the uncommitted changes, and the orphan is gone;
 *   - fsck.ocfs2 -fn finds the volume clean.
 * So the three trees are equal to each other and to what o2fuse committed.
 * The unreplayed image must read differently (else nothing was proven).
 *
 * Two logs: one large enough that nothing was checkpointed, and one the
 * workload wrapped around (checkpoints moved its tail). Seeded ($SEED).
 */
import t, { type Test } from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Volume } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';
import { FaultyDevice } from '../../io/faultyDevice';
import { assertFsckClean, fsck } from '../lib/fsck';
import { kernelRun, kernelUnavailable } from '../lib/kernel';
import { dumpEntries } from '../lib/oracle';
import { lsDir } from '../lib/debugfs';
import type { DumpField } from '../lib/dumpFormat';
import { rngFrom } from '../lib/seed';
import { copyImage } from '../lib/volume';
import { writableImage } from '../rw/helpers';
import {
  crashStateOfImage, describeState, engineEntries, linesByPath, treeDiff, settleWithin, resolvePath,
  MiB, O_RDWR, ROOT,
} from './crashHelpers';
import { Workload, EngineDriver } from './crashWorkload';

const FIELDS: readonly DumpField[] = ['mode', 'uid', 'gid', 'nlink', 'size', 'mtime', 'ctime', 'data'];

interface Scenario {
  name: string;
  sizeBytes: number;
  /** mkfs -J size= (undefined: mkfs.ocfs2's default for the size). */
  journalBytes?: number;
  steps: number;
  fallbackSeed: number;
  /** The workload must have wrapped the log (checkpoints happened). */
  wraps: boolean;
}

const scenarios: Scenario[] = [
  { name: 'nothing checkpointed yet (32 MiB log)', sizeBytes: 256 * MiB, journalBytes: 32 * MiB, steps: 250, fallbackSeed: 0x3e91, wraps: false },
  { name: 'the log wrapped (4 MiB log)', sizeBytes: 128 * MiB, journalBytes: 4 * MiB, steps: 700, fallbackSeed: 0x3e92, wraps: true },
];

const stateOf = crashStateOfImage;

/** o2fuse leaves the image crashed with committed, uncheckpointed transactions; returns the committed tree. */
async function crashedByO2fuse(t: Test, image: string, s: Scenario, seed: number): Promise<Map<string, string>> {
  const file = await FileDevice.open(image);
  const dev = new FaultyDevice(file, { seed, closeInner: true });
  // No timed commits: what is committed is exactly what this test commits.
  const vol = await Volume.mount(dev, { readOnly: false, commitIntervalMs: 3_600_000 });
  const w = new Workload(new EngineDriver(vol), { seed, blockSize: 4096, clusterSize: 4096, steps: s.steps, bigShare: 0.35 });
  const result = await w.run();
  t.notOk(result.failed, `the workload runs (${result.calls} calls, ${result.fsyncs} fsyncs, /big ${result.bigEntries} entries)`,
    { failed: result.failed && `${result.failed.call}: ${(result.failed.error as Error).message}` });

  // An orphan at the crash: open, fsynced, unlinked, still open.
  const { attr, fh } = await vol.create(vol.rootIno, Buffer.from('open-unlinked'), 0o644, O_RDWR, ROOT);
  await vol.write(attr.ino, fh, 0, Buffer.alloc(3 * 4096 + 5, 0x6f));
  await vol.fsync(attr.ino, fh, false);
  await vol.unlink(vol.rootIno, Buffer.from('open-unlinked'));

  await vol.syncAll();
  const orphans = (await vol.readdir(vol.systemFile('orphan_dir:0000'))).map((e) => e.name.toString('latin1')).filter((n) => n !== '.' && n !== '..');
  t.equal(orphans.length, 1, `the committed state holds the open, unlinked file as an orphan (${orphans.join(', ')})`);
  const committed = linesByPath(await engineEntries(vol), FIELDS);
  const stats = vol.journal ? { ...vol.journal.stats } : undefined;
  t.comment(`journal at the crash: ${JSON.stringify(stats)}`);
  if (s.wraps) t.ok(stats && stats.checkpoints > 0, 'the workload wrapped the log: checkpoints moved its tail', { stats });

  // Changes never committed: all of them must be gone after any replay.
  for (let i = 0; i < 12; i++) {
    const c = await vol.create(vol.rootIno, Buffer.from(`uncommitted-${i}`), 0o644, O_RDWR, ROOT);
    await vol.write(c.attr.ino, c.fh, 0, Buffer.alloc(5000 + i, i));
    await vol.release(c.attr.ino, c.fh);
  }
  await vol.mkdir(vol.rootIno, Buffer.from('uncommitted-dir'), 0o755, ROOT);
  const victim = [...committed.keys()].find((p) => /^\/big\/e/.test(p));
  if (victim) {
    const big = await resolvePath(vol, '/big');
    await vol.unlink(big, Buffer.from(victim.slice('/big/'.length)));
  }
  await dev.powerCut();
  await dev.lastPowerCut;
  await settleWithin(vol.unmount(), 5000);
  await dev.close().catch(() => undefined);
  return committed;
}

async function runScenario(t: Test, s: Scenario): Promise<void> {
  const rng = rngFrom(t, s.fallbackSeed);
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: s.sizeBytes, slots: 2, journalBytes: s.journalBytes });
  const committed = await crashedByO2fuse(t, image, s, rng.next());

  const pre = await stateOf(image);
  t.comment(`the crashed image: ${describeState(pre)}`);
  t.ok(pre.dirtyJournals.includes(0), 'the crash left journal:0000 marked dirty');
  t.ok(pre.journalStart[0] !== 0 && pre.sequenceAtStart[0] === pre.journalSequence[0],
    'the log holds committed transactions from s_start (a replay has work to do)', { state: describeState(pre) });
  try {
    const unreplayed = linesByPath(await dumpEntries(image, { fields: FIELDS }), FIELDS);
    t.not(treeDiff(committed, unreplayed).length, 0, 'without replay libocfs2 reads a different tree: the committed changes live only in the log');
  } catch (err) {
    t.comment(`o2tool cannot read the unreplayed image: ${(err as Error).message.split('\n')[0]}`);
  }

  const dir = path.dirname(image);
  const copies = {
    o2fuse: await copyImage(t, image, await fsp.mkdtemp(path.join(dir, 'o2fuse-'))),
    fsck: await copyImage(t, image, await fsp.mkdtemp(path.join(dir, 'fsck-'))),
    kernel: await copyImage(t, image, await fsp.mkdtemp(path.join(dir, 'kernel-'))),
  };
  const trees = new Map<string, Map<string, string>>();

  await t.test('o2fuse replays it (read-write mount, unmount)', async (t) => {
    try {
      const vol = await Volume.mount(await FileDevice.open(copies.o2fuse), { readOnly: false });
      await vol.unmount();
      t.pass('o2fuse mounts the crashed volume read-write and unmounts it');
    } catch (err) {
      t.fail(`o2fuse mounts the crashed volume: ${(err as Error).message}`);
      return;
    }
    trees.set('o2fuse', await checkReplayed(t, copies.o2fuse, committed));
  });

  await t.test('fsck.ocfs2 -y replays it (then -fy if it stops for the cluster service)', async (t) => {
    const first = await fsck(['-y', copies.fsck]);
    t.comment(`fsck.ocfs2 -y: exit ${first.code}`);
    t.ok(first.code === 0 || first.code === 1 || first.code === 8, 'fsck.ocfs2 -y replays (exit 0/1, or 8 after the replay on a local volume)',
      { output: `${first.text}${first.stderr}`.slice(-2000) });
    if (first.code !== 0) {
      const second = await fsck(['-fy', copies.fsck]);
      t.equal(second.code, 0, 'the second fsck.ocfs2 -fy finds nothing to fix: the replayed volume is consistent',
        { output: `${second.text}${second.stderr}`.slice(-3000) });
    }
    trees.set('fsck', await checkReplayed(t, copies.fsck, committed));
  });

  await t.test('the Linux kernel replays it (mount, list, unmount)', { skip: kernelUnavailable() }, async (t) => {
    const r = await kernelRun(copies.kernel, 'find . | wc -l; find . -type f | xargs sha256sum | wc -l\n');
    t.comment(`kernel: exit ${r.code} in ${(r.elapsedMs / 1000).toFixed(1)} s; ${r.kernelLines.join(' | ').slice(0, 1500)}`);
    t.equal(r.code, 0, 'the kernel mounts the crashed volume, lists it and unmounts', { output: r.output.slice(-3000) });
    if (r.code !== 0) return;
    trees.set('kernel', await checkReplayed(t, copies.kernel, committed));
  });

  const names = [...trees.keys()];
  for (let i = 1; i < names.length; i++) {
    t.same(treeDiff(trees.get(names[0])!, trees.get(names[i])!), [], `the trees replayed by ${names[0]} and by ${names[i]} are equal`);
  }
  t.equal(names.length, 3, `all three replays produced a tree (${names.join(', ')})`);
}

async function orphanNames(image: string): Promise<string[]> {
  return (await lsDir(image, '//orphan_dir:0000')).map((e) => e.name).filter((n) => n !== '.' && n !== '..');
}

/** After a replay: the tree is what o2fuse committed (libocfs2's reading), and fsck -fn is clean. */
async function checkReplayed(t: Test, image: string, committed: Map<string, string>): Promise<Map<string, string>> {
  const tree = linesByPath(await dumpEntries(image, { fields: FIELDS }), FIELDS);
  t.same(treeDiff(committed, tree), [], `libocfs2 reads exactly the committed tree (${committed.size} paths): modes, owners, link counts, sizes, times, sha256`);
  const after = await stateOf(image);
  t.same(after.dirtyJournals, [], `no journal is left dirty (${describeState(after)})`);
  t.same(await orphanNames(image), [], 'the file unlinked while open at the crash is freed: orphan_dir:0000 is empty');
  await assertFsckClean(t, image, 'replayed volume');
  return tree;
}

for (const s of scenarios) {
  t.test(`a dirty journal from o2fuse replays the same under o2fuse, fsck.ocfs2 and the kernel: ${s.name}`, { timeout: 900_000 },
    (t) => runScenario(t, s));
}
