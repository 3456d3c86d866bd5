/**
 * The kernel oracle's fixtures (test/lib/kernel.ts, kernelCrash.ts) and a VM
 * that gives no answer. kernel-run exits 91 alike for a VM it killed after
 * 300 s (a TCG guest stalled on a loaded host) and for a script that reboots.
 *
 * - kernelCrash hands out an image only when the script printed its mark just
 *   before the reboot it asked for; otherwise it boots once more, then refuses.
 * - kernelRun puts the image back as it was before the boot and boots once
 *   more; a second 91 is returned as it came.
 *
 * The stalled VM is a stand-in kernel-run ($O2_KERNEL_RUN, written here): it
 * says whether the image holds what its previous run left, leaves a mark at
 * the image's end, counts its runs and exits 91 with nothing from the kernel.
 * The retry logic is what is under test, not the VM: a real boot per attempt
 * cost ~12 s of CPU each (TCG). One real crash checks that a reboot that
 * reached its mark is handed out after one boot; the volume the kernel left
 * is recovered by the engine's mount and must be clean for fsck.ocfs2 -fn.
 * ~30 s (the one boot).
 */
import t from 'tap';
import type { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { KERNEL_NO_ANSWER, kernelRun, kernelUnavailable } from '../lib/kernel';
import { kernelCrash } from '../lib/kernelCrash';
import { tempDir } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountEngine } from '../rw/helpers';

/** The engine's mount replays the kernel's journal; the volume must then be clean. */
async function recoverAndCheck(t: Test, image: string): Promise<void> {
  const vol = await mountEngine(image);
  await vol.unmount();
  await assertFsckClean(t, image, 'volume the kernel left, once the engine has recovered it');
}

const skip = kernelUnavailable() ?? false;
/** kernelCrash asks for root even of a stand-in kernel-run (the real one installs qemu). */
const stubSkip = process.getuid?.() !== 0 ? 'kernelCrash needs root' : false;

const MARK = 'O2FUSE-STALLED-VM-WAS-HERE';

/**
 * A kernel-run that stalls: prints whether IMAGE ends with the mark a previous
 * run appended, appends it, and exits 91 as kernel-run does for a VM it killed.
 * Used for the rest of the test; returns how many times it ran.
 */
async function stalledKernelRun(t: Test): Promise<() => Promise<number>> {
  const dir = await tempDir(t, 'o2fuse-stalled-vm-');
  const exe = path.join(dir, 'kernel-run');
  const runs = path.join(dir, 'runs');
  await fs.writeFile(exe, `#!/bin/bash
echo run >> ${JSON.stringify(runs)}
if tail -c ${MARK.length} "$1" | grep -q ${MARK}; then echo LEFT-BY-FIRST-BOOT; else echo FRESH; fi
printf %s ${MARK} >> "$1"
exit ${KERNEL_NO_ANSWER}
`, { mode: 0o755 });
  const before = process.env.O2_KERNEL_RUN;
  process.env.O2_KERNEL_RUN = exe;
  t.teardown(() => {
    if (before === undefined) delete process.env.O2_KERNEL_RUN;
    else process.env.O2_KERNEL_RUN = before;
  });
  return async () => (await fs.readFile(runs, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
}

t.test('kernelCrash: a run that never reached the reboot mark is retried once, then refused', { skip: stubSkip }, async (t) => {
  const runs = await stalledKernelRun(t);
  let refusal: unknown;
  let result: unknown;
  try {
    result = await kernelCrash(t, { script: 'echo before > f; sync' });
  } catch (e) {
    refusal = e;
  }
  t.equal(result, undefined, 'no image is handed out');
  t.match(String(refusal), /never reached the reboot \(kernel-run exit 91 after [\d.]+ s\), 2 times/,
    'the error says the VM never reached the reboot, and that it booted twice');
  t.equal(await runs(), 2, 'kernel-run ran twice');
});

t.test('kernelCrash: a run that reaches the reboot hands out the image after one boot', { skip }, async (t) => {
  const r = await kernelCrash(t, { script: 'echo after > f; sync' });
  t.equal(r?.attempts, 1, 'one boot');
  if (r) await recoverAndCheck(t, r.image);
});

t.test('kernelRun: after no answer the image is put back and booted once more', async (t) => {
  const runs = await stalledKernelRun(t);
  // The stand-in never reads the volume: any bytes show whether they were put back.
  const image = path.join(await tempDir(t, 'o2fuse-stalled-image-'), 'image');
  const original = randomBytes(1024 * 1024);
  await fs.writeFile(image, original);
  // The first run leaves its mark on the image; the second finds it only if the image was not put back.
  const r = await kernelRun(image, 'echo unused\n');
  t.equal(r.code, KERNEL_NO_ANSWER, 'the second no-answer is returned');
  t.equal(r.attempts, 2, 'two boots');
  t.equal(await runs(), 2, 'kernel-run ran twice');
  t.match(r.scriptOutput, /FRESH/, 'the second boot ran');
  t.notMatch(r.scriptOutput, /LEFT-BY-FIRST-BOOT/, 'and found the image as it was before the first');
  const after = await fs.readFile(image);
  t.ok(after.subarray(0, original.length).equals(original) && after.subarray(original.length).toString() === MARK,
    'the image is returned as the second run left it: the original and one mark');
});
