/**
 * Images the Linux kernel's OCFS2 driver crashed on: formatted by o2fuse's
 * mkfs (-M local), mounted by the kernel under qemu (kernel-run, see
 * kernel.ts), the test's script run in /mnt, then an immediate reboot
 * (sysrq b) without unmount. What the image holds afterwards, as the real
 * driver left it: the slot's journal marked dirty (with whatever the last
 * commits put there not yet checkpointed), the slot map entry set, the local
 * alloc window in use, and, when the script made them, truncate log records
 * (a truncate or unlink followed within ~2 s by a journal commit: an fsync
 * elsewhere commits without flushing the log) and orphans (a file unlinked
 * while the script holds it open).
 *
 *   const image = await kernelCrashedImage(t, { script: 'echo hi > f; sync', mkfsArgs: ['-N', '2'], slot: 1 });
 *   if (!image) return;                  // skipped: kernel-run cannot run here
 *
 * Nothing is cached between runs: every call formats and boots afresh, in a
 * scratch directory removed at teardown. ~8-15 s a call.
 *
 * kernel-run answers 91 both for the reboot asked for and for a VM it killed
 * after 300 s without an answer (a TCG guest can stall on a loaded host), and
 * an image killed at an unknown point is not the fixture the test asked for.
 * So the script has the kernel print REBOOT_MARK on its console just before
 * the reboot; kernelRun puts the image back and boots once more after a run
 * without it (the comment on the crash says so), and a second such run is
 * refused with kernel-run's output.
 */
import * as path from 'node:path';
import type { Test } from 'tap';
import { runMkfs } from '../../fs/mkfs/cli';
import { KERNEL_MOUNT_FAILED, KERNEL_NO_ANSWER, KERNEL_SETUP_FAILED, kernelRun, kernelUnavailable } from './kernel';
import { tempDir } from './volume';

/** What ends every crash script: the kernel reboots at once, nothing unmounted, nothing more written. */
export const CRASH_NOW = 'echo 1 > /proc/sys/kernel/sysrq; echo b > /proc/sysrq-trigger';

/**
 * Printed just before CRASH_NOW: kernel-run's output holds it only when the
 * script reached the reboot. Through /dev/kmsg at a level the quiet console
 * still shows (2 < loglevel 3), so the kernel has written it to the serial
 * console before the write returns; an echo to the console is queued in the
 * tty layer instead, and the reboot lost it (and the line after it) once
 * under load. Twice, because kernel-run drops the last line it saw when there
 * is no @@END. The kernel prefixes a timestamp: look for it inside a line.
 */
export const REBOOT_MARK = '@@O2FUSE-REBOOTING';
const MARK_LINES = `echo "<2>${REBOOT_MARK}" > /dev/kmsg; echo "<2>${REBOOT_MARK}" > /dev/kmsg`;

export interface KernelCrashOptions {
  /** Runs in /mnt under busybox sh; CRASH_NOW is appended. Use `sync` to get its work into the journal. */
  script: string;
  /** Extra o2fuse mkfs arguments (e.g. ['-N', '2', '--fs-features=noindexed-dirs,norefcount']). */
  mkfsArgs?: string[];
  /** Volume size; default 256 MiB. */
  sizeBytes?: number;
  /**
   * The slot the kernel mounts in (mount -o preferred_slot=N; a -M local
   * mount otherwise takes slot 0). The volume needs more than N slots.
   */
  slot?: number;
  /** A file attached read-only as /dev/vdb (KernelRunOptions.data: helpers to unpack with tar). */
  data?: string;
}

export interface KernelCrash {
  image: string;
  /** What kernel-run printed (the script's output; the kernel's messages are lost with the reboot). */
  output: string;
  /** Boots it took: 2 when the first VM stalled before the reboot. */
  attempts: number;
}

/**
 * Formats an image, lets the kernel crash on it, returns its path; or, after
 * t.skip(reason), undefined when kernel-run cannot run on this machine.
 * Throws when the kernel did not crash as asked (mount refused, script
 * failed before the reboot, the VM stalled twice).
 */
export async function kernelCrashedImage(t: Test, opts: KernelCrashOptions): Promise<string | undefined> {
  return (await kernelCrash(t, opts))?.image;
}

/** kernelCrashedImage with kernel-run's output. */
export async function kernelCrash(t: Test, opts: KernelCrashOptions): Promise<KernelCrash | undefined> {
  const unavailable = kernelUnavailable();
  if (unavailable) {
    t.skip(`kernel crash fixture: ${unavailable}`, () => undefined);
    return undefined;
  }
  const dir = await tempDir(t, 'o2fuse-kcrash-');
  const image = path.join(dir, 'crashed.img');
  const mkfsOut: string[] = [];
  // With a unit: a bare number would be mkfs.ocfs2's blocks-count.
  const args = ['-q', '-F', '-M', 'local', ...(opts.mkfsArgs ?? []), image, `${opts.sizeBytes ?? 256 * 1024 * 1024}B`];
  const code = await runMkfs(args, { stdout: (s) => mkfsOut.push(s), stderr: (s) => mkfsOut.push(s) });
  if (code !== 0) throw new Error(`o2fuse mkfs ${args.join(' ')} exited ${code}: ${mkfsOut.join('')}`);

  // Any option besides rw makes the 6.1 driver insist on a heartbeat mode, and a local volume's is none.
  const mode = opts.slot === undefined ? 'rw' : `rw,heartbeat=none,preferred_slot=${opts.slot}`;
  const r = await kernelRun(image, `${opts.script}\n${MARK_LINES}\n${CRASH_NOW}\n`, { mode, rebootMark: REBOOT_MARK, data: opts.data });
  if (r.code === KERNEL_SETUP_FAILED) {
    t.skip(`kernel crash fixture: kernel-run could not set itself up (exit 92): ${r.output.trim()}`, () => undefined);
    return undefined;
  }
  if (r.code === KERNEL_MOUNT_FAILED) throw new Error(`the kernel refused to mount the new volume (mode ${mode}):\n${r.output}`);
  if (r.code !== KERNEL_NO_ANSWER) {
    throw new Error(`the kernel did not crash: the script ended with status ${r.code} before the reboot:\n${r.output}`);
  }
  const after = `after ${(r.elapsedMs / 1000).toFixed(1)} s`;
  if (!r.output.includes(REBOOT_MARK)) {
    throw new Error(`the VM gave no answer and never reached the reboot (kernel-run exit 91 ${after}), ${r.attempts} times:\n${r.output}`);
  }
  const retried = r.attempts > 1 ? ' (on a second boot: the first VM gave no answer before the reboot)' : '';
  t.comment(`kernel crashed on ${image} (slot ${opts.slot ?? 0}) ${after}${retried}`);
  return { image, output: r.scriptOutput, attempts: r.attempts };
}
