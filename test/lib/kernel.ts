/**
 * The Linux kernel's own OCFS2 driver as an oracle (shared/oracle/kernel-run): boots
 * Debian's 6.1 kernel under qemu (TCG), mounts the image at /mnt, runs a busybox sh
 * script there, unmounts. Measured here: ~7 s a run once set up; the first run on a
 * machine also installs qemu-system-x86, busybox-static, cpio, kmod and unpacks the
 * kernel package (~30 s). Slow: only for the few tests that need the real driver.
 *
 *   const r = await kernelRun(image, 'sha256sum a/f; ls -ln a');
 *   t.equal(r.code, 0); r.scriptOutput ...
 *
 * Exit codes: the script's own status; 90 mount failed, 91 no answer from the VM (also
 * what a deliberate sysrq reboot looks like), 92 set-up failed.
 *
 * A TCG guest can stall on a loaded host until kernel-run kills it at 300 s
 * (exit 91): an event of the machine, not of the volume. kernelRun keeps a
 * sparse copy of the image, and after a 91 puts it back and boots once more
 * (attempts says so); a second 91 is returned as it came. A script that
 * reboots on purpose names the mark it prints first (rebootMark): only a 91
 * without it counts as a stall.
 */
import * as fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot, run, runOk } from './exec';
import { cachedBuild } from './build';
import { type TestLike, tempDir } from './volume';

export const KERNEL_MOUNT_FAILED = 90;
export const KERNEL_NO_ANSWER = 91;
export const KERNEL_SETUP_FAILED = 92;

export interface KernelRunOptions {
  /** A file attached read-only as /dev/vdb (e.g. a tar: `tar -xf /dev/vdb` in the script). */
  data?: string;
  /** Mount read-only. */
  readOnly?: boolean;
  /** kernel-run's mount options argument (e.g. `rw,heartbeat=none,preferred_slot=1`); overrides readOnly. */
  mode?: string;
  /**
   * The script reboots on purpose and has the kernel print this just before
   * (kernelCrash.ts): a 91 whose output holds it is the answer asked for, not
   * a VM that stalled.
   */
  rebootMark?: string;
  /** Default 600 s (the script itself is given 300 s by kernel-run). */
  timeoutMs?: number;
}

export interface KernelRunResult {
  code: number;
  /** Everything kernel-run printed (script output, then "kernel: ..." lines, then errors). */
  output: string;
  /** What the script printed. */
  scriptOutput: string;
  /** The kernel's ocfs2/jbd2 messages, without the "kernel: " prefix. */
  kernelLines: string[];
  /** Of the last boot. */
  elapsedMs: number;
  /** Boots: 2 when the first gave no answer and the image was put back. */
  attempts: number;
}

/** Boots: the second covers a VM that stalled on a loaded host. */
const ATTEMPTS = 2;

/** Where kernel-run lives: $O2_KERNEL_RUN, else shared/ beside the repository (as CI lays it out), else /work/shared. */
export function kernelRunPath(): string | undefined {
  const candidates = [
    process.env.O2_KERNEL_RUN,
    path.join(repoRoot(), '..', 'shared', 'oracle', 'kernel-run'),
    '/work/shared/oracle/kernel-run',
  ];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

/** Why the kernel oracle cannot run here, or undefined when it can (for t.skip). */
export function kernelUnavailable(): string | undefined {
  if (!kernelRunPath()) return 'kernel-run not found (set O2_KERNEL_RUN)';
  if (process.getuid?.() !== 0) return 'kernel-run needs root (it installs qemu on first use)';
  return undefined;
}

/** Runs script (text) under the kernel with image mounted at /mnt. */
export async function kernelRun(image: string, script: string, o: KernelRunOptions = {}): Promise<KernelRunResult> {
  const exe = kernelRunPath();
  if (!exe) throw new Error('kernel-run not found (set O2_KERNEL_RUN)');
  const dir = await fs.mkdtemp(path.join(path.dirname(image), '.kernel-run-'));
  try {
    const scriptPath = path.join(dir, 'script.sh');
    await fs.writeFile(scriptPath, script);
    const env = { ...process.env };
    if (o.data) env.ORACLE_DATA = o.data;
    else delete env.ORACLE_DATA;
    const args = [image, scriptPath, ...(o.mode ? [o.mode] : o.readOnly ? ['ro'] : [])];
    // The image as it was before the boot, to put back if the VM stalls part way through the script.
    const before = path.join(dir, 'before.img');
    await runOk('cp', ['--sparse=always', image, before]);
    for (let attempt = 1; ; attempt++) {
      const started = Date.now();
      const r = await run(exe, args, { env, timeoutMs: o.timeoutMs ?? 600_000 });
      const elapsedMs = Date.now() - started;
      const stalled = r.code === KERNEL_NO_ANSWER && !(o.rebootMark && r.text.includes(o.rebootMark));
      if (stalled && attempt < ATTEMPTS) {
        await runOk('cp', ['--sparse=always', before, image]);
        continue;
      }
      const lines = r.text.split('\n');
      return {
        code: r.code,
        output: `${r.text}${r.stderr}`,
        scriptOutput: lines.filter((l) => !l.startsWith('kernel: ')).join('\n'),
        kernelLines: lines.filter((l) => l.startsWith('kernel: ')).map((l) => l.slice('kernel: '.length)),
        elapsedMs,
        attempts: attempt,
      };
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Packs a directory's contents into a tar (for KernelRunOptions.data); returns its path. */
export async function makeTar(t: TestLike, sourceDir: string): Promise<string> {
  const tar = path.join(await tempDir(t, 'o2fuse-tar-'), 'data.tar');
  await runOk('tar', ['-C', sourceDir, '--numeric-owner', '-cf', tar, '.']);
  return tar;
}

/**
 * C helpers from test/oracle (`<name>.c`), built static once (build.ts) and
 * packed into a tar (for KernelRunOptions.data): the oracle's userland is
 * busybox, which lacks setfattr, reflink and the like. In the script:
 * `mkdir -p /tmp && tar -xf /dev/vdb -C /tmp`, then /tmp/<name>.
 */
export async function staticHelpersTar(t: TestLike, names: readonly string[]): Promise<string> {
  const dir = await tempDir(t, 'o2fuse-helpers-');
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  for (const name of names) {
    const built = await cachedBuild(`${name}-static`, [`${name}.c`], (srcDir, out) =>
      ['-static', '-O2', '-o', out, path.join(srcDir, `${name}.c`)]);
    await fs.copyFile(built, path.join(bin, name));
  }
  const tar = path.join(dir, 'helpers.tar');
  await runOk('tar', ['-C', bin, '-cf', tar, ...names]);
  return tar;
}
