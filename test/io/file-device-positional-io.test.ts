/**
 * FileDevice on a sparse image: many requests in flight at once, short reads
 * and writes continued, zeros past the end of a sparse image, errors mapped to
 * DeviceError errno names; block device geometry from sysfs (a fake sysfs
 * tree for a partition, and a real loop device when losetup works here).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeviceError } from '../../io/device';
import { blockDeviceGeometry, FileDevice, FileSyscalls, nodeFileSyscalls, splitDevNumber } from '../../io/fileDevice';
import { Prng, seedFromEnv } from '../../io/prng';
import { nativeAddon } from '../../io/nativeAddon';
import { errnoOf, pattern, scratchDir } from './helpers';

const MiB = 1024 * 1024;

/**
 * Takes every libuv threadpool thread with a read of an empty FIFO; the returned function writes one byte per
 * reader, which lets them all go.
 */
function occupyThreadpool(t: tap.Test): () => void {
  const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const fifo = path.join(scratchDir(t, 'fifo'), 'hold');
  execFileSync('mkfifo', [fifo]);
  // Read-write: opening neither blocks nor sees end-of-file while nobody else has it open.
  const fd = fs.openSync(fifo, 'r+');
  let released = false;
  const done = Array.from({ length: threads }, () => new Promise<void>((resolve) =>
    fs.read(fd, Buffer.alloc(1), 0, 1, null, () => resolve())));
  const release = () => {
    if (released) return;
    released = true;
    fs.writeSync(fd, Buffer.alloc(threads));
    void Promise.all(done).then(() => fs.closeSync(fd));
  };
  t.teardown(release);
  return release;
}

function sparseImage(t: tap.Test, sizeBytes: number): string {
  const file = path.join(scratchDir(t, 'filedev'), 'vol.img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, sizeBytes);
  return file;
}

t.test('hundreds of concurrent unaligned writes and reads on a sparse image all land where they should', async (t) => {
  const seed = seedFromEnv(20240601);
  t.comment(`seed=${seed}`);
  const prng = new Prng(seed);
  const file = sparseImage(t, 64 * MiB);
  const dev = await FileDevice.open(file);
  t.equal(dev.kind, 'image');
  t.equal(dev.size, 64 * MiB);
  // Disjoint slots of 128 KiB, each written at a random unaligned offset inside it.
  const slots = prng.shuffle(Array.from({ length: 512 }, (_, i) => i));
  const writes = slots.map((slot, i) => {
    const length = prng.int(1, 100_000);
    const offset = slot * 128 * 1024 + prng.int(0, 128 * 1024 - length);
    return { offset, data: pattern(length, i) };
  });
  await Promise.all(writes.map((w) => dev.write(w.data, w.offset)));
  t.ok(dev.stats().maxInFlight > 100, `many writes in flight at once (max ${dev.stats().maxInFlight})`);
  const back = await Promise.all(writes.map((w) => dev.read(w.offset, w.data.length)));
  const wrong = writes.filter((w, i) => !back[i]!.equals(w.data)).map((w) => w.offset);
  t.same(wrong, [], 'every write reads back');
  await dev.flush();
  await dev.close();
  // And the file itself holds them (no caching in the device).
  const fd = fs.openSync(file, 'r');
  const w0 = writes[0]!;
  const raw = Buffer.alloc(w0.data.length);
  fs.readSync(fd, raw, 0, raw.length, w0.offset);
  fs.closeSync(fd);
  t.same(raw, w0.data, 'data is in the image file');
  t.equal(fs.statSync(file).size, 64 * MiB, 'the image did not grow');
});

t.test('reads past the end of a sparse image inside the device size return zeros', async (t) => {
  const file = sparseImage(t, 1 * MiB);
  const dev = await FileDevice.open(file, { sizeBytes: 4 * MiB });
  t.equal(dev.size, 4 * MiB);
  await dev.write(Buffer.from('tail'), 1 * MiB - 2);
  const spanning = await dev.read(1 * MiB - 2, 10);
  t.same(spanning, Buffer.concat([Buffer.from('tail'), Buffer.alloc(6)]), 'the file grew by the write; the rest is zeros');
  t.same(await dev.read(3 * MiB, 4096), Buffer.alloc(4096), 'well past the file end');
  // Someone truncates the image under us: reads stay inside the size and see zeros.
  fs.truncateSync(file, 100);
  const r = await dev.read(50, 1000);
  t.same(r.subarray(50), Buffer.alloc(950));
  t.equal(await errnoOf(dev.read(4 * MiB - 1, 2)), 'EIO', 'but never past the device size');
  await dev.close();
});

t.test('short reads and writes are continued until the request is complete', async (t) => {
  const file = sparseImage(t, 1 * MiB);
  let readCalls = 0;
  let writeCalls = 0;
  // The kernel may return fewer bytes than asked (signals, pipes, network filesystems): model 1..333 bytes.
  const prng = new Prng(5);
  const shortCalls: FileSyscalls = {
    ...nodeFileSyscalls,
    read: (fd, buf, off, len, pos) => {
      readCalls++;
      return nodeFileSyscalls.read(fd, buf, off, Math.min(len, prng.int(1, 333)), pos);
    },
    // Reads done at once from the host's page cache come short too (only the cached start of a range).
    readIfCached: (fd, buf, off, len, pos) => {
      readCalls++;
      return nodeFileSyscalls.readIfCached?.(fd, buf, off, Math.min(len, prng.int(1, 333)), pos) ?? 'unsupported';
    },
    write: (fd, buf, off, len, pos) => {
      writeCalls++;
      return nodeFileSyscalls.write(fd, buf, off, Math.min(len, prng.int(1, 333)), pos);
    },
  };
  const dev = await FileDevice.open(file, { syscalls: shortCalls });
  const data = pattern(20_000, 9);
  await dev.write(data, 12345);
  t.ok(writeCalls > 60, `the write took ${writeCalls} calls`);
  t.same(await dev.read(12345, 20_000), data);
  t.ok(readCalls > 60, `the read took ${readCalls} calls`);
  await dev.close();
});

t.test('a gathered write hands the caller\'s buffers to pwritev as they are, and a short one is continued', async (t) => {
  const file = sparseImage(t, 1 * MiB);
  const prng = new Prng(6);
  const calls: (readonly Buffer[])[] = [];
  const shortCalls: FileSyscalls = {
    ...nodeFileSyscalls,
    // Writes only the first 1..333 bytes of what it is given.
    writev: (fd, bufs, pos) => {
      calls.push(bufs);
      let room = prng.int(1, 333);
      const some: Buffer[] = [];
      for (const b of bufs) {
        if (room === 0) break;
        some.push(b.subarray(0, room));
        room -= some[some.length - 1].length;
      }
      return nodeFileSyscalls.writev(fd, some, pos);
    },
  };
  const dev = await FileDevice.open(file, { syscalls: shortCalls });
  const bufs = Array.from({ length: 40 }, (_, i) => pattern(100 + i * 7, i));
  await dev.writev(bufs, 4097);
  t.ok(calls.length > 20, `the request took ${calls.length} calls`);
  t.equal(calls[0].length, bufs.length, 'the first call is given every buffer');
  t.ok(calls[0].every((b, i) => b === bufs[i]), 'the caller\'s own buffers, not a copy');
  t.same(await dev.read(4097, Buffer.concat(bufs).length), Buffer.concat(bufs));
  t.same(dev.stats().writes, 1, 'one request');
  t.same(dev.stats().bytesWritten, Buffer.concat(bufs).length);
  await dev.close();
});

t.test('system call errors become DeviceError with the errno name and the request in the message', async (t) => {
  const file = sparseImage(t, 1 * MiB);
  let failWith: string | null = null;
  const failing: FileSyscalls = {
    ...nodeFileSyscalls,
    read: (fd, buf, off, len, pos) =>
      failWith ? Promise.reject(Object.assign(new Error('injected'), { code: failWith })) : nodeFileSyscalls.read(fd, buf, off, len, pos),
    write: (fd, buf, off, len, pos) =>
      failWith ? Promise.reject(Object.assign(new Error('injected'), { code: failWith })) : nodeFileSyscalls.write(fd, buf, off, len, pos),
    fdatasync: (fd) => (failWith ? Promise.reject(Object.assign(new Error('injected'), { code: failWith })) : nodeFileSyscalls.fdatasync(fd)),
    // A failing device has nothing cached: the read goes to read(), which fails.
    readIfCached: (fd, buf, off, len, pos) => (failWith ? 'not cached' : nodeFileSyscalls.readIfCached?.(fd, buf, off, len, pos) ?? 'unsupported'),
  };
  const dev = await FileDevice.open(file, { syscalls: failing });
  failWith = 'EIO';
  const err = await dev.read(4096, 512).catch((e: unknown) => e);
  t.type(err, DeviceError);
  t.equal((err as DeviceError).errno, 'EIO');
  t.match((err as DeviceError).message, /^EIO: read image .*vol\.img \[4096, 4608\)/);
  failWith = 'ENOSPC';
  t.equal(await errnoOf(dev.write(Buffer.alloc(10), 0)), 'ENOSPC');
  failWith = 'EIO';
  t.equal(await errnoOf(dev.flush()), 'EIO', 'a failed fdatasync is a failed flush');
  failWith = 'EWEIRD';
  t.equal(await errnoOf(dev.read(0, 1)), 'EIO', 'an unknown code maps to EIO');
  failWith = null;
  t.same(await dev.read(0, 1), Buffer.alloc(1), 'the device works again');
  t.equal(dev.stats().errors, 4);
  await dev.close();
});

t.test('a descriptor closed under the device gives EBADF', async (t) => {
  const file = sparseImage(t, 1 * MiB);
  const dev = await FileDevice.open(file);
  fs.closeSync(dev.fd);
  t.equal(await errnoOf(dev.read(0, 16)), 'EBADF');
  t.equal(await errnoOf(dev.write(Buffer.alloc(16), 0)), 'EBADF');
  // dev.close() is not called: the descriptor number may already belong to someone else.
});

t.test('opening fails with the errno of the cause', async (t) => {
  const dir = scratchDir(t, 'filedev-open');
  t.equal(await errnoOf(FileDevice.open(path.join(dir, 'missing.img'))), 'ENOENT');
  t.equal(await errnoOf(FileDevice.open(dir, { readOnly: true })), 'EINVAL', 'a directory is no device');
  t.equal(await errnoOf(FileDevice.open(dir)), 'EISDIR');
  const err = await FileDevice.open(path.join(dir, 'missing.img')).catch((e: Error) => e);
  t.match(String(err), /ENOENT: open .*missing\.img/);
  t.equal(await errnoOf(FileDevice.open('/dev/null')), 'EINVAL', 'a character device is no block device');
});

t.test('block device numbers split like glibc major()/minor()', async (t) => {
  t.same(splitDevNumber(0x0801n), { major: 8, minor: 1 });
  t.same(splitDevNumber(0x10300n), { major: 259, minor: 0 }, '12-bit major');
  // major 0x1000, minor 0x101: makedev puts major's high bits at bit 32+ and minor's at bit 20+.
  const dev = (0x1000n << 32n) | (0x100n << 12n) | 0x01n;
  t.same(splitDevNumber(dev), { major: 0x1000, minor: 0x101 });
});

t.test('partition geometry: size from its own sysfs dir, sector size from its disk queue', async (t) => {
  const sys = scratchDir(t, 'fakesys');
  const disk = path.join(sys, 'devices', 'virtual', 'block', 'vdz');
  const part = path.join(disk, 'vdz1');
  fs.mkdirSync(path.join(disk, 'queue'), { recursive: true });
  fs.mkdirSync(part, { recursive: true });
  fs.writeFileSync(path.join(disk, 'queue', 'logical_block_size'), '4096\n');
  fs.writeFileSync(path.join(disk, 'size'), '1000000\n');
  fs.writeFileSync(path.join(part, 'size'), '2048\n');
  fs.mkdirSync(path.join(sys, 'dev', 'block'), { recursive: true });
  fs.symlinkSync('../../devices/virtual/block/vdz', path.join(sys, 'dev', 'block', '254:0'));
  fs.symlinkSync('../../devices/virtual/block/vdz/vdz1', path.join(sys, 'dev', 'block', '254:1'));
  t.same(await blockDeviceGeometry(254, 0, sys), { sizeBytes: 1000000 * 512, sectorSize: 4096 });
  t.same(await blockDeviceGeometry(254, 1, sys), { sizeBytes: 2048 * 512, sectorSize: 4096 }, 'size stays in 512-byte units');
  t.equal(await errnoOf(blockDeviceGeometry(254, 9, sys)), 'ENOENT');
});

t.test('a loop device opens as a block device with sysfs size and its logical sector size', async (t) => {
  const file = sparseImage(t, 8 * MiB);
  let loop: string;
  try {
    loop = execFileSync('losetup', ['--find', '--show', '--sector-size', '4096', file], { encoding: 'utf8' }).trim();
  } catch (err) {
    t.plan(0, `losetup unavailable here: ${String(err).split("\n")[0]}`);
    return;
  }
  t.teardown(() => execFileSync('losetup', ['-d', loop]));
  t.comment(`loop device ${loop}`);
  const dev = await FileDevice.open(loop);
  t.equal(dev.kind, 'block');
  t.equal(dev.size, 8 * MiB);
  t.equal(dev.sectorSize, 4096);
  t.match(dev.name, /^block device \/dev\/loop/);
  const data = pattern(8192, 3);
  await dev.write(data, 4096);
  await dev.flush();
  t.same(await dev.read(4096, 8192), data);
  t.equal(await errnoOf(dev.read(8 * MiB - 512, 1024)), 'EIO', 'past the end of the block device');
  await dev.close();
  const ro = await FileDevice.open(loop, { readOnly: true, sizeBytes: 1 * MiB });
  t.equal(ro.size, 1 * MiB, 'a smaller size is a prefix of the device');
  t.same(await ro.read(4096, 8192), data);
  await ro.close();
  t.equal(await errnoOf(FileDevice.open(loop, { sizeBytes: 9 * MiB })), 'EINVAL', 'never larger than the device');
});

t.test('small writes land before the call returns, those past the per-turn budget on a later turn, larger ones in the threadpool', async (t) => {
  const file = sparseImage(t, 16 * MiB);
  const dev = await FileDevice.open(file);
  // Every threadpool thread waits on a FIFO until released: a write that went to the threadpool cannot have
  // landed when the checks below read the file, so only a write done on this thread can be there.
  const release = occupyThreadpool(t);
  const inFile = (offset: number, length: number) => {
    const fd = fs.openSync(file, 'r');
    const now = Buffer.alloc(length);
    fs.readSync(fd, now, 0, length, offset);
    fs.closeSync(fd);
    return now;
  };
  const small = pattern(4096, 1);
  const pending = dev.write(small, 8192);
  t.ok(inFile(8192, 4096).equals(small), 'a 4 KiB write is in the file when write() returns');
  // So is a 1 MiB one (a write-back run, a large direct or allocating write): the threadpool's two wake-ups cost
  // more than the copy into the host's page cache.
  const run = pattern(MiB, 7);
  const pendingRun = dev.write(run, 4 * MiB);
  t.ok(inFile(4 * MiB, MiB).equals(run), 'a 1 MiB write is in the file when write() returns');
  const past = pattern(2 * MiB, 8);
  const pendingPast = dev.write(past, 10 * MiB);
  t.notOk(inFile(10 * MiB, 2 * MiB).equals(past), 'a 2 MiB write goes to the threadpool');
  // 4 KiB + 1 MiB done on this thread so far in this turn; of three more 1 MiB writes, the third would pass 4 MiB.
  const more = [0, 1, 2].map((i) => ({ offset: (5 + i) * MiB, data: pattern(MiB, 20 + i) }));
  const pendingMore = more.map((w) => dev.write(w.data, w.offset));
  t.same(more.map((w) => inFile(w.offset, MiB).equals(w.data)), [true, true, false],
    'within one event-loop turn, writes past 4 MiB wait');
  // The threadpool is still taken: the deferred write can only land if it is done on this thread.
  const late = await Promise.race([pendingMore[2].then(() => 'done'), new Promise((resolve) => setTimeout(resolve, 5000, 'waiting'))]);
  t.equal(late, 'done', 'the write past the budget is done on a later turn, on this thread, not in the threadpool');
  t.ok(inFile(7 * MiB, MiB).equals(more[2].data), 'and is in the file');
  t.notOk(inFile(10 * MiB, 2 * MiB).equals(past), 'while the 2 MiB write still waits for the threadpool');
  release();
  await Promise.all([pending, pendingRun, pendingPast, ...pendingMore]);
  t.ok(inFile(10 * MiB, 2 * MiB).equals(past), 'which lands once the threadpool is free');
  // 200 small writes in one turn (more than the budget) and a large one: all land.
  const many = Array.from({ length: 200 }, (_, i) => ({ offset: MiB + i * 8192, data: pattern(512 + i, i + 2) }));
  const big = { offset: 8 * MiB, data: pattern(3 * MiB, 999) };
  await Promise.all([...many, big].map((w) => dev.write(w.data, w.offset)));
  for (const w of [...many, big]) {
    if (!(await dev.read(w.offset, w.data.length)).equals(w.data)) t.fail(`write at ${w.offset} did not land`);
  }
  t.pass('every write of the burst reads back');
  await dev.close();
  // A failing synchronous write rejects like an asynchronous one (EBADF on a read-only descriptor).
  const ro = fs.openSync(file, 'r');
  await t.rejects(nodeFileSyscalls.write(ro, small, 0, 4096, 0), { code: 'EBADF' }, 'a failed small write rejects with its errno');
  fs.closeSync(ro);
});

function addonMissing(): string | false {
  const r = nativeAddon(['preadNoWait']);
  return 'failure' in r ? `no native addon: ${r.failure}` : false;
}

/**
 * Drops `file`'s pages from the host's page cache (written back first, so they are clean and can go), until
 * fincore(1) counts none resident: the kernel skips pages still in another CPU's LRU batch, and under load one
 * drop once left a page cached. (Not probed with a RWF_NOWAIT read: a miss starts readahead, which brings the
 * page back.)
 */
function evictFromHostCache(file: string): void {
  for (let attempt = 1; ; attempt++) {
    execFileSync('sync', [file]);
    execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
    const resident = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim();
    if (resident === '0') return;
    if (attempt === 20) throw new Error(`the host keeps ${resident} bytes of ${file} cached after ${attempt} drops`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

t.test('reads the host\'s page cache holds are done at once on this thread; cold and long ones in the threadpool', {
  skip: addonMissing(),
}, async (t) => {
  const file = sparseImage(t, 16 * MiB);
  const data = pattern(2 * MiB, 5);
  fs.writeFileSync(file, data);
  fs.truncateSync(file, 4 * MiB); // the device is 16 MiB: past 4 MiB the image ends and reads as zeros
  const dev = await FileDevice.open(file, { sizeBytes: 16 * MiB });
  // Every threadpool thread waits on a FIFO until released: a read that needs the threadpool cannot finish
  // before release(), so a read that finishes was done on this thread.
  const release = occupyThreadpool(t);
  const within = (p: Promise<Buffer>, ms: number) => Promise.race([p, new Promise<'waiting'>((resolve) => setTimeout(resolve, ms, 'waiting'))]);

  const hot = await within(dev.read(8192, 4096), 5000);
  t.ok(Buffer.isBuffer(hot) && hot.equals(data.subarray(8192, 12288)), 'a 4 KiB read of cached bytes is answered with the threadpool taken');
  const unaligned = await within(dev.read(MiB + 100, 3000), 5000);
  t.ok(Buffer.isBuffer(unaligned) && unaligned.equals(data.subarray(MiB + 100, MiB + 3100)), 'so is an unaligned one');
  const tail = await within(dev.read(4 * MiB - 2048, 4096), 5000);
  t.ok(Buffer.isBuffer(tail) && tail.equals(Buffer.concat([Buffer.alloc(2048), Buffer.alloc(2048)])),
    'a read across the end of a sparse image: the hole and the zeros past the end, at once');
  t.same(dev.readPaths, { cached: 4, threadpool: 0 }, 'all counted as served from the cache (the last in two calls: to the end, then the end)');

  const long = dev.read(0, 128 * 1024);
  const cold = (() => {
    evictFromHostCache(file);
    return dev.read(1536 * 1024, 4096);
  })();
  t.equal(await within(cold, 300), 'waiting', 'a read of bytes the host no longer caches waits for the threadpool');
  t.equal(await within(long, 1), 'waiting', 'so does a read longer than 64 KiB, cached or not');
  release();
  t.ok((await cold).equals(data.subarray(1536 * 1024, 1536 * 1024 + 4096)), 'the cold read, once the threadpool is free');
  t.ok((await long).equals(data.subarray(0, 128 * 1024)), 'the long read');
  t.same(dev.readPaths, { cached: 4, threadpool: 2 }, 'both counted as threadpool reads');
  await dev.close();
});
