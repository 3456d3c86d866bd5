/**
 * MemoryDevice: sparse (only written chunks cost memory), copies in and out
 * (a caller's buffer is never aliased), loads from and saves to image files.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MemoryDevice } from '../../io/memoryDevice';
import { pattern, scratchDir } from './helpers';

const GiB = 1024 * 1024 * 1024;

t.test('a multi-GiB device costs only the chunks that were written', async (t) => {
  const dev = new MemoryDevice(8 * GiB);
  t.equal(dev.allocatedBytes, 0);
  await dev.write(pattern(100, 1), 5 * GiB + 65530); // straddles two 64 KiB chunks
  t.equal(dev.allocatedBytes, 2 * 64 * 1024);
  t.same(await dev.read(5 * GiB + 65530, 100), pattern(100, 1));
  t.same(await dev.read(7 * GiB, 8), Buffer.alloc(8));
  t.equal(dev.allocatedBytes, 2 * 64 * 1024, 'reads allocate nothing');
});

t.test('writes copy the caller buffer and reads return fresh buffers', async (t) => {
  const dev = new MemoryDevice(1 << 20);
  const buf = Buffer.from('original');
  await dev.write(buf, 10);
  buf.write('CHANGED!');
  t.equal((await dev.read(10, 8)).toString(), 'original');
  const r = await dev.read(10, 8);
  r.write('xxxxxxxx');
  t.equal(dev.peek(10, 8).toString(), 'original');
});

t.test('peek and poke bypass the request path; poke works on a read-only device', async (t) => {
  const dev = new MemoryDevice(4096, { readOnly: true, sectorSize: 4096, name: 'fixture' });
  t.equal(dev.sectorSize, 4096);
  t.equal(dev.name, 'fixture');
  dev.poke(Buffer.from('seeded'), 100);
  t.equal((await dev.read(100, 6)).toString(), 'seeded');
  t.equal(dev.stats().writes, 0);
  t.throws(() => dev.peek(4090, 10), /past/);
  t.throws(() => dev.poke(Buffer.alloc(10), 4090), /outside/);
});

t.test('an image file round-trips through fromFile and saveTo, and stays sparse on disk', async (t) => {
  const dir = scratchDir(t, 'memdev');
  const src = path.join(dir, 'src.img');
  const image = Buffer.alloc(4 << 20);
  pattern(3000, 4).copy(image, 1 << 20);
  fs.writeFileSync(src, image);
  const dev = await MemoryDevice.fromFile(src);
  t.equal(dev.size, 4 << 20);
  t.equal(dev.allocatedBytes, 64 * 1024, 'zero chunks of the image are not stored');
  await dev.write(Buffer.from('new'), (4 << 20) - 3);
  const out = path.join(dir, 'out.img');
  await dev.saveTo(out);
  const saved = fs.readFileSync(out);
  t.equal(saved.length, 4 << 20);
  t.same(saved.subarray(1 << 20, (1 << 20) + 3000), pattern(3000, 4));
  t.equal(saved.subarray(-3).toString(), 'new');
  t.ok(fs.statSync(out).blocks * 512 < 1 << 20, 'saved image is sparse');
});
