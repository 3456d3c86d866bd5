/**
 * One run of one job on one target, and the medians over repetitions that
 * the report is made of. A run either has numbers, or failed verification
 * (FAILED: never shown as a number), or could not run (error).
 */
import type { LatencyUs } from './fio';
import type { Row } from './jobs';
import type { Target } from './targets';

export interface Measurement {
  rep: number;
  jobId: string;
  targetId: string;
  /** Row id -> value, when the run produced numbers. */
  values: Record<string, number>;
  /** fio's verification found a mismatch. */
  verifyFailed: boolean;
  /** The run did not produce numbers (mount failed, fio error, timeout). */
  error?: string;
  /** Peak RSS (VmHWM) of the serving daemon over the run, KiB. */
  peakRssKiB?: number;
  /** Completion latency per latency row id (jobs.ts LatencyRow), from fio. */
  latencyUs?: Record<string, LatencyUs>;
  /** CPU time (user + system, all threads) the serving daemon used while the workload ran, seconds. */
  daemonCpuSec?: number;
  /** What that CPU time is divided by: I/Os fio completed, or the metadata job's files. */
  ops?: number;
  /** Share of the machine's CPU time the hypervisor gave to something else while the workload ran (steal), %. */
  stealPct?: number;
  /** o2fuse: the unaligned direct-write rule while the workload ran (`o2fuse stats` before and after it). */
  gate?: GateDelta;
  /** Wall time of the whole run (copy, mount, workload, unmount). */
  seconds: number;
  /** Where that time went, seconds per phase (copy, drop, mount, work, unmount). */
  phases: Record<string, number>;
  /** Raw output file, relative to the results directory. */
  raw?: string;
}

/** What the unaligned-write gate counted during one run. */
export interface GateDelta {
  /** Writes counted in. */
  entered: number;
  /** Of those, how many waited for an overlapping one in flight. */
  waits: number;
  /** Their waits, summed (ms). */
  waitMs: number;
}

export type CellStatus = 'ok' | 'FAILED' | 'error' | 'unavailable' | 'not run';

export interface Cell {
  status: CellStatus;
  /** Median over the runs that produced a number. */
  median?: number;
  min?: number;
  max?: number;
  runs: number;
  /** Why it is not ok. */
  note?: string;
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The cell of one row × target. Any verify failure makes it FAILED; any error without a number makes it error. */
export function cellOf(row: Row, target: Target, ms: Measurement[]): Cell {
  if (target.unavailable) return { status: 'unavailable', runs: 0, note: target.unavailable };
  const mine = ms.filter((m) => m.jobId === row.jobId && m.targetId === target.id);
  if (mine.length === 0) return { status: 'not run', runs: 0 };
  const failed = mine.filter((m) => m.verifyFailed);
  if (failed.length > 0) return { status: 'FAILED', runs: mine.length, note: `verify failed in ${failed.length} of ${mine.length} runs` };
  const values = mine.map((m) => m.values[row.id]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const errors = mine.filter((m) => m.error);
  if (values.length === 0) return { status: 'error', runs: mine.length, note: errors[0]?.error ?? 'no number' };
  return {
    status: 'ok',
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    runs: values.length,
    note: errors.length > 0 ? `${errors.length} of ${mine.length} runs failed: ${errors[0].error}` : undefined,
  };
}

/** Median peak RSS (KiB) of a target's daemon over a job's runs. */
export function rssOf(jobId: string, targetId: string, ms: Measurement[]): number | undefined {
  return median(ms.filter((m) => m.jobId === jobId && m.targetId === targetId && m.peakRssKiB !== undefined).map((m) => m.peakRssKiB!));
}

/** Medians, each over the runs that counted, of what the unaligned-write gate counted in a target's job. */
export function gateOf(jobId: string, targetId: string, ms: Measurement[]): GateDelta | undefined {
  const runs = ms.filter((m) => m.jobId === jobId && m.targetId === targetId && !m.error && m.gate).map((m) => m.gate!);
  if (runs.length === 0) return undefined;
  return { entered: median(runs.map((g) => g.entered))!, waits: median(runs.map((g) => g.waits))!, waitMs: median(runs.map((g) => g.waitMs))! };
}

/** Median p50 and median p99 (each over the runs that have them) of one latency row of a target. */
export function latencyOf(rowId: string, jobId: string, targetId: string, ms: Measurement[]): LatencyUs | undefined {
  const points = ms
    .filter((m) => m.jobId === jobId && m.targetId === targetId && !m.error && !m.verifyFailed)
    .map((m) => m.latencyUs?.[rowId])
    .filter((p): p is LatencyUs => p !== undefined);
  if (points.length === 0) return undefined;
  return { p50: median(points.map((p) => p.p50))!, p99: median(points.map((p) => p.p99))! };
}

/** Median over a target's runs of a job of the daemon's CPU microseconds per operation. */
export function cpuPerOpUs(jobId: string, targetId: string, ms: Measurement[]): number | undefined {
  return median(ms
    .filter((m) => m.jobId === jobId && m.targetId === targetId && !m.error && m.daemonCpuSec !== undefined && (m.ops ?? 0) > 0)
    .map((m) => (m.daemonCpuSec! / m.ops!) * 1e6));
}
