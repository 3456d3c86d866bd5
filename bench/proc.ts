/**
 * Child processes for the benchmark: every program runs asynchronously (a
 * FUSE daemon may be serving from a child while we wait), every live child is
 * known so Ctrl-C can stop it, and daemons are found by their mount point.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { pidAlive } from '../bin/registry';
import { statField } from '../io/procStat';

export interface RunResult {
  /** Exit status; a child killed by a signal reports 128 + its number. */
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed (SIGKILL) after this long; the result says timedOut. */
  timeoutMs?: number;
}

const live = new Set<ChildProcess>();

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a program to completion. Never rejects on a non-zero exit; rejects only when it cannot start. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      live.delete(child);
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      live.delete(child);
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal ? SIGNAL_NUMBERS[signal] ?? 0 : 0),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
  });
}

/** Runs a program and rejects with its command line and output unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${(r.stderr || r.stdout).trim().slice(-1500)}`);
  }
  return r;
}

/** A long-lived child (a daemon in the foreground) that the abort handler must also stop. */
export function track(child: ChildProcess): void {
  live.add(child);
  child.on('exit', () => live.delete(child));
}

/** Ctrl-C: stop what runs now (fio, the metadata script); the callers' finally blocks unmount. */
export function terminateChildren(): void {
  for (const child of live) child.kill('SIGTERM');
}

/** Peak resident set size (VmHWM) of a process in KiB, or undefined when it is gone. */
export function peakRssKiB(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** utime + stime (fields 14 and 15), in clock ticks, from the text of /proc/PID/stat. */
export function cpuTicksOfStat(stat: string): number | undefined {
  const utime = Number(statField(stat, 14));
  const stime = Number(statField(stat, 15));
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
}

let clockTicksPerSec: number | undefined;

/** sysconf(_SC_CLK_TCK): the unit of /proc's CPU times (100 on every Linux this runs on; asked once). */
function ticksPerSec(): number {
  if (clockTicksPerSec === undefined) {
    try {
      clockTicksPerSec = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSec = 100;
    }
  }
  return clockTicksPerSec;
}

/** CPU time a process has used so far (user + system, all its threads), seconds; undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const ticks = cpuTicksOfStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return ticks === undefined ? undefined : ticks / ticksPerSec();
  } catch {
    return undefined;
  }
}

/** The machine's CPU time so far, in clock ticks over all CPUs: all of it, and the part stolen from this VM. */
export interface MachineCpu {
  total: number;
  steal: number;
}

/**
 * The aggregate "cpu" line of /proc/stat: user nice system idle iowait irq
 * softirq steal guest guest_nice. guest and guest_nice are already counted
 * in user and nice, so they are left out of the total.
 */
export function machineCpuOfStat(procStat: string): MachineCpu | undefined {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 8 || f.some((v) => !Number.isFinite(v))) return undefined;
  return { total: f.reduce((a, b) => a + b, 0), steal: f[7] };
}

/**
 * The share of the machine's CPU time the host took between two readings, in percent; undefined when either is
 * missing or no time passed between them (a counter that did not move, or went back, says nothing).
 */
export function stealPercent(before: MachineCpu | undefined, after: MachineCpu | undefined): number | undefined {
  if (!before || !after || after.total <= before.total) return undefined;
  return (100 * Math.max(0, after.steal - before.steal)) / (after.total - before.total);
}

/** The machine's CPU time from /proc/stat, or undefined where it cannot be read. */
export function machineCpu(): MachineCpu | undefined {
  try {
    return machineCpuOfStat(fs.readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Processes (other than us) with `arg` among their command-line arguments: how a daemonized FUSE server is found. */
export function pidsWithArgument(arg: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.includes(arg)) pids.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

export async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * Writes the dirty data of the filesystem holding `dir` to disk (only that
 * one: a plain sync would also wait on every other FUSE mount of the machine,
 * hung ones included), then empties the kernel's page, dentry and inode
 * caches, so a read starts cold. Returns false when the caches could not be
 * dropped (not root).
 */
export async function dropKernelCaches(dir: string, level: 1 | 2 | 3 = 3): Promise<boolean> {
  await run('sync', ['--file-system', dir], { timeoutMs: 120_000 });
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', `${level}\n`);
    return true;
  } catch {
    return false;
  }
}
