/**
 * The Markdown report and the ratio chart of one benchmark run: medians per
 * row × target, o2fuse / each baseline, peak RSS, completion latency and the
 * daemon's CPU per operation for each job, and the targets stated as met or
 * not (with what missed).
 */
import type { ChartPanel } from './chart';
import { ratioChartSvg } from './chart';
import type { Job, Row } from './jobs';
import { allLatencyRows, allRows } from './jobs';
import { cellOf, cpuPerOpUs, gateOf, latencyOf, median, rssOf, type Cell, type Measurement } from './measurement';
import type { Target } from './targets';

export interface RunInfo {
  title: string;
  mode: 'quick' | 'full';
  reps: number;
  commandLine: string;
  startedAt: Date;
  finishedAt: Date;
  interrupted: boolean;
  environment: string[];
  sizes: string[];
  targets: Target[];
  jobs: Job[];
  measurements: Measurement[];
  /** Lines for the notes section (setup problems, cache drops refused, ...). */
  notes: string[];
  /** The traced wake-up section (bench/wakeups.ts), markdown lines; empty when nothing was traced. */
  wakeupSection?: string[];
}

/** fuse2fs: o2fuse must match it everywhere. */
const FUSE2FS_RATIO_MIN = 1.0;
/** The libfuse passthrough: o2fuse over the same transport must reach this on sequential I/O. */
const PASSTHROUGH_SEQ_RATIO_MIN = 0.8;

function fmtNumber(v: number, unit: Row['unit']): string {
  if (unit === 'MiB/s') return v >= 100 ? v.toFixed(0) : v.toFixed(1);
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
}

function fmtCell(c: Cell, unit: Row['unit'], showRange: boolean): string {
  switch (c.status) {
    case 'ok': {
      const range = showRange && c.runs > 1 ? ` (${fmtNumber(c.min!, unit)}–${fmtNumber(c.max!, unit)})` : '';
      return `${fmtNumber(c.median!, unit)}${range}${c.note ? ' ⚠' : ''}`;
    }
    case 'FAILED': return '**FAILED**';
    case 'error': return 'error';
    case 'unavailable': return 'n/a';
    default: return '–';
  }
}

function ratio(a: Cell, b: Cell): number | undefined {
  if (a.status !== 'ok' || b.status !== 'ok' || !b.median) return undefined;
  return a.median! / b.median;
}

function fmtRatio(r: number | undefined, a: Cell, b: Cell): string {
  if (a.status === 'FAILED') return '**FAILED**';
  if (r === undefined) return b.status === 'FAILED' ? 'baseline FAILED' : 'n/a';
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

/** Microseconds for the latency and CPU tables: one decimal below 10, whole numbers (with separators) above. */
function fmtUs(us: number): string {
  return us < 10 ? us.toFixed(1) : Math.round(us).toLocaleString('en-US');
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

/**
 * How a miss stands against the runs behind the two medians: "within the
 * spread" when o2fuse's best run reaches the target against the baseline's
 * worst one (another set of repetitions could well have met it), "in every
 * run" when even o2fuse's best run is below the target against the
 * baseline's worst. With one repetition there is no spread to speak of.
 */
function missSpread(a: Cell, b: Cell, min: number): string {
  if (a.status !== 'ok' || b.status !== 'ok' || a.runs < 2 || b.runs < 2) return '';
  return a.max! >= min * b.min! ? 'within the spread' : 'in every run';
}

/** "0.83×", or "0.83× (within the spread)" for a miss over several repetitions. */
function fmtMiss(r: number, a: Cell, b: Cell, min: number): string {
  const spread = r < min ? missSpread(a, b, min) : '';
  return `${r.toFixed(2)}×${spread ? ` (${spread})` : ''}`;
}

interface Verdict {
  text: string;
  met: boolean | undefined;
  details: string[];
}

function evaluateTargets(info: RunInfo, rows: Row[]): Verdict[] {
  const ms = info.measurements;
  const o2 = info.targets.filter((t) => t.isO2fuse);
  const byId = (id: string) => info.targets.find((t) => t.id === id);
  const verdicts: Verdict[] = [];

  const fuse2fs = byId('fuse2fs');
  for (const t of o2) {
    const v: Verdict = { text: `${t.label} ≥ ${FUSE2FS_RATIO_MIN.toFixed(1)}× fuse2fs on every job`, met: undefined, details: [] };
    if (!fuse2fs || fuse2fs.unavailable) {
      v.details.push(fuse2fs ? `fuse2fs unavailable: ${fuse2fs.unavailable}` : 'fuse2fs not in this run');
    } else if (t.unavailable) {
      v.details.push(`${t.label} unavailable: ${t.unavailable}`);
    } else {
      let all = true;
      let any = false;
      for (const row of rows) {
        const a = cellOf(row, t, ms);
        const b = cellOf(row, fuse2fs, ms);
        const r = ratio(a, b);
        if (a.status === 'FAILED') { all = false; v.details.push(`${row.id}: o2fuse FAILED verification`); continue; }
        if (r === undefined) { v.details.push(`${row.id}: not compared (${a.status} vs ${b.status})`); all = false; continue; }
        any = true;
        if (r < FUSE2FS_RATIO_MIN) { all = false; v.details.push(`${row.id}: ${fmtMiss(r, a, b, FUSE2FS_RATIO_MIN)}`); }
      }
      v.met = any ? all : undefined;
    }
    verdicts.push(v);
  }

  const pt = byId('passthrough');
  const viaLibfuse = o2.filter((t) => t.transport === 'libfuse');
  for (const t of viaLibfuse) {
    const v: Verdict = { text: `${t.label} ≥ ${PASSTHROUGH_SEQ_RATIO_MIN}× the fuse-native passthrough on sequential I/O`, met: undefined, details: [] };
    if (!pt || pt.unavailable || t.unavailable) {
      v.details.push(`not compared: ${(t.unavailable ?? pt?.unavailable) || 'the passthrough is not in this run'}`);
    } else {
      let all = true;
      let any = false;
      for (const row of rows.filter((r) => r.sequential)) {
        const a = cellOf(row, t, ms);
        const b = cellOf(row, pt, ms);
        const r = ratio(a, b);
        if (r === undefined) { all = false; v.details.push(`${row.id}: not compared`); continue; }
        any = true;
        v.details.push(`${row.id}: ${fmtMiss(r, a, b, PASSTHROUGH_SEQ_RATIO_MIN)}`);
        if (r < PASSTHROUGH_SEQ_RATIO_MIN) all = false;
      }
      v.met = any ? all : undefined;
    }
    verdicts.push(v);
  }

  const verifyJobs = info.jobs.filter((j) => j.verify);
  for (const t of o2) {
    const v: Verdict = { text: `every verify job clean on ${t.label}`, met: undefined, details: [] };
    const runs = ms.filter((m) => m.targetId === t.id && verifyJobs.some((j) => j.id === m.jobId));
    const failed = runs.filter((m) => m.verifyFailed);
    const errored = runs.filter((m) => !m.verifyFailed && m.error);
    if (runs.length === 0) v.details.push('no verify run');
    else {
      v.met = failed.length === 0 && errored.length === 0;
      v.details.push(`${runs.length - failed.length - errored.length} of ${runs.length} runs clean`);
      if (failed.length) v.details.push(`${failed.length} FAILED verification (reps ${failed.map((m) => m.rep).join(', ')})`);
      if (errored.length) v.details.push(`${errored.length} did not complete: ${errored[0].error}`);
    }
    verdicts.push(v);
  }
  return verdicts;
}

/** Runs that lost more than this share of the machine's CPU time to the hypervisor are named in the report. */
const STEAL_NOTED_PCT = 5;

/**
 * How much CPU time the hypervisor took from this machine while the runs
 * worked (steal, /proc/stat): on a shared host a slow cell may be its
 * neighbours' doing rather than the target's.
 */
function stealSection(ms: Measurement[]): string[] {
  const runs = ms.filter((m) => m.stealPct !== undefined);
  if (runs.length === 0) return [];
  const worst = runs.reduce((a, m) => (m.stealPct! > a.stealPct! ? m : a));
  const pct = (v: number) => `${v.toFixed(1)} %`;
  const out = ['## CPU time stolen by the hypervisor', ''];
  out.push(`Steal (/proc/stat: time a virtual CPU of this machine was ready to run and the host ran something else) ` +
    `over each run's workload: median ${pct(median(runs.map((m) => m.stealPct!))!)}, at most ` +
    `${pct(worst.stealPct!)} (${worst.targetId} ${worst.jobId} rep ${worst.rep}).`);
  const noted = runs.filter((m) => m.stealPct! > STEAL_NOTED_PCT);
  out.push(noted.length === 0
    ? `No run lost more than ${STEAL_NOTED_PCT} %.`
    : `Runs that lost more than ${STEAL_NOTED_PCT} % (their numbers partly measure the host's other guests): ` +
      noted.map((m) => `${m.targetId} ${m.jobId} rep ${m.rep} (${pct(m.stealPct!)})`).join(', ') + '.');
  out.push('');
  return out;
}

/**
 * The unaligned direct-write rule in each job, per o2fuse target: what its
 * gate counted while the workload ran (`o2fuse stats` before and after each
 * run), medians over runs. Empty when no run has the counters.
 */
function gateSection(info: RunInfo): string[] {
  const o2 = info.targets.filter((t) => t.isO2fuse);
  const ms = info.measurements;
  if (!ms.some((m) => m.gate)) return [];
  const out = ['## The unaligned direct-write rule in each job (o2fuse, median over runs)', ''];
  out.push('What the rule\'s gate counted while the workload ran (`o2fuse stats` before and after each run): writes ' +
    'counted in / of those, how many waited for an overlapping one in flight (their waits summed). A direct write ' +
    'that is not block-aligned counts in, and so does a buffered one that is not block-aligned when it takes the ' +
    'allocating path (a hole, or past the end of the file); aligned I/O never reaches the gate.', '');
  out.push(perJobTable(info.jobs, o2, (j, t) => {
    const g = gateOf(j.id, t.id, ms);
    if (!g) return undefined;
    return g.entered === 0 ? '0' : `${g.entered.toLocaleString('en-US')} / ${g.waits.toLocaleString('en-US')} (${g.waitMs.toFixed(1)} ms)`;
  }), '');
  return out;
}

/** A row per job, a column per target; a cell with nothing to show is a dash ("n/a" for a target that never ran). */
function perJobTable(jobs: readonly Job[], targets: readonly Target[], cell: (j: Job, t: Target) => string | undefined): string {
  return table(
    ['job', ...targets.map((t) => t.label)],
    jobs.map((j) => [j.id, ...targets.map((t) => cell(j, t) ?? (t.unavailable ? 'n/a' : '–'))]),
  );
}

export function buildReport(info: RunInfo): { markdown: string; svg: string } {
  const rows = allRows(info.jobs);
  const ms = info.measurements;
  const o2 = info.targets.filter((t) => t.isO2fuse);
  const baselines = info.targets.filter((t) => !t.isO2fuse);
  const showRange = info.reps > 1;
  const md: string[] = [];

  md.push(`# ${info.title}`, '');
  md.push(`${info.mode === 'quick' ? 'Quick run' : 'Full run'}: ${info.reps} repetition${info.reps > 1 ? 's' : ''} per job and target, interleaved across targets (the order rotating by repetition and job); medians${showRange ? ' (min–max in brackets)' : ''}. Throughput: higher is better everywhere; latency and CPU: lower is better.${info.interrupted ? ' **Interrupted: partial results.**' : ''}`, '');
  md.push(`Started ${info.startedAt.toISOString()}, took ${((info.finishedAt.getTime() - info.startedAt.getTime()) / 1000).toFixed(0)} s. Command: \`${info.commandLine}\``, '');

  md.push('## Medians', '');
  md.push(table(
    ['job', 'unit', ...info.targets.map((t) => t.label)],
    rows.map((row) => [row.title, row.unit, ...info.targets.map((t) => fmtCell(cellOf(row, t, ms), row.unit, showRange))]),
  ), '');
  md.push('⚠: some runs of that cell failed (see Failures and notes). n/a: target unavailable. **FAILED**: verification found a mismatch (never shown as a number).', '');

  md.push('## o2fuse / baseline', '');
  if (baselines.length === 0 || o2.length === 0) md.push('No o2fuse target or no baseline in this run.', '');
  else for (const t of o2) {
    if (o2.length > 1) md.push(`### ${t.label}`, '');
    md.push(table(
      ['job', ...baselines.map((b) => `/ ${b.label}`)],
      rows.map((row) => {
        const a = cellOf(row, t, ms);
        return [row.title, ...baselines.map((b) => { const c = cellOf(row, b, ms); return fmtRatio(ratio(a, c), a, c); })];
      }),
    ), '');
  }
  md.push('![o2fuse / baseline ratios](ratios.svg)', '');

  md.push('## Peak RSS of the serving daemon (VmHWM, MiB, median)', '');
  const daemons = info.targets.filter((t) => t.id !== 'host');
  md.push(perJobTable(info.jobs, daemons, (j, t) => {
    const kib = rssOf(j.id, t.id, ms);
    return kib === undefined ? undefined : (kib / 1024).toFixed(0);
  }), '');

  const latencyRows = allLatencyRows(info.jobs);
  if (latencyRows.length > 0) {
    md.push('## Completion latency (us, p50 / p99, median over runs)', '');
    md.push('fio\'s completion latency (clat) of each I/O: from its submission to its completion, what the filesystem ' +
      'and everything under it took (for the psync jobs, the whole system call). Each figure is the median over the ' +
      'runs of that run\'s percentile.', '');
    md.push(table(
      ['job', ...info.targets.map((t) => t.label)],
      latencyRows.map((l) => [l.title, ...info.targets.map((t) => {
        const p = latencyOf(l.id, l.jobId, t.id, ms);
        return p ? `${fmtUs(p.p50)} / ${fmtUs(p.p99)}` : t.unavailable ? 'n/a' : '–';
      })]),
    ), '');
  }

  md.push('## Daemon CPU per operation (us, median over runs)', '');
  md.push('User and system CPU time of the serving process (all its threads, /proc/PID/stat) while the workload ran, ' +
    'divided by the I/Os fio completed (metadata: by the files, each created, stat\'ed, listed and unlinked). The ' +
    'kernel\'s share of each request is the client\'s and is not in it; nor is write-back a daemon does after the job, at ' +
    'unmount. It counts what a daemon spends to go fast as well: o2fuse\'s kernel transport spins on /dev/fuse for up ' +
    'to 50 us after each answer; and what a fresh daemon spends getting going: every run mounts a new one, and ' +
    'o2fuse\'s V8 compiles its code during the first second or so of each job, which weighs most on the jobs with ' +
    'the fewest operations (seqwrite, seqread: 1 MiB each; bench/README.md). The host target has no daemon.', '');
  md.push(perJobTable(info.jobs, daemons, (j, t) => {
    const us = cpuPerOpUs(j.id, t.id, ms);
    return us === undefined ? undefined : fmtUs(us);
  }), '');

  md.push(...gateSection(info));

  md.push('## Targets', '');
  for (const v of evaluateTargets(info, rows)) {
    const mark = v.met === true ? '**met**' : v.met === false ? '**NOT met**' : '**not evaluated**';
    md.push(`- ${v.text}: ${mark}${v.details.length ? ` — ${v.details.join('; ')}` : ''}`);
  }
  md.push('');
  if (info.reps > 1) {
    md.push('A miss "within the spread": o2fuse\'s best run reached the target against the baseline\'s worst, so the ' +
      'medians of another set of repetitions could meet it. "In every run": even that comparison falls short.', '');
  }

  md.push(...(info.wakeupSection ?? []));

  md.push(...stealSection(ms));

  md.push('## Setup', '');
  md.push(...info.sizes.map((s) => `- ${s}`));
  md.push('', 'Targets:', '');
  for (const t of info.targets) md.push(`- **${t.label}** (\`${t.id}\`): ${t.describe}${t.unavailable ? ` — **unavailable**: ${t.unavailable}` : ''}`);
  md.push('', 'Environment:', '');
  md.push(...info.environment.map((e) => `- ${e}`), '');

  const failures = ms.filter((m) => m.error || m.verifyFailed);
  md.push('## Failures and notes', '');
  if (failures.length === 0 && info.notes.length === 0) md.push('None.');
  for (const m of failures) {
    md.push(`- ${m.targetId} ${m.jobId} rep ${m.rep}: ${m.verifyFailed ? 'VERIFY FAILED' : ''}${m.error ? ` ${m.error.replace(/\s+/g, ' ').slice(0, 600)}` : ''}${m.raw ? ` (raw: ${m.raw})` : ''}`);
  }
  for (const n of info.notes) md.push(`- ${n}`);
  md.push('');

  const panels: ChartPanel[] = o2.map((t) => ({
    title: `${t.label} / baseline`,
    groups: rows.map((row) => {
      const a = cellOf(row, t, ms);
      return {
        label: row.title,
        bars: baselines.map((b) => {
          const c = cellOf(row, b, ms);
          const r = ratio(a, c);
          return { series: b.label, ratio: r, text: a.status === 'FAILED' ? 'FAILED' : r === undefined ? 'n/a' : undefined };
        }),
      };
    }),
  }));
  const svg = ratioChartSvg(panels, `${info.title} — ${info.mode}, ${info.reps} rep(s)`);
  return { markdown: `${md.join('\n')}\n`, svg };
}
