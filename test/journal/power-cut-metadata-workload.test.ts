/**
 * Power cuts during a metadata-heavy workload, at the engine level (issue 7).
 *
 * A seeded workload (crashWorkload.ts: creates, appends, overwrites, truncates,
 * renames of files and directories, unlinks, orphans, mkdir/rmdir, a
 * directory grown to a few hundred entries, fsync of files and directories)
 * runs on the engine over a FaultyDevice in its volatile cache mode, on a
 * volume made by o2fuse's own mkfs in memory. The power is cut right after
 * the N-th device write (N spread over the workload's whole length, counted
 * once without a cut; a quarter of the cuts also let a seeded half of the
 * unflushed sectors persist, torn and out of order, and another quarter add
 * random latency, so completions are reordered and writes are in flight at
 * the cut, pieces of them kept); the workload runs on until a call fails.
 * Then, on what the media holds:
 *   - the crash left slot 0's journal marked dirty (so the kernel, fsck and
 *     o2fuse all know it must be replayed) and slot 0 taken in the slot
 *     map's home block (the kernel writes it in place at mount; checked once
 *     per geometry over all cut points);
 *   - a fresh read-write mount succeeds (it replays the journal and recovers
 *     the slot: no EBUSY, no "needs recovery");
 *   - every file whose last change was followed by a successful fsync reads
 *     back exactly its fsynced bytes at its fsynced path, and every name
 *     whose removal was followed by a successful fsync of its directory is
 *     gone (the contract is in crashHelpers.ts);
 *   - after the unmount no journal is dirty, no log holds a transaction to
 *     replay and the slot map is empty;
 *   - fsck.ocfs2 -fn finds the volume clean.
 * Two geometries (4K blocks / 4K clusters with inline data, where 90 fsync'd
 * files first fill the 4 MiB log so that the run wraps it and checkpoints
 * about half-way; 1K blocks / 16K clusters without inline data, where the
 * log does not wrap), 100 cut points each, seeded: $SEED repeats a run,
 * $CUTS=N1,N2 runs only those cut points (the printed write numbers), and
 * $CUT_POINTS=K takes K cut points per geometry instead of 100.
 */
import t, { type Test } from 'tap';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Volume } from '../../fs/volume';
import { FaultyDevice } from '../../io/faultyDevice';
import { errnoOf } from '../../fs/errors';
import { runFsck } from '../lib/fsck';
import { rngFrom } from '../lib/seed';
import { tempDir } from '../lib/volume';
import {
  VolumeTemplate, borrow, crashState, describeState, uncleanBecause, checkDurable, settleWithin, MiB,
} from './crashHelpers';
import { Workload, EngineDriver, type WorkloadResult } from './crashWorkload';

interface Geometry {
  name: string;
  sizeBytes: number;
  blockSize: number;
  clusterSize: number;
  features?: string;
  /** mkfs -J size= (4 MiB is the smallest). */
  journalBytes: number;
  fallbackSeed: number;
  cuts: number;
  steps: number;
  /** Fsync'd files first (crashWorkload's warmupFiles), so that the log wraps mid-workload. */
  warmupFiles: number;
  /** The uncut run must wrap the journal's log (a checkpoint moves its tail). */
  wraps: boolean;
}

const geometries: Geometry[] = [
  { name: '4K blocks, 4K clusters, inline data', sizeBytes: 64 * MiB, blockSize: 4096, clusterSize: 4096, fallbackSeed: 0x7c0a, cuts: 100, steps: 400,
    journalBytes: 4 * MiB, warmupFiles: 90, wraps: true },
  { name: '1K blocks, 16K clusters, no inline data', sizeBytes: 128 * MiB, blockSize: 1024, clusterSize: 16384, features: 'noinline-data', fallbackSeed: 0x7c0b, cuts: 100, steps: 400,
    journalBytes: 4 * MiB, warmupFiles: 0, wraps: false },
];

/** Fsck runs overlapping the next crash run (the machine has two cores). */
const FSCK_IN_FLIGHT_MAX = 2;

interface CutOutcome {
  problems: string[];
  /** What the crash left and how the workload ended: printed with the problems. */
  context: string[];
  filesChecked: number;
  crashed: boolean;
  calls: number;
}

/** A problem's kind, for the summary (paths and numbers left out). */
function problemKind(problem: string): string {
  if (/: fsynced \d+ bytes, but reading it fails: ENOENT/.test(problem)) return 'an fsynced file is missing';
  if (/: fsynced \d+ bytes, but reading it fails/.test(problem)) return 'an fsynced file cannot be read';
  if (/: fsynced \d+ bytes, reads/.test(problem)) return 'an fsynced file reads other bytes';
  if (/removed and its directory fsynced, but it is still there/.test(problem)) return 'a durably removed name is back';
  return problem.replace(/\(dirty journals.*$/, '').replace(/\d+/g, 'N').slice(0, 140);
}

async function stopDeadEngine(vol: Volume): Promise<void> {
  // The device refuses everything now; this only stops the engine's timers.
  await settleWithin(vol.unmount(), 5000);
}

function describeFailure(r: WorkloadResult): string {
  if (!r.failed) return 'ran to its end';
  const e = r.failed.error as Error;
  return `${r.failed.call}: ${errnoOf(e)} ${e?.message ?? String(e)}`;
}

async function runGeometry(t: Test, g: Geometry): Promise<void> {
  const rng = rngFrom(t, g.fallbackSeed);
  const workloadSeed = rng.next();
  const started = Date.now();
  const template = await VolumeTemplate.format(g.sizeBytes, {
    blockSizeBytes: g.blockSize, clusterSizeBytes: g.clusterSize, slots: 2, features: g.features, label: 'crash',
    journalSizeBytes: g.journalBytes,
  });
  const scratch = await tempDir(t, 'o2fuse-crash-');
  const options = { seed: workloadSeed, blockSize: g.blockSize, clusterSize: g.clusterSize, steps: g.steps, bigShare: 0.5,
    warmupFiles: g.warmupFiles };

  // ---- once without a cut: the workload works, and how many writes it makes ----
  let totalWrites = 0;
  {
    const mem = template.clone();
    const dev = new FaultyDevice(mem, { closeInner: false });
    const vol = await Volume.mount(dev, { readOnly: false });
    dev.onComplete((req, err) => {
      if (req.op === 'write' && !err) totalWrites++;
    });
    const w = new Workload(new EngineDriver(vol), options);
    const r0 = Date.now();
    let journalStats: unknown;
    let checkpoints = 0;
    const result = await w.run({
      call: 'unmount',
      fn: () => {
        journalStats = vol.journal && { ...vol.journal.stats };
        checkpoints = vol.journal?.stats.checkpoints ?? 0;
        return vol.unmount();
      },
    });
    const ms = Date.now() - r0;
    t.equal(describeFailure(result), 'ran to its end', 'the workload runs to its end without a power cut');
    t.comment(`workload: ${result.calls} calls, ${result.fsyncs} fsyncs, /big has ${result.bigEntries} entries, ` +
      `${totalWrites} device writes after the mount, ${ms} ms; journal before the unmount: ${JSON.stringify(journalStats)}`);
    if (g.wraps) t.ok(checkpoints > 0, 'the workload wraps the journal\'s log: a checkpoint moves its tail before the unmount', { journalStats });
    t.ok(result.bigEntries >= 150, `the growing directory reaches 150 entries or more (${result.bigEntries})`);
    const after = await crashState(borrow(mem));
    t.same(uncleanBecause(after), [], `a clean unmount leaves the volume clean (${describeState(after)})`);
    const again = await Volume.mount(borrow(mem), { readOnly: false });
    const check = await checkDurable(again, w.model);
    t.same(check.problems, [], `after a clean unmount every fsynced file reads back (${check.files} files)`);
    await again.unmount();
    const image = path.join(scratch, 'no-cut.img');
    await mem.saveTo(image);
    const fsck = await runFsck(image);
    t.ok(fsck.code === 0 && fsck.complaints.length === 0, 'fsck.ocfs2 -fn finds the volume clean after the uncut workload',
      { complaints: fsck.complaints, exitCode: fsck.code });
    await fsp.rm(image, { force: true });
  }
  if (totalWrites < g.cuts) {
    t.fail(`the workload makes only ${totalWrites} writes: too few for ${g.cuts} distinct cut points`);
    return;
  }

  // ---- the cut points: one per stratum of the write count, a random place in it ----
  const only = (process.env.CUTS ?? '').split(',').filter(Boolean).map(Number);
  const points: Array<{ n: number; keepFraction: number; reorder: boolean; deviceSeed: number }> = [];
  const cuts = Number(process.env.CUT_POINTS) || g.cuts;
  for (let i = 0; i < cuts; i++) {
    const n = Math.min(totalWrites, 1 + Math.floor((totalWrites * (i + rng.float())) / cuts));
    // Half plain cuts; a quarter torn; a quarter torn with completions reordered by random latency (writes in
    // flight at the cut, pieces of them kept).
    const mode = rng.int(0, 3);
    const keepFraction = mode >= 2 ? 0.5 : 0;
    const reorder = mode === 3;
    const deviceSeed = rng.next();
    if (!only.length || only.includes(n)) points.push({ n, keepFraction, reorder, deviceSeed });
  }

  const fscks = new Set<Promise<void>>();
  const ms = { engine: 0, fsckWait: 0, fsck: 0 };
  const tally = new Map<string, number>();
  let filesChecked = 0;
  /** Cut points whose crashed image's slot map (home block) did not show slot 0 taken. */
  const slotMapLagging: number[] = [];
  let cleanPoints = 0;
  let crashedPoints = 0;
  let crashedBeforeUnmount = 0;
  const lostAtCuts = { unflushedWrites: 0, inFlightWrites: 0, keptPieces: 0 };
  for (const [i, p] of points.entries()) {
    const how = p.reorder ? ' (reordered and torn: random latency, half the unflushed and in-flight sectors kept)'
      : p.keepFraction ? ' (torn: half the unflushed sectors kept)' : '';
    const what = `cut after write ${p.n}/${totalWrites}${how}`;
    const outcome: CutOutcome = { problems: [], context: [], filesChecked: 0, crashed: false, calls: 0 };
    const image = path.join(scratch, `cut-${i}.img`);
    const engineStarted = Date.now();
    try {
      const mem = template.clone();
      const dev = new FaultyDevice(mem, { seed: p.deviceSeed, closeInner: false });
      const vol = await Volume.mount(dev, { readOnly: false });
      if (p.reorder) dev.setLatency(0, 2);
      dev.powerCutAfterWrites(p.n, { keepFraction: p.keepFraction });
      let unmountStarted = false;
      const w = new Workload(new EngineDriver(vol), options);
      const result = await w.run({
        call: 'unmount',
        fn: () => {
          unmountStarted = true;
          return vol.unmount();
        },
      });
      outcome.calls = result.calls;
      outcome.context.push(`workload: ${describeFailure(result)}${unmountStarted ? ' (the unmount had started)' : ''}`);
      outcome.crashed = dev.isPoweredOff;
      if (result.failed && !dev.isPoweredOff) {
        outcome.problems.push(`a call failed with the power on: ${describeFailure(result)}`);
      }
      if (!result.failed && dev.isPoweredOff) {
        outcome.problems.push('the workload ran to its end, unmount included, although the power was cut during it: a call reported success it could not have had');
      }
      if (!dev.isPoweredOff) await dev.powerCut();
      await dev.lastPowerCut;
      if (result.failed) await stopDeadEngine(vol);

      const pre = await crashState(borrow(mem));
      const cutReport = await dev.lastPowerCut;
      if (cutReport && outcome.crashed) {
        lostAtCuts.unflushedWrites += cutReport.unflushedWrites;
        lostAtCuts.inFlightWrites += cutReport.inFlightWrites;
        lostAtCuts.keptPieces += cutReport.keptPieces;
      }
      outcome.context.push(`power cut: ${JSON.stringify(cutReport)}`, `left on the media: ${describeState(pre)}`);
      if (outcome.crashed && !unmountStarted) {
        crashedBeforeUnmount++;
        if (!pre.dirtyJournals.includes(0)) {
          outcome.problems.push(`the crashed volume's journal:0000 is not marked dirty, so nothing would replay it (${describeState(pre)})`);
        }
        if (!pre.slotsInUse.includes(0)) slotMapLagging.push(p.n);
      }

      let remounted: Volume | undefined;
      try {
        remounted = await Volume.mount(borrow(mem), { readOnly: false });
      } catch (err) {
        outcome.problems.push(`the mount after the crash fails: ${errnoOf(err)} ${(err as Error).message}`);
      }
      if (remounted) {
        const check = await checkDurable(remounted, w.model);
        outcome.filesChecked = check.files;
        outcome.problems.push(...check.problems);
        try {
          await remounted.unmount();
        } catch (err) {
          outcome.problems.push(`the unmount after recovery fails: ${errnoOf(err)} ${(err as Error).message}`);
        }
        const post = await crashState(borrow(mem));
        outcome.problems.push(...uncleanBecause(post).map((s) => `after recovery and a clean unmount: ${s}`));
      }
      await mem.saveTo(image);
    } catch (err) {
      outcome.problems.push(`harness or engine threw: ${(err as Error).stack ?? String(err)}`);
    }

    // fsck overlaps the next run; its result joins this cut point's verdict.
    ms.engine += Date.now() - engineStarted;
    const waitStarted = Date.now();
    while (fscks.size >= FSCK_IN_FLIGHT_MAX) await Promise.race(fscks);
    ms.fsckWait += Date.now() - waitStarted;
    const job = (async () => {
      const fsckStarted = Date.now();
      try {
        const fsck = await runFsck(image);
        ms.fsck += Date.now() - fsckStarted;
        if (!(fsck.code === 0 && fsck.complaints.length === 0 && fsck.output.includes('All passes succeeded.'))) {
          outcome.problems.push(`fsck.ocfs2 -fn exit ${fsck.code}: ${fsck.complaints.slice(0, 6).join(' | ') || fsck.output.slice(-300)}`);
        }
      } catch (err) {
        outcome.problems.push(`fsck could not run: ${(err as Error).message}`);
      } finally {
        await fsp.rm(image, { force: true });
      }
      filesChecked += outcome.filesChecked;
      if (outcome.crashed) crashedPoints++;
      if (!outcome.problems.length) cleanPoints++;
      for (const key of new Set(outcome.problems.map(problemKind))) tally.set(key, (tally.get(key) ?? 0) + 1);
      t.ok(outcome.problems.length === 0,
        `${what}: recovers, ${outcome.filesChecked} fsynced files read back, clean afterwards (${outcome.calls} calls before the crash)`,
        outcome.problems.length ? { problems: outcome.problems.slice(0, 12), context: outcome.context } : {});
    })();
    fscks.add(job);
    void job.finally(() => fscks.delete(job));
  }
  await Promise.all(fscks);
  t.comment(`${points.length} cut points (${crashedPoints} cut the power before the workload's end, ${crashedBeforeUnmount} before its unmount): ${cleanPoints} clean, ` +
    `${points.length - cleanPoints} with problems; ${filesChecked} fsynced files checked in all; ` +
    `${((Date.now() - started) / 1000).toFixed(1)} s (crash runs ${(ms.engine / 1000).toFixed(1)} s, ` +
    `waiting for fsck ${(ms.fsckWait / 1000).toFixed(1)} s, fsck ${(ms.fsck / 1000).toFixed(1)} s in all)`);
  t.comment(`the cuts dropped ${lostAtCuts.unflushedWrites} unflushed writes and failed ${lostAtCuts.inFlightWrites} in flight; ` +
    `${lostAtCuts.keptPieces} sector pieces of them persisted anyway`);
  for (const [k, n] of [...tally].sort((a, b) => b[1] - a[1])) t.comment(`  ${n} cut points: ${k}`);
  // The kernel writes the slot map in place at mount (slot_map.c ocfs2_update_disk_slot: ocfs2_write_block, not
  // journaled), so a crashed volume shows its slot taken to every reader, replaying or not (debugfs, fsck -n,
  // mounted.ocfs2, a second mount). Kept apart from the per-cut verdicts: it does not affect recovery itself.
  t.same(slotMapLagging.slice(0, 10), [],
    `every crash before the unmount leaves slot 0 taken in the slot map's home block (${slotMapLagging.length} of ${crashedBeforeUnmount} do not; the first ones are listed)`);
}

for (const g of geometries) {
  t.test(`a power cut anywhere in a metadata workload: the next mount replays, fsynced files survive, fsck clean (${g.name})`,
    { timeout: 600_000 }, (t) => runGeometry(t, g));
}
