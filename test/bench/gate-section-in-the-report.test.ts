/**
 * The report's section on the unaligned direct-write rule: what o2fuse's gate
 * counted while each job ran. Here: the bench's o2fuse target reads the
 * counters from a real daemon (`o2fuse stats`), and they move by one for one
 * 512-byte direct write and not at all for a 4 KiB one; and the section built
 * from synthetic measurements (medians over runs, failed runs left out, 0 for
 * a job that never reached the gate, dashes where nothing was counted, no
 * section at all when no run has the counters).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JOBS } from '../../bench/jobs';
import type { Measurement } from '../../bench/measurement';
import { buildReport, type RunInfo } from '../../bench/report';
import { o2fuseTarget, type Target } from '../../bench/targets';
import { repoRoot, runOk } from '../lib/exec';
import { assertFsckClean } from '../lib/fsck';
import { tempDir } from '../lib/volume';

t.test('the o2fuse target reads the gate from its daemon', async (t) => {
  const dir = await tempDir(t);
  const target = o2fuseTarget({ repoRoot: repoRoot(), volumeBytes: 256 << 20, o2fuseCli: [path.join(repoRoot(), 'bin', 'o2fuse')] }, 'kernel');
  const image = path.join(dir, 'vol.img');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  await target.makeEmpty(image);
  const m = await target.mount(image, mnt);
  try {
    const f = path.join(m.dir, 'f');
    await runOk('dd', ['if=/dev/zero', `of=${f}`, 'bs=64k', 'count=1', 'conv=fsync', 'status=none']);
    const g0 = await m.gateCounters!();
    t.ok(g0, 'counters before');
    await runOk('dd', ['if=/dev/zero', `of=${f}`, 'bs=4k', 'count=1', 'seek=2', 'oflag=direct', 'conv=notrunc', 'status=none']);
    const g1 = await m.gateCounters!();
    t.equal(g1!.entered, g0!.entered, 'a 4 KiB direct write does not reach the gate');
    await runOk('dd', ['if=/dev/zero', `of=${f}`, 'bs=512', 'count=1', 'seek=3', 'oflag=direct', 'conv=notrunc', 'status=none']);
    const g2 = await m.gateCounters!();
    t.equal(g2!.entered, g1!.entered + 1, 'a 512-byte one counts in');
    t.equal(g2!.waits, g1!.waits, 'alone, it does not wait');
  } finally {
    await m.unmount();
  }
  t.equal(await m.gateCounters!(), undefined, 'an unmounted target has no counters');
  await assertFsckClean(t, image);
});

function target(id: string, label: string, isO2fuse: boolean): Target {
  const never = () => Promise.reject(new Error('not mounted in this test'));
  return { id, label, kind: isO2fuse ? 'image' : 'dir', isO2fuse, describe: id, makeEmpty: never, mount: never } as Target;
}

t.test('the section: medians over runs, per o2fuse target', async (t) => {
  const jobs = JOBS.filter((j) => ['randwrite', 'unaligned-verify', 'metadata'].includes(j.id));
  const targets = [target('o2fuse-kernel', 'o2fuse (kernel)', true), target('o2fuse-libfuse', 'o2fuse (libfuse)', true),
    target('fuse2fs', 'fuse2fs (ext4)', false)];
  const run = (m: Partial<Measurement> & Pick<Measurement, 'rep' | 'jobId' | 'targetId'>): Measurement =>
    ({ values: {}, verifyFailed: false, seconds: 1, phases: {}, ...m });
  const at = new Date('2026-11-27T00:00:00Z');
  const report = (ms: Measurement[]) => buildReport({
    title: 'test', mode: 'full', reps: 3, commandLine: 'test', startedAt: at, finishedAt: at, interrupted: false,
    environment: [], sizes: [], targets, jobs, measurements: ms, notes: [],
  } satisfies RunInfo).markdown;
  const ms = [
    run({ rep: 1, jobId: 'randwrite', targetId: 'o2fuse-kernel', gate: { entered: 0, waits: 0, waitMs: 0 } }),
    // unaligned-verify: entered 30,000/32,000/31,000 -> 31,000; waits 40/60/50 -> 50; waits summed 2.0/4.0/3.0 -> 3.0 ms.
    run({ rep: 1, jobId: 'unaligned-verify', targetId: 'o2fuse-kernel', gate: { entered: 30_000, waits: 40, waitMs: 2 } }),
    run({ rep: 2, jobId: 'unaligned-verify', targetId: 'o2fuse-kernel', gate: { entered: 32_000, waits: 60, waitMs: 4 } }),
    run({ rep: 3, jobId: 'unaligned-verify', targetId: 'o2fuse-kernel', gate: { entered: 31_000, waits: 50, waitMs: 3 } }),
    // A run that failed says nothing, whatever it carries.
    run({ rep: 4, jobId: 'unaligned-verify', targetId: 'o2fuse-kernel', error: 'fio exited 1', gate: { entered: 1, waits: 1, waitMs: 999 } }),
    run({ rep: 1, jobId: 'unaligned-verify', targetId: 'o2fuse-libfuse', gate: { entered: 9_000, waits: 0, waitMs: 0 } }),
    run({ rep: 1, jobId: 'unaligned-verify', targetId: 'fuse2fs' }),
  ];
  const md = report(ms);
  const section = md.slice(md.indexOf('## The unaligned direct-write rule'), md.indexOf('## Targets'));
  t.match(section, /^## The unaligned direct-write rule in each job \(o2fuse, median over runs\)/, 'the section is there');
  t.match(section, /\| job \| o2fuse \(kernel\) \| o2fuse \(libfuse\) \|\n/, 'a column per o2fuse target, none for baselines');
  t.match(section, /\| randwrite \| 0 \| – \|\n/, 'an aligned job: 0; no counters: a dash');
  t.match(section, /\| unaligned-verify \| 31,000 \/ 50 \(3\.0 ms\) \| 9,000 \/ 0 \(0\.0 ms\) \|\n/, 'medians, the failed run left out');
  t.match(section, /\| metadata \| – \| – \|\n/);
  t.notMatch(report(ms.map((m) => ({ ...m, gate: undefined }))), /## The unaligned direct-write rule/, 'no counters, no section');
});
