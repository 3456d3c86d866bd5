/**
 * The damaged-image corpus (cases.ts), driven through the engine directly: for each
 * corruption of a fresh, libocfs2-populated volume, either the mount is refused with an
 * errno and a message naming what and where (and the device), or the mount works and the
 * one operation touching the damage fails with EIO and a message naming the block, and
 * fails again when retried, while the rest of the tree reads back right; a single flipped
 * bit on a metaecc volume is corrected and reads right. Nothing crashes the process and
 * nothing hangs (each engine call has a time limit, each case a tap timeout).
 *
 * fsck.ocfs2 -fn is the oracle that the damage is real: it must complain about every
 * damaged copy except the single-bit metaecc ones (libocfs2 corrects those as it reads,
 * as the engine must). A control case shows each pristine base volume is fsck-clean and
 * reads right, so a failure below is the damage's doing.
 */
import t from 'tap';
import { runFsck } from '../lib/fsck';
import { type Base, type BaseKind, copyOf, makeBase } from './corpus';
import { CASES } from './cases';
import { checkCase, checkIntact, mountImage, withTimeout } from './check';

const CASE_TIMEOUT_MS = 90_000;

t.test('damaged-image corpus through the engine', async (t) => {
  const kinds = [...new Set(CASES.map((c) => c.base))] as BaseKind[];
  const bases = new Map<BaseKind, Base>();
  for (const kind of kinds) bases.set(kind, await makeBase(t, kind));

  for (const kind of kinds) {
    await t.test(`control: the pristine ${kind} volume is fsck-clean and reads right`, { timeout: CASE_TIMEOUT_MS }, async (t) => {
      const base = bases.get(kind)!;
      const fsck = await runFsck(base.image);
      t.same(fsck.complaints, [], 'fsck.ocfs2 -fn finds nothing');
      const vol = await withTimeout(mountImage(base.image, true), 'read-only mount');
      try {
        await checkIntact(t, vol);
      } finally {
        await vol.unmount();
      }
    });
  }

  for (const c of CASES) {
    const title = `${c.name}${c.fsckCode ? ` [${c.fsckCode}]` : ''} (${c.base} volume): ${c.expect.kind}`;
    await t.test(title, { timeout: CASE_TIMEOUT_MS }, async (t) => {
      const base = bases.get(c.base)!;
      const image = await copyOf(base, c.name);
      await c.damage(image, base);

      const fsck = await runFsck(image);
      const fsckComplains = fsck.code !== 0 || fsck.complaints.length > 0;
      if (c.expect.kind === 'corrected' || c.fsckSilent) {
        t.comment(`fsck.ocfs2 -fn: exit ${fsck.code}, ${fsck.complaints.length} complaint(s) (not required: ${c.fsckSilent ?? 'one flipped bit is corrected as libocfs2 reads'})`);
      } else {
        t.ok(fsckComplains, 'fsck.ocfs2 -fn sees the damage', { diagnostic: !fsckComplains, fsckOutput: fsck.output });
      }
      if (fsck.complaints.length) t.comment(`fsck: ${fsck.complaints.slice(0, 3).join(' | ')}`);

      await checkCase(t, c, image, base.at);
    });
  }
});
