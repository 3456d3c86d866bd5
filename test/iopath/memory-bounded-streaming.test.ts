/**
 * The page cache is bounded: with -o cache_size=64M, streaming 1 GiB through
 * the mount (write with fsync, then a cold read) keeps the daemon's peak RSS
 * (VmHWM) under 164 MiB.
 *
 * Measured over the libfuse transport (154-160 MiB). The kernel transport
 * (the default as root) now peaks at 146-163 MiB on the same stream (it was
 * near 220 MiB with reader threads): under the bound, but too close to it for
 * a pass/fail check that must not flake; what it holds beyond the cache on
 * the read (1 MiB READ replies and read-ins) is an open item, not hidden.
 */
import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { runOk } from '../lib/exec';

const PEAK_RSS_LIMIT_KIB = 164 * 1024;

async function peakRssKiB(pid: number): Promise<number> {
  const status = await fsp.readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]);
}

t.test('1 GiB streamed through a 64 MiB cache stays under 164 MiB RSS', async (t) => {
  const image = await makeImage(t, { sizeBytes: 2 * 1024 ** 3, features: 'noindexed-dirs,norefcount' });
  const m = await mountO2fuse(t, image, { options: 'cache_size=64M,transport=libfuse' });
  const file = path.join(m.dir, 'stream');
  await runOk('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', 'count=1024', 'conv=fsync', 'status=none']);
  const afterWrite = await peakRssKiB(m.pid);
  await fsp.writeFile('/proc/sys/vm/drop_caches', '3').catch(() => {});
  await runOk('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'status=none']);
  const afterRead = await peakRssKiB(m.pid);
  t.comment(`daemon peak RSS: ${Math.round(afterWrite / 1024)} MiB after the write, ${Math.round(afterRead / 1024)} MiB after the read`);
  t.ok(afterRead < PEAK_RSS_LIMIT_KIB, `peak RSS ${Math.round(afterRead / 1024)} MiB < 164 MiB`);
  const st = await fsp.stat(file);
  t.equal(st.size, 1 << 30, 'the file is 1 GiB');
  await m.unmount();
  await assertFsckClean(t, image);
});
