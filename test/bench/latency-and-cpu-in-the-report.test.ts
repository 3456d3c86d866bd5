/**
 * Beside throughput, every report gives each job's completion latency (fio's
 * clat at p50 and p99) and the serving daemon's CPU time per operation. Here:
 * fio's JSON read into both percentiles and the I/O count (a direction that
 * did nothing has none); /proc/PID/stat read past a command name holding
 * spaces and parentheses, and a real process's CPU time growing while it
 * computes; and the report's two tables built from synthetic measurements
 * (no mount, no fio): medians over runs, failed runs left out, dashes where
 * there is nothing to show. Also the machine's CPU time stolen by the
 * hypervisor: /proc/stat's "cpu" line read (guest time not counted twice),
 * and the report naming the runs that lost more than 5 %.
 */
import t from 'tap';
import { directionsOf, type FioJson } from '../../bench/fio';
import { JOBS } from '../../bench/jobs';
import type { Measurement } from '../../bench/measurement';
import { cpuSeconds, cpuTicksOfStat, machineCpu, machineCpuOfStat, stealPercent } from '../../bench/proc';
import { buildReport, type RunInfo } from '../../bench/report';
import type { Target } from '../../bench/targets';

t.test('fio JSON: p50 and p99 of the completion latency in microseconds, and the I/Os completed', async (t) => {
  const json: FioJson = JSON.parse(JSON.stringify({
    jobs: [{
      error: 0,
      read: {
        bw: 1000, iops: 250, io_bytes: 4096000, total_ios: 1000,
        clat_ns: { percentile: { '1.000000': 10000, '50.000000': 181248, '99.000000': 1171456, '99.900000': 2000000 } },
      },
      // fio prints zeros for a direction a job never used: no percentiles to speak of.
      write: { bw: 0, iops: 0, io_bytes: 0, total_ios: 0, clat_ns: { percentile: { '50.000000': 0, '99.000000': 0 } } },
    }],
  }));
  const d = directionsOf(json);
  t.equal(d.read.ios, 1000, 'I/Os completed');
  t.same(d.read.clatUs, { p50: 181.248, p99: 1171.456 }, 'p50 and p99, ns to us');
  t.equal(d.write.ios, 0);
  t.equal(d.write.clatUs, undefined, 'no latency for a direction without I/O');
  t.equal(directionsOf({ jobs: [{ read: { total_ios: 5 } }] }).read.clatUs, undefined, 'none without percentiles');
});

t.test('/proc/PID/stat: utime + stime, counted from the last parenthesis', async (t) => {
  // Fields 14 and 15 (utime, stime) are 1234 and 56; the command name holds ") (" and spaces.
  const stat = '4242 (o2fuse (img) /mnt x) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 11 0 100 0 0';
  t.equal(cpuTicksOfStat(stat), 1290);
  t.equal(cpuTicksOfStat('garbage'), undefined, 'no command name');
  t.equal(cpuTicksOfStat('1 (x) S 1'), undefined, 'too few fields');

  const before = cpuSeconds(process.pid);
  t.type(before, 'number', 'this process is readable');
  // Compute until getrusage (process.cpuUsage, a source of its own) has counted 300 ms of CPU: however busy the
  // machine, /proc must then show most of it (its unit is a 10 ms tick).
  const start = process.cpuUsage();
  let spin = 0;
  while (process.cpuUsage(start).user + process.cpuUsage(start).system < 300_000) spin++;
  const after = cpuSeconds(process.pid)!;
  t.ok(spin > 0);
  t.ok(after - before! >= 0.25, `CPU time grew by ${(after - before!).toFixed(2)} s while getrusage counted 0.3 s`);
  t.equal(cpuSeconds(2 ** 22 + 12345), undefined, 'a process that does not exist');
});

function target(id: string, label: string, isO2fuse: boolean): Target {
  const never = () => Promise.reject(new Error('not mounted in this test'));
  return { id, label, kind: isO2fuse ? 'image' : 'dir', isO2fuse, describe: id, makeEmpty: never, mount: never } as Target;
}

t.test('the report: latency p50 / p99 and daemon CPU per operation, medians over runs', async (t) => {
  const jobs = JOBS.filter((j) => j.id === 'randread' || j.id === 'mix' || j.id === 'metadata');
  const targets = [target('o2fuse-kernel', 'o2fuse (kernel)', true), target('fuse2fs', 'fuse2fs (ext4)', false), target('host', 'host dir', false)];
  const ms: Measurement[] = [];
  const add = (m: Partial<Measurement> & Pick<Measurement, 'rep' | 'jobId' | 'targetId'>) =>
    ms.push({ values: {}, verifyFailed: false, seconds: 1, phases: {}, ...m });
  // randread on o2fuse: p50 150/170/160 -> 160, p99 900/1,300/1,100 -> 1,100; CPU 16/20/18 us per I/O -> 18.
  [[150, 900, 16], [170, 1300, 20], [160, 1100, 18]].forEach(([p50, p99, cpuUs], i) => add({
    rep: i + 1, jobId: 'randread', targetId: 'o2fuse-kernel', values: { randread: 1 },
    latencyUs: { randread: { p50, p99 } }, daemonCpuSec: (cpuUs * 100_000) / 1e6, ops: 100_000,
  }));
  // A run that failed says nothing about latency or CPU, whatever it carries.
  add({ rep: 4, jobId: 'randread', targetId: 'o2fuse-kernel', error: 'fio exited 1', latencyUs: { randread: { p50: 1, p99: 1 } }, daemonCpuSec: 99, ops: 1 });
  add({ rep: 1, jobId: 'randread', targetId: 'fuse2fs', values: { randread: 1 }, latencyUs: { randread: { p50: 578.4, p99: 1843 } }, daemonCpuSec: 2.4, ops: 100_000 });
  add({ rep: 1, jobId: 'randread', targetId: 'host', values: { randread: 1 }, latencyUs: { randread: { p50: 4.25, p99: 317 } } });
  // mix: one latency row per direction.
  add({ rep: 1, jobId: 'mix', targetId: 'o2fuse-kernel', values: { mix: 1 }, latencyUs: { 'mix-read': { p50: 183, p99: 1352 }, 'mix-write': { p50: 218, p99: 1036 } } });
  // metadata: CPU per file.
  add({ rep: 1, jobId: 'metadata', targetId: 'o2fuse-kernel', values: { 'meta-create': 1 }, daemonCpuSec: 4.42, ops: 5000 });

  const at = new Date('2026-11-26T00:00:00Z');
  const info: RunInfo = {
    title: 'test', mode: 'full', reps: 3, commandLine: 'test', startedAt: at, finishedAt: at, interrupted: false,
    environment: [], sizes: [], targets, jobs, measurements: ms, notes: [],
  };
  const md = buildReport(info).markdown;
  const line = (start: string, section: string) => {
    const body = md.slice(md.indexOf(section));
    const l = body.split('\n').find((x) => x.startsWith(`| ${start}`));
    if (!l) throw new Error(`no row "${start}" under "${section}" in:\n${md}`);
    return l;
  };
  const LAT = '## Completion latency';
  const CPU = '## Daemon CPU per operation';
  t.match(md, /latency and CPU: lower is better/, 'the report says which way is better');
  t.equal(line('rand read 4 KiB direct, QD16', LAT), '| rand read 4 KiB direct, QD16 | 160 / 1,100 | 578 / 1,843 | 4.3 / 317 |',
    'medians of p50 and of p99, the failed run left out; below 10 us one decimal');
  t.equal(line('rand 70/30 4 KiB direct, QD16: reads', LAT), '| rand 70/30 4 KiB direct, QD16: reads | 183 / 1,352 | – | – |');
  t.equal(line('rand 70/30 4 KiB direct, QD16: writes', LAT), '| rand 70/30 4 KiB direct, QD16: writes | 218 / 1,036 | – | – |');
  t.notMatch(md.slice(md.indexOf(LAT), md.indexOf(CPU)), /metadata/, 'the metadata job has no latency row');
  t.match(line('job', CPU), /^\| job \| o2fuse \(kernel\) \| fuse2fs \(ext4\) \|$/, 'no column for the host: it has no daemon');
  t.equal(line('randread', CPU), '| randread | 18 | 24 |', 'median CPU per I/O, the failed run left out');
  t.equal(line('mix', CPU), '| mix | – | – |', 'nothing measured, nothing shown');
  t.equal(line('metadata', CPU), '| metadata | 884 | – |', 'per file for the metadata job');
});

t.test('steal: /proc/stat read, and the runs that lost CPU time to the host named', async (t) => {
  // user nice system idle iowait irq softirq steal guest guest_nice: guest (7) is inside user already.
  const stat = 'cpu  100 0 50 800 20 0 10 20 7 0\ncpu0 50 0 25 400 10 0 5 10 7 0\nintr 12345\n';
  t.same(machineCpuOfStat(stat), { total: 1000, steal: 20 });
  t.equal(machineCpuOfStat('intr 1\n'), undefined, 'no cpu line');
  t.equal(machineCpuOfStat('cpu  1 2 3\n'), undefined, 'a line too short');
  const real = machineCpu();
  t.ok(real && real.total > 0 && real.steal >= 0 && real.steal <= real.total, 'this machine\'s /proc/stat reads');
  t.equal(stealPercent({ total: 1000, steal: 20 }, { total: 1400, steal: 40 }), 5, 'steal over the time between readings');
  t.equal(stealPercent({ total: 1000, steal: 20 }, { total: 1000, steal: 20 }), undefined, 'no time passed: nothing said');
  t.equal(stealPercent({ total: 1000, steal: 20 }, { total: 900, steal: 20 }), undefined, 'a counter gone back: nothing said');
  t.equal(stealPercent(undefined, { total: 1000, steal: 20 }), undefined, 'a reading missing');
  t.equal(stealPercent({ total: 1000, steal: 30 }, { total: 1100, steal: 20 }), 0, 'steal gone back counts as none');

  const targets = [target('o2fuse-kernel', 'o2fuse (kernel)', true), target('fuse2fs', 'fuse2fs (ext4)', false)];
  const run = (rep: number, targetId: string, stealPct?: number): Measurement =>
    ({ rep, jobId: 'randread', targetId, values: { randread: 1 }, verifyFailed: false, seconds: 1, phases: {}, stealPct });
  const at = new Date('2026-11-26T00:00:00Z');
  const report = (ms: Measurement[]) => buildReport({
    title: 'test', mode: 'full', reps: 3, commandLine: 'test', startedAt: at, finishedAt: at, interrupted: false,
    environment: [], sizes: [], targets, jobs: JOBS.filter((j) => j.id === 'randread'), measurements: ms, notes: [],
  }).markdown;

  const md = report([run(1, 'o2fuse-kernel', 0.5), run(1, 'fuse2fs', 12.25), run(2, 'o2fuse-kernel', 1), run(2, 'fuse2fs', 6)]);
  t.match(md, /## CPU time stolen by the hypervisor/);
  t.match(md, /median 3\.5 %, at most 12\.3 % \(fuse2fs randread rep 1\)/, 'median and the worst run');
  t.match(md, /more than 5 % .*: fuse2fs randread rep 1 \(12\.3 %\), fuse2fs randread rep 2 \(6\.0 %\)\./, 'each run over 5 % named');
  t.notMatch(md, /o2fuse-kernel randread rep \d \(/, 'runs under it are not');
  t.match(report([run(1, 'o2fuse-kernel', 0), run(1, 'fuse2fs', 0.2)]), /No run lost more than 5 %\./);
  t.notMatch(report([run(1, 'o2fuse-kernel'), run(1, 'fuse2fs')]), /stolen by the hypervisor/, 'no section without figures');
});
