/**
 * The allocators remember, per group, the bit below which every bit is set,
 * and start a search from bit 0 there (fs/suballoc.ts, GroupInfo.setBelow).
 * The rule is only safe if freeing lowers the mark and a claim raises it
 * only when it extends the set run below it. Both are checked here by what
 * gets allocated: a freed inode's bit is the next one handed out, and a
 * claim placed by a goal far ahead leaves the lower free clusters to the
 * next search from bit 0. The volume ends fsck-clean.
 */
import t from 'tap';
import { freshImage, mountRw, createFile } from './extent-harness';
import { assertFsckClean } from '../lib/fsck';


t.test('a freed inode bit is the next one allocated, the lowest first', async (t) => {
  const image = await freshImage(t);
  const vol = await mountRw(image);
  const inos: number[] = [];
  for (let i = 0; i < 40; i++) {
    const f = await createFile(vol, `f${i}`);
    await vol.release(f.ino, f.fh);
    inos.push(f.ino);
  }
  t.ok(inos.every((ino, i) => i === 0 || ino > inos[i - 1]), 'forty creates take ascending inode numbers');
  await vol.unlink(vol.rootIno, Buffer.from('f30'));
  await vol.unlink(vol.rootIno, Buffer.from('f5'));
  const again: number[] = [];
  for (const name of ['g0', 'g1', 'g2']) {
    const f = await createFile(vol, name);
    await vol.release(f.ino, f.fh);
    again.push(f.ino);
  }
  t.same(again.slice(0, 2), [inos[5], inos[30]], 'the two freed inodes are reused, lowest first');
  t.ok(again[2] > inos[39], `then allocation goes on past the last one (${again[2]} > ${inos[39]})`);
  await vol.unmount();
  await assertFsckClean(t, image);
});

t.test('a claim placed by a goal does not hide the free clusters below it', async (t) => {
  const image = await freshImage(t);
  const vol = await mountRw(image);
  // Where a search from bit 0 lands now (nothing committed: the transaction is dropped).
  const probe = vol.begin('probe');
  const first = await vol.alloc.claimClusters(probe, 1, 1);
  probe.abort();

  const far = vol.begin('far claim');
  const placed = await vol.alloc.claimClusters(far, 1, 1, first.cluster + 1000);
  await far.commit();
  t.equal(placed.cluster, first.cluster + 1000, 'the goal decides where the far claim lands');

  const next = vol.begin('next claim');
  const got = await vol.alloc.claimClusters(next, 1, 1);
  await next.commit();
  t.equal(got.cluster, first.cluster, 'a search from bit 0 still finds the first free cluster');

  // Give both back so the volume's accounting is what fsck expects of unowned clusters.
  const back = vol.begin('free');
  await vol.alloc.freeClusters(back, placed);
  await vol.alloc.freeClusters(back, got);
  await back.commit();
  await vol.unmount();
  await assertFsckClean(t, image);
});
