/**
 * fsx over the engine, several files at once through one small page cache
 * (fixed, printed seed; SEED= replays). Each file runs a random sequence of
 * buffered and direct (aligned and unaligned) reads and writes, truncates up
 * and down, hole punches, zero ranges, preallocations and fsyncs, one at a
 * time, against a model of its bytes (fsxModel.ts); every read is checked at
 * once. The files run concurrently over a device whose random latency
 * reorders completions, and the cache holds 16 pages: background write-back
 * runs all the time, and one file's reads and writes evict another's pages
 * while their write-back, read-ins and direct writes are in flight. At the
 * end every file is read back, then again after a remount, fsck.ocfs2 -fn
 * must find the volume clean, and the kernel's own OCFS2 driver must read
 * each file's size and bytes as the model has them (kernel-run, where it
 * can run).
 *
 * Four volumes: sub-page blocks, clusters of many pages with metaecc, a
 * volume without sparse files or unwritten extents (no fallocate there), and
 * files small enough to live inline in their inodes and be converted.
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
import { createHash } from 'node:crypto';
import { rngFrom, type Rng } from '../lib/seed';
import { kernelRun, kernelUnavailable } from '../lib/kernel';
import { O_RDWR, O_DIRECT, ROOT_CALLER } from './harness';
import { FALLOCATE_OPS, FileModel, nextStep, type FsxOp } from './fsxModel';
import { engineStep, fsxVolume } from './fsxEngine';

const FILES = Number(process.env.FSX_FILES ?? 4);
const OPS = Number(process.env.FSX_OPS ?? 400);
/** The smallest cache the engine takes. */
const CACHE_BYTES = 16 * 4096;

interface EngineFile {
  model: FileModel;
  ino: number;
  fh: number;
  dfh: number;
}

interface Case {
  name: string;
  blockSize: number;
  clusterSize: number;
  features: string;
  /** Ops the volume refuses (EOPNOTSUPP) by design. */
  without?: ReadonlySet<FsxOp>;
  /** Largest file and largest single I/O (default 192 KiB and 40 KiB). */
  maxBytes?: number;
  maxIo?: number;
}

const CASES: Case[] = [
  // Blocks smaller than a page: write-back and read-ins round to blocks inside pages.
  { name: '1 KiB blocks, 4 KiB clusters', blockSize: 1024, clusterSize: 4096, features: 'noindexed-dirs,norefcount' },
  // Clusters of many pages: partial-cluster zeroing at every punch, zero range and extension; checksummed metadata.
  { name: '4 KiB blocks, 64 KiB clusters, metaecc', blockSize: 4096, clusterSize: 65536, features: 'noindexed-dirs,norefcount,metaecc' },
  // No holes and no unwritten extents: every extension allocates and zeros up to the write.
  {
    name: 'not sparse, no unwritten extents', blockSize: 1024, clusterSize: 4096, features: 'noindexed-dirs,norefcount,nosparse,nounwritten',
    without: FALLOCATE_OPS,
  },
  // Files of a few KiB: inline data in the inode, converted to an extent list when a write outgrows it.
  {
    name: 'small files, inline data', blockSize: 4096, clusterSize: 4096, features: 'noindexed-dirs,norefcount,inline-data',
    maxBytes: 8192, maxIo: 3000,
  },
];

for (const c of CASES) t.test(`fsx: files sharing a 16-page cache keep every byte (${c.name})`, async (t) => {
  const MAX_BYTES = c.maxBytes ?? 192 * 1024;
  const MAX_IO = c.maxIo ?? 40 * 1024;
  const rng = rngFrom(t);
  const h = await fsxVolume(t, rng, { blockSize: c.blockSize, clusterSize: c.clusterSize, features: c.features });
  let vol = h.vol;

  const files: EngineFile[] = [];
  for (let k = 0; k < FILES; k++) {
    const model = new FileModel(`fsx${k}`, MAX_BYTES);
    const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(model.name), 0o644, O_RDWR, ROOT_CALLER);
    files.push({ model, ino: attr.ino, fh, dfh: await vol.open(attr.ino, O_RDWR | O_DIRECT) });
  }

  const counts = new Map<FsxOp, number>();
  const failures: string[] = [];
  const fail = (f: EngineFile, what: string) => failures.push(`${f.model.name}: ${what}; last ops: ${f.model.recent()}`);

  const worker = async (f: EngineFile, r: Rng): Promise<void> => {
    const m = f.model;
    for (let i = 0; i < OPS && failures.length === 0; i++) {
      const s = nextStep(r, m, { block: c.blockSize, maxIo: MAX_IO, without: c.without });
      counts.set(s.op, (counts.get(s.op) ?? 0) + 1);
      const result = await engineStep(vol, f, s);
      if (s.data && result !== s.length) fail(f, `${s.op} ${s.offset}+${s.length} wrote ${String(result)}`);
      if (result instanceof Buffer) {
        const wrong = m.checkRead(s, result);
        if (wrong) fail(f, wrong);
      }
      m.apply(s);
      if (process.env.FSX_CHECK_ALL) {
        const all = await vol.read(f.ino, f.fh, 0, MAX_BYTES);
        const at = m.differs(0, all, m.size);
        if (at >= 0) fail(f, `whole file after op ${i}: byte ${at} is ${all[at]}, model ${m.bytes[at]}`);
      }
    }
  };

  await Promise.all(files.map((f) => worker(f, rng.fork())));
  t.comment(`ops: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}; evictions ${vol.pages.stats.evictions}`);
  t.same(failures, [], 'every read matched the model while the files ran');

  for (const f of files) {
    const got = await vol.read(f.ino, f.fh, 0, MAX_BYTES);
    t.equal(f.model.differs(0, got, f.model.size), -1, `${f.model.name} (${f.model.size} bytes) reads back as the model`);
    await vol.release(f.ino, f.fh);
    await vol.release(f.ino, f.dfh);
  }
  vol = await h.remount({ cacheSizeBytes: CACHE_BYTES });
  for (const { model } of files) {
    const attr = await vol.lookup(vol.rootIno, Buffer.from(model.name));
    t.equal(attr.size, model.size, `${model.name}: size after remount`);
    const fh = await vol.open(attr.ino, O_RDWR);
    const got = await vol.read(attr.ino, fh, 0, MAX_BYTES);
    t.equal(model.differs(0, got, model.size), -1, `${model.name} reads back as the model after remount`);
    await vol.release(attr.ino, fh);
  }
  await h.finish();

  // The kernel's own driver reads what the engine left (sizes and bytes), where kernel-run can run.
  if (kernelUnavailable()) return;
  const r = await kernelRun(h.image, files.map(({ model }) => `echo "${model.name} $(wc -c < ${model.name}) $(sha256sum < ${model.name})"`).join('\n'),
    { readOnly: true });
  t.equal(r.code, 0, 'the kernel mounted the volume and ran the script', { output: r.output });
  const seen = new Map(r.scriptOutput.split('\n').map((l) => l.trim().split(/\s+/)).filter((w) => w.length >= 3)
    .map(([name, size, sum]) => [name, `${size} ${sum}`]));
  for (const { model } of files) {
    t.equal(seen.get(model.name), `${model.size} ${createHash('sha256').update(model.content()).digest('hex')}`,
      `the kernel reads ${model.name} as the model: size and bytes`);
  }
});
