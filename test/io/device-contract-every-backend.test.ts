/**
 * One suite, every backend: what the engine may assume of any Device
 * (positional unaligned I/O, zeros where nothing was written, range and
 * argument errors, read-only refusal, close waits for requests in flight,
 * a gathered write lands as the write of its buffers joined would).
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Device } from '../../io/device';
import { FaultyDevice } from '../../io/faultyDevice';
import { FileDevice } from '../../io/fileDevice';
import { MemoryDevice } from '../../io/memoryDevice';
import { errnoOf, pattern, scratchDir } from './helpers';

const SIZE = 4 * 1024 * 1024;

interface Backend {
  name: string;
  open(t: tap.Test, readOnly: boolean): Promise<Device>;
}

async function sparseImage(t: tap.Test, label: string): Promise<string> {
  const file = path.join(scratchDir(t, label), 'vol.img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, SIZE);
  return file;
}

const backends: Backend[] = [
  { name: 'memory', open: async (_t, readOnly) => new MemoryDevice(SIZE, { readOnly }) },
  { name: 'file', open: async (t, readOnly) => FileDevice.open(await sparseImage(t, 'contract'), { readOnly }) },
  {
    name: 'faulty(memory, volatile, latency)',
    open: async (_t, readOnly) =>
      new FaultyDevice(new MemoryDevice(SIZE, { readOnly }), { seed: 7, latency: { minMs: 0, maxMs: 3 } }),
  },
  {
    name: 'faulty(file, writethrough)',
    open: async (t, readOnly) =>
      new FaultyDevice(await FileDevice.open(await sparseImage(t, 'contract'), { readOnly }), { cache: 'writethrough' }),
  },
];

for (const backend of backends) {
  t.test(`${backend.name}: unaligned positional writes read back, untouched bytes read as zeros`, async (t) => {
    const dev = await backend.open(t, false);
    t.equal(dev.size, SIZE);
    t.equal(dev.sectorSize, 512);
    t.equal(dev.readOnly, false);
    const a = pattern(1000, 1);
    const b = pattern(70000, 2);
    await Promise.all([dev.write(a, 3), dev.write(b, 100003)]);
    t.same(await dev.read(3, 1000), a);
    t.same(await dev.read(100003, 70000), b);
    const around = await dev.read(0, 1010);
    t.same(around.subarray(0, 3), Buffer.alloc(3), 'zeros before the write');
    t.same(around.subarray(1003), Buffer.alloc(7), 'zeros after the write');
    const into = Buffer.alloc(500);
    await dev.readInto(into, 100003 + 1000);
    t.same(into, b.subarray(1000, 1500));
    t.same(await dev.read(SIZE - 10, 10), Buffer.alloc(10), 'the last bytes of the device read as zeros');
    await dev.write(Buffer.from('end'), SIZE - 3);
    t.same((await dev.read(SIZE - 3, 3)).toString(), 'end', 'the very end is writable');
    t.same(await dev.read(5, 0), Buffer.alloc(0), 'a zero-length read is fine');
    await dev.flush();
    await dev.close();
  });

  t.test(`${backend.name}: ranges outside the device fail EIO, malformed arguments EINVAL`, async (t) => {
    const dev = await backend.open(t, false);
    t.equal(await errnoOf(dev.read(SIZE - 10, 20)), 'EIO', 'read across the end');
    t.equal(await errnoOf(dev.read(SIZE, 1)), 'EIO', 'read at the end');
    t.equal(await errnoOf(dev.write(Buffer.alloc(20), SIZE - 10)), 'EIO', 'write across the end');
    t.equal(await errnoOf(dev.read(-1, 10)), 'EINVAL', 'negative offset');
    t.equal(await errnoOf(dev.read(1.5, 10)), 'EINVAL', 'fractional offset');
    t.equal(await errnoOf(dev.read(0, -1)), 'EINVAL', 'negative length');
    t.equal(await errnoOf(dev.read(Number.NaN, 1)), 'EINVAL', 'NaN offset');
    await dev.close();
  });

  t.test(`${backend.name}: writev lands its buffers back to back, checked as one write`, async (t) => {
    const dev = await backend.open(t, false);
    // Odd sizes (a short write can end inside any of them), one empty, and views into a larger buffer.
    const big = pattern(20000, 5);
    const bufs = [pattern(4096, 1), pattern(1, 2), Buffer.alloc(0), big.subarray(7, 9007), pattern(70001, 3), big.subarray(9007)];
    const joined = Buffer.concat(bufs);
    await dev.writev(bufs, 513);
    t.same(await dev.read(513, joined.length), joined, 'the bytes are the buffers joined');
    t.same(await dev.read(0, 513), Buffer.alloc(513), 'nothing before');
    t.same(await dev.read(513 + joined.length, 100), Buffer.alloc(100), 'nothing after');
    await dev.writev([pattern(10, 9)], 0);
    t.same(await dev.read(0, 10), pattern(10, 9), 'one buffer is a plain write');
    t.equal(await errnoOf(dev.writev([Buffer.alloc(10), Buffer.alloc(10)], SIZE - 15)), 'EIO', 'the whole request must fit');
    t.same(await dev.read(SIZE - 15, 15), Buffer.alloc(15), 'and nothing of a refused request lands');
    t.equal(await errnoOf(dev.writev([Buffer.alloc(1), 'x' as unknown as Buffer], 0)), 'EINVAL', 'a non-buffer');
    t.equal(await errnoOf(dev.writev([Buffer.alloc(1), Buffer.alloc(1)], -1)), 'EINVAL', 'a negative offset');
    await dev.close();
  });

  t.test(`${backend.name}: a read-only device refuses writes with EROFS and still reads`, async (t) => {
    const dev = await backend.open(t, true);
    t.equal(dev.readOnly, true);
    t.equal(await errnoOf(dev.write(Buffer.alloc(10), 0)), 'EROFS');
    t.equal(await errnoOf(dev.writev([Buffer.alloc(10), Buffer.alloc(10)], 0)), 'EROFS');
    t.same(await dev.read(0, 10), Buffer.alloc(10));
    await dev.close();
  });

  t.test(`${backend.name}: close waits for requests in flight, later requests fail EBADF`, async (t) => {
    const dev = await backend.open(t, false);
    const writes = Array.from({ length: 32 }, (_, i) => dev.write(pattern(4096, i), i * 8192 + 1));
    const closing = dev.close();
    await Promise.all(writes);
    await closing;
    t.equal(await errnoOf(dev.read(0, 1)), 'EBADF');
    t.equal(await errnoOf(dev.write(Buffer.alloc(1), 0)), 'EBADF');
    t.equal(await errnoOf(dev.flush()), 'EBADF');
    await dev.close(); // idempotent
  });
}
