/**
 * Listings reuse the entries decoded from each dir block buffer (fs/dir.ts:
 * a committed change installs a new buffer, so an old buffer's entries never
 * change). After changes scattered over many blocks, a warm listing (most
 * blocks' entries reused, the changed ones decoded again) must equal a cold
 * one from a fresh mount, entry for entry, position included; and a block's
 * entries are not reused for a block at another logical position.
 */
import t from 'tap';
import { readDirSlots, type DirSlot } from '../../fs/dir';
import { assertFsckClean } from '../lib/fsck';
import { CASES, dirOf, makeFixture, mountRw } from './dir-workload';
import { seedFrom, Rng } from '../lib/seed';

const root = { uid: 0, gid: 0 };
const B = (s: string) => Buffer.from(s);
const show = (slots: DirSlot[]) => slots.map((s) => `${s.name.toString('latin1')}:${s.ino}:${s.fileType}:${s.lblk}:${s.offset}`);

for (const c of [CASES[0], CASES[1]]) {
  t.test(`warm listings after scattered changes equal a cold listing: ${c.name}`, async (t) => {
    const rng = new Rng(seedFrom(t));
    const rand = () => rng.float();
    const { image } = await makeFixture(t, c);
    let vol = await mountRw(image);
    let warm: string[] = [];
    const names = new Set<string>();
    try {
      const d = await dirOf(vol, '/d');
      for (let i = 0; i < 600; i++) {
        const name = `file-${String(i).padStart(4, '0')}`;
        await vol.release(...(await vol.create(d.ino, B(name), 0o644, 0, root).then((r) => [r.attr.ino, r.fh] as const)));
        names.add(name);
      }
      const first = await readDirSlots(vol, await dirOf(vol, '/d'));
      t.ok(new Set(first.map((s) => s.lblk)).size > 3, `the directory spans ${new Set(first.map((s) => s.lblk)).size} blocks`);
      for (let round = 0; round < 5; round++) {
        for (const name of [...names]) {
          if (rand() < 0.05) {
            await vol.unlink(d.ino, B(name));
            names.delete(name);
          }
        }
        for (let i = 0; i < 20; i++) {
          const name = `new-${round}-${i}-${'x'.repeat(Math.floor(rand() * 40))}`;
          await vol.release(...(await vol.create(d.ino, B(name), 0o644, 0, root).then((r) => [r.attr.ino, r.fh] as const)));
          names.add(name);
        }
        warm = show(await readDirSlots(vol, await dirOf(vol, '/d')));
        t.equal(warm.length, names.size + 2, `round ${round}: every name listed once, with "." and ".."`);
      }
    } finally {
      await vol.unmount();
    }
    vol = await mountRw(image);
    try {
      const cold = show(await readDirSlots(vol, await dirOf(vol, '/d')));
      t.same(warm, cold, 'the last warm listing is the cold one, entry for entry');
    } finally {
      await vol.unmount();
    }
    await assertFsckClean(t, image);
  });
}
