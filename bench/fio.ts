/**
 * Running one fio job file and reading its JSON output (--output-format=json):
 * bandwidth, IOPS, I/Os completed and completion-latency percentiles per
 * direction, and whether verification failed.
 */
import * as fs from 'node:fs';
import { run } from './proc';

/** Completion latency percentiles of one direction, microseconds. */
export interface LatencyUs {
  p50: number;
  p99: number;
}

export interface FioDirection {
  /** KiB/s (fio's "bw", kb_base 1024). */
  bwKiBps: number;
  iops: number;
  ioBytes: number;
  /** I/Os completed (fio's total_ios). */
  ios: number;
  /**
   * fio's completion latency (clat: from submission to completion, what the
   * filesystem and everything under it took) at p50 and p99; undefined when
   * the direction completed no I/O or fio reported no percentiles.
   */
  clatUs?: LatencyUs;
}

export interface FioResult {
  read: FioDirection;
  write: FioDirection;
  /** fio's exit status and per-job error; a verify mismatch sets both. */
  exitCode: number;
  jobError: number;
  verifyFailed: boolean;
  timedOut: boolean;
  /** Why the run is not a number: fio failed, or no JSON. */
  failure?: string;
  stderr: string;
}

/** What fio prints when a block read back does not match what it wrote. */
const VERIFY_FAILURE = /verify: bad|bad magic header|verify failed|crc32c: verify|bad header/i;

interface FioJsonDirection {
  bw?: number;
  iops?: number;
  io_bytes?: number;
  total_ios?: number;
  /** Percentile keys as fio prints them: "50.000000", "99.000000". */
  clat_ns?: { percentile?: Record<string, number> };
}

export interface FioJson {
  jobs?: Array<{ error?: number; read?: FioJsonDirection; write?: FioJsonDirection }>;
}

function clatOf(d: FioJsonDirection | undefined): LatencyUs | undefined {
  const pct = d?.clat_ns?.percentile;
  const p50 = pct?.['50.000000'];
  const p99 = pct?.['99.000000'];
  if (!d?.total_ios || typeof p50 !== 'number' || typeof p99 !== 'number') return undefined;
  return { p50: p50 / 1000, p99: p99 / 1000 };
}

function direction(d: FioJsonDirection | undefined): FioDirection {
  return { bwKiBps: d?.bw ?? 0, iops: d?.iops ?? 0, ioBytes: d?.io_bytes ?? 0, ios: d?.total_ios ?? 0, clatUs: clatOf(d) };
}

/** fio may print warnings before the JSON document even with --output; take from the first "{". */
export function parseFioJson(text: string): FioJson {
  const start = text.indexOf('{');
  if (start < 0) throw new Error('no JSON in fio output');
  return JSON.parse(text.slice(start)) as FioJson;
}

/** The numbers of one job's directions from fio's JSON document (the first job: each file here has one). */
export function directionsOf(json: FioJson): { read: FioDirection; write: FioDirection; error: number } {
  const job = json.jobs?.[0];
  return { read: direction(job?.read), write: direction(job?.write), error: job?.error ?? 0 };
}

export async function runFio(jobFile: string, env: Record<string, string>, jsonPath: string, timeoutMs: number): Promise<FioResult> {
  const r = await run('fio', ['--output-format=json', `--output=${jsonPath}`, jobFile], {
    env: { ...process.env, ...env },
    timeoutMs,
  });
  const stderr = `${r.stderr}${r.stdout}`;
  const result: FioResult = {
    read: direction(undefined),
    write: direction(undefined),
    exitCode: r.code,
    jobError: 0,
    verifyFailed: VERIFY_FAILURE.test(stderr),
    timedOut: r.timedOut,
    stderr,
  };
  let json: FioJson | undefined;
  try {
    json = parseFioJson(fs.readFileSync(jsonPath, 'utf8'));
  } catch (err) {
    result.failure = `fio exited ${r.code}${r.timedOut ? ' (killed after the time limit)' : ''}, no JSON (${(err as Error).message}): ${stderr.trim().slice(-500)}`;
    return result;
  }
  const d = directionsOf(json);
  result.read = d.read;
  result.write = d.write;
  result.jobError = d.error;
  if (r.code !== 0 || result.jobError !== 0 || r.timedOut) {
    result.failure = `fio exited ${r.code}${r.timedOut ? ' (killed after the time limit)' : ''}, job error ${result.jobError}: ${stderr.trim().slice(-500)}`;
  }
  return result;
}
