/**
 * kill -9 of the o2fuse daemon in the middle of a metadata workload driven
 * through a real FUSE mount (issue 7).
 *
 * The workload of crashWorkload.ts (creates, appends, truncates, renames,
 * unlinks, orphans, mkdir/rmdir, a growing directory, fsync of files and
 * directories) runs through the mount point from this process; at a seeded
 * moment the daemon gets SIGKILL. The dead mount is detached lazily
 * (fusermount -uz), and then, on the image the daemon left:
 *   - slot 0's journal is marked dirty (a kill is a crash: the unmount that
 *     would have cleaned it never ran);
 *   - `o2fuse mount` succeeds again (it replays the journal and recovers the
 *     slot, instead of refusing the volume as in use);
 *   - every file whose last change was followed by a successful fsync reads
 *     back its fsynced bytes through the new mount, and every name removed
 *     before a successful fsync of its directory is gone;
 *   - after the unmount the volume is clean (no dirty journal, s_start 0,
 *     empty slot map) and fsck.ocfs2 -fn finds nothing.
 * Each kill point starts from a fresh image (mkfs.ocfs2 -M local); the kill
 * lands during a seeded call (0-3 ms after it starts), spread over the
 * workload's calls, counted once without a kill. Seeded: $SEED repeats a run.
 */
import t, { type Test } from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { assertFsckClean } from '../lib/fsck';
import { forceUnmount, mountO2fuse, waitForExit } from '../lib/mount';
import { run } from '../lib/exec';
import { rngFrom } from '../lib/seed';
import { writableImage } from '../rw/helpers';
import { o2fuseMountAt } from '../../fs/fuse/mountinfo';
import { crashStateOfImage, describeState, uncleanBecause, firstDifference, MiB, type DurableModel } from './crashHelpers';
import { Workload, VfsDriver, type WorkloadResult } from './crashWorkload';

const KILL_POINTS = 8;
const BLOCK_SIZE = 4096;
const CLUSTER_SIZE = 4096;
const STEPS = 320;

const stateOf = crashStateOfImage;

/** The durable model checked through a mounted directory. */
async function checkThroughMount(dir: string, model: DurableModel): Promise<string[]> {
  const problems: string[] = [];
  for (const [p, want] of model.present) {
    try {
      const got = await fsp.readFile(path.join(dir, p));
      if (!got.equals(want)) {
        problems.push(`${p}: fsynced ${want.length} bytes, reads ${got.length} bytes, first difference at byte ${firstDifference(want, got)}`);
      }
    } catch (err) {
      problems.push(`${p}: fsynced ${want.length} bytes, but reading it fails: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
  for (const p of model.absent) {
    try {
      await fsp.lstat(path.join(dir, p));
      problems.push(`${p}: removed and its directory fsynced, but it is still there`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') problems.push(`${p}: lstat fails with ${code}`);
    }
  }
  return problems;
}

function describeEnd(r: WorkloadResult): string {
  if (!r.failed) return 'ran to its end';
  const e = r.failed.error as NodeJS.ErrnoException;
  return `${r.failed.call}: ${e?.code ?? ''} ${e?.message ?? String(e)}`;
}

t.test('kill -9 of the daemon mid-workload: the next mount replays, fsynced files survive, fsck clean', { timeout: 600_000 }, async (t: Test) => {
  const rng = rngFrom(t, 0x9c11);
  const workloadSeed = rng.next();
  const options = { seed: workloadSeed, blockSize: BLOCK_SIZE, clusterSize: CLUSTER_SIZE, steps: STEPS, bigShare: 0.5 };
  const newImage = () => writableImage(t, { blockSize: BLOCK_SIZE, clusterSize: CLUSTER_SIZE, sizeBytes: 64 * MiB });
  const started = Date.now();

  // Once without a kill: the workload works through FUSE, and how many calls it makes.
  let totalCalls: number;
  {
    const image = await newImage();
    const m = await mountO2fuse(t, image);
    const w = new Workload(new VfsDriver(m.dir), options);
    const t0 = Date.now();
    const result = await w.run();
    totalCalls = result.calls;
    t.equal(describeEnd(result), 'ran to its end', 'the workload runs to its end through FUSE without a kill');
    t.comment(`workload through FUSE: ${result.calls} calls, ${result.fsyncs} fsyncs, /big ${result.bigEntries} entries, ${Date.now() - t0} ms`);
    t.same(await checkThroughMount(m.dir, w.model), [], 'every fsynced file reads back on the live mount');
    await m.unmount();
    const after = await stateOf(image);
    t.same(uncleanBecause(after), [], `a clean unmount leaves the volume clean (${describeState(after)})`);
    await assertFsckClean(t, image, 'volume after the workload without a kill');
  }

  for (let i = 0; i < KILL_POINTS; i++) {
    // One stratum of the call count each, a random call in it; the signal lands 0-3 ms after that call starts.
    const killAtCall = 1 + Math.floor((totalCalls * (i + rng.float())) / KILL_POINTS);
    const delayMs = rng.int(0, 3);
    await t.test(`kill -9 during call ${killAtCall} of ${totalCalls} (+${delayMs} ms)`, async (t) => {
      const t0 = Date.now();
      const lap = (what: string) => t.comment(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const image = await newImage();
      const m = await mountO2fuse(t, image);
      let killed: Promise<void> | undefined;
      const kill = () => {
        try {
          process.kill(m.pid, 'SIGKILL');
        } catch (err) {
          t.fail(`SIGKILL to the daemon ${m.pid}: ${(err as Error).message}`);
        }
      };
      const w = new Workload(new VfsDriver(m.dir), {
        ...options,
        onCall: (n) => {
          if (n === killAtCall) killed = new Promise((r) => setTimeout(() => r(kill()), delayMs));
        },
      });
      const result = await w.run();
      if (!killed) killed = Promise.resolve(kill());
      await killed;
      t.ok(await waitForExit(m.pid, 10_000), `the daemon (pid ${m.pid}) is gone after SIGKILL`);
      await w.abandon();
      t.comment(`workload: ${result.calls} calls, ${result.fsyncs} fsyncs before the kill; ended with ${describeEnd(result)}`);
      const lazy = await run('fusermount', ['-u', '-z', m.dir]);
      if (lazy.code !== 0) t.comment(`fusermount -uz: ${lazy.stderr.trim()}`);
      await forceUnmount(m.dir);
      t.notOk(o2fuseMountAt(m.dir), 'the dead mount is detached');
      await m.unmount();
      lap('killed and detached');

      const pre = await stateOf(image);
      t.comment(`left by the kill: ${describeState(pre)}`);
      t.ok(pre.dirtyJournals.includes(0), `the killed daemon left journal:0000 marked dirty, so it will be replayed (${describeState(pre)})`);

      let again;
      try {
        again = await mountO2fuse(t, image);
      } catch (err) {
        t.fail(`o2fuse mounts the volume again after the kill: ${(err as Error).message}`);
        await assertFsckClean(t, image, 'volume the killed daemon left (not remounted)');
        return;
      }
      t.pass('o2fuse mounts the volume again after the kill');
      lap('mounted again');
      const problems = await checkThroughMount(again.dir, w.model);
      t.same(problems.slice(0, 20), [],
        `every fsynced file reads back after recovery (${w.model.present.size} files), every durably removed name is gone (${w.model.absent.size})`);
      await again.unmount();
      lap('checked and unmounted');
      const post = await stateOf(image);
      t.same(uncleanBecause(post), [], `after recovery and a clean unmount the volume is clean (${describeState(post)})`);
      await assertFsckClean(t, image, 'volume after recovery');
      lap('fsck');
    });
  }
  t.comment(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
