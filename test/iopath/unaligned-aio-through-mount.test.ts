/**
 * The historic corruption through a real mount with real concurrent AIO: fio
 * submits 512-byte direct writes at iodepth 32 (the kernel transport lets
 * them reach the engine concurrently), the device gets a random latency so
 * that completions reorder, and crc32c verify reads every sector back.
 * -o unaligned_dio=unsafe loses writes (verify fails); the default rule
 * (range) and the kernels' rule (inode) keep every one.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { run, runOk } from '../lib/exec';

async function aioRun(t: Test, mode: string): Promise<{ code: number; verifyErrors: number }> {
  const image = await makeImage(t, { sizeBytes: 256 << 20, features: 'noindexed-dirs,norefcount' });
  // Allocate and write the file first, so the AIO writes are overwrites that take the direct path.
  const prep = await mountO2fuse(t, image, { options: 'transport=kernel' });
  await runOk('dd', ['if=/dev/zero', `of=${path.join(prep.dir, 'f')}`, 'bs=1M', 'count=1', 'conv=fsync', 'status=none']);
  await prep.unmount();
  const m = await mountO2fuse(t, image, { options: `transport=kernel,unaligned_dio=${mode},inject=latency:0-3ms+seed=5` });
  const r = await run('fio', ['--name=aio', `--filename=${path.join(m.dir, 'f')}`, '--ioengine=libaio', '--direct=1',
    '--rw=randwrite', '--bs=512', '--iodepth=32', '--size=1M', '--verify=crc32c', '--verify_fatal=0',
    '--verify_state_save=0', '--randseed=7']);
  await m.unmount();
  await assertFsckClean(t, image);
  return { code: r.code, verifyErrors: (r.stderr.match(/verify:/g) ?? []).length };
}

t.test('rule off: concurrent unaligned AIO through the mount loses writes', async (t) => {
  const r = await aioRun(t, 'unsafe');
  t.comment(`unsafe: fio exit ${r.code}, ${r.verifyErrors} verify errors`);
  t.ok(r.code !== 0 || r.verifyErrors > 0, 'fio verify caught the corruption');
});

for (const mode of ['range', 'inode']) {
  t.test(`rule on (${mode}): every sector verifies`, async (t) => {
    const r = await aioRun(t, mode);
    t.equal(r.verifyErrors, 0, 'no verify errors');
    t.equal(r.code, 0, 'fio exits 0');
  });
}
