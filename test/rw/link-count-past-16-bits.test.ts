/**
 * Link counts past 16 bits. On a volume with indexed directories the
 * kernel's ocfs2_link_max is OCFS2_DX_LINK_MAX: an indexed directory takes
 * far more than OCFS2_LINK_MAX (32000) subdirectories, and a count above
 * 65,535 keeps its high half in i_links_count_hi, which the kernel reads
 * back only for an indexed directory (ocfs2_read_links_count). Checked here,
 * engine side:
 * - 65,540 subdirectories of one directory: its count is 65,542 in getattr,
 *   after a remount and to fsck.ocfs2 -fn (debugfs.ocfs2 prints the low
 *   half, the 16-bit field, as it is);
 * - a directory moved in and a few removed take it across 65,536 both ways
 *   (the high half set, then back to 0);
 * - a file stays at OCFS2_LINK_MAX links (its high half would not be read
 *   back; posix-semantics.test.ts runs it to EMLINK);
 * and the kernel's own driver reads the same count, makes and removes a
 * subdirectory there, and the engine reads the count it left.
 */
import t from 'tap';
import { OCFS2_DX_LINK_MAX, OCFS2_INDEXED_DIR_FL, OCFS2_LINK_MAX } from '../../fs/format/constants';
import { dinodeLinkMax } from '../../fs/format/dinode';
import { statPath } from '../lib/debugfs';
import { assertFsckClean } from '../lib/fsck';
import { kernelRun, kernelUnavailable } from '../lib/kernel';
import { writableImage, mountEngine, outcome, O_RDONLY, ROOT, MiB } from './helpers';

const B = (s: string) => Buffer.from(s);
/** Past 2^16 - 2: the directory's own count (2 + subdirectories) needs i_links_count_hi. */
const SUBDIRS = 65_540;

t.test('an indexed directory with 65,540 subdirectories', {
  timeout: 900_000, skip: process.env.O2FUSE_SKIP_SLOW ? 'O2FUSE_SKIP_SLOW is set (about a minute)' : false,
}, async (t) => {
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 1024 * MiB });
  let vol = await mountEngine(image);
  let dirIno: number;
  try {
    const root = vol.rootIno;
    const dir = await vol.mkdir(root, B('d'), 0o755, ROOT);
    dirIno = dir.ino;
    const started = Date.now();
    for (let i = 0; i < SUBDIRS; i++) await vol.mkdir(dirIno, B(`s${i}`), 0o755, ROOT);
    t.comment(`${SUBDIRS} subdirectories: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const d = await vol.iget(dirIno);
    t.ok(d.di.i_dyn_features & OCFS2_INDEXED_DIR_FL, 'the directory is indexed');
    t.equal(dinodeLinkMax(d.di), OCFS2_DX_LINK_MAX, 'so it takes OCFS2_DX_LINK_MAX links');
    t.equal((await vol.getattr(dirIno)).nlink, SUBDIRS + 2, `${SUBDIRS + 2} links`);
    t.equal(d.di.i_links_count_hi, 1, 'the high half of the count is on disk');
    t.equal(d.di.i_links_count, (SUBDIRS + 2) & 0xffff, 'and the low half');

    const { attr, fh } = await vol.create(root, B('f'), 0o644, O_RDONLY, ROOT);
    await vol.release(attr.ino, fh);
    t.equal(dinodeLinkMax((await vol.iget(attr.ino)).di), OCFS2_LINK_MAX, 'a file keeps OCFS2_LINK_MAX');

    // Across 65,536 downwards and back up: the high half goes to 0 and returns.
    for (let i = 0; i < 10; i++) await vol.rmdir(dirIno, B(`s${i}`));
    t.equal((await vol.getattr(dirIno)).nlink, SUBDIRS - 8, `${SUBDIRS - 8} links after 10 rmdirs`);
    t.equal((await vol.iget(dirIno)).di.i_links_count_hi, 0, 'the high half is back to 0');
    await vol.mkdir(root, B('moved'), 0o755, ROOT);
    for (let i = 0; i < 9; i++) await vol.mkdir(dirIno, B(`t${i}`), 0o755, ROOT);
    t.equal(await outcome(vol.rename(root, B('moved'), dirIno, B('moved'), 0)), 'ok', 'a directory moves in');
    t.equal((await vol.getattr(dirIno)).nlink, SUBDIRS + 2, `${SUBDIRS + 2} links again`);
  } finally {
    await vol.unmount();
  }

  vol = await mountEngine(image);
  try {
    t.equal((await vol.getattr(dirIno)).nlink, SUBDIRS + 2, 'the count read back after a remount');
  } finally {
    await vol.unmount();
  }
  // debugfs.ocfs2's stat prints the 16-bit i_links_count field as it is (the kernel and fsck add the high half).
  t.equal((await statPath(image, '/d')).nlink, (SUBDIRS + 2) & 0xffff, 'debugfs.ocfs2 reads the same low half');
  await assertFsckClean(t, image, `the volume with ${SUBDIRS} subdirectories in one directory`);

  t.test('the kernel reads it, and changes it', { skip: kernelUnavailable() ?? false }, async (t) => {
    const r = await kernelRun(image, 'stat -c %h d; mkdir d/k; stat -c %h d; rmdir d/k d/s10 d/s11; stat -c %h d');
    t.equal(r.code, 0, `kernel-run exits 0${r.code ? `: ${r.output.slice(-2000)}` : ''}`);
    t.same(r.scriptOutput.trim().split(/\s+/).map(Number), [SUBDIRS + 2, SUBDIRS + 3, SUBDIRS],
      'the kernel counts the same links, and one more and two fewer after its mkdir and rmdirs');
    const after = await mountEngine(image);
    try {
      t.equal((await after.getattr(dirIno)).nlink, SUBDIRS, 'the engine reads the count the kernel left');
    } finally {
      await after.unmount();
    }
    await assertFsckClean(t, image, 'the volume after the kernel');
  });
});
