/**
 * fsck.ocfs2 runs with its cache unpinned (test/oracle/nomlock.c, preloaded by
 * test/lib/fsck.ts): the preload must reach the fsck.ocfs2 the tests run and
 * take its mlock calls. Fails when it does not (a static or setuid fsck.ocfs2,
 * LD_PRELOAD lost on the way): every fsck of the suite would then fault in and
 * lock a cache sized to the machine's memory again, about half a second of CPU
 * each, which only the suite's time would otherwise show. Also fails if
 * fsck.ocfs2 stops locking its cache, which would make the preload pointless.
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { assertFsckClean, fsck } from '../lib/fsck';
import { makeImage, tempDir } from '../lib/volume';

t.test('fsck.ocfs2 asks to lock its cache and the preload skips it', async (t) => {
  const dir = await tempDir(t);
  const image = await makeImage(t, { dir, sizeBytes: 64 * 1024 * 1024, slots: 2 });
  const log = path.join(dir, 'nomlock.log');
  const r = await fsck(['-fn', image], { env: { ...process.env, O2_NOMLOCK_LOG: log } });
  t.equal(r.code, 0, 'fsck.ocfs2 -fn runs through', { output: r.text + r.stderr });
  const calls = (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  const locked = calls.filter((l) => /^mlock \d+$/.test(l)).map((l) => Number(l.split(' ')[1]));
  t.ok(locked.length > 0, `the preload took fsck.ocfs2's mlock calls (${locked.length}: ${locked.map((n) => `${n >> 20} MiB`).join(', ')})`);
  t.ok(locked.some((n) => n >= 64 * 1024 * 1024), 'among them one of its cache (at least the volume\'s size)');
  await assertFsckClean(t, image);
});
