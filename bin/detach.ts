/**
 * Starting the daemon in the background, both sides of it.
 *
 * The parent (`o2fuse mount`, or mount.fuse running `o2fuse DEV DIR -o ...`)
 * spawns this same program with `__daemon CONFIG`, detached into its own
 * session, stdin closed, stdout and stderr to a log file, and an IPC channel.
 * The child sends {log}, then {ready} once the FUSE mount is live (fuse-native
 * reports that from the kernel's INIT request) or {failed, message}. Only
 * {ready} makes the parent exit 0: exit 0 means the mount is live. After a
 * failure the parent waits for the child to exit, so a failed mount leaves
 * neither a mount nor a daemon behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { DaemonConfig } from './daemon';

/** How long a failed mount waits for its daemon to clean up and exit. */
export const FAILED_DAEMON_EXIT_WAIT_MS = 60_000;
/** Log lines a failed mount shows (libfuse writes its reasons there). */
const LOG_LINES_SHOWN_MAX = 20;

export type ChildMessage =
  | { type: 'log'; path: string }
  | { type: 'ready'; readOnly: boolean; warnings: string[] }
  | { type: 'failed'; message: string };

function writableDir(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function logDirectory(): string {
  if (process.env.O2FUSE_LOG_DIR && writableDir(process.env.O2FUSE_LOG_DIR)) return process.env.O2FUSE_LOG_DIR;
  if (writableDir('/var/log/o2fuse')) return '/var/log/o2fuse';
  return path.join(os.tmpdir(), `o2fuse-${process.getuid?.() ?? 'user'}`);
}

/** The daemon's log name: the device's base name and the daemon's pid. */
export function logPathFor(device: string, pid: number | string, dir = logDirectory()): string {
  const base = path.basename(device).replace(/[^A-Za-z0-9._-]/g, '_') || 'device';
  return path.join(dir, `${base}-${pid}.log`);
}

function readLogTail(logPath: string): string[] {
  try {
    return fs.readFileSync(logPath, 'utf8').split('\n').filter((l) => l.trim().length > 0);
  } catch {
    return [];
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export interface DetachResult {
  ok: boolean;
  pid?: number;
  logPath: string;
  readOnly?: boolean;
  warnings: string[];
  /** Why the mount failed, with libfuse's and the daemon's own lines from the log. */
  error?: string;
}

/**
 * Parent side: starts `entry __daemon CONFIG` (with `flags`, node flags on top of this process's) and waits until
 * the mount is live or has failed.
 */
export async function startDetachedDaemon(entry: string, config: DaemonConfig, flags: readonly string[] = []): Promise<DetachResult> {
  const dir = logDirectory();
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  let logPath = logPathFor(config.device, `starting-${process.pid}`, dir);
  const logFd = fs.openSync(logPath, 'a', 0o644);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...process.execArgv, ...flags, entry, '__daemon', JSON.stringify({ ...config, logPath })], {
      detached: true,
      stdio: ['ignore', logFd, logFd, 'ipc'],
      cwd: '/',
      env: process.env,
    });
  } finally {
    fs.closeSync(logFd);
  }

  const outcome = await new Promise<ChildMessage | { type: 'exited'; detail: string }>((resolve) => {
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'log') logPath = m.path;
      else resolve(m);
    });
    child.on('error', (err) => resolve({ type: 'exited', detail: `cannot start the daemon: ${err.message}` }));
    child.on('exit', (code, signal) => resolve({ type: 'exited', detail: `the daemon exited (${signal ?? `status ${code}`}) before the mount was live` }));
  });

  if (outcome.type === 'ready') {
    child.removeAllListeners();
    if (child.connected) child.disconnect();
    child.unref();
    return { ok: true, pid: child.pid, logPath, readOnly: outcome.readOnly, warnings: outcome.warnings };
  }

  const reason = outcome.type === 'failed' ? outcome.message : outcome.type === 'exited' ? outcome.detail : 'no answer';
  const exited = await waitExit(child, FAILED_DAEMON_EXIT_WAIT_MS);
  if (child.connected) child.disconnect();
  const lines = readLogTail(logPath);
  const shown = lines.slice(-LOG_LINES_SHOWN_MAX);
  const parts = [...shown, reason];
  if (!exited) parts.push(`the daemon (pid ${child.pid}) is still cleaning up after ${FAILED_DAEMON_EXIT_WAIT_MS / 1000} s`);
  if (lines.length > shown.length) parts.push(`full log: ${logPath}`);
  else if (exited) fs.rmSync(logPath, { force: true });
  return { ok: false, pid: child.pid, logPath, warnings: [], error: parts.join('\n') };
}

/** Child side: where to report to. Without an IPC channel (foreground) the reports are no-ops. */
export function childReporter(): { send(m: ChildMessage): void; done(): void } {
  return {
    send(m) {
      if (!process.send || !process.connected) return;
      try {
        process.send(m);
      } catch {
        // The parent is gone (killed while waiting): the mount goes on without it.
      }
    },
    done() {
      if (process.connected) process.disconnect();
    },
  };
}

/** Child side: gives the log its final name, with the daemon's own pid. */
export function adoptLog(config: DaemonConfig): string | undefined {
  if (!config.logPath) return undefined;
  const final = logPathFor(config.device, process.pid, path.dirname(config.logPath));
  try {
    fs.renameSync(config.logPath, final);
    return final;
  } catch {
    return config.logPath;
  }
}

/**
 * `mount -f` when the daemon needs node flags this process was not started
 * with (heapFlags.ts, threadFlags.ts): runs `entry` again with them and the same arguments,
 * stdio shared, and waits for it. The child gets its own process group, so a
 * Ctrl-C at the terminal reaches only this process, which passes each
 * SIGINT, SIGTERM and SIGHUP on once (the daemon treats a second SIGINT as a
 * second request). Exits with the child's status.
 */
export function runForegroundWithFlags(entry: string, args: readonly string[], flags: readonly string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, entry, ...args], { stdio: 'inherit', detached: true });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const forward = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of signals) process.on(signal, forward);
  return new Promise((resolve) => {
    const done = (code: number) => {
      for (const signal of signals) process.off(signal, forward);
      resolve(code);
    };
    child.on('error', (err) => {
      console.error(`o2fuse: cannot start the daemon: ${err.message}`);
      done(1);
    });
    child.on('exit', (code, signal) => done(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
}

