/**
 * `-o writeback_cache` (kernel transport): buffered writes complete in the
 * kernel's page cache and reach the engine later, in runs. What must still
 * hold, checked through a real mount:
 * - INIT asks for FUSE_WRITEBACK_CACHE only when the mount says so;
 * - 4 KiB buffered writes arrive as fewer, larger WRITE requests;
 * - random unaligned writes through a write-only descriptor (the kernel
 *   READs the partial pages it needs) and O_APPEND writes leave exactly the
 *   bytes a host-side shadow has, read back by the engine after unmount;
 * - the kernel's mtime is what the inode keeps;
 * - an O_DIRECT reader sees buffered data not yet written back;
 * - unaligned O_DIRECT AIO still passes the gate (fio verify);
 * - close(2) sends at most one FLUSH per mount (answered ENOSYS, the kernel
 *   stops asking) and still succeeds;
 * - a full volume fails the write or its fsync with ENOSPC and stays
 *   consistent;
 * and fsck.ocfs2 finds every volume clean.
 */
import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { Volume } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';
import { InitFlag, hasFlag } from '../../fs/fuse/lowlevel/protocol';
import { assertFsckClean } from '../lib/fsck';
import { lowLevelUnavailable, mountLowLevel } from './helpers';

const MIB = 1 << 20;
const O_RDONLY = 0;

/**
 * Python run in a child: `count` writes of random length at random offsets
 * (seeded) through an O_WRONLY descriptor of the mount's file, the same
 * writes to a host shadow file, then O_APPEND writes to both, fsync.
 */
const RANDOM_WRITES = `
import os, random, sys
target, shadow, seed, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(seed)
fds = [os.open(p, os.O_WRONLY) for p in (target, shadow)]
for i in range(count):
    off = rnd.randrange(0, size)
    data = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 9000)))
    for fd in fds: os.pwrite(fd, data, off)
for fd in fds: os.fsync(fd); os.close(fd)
fds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in (target, shadow)]
for i in range(50):
    data = (b'append %d ' % i) * rnd.randrange(1, 300)
    for fd in fds: os.write(fd, data)
for fd in fds: os.fsync(fd); os.close(fd)
`;

async function engineRead(image: string, name: string): Promise<{ data: Buffer; mtimeNs: bigint }> {
  const vol = await Volume.mount(await FileDevice.open(image), { readOnly: true });
  try {
    const attr = await vol.lookup(vol.rootIno, Buffer.from(name));
    const fh = await vol.open(attr.ino, O_RDONLY);
    const data = await vol.read(attr.ino, fh, 0, attr.size);
    await vol.release(attr.ino, fh);
    return { data: Buffer.from(data), mtimeNs: BigInt(attr.mtime.sec) * 1_000_000_000n + BigInt(attr.mtime.nsec) };
  } finally {
    await vol.unmount();
  }
}

t.test('INIT asks for the writeback cache only when the mount does', { skip: lowLevelUnavailable() }, async (t) => {
  const plain = await mountLowLevel(t);
  t.notOk(hasFlag(plain.session.negotiated!.flags, InitFlag.FUSE_WRITEBACK_CACHE), 'default mount: not asked');
  await plain.close();
  const wb = await mountLowLevel(t, { options: { writebackCache: true } });
  t.ok(hasFlag(wb.session.negotiated!.flags, InitFlag.FUSE_WRITEBACK_CACHE), 'writebackCache: asked and granted');
  await wb.close();
  await assertFsckClean(t, wb.image);
});

t.test('buffered writes arrive batched and land byte for byte', { skip: lowLevelUnavailable() }, async (t) => {
  const m = await mountLowLevel(t, { options: { writebackCache: true } });
  const M = m.mnt;
  const src = `${m.image}.src`;
  await m.shOk(`head -c ${8 * MIB} /dev/urandom > ${src}`);
  const before = m.session.stats();
  await m.shOk(`dd if=${src} of=${M}/seq bs=4k conv=fsync status=none`);
  const after = m.session.stats();
  const writes = after.writes - before.writes;
  t.comment(`2,048 write(2) calls of 4 KiB became ${writes} WRITE requests, largest ${after.largestWriteBytes} bytes`);
  t.ok(writes < 2048 / 4, 'at most a quarter as many WRITE requests as write(2) calls');
  t.ok(after.largestWriteBytes > 4096, 'requests carry more than one page');

  // Random unaligned writes over an existing file, through O_WRONLY, then appends; a host shadow gets the same.
  const shadow = `${m.image}.shadow`;
  await m.shOk(`cp ${src} ${M}/rand && cp ${src} ${shadow} && sync ${M}/rand && echo 3 > /proc/sys/vm/drop_caches`);
  const seed = 20261125;
  t.comment(`random writes: seed ${seed}`);
  const readsBefore = m.session.stats().reads;
  const script = `${m.image}.writes.py`;
  await writeFile(script, RANDOM_WRITES);
  await m.shOk(`python3 ${script} ${M}/rand ${shadow} ${seed} 400 ${8 * MIB}`);
  t.ok(m.session.stats().reads > readsBefore, 'the kernel read pages in for partial writes through the write-only descriptor');
  const want = (await m.shOk(`sha256sum < ${shadow}`)).split(' ')[0];
  t.equal((await m.shOk(`sha256sum < ${M}/rand`)).split(' ')[0], want, 'the mount reads what the shadow holds');

  // mtime: the kernel keeps it while it caches writes, and sends it at close; the inode must end with that value.
  await m.shOk(`printf more >> ${M}/rand && printf more >> ${shadow}`);
  const mtimeSeen = BigInt((await m.shOk(`stat -c %.9Y ${M}/rand`)).trim().replace('.', ''));

  // Coherence: data still in the kernel's page cache is what an O_DIRECT reader gets.
  await m.shOk(`head -c 4096 /dev/urandom > ${src}.page && dd if=${src}.page of=${M}/coh bs=4k count=1 status=none`);
  const page = (await m.shOk(`sha256sum < ${src}.page`)).split(' ')[0];
  t.equal((await m.shOk(`dd if=${M}/coh iflag=direct bs=4k count=1 status=none | sha256sum`)).split(' ')[0], page,
    'O_DIRECT read sees a buffered write not yet written back');
  await m.close();

  const got = await engineRead(m.image, 'rand');
  const shadowSum = (await m.shOk(`sha256sum < ${shadow}`)).split(' ')[0];
  t.equal(createHash('sha256').update(got.data).digest('hex'), shadowSum, 'after unmount the engine reads the shadow\'s bytes');
  t.equal(got.mtimeNs, mtimeSeen, 'the inode keeps the mtime the kernel showed');
  await assertFsckClean(t, m.image);
});

t.test('unaligned O_DIRECT AIO still passes the gate', { skip: lowLevelUnavailable() }, async (t) => {
  const m = await mountLowLevel(t, { options: { writebackCache: true } });
  await m.shOk(`dd if=/dev/zero of=${m.mnt}/f bs=1M count=1 conv=fsync status=none`);
  const r = await m.sh(`fio --name=aio --filename=${m.mnt}/f --ioengine=libaio --direct=1 --rw=randwrite --bs=512 `
    + '--iodepth=32 --size=1M --verify=crc32c --verify_fatal=0 --verify_state_save=0 --randseed=7', 300_000);
  t.equal((r.stderr.match(/verify:/g) ?? []).length, 0, 'no verify errors');
  t.equal(r.code, 0, 'fio exits 0');
  t.ok(m.session.stats().maxInFlightWritesPerInode > 1, 'direct writes still reach the engine concurrently');
  await m.close();
  await assertFsckClean(t, m.image);
});

t.test('close sends one FLUSH per mount at most: ENOSYS stops it', { skip: lowLevelUnavailable() }, async (t) => {
  const m = await mountLowLevel(t, { options: { writebackCache: true } });
  const before = m.session.stats();
  // Each file opened, written through the kernel's cache and closed: a FLUSH at every close unless stopped.
  await m.shOk(`for i in $(seq 1 50); do echo $i > ${m.mnt}/f$i || exit 1; done`);
  const after = m.session.stats();
  const flushes = (after.byOpcode.FLUSH ?? 0) - (before.byOpcode.FLUSH ?? 0);
  t.comment(`50 closes sent ${flushes} FLUSH request(s)`);
  t.ok(flushes <= 1, 'at most one FLUSH for 50 closes');
  t.equal((await m.shOk(`cat ${m.mnt}/f50`)).trim(), '50', 'the files hold what was written');
  await m.close();
  await assertFsckClean(t, m.image);
});

t.test('a full volume: ENOSPC from the write or its fsync, volume consistent', { skip: lowLevelUnavailable() }, async (t) => {
  const m = await mountLowLevel(t, { options: { writebackCache: true }, imageBytes: 128 * MIB });
  const r = await m.sh(`dd if=/dev/zero of=${m.mnt}/big bs=1M count=200 conv=fsync status=none`);
  t.not(r.code, 0, 'dd fails');
  t.match(r.stderr, /No space left on device/, `with ENOSPC: ${r.stderr.trim()}`);
  // The daemon still serves, and what was written is readable.
  await m.shOk(`rm ${m.mnt}/big && echo after > ${m.mnt}/after && sync ${m.mnt}/after`);
  t.equal((await m.shOk(`cat ${m.mnt}/after`)).trim(), 'after', 'the mount works after ENOSPC');
  await m.close();
  await assertFsckClean(t, m.image);
});
