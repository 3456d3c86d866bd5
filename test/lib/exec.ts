/**
 * Running the reference tools. Always asynchronous: a test may serve a FUSE mount from
 * its own process, and a synchronous child call would stall that daemon while the tool
 * runs (deadlock if the tool touches the mount).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface RunResult {
  /** Exit status; a child killed by a signal reports 128 + signal number. */
  code: number;
  stdout: Buffer;
  stderr: string;
  /** stdout as UTF-8, for tools that print text. */
  text: string;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  cwd?: string;
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Runs a program to completion; never rejects on a non-zero exit (the caller decides). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out);
      resolve({
        code: code ?? 128 + (signal ? signalNumbers[signal] ?? 0 : 0),
        stdout,
        stderr: Buffer.concat(err).toString('utf8'),
        text: stdout.toString('utf8'),
      });
    });
    child.stdin.on('error', () => undefined); // a tool that exits early closes its stdin
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a program and rejects with its command line, status and stderr unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stderr}${r.text.slice(-2000)}`);
  }
  return r;
}

/** The repository root (the directory holding package.json), from src or dist alike. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'test'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
}

/** Where to point a person whose machine lacks a Debian package. */
export const SETUP_HINT = 'install the test dependencies: sudo bash scripts/setup-system.sh --test';
