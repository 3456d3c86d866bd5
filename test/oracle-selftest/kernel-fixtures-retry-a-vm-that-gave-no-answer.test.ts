/**
 * The kernel oracle's fixtures (test/lib/kernel.ts, kernelCrash.ts) and a VM
 * that gives no answer. kernel-run exits 91 alike for a VM it killed after
 * 300 s (a TCG guest stalled on a loaded host) and for a script that reboots.
 * A script that reboots early stands in for the stalled VM here (same exit
 * code, ~10 s instead of 300):
 *
 * - kernelCrash hands out an image only when the script printed its mark just
 *   before the reboot it asked for; otherwise it boots once more, then refuses.
 * - kernelRun puts the image back as it was before the boot and boots once
 *   more; a second 91 is returned as it came.
 *
 * Each volume the kernel left is then recovered by the engine's mount and
 * must be clean for fsck.ocfs2 -fn. ~35 s (five boots).
 */
import t from 'tap';
import type { Test } from 'tap';
import { KERNEL_NO_ANSWER, kernelRun, kernelUnavailable } from '../lib/kernel';
import { CRASH_NOW, kernelCrash } from '../lib/kernelCrash';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountEngine } from '../rw/helpers';

/** The engine's mount replays the kernel's journal; the volume must then be clean. */
async function recoverAndCheck(t: Test, image: string): Promise<void> {
  const vol = await mountEngine(image);
  await vol.unmount();
  await assertFsckClean(t, image, 'volume the kernel left, once the engine has recovered it');
}

const skip = kernelUnavailable() ?? false;

t.test('kernelCrash: a run that never reached the reboot mark is retried once, then refused', { skip }, async (t) => {
  let refusal: unknown;
  let result: unknown;
  try {
    result = await kernelCrash(t, { script: `echo before > f; sync; ${CRASH_NOW}` });
  } catch (e) {
    refusal = e;
  }
  t.equal(result, undefined, 'no image is handed out');
  t.match(String(refusal), /never reached the reboot \(kernel-run exit 91 after [\d.]+ s\), 2 times/,
    'the error says the VM never reached the reboot, and that it booted twice');
});

t.test('kernelCrash: a run that reaches the reboot hands out the image after one boot', { skip }, async (t) => {
  const r = await kernelCrash(t, { script: 'echo after > f; sync' });
  t.equal(r?.attempts, 1, 'one boot');
  if (r) await recoverAndCheck(t, r.image);
});

t.test('kernelRun: after no answer the image is put back and booted once more', { skip }, async (t) => {
  const image = await makeImage(t, { features: 'noindexed-dirs' });
  // The first boot leaves `seen` on the volume; the second finds it only if the image was not put back.
  const script = `if [ -e seen ]; then echo LEFT-BY-FIRST-BOOT; else echo FRESH; fi\necho x > seen; sync\necho .\n${CRASH_NOW}\n`;
  const r = await kernelRun(image, script);
  t.equal(r.code, KERNEL_NO_ANSWER, 'the second no-answer is returned');
  t.equal(r.attempts, 2, 'two boots');
  t.match(r.scriptOutput, /FRESH/, 'the second boot ran the script');
  t.notMatch(r.scriptOutput, /LEFT-BY-FIRST-BOOT/, 'and found the image as it was before the first');
  await recoverAndCheck(t, image);
});
