/**
 * A real OCFS2 volume served in this test process by the low-level FUSE
 * transport, and the client side run in child processes.
 *
 *   const m = await mountLowLevel(t);
 *   await m.sh(`echo hi > ${m.mnt}/a`);       // shell in a child process
 *   await m.close();                          // unmount, session ended, engine unmounted
 *   await assertFsckClean(t, m.image);
 *
 * Never touch the mount with fs calls from this process: a synchronous call
 * blocks the event loop that has to answer it (deadlock), and asynchronous
 * ones hold threadpool threads the server needs.
 *
 * Teardown always unmounts: umount, retried while busy, then umount -l, then
 * the fusectl abort if the session still has not ended.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Volume } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';
import { LowLevelSession, type LowLevelMountOptions } from '../../fs/fuse/lowlevel/session';
import { run, type RunResult } from '../lib/exec';
import { makeImage, tempDir, type TestLike } from '../lib/volume';

/** The geometry the transport tests use (the brief's mkfs line). */
export const IMAGE = { sizeBytes: 1 << 30, blockSize: 4096, clusterSize: 4096, slots: 2, features: 'noindexed-dirs,norefcount' };

const UMOUNT_BUSY_RETRIES = 20;
const END_WAIT_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Why these tests cannot run here, or undefined. */
export function lowLevelUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount(8) with a /dev/fuse descriptor)';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse';
  return undefined;
}

export interface LowLevelMount {
  image: string;
  mnt: string;
  engine: Volume;
  session: LowLevelSession;
  /** Runs a shell command in a child process (TZ=UTC, C locale). */
  sh(cmd: string, timeoutMs?: number): Promise<RunResult>;
  /** Like sh(), but rejects with the output unless the command exits 0. */
  shOk(cmd: string, timeoutMs?: number): Promise<string>;
  /** Unmounts (umount; -l and abort as last resorts), waits for the session to end, unmounts the engine. Idempotent. */
  close(): Promise<void>;
}

export function sh(cmd: string, timeoutMs = 120_000): Promise<RunResult> {
  return run('sh', ['-c', cmd], { timeoutMs, env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' } });
}

export async function shOk(cmd: string, timeoutMs?: number): Promise<string> {
  const r = await sh(cmd, timeoutMs);
  if (r.code !== 0) throw new Error(`\`${cmd}\` exited ${r.code}\n${r.text}${r.stderr}`);
  return r.text;
}

export async function waitEnded(session: LowLevelSession, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    session.ended.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return ended;
}

/** Ends a session whatever state it is in; returns how (for test comments). */
export async function stopSession(session: LowLevelSession): Promise<string> {
  if (session.alive()) {
    let done = false;
    for (let i = 0; i < UMOUNT_BUSY_RETRIES && !done; i++) {
      done = (await session.unmount(false)).ok;
      if (!done) await sleep(100);
    }
    if (!done) await session.unmount(true);
  }
  if (await waitEnded(session, END_WAIT_MS)) return 'unmounted';
  await session.abort();
  if (await waitEnded(session, END_WAIT_MS)) return 'aborted';
  return 'still alive';
}

export async function mountLowLevel(t: TestLike,
  opts: { options?: Partial<LowLevelMountOptions>; imageBytes?: number } = {}): Promise<LowLevelMount> {
  const dir = await tempDir(t, 'o2fuse-lowlevel-');
  const image = await makeImage(t, { ...IMAGE, sizeBytes: opts.imageBytes ?? IMAGE.sizeBytes, dir });
  const mnt = path.join(dir, 'mnt');
  await fs.promises.mkdir(mnt);
  const engine = await Volume.mount(await FileDevice.open(image), { readOnly: false });
  let session: LowLevelSession;
  try {
    session = await LowLevelSession.mount(engine, mnt, { fsname: image, ...opts.options });
  } catch (err) {
    await engine.unmount();
    throw err;
  }
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      const how = await stopSession(session);
      if (how !== 'unmounted') t.comment(`low-level session on ${mnt}: ${how}`);
      // A dead mount (aborted session) still sits on the directory until umount.
      if (fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `)) await run('umount', ['-l', mnt]);
      await engine.unmount();
    })();
    return closed;
  };
  t.teardown(close);
  return { image, mnt, engine, session, sh, shOk, close };
}
