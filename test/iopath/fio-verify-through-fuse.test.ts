/**
 * fio verify jobs through a real FUSE mount: every written block is read
 * back and checked (crc32c), and the volume is fsck-clean afterwards. Sizes
 * are cut down from the 64 MiB of the acceptance runs to keep the suite
 * within its time budget (FIO_SIZE=64M reproduces them).
 */
import t from 'tap';
import path from 'node:path';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { run } from '../lib/exec';

const SIZE = process.env.FIO_SIZE ?? '8M';

const JOBS: Record<string, string[]> = {
  'unaligned 512 B direct random writes, iodepth 32': ['--ioengine=libaio', '--direct=1', '--bs=512', '--rw=randwrite', '--iodepth=32', '--verify=crc32c'],
  'direct random writes of 512 B..12 KiB, iodepth 32': ['--ioengine=libaio', '--direct=1', '--bsrange=512-12k', '--rw=randwrite', '--iodepth=32', '--verify=crc32c'],
  '4 KiB direct random writes': ['--ioengine=libaio', '--direct=1', '--bs=4k', '--rw=randwrite', '--iodepth=16', '--verify=crc32c'],
  'buffered random writes with periodic fsync': ['--ioengine=psync', '--bs=4k', '--rw=randwrite', '--fsync=32', '--verify=crc32c'],
  '70/30 direct random read/write with verify_backlog': ['--ioengine=libaio', '--direct=1', '--bs=4k', '--rw=randrw', '--rwmixread=70', '--iodepth=16', '--verify=crc32c', '--verify_backlog=256'],
  // rw=randwrite:8 with verify fails in fio 3.33 on any filesystem (the host's too: "bad header numberio"), so the
  // sparse job skips 12 KiB after every 4 KiB write instead: holes between the blocks, each verified.
  'sparse writes (write:12k, holes between blocks)': ['--ioengine=psync', '--bs=4k', '--rw=write:12k', '--verify=crc32c'],
};

// The suite runs against both transports: all jobs over the kernel transport (the default as root), and the
// unaligned and buffered ones over libfuse, which reaches the same engine one write per inode at a time.
const TRANSPORTS: Array<[string, string[]]> = [
  ['kernel', Object.keys(JOBS)],
  ['libfuse', ['unaligned 512 B direct random writes, iodepth 32', 'buffered random writes with periodic fsync']],
];

for (const [transport, jobs] of TRANSPORTS) {
  t.test(`fio verify jobs pass through the ${transport} transport and leave the volume fsck-clean`, async (t) => {
    const image = await makeImage(t, { sizeBytes: 1 << 30, features: 'noindexed-dirs,norefcount' });
    const m = await mountO2fuse(t, image, { options: `cache_size=64M,transport=${transport}` });
    let i = 0;
    for (const name of jobs) {
      const file = path.join(m.dir, `fio-${i++}`);
      const r = await run('fio', ['--name=verify', `--filename=${file}`, `--size=${SIZE}`, '--output-format=json', '--verify_fatal=1', '--verify_state_save=0', ...JOBS[name]]);
      let errs = -1;
      try {
        const json = JSON.parse(r.text.slice(r.text.indexOf('{')));
        errs = json.jobs.reduce((n: number, j: { error: number }) => n + j.error, 0);
      } catch {
        /* fio printed no JSON: the exit code says what happened */
      }
      t.equal(r.code, 0, `${name}: fio exits 0`, { stderr: r.stderr.slice(-2000) });
      t.equal(errs, 0, `${name}: no job errors (verify included)`);
    }
    await m.unmount();
    await assertFsckClean(t, image);
  });
}
