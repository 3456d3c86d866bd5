/**
 * The report's target lines say how each miss stands against the runs behind
 * the two medians: "within the spread" when o2fuse's best run reached the
 * target against the baseline's worst, "in every run" when it did not. A met
 * job and a one-repetition run carry no such words. Built from synthetic
 * measurements (no mount, no fio).
 */
import t from 'tap';
import { JOBS } from '../../bench/jobs';
import type { Measurement } from '../../bench/measurement';
import { buildReport, type RunInfo } from '../../bench/report';
import type { Target } from '../../bench/targets';

function target(id: string, label: string, isO2fuse: boolean, transport?: string): Target {
  const never = () => Promise.reject(new Error('not mounted in this test'));
  return { id, label, kind: isO2fuse ? 'image' : 'dir', isO2fuse, transport, describe: id, makeEmpty: never, mount: never } as Target;
}

const jobs = JOBS.filter((j) => j.id === 'seqwrite' || j.id === 'seqread' || j.id === 'randread');
const targets = [
  target('o2fuse-libfuse', 'o2fuse (libfuse)', true, 'libfuse'),
  target('passthrough', 'fuse-native passthrough', false),
  target('fuse2fs', 'fuse2fs (ext4)', false),
];

/** Per job and target, one value per repetition. */
type Runs = Record<string, Record<string, number[]>>;

function runInfo(runs: Runs, reps: number): RunInfo {
  const measurements: Measurement[] = [];
  for (const [jobId, perTarget] of Object.entries(runs)) {
    for (const [targetId, values] of Object.entries(perTarget)) {
      values.slice(0, reps).forEach((v, i) => measurements.push({
        rep: i + 1, jobId, targetId, values: { [jobId]: v }, verifyFailed: false, seconds: 1, phases: {},
      }));
    }
  }
  const at = new Date('2026-11-26T00:00:00Z');
  return {
    title: 'test', mode: 'full', reps, commandLine: 'test', startedAt: at, finishedAt: at, interrupted: false,
    environment: [], sizes: [], targets, jobs, measurements, notes: [],
  };
}

const runs: Runs = {
  // 0.95x fuse2fs at the median, but the best run (105) beats fuse2fs's worst (100): within the spread.
  // Against the passthrough (median 100, worst 98): 0.95x meets 0.8x.
  seqwrite: { 'o2fuse-libfuse': [90, 95, 105], passthrough: [98, 100, 104], fuse2fs: [100, 100, 110] },
  // 0.85x fuse2fs with every run below fuse2fs's worst: in every run. 0.71x the passthrough, best run 90 against
  // 0.8 x 110 = 88: within the spread.
  seqread: { 'o2fuse-libfuse': [80, 85, 90], passthrough: [110, 120, 130], fuse2fs: [100, 100, 100] },
  // 2x fuse2fs: met, no words.
  randread: { 'o2fuse-libfuse': [200, 200, 200], passthrough: [200, 200, 200], fuse2fs: [100, 100, 100] },
};

function targetLine(markdown: string, start: string): string {
  const line = markdown.split('\n').find((l) => l.startsWith(`- ${start}`));
  if (!line) throw new Error(`no target line starting "${start}" in:\n${markdown}`);
  return line;
}

t.test('three repetitions: each miss says whether it is within the spread or in every run', async (t) => {
  const { markdown } = buildReport(runInfo(runs, 3));
  const vsFuse2fs = targetLine(markdown, 'o2fuse (libfuse) ≥ 1.0× fuse2fs');
  t.match(vsFuse2fs, /\*\*NOT met\*\*/, 'the fuse2fs target is missed');
  t.match(vsFuse2fs, /seqwrite: 0\.95× \(within the spread\)/, 'a miss whose best run reached the target');
  t.match(vsFuse2fs, /seqread: 0\.85× \(in every run\)/, 'a miss in every run');
  t.notMatch(vsFuse2fs, /randread/, 'a met job is not listed');
  const vsPassthrough = targetLine(markdown, 'o2fuse (libfuse) ≥ 0.8× the fuse-native passthrough');
  t.match(vsPassthrough, /seqwrite: 0\.95×(;|$)/, 'a met sequential job carries no words');
  t.match(vsPassthrough, /seqread: 0\.71× \(within the spread\)/, 'the passthrough target is judged the same way');
  t.match(markdown, /A miss "within the spread"/, 'the words are explained');
});

t.test('one repetition: no spread to speak of', async (t) => {
  const { markdown } = buildReport(runInfo(runs, 1));
  const vsFuse2fs = targetLine(markdown, 'o2fuse (libfuse) ≥ 1.0× fuse2fs');
  t.match(vsFuse2fs, /seqread: 0\.80×(;|$)/, 'the miss is stated without words on the spread');
  t.notMatch(markdown, /within the spread|in every run/, 'neither phrase appears');
});
