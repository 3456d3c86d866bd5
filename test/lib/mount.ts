/**
 * Mounting a volume for a test through the real command line
 * (`bin/o2fuse mount`), and never leaving the mount or the daemon behind:
 * every mount registers a teardown that unmounts (fusermount -u, retried while
 * busy, then -uz as a last resort) and waits for the daemon to exit, killing
 * it if it does not.
 *
 *   const m = await mountO2fuse(t, image, { options: 'ro' });
 *   ... fs.promises calls on m.dir ...
 *   await m.unmount();          // optional: teardown does it too
 *
 * Use asynchronous fs calls on the mount (the daemon is another process here,
 * but a test that serves a mount in-process would deadlock on sync calls).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { o2fuseMountAt } from '../../fs/fuse/mountinfo';
import { resolveMountpoint } from '../../bin/mountCommand';
import { liveRecord, pidAlive } from '../../bin/registry';
import { repoRoot, run } from './exec';

/** The part of a node-tap Test the helper uses. */
export interface MountTest {
  teardown(fn: () => unknown): void;
  comment(...args: unknown[]): void;
}

export interface MountOptions {
  /** The -o string ("ro,noatime"). */
  options?: string;
  /** Run `o2fuse mount -f` as a child this helper keeps (default: the background daemon). */
  foreground?: boolean;
  /** Mount here (default: a new directory under the system temp dir, removed afterwards). */
  dir?: string;
  /** The program and leading arguments to run instead of bin/o2fuse (e.g. [node, fakeCli.js]). */
  command?: string[];
  /** Extra environment for the command. */
  env?: NodeJS.ProcessEnv;
  /** Give up waiting for a foreground mount after this long (default 60 s). */
  timeoutMs?: number;
}

export interface MountedO2fuse {
  dir: string;
  image: string;
  /** The daemon's pid. */
  pid: number;
  /** The foreground child, when foreground was asked. */
  child?: ChildProcess;
  /** stderr of the foreground child so far. */
  stderr(): string;
  /** Unmounts and waits for the daemon to exit; idempotent. */
  unmount(): Promise<void>;
}

export class MountFailed extends Error {
  constructor(message: string, readonly code: number, readonly stderr: string) {
    super(message);
    this.name = 'MountFailed';
  }
}

/** How long teardown waits for a daemon to exit after its unmount before killing it. */
export const DAEMON_EXIT_WAIT_MS = 60_000;
const BUSY_RETRIES = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function o2fuseCommand(): string[] {
  return [path.join(repoRoot(), 'bin', 'o2fuse')];
}

export async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** Unmounts `dir` if an o2fuse mount is on it: plain first, retried while busy, lazily at last. */
export async function forceUnmount(dir: string): Promise<void> {
  for (let i = 0; i < BUSY_RETRIES && o2fuseMountAt(dir); i++) {
    const r = await run('fusermount', ['-u', dir]);
    if (r.code === 0) return;
    await sleep(100);
  }
  if (o2fuseMountAt(dir)) await run('fusermount', ['-u', '-z', dir]);
}

/**
 * tap gives every process a test spawns its process-info hooks
 * (NODE_OPTIONS=--import=@tapjs/processinfo/..., put back into the
 * environment of each spawn even when the caller removed it). A daemon
 * started that way loads tap's code and writes tap's records. `env -u`
 * drops it between the spawn and the launcher, so tests mount the daemon
 * users run.
 */
const WITHOUT_TAP_HOOKS = ['env', '-u', 'NODE_OPTIONS'];

export async function mountO2fuse(t: MountTest, image: string, opts: MountOptions = {}): Promise<MountedO2fuse> {
  const ownDir = opts.dir === undefined;
  // resolveMountpoint copes with a dead mount there (realpath fails with ENOTCONN).
  const dir = resolveMountpoint(opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'o2fuse-mnt-')));
  const [cmd, ...lead] = [...WITHOUT_TAP_HOOKS, ...(opts.command ?? o2fuseCommand())];
  const args = [...lead, 'mount', ...(opts.foreground ? ['-f'] : []), ...(opts.options ? ['-o', opts.options] : []), image, dir];
  const env = { ...process.env, ...opts.env };
  let child: ChildProcess | undefined;
  let stderr = '';
  let pid: number | undefined;
  let done = false;

  const unmount = async (): Promise<void> => {
    if (done) return;
    done = true;
    await forceUnmount(dir);
    if (pid !== undefined && !(await waitForExit(pid, DAEMON_EXIT_WAIT_MS))) {
      t.comment(`o2fuse daemon ${pid} did not exit ${DAEMON_EXIT_WAIT_MS / 1000} s after its unmount: killing it`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      await waitForExit(pid, 5000);
      await forceUnmount(dir);
    }
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  };
  t.teardown(unmount);

  if (!opts.foreground) {
    const r = await run(cmd, args, { env });
    stderr = r.stderr;
    if (r.code !== 0) {
      done = true;
      if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
      throw new MountFailed(`o2fuse mount ${image} exited ${r.code}: ${r.stderr.trim()}`, r.code, r.stderr);
    }
    pid = liveRecord(dir)?.pid;
    if (pid === undefined || !o2fuseMountAt(dir)) {
      throw new MountFailed(`o2fuse mount exited 0 but ${dir} is not served (record ${pid ?? 'missing'}, mount ${o2fuseMountAt(dir) ? 'present' : 'missing'})`, 0, r.stderr);
    }
  } else {
    const fg = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child = fg;
    fg.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString('utf8');
    });
    const exited = new Promise<number>((resolve) => fg.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    for (;;) {
      if (o2fuseMountAt(dir) && liveRecord(dir)) break;
      const code = await Promise.race([exited, sleep(50).then(() => undefined)]);
      if (code !== undefined) {
        done = true;
        if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
        throw new MountFailed(`o2fuse mount -f ${image} exited ${code}: ${stderr.trim()}`, code, stderr);
      }
      if (Date.now() > deadline) throw new MountFailed(`o2fuse mount -f ${image}: no mount after ${(opts.timeoutMs ?? 60_000) / 1000} s: ${stderr}`, -1, stderr);
    }
    pid = fg.pid;
  }
  return { dir, image, pid: pid!, child, stderr: () => stderr, unmount };
}
