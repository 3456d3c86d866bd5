/**
 * Running one fio job file and reading its JSON output (--output-format=json):
 * bandwidth and IOPS per direction, and whether verification failed.
 */
import * as fs from 'node:fs';
import { run } from './proc';

export interface FioDirection {
  /** KiB/s (fio's "bw", kb_base 1024). */
  bwKiBps: number;
  iops: number;
  ioBytes: number;
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
}

interface FioJson {
  jobs?: Array<{ error?: number; read?: FioJsonDirection; write?: FioJsonDirection }>;
}

function direction(d: FioJsonDirection | undefined): FioDirection {
  return { bwKiBps: d?.bw ?? 0, iops: d?.iops ?? 0, ioBytes: d?.io_bytes ?? 0 };
}

/** fio may print warnings before the JSON document even with --output; take from the first "{". */
export function parseFioJson(text: string): FioJson {
  const start = text.indexOf('{');
  if (start < 0) throw new Error('no JSON in fio output');
  return JSON.parse(text.slice(start)) as FioJson;
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
  const job = json.jobs?.[0];
  result.read = direction(job?.read);
  result.write = direction(job?.write);
  result.jobError = job?.error ?? 0;
  if (r.code !== 0 || result.jobError !== 0 || r.timedOut) {
    result.failure = `fio exited ${r.code}${r.timedOut ? ' (killed after the time limit)' : ''}, job error ${result.jobError}: ${stderr.trim().slice(-500)}`;
  }
  return result;
}
