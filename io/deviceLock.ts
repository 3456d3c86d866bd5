/**
 * One o2fuse daemon per device on this machine.
 *
 * Two daemons writing one volume from one node would share a slot, a
 * journal and a local allocator: certain corruption. Other nodes are kept
 * apart by the slot map and the cluster locks (the engine's business); this
 * lock covers the same machine. It is a file named for the device's identity,
 * so two paths to one device (a symlink, /dev/disk/by-id, a hard link to an
 * image) meet at the same lock:
 *   image file:   LOCKDIR/<st_dev>-<st_ino>.lock
 *   block device: LOCKDIR/rdev-<major>:<minor>.lock
 * LOCKDIR is /run/o2fuse (O2FUSE_LOCK_DIR or the lockDir option override it).
 * The file holds "PID STARTTICKS", the device path and a nonce. A lock whose process is
 * gone (or whose pid now names a different process: the start time differs)
 * is stale and taken over. Not covered: the same storage reached two ways
 * (a loop device over an image, and the image itself).
 *
 * The lock file is created complete and atomically (written aside, then
 * link()ed into place). A stale one is removed only by the holder of the
 * takeover file (LOCK.takeover, also made with link()), after it has read the
 * lock again: while a lock file exists nobody can link another in its place,
 * so what the holder read is what it removes, and two daemons starting
 * together cannot both take it. (Moving the lock aside with rename() and
 * putting back a fresh one found there was not enough: a third taker could
 * link its own into the gap, and two won.)
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { toDeviceError } from './baseDevice';
import { DeviceError } from './device';
import { splitDevNumber } from './fileDevice';
import { startTicksOf } from './procStat';

const debug = createDebug('o2fuse:io');

export const LOCK_DIR_DEFAULT = '/run/o2fuse';
/** Rounds of "the lock is stale, move it aside, try again" before giving up. */
export const LOCK_TAKEOVER_ATTEMPTS_MAX = 8;
/** Rounds spent waiting while another taker holds the takeover file, and the pause between them. */
const TAKEOVER_WAIT_ROUNDS_MAX = 200;
const TAKEOVER_WAIT_MS = 5;

export interface DeviceLockOptions {
  /** Directory for lock files (default O2FUSE_LOCK_DIR or /run/o2fuse). */
  lockDir?: string;
}

/** Refusal because another live o2fuse holds the device. */
export class DeviceLockedError extends DeviceError {
  constructor(
    readonly devicePath: string,
    readonly holderPid: number,
    readonly lockPath: string,
  ) {
    super('EBUSY', `${devicePath} is already mounted by o2fuse pid ${holderPid} (lock ${lockPath})`);
    this.name = 'DeviceLockedError';
  }
}

interface Owner {
  pid: number;
  /** Process start time in clock ticks since boot (/proc/PID/stat field 22); null if unknown. */
  startTicks: number | null;
  raw: string;
}

export class DeviceLock {
  private released = false;

  constructor(
    readonly devicePath: string,
    readonly lockPath: string,
    private readonly content: string,
  ) {}

  /** Removes the lock file if it is still ours (idempotent). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const now = await fs.promises.readFile(this.lockPath, 'utf8').catch(() => null);
    if (now !== this.content) {
      debug('lock %s is no longer ours; left in place', this.lockPath);
      return;
    }
    await fs.promises.unlink(this.lockPath).catch(() => undefined);
  }

  /** For process 'exit' handlers, where nothing async runs. */
  releaseSync(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (fs.readFileSync(this.lockPath, 'utf8') === this.content) fs.unlinkSync(this.lockPath);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

/** The lock file name for a device: by st_dev/st_ino for a file, by rdev for a block device. */
export async function deviceLockName(devicePath: string): Promise<string> {
  let st: fs.BigIntStats;
  try {
    st = await fs.promises.stat(devicePath, { bigint: true });
  } catch (err) {
    throw toDeviceError(err, `stat ${devicePath}`);
  }
  if (st.isBlockDevice()) {
    const { major, minor } = splitDevNumber(st.rdev);
    return `rdev-${major}:${minor}.lock`;
  }
  return `${st.dev}-${st.ino}.lock`;
}

export function defaultLockDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.O2FUSE_LOCK_DIR || LOCK_DIR_DEFAULT;
}

/** Takes the device for this process, or fails with DeviceLockedError naming the holder. */
export async function lockDevice(devicePath: string, options: DeviceLockOptions = {}): Promise<DeviceLock> {
  const lockDir = options.lockDir ?? defaultLockDir();
  const lockPath = path.join(lockDir, await deviceLockName(devicePath));
  try {
    await fs.promises.mkdir(lockDir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw toDeviceError(err, `cannot create lock directory ${lockDir} (set O2FUSE_LOCK_DIR to use another)`);
  }
  const me = await processStartTicks(process.pid);
  // The nonce tells two locks of one process apart (release() removes only its own).
  const nonce = crypto.randomBytes(8).toString('hex');
  const content = `${process.pid} ${me ?? '-'}\n${devicePath}\n${nonce}\n`;
  const tmpPath = path.join(lockDir, `.${path.basename(lockPath)}.${process.pid}.${nonce}`);
  try {
    await fs.promises.writeFile(tmpPath, content, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    throw toDeviceError(err, `cannot write lock file in ${lockDir} (set O2FUSE_LOCK_DIR to use another)`);
  }
  try {
    let waits = 0;
    for (let attempt = 0; attempt < LOCK_TAKEOVER_ATTEMPTS_MAX; attempt++) {
      try {
        await fs.promises.link(tmpPath, lockPath);
        debug('locked %s with %s', devicePath, lockPath);
        return new DeviceLock(devicePath, lockPath, content);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toDeviceError(err, `lock ${lockPath}`);
      }
      const owner = await readOwner(lockPath);
      if (owner === null) continue; // vanished meanwhile: try again
      if (await isAlive(owner)) throw new DeviceLockedError(devicePath, owner.pid, lockPath);
      // Stale: only the holder of the takeover file removes it, after reading it again.
      if (!(await takeOver(lockPath, tmpPath, owner))) {
        if (++waits > TAKEOVER_WAIT_ROUNDS_MAX) break;
        attempt--; // waiting for another taker is not a failed attempt
        await new Promise((resolve) => setTimeout(resolve, TAKEOVER_WAIT_MS));
      }
    }
    throw new DeviceError('EBUSY', `${devicePath}: lock ${lockPath} kept changing hands (LOCK_TAKEOVER_ATTEMPTS_MAX)`);
  } finally {
    await fs.promises.unlink(tmpPath).catch(() => undefined);
  }
}

/**
 * Removes the stale lock at `lockPath` (owned by `stale`) if it is still that
 * lock, holding `lockPath.takeover` meanwhile. False when another taker holds
 * the takeover file (a dead holder's file is removed for the next round).
 */
async function takeOver(lockPath: string, tmpPath: string, stale: Owner): Promise<boolean> {
  const takeoverPath = `${lockPath}.takeover`;
  try {
    await fs.promises.link(tmpPath, takeoverPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toDeviceError(err, `take over stale lock ${lockPath}`);
    const holder = await readOwner(takeoverPath);
    if (holder !== null && !(await isAlive(holder))) await fs.promises.unlink(takeoverPath).catch(() => undefined);
    return false;
  }
  try {
    const again = await readOwner(lockPath);
    if (again !== null && again.raw === stale.raw) {
      await fs.promises.unlink(lockPath).catch(() => undefined);
      debug('took over stale lock %s of dead pid %d', lockPath, stale.pid);
    }
  } finally {
    await fs.promises.unlink(takeoverPath).catch(() => undefined);
  }
  return true;
}

async function readOwner(file: string): Promise<Owner | null> {
  let raw: string;
  try {
    raw = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw toDeviceError(err, `read lock ${file}`);
  }
  const [pidText, ticksText] = (raw.split('\n')[0] ?? '').trim().split(/\s+/);
  const pid = Number(pidText);
  const ticks = Number(ticksText);
  return {
    // A garbled file names no process: pid 0 is never alive below, so it counts as stale.
    pid: Number.isSafeInteger(pid) && pid > 0 ? pid : 0,
    startTicks: Number.isSafeInteger(ticks) ? ticks : null,
    raw,
  };
}

async function isAlive(owner: Owner): Promise<boolean> {
  if (owner.pid <= 0) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: alive, just not ours to signal.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (owner.startTicks === null) return true;
  const now = await processStartTicks(owner.pid);
  // A different start time: the pid was reused by an unrelated process.
  return now === null || now === owner.startTicks;
}

/** Field 22 of /proc/PID/stat, or null where /proc is not readable. */
export async function processStartTicks(pid: number): Promise<number | null> {
  try {
    return startTicksOf(await fs.promises.readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}
