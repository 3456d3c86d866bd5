/**
 * Per-request latency of a FUSE mount, from the kernel's own tracepoints
 * (fuse:fuse_request_send and fuse:fuse_request_end, Linux 6.15 and later):
 * how long each kind of request spent in the daemon, as the kernel sees it,
 * and how long the client took between an answer and its next request.
 *
 *   node dist/bench/fuseTrace.js [--mount MNT] -- CMD [ARGS...]
 *
 * runs CMD with the tracepoints on and prints, per opcode, the count and the
 * median, 90th and 99th percentile, mean and maximum latency; then the
 * client's gaps (one request answered -> the next sent) by pair of opcodes,
 * which for a one-at-a-time workload is the wake-up and the client's own
 * work; then where the client woke after each answer (sched:sched_wakeup,
 * when the kernel has it): on the CPU that wrote the answer, or on another
 * one, which costs an inter-processor interrupt; then the most requests the
 * daemon had in flight. --mount keeps only that mount's requests (its
 * connection is the mount's device number).
 *
 * Why it exists: the benchmark's one-at-a-time jobs (buffered random writes,
 * create, unlink) are decided as much by the wake-ups around each request as
 * by the daemon, and only the kernel sees both sides.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { run } from './proc';

export const TRACEFS = '/sys/kernel/tracing';
/** Required: the request tracepoints. */
const EVENTS = ['fuse/fuse_request_send', 'fuse/fuse_request_end'] as const;
/** Used when the kernel has it: where each client wakes. */
const WAKEUP_EVENT = 'sched/sched_wakeup';

export interface RequestEvent {
  /** Seconds (the trace clock). */
  t: number;
  kind: 'send' | 'end';
  /** The task the line was logged in (send: the client's thread; end: the daemon's, answering) and its CPU. */
  pid: number;
  cpu: number;
  connection: number;
  unique: number;
  /** Opcode name on send ("FUSE_LOOKUP"); undefined on end. */
  opcode?: string;
  /** Error on end (0 or a negative errno). */
  error?: number;
}

export interface WakeupEvent {
  t: number;
  kind: 'wakeup';
  /** The task woken and the CPU it will run on. */
  pid: number;
  targetCpu: number;
}

export type TraceEvent = RequestEvent | WakeupEvent;

// "<comm>-<pid> [<cpu>] <flags> <seconds>: <event>: <fields>"; a comm may hold spaces and dashes.
const LINE = /^\s*.*-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+): (fuse_request_send|fuse_request_end|sched_wakeup): (.*)$/;
const SEND = /^connection (\d+) req (\d+) opcode \d+ \((\w+)\)/;
const END = /^connection (\d+) req (\d+) len \d+ error (-?\d+)/;
const WAKEUP = /\bpid=(\d+) prio=-?\d+ target_cpu=(\d+)/;

/** The fuse (and sched_wakeup) events of a tracefs `trace` text, in order; other lines are skipped. */
export function parseFuseTrace(text: string): TraceEvent[] {
  const out: TraceEvent[] = [];
  for (const line of text.split('\n')) {
    const l = LINE.exec(line);
    if (!l) continue;
    const [pid, cpu, t, event, fields] = [Number(l[1]), Number(l[2]), Number(l[3]), l[4], l[5]];
    if (event === 'sched_wakeup') {
      const m = WAKEUP.exec(fields);
      if (m) out.push({ t, kind: 'wakeup', pid: Number(m[1]), targetCpu: Number(m[2]) });
    } else if (event === 'fuse_request_send') {
      const m = SEND.exec(fields);
      if (m) out.push({ t, kind: 'send', pid, cpu, connection: Number(m[1]), unique: Number(m[2]), opcode: m[3] });
    } else {
      const m = END.exec(fields);
      if (m) out.push({ t, kind: 'end', pid, cpu, connection: Number(m[1]), unique: Number(m[2]), error: Number(m[3]) });
    }
  }
  return out;
}

export interface LatencyStats {
  n: number;
  errors: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
}

export interface TraceSummary {
  /** Per opcode: send -> end. Requests still in flight when the trace stopped are not counted. */
  latency: Map<string, LatencyStats>;
  /** "A->B": a request of opcode A answered, then the next request (B) sent on the same connection. */
  gaps: Map<string, { n: number; meanUs: number }>;
  /** Most requests of one connection sent and not yet answered at one time. */
  maxInFlight: number;
  /**
   * The client's wake-ups after an answer (nothing else in flight), split by
   * where it woke: on the CPU that wrote the answer, or on another one (an
   * inter-processor interrupt, and a halted CPU to wake). Latency: the answer
   * to the wake-up as the trace logs it. Empty without sched_wakeup events.
   */
  wakeups: { sameCpu: WakeStats; otherCpu: WakeStats };
}

export interface WakeStats {
  n: number;
  p50Us: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

/**
 * Per-opcode latency, client gaps and concurrency of `events`, only those of
 * `connection` when given. FORGET and BATCH_FORGET are never answered, so
 * they count in neither.
 */
export function summarize(events: readonly TraceEvent[], connection?: number): TraceSummary {
  /** Requests sent and not yet answered: when, what, and the client thread that sent it. */
  const sent = new Map<string, { t: number; opcode: string; pid: number }>();
  const lat = new Map<string, { us: number[]; errors: number }>();
  const gaps = new Map<string, { n: number; sumUs: number }>();
  const lastEnd = new Map<number, { t: number; opcode: string }>();
  const inFlight = new Map<number, number>();
  let maxInFlight = 0;
  /** Client thread -> the answer it has not yet woken up for (nothing else of its connection in flight). */
  const awaitingWake = new Map<number, { t: number; cpu: number }>();
  const wakeUs = { same: [] as number[], other: [] as number[] };
  for (const e of events) {
    if (e.kind === 'wakeup') {
      const a = awaitingWake.get(e.pid);
      if (!a) continue;
      awaitingWake.delete(e.pid);
      (e.targetCpu === a.cpu ? wakeUs.same : wakeUs.other).push((e.t - a.t) * 1e6);
      continue;
    }
    if (connection !== undefined && e.connection !== connection) continue;
    const key = `${e.connection}:${e.unique}`;
    if (e.kind === 'send') {
      const opcode = e.opcode!;
      if (opcode === 'FUSE_FORGET' || opcode === 'FUSE_BATCH_FORGET') continue;
      const prev = lastEnd.get(e.connection);
      if (prev) {
        const pair = `${prev.opcode}->${opcode}`;
        const g = gaps.get(pair) ?? { n: 0, sumUs: 0 };
        g.n++;
        g.sumUs += (e.t - prev.t) * 1e6;
        gaps.set(pair, g);
        lastEnd.delete(e.connection);
      }
      sent.set(key, { t: e.t, opcode, pid: e.pid });
      // Sending again without a wake-up seen: the client did not sleep (or the wake-up went untraced).
      awaitingWake.delete(e.pid);
      const n = (inFlight.get(e.connection) ?? 0) + 1;
      inFlight.set(e.connection, n);
      maxInFlight = Math.max(maxInFlight, n);
      continue;
    }
    const s = sent.get(key);
    if (!s) continue; // sent before the trace started
    sent.delete(key);
    inFlight.set(e.connection, (inFlight.get(e.connection) ?? 1) - 1);
    const l = lat.get(s.opcode) ?? { us: [], errors: 0 };
    l.us.push((e.t - s.t) * 1e6);
    if (e.error) l.errors++;
    lat.set(s.opcode, l);
    // A gap is measured only while nothing else is in flight: with several requests out, "the client's turn" is not defined.
    if ((inFlight.get(e.connection) ?? 0) === 0) {
      lastEnd.set(e.connection, { t: e.t, opcode: s.opcode });
      awaitingWake.set(s.pid, { t: e.t, cpu: e.cpu });
    } else {
      lastEnd.delete(e.connection);
    }
  }
  const latency = new Map<string, LatencyStats>();
  for (const [opcode, l] of lat) {
    const us = l.us.sort((a, b) => a - b);
    latency.set(opcode, {
      n: us.length, errors: l.errors, p50Us: percentile(us, 50), p90Us: percentile(us, 90), p99Us: percentile(us, 99),
      meanUs: us.reduce((a, b) => a + b, 0) / us.length, maxUs: us[us.length - 1],
    });
  }
  const gapMeans = new Map<string, { n: number; meanUs: number }>();
  for (const [k, g] of gaps) gapMeans.set(k, { n: g.n, meanUs: g.sumUs / g.n });
  const wake = (us: number[]): WakeStats => ({ n: us.length, p50Us: percentile(us.sort((a, b) => a - b), 50) });
  return { latency, gaps: gapMeans, maxInFlight, wakeups: { sameCpu: wake(wakeUs.same), otherCpu: wake(wakeUs.other) } };
}

/** The summary as text tables, busiest opcodes and gaps first. */
export function formatSummary(s: TraceSummary): string {
  const r = (x: number) => Math.round(x).toString();
  const lines = ['| request | n | errors | p50 us | p90 us | p99 us | mean us | max us |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const [op, l] of [...s.latency].sort((a, b) => b[1].n - a[1].n)) {
    lines.push(`| ${op} | ${l.n} | ${l.errors} | ${r(l.p50Us)} | ${r(l.p90Us)} | ${r(l.p99Us)} | ${r(l.meanUs)} | ${r(l.maxUs)} |`);
  }
  lines.push('', '| client gap (answer -> next request, nothing else in flight) | n | mean us |', '| --- | ---: | ---: |');
  for (const [k, g] of [...s.gaps].sort((a, b) => b[1].n - a[1].n).slice(0, 12)) lines.push(`| ${k} | ${g.n} | ${r(g.meanUs)} |`);
  const { sameCpu, otherCpu } = s.wakeups;
  if (sameCpu.n + otherCpu.n > 0) {
    lines.push('', `client wake-ups after an answer (nothing else in flight): ${sameCpu.n} on the answering CPU` +
      `${sameCpu.n ? ` (median ${r(sameCpu.p50Us)} us after the answer)` : ''}, ${otherCpu.n} on another CPU` +
      `${otherCpu.n ? ` (median ${r(otherCpu.p50Us)} us)` : ''}`);
  }
  lines.push('', `most requests in flight at once: ${s.maxInFlight}`);
  return lines.join('\n');
}

/** Why tracing cannot work here, or null when it can. */
export function tracingUnavailable(root = TRACEFS): string | null {
  if (process.getuid?.() !== 0) return 'needs root (tracefs)';
  if (root === TRACEFS) mountTracefs();
  for (const ev of EVENTS) {
    if (!fs.existsSync(`${root}/events/${ev}/enable`)) {
      return `${root}/events/${ev} is missing (tracefs not mounted, or a kernel before 6.15 without the fuse tracepoints)`;
    }
  }
  return null;
}

/**
 * Mounts tracefs at its usual place when nothing is mounted there, as
 * trace-cmd does: a machine whose init does not mount it (no systemd) has the
 * fuse tracepoints but no way to reach them. Says so on stderr; a failure
 * leaves tracingUnavailable to name what is missing.
 */
function mountTracefs(): void {
  if (!fs.existsSync(TRACEFS) || fs.existsSync(`${TRACEFS}/events`)) return;
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { stdio: 'ignore' });
    process.stderr.write(`fuseTrace: mounted tracefs at ${TRACEFS} (nothing was mounted there)\n`);
  } catch {
    // not mountable here (a container, a kernel without tracefs)
  }
}

/** The connection number of the FUSE mount at `dir`: the minor of its device number. */
export function connectionOf(dir: string): number {
  const dev = fs.statSync(dir, { bigint: true }).dev;
  return Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n));
}

/** Per-CPU trace buffer while tracing: ~100 bytes per event, so room for a few hundred thousand requests. */
const BUFFER_KB = 32768;

/**
 * Runs `cmd` with the fuse tracepoints (and sched_wakeup, where the kernel
 * has it) on; returns its exit status and the events recorded meanwhile. The
 * trace buffer is cleared first (it is the system's, shared with any other
 * tracing), grown for the run, and the buffer size, the tracing switch and
 * the events' previous settings are put back afterwards.
 */
export async function traceWhile(cmd: string, args: readonly string[], root = TRACEFS):
  Promise<{ code: number; stdout: string; stderr: string; events: TraceEvent[] }> {
  const why = tracingUnavailable(root);
  if (why) throw new Error(`cannot trace FUSE requests: ${why}`);
  const enable = (ev: string) => `${root}/events/${ev}/enable`;
  const used = fs.existsSync(enable(WAKEUP_EVENT)) ? [...EVENTS, WAKEUP_EVENT] : [...EVENTS];
  const wasOn = used.map((ev) => fs.readFileSync(enable(ev), 'utf8').trim());
  // "1410", or "7 (expanded: 1408)" while the buffer has never been allocated: the size it would have.
  const sizeText = fs.readFileSync(`${root}/buffer_size_kb`, 'utf8');
  const bufferKb = (/expanded: (\d+)/.exec(sizeText) ?? /^(\d+)/.exec(sizeText))?.[1];
  if (!(Number(bufferKb) >= BUFFER_KB)) fs.writeFileSync(`${root}/buffer_size_kb`, String(BUFFER_KB));
  fs.writeFileSync(`${root}/trace`, '');
  // The system-wide switch too: with it off (another tracing session stopped there) the buffer stays empty.
  const tracingWasOn = fs.readFileSync(`${root}/tracing_on`, 'utf8').trim();
  for (const ev of used) fs.writeFileSync(enable(ev), '1');
  fs.writeFileSync(`${root}/tracing_on`, '1');
  let r;
  try {
    r = await run(cmd, args);
  } finally {
    fs.writeFileSync(`${root}/tracing_on`, tracingWasOn === '0' ? '0' : '1');
    used.forEach((ev, i) => fs.writeFileSync(enable(ev), wasOn[i] === '1' ? '1' : '0'));
  }
  const events = parseFuseTrace(fs.readFileSync(`${root}/trace`, 'utf8'));
  // After reading: shrinking the buffer discards what it holds.
  if (bufferKb !== undefined) fs.writeFileSync(`${root}/buffer_size_kb`, bufferKb);
  return { ...r, events };
}

async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const opts = dash < 0 ? argv : argv.slice(0, dash);
  const cmd = dash < 0 ? [] : argv.slice(dash + 1);
  const mountAt = opts.indexOf('--mount');
  if (!cmd.length || (mountAt >= 0 && !opts[mountAt + 1])) {
    process.stderr.write('usage: fuseTrace.js [--mount MNT] -- CMD [ARGS...]\n');
    return 2;
  }
  const connection = mountAt >= 0 ? connectionOf(opts[mountAt + 1]) : undefined;
  const r = await traceWhile(cmd[0], cmd.slice(1));
  process.stderr.write(r.stderr);
  process.stdout.write(r.stdout);
  process.stdout.write(`\n${formatSummary(summarize(r.events, connection))}\n`);
  if (r.code !== 0) process.stderr.write(`${cmd[0]} exited ${r.code}\n`);
  return r.code;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
    process.stderr.write(`fuseTrace: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
