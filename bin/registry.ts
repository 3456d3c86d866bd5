/**
 * Which o2fuse daemons run, and where: one record and one control socket per
 * mount point, under /run/o2fuse (root) or a per-user runtime directory.
 *
 * The record is created exclusively before the daemon mounts anything: that
 * is what keeps two daemons off one mount point (a second `mount`, or a
 * remount that found no daemon, never starts another). A record whose pid is
 * gone is stale and is replaced.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readStartTicks, statField } from '../io/procStat';

export interface DaemonRecord {
  pid: number;
  /** The device exactly as given (the mount's source). */
  device: string;
  mountpoint: string;
  log?: string;
  socket: string;
  startedAtMs: number;
  /**
   * The daemon's start time in clock ticks since boot (/proc/PID/stat field
   * 22). With the pid it names one process: a pid is reused once its daemon
   * is gone (killed, crashed), and a record must not then describe whatever
   * process got the number. Absent in records written before it existed.
   */
  pidStart?: number;
}

export function runDirectory(): string {
  if (process.env.O2FUSE_RUN_DIR) return process.env.O2FUSE_RUN_DIR;
  if (process.getuid?.() === 0) return '/run/o2fuse';
  const base = process.env.XDG_RUNTIME_DIR || `/tmp/o2fuse-${process.getuid?.() ?? 'user'}`;
  return path.join(base, 'o2fuse');
}

/** Short and fixed-length: socket paths must stay under 108 bytes whatever the mount point. */
function mountKey(mountpoint: string): string {
  return createHash('sha256').update(mountpoint).digest('hex').slice(0, 20);
}

export function recordPath(mountpoint: string): string {
  return path.join(runDirectory(), `mnt-${mountKey(mountpoint)}.json`);
}

export function socketPath(mountpoint: string): string {
  return path.join(runDirectory(), `mnt-${mountKey(mountpoint)}.sock`);
}

/** The state letter of /proc/PID[/task/TID]/stat (R, S, D, Z, X, ...). */
function procState(statPath: string): string | undefined {
  return statField(fs.readFileSync(statPath, 'utf8'), 3);
}

/**
 * A zombie counts as gone: a detached daemon's exit is reaped by init, which
 * may take its time. But the thread-group leader turns zombie before its other
 * threads have finished exiting, and the last of them is what closes the
 * process's files (a FUSE daemon's /dev/fuse: until then the kernel still
 * queues requests to it). So the process is alive while any thread is.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const tids = fs.readdirSync(`/proc/${pid}/task`);
    return tids.some((tid) => {
      try {
        const state = procState(`/proc/${pid}/task/${tid}/stat`);
        return state !== 'Z' && state !== 'X';
      } catch {
        return false; // the thread is gone
      }
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
  }
  try {
    return procState(`/proc/${pid}/stat`) !== 'Z';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/**
 * Whether the daemon a record describes still runs: its pid is alive and is
 * still that process. A record without a start time (written before records
 * had one) passes while the pid runs o2fuse: a background daemon's title
 * starts with "o2fuse", a foreground one runs dist/bin/main.js.
 */
export function recordAlive(rec: DaemonRecord): boolean {
  if (!pidAlive(rec.pid)) return false;
  if (rec.pidStart !== undefined) return readStartTicks(rec.pid) === rec.pidStart;
  try {
    return /(^|\0)o2fuse\b|dist\/bin\/main\.js/.test(fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'latin1'));
  } catch {
    return false;
  }
}

export function readRecord(mountpoint: string): DaemonRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(recordPath(mountpoint), 'utf8')) as DaemonRecord;
  } catch {
    return undefined;
  }
}

/** The record of a live daemon serving `mountpoint`, if there is one. */
export function liveRecord(mountpoint: string): DaemonRecord | undefined {
  const rec = readRecord(mountpoint);
  return rec && recordAlive(rec) ? rec : undefined;
}

export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(message: string, readonly holder?: DaemonRecord) {
    super(message);
  }
}

/** Claims `mountpoint` for this process; throws RegistryError naming the live holder. */
export function claimMountpoint(rec: Omit<DaemonRecord, 'socket' | 'startedAtMs'>): DaemonRecord {
  fs.mkdirSync(runDirectory(), { recursive: true, mode: 0o755 });
  const full: DaemonRecord = {
    ...rec, socket: socketPath(rec.mountpoint), startedAtMs: Date.now(),
    pidStart: rec.pid === process.pid ? readStartTicks(process.pid) ?? undefined : undefined,
  };
  const file = recordPath(rec.mountpoint);
  // Two tries: the second after removing a stale record left by a daemon that died.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(full)}\n`, { flag: 'wx', mode: 0o644 });
      return full;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readRecord(rec.mountpoint);
      if (holder && holder.pid !== process.pid && recordAlive(holder)) {
        throw new RegistryError(`${rec.mountpoint} is already served by o2fuse (pid ${holder.pid}, device ${holder.device})`, holder);
      }
      fs.rmSync(file, { force: true });
      fs.rmSync(full.socket, { force: true });
    }
  }
  throw new RegistryError(`cannot claim ${rec.mountpoint} in ${runDirectory()}: another o2fuse is starting there`);
}

export function updateRecord(rec: DaemonRecord): void {
  const file = recordPath(rec.mountpoint);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(rec)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** Removes the record, but only our own: a successor may already have claimed the mount point. */
export function releaseMountpoint(rec: DaemonRecord): void {
  const current = readRecord(rec.mountpoint);
  if (current && current.pid !== rec.pid) return;
  fs.rmSync(recordPath(rec.mountpoint), { force: true });
  fs.rmSync(rec.socket, { force: true });
}

/**
 * Every record in the run directory whose daemon is alive. Records of daemons
 * that are gone (killed, crashed: nothing removed their record) are removed
 * on the way, with their sockets, when this process may.
 */
export function liveRecords(): DaemonRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(runDirectory());
  } catch {
    return [];
  }
  const out: DaemonRecord[] = [];
  for (const name of names) {
    if (!name.startsWith('mnt-') || !name.endsWith('.json')) continue;
    try {
      const file = path.join(runDirectory(), name);
      const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as DaemonRecord;
      if (recordAlive(rec)) out.push(rec);
      else removeStale(file, rec);
    } catch {
      // removed while we read, or half-written: not a live daemon's
    }
  }
  return out;
}

/** Removes a dead daemon's record and socket, unless a new daemon claimed the mount point meanwhile. */
function removeStale(file: string, rec: DaemonRecord): void {
  try {
    const again = JSON.parse(fs.readFileSync(file, 'utf8')) as DaemonRecord;
    if (again.pid !== rec.pid || again.startedAtMs !== rec.startedAtMs) return;
    fs.rmSync(file, { force: true });
    fs.rmSync(rec.socket, { force: true });
  } catch {
    // gone already, or not ours to remove (EACCES): listing it as dead is enough
  }
}
