/**
 * Where the client woke: one traced run per FUSE target of the buffered
 * random-write job (one request at a time), after the measurements, for the
 * report's section of that name.
 *
 * The one-at-a-time jobs are decided as much by the wake-ups around each
 * request as by the daemon (bench/README, "Reading the one-at-a-time jobs"):
 * a client woken on the CPU that wrote the answer runs a microsecond later,
 * one woken on another, halted CPU tens of microseconds later. The kernel's
 * FUSE and scheduler tracepoints (bench/fuseTrace.ts) show which happened,
 * so every report carries the evidence for its own one-at-a-time ratios.
 * Tracing costs time, so these runs are not measurements: their rates are
 * shown for orientation only and enter no table or target.
 */
import { connectionOf, summarize, traceWhile, type TraceSummary, type WakeStats } from './fuseTrace';

export interface WakeupRow {
  targetId: string;
  label: string;
  /** Requests answered per second during the traced run (tracing included). */
  requestsPerSec?: number;
  /** Mean client gap (an answer to the next request, nothing else in flight), over every pair of opcodes. */
  gapUs?: number;
  sameCpu?: WakeStats;
  otherCpu?: WakeStats;
  /** Why the row has no numbers. */
  error?: string;
  /** What the row's numbers mean for this target, when not the client's own round trips. */
  note?: string;
}

/** The row of one traced run (`seconds` long) from its summary. */
export function wakeupRow(targetId: string, label: string, s: TraceSummary, seconds: number): WakeupRow {
  let answered = 0;
  for (const l of s.latency.values()) answered += l.n;
  let gapN = 0;
  let gapSum = 0;
  for (const g of s.gaps.values()) {
    gapN += g.n;
    gapSum += g.n * g.meanUs;
  }
  return {
    targetId, label,
    requestsPerSec: answered / seconds,
    gapUs: gapN ? gapSum / gapN : undefined,
    sameCpu: s.wakeups.sameCpu,
    otherCpu: s.wakeups.otherCpu,
  };
}

/**
 * Runs `fio JOBFILE` (env: the job's variables) on the mount at `dir` with tracing on; the summary of that
 * mount's requests only.
 */
export async function traceJob(dir: string, jobFile: string, env: Record<string, string>): Promise<TraceSummary> {
  const connection = connectionOf(dir);
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const r = await traceWhile('env', [...vars, 'fio', '--output-format=terse', jobFile]);
  if (r.code !== 0) throw new Error(`fio exited ${r.code}: ${`${r.stderr}${r.stdout}`.trim().slice(-300)}`);
  return summarize(r.events, connection);
}

/** The report section (markdown lines), or none when no row was traced. */
export function formatWakeups(rows: readonly WakeupRow[], job: string, seconds: number): string[] {
  if (rows.length === 0) return [];
  const pct = (a: number, b: number) => (a + b ? `${Math.round((100 * a) / (a + b))} %` : '–');
  const us = (x: number | undefined) => (x === undefined ? '–' : `${Math.round(x)} us`);
  const md = [
    '## Where the client woke (traced, not measured)', '',
    `One run of ${job} per FUSE target (${seconds} s) with the kernel's FUSE and scheduler tracepoints on ` +
    '(bench/fuseTrace.ts), after the measurements: after each answer, with nothing else in flight, did the client ' +
    'wake on the CPU that wrote the answer or on another one (an interrupt to a CPU that may be halted)? Tracing ' +
    'slows every target, so the rates here are for orientation only.', '',
    '| target | requests/s (traced) | mean gap, answer -> next request | woken on the answering CPU | median delay | woken on another CPU | median delay |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    if (r.error) {
      md.push(`| ${r.label} | ${r.error.replace(/\|/g, '/').slice(0, 200)} | | | | | |`);
      continue;
    }
    const same = r.sameCpu ?? { n: 0, p50Us: 0 };
    const other = r.otherCpu ?? { n: 0, p50Us: 0 };
    md.push(`| ${r.label} | ${Math.round(r.requestsPerSec ?? 0).toLocaleString('en-US')} | ${us(r.gapUs)} | ` +
      `${pct(same.n, other.n)} | ${same.n ? us(same.p50Us) : '–'} | ${pct(other.n, same.n)} | ${other.n ? us(other.p50Us) : '–'} |`);
  }
  md.push('');
  const notes = rows.filter((r) => r.note);
  if (notes.length) md.push(...notes.map((r) => `- ${r.label}: ${r.note}`), '');
  return md;
}
