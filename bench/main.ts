/**
 * npm run bench: o2fuse next to the host filesystem and other FUSE
 * filesystems, with fio and a metadata workload.
 *
 *   node dist/bench/main.js [--quick] [--reps N] [--targets a,b] [--jobs a,b]
 *                           [--scratch DIR] [--out DIR] [--no-install]
 *
 * For each target one volume is made and laid out once (seq.dat, rand.dat,
 * verify.dat, written through the target itself). Each run drops the
 * kernel's caches, mounts the volume fresh, runs the job, records the
 * daemon's peak RSS, removes what the job created and unmounts. Volumes are
 * reused rather than copied per run: deleting multi-GiB files on a host
 * filesystem mounted with `discard` blocks in synchronous discards for tens
 * of seconds (seen here). Runs are interleaved (rep 1: job 1 on A B C, job 2 on B C A, ...; rep 2: job 1 on
 * B C A, ...), so a slow phase of the machine spreads over every target, and so does the cost the first run
 * after a change of job pays (runOrder.ts).
 *
 * Not a test: nothing here asserts, and nothing runs under `npm test`.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mountsAt, readMountinfo } from '../fs/fuse/mountinfo';
import { describeCpuIdle } from './cpuIdle';
import { cpuLatencyLimitUs, holdCpuLatency, type CpuLatencyHold } from './cpuLatency';
import { tracingUnavailable } from './fuseTrace';
import { NATIVE_ADDON } from '../io/nativeAddon';
import { formatWakeups, traceJob, wakeupRow, type WakeupRow } from './wakeups';
import { runFio } from './fio';
import { JOBS, type Job } from './jobs';
import type { Measurement } from './measurement';
import { ensureBenchPackages } from './packages';
import { cpuSeconds, dropKernelCaches, isRoot, machineCpu, peakRssKiB, run, runOk, stealPercent, terminateChildren } from './proc';
import { buildReport, type RunInfo } from './report';
import {
  bindfsTarget, fuse2fsTarget, hostTarget, o2fuseTarget, passthroughTarget, type Mounted, type Target, type TargetConfig,
} from './targets';
import { o2fuseTransports } from './transports';
import { runOrder } from './runOrder';

const MiB = 1 << 20;
const GiB = 1 << 30;
/** Layout writes: one 1 MiB buffer of random bytes, written over and over. */
const LAYOUT_CHUNK_BYTES = MiB;
const RSS_SAMPLE_MS = 200;
/** The one-at-a-time job traced for the report's wake-up section (bench/wakeups.ts). */
const WAKEUP_JOB = 'randwrite-buffered';

interface Config {
  quick: boolean;
  reps: number;
  volumeBytes: number;
  seqBytes: number;
  randBytes: number;
  verifyBytes: number;
  runtimeSec: number;
  metaFiles: number;
  fioTimeoutMs: number;
  targets?: string[];
  jobs?: string[];
  scratch: string;
  out?: string;
  install: boolean;
  /** Extra -o options for every o2fuse mount. */
  o2fuseOptions?: string;
  /** 'poll': hold a CPU latency limit of 0 us for the whole run (bench/cpuLatency.ts); 'as-is': leave the machine alone. */
  cpuIdle: 'as-is' | 'poll';
  /** Trace where clients woke on the one-at-a-time job after the measurements (bench/wakeups.ts). */
  traceWakeups: boolean;
}

/**
 * The verify job is not timed: it writes its whole file once, then fio reads it back. Its file is large enough for
 * the write phase to last seconds, like the timed jobs: with 8 MiB a fresh o2fuse daemon's write phase took half a
 * second, most of it V8 still compiling (kernel transport, 2 runs each: 31,089-32,000 IOPS at 8 MiB, 36,188-37,817
 * at 32, 42,295-44,147 at 64; fuse2fs 15,589-21,701, 18,800-19,208 and 16,495-17,537).
 */
const QUICK = { reps: 1, seqBytes: 256 * MiB, randBytes: 128 * MiB, verifyBytes: 8 * MiB, runtimeSec: 3 };
const FULL = { reps: 3, seqBytes: 512 * MiB, randBytes: 256 * MiB, verifyBytes: 32 * MiB, runtimeSec: 5 };

const USAGE = `usage: node dist/bench/main.js [options]
  --quick            1 repetition, smaller files, shorter runs (~3 minutes)
  --reps N           repetitions per job and target (default 3; 1 with --quick)
  --targets LIST     comma-separated target ids (o2fuse-libfuse, host, passthrough, bindfs, fuse2fs, ...)
  --jobs LIST        comma-separated job ids (${JOBS.map((j) => j.id).join(', ')})
  --scratch DIR      where volumes and mounts go (default /tmp/o2fuse-bench; use a directory on the filesystem you mean by "host")
  --out DIR          results directory (default bench/results/<date>-<time>)
  --o2fuse-options O extra -o options for every o2fuse mount (e.g. cache_size=64M, unaligned_dio=unsafe)
  --cpu-idle MODE    as-is (default): the machine's idle policy; poll: idle CPUs poll instead of halting for the
                     whole run, every target alike (a PM QoS CPU latency limit of 0 us; bench/cpuLatency.ts)
  --no-trace         skip the traced run per FUSE target that shows where clients woke (bench/wakeups.ts)
  --no-install       do not apt-get install missing bench packages`;

function parseArgs(argv: string[]): Config {
  const quick = argv.includes('--quick');
  const base = quick ? QUICK : FULL;
  const cfg: Config = {
    quick,
    ...base,
    volumeBytes: 2 * GiB,
    metaFiles: 5000,
    fioTimeoutMs: quick ? 180_000 : 300_000,
    scratch: '/tmp/o2fuse-bench',
    install: true,
    cpuIdle: 'as-is',
    traceWakeups: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--quick': break;
      case '--reps': cfg.reps = Math.max(1, Number.parseInt(value(), 10)); break;
      case '--targets': cfg.targets = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--jobs': cfg.jobs = value().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--scratch': cfg.scratch = path.resolve(value()); break;
      case '--out': cfg.out = path.resolve(value()); break;
      case '--no-install': cfg.install = false; break;
      case '--no-trace': cfg.traceWakeups = false; break;
      case '--o2fuse-options': cfg.o2fuseOptions = value(); break;
      case '--cpu-idle': {
        const mode = value();
        if (mode !== 'as-is' && mode !== 'poll') throw new Error(`--cpu-idle ${mode}: expected as-is or poll`);
        cfg.cpuIdle = mode;
        break;
      }
      case '-h': case '--help': process.stdout.write(`${USAGE}\n`); process.exit(0); break;
      default: throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  if (!Number.isFinite(cfg.reps)) throw new Error('--reps needs a number');
  return cfg;
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The files every volume holds from the start: what the read and overwrite jobs use. */
function dataFiles(cfg: Config): Array<[string, number]> {
  return [['seq.dat', cfg.seqBytes], ['rand.dat', cfg.randBytes], ['verify.dat', cfg.verifyBytes]];
}

async function writeDataFile(file: string, bytes: number): Promise<void> {
  const chunk = randomFillSync(Buffer.alloc(LAYOUT_CHUNK_BYTES));
  const fh = await fs.promises.open(file, 'w', 0o644);
  try {
    for (let off = 0; off < bytes; off += chunk.length) {
      const n = Math.min(chunk.length, bytes - off);
      await fh.write(chunk, 0, n, off);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function volumePath(dir: string, t: Target): string {
  return path.join(dir, t.kind === 'image' ? `vol-${t.id}.img` : `vol-${t.id}`);
}

/** Removes what a job created on the mount at `dir` (untimed, still mounted), so the next job finds the volume as laid out. */
async function removeCreated(dir: string, job: Job): Promise<void> {
  if (job.creates) await fs.promises.rm(path.join(dir, job.creates), { force: true, recursive: true }).catch(() => undefined);
}

/** Removes a mount directory only if nothing is mounted there (never recurse into a live mount). */
function removeMountDir(dir: string): void {
  if (mountsAt(dir).length > 0) {
    say(`bench: warning: ${dir} is still a mount point; left in place`);
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Samples the daemon's VmHWM while it runs: the last sample before it exits is its peak. */
function rssSampler(pid: number | undefined): { stop(): number | undefined } {
  if (pid === undefined) return { stop: () => undefined };
  let peak = peakRssKiB(pid);
  const timer = setInterval(() => {
    const v = peakRssKiB(pid);
    if (v !== undefined) peak = Math.max(peak ?? 0, v);
  }, RSS_SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      const v = peakRssKiB(pid);
      if (v !== undefined) peak = Math.max(peak ?? 0, v);
      return peak;
    },
  };
}

/**
 * A copy of o2fuse's CLI: its launcher (bin/o2fuse, which picks node's flags)
 * over a copy of the compiled code (dist/bin, fs, io, cache, native; package.json;
 * node_modules linked). Every mount of the run then starts the same code, and
 * no launcher rebuild (bin/o2fuse runs tsc when a source is newer than dist/,
 * and the copy has no sources) lands inside a measurement. Checked by running
 * its `status` command.
 */
async function snapshotO2fuse(repoRoot: string, workDir: string): Promise<string[]> {
  const snap = path.join(workDir, 'o2fuse-cli');
  const dist = path.join(repoRoot, 'dist');
  if (!fs.existsSync(path.join(dist, 'bin', 'main.js'))) {
    // A fresh checkout: the launcher builds dist/ (and runs npm ci) once, before anything is timed.
    await runOk(path.join(repoRoot, 'bin', 'o2fuse'), ['status'], { timeoutMs: 600_000 });
  }
  for (const dir of ['bin', 'fs', 'io', 'cache', 'native']) {
    // native/: the /dev/fuse poll reader, when it could be built (the kernel transport uses threads otherwise).
    if (dir === 'native' && !fs.existsSync(path.join(dist, dir))) continue;
    fs.cpSync(path.join(dist, dir), path.join(snap, 'dist', dir), { recursive: true });
  }
  fs.mkdirSync(path.join(snap, 'bin'));
  fs.copyFileSync(path.join(repoRoot, 'bin', 'o2fuse'), path.join(snap, 'bin', 'o2fuse'));
  fs.chmodSync(path.join(snap, 'bin', 'o2fuse'), 0o755);
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(snap, 'package.json'));
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(snap, 'node_modules'));
  const cli = [path.join(snap, 'bin', 'o2fuse')];
  await runOk(cli[0], ['status'], { timeoutMs: 60_000 });
  return cli;
}

function loadAverage1m(): number {
  return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** Removes the run's scratch directory, but never through a mount still on it: those are unmounted lazily first. */
async function cleanUp(workDir: string, scratch: string): Promise<void> {
  say(`removing ${workDir} (deleting large files can take a while on a filesystem mounted with discard)`);
  const under = () => readMountinfo().filter((m) => m.mountPoint === workDir || m.mountPoint.startsWith(`${workDir}/`));
  for (const m of under().reverse()) {
    say(`bench: ${m.mountPoint} still mounted at the end: unmounting lazily`);
    await run('fusermount', ['-u', '-z', m.mountPoint]);
  }
  const left = under();
  if (left.length > 0) {
    say(`bench: warning: mounts left under ${workDir}, not removing it: ${left.map((m) => m.mountPoint).join(', ')}`);
    return;
  }
  fs.rmSync(workDir, { recursive: true, force: true });
  try {
    fs.rmdirSync(scratch);
  } catch {
    // not empty (another run, or something of the user's): leave it
  }
}

class Bench {
  readonly measurements: Measurement[] = [];
  readonly notes: string[] = [];
  /** Size each image-backed filesystem reports (statfs), bytes. */
  readonly volumeSizes = new Map<string, number>();
  wakeupSection: string[] = [];
  aborted = false;
  private cachesDropped = true;

  constructor(
    readonly cfg: Config,
    readonly repoRoot: string,
    readonly workDir: string,
    readonly resultsDir: string,
    readonly targets: Target[],
    readonly jobs: Job[],
  ) {}

  volume(t: Target): string {
    return volumePath(this.workDir, t);
  }

  /** Makes and lays out the volume of one target; a failure makes the target unavailable. */
  async prepare(t: Target): Promise<void> {
    const vol = this.volume(t);
    const files = dataFiles(this.cfg);
    const started = Date.now();
    await t.makeEmpty(vol);
    let sizeNote = '';
    // A directory is laid out on the host directly (what its passthrough would write anyway), then mounted once
    // to see that the target comes up at all; an image can only be written through its filesystem.
    if (t.kind === 'dir') for (const [name, bytes] of files) await writeDataFile(path.join(vol, name), bytes);
    const mnt = path.join(this.workDir, `mnt-${t.id}`);
    fs.mkdirSync(mnt, { recursive: true });
    let m: Mounted | undefined;
    try {
      m = await t.mount(vol, mnt);
      if (t.kind === 'image') {
        // What the filesystem says its size is: the check that the images are the same size.
        const st = await fs.promises.statfs(m.dir);
        sizeNote = ` (statfs: ${((st.blocks * st.bsize) / GiB).toFixed(2)} GiB)`;
        this.volumeSizes.set(t.id, st.blocks * st.bsize);
        for (const [name, bytes] of files) await writeDataFile(path.join(m.dir, name), bytes);
      }
    } finally {
      await m?.unmount();
      removeMountDir(mnt);
    }
    say(`  ${t.id}: laid out ${files.map(([n, b]) => `${n} ${b / MiB} MiB`).join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s${sizeNote}`);
  }

  async runOne(t: Target, job: Job, rep: number): Promise<Measurement> {
    const started = Date.now();
    const m: Measurement = { rep, jobId: job.id, targetId: t.id, values: {}, verifyFailed: false, seconds: 0, phases: {} };
    let phaseStart = Date.now();
    const phase = (name: string) => {
      const now = Date.now();
      m.phases[name] = (now - phaseStart) / 1000;
      phaseStart = now;
    };
    const vol = this.volume(t);
    const mnt = path.join(this.workDir, `mnt-${t.id}`);
    const rawBase = `raw/rep${rep}-${job.id}-${t.id}`;
    try {
      if (!(await dropKernelCaches(this.workDir, 3))) this.cachesDropped = false;
      phase('drop');
      fs.mkdirSync(mnt, { recursive: true });
      let mounted: Mounted;
      try {
        mounted = await t.mount(vol, mnt);
      } catch (err) {
        m.error = `mount failed: ${(err as Error).message}`;
        return m;
      }
      // Not timed: o2fuse's CLI asks the daemon over its control socket, before and after the workload.
      const gateBefore = await mounted.gateCounters?.();
      phase('mount');
      const sampler = rssSampler(mounted.pid);
      const cpuBefore = mounted.pid === undefined ? undefined : cpuSeconds(mounted.pid);
      const machineBefore = machineCpu();
      try {
        if (job.kind === 'fio') {
          const jsonPath = path.join(this.resultsDir, `${rawBase}.json`);
          const r = await runFio(path.join(this.repoRoot, 'bench', 'jobs', job.fioFile!), {
            BENCH_DIR: mounted.dir,
            BENCH_SEQ_SIZE: String(this.cfg.seqBytes),
            BENCH_RAND_SIZE: String(this.cfg.randBytes),
            BENCH_VERIFY_SIZE: String(this.cfg.verifyBytes),
            BENCH_RUNTIME: String(this.cfg.runtimeSec),
          }, jsonPath, this.cfg.fioTimeoutMs);
          m.raw = `${rawBase}.json`;
          if (r.stderr.trim()) fs.writeFileSync(path.join(this.resultsDir, `${rawBase}.stderr`), r.stderr);
          m.verifyFailed = job.verify && r.verifyFailed;
          if (r.failure) m.error = r.failure;
          // A failed verify job is FAILED, never a number; another failed run keeps no number either.
          else {
            m.values = job.values!(r);
            m.ops = r.read.ios + r.write.ios;
            m.latencyUs = {};
            for (const l of job.latencyRows ?? []) {
              const clat = r[l.direction].clatUs;
              if (clat) m.latencyUs[l.id] = clat;
            }
          }
        } else {
          const script = path.join(this.repoRoot, 'dist', 'bench', 'metadata.js');
          const r = await run(process.execPath, [script, mounted.dir, String(this.cfg.metaFiles)], { timeoutMs: this.cfg.fioTimeoutMs * 2 });
          fs.writeFileSync(path.join(this.resultsDir, `${rawBase}.txt`), `${r.stdout}${r.stderr}`);
          m.raw = `${rawBase}.txt`;
          if (r.code !== 0) {
            m.error = `metadata script exited ${r.code}${r.timedOut ? ' (killed after the time limit)' : ''}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`;
          } else {
            const rates = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
            m.values = { 'meta-create': rates.create, 'meta-stat': rates.stat, 'meta-readdir': rates.readdir, 'meta-unlink': rates.unlink };
            m.ops = this.cfg.metaFiles;
          }
        }
        // Before the untimed clean-up below: the CPU the workload itself cost the daemon.
        const cpuAfter = mounted.pid === undefined ? undefined : cpuSeconds(mounted.pid);
        if (cpuBefore !== undefined && cpuAfter !== undefined) m.daemonCpuSec = cpuAfter - cpuBefore;
        m.stealPct = stealPercent(machineBefore, machineCpu());
        const gateAfter = gateBefore && (await mounted.gateCounters?.());
        if (gateBefore && gateAfter) {
          m.gate = { entered: gateAfter.entered - gateBefore.entered, waits: gateAfter.waits - gateBefore.waits,
            waitMs: gateAfter.totalWaitMs - gateBefore.totalWaitMs };
        }
      } finally {
        phase('work');
        await removeCreated(mounted.dir, job);
        await mounted.unmount();
        m.peakRssKiB = sampler.stop();
        phase('unmount');
      }
    } catch (err) {
      m.error ??= (err as Error).message;
    } finally {
      removeMountDir(mnt);
      m.seconds = (Date.now() - started) / 1000;
    }
    return m;
  }

  async runAll(): Promise<void> {
    const live = () => this.targets.filter((t) => !t.unavailable);
    const total = this.cfg.reps * this.jobs.length * live().length;
    let n = 0;
    for (let rep = 1; rep <= this.cfg.reps && !this.aborted; rep++) {
      for (const [jobIndex, job] of this.jobs.entries()) {
        for (const t of runOrder(live(), rep, jobIndex)) {
          if (this.aborted) return;
          n++;
          process.stdout.write(`[${n}/${total}] ${t.id} ${job.id} rep ${rep} ... `);
          const m = await this.runOne(t, job, rep);
          if (this.aborted) {
            // fio stopped by the signal still reports what it did so far: not a measurement.
            m.values = {};
            m.error = 'interrupted';
          }
          this.measurements.push(m);
          say(describeMeasurement(m, job));
        }
      }
    }
    if (!this.cachesDropped) this.notes.push('The kernel caches could not be dropped (not root): reads may not have been cold.');
  }

  /** One traced run of the one-at-a-time job per FUSE target: the report's wake-up section (bench/wakeups.ts). */
  async traceWakeups(): Promise<void> {
    const job = this.jobs.find((j) => j.id === WAKEUP_JOB);
    if (!job || this.aborted) return;
    const why = tracingUnavailable();
    if (why) {
      this.notes.push(`Where the client woke was not traced: ${why}.`);
      return;
    }
    const seconds = this.cfg.runtimeSec;
    const rows: WakeupRow[] = [];
    for (const t of this.targets.filter((x) => !x.unavailable && x.id !== 'host')) {
      if (this.aborted) return;
      process.stdout.write(`tracing wake-ups: ${t.id} ${job.id} ... `);
      const mnt = path.join(this.workDir, `mnt-${t.id}`);
      let mounted: Mounted | undefined;
      try {
        await dropKernelCaches(this.workDir, 3);
        fs.mkdirSync(mnt, { recursive: true });
        mounted = await t.mount(this.volume(t), mnt);
        const s = await traceJob(mounted.dir, path.join(this.repoRoot, 'bench', 'jobs', job.fioFile!), {
          BENCH_DIR: mounted.dir,
          BENCH_RAND_SIZE: String(this.cfg.randBytes),
          BENCH_RUNTIME: String(seconds),
        });
        const row = wakeupRow(t.id, t.label, s, seconds);
        if (t.id.includes('writeback-cache')) {
          row.note = 'the kernel answers the client\'s writes from its own cache and sends them on in bursts, so ' +
            'the requests and gaps in its row are the kernel\'s write-back, not the client\'s round trips';
        }
        rows.push(row);
        say(`${Math.round(row.requestsPerSec ?? 0)} requests/s, ${row.sameCpu?.n ?? 0} wake-ups on the answering CPU, ${row.otherCpu?.n ?? 0} on another`);
      } catch (err) {
        rows.push({ targetId: t.id, label: t.label, error: (err as Error).message.split('\n')[0] });
        say(`failed: ${(err as Error).message.split('\n')[0].slice(0, 200)}`);
      } finally {
        if (mounted) await removeCreated(mounted.dir, job);
        await mounted?.unmount();
        removeMountDir(mnt);
      }
    }
    this.wakeupSection = formatWakeups(rows, job.id, seconds);
  }
}

function formatUs(us: number): string {
  return us >= 10_000 ? `${(us / 1000).toFixed(1)} ms` : `${us >= 100 ? Math.round(us) : us.toFixed(1)} us`;
}

function describeMeasurement(m: Measurement, job: Job): string {
  const parts: string[] = [];
  if (m.verifyFailed) parts.push('VERIFY FAILED');
  if (m.error) parts.push(`error: ${m.error.split('\n')[0].slice(0, 200)}`);
  for (const row of job.rows) {
    const v = m.values[row.id];
    if (v !== undefined) parts.push(`${job.rows.length > 1 ? `${row.id.replace(/^meta-/, '')} ` : ''}${row.unit === 'MiB/s' ? v.toFixed(1) : Math.round(v)} ${row.unit}`);
  }
  const slowest = Object.values(m.latencyUs ?? {}).reduce((a, l) => Math.max(a, l.p99), 0);
  if (slowest > 0) parts.push(`p99 ${formatUs(slowest)}`);
  if (m.daemonCpuSec !== undefined && m.ops) parts.push(`daemon CPU ${formatUs((m.daemonCpuSec / m.ops) * 1e6)}/${job.kind === 'fio' ? 'I/O' : 'file'}`);
  if (m.peakRssKiB !== undefined) parts.push(`peak RSS ${(m.peakRssKiB / 1024).toFixed(0)} MiB`);
  const phases = Object.entries(m.phases).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
  return `${parts.join(', ')} (${m.seconds.toFixed(1)} s: ${phases})`;
}

async function environment(cfg: Config, repoRoot: string): Promise<string[]> {
  const first = async (cmd: string, args: string[]) => {
    try {
      const r = await run(cmd, args);
      return (r.stdout || r.stderr).trim().split('\n')[0];
    } catch {
      return '(not available)';
    }
  };
  const fsOf = await first('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '-T', cfg.scratch]);
  const sameAsWork = (() => {
    try {
      return fs.statSync(cfg.scratch).dev === fs.statSync('/work').dev ? 'same filesystem as /work' : 'NOT the filesystem of /work';
    } catch {
      return 'no /work to compare with';
    }
  })();
  const head = await first('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const dirty = (await run('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim() ? ' (with uncommitted changes)' : '';
  const cpu = (/model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown cpu').trim();
  return [
    `kernel ${os.release()}, ${os.cpus().length} CPUs (${cpu}), ${(os.totalmem() / GiB).toFixed(0)} GiB RAM`,
    `scratch ${cfg.scratch}: ${fsOf} (${sameAsWork})`,
    `node ${process.version}, ${await first('fio', ['--version'])}, ${await first('bindfs', ['--version'])}, fuse2fs ${await first('dpkg-query', ['-W', '-f=${Version}', 'fuse2fs'])}`,
    `o2fuse commit ${head}${dirty}; kernel transport reads /dev/fuse ${
      fs.existsSync(NATIVE_ADDON) ? 'polled on the main thread (reader=poll: the addon is built)' : 'with worker threads (the poll reader addon is not built)'}`,
    describeCpuIdle('/sys', cpuLatencyLimitUs(), cfg.cpuIdle === 'poll'),
    `load average at start ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  ];
}

async function main(): Promise<number> {
  const cfg = parseArgs(process.argv.slice(2));
  const repoRoot = path.resolve(__dirname, '..', '..');
  const startedAt = new Date();
  const resultsDir = cfg.out ?? path.join(repoRoot, 'bench', 'results', stamp(startedAt));
  say(`o2fuse bench (${cfg.quick ? 'quick' : 'full'}): ${cfg.reps} rep(s), results in ${resultsDir}`);
  if (!isRoot()) say('bench: warning: not root: FUSE mounts, package installs and dropping the kernel caches may fail');

  const missing = cfg.install ? await ensureBenchPackages(say) : new Map<string, string>();
  if (missing.has('fio')) {
    say(`bench: fio is missing (${missing.get('fio')}); nothing to run`);
    return 1;
  }

  const o2fuseCli: string[] = [];
  const tcfg: TargetConfig = { repoRoot, volumeBytes: cfg.volumeBytes, o2fuseCli, o2fuseOptions: cfg.o2fuseOptions };
  const transports = o2fuseTransports();
  say(`o2fuse transports: ${transports.join(', ') || '(none accepted by bin/options.ts)'}`);
  let targets: Target[] = [
    ...transports.map((tr) => o2fuseTarget(tcfg, tr)),
    // The kernel's writeback cache is a mount option of the kernel transport, off by default: measured beside it.
    ...(transports.includes('kernel') ? [o2fuseTarget(tcfg, 'kernel', 'writeback_cache')] : []),
    hostTarget(), passthroughTarget(tcfg), bindfsTarget(), fuse2fsTarget(tcfg),
  ];
  const unavailableFor: Record<string, string[]> = { bindfs: ['bindfs'], fuse2fs: ['fuse2fs', 'e2fsprogs'] };
  for (const t of targets) {
    const why = (unavailableFor[t.id] ?? []).map((p) => missing.get(p) && `${p}: ${missing.get(p)}`).filter(Boolean);
    if (why.length) t.unavailable = why.join('; ');
  }
  if (cfg.targets) {
    const unknown = cfg.targets.filter((id) => !targets.some((t) => t.id === id));
    if (unknown.length) throw new Error(`unknown target(s) ${unknown.join(', ')} (have ${targets.map((t) => t.id).join(', ')})`);
    targets = targets.filter((t) => cfg.targets!.includes(t.id));
  }
  let jobs = JOBS;
  if (cfg.jobs) {
    const unknown = cfg.jobs.filter((id) => !JOBS.some((j) => j.id === id));
    if (unknown.length) throw new Error(`unknown job(s) ${unknown.join(', ')} (have ${JOBS.map((j) => j.id).join(', ')})`);
    jobs = JOBS.filter((j) => cfg.jobs!.includes(j.id));
  }

  fs.mkdirSync(path.join(resultsDir, 'raw'), { recursive: true });
  fs.mkdirSync(cfg.scratch, { recursive: true });
  const workDir = fs.mkdtempSync(path.join(cfg.scratch, 'run-'));
  const bench = new Bench(cfg, repoRoot, workDir, resultsDir, targets, jobs);
  const onSignal = (sig: string) => {
    if (!bench.aborted) say(`\nbench: ${sig}: stopping after cleanup (unmounting, removing ${workDir})`);
    bench.aborted = true;
    terminateChildren();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  let env: string[] = [];
  let latencyHold: CpuLatencyHold | undefined;
  try {
    if (cfg.cpuIdle === 'poll') {
      // Before anything is laid out or measured, so every target runs under it.
      latencyHold = holdCpuLatency(0);
      say('bench: holding a CPU latency limit of 0 us (/dev/cpu_dma_latency) for the whole run: idle CPUs poll instead of halting');
    }
    env = await environment(cfg, repoRoot);
    if (targets.some((t) => t.isO2fuse && !t.unavailable)) {
      try {
        o2fuseCli.push(...(await snapshotO2fuse(repoRoot, workDir)));
      } catch (err) {
        for (const t of targets.filter((x) => x.isO2fuse)) t.unavailable = `cannot run o2fuse's CLI: ${(err as Error).message.split('\n')[0].slice(0, 300)}`;
      }
    }
    const load = loadAverage1m();
    if (load > os.cpus().length) {
      bench.notes.push(`The machine was busy: load average ${load.toFixed(1)} on ${os.cpus().length} CPUs at the start (other work competes with every target; compare ratios, and rerun on an idle machine before quoting absolute numbers).`);
      say(`bench: warning: load average ${load.toFixed(1)} on ${os.cpus().length} CPUs: numbers will be noisy`);
    }
    say(`preparing volumes in ${workDir} (${cfg.volumeBytes / GiB} GiB each)`);
    for (const t of targets) {
      if (t.unavailable || bench.aborted) continue;
      try {
        await bench.prepare(t);
      } catch (err) {
        t.unavailable = `setup failed: ${(err as Error).message.split('\n')[0].slice(0, 300)}`;
        say(`  ${t.id}: unavailable (${t.unavailable})`);
      }
    }
    await bench.runAll();
    if (cfg.traceWakeups) await bench.traceWakeups();
  } finally {
    latencyHold?.release();
    await cleanUp(workDir, cfg.scratch);
  }

  env.push(`load average at end ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const info: RunInfo = {
    title: `o2fuse benchmark ${stamp(startedAt)}`,
    mode: cfg.quick ? 'quick' : 'full',
    reps: cfg.reps,
    commandLine: `node dist/bench/main.js ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt,
    finishedAt: new Date(),
    interrupted: bench.aborted,
    environment: env,
    sizes: [
      `volumes: ${cfg.volumeBytes / GiB} GiB sparse images (o2fuse, fuse2fs) or plain directories (host, passthrough, bindfs); one per target, laid out once through the target and reused by every run`,
      `sequential file ${cfg.seqBytes / MiB} MiB; random-I/O file ${cfg.randBytes / MiB} MiB; verify file ${cfg.verifyBytes / MiB} MiB; timed jobs run ${cfg.runtimeSec} s`,
      `metadata: ${cfg.metaFiles} files in one directory, each run on a fresh daemon: the phases include its start-up (for o2fuse, V8 compiling the code: ~250 ms of a 5,000-create phase; see bench/README)`,
      ...[...bench.volumeSizes].map(([id, bytes]) => `${id} reports ${(bytes / GiB).toFixed(2)} GiB (statfs) on its ${cfg.volumeBytes / GiB} GiB image`),
      'before every run: `sync -f SCRATCH`, `echo 3 > /proc/sys/vm/drop_caches`, a fresh mount (new daemon); after it, files the job created are removed, then unmount',
    ],
    targets,
    jobs,
    measurements: bench.measurements,
    notes: bench.notes,
    wakeupSection: bench.wakeupSection,
  };
  const { markdown, svg } = buildReport(info);
  fs.writeFileSync(path.join(resultsDir, 'report.md'), markdown);
  fs.writeFileSync(path.join(resultsDir, 'ratios.svg'), svg);
  fs.writeFileSync(path.join(resultsDir, 'results.json'), `${JSON.stringify({ config: cfg, environment: env, targets: targets.map(({ id, label, describe, unavailable }) => ({ id, label, describe, unavailable })), measurements: bench.measurements }, null, 2)}\n`);
  say(`\nreport: ${path.join(resultsDir, 'report.md')}`);
  say(`chart:  ${path.join(resultsDir, 'ratios.svg')}`);
  return bench.aborted ? 130 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
