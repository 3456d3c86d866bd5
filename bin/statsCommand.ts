/**
 * `o2fuse stats [--json] MOUNTPOINT`: a running daemon's counters since its
 * mount, asked over its control socket. What a storage engineer watches while
 * a workload runs: the unaligned direct-write rule at work (writes counted
 * in, how many waited and for how long), how many writes to one inode were in
 * flight at once, the caches, the journal, the device, and the FUSE requests
 * by kind. --json prints the daemon's answer as it is (bin/control.ts,
 * DaemonStats).
 */
import type { EngineStats } from '../fs/api';
import type { SessionStats } from '../fs/fuse/lowlevel/stats';
import { sendControl, type DaemonStats } from './control';
import { fail, servingDaemon } from './mountCommand';

export const STATS_USAGE = 'usage: o2fuse stats [--json] MOUNTPOINT';

export async function statsCommand(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json');
  const dirs = argv.filter((a) => a !== '--json');
  if (dirs.length !== 1 || dirs[0].startsWith('-')) return fail(STATS_USAGE);
  const daemon = servingDaemon(dirs[0]);
  if (!('rec' in daemon)) return fail(`no statistics for ${daemon.where}: ${daemon.why}`);
  const { mountpoint, rec } = daemon;
  let stats: DaemonStats;
  try {
    const reply = await sendControl(rec.socket, { op: 'stats' });
    if (!reply.ok) return fail(`no statistics for ${mountpoint}: ${reply.error}`);
    if (!reply.stats) return fail(`no statistics for ${mountpoint}: the daemon (pid ${rec.pid}) does not keep them`);
    stats = reply.stats;
  } catch (err) {
    return fail(`no statistics for ${mountpoint}: the daemon (pid ${rec.pid}) did not answer: ${(err as Error).message}`);
  }
  console.log(json ? JSON.stringify(stats, null, 2) : formatStats(stats).join('\n'));
  return 0;
}

const count = (n: number): string => n.toLocaleString('en-US');
/** "1 commit", "2 commits". */
const counted = (n: number, what: string): string => `${count(n)} ${what}${n === 1 ? '' : 's'}`;

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

const ms = (v: number): string => `${v.toFixed(2)} ms`;

/** The human form: one line per layer, the FUSE requests last. */
export function formatStats(s: DaemonStats): string[] {
  const lines = [`${s.device} on ${s.mountpoint}: pid ${s.pid}, ${s.transport} transport, up ${s.uptimeSec.toFixed(0)} s`];
  if (s.engine) lines.push(...engineLines(s.engine));
  if (s.fuse) lines.push(...fuseLines(s.fuse));
  else lines.push('fuse requests:  not counted over the libfuse transport');
  return lines;
}

function engineLines(e: EngineStats): string[] {
  const g = e.unalignedGate;
  const p = e.pageCache;
  const b = e.blockCache;
  const lines = [
    `unaligned dio:  ${count(g.entered)} writes counted in (rule: ${g.mode}), ${count(g.waits)} waited ` +
      `(${ms(g.totalWaitMs)} in all, longest ${ms(g.maxWaitMs)}); in flight ${g.inFlight} (at most ${g.maxInFlight}), waiting ${g.waiting}`,
    `page cache:     ${count(p.hits)} hits, ${count(p.misses)} misses, ${count(p.readIns)} read-ins, ${count(p.evictions)} evictions; ` +
      `${bytes(p.dirtyBytes)} dirty, ${bytes(p.cleanBytes)} clean`,
    `block cache:    ${count(b.hits)} hits, ${count(b.misses)} misses, ${count(b.evictions)} evictions`,
  ];
  const j = e.journal;
  lines.push(j
    ? `journal:        ${counted(j.commits, 'commit')} (${counted(j.logBlocksWritten, 'log block')}), ` +
      `${counted(j.checkpoints, 'checkpoint')} (${counted(j.homeBlocksWritten, 'block')} home), ${counted(j.revokes, 'revoke')}`
    : 'journal:        none open (read-only)');
  const d = e.device;
  if (d) {
    lines.push(`device:         ${count(d.reads)} reads (${bytes(d.bytesRead)}), ${count(d.writes)} writes (${bytes(d.bytesWritten)}), ` +
      `${count(d.flushes)} flushes, ${count(d.errors)} errors; in flight ${d.inFlight} (at most ${d.maxInFlight})`);
  }
  return lines;
}

function fuseLines(f: SessionStats): string[] {
  const byKind = Object.entries(f.byOpcode).sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${count(n)}`);
  const errors = Object.entries(f.errors).sort((a, b) => b[1] - a[1]).map(([e, n]) => `${e} ${count(n)}`);
  return [
    `fuse requests:  ${count(f.requests)} (in flight ${f.inFlight}, at most ${f.maxInFlight} at once): ${byKind.join(', ') || 'none'}`,
    `fuse writes:    ${count(f.writes)} (${bytes(f.writeBytes)}, largest ${bytes(f.largestWriteBytes)}); ` +
      `at most ${f.maxInFlightWritesPerInode} in flight to one inode`,
    `fuse reads:     ${count(f.reads)} (${bytes(f.readBytes)})`,
    `fuse errors:    ${errors.join(', ') || 'none'}; ${count(f.interrupts)} interrupts, ${count(f.staleReplies)} stale replies`,
    `fuse spin:      ${count(f.spin.spinHits)} hits, ${count(f.spin.spinMisses)} misses, ${count(f.spin.spinPauses)} pauses`,
  ];
}
