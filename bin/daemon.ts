/**
 * The o2fuse daemon: opens the device and the volume, mounts it through
 * fuse-native, serves until the kernel ends the session, then writes
 * everything back and releases the device.
 *
 * Life of a daemon:
 *   claim the mount point (registry record) -> claim the device (waiting for
 *   a predecessor that is still writing back after its umount) -> open the
 *   device and the volume -> control socket -> FUSE mount -> ready()
 *   ... serve ...
 *   session ends (umount, fusermount -u, or our own unmount on SIGINT/SIGTERM)
 *   -> mount point released at once (a harness may mount there again) ->
 *   engine.unmount() (write-back) -> device closed -> device released -> exit.
 *
 * runDaemon() never calls process.exit and takes the engine and device
 * openers as parameters, so tests can run it in-process with a fake engine.
 */
import { startMemoryTrace } from './memoryTrace';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { Server } from 'node:net';
import createDebug from 'debug';
import type { Engine } from '../fs/api';
import type { SessionStats } from '../fs/fuse/lowlevel/stats';
import { o2fuseMountAt } from '../fs/fuse/mountinfo';
/** What the daemon needs of a FUSE session, whichever transport made it. */
interface FuseSession {
  readonly ended: Promise<void>;
  alive(): boolean;
  unmount(lazyIfBusy: boolean): Promise<{ ok: boolean; lazy: boolean; message: string }>;
  /** Request counters, where the transport keeps them (the kernel transport does). */
  stats?(): SessionStats;
}
import { DEFAULT_CACHE_BYTES, DEFAULT_DX_HASH_CHARS, DEFAULT_UNALIGNED_DIO, type VolumeOptions } from '../fs/volume';
import { DEFAULT_COMMIT_INTERVAL_MS } from '../fs/journal/journal';
import type { Device } from '../io/device';
import { serveControl, type ControlReply, type ControlRequest } from './control';
import type { DeviceLock } from '../io/deviceLock';
import { claimDevice } from './deviceClaim';
import { parseMountOptions, type AtimePolicy, type MountOptions } from './options';
import { claimMountpoint, liveRecord, releaseMountpoint, type DaemonRecord } from './registry';

const log = createDebug('o2fuse:daemon');

export interface DaemonDeps {
  openDevice(path: string, options: { readOnly: boolean; inject?: string }): Promise<Device>;
  openVolume(device: Device, options: VolumeOptions): Promise<Engine>;
}

export interface DaemonConfig {
  /** The device as the user wrote it: the mount's source (fsname). */
  device: string;
  /** Absolute path of the device, for opening. */
  devicePath: string;
  /** Absolute, symlink-free mount point. */
  mountpoint: string;
  optionLists: string[];
  foreground: boolean;
  logPath?: string;
}

export interface Readiness {
  ready(info: { readOnly: boolean; warnings: string[] }): void;
  failed(message: string): void;
}

/** What a live mount can change: the engine's answer to remount. */
export interface LiveOptions {
  readOnly: boolean;
  atime: AtimePolicy;
  nodiratime: boolean;
}

/** An engine that can change ro/rw and atime live (Engine.remount, optional: used when present). */
type RemountableEngine = Engine & { remount?(options: LiveOptions): Promise<void> };

export class DaemonError extends Error {
  override name = 'DaemonError';
}

export function volumeOptions(o: MountOptions): VolumeOptions {
  const v: VolumeOptions = { readOnly: o.readOnly, atime: o.atime };
  if (o.cacheSizeBytes !== undefined) v.cacheSizeBytes = o.cacheSizeBytes;
  if (o.commitIntervalMs !== undefined) v.commitIntervalMs = o.commitIntervalMs;
  if (o.unalignedDio !== undefined) v.unalignedDio = o.unalignedDio;
  if (o.dxHashChars !== undefined) v.dxHashChars = o.dxHashChars;
  if (o.nodiratime) v.nodiratime = true;
  return v;
}

/** Runs `mount -i` (no helper: we are the helper) to change the kernel's flags of a live mount. */
function kernelRemount(mountpoint: string, flags: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('mount', ['-i', '-o', ['remount', ...flags].join(','), mountpoint], { timeout: 60_000 }, (err, _out, stderr) => {
      if (err) reject(new DaemonError(`the kernel refused to remount ${mountpoint} ${flags.join(',')}: ${(stderr || err.message).trim()}`));
      else resolve();
    });
  });
}

/** The atime flag the kernel shows for a policy: libfuse takes noatime only, so strictatime shows as relatime. */
function kernelVisibleAtime(a: AtimePolicy): AtimePolicy {
  return a === 'noatime' ? 'noatime' : 'relatime';
}

export async function runDaemon(config: DaemonConfig, deps: DaemonDeps, readiness: Readiness): Promise<number> {
  const options = parseMountOptions(config.optionLists);
  if (options.debug) createDebug.enable([process.env.DEBUG, 'o2fuse:*'].filter(Boolean).join(','));
  const warnings: string[] = [];
  const cleanups: Array<{ what: string; run: () => Promise<void> | void }> = [];
  let record: DaemonRecord | undefined;
  let deviceClaim: DeviceLock | undefined;
  let device: Device | undefined;
  let engine: RemountableEngine | undefined;
  let control: Server | undefined;
  let session: FuseSession | undefined;
  let readySent = false;
  let stopRequested = false;
  const startedMs = Date.now();

  const onSignal = (signal: NodeJS.Signals) => {
    if (!session) {
      stopRequested = true;
      log('%s before the mount was live: stopping', signal);
      return;
    }
    if (stopRequested) {
      console.error(`o2fuse: ${signal}: still waiting for ${config.mountpoint} to be released (files still open?)`);
      return;
    }
    stopRequested = true;
    const live = session;
    live.unmount(true).then((r) => {
      if (!r.ok) console.error(`o2fuse: cannot unmount ${config.mountpoint}: ${r.message}`);
      else if (r.lazy) console.error(`o2fuse: ${config.mountpoint} is busy: detached it; the daemon exits when the last open file is closed`);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onHangup = () => undefined;
  process.on('SIGHUP', onHangup);

  const liveState: LiveOptions = { readOnly: options.readOnly, atime: options.atime, nodiratime: options.nodiratime };

  async function remount(lists: string[]): Promise<ControlReply> {
    let req: MountOptions;
    try {
      req = parseMountOptions(lists);
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
    const fixed: string[] = [];
    if (req.allowOther && !options.allowOther) fixed.push('allow_other');
    if (req.defaultPermissions && !options.defaultPermissions) fixed.push('default_permissions');
    // Against the value in force, default included: restating it changes nothing, and a remount that changes
    // nothing succeeds.
    const changes = <T>(asked: T | undefined, live: T | undefined, byDefault: T) => asked !== undefined && asked !== (live ?? byDefault);
    if (changes(req.cacheSizeBytes, options.cacheSizeBytes, DEFAULT_CACHE_BYTES)) fixed.push('cache_size');
    if (changes(req.commitIntervalMs, options.commitIntervalMs, DEFAULT_COMMIT_INTERVAL_MS)) fixed.push('commit');
    if (changes(req.unalignedDio, options.unalignedDio, DEFAULT_UNALIGNED_DIO)) fixed.push('unaligned_dio');
    if (changes(req.dxHashChars, options.dxHashChars, DEFAULT_DX_HASH_CHARS)) fixed.push('dx_hash');
    if (req.inject !== undefined && req.inject !== options.inject) fixed.push('inject');
    if (req.writebackCache && !options.writebackCache) fixed.push('writeback_cache');
    if (req.reader !== undefined && req.reader !== options.reader) fixed.push('reader');
    if (req.spinUs !== undefined && req.spinUs !== options.spinUs) fixed.push('spin_us');
    if (fixed.length) return { ok: false, error: `${fixed.join(', ')} cannot change on a live mount: umount and mount again` };
    if (req.debug) createDebug.enable([process.env.DEBUG, 'o2fuse:*'].filter(Boolean).join(','));

    const want: LiveOptions = {
      readOnly: req.explicit.has('readOnly') ? req.readOnly : liveState.readOnly,
      atime: req.explicit.has('atime') && req.atime !== kernelVisibleAtime(liveState.atime) ? req.atime : liveState.atime,
      nodiratime: req.explicit.has('nodiratime') ? req.nodiratime : liveState.nodiratime,
    };
    const changed = (Object.keys(want) as Array<keyof LiveOptions>).filter((k) => want[k] !== liveState[k]);
    const kernelFlags = [want.readOnly ? 'ro' : 'rw', kernelVisibleAtime(want.atime)];
    if (req.dev !== undefined) kernelFlags.push(req.dev ? 'dev' : 'nodev');
    if (req.suid !== undefined) kernelFlags.push(req.suid ? 'suid' : 'nosuid');
    if (req.exec !== undefined) kernelFlags.push(req.exec ? 'exec' : 'noexec');
    if (changed.length === 0) {
      await kernelRemount(config.mountpoint, kernelFlags);
      return { ok: true, message: 'nothing to change in the engine' };
    }
    if (!engine?.remount) {
      const what = changed.map((k) => (k === 'readOnly' ? (want.readOnly ? 'ro' : 'rw') : k === 'atime' ? want.atime : want.nodiratime ? 'nodiratime' : 'diratime'));
      return { ok: false, error: `cannot switch a live mount to ${what.join(',')} (the engine cannot change this while mounted yet): umount and mount again with -o ${what.join(',')}` };
    }
    const goingReadOnly = want.readOnly && !liveState.readOnly;
    // Read-only: the kernel first (it refuses while files are open for writing), then the engine writes back.
    // Read-write: the engine first (it may refuse, e.g. for a ro-compat feature), then the kernel.
    if (goingReadOnly) await kernelRemount(config.mountpoint, kernelFlags);
    try {
      await engine.remount({ ...want });
    } catch (err) {
      // An engine that failed on its way to read-only (a device error while writing back) stays read-only: so
      // does the kernel then, and the flags and the engine agree.
      if (goingReadOnly && !engine.readOnly) {
        await kernelRemount(config.mountpoint, ['rw', kernelVisibleAtime(liveState.atime)]).catch(() => undefined);
      } else if (goingReadOnly) {
        liveState.readOnly = true;
        return { ok: false, error: `the engine failed going read-only and stays so: ${(err as Error).message}` };
      }
      return { ok: false, error: `the engine refused: ${(err as Error).message}` };
    }
    if (!goingReadOnly) await kernelRemount(config.mountpoint, kernelFlags);
    Object.assign(liveState, want);
    return { ok: true, message: `now ${changed.map((k) => `${k}=${String(want[k])}`).join(', ')}` };
  }

  async function handleControl(req: ControlRequest): Promise<ControlReply> {
    if (req.op === 'remount') return remount(req.options);
    if (req.op === 'status') {
      // nodeFlags: the V8 flags the daemon really runs with (its process title hides its command line).
      return { ok: true, status: { pid: process.pid, device: config.device, mountpoint: config.mountpoint, log: config.logPath,
        nodeFlags: process.execArgv, ...liveState } };
    }
    if (req.op === 'stats') {
      return { ok: true, stats: { pid: process.pid, device: config.device, mountpoint: config.mountpoint, transport: options.transport,
        uptimeSec: (Date.now() - startedMs) / 1000, engine: engine?.stats?.() ?? null, fuse: session?.stats?.() ?? null } };
    }
    return { ok: false, error: `unknown request ${(req as { op: string }).op}` };
  }

  /** Undoes what was set up, newest first; false if a step failed (each failure is printed). */
  async function undo(): Promise<boolean> {
    let clean = true;
    for (const step of cleanups.reverse()) {
      try {
        log('releasing: %s', step.what);
        await step.run();
      } catch (err) {
        clean = false;
        console.error(`o2fuse: while releasing ${config.device}: ${(err as Error).message}`);
      }
    }
    cleanups.length = 0;
    log('released everything%s', clean ? '' : ' (with errors)');
    return clean;
  }

  try {
    record = claimMountpoint({ pid: process.pid, device: config.device, mountpoint: config.mountpoint, log: config.logPath });
    const claimed = record;
    cleanups.push({ what: 'mount point record', run: () => releaseMountpoint(claimed) });

    deviceClaim = await claimDevice(config.devicePath, () => stopRequested);
    const heldDevice = deviceClaim;
    cleanups.push({ what: 'device lock', run: () => heldDevice.release() });

    device = await deps.openDevice(config.devicePath, { readOnly: options.readOnly, inject: options.inject });
    const openDevice = device;
    cleanups.push({ what: 'device', run: () => openDevice.close() });

    engine = (await deps.openVolume(device, volumeOptions(options))) as RemountableEngine;
    const openEngine = engine;
    cleanups.push({ what: 'engine (write-back)', run: () => openEngine.unmount() });
    if (engine.readOnly && !options.readOnly) {
      warnings.push(`${config.device}: the volume was opened read-only; mounted ro`);
      liveState.readOnly = true;
    }
    if (stopRequested) throw new DaemonError('interrupted before the mount was live');

    control = await serveControl(record.socket, handleControl);
    const server = control;
    cleanups.push({ what: 'control socket', run: () => new Promise<void>((resolve) => server.close(() => resolve())) });

    const sessionOptions = {
      fsname: config.device,
      readOnly: liveState.readOnly,
      noatime: options.atime === 'noatime',
      allowOther: options.allowOther,
      defaultPermissions: options.defaultPermissions,
      dev: options.dev,
      suid: options.suid,
      exec: options.exec,
      debug: options.debug,
    };
    if (options.transport === 'kernel') {
      const { LowLevelSession } = await import('../fs/fuse/lowlevel');
      const lowLevel = await LowLevelSession.mount(engine, config.mountpoint, {
        ...sessionOptions,
        writebackCache: options.writebackCache,
        reader: options.reader,
        spinUs: options.spinUs,
        onUnexpected: (op, err) => console.error(`o2fuse: BUG: ${op}:`, err),
      });
      session = lowLevel;
      if (lowLevel.reader.fallback) warnings.push(`reading /dev/fuse with worker threads, slower per request: ${lowLevel.reader.fallback}`);
    } else {
      const { createNativeOps } = await import('../fs/fuse/nativeAdapter');
      const { NativeSession } = await import('../fs/fuse/nativeSession');
      const ops = createNativeOps(engine, {
        onUnexpected: (op, path, err) => console.error(`o2fuse: BUG: ${op} ${path}:`, err),
      });
      session = await NativeSession.mount(config.mountpoint, ops, sessionOptions);
    }
    log('mounted %s over the %s transport', config.mountpoint, options.transport);
    readySent = true;
    startMemoryTrace();
    readiness.ready({ readOnly: liveState.readOnly, warnings });
    // A signal that came while the mount was being made: honour it now that there is a mount to undo.
    if (stopRequested) {
      stopRequested = false;
      onSignal('SIGTERM');
    }

    await session.ended;
    log('session ended: releasing %s, writing back', config.mountpoint);
    // The mount point is free as soon as the kernel let go: a harness may mount there again at once.
    releaseMountpoint(record);
    return (await undo()) ? 0 : 1;
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (!readySent) readiness.failed(message);
    else console.error(`o2fuse: ${message}`);
    if (session?.alive()) await session.unmount(true);
    await undo();
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onHangup);
  }
}

/** Deletes a daemon's log when nothing was ever written to it (clean runs leave no files behind). */
export function dropEmptyLog(logPath: string | undefined): void {
  if (!logPath) return;
  try {
    if (fs.statSync(logPath).size === 0) fs.rmSync(logPath);
  } catch {
    // already gone
  }
}

/** Last resort for a daemon that crashed: do not leave a dead mount ("Transport endpoint is not connected") behind. */
export function installCrashGuard(config: DaemonConfig, report: (message: string) => void): void {
  const onCrash = (err: unknown) => {
    console.error('o2fuse: daemon crashed:', err);
    report(`the daemon crashed: ${(err as Error)?.message ?? String(err)}`);
    const rec = liveRecord(config.mountpoint);
    if (o2fuseMountAt(config.mountpoint) && (!rec || rec.pid === process.pid)) {
      try {
        execFileSync('fusermount', ['-u', '-z', config.mountpoint], { stdio: 'ignore', timeout: 30_000 });
      } catch {
        // nothing more we can do
      }
    }
    process.exit(70);
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
}

