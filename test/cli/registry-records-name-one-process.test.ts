/**
 * A daemon record names one process, not just a pid: once a daemon is gone
 * without removing its record (killed, crashed), its pid can be reused by any
 * process, and `o2fuse status`, `umount` and the next `mount` on that mount
 * point must not take that process for the daemon. Records carry the
 * process's start time; records of gone daemons are removed when listed.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  claimMountpoint, liveRecord, liveRecords, recordAlive, recordPath, socketPath,
  type DaemonRecord,
} from '../../bin/registry';
import { readStartTicks } from '../../io/procStat';

function useRunDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'o2fuse-run-'));
  const before = process.env.O2FUSE_RUN_DIR;
  process.env.O2FUSE_RUN_DIR = dir;
  t.teardown(() => {
    if (before === undefined) delete process.env.O2FUSE_RUN_DIR;
    else process.env.O2FUSE_RUN_DIR = before;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function writeRecord(rec: DaemonRecord): void {
  fs.writeFileSync(recordPath(rec.mountpoint), `${JSON.stringify(rec)}\n`);
  fs.writeFileSync(rec.socket, '');
}

function recordFor(mountpoint: string, pid: number, pidStart?: number): DaemonRecord {
  return { pid, device: '/dev/null', mountpoint, socket: socketPath(mountpoint), startedAtMs: Date.now(), pidStart };
}

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync('true');
  return r.pid!;
}

t.test('the start time tells this process from one that reused its pid', async (t) => {
  useRunDir(t);
  const start = readStartTicks(process.pid);
  t.type(start, 'number', 'this process has a start time');
  t.ok(recordAlive(recordFor('/m', process.pid, start!)), 'same pid, same start: alive');
  t.notOk(recordAlive(recordFor('/m', process.pid, start! + 1)), 'same pid, other start: the daemon is gone');
  const daemonLike = spawn('bash', ['-c', 'exec -a o2fuse sleep 600'], { stdio: 'ignore' });
  t.teardown(() => void daemonLike.kill('SIGKILL'));
  // Until bash has exec'd the renamed sleep.
  for (let i = 0; i < 250 && !fs.readFileSync(`/proc/${daemonLike.pid}/cmdline`, 'latin1').startsWith('o2fuse'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.ok(recordAlive(recordFor('/mnt/old', daemonLike.pid!)), 'a record from before start times: alive while the pid runs o2fuse');
  t.notOk(recordAlive(recordFor('/mnt/old', bystander(t).pid)), 'and gone when the pid runs something else');
  t.notOk(recordAlive(recordFor('/m', deadPid(), start!)), 'a pid nobody has');
  t.equal(readStartTicks(deadPid()), null, 'no start time for a gone pid');
});

t.test('listing removes the records of gone daemons and keeps the live ones', async (t) => {
  useRunDir(t);
  const start = readStartTicks(process.pid)!;
  const live = recordFor('/mnt/live', process.pid, start);
  const other = bystander(t);
  const reused = recordFor('/mnt/reused', other.pid, readStartTicks(other.pid)! - 1);
  const dead = recordFor('/mnt/dead', deadPid(), start);
  for (const rec of [live, reused, dead]) writeRecord(rec);

  t.same(liveRecords().map((r) => r.mountpoint), ['/mnt/live'], 'only the live daemon is listed');
  t.ok(fs.existsSync(recordPath('/mnt/live')) && fs.existsSync(live.socket), 'its record and socket stay');
  for (const rec of [reused, dead]) {
    t.notOk(fs.existsSync(recordPath(rec.mountpoint)), `${rec.mountpoint}: record removed`);
    t.notOk(fs.existsSync(rec.socket), `${rec.mountpoint}: socket removed`);
  }
  t.equal(liveRecord('/mnt/reused'), undefined, 'no live record for the reused pid');
});

/** A process that stays alive until the test ends (a pid some other process holds). */
function bystander(t: { teardown(fn: () => void): void }): ChildProcess & { pid: number } {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  return child as ChildProcess & { pid: number };
}

t.test('a mount point whose record names a reused pid can be claimed again', async (t) => {
  useRunDir(t);
  const other = bystander(t);
  const otherStart = readStartTicks(other.pid)!;
  // The old daemon had the pid the bystander has now, but it was another process (another start time).
  writeRecord(recordFor('/mnt/x', other.pid, otherStart - 1));
  const claimed = claimMountpoint({ pid: other.pid + 100000, device: '/dev/zero', mountpoint: '/mnt/x' });
  t.equal(claimed.pid, other.pid + 100000, 'the new claim replaced the stale record');
  t.equal(claimed.pidStart, undefined, 'a claim made for another process carries no start time');

  // The bystander as a live daemon with its own start time: a second claim is refused, naming it.
  writeRecord(recordFor('/mnt/y', other.pid, otherStart));
  t.throws(() => claimMountpoint({ pid: process.pid, device: '/dev/zero', mountpoint: '/mnt/y' }),
    new RegExp(`already served by o2fuse \\(pid ${other.pid}`), 'a live holder still refuses a second claim');

  const mine = claimMountpoint({ pid: process.pid, device: '/dev/null', mountpoint: '/mnt/z' });
  t.equal(mine.pidStart, readStartTicks(process.pid), "a daemon's own claim records its start time");
});
