/**
 * fsx on a volume too small for its files (fixed, printed seed; SEED=
 * replays): four files that could grow to 4 MiB each on a 16 MiB volume,
 * written in pieces of up to 1 MiB, so writes keep running out of space
 * while others punch and truncate space free again. A write that runs out
 * part-way writes what got space and says how much (a short write); one that
 * gets none fails with ENOSPC and changes nothing; no other failure is
 * allowed. Every read is checked against the model, which takes exactly the
 * bytes each write reported. At the end every file reads back as its model,
 * deleting them gives every cluster back, and fsck.ocfs2 -fn finds the
 * volume clean. (Zero range and growing preallocation are left out: when
 * they run out of space part-way, how much of the range they zeroed or
 * extended is not something their caller learns.)
 */
import t from 'tap';
import { rngFrom, type Rng } from '../lib/seed';
import { errnoOf } from '../../fs/errors';
import { O_RDWR, O_DIRECT, ROOT_CALLER } from './harness';
import { FileModel, nextStep, type FsxOp } from './fsxModel';
import { engineStep, fsxVolume, type EngineHandles } from './fsxEngine';
import { allocCounts, assertCountsBack } from '../rw/helpers';

const MiB = 1024 * 1024;
const FILES = 4;
const OPS = Number(process.env.FSX_OPS ?? 300);
const MAX_BYTES = 4 * MiB;
const MAX_IO = MiB;
const RISKY: ReadonlySet<FsxOp> = new Set(['zero']);

interface SpaceFile extends EngineHandles {
  model: FileModel;
}

t.test('fsx out of space: short writes and ENOSPC only, every byte as reported, all space back', async (t) => {
  const rng = rngFrom(t);
  const h = await fsxVolume(t, rng, { sizeBytes: 16 * MiB, journalBytes: 4 * MiB, maxLatencyMs: 1, volume: { cacheSizeBytes: MiB } });
  let vol = h.vol;
  const before = await allocCounts(vol);
  const files: SpaceFile[] = [];
  for (let k = 0; k < FILES; k++) {
    const model = new FileModel(`full${k}`, MAX_BYTES);
    const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(model.name), 0o644, O_RDWR, ROOT_CALLER);
    files.push({ model, ino: attr.ino, fh, dfh: await vol.open(attr.ino, O_RDWR | O_DIRECT) });
  }

  const failures: string[] = [];
  const outcomes = { short: 0, enospc: 0, ok: 0 };
  const worker = async (f: SpaceFile, r: Rng): Promise<void> => {
    const m = f.model;
    for (let i = 0; i < OPS && failures.length === 0; i++) {
      const s = nextStep(r, m, { block: 1024, maxIo: MAX_IO, without: RISKY });
      // Preallocation only inside the file: one that grows it may grow it part-way.
      if (s.op === 'prealloc' && !s.keep) s.op = 'fsync';
      let result: Buffer | number | void;
      try {
        result = await engineStep(vol, f, s);
      } catch (err) {
        if (errnoOf(err) !== 'ENOSPC') {
          failures.push(`${m.name} ${s.op} ${s.offset}+${s.length}: ${(err as Error).message}; last ops: ${m.recent()}`);
          return;
        }
        outcomes.enospc++;
        // Nothing changed; a write that got no space at all says so with ENOSPC.
        m.note(`${s.op} ${s.offset}+${s.length}: ENOSPC`);
        continue;
      }
      if (s.data && typeof result === 'number' && result < s.length) {
        outcomes.short++;
        s.data = s.data.subarray(0, result);
        s.length = result;
      } else {
        outcomes.ok++;
      }
      if (result instanceof Buffer) {
        const wrong = m.checkRead(s, result);
        if (wrong) failures.push(`${m.name}: ${wrong}; last ops: ${m.recent()}`);
      }
      m.apply(s);
    }
  };
  await Promise.all(files.map((f) => worker(f, rng.fork())));
  t.comment(`outcomes: ${outcomes.ok} done whole, ${outcomes.short} short writes, ${outcomes.enospc} ENOSPC`);
  t.same(failures, [], 'every operation did all, part (a write) or nothing (ENOSPC), and every read matched');
  t.ok(outcomes.short + outcomes.enospc > 0, 'the volume did run out of space');

  for (const f of files) {
    const got = await vol.read(f.ino, f.fh, 0, MAX_BYTES);
    t.equal(f.model.differs(0, got, f.model.size), -1, `${f.model.name} (${f.model.size} bytes) reads back as the model`);
    await vol.release(f.ino, f.fh);
    await vol.release(f.ino, f.dfh);
    await vol.unlink(vol.rootIno, Buffer.from(f.model.name));
  }
  vol = await h.remount();
  assertCountsBack(t, before, await allocCounts(vol), 'after deleting the files');
  await h.finish();
});
