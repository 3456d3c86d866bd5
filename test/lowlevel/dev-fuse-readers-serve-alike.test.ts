/**
 * The two ways the kernel transport reads /dev/fuse (channel.ts) serve the
 * same mount alike: the poll reader (the main thread's event loop watches the
 * descriptor through the native addon, native/fusepoll.c) and worker-thread
 * readers. For each: a namespace workload, 1 MiB writes (the path where a
 * request keeps its read buffer) read back byte for byte, and fio at queue
 * depth 16 and 32 with verification, aligned and 512-byte unaligned direct
 * writes, with several requests in flight in the engine at once; then a clean
 * unmount and fsck.
 *
 * Also: the addon is built on this machine (setup installs gcc; the test
 * command builds it) and is the default; without it (O2FUSE_NATIVE=0) a
 * mount falls back to threads and says so, and reader=poll is refused with
 * the reason. The poll reader spins on the empty queue between a client's
 * back-to-back requests (spin.ts) and takes them without sleeping; spin_us=0
 * turns that off; spin_us is refused where there is no poll reader.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { devPoll, unavailableReason } from '../../fs/fuse/lowlevel/devPoll';
import { assertFsckClean } from '../lib/fsck';
import { MountFailed, mountO2fuse } from '../lib/mount';
import { makeImage, tempDir } from '../lib/volume';
import { IMAGE, lowLevelUnavailable, mountLowLevel } from './helpers';

const FIO_TIMEOUT_MS = 300_000;

/** Checked before anything is mounted: a synchronous child is harmless then. */
function fioUnavailable(): string | undefined {
  const why = lowLevelUnavailable();
  if (why) return why;
  return spawnSync('sh', ['-c', 'command -v fio']).status === 0 ? undefined : 'fio is not installed';
}

const skip = fioUnavailable();

t.test('the poll reader is built here and is what a mount uses by default', { skip }, async (t) => {
  t.ok(devPoll(), `the addon loads (${unavailableReason() ?? 'built'})`);
  const m = await mountLowLevel(t);
  t.same(m.session.reader, { kind: 'poll', fallback: undefined }, 'the session reads /dev/fuse by polling');
  t.equal((await m.shOk(`echo polled > ${m.mnt}/a && cat ${m.mnt}/a`)).trim(), 'polled');
  await m.close();
  await assertFsckClean(t, m.image);
});

for (const reader of ['poll', 'threads'] as const) {
  t.test(`reader=${reader}: namespace, 1 MiB writes, fio verify at depth 16 and 32`, { skip }, async (t) => {
    const host = await tempDir(t, 'o2fuse-readers-');
    const source = path.join(host, 'source');
    fs.writeFileSync(source, randomBytes(8 << 20));
    const m = await mountLowLevel(t, { options: { reader } });
    t.equal(m.session.reader.kind, reader, `the session reads with ${reader}`);

    await m.shOk(`mkdir -p ${m.mnt}/d/e && for i in $(seq 1 300); do echo "file $i" > ${m.mnt}/d/f$i; done && ` +
      `mv ${m.mnt}/d/f1 ${m.mnt}/d/e/moved && rm ${m.mnt}/d/f2 ${m.mnt}/d/f3`);
    t.equal((await m.shOk(`ls ${m.mnt}/d | wc -l`)).trim(), '298', '297 files and a directory listed');
    t.equal((await m.shOk(`cat ${m.mnt}/d/e/moved ${m.mnt}/d/f300`)), 'file 1\nfile 300\n', 'contents after a rename');

    await m.shOk(`dd if=${source} of=${m.mnt}/big bs=1M conv=fsync status=none`);
    const before = m.session.stats();
    t.ok(before.writesBySizeLog2[20] >= 8, `the copy arrived as 1 MiB WRITEs (${before.writesBySizeLog2[20]})`);
    await m.shOk(`echo 3 > /proc/sys/vm/drop_caches; cmp ${source} ${m.mnt}/big`);
    t.pass('1 MiB writes read back byte for byte');

    const f = `${m.mnt}/fio.dat`;
    await m.shOk(`dd if=/dev/zero of=${f} bs=1M count=16 conv=fsync status=none`);
    for (const job of [
      '--rw=randrw --bs=4k --iodepth=16',
      '--rw=randwrite --bs=512 --iodepth=32',
    ]) {
      const cmd = `fio --name=v --filename=${f} --ioengine=libaio --direct=1 ${job} --size=16M --io_size=8M --randseed=7 ` +
        '--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0';
      const r = await m.sh(cmd, FIO_TIMEOUT_MS);
      t.equal(r.code, 0, `fio ${job} verifies`, { output: r.text.slice(-2000) + r.stderr });
    }
    const st = m.session.stats();
    t.ok(st.maxInFlight > 1, `several requests were in the engine at once (max ${st.maxInFlight})`);
    t.equal(st.inFlight, 0, 'nothing left in flight');
    // ENOENT answers the lookup before each create, ENOSYS the ioctls (TCGETS) the kernel forwards.
    const failed = Object.keys(st.errors).filter((e) => e !== 'ENOENT' && e !== 'ENOSYS');
    t.same(failed, [], 'no request failed', { errors: st.errors });

    await m.close();
    t.ok(!m.session.alive(), 'the session ended with the unmount');
    await assertFsckClean(t, m.image);
  });
}

/** A client calling the filesystem in a tight loop: open and close one file (OPEN + RELEASE each), in a child. */
const openCloseLoop = (file: string, n: number) =>
  `node -e 'const fs = require("fs"); for (let i = 0; i < ${n}; i++) fs.closeSync(fs.openSync("${file}", "r"))'`;

t.test('the poll reader spins between back-to-back requests; spin_us=0 never spins', { skip }, async (t) => {
  // The largest budget: a client descheduled now and then on a loaded machine still lands most requests in it.
  const m = await mountLowLevel(t, { options: { spinUs: 1000 } });
  await m.shOk(`echo spun > ${m.mnt}/f && ${openCloseLoop(`${m.mnt}/f`, 2000)}`);
  const spin = m.session.stats().spin;
  t.ok(spin.spinHits > 0, `requests were taken while spinning (${JSON.stringify(spin)})`);
  t.equal((await m.shOk(`cat ${m.mnt}/f`)).trim(), 'spun', 'and answered right');
  await m.close();
  await assertFsckClean(t, m.image);

  const off = await mountLowLevel(t, { options: { spinUs: 0 } });
  await off.shOk(`echo still > ${off.mnt}/f && ${openCloseLoop(`${off.mnt}/f`, 500)}`);
  t.same(off.session.stats().spin, { spinHits: 0, spinMisses: 0, spinPauses: 0, spinResumes: 0 }, 'spin_us=0: no spin at all');
  t.ok(off.session.stats().byOpcode.OPEN >= 500, 'though the requests came the same way');
  await off.close();
  await assertFsckClean(t, off.image);

  const threads = await mountLowLevel(t, { options: { reader: 'threads', spinUs: 50 } }).then(() => undefined, (err: unknown) => err);
  t.match((threads as Error)?.message ?? '', /spin_us=50: only the poll reader spins, and it is not chosen/, 'spin_us with reader=threads is refused');
});

t.test('without the addon: a default mount falls back to threads and says why; reader=poll is refused', { skip }, async (t) => {
  const dir = await tempDir(t, 'o2fuse-readers-cli-');
  const image = await makeImage(t, { ...IMAGE, sizeBytes: 128 << 20, dir });
  const env = { O2FUSE_NATIVE: '0' };

  const refused = await mountO2fuse(t, image, { options: 'transport=kernel,reader=poll', env }).then(
    () => undefined, (err: unknown) => err);
  t.type(refused, MountFailed, 'reader=poll without the addon: the mount fails');
  t.match((refused as MountFailed).stderr, /reader=poll: O2FUSE_NATIVE=0 is set/, 'and names the reason');

  const m = await mountO2fuse(t, image, { options: 'transport=kernel', env });
  t.match(m.stderr(), /warning: reading \/dev\/fuse with worker threads, slower per request: O2FUSE_NATIVE=0 is set/,
    'the fallback is announced');
  fs.writeFileSync(path.join(m.dir, 'x'), 'served by threads\n');
  t.equal(fs.readFileSync(path.join(m.dir, 'x'), 'utf8'), 'served by threads\n');
  await m.unmount();
  await assertFsckClean(t, image);
});
