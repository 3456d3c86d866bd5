/**
 * A volume the Linux kernel's OCFS2 driver crashed on (test/lib/kernelCrash.ts:
 * files written and synced, a truncate and an unlink whose clusters sit in the
 * truncate log, a file unlinked while held open, then an immediate reboot),
 * mounted read-write by the engine: the mount replays the dirty journal and
 * the crashed slot's recovery is completed (local alloc window, truncate log,
 * orphans, slot map entry). The result is compared with what fsck.ocfs2 -fy
 * makes of a copy of the same crashed image: the same tree as libocfs2 reads
 * it (o2tool dump, extent maps included), the same free cluster count, and
 * fsck.ocfs2 -fn finds both clean.
 *
 * Two crashes: in slot 1 (another node died: mount -o preferred_slot=1), and
 * in slot 0 (the slot this engine mounts in).
 */
import t, { type Test } from 'tap';
import { assertFsckClean, fsckReplayAndRepair } from '../lib/fsck';
import { dump } from '../lib/oracle';
import { copyImage } from '../lib/volume';
import { kernelCrashedImage } from '../lib/kernelCrash';
import { debugfsBitmap, mountEngine } from '../rw/helpers';
import type { Volume } from '../../fs/volume';
import { recoveryReasons } from '../../fs/recovery/slotRecovery';
import { GLOBAL_BITMAP_SYSTEM_INODE, LOCAL_ALLOC_SYSTEM_INODE, systemInodeName } from '../../fs/format/constants';

const SCRIPT = [
  'set -e',
  'mkdir d',
  'for i in $(seq 1 20); do echo "line $i" > d/f$i; done',
  'dd if=/dev/urandom of=big bs=64k count=40 2>/dev/null',
  'dd if=/dev/urandom of=trunc bs=64k count=40 2>/dev/null',
  'dd if=/dev/urandom of=gone bs=64k count=20 2>/dev/null',
  'ln -s d/f3 link',
  // held open through the crash: an orphan
  'exec 3<d/f5',
  'rm d/f5',
  'sync',
  // clusters into the truncate log; the fsync elsewhere commits them there before the log's 2 s flush
  'truncate -s 5000 trunc',
  'rm gone',
  'dd if=/dev/zero of=d/f1 bs=4k count=1 conv=fsync 2>/dev/null',
].join('\n');

const MKFS_ARGS = ['-N', '2', '--fs-features=noindexed-dirs,norefcount'];

/** What fsck.ocfs2 makes of the crashed image (fsckReplayAndRepair: a replay run, then a repair run). */
async function fsckRepair(t: Test, image: string): Promise<void> {
  const { replay, repair } = await fsckReplayAndRepair(image);
  t.ok([0, 1, 8].includes(replay.code), `fsck.ocfs2 -fy (replay) exits 0, 1 or 8: ${replay.code}`, { output: replay.text + replay.stderr });
  t.ok([0, 1].includes(repair.code), `fsck.ocfs2 -fy (repair) exits 0 or 1: ${repair.code}`, { output: repair.text + repair.stderr });
}

/** The reasons left in `slot` once recovered; this mount's own slot keeps its slot map entry. */
async function leftToRecover(vol: Volume, slot: number): Promise<string[]> {
  const why = await recoveryReasons(vol, slot);
  return slot === vol.slot ? why.filter((w) => !w.startsWith('slot map entry')) : why;
}

for (const slot of [1, 0]) {
  t.test(`a kernel crash in slot ${slot}: the engine's recovery agrees with fsck.ocfs2 -fy`, async (t) => {
    const image = await kernelCrashedImage(t, { script: SCRIPT, mkfsArgs: MKFS_ARGS, slot });
    if (!image) return;
    const la = await debugfsBitmap(image, systemInodeName(LOCAL_ALLOC_SYSTEM_INODE, slot));
    t.comment(`as the kernel left it: local_alloc:000${slot} ${la.used}/${la.total} bits used`);
    t.ok(la.total > 0, `the kernel left a local alloc window in slot ${slot}`);

    const ref = await copyImage(t, image);
    await fsckRepair(t, ref);
    await assertFsckClean(t, ref, 'volume fsck.ocfs2 -fy repaired');

    // The mount replays the kernel's journal and completes the dead slot's recovery itself.
    const vol = await mountEngine(image);
    for (let s = 0; s < vol.sb.s_max_slots; s++) t.same(await leftToRecover(vol, s), [], `slot ${s} has nothing to recover`);
    await vol.unmount();

    await assertFsckClean(t, image, 'volume the engine recovered');
    const gb = systemInodeName(GLOBAL_BITMAP_SYSTEM_INODE);
    t.equal((await debugfsBitmap(image, gb)).free, (await debugfsBitmap(ref, gb)).free,
      'as many free clusters as fsck.ocfs2 -fy left');
    t.equal(await dump(image, { map: true }), await dump(ref, { map: true }),
      'libocfs2 reads the same tree, bytes and extent maps as after fsck.ocfs2 -fy');
  });
}
