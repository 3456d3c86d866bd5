/**
 * fsx over the engine, several files at once through one small page cache
 * (fixed, printed seed; SEED= replays). Each file runs a random sequence of
 * buffered and direct (aligned and unaligned) reads and writes, truncates up
 * and down, hole punches, zero ranges, preallocations and fsyncs, one at a
 * time, against a model of its bytes; every read is checked at once. The
 * files run concurrently over a device whose random latency reorders
 * completions, and the cache holds 16 pages: background write-back runs all
 * the time, and one file's reads and writes evict another's pages while
 * their write-back, read-ins and direct writes are in flight. At the end
 * every file is read back, then again after a remount, and fsck.ocfs2 -fn
 * must find the volume clean.
 *
 * Ops on one file never overlap, so the model is exact: any difference is
 * a lost or stale byte. FSX_OPS (ops per file), FSX_FILES and FSX_CHECK_ALL=1
 * (read the whole file back after every op, and name the op that broke it)
 * help chase a failure.
 *
 * What it found: write-back marking pages clean before the device write
 * landed (one file's reads evicted them, and the next read of the file
 * returned the old bytes from the device); and readers copying read-in pages
 * out of the cache after the read-in, by which time another read-in landing
 * in the same turn had been given their memory (test/iopath/
 * pages-under-writeback-stay-cached and read-in-longer-than-the-cache pin
 * each down deterministically).
 */
import t from 'tap';
import path from 'node:path';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { rngFrom, type Rng } from '../lib/seed';
import { MemoryDevice } from '../../io/memoryDevice';
import { FaultyDevice } from '../../io/faultyDevice';
import { Volume } from '../../fs/volume';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE } from '../../fs/fallocate';
import { O_RDWR, O_DIRECT, ROOT_CALLER } from './harness';

const BLOCK = 1024;
const FILES = Number(process.env.FSX_FILES ?? 4);
const OPS = Number(process.env.FSX_OPS ?? 400);
const MAX_BYTES = 192 * 1024;
const MAX_IO = 40 * 1024;
/** The smallest cache the engine takes. */
const CACHE_BYTES = 16 * 4096;

type OpName = 'bwrite' | 'dwrite' | 'bread' | 'dread' | 'truncate' | 'punch' | 'zero' | 'prealloc' | 'fsync';
const WEIGHTS: [OpName, number][] = [
  ['bwrite', 26], ['dwrite', 12], ['bread', 22], ['dread', 10], ['truncate', 8], ['punch', 7], ['zero', 5], ['prealloc', 4],
  ['fsync', 6],
];

function pickOp(r: Rng): OpName {
  let x = r.int(1, WEIGHTS.reduce((n, [, w]) => n + w, 0));
  for (const [name, w] of WEIGHTS) if ((x -= w) <= 0) return name;
  return 'bread';
}

interface FileModel {
  name: string;
  ino: number;
  fh: number;
  dfh: number;
  bytes: Buffer;
  size: number;
}

/** The model's bytes [0, size). */
const content = (f: FileModel): Buffer => f.bytes.subarray(0, f.size);

function setSize(f: FileModel, size: number): void {
  // Bytes past a shrink read as zeros after a later extension.
  if (size < f.size) f.bytes.fill(0, size, f.size);
  f.size = size;
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

t.test('fsx: files sharing a 16-page cache keep every byte', async (t) => {
  const rng = rngFrom(t);
  const image = path.join(path.dirname(await makeImage(t, {
    sizeBytes: 64 << 20, blockSize: BLOCK, clusterSize: 4096, features: 'noindexed-dirs,norefcount',
  })), 'ocfs2.img');
  const mem = await MemoryDevice.fromFile(image);
  const dev = new FaultyDevice(mem, { seed: rng.next(), latency: { minMs: 0, maxMs: 3 }, cache: 'writethrough', closeInner: false });
  let vol = await Volume.mount(dev, { readOnly: false, cacheSizeBytes: CACHE_BYTES });
  t.teardown(() => vol.unmount().catch(() => {}));

  const files: FileModel[] = [];
  for (let k = 0; k < FILES; k++) {
    const name = `fsx${k}`;
    const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(name), 0o644, O_RDWR, ROOT_CALLER);
    files.push({ name, ino: attr.ino, fh, dfh: await vol.open(attr.ino, O_RDWR | O_DIRECT), bytes: Buffer.alloc(MAX_BYTES), size: 0 });
  }

  const counts = new Map<OpName, number>();
  let stamp = 0;
  const failures: string[] = [];
  const history: string[] = [];

  const check = (f: FileModel, what: string, off: number, got: Buffer): void => {
    const want = content(f).subarray(off, off + got.length);
    const at = firstDifference(got, want);
    if (at >= 0 && failures.length < 5) {
      failures.push(`${f.name} ${what} at ${off}+${got.length}: byte ${off + at} is ${got[at]}, model ${want[at]} (size ${f.size})`);
    }
  };

  const worker = async (f: FileModel, r: Rng): Promise<void> => {
    for (let i = 0; i < OPS && failures.length === 0; i++) {
      const op = pickOp(r);
      counts.set(op, (counts.get(op) ?? 0) + 1);
      const off = r.int(0, MAX_BYTES - 1);
      const len = Math.min(r.int(1, MAX_IO), MAX_BYTES - off);
      switch (op) {
        case 'bwrite':
        case 'dwrite': {
          let o = off;
          let n = len;
          if (op === 'dwrite' && r.bool()) {
            // Block-aligned half the time: the direct path proper; unaligned ones take the unaligned-write rule.
            o -= o % BLOCK;
            n = Math.max(BLOCK, n - (n % BLOCK));
            if (o + n > MAX_BYTES) n = MAX_BYTES - o;
          }
          const data = Buffer.alloc(n, (++stamp % 251) + 1);
          if (n >= 4) data.writeUInt32LE(stamp, 0);
          const wrote = await vol.write(f.ino, op === 'dwrite' ? f.dfh : f.fh, o, data);
          if (wrote !== n) failures.push(`${f.name} ${op} ${o}+${n} wrote ${wrote}`);
          if (o > f.size) f.bytes.fill(0, f.size, o);
          data.copy(f.bytes, o);
          f.size = Math.max(f.size, o + n);
          break;
        }
        case 'bread':
        case 'dread': {
          const o = f.size && r.bool(0.8) ? r.int(0, f.size - 1) : off;
          const got = await vol.read(f.ino, op === 'dread' ? f.dfh : f.fh, o, len);
          const want = Math.max(0, Math.min(len, f.size - o));
          if (got.length !== want) failures.push(`${f.name} ${op} ${o}+${len} returned ${got.length} bytes, model ${want}`);
          else check(f, op, o, got);
          break;
        }
        case 'truncate': {
          const size = r.bool(0.3) ? 0 : r.int(0, MAX_BYTES);
          await vol.setattr(f.ino, { size });
          if (size > f.size) f.bytes.fill(0, f.size, size);
          setSize(f, size);
          break;
        }
        case 'punch': {
          if (off >= f.size) break;
          await vol.fallocate(f.ino, f.fh, off, len, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
          f.bytes.fill(0, off, Math.min(off + len, f.size));
          break;
        }
        case 'zero': {
          await vol.fallocate(f.ino, f.fh, off, len, FALLOC_FL_ZERO_RANGE);
          if (off > f.size) f.bytes.fill(0, f.size, off);
          f.bytes.fill(0, off, off + len);
          f.size = Math.max(f.size, off + len);
          break;
        }
        case 'prealloc': {
          // Within the file (KEEP_SIZE past its end is refused: see fs/fallocate.ts), or extending it.
          const keep = r.bool() && off + len <= f.size;
          await vol.fallocate(f.ino, f.fh, off, len, keep ? FALLOC_FL_KEEP_SIZE : 0);
          if (!keep && off + len > f.size) {
            f.bytes.fill(0, f.size, off + len);
            f.size = off + len;
          }
          break;
        }
        case 'fsync':
          await vol.fsync(f.ino, f.fh, false);
          break;
      }
      const entry = `${f.name} #${i} ${op} off=${off} len=${len} size=${f.size} stamp=${stamp}`;
      history.push(entry);
      if (process.env.FSX_CHECK_ALL) {
        const all = await vol.read(f.ino, f.fh, 0, MAX_BYTES);
        const at = firstDifference(all, content(f));
        if (at >= 0) failures.push(`after ${entry}: byte ${at} is ${all[at]}, model ${content(f)[at]}; ` + history.filter((h) => h.startsWith(f.name + ' ')).slice(-8).join(' | '));
      }
    }
  };

  await Promise.all(files.map((f) => worker(f, rng.fork())));
  t.comment(`ops: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}; evictions ${vol.pages.stats.evictions}`);
  t.same(failures, [], 'every read matched the model while the files ran');

  for (const f of files) {
    const got = await vol.read(f.ino, f.fh, 0, MAX_BYTES);
    const at = firstDifference(got, content(f));
    t.equal(at, -1, `${f.name} (${f.size} bytes) reads back as the model`, { got: got.length, byte: got[at], model: content(f)[at] });
    await vol.release(f.ino, f.fh);
    await vol.release(f.ino, f.dfh);
  }
  await vol.unmount();
  // From the memory copy as the unmount left it, through a fresh device (unmount closed the first).
  vol = await Volume.mount(new FaultyDevice(mem, { cache: 'writethrough', closeInner: false }), { readOnly: false, cacheSizeBytes: CACHE_BYTES });
  for (const f of files) {
    const attr = await vol.lookup(vol.rootIno, Buffer.from(f.name));
    t.equal(attr.size, f.size, `${f.name}: size after remount`);
    const fh = await vol.open(attr.ino, O_RDWR);
    const got = await vol.read(attr.ino, fh, 0, MAX_BYTES);
    t.equal(firstDifference(got, content(f)), -1, `${f.name} reads back as the model after remount`);
    await vol.release(attr.ino, fh);
  }
  await vol.unmount();
  await mem.saveTo(image);
  await assertFsckClean(t, image);
});
