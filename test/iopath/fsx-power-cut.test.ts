/**
 * fsx, then the power goes (fixed, printed seed; SEED= replays). Files run
 * random operations (fsxModel.ts) over a device with a volatile write cache
 * and random latency; part-way through, the power is cut, with a random
 * share of the unflushed and in-flight writes persisting anyway (torn, in
 * any order). The next mount replays the journal, and each file must hold a
 * state the operations could have left on stable storage:
 *
 * - its size is its size at its last completed fsync, or after one of the
 *   operations that began since (metadata commits in order);
 * - a byte no operation since that fsync touched holds its synced value;
 * - any other byte holds its synced value, zero, or a value one of those
 *   operations wrote there. Nothing else: not another file's bytes from a
 *   freed cluster reused too early, not stale bytes from before the fsync.
 *
 * Then fsck.ocfs2 -fn must find the volume clean. Each write's bytes are one
 * value (its number mod 251, plus one) so a stray byte names a write.
 */
import t, { type Test } from 'tap';
import { rngFrom, type Rng } from '../lib/seed';
import { O_RDWR, O_DIRECT, ROOT_CALLER } from './harness';
import { CrashWindow, FileModel, nextStep } from './fsxModel';
import { engineStep, fsxVolume } from './fsxEngine';

const BLOCK = 1024;
const FILES = 3;
const MAX_BYTES = 192 * 1024;
const MAX_IO = 40 * 1024;
const ROUNDS = Number(process.env.FSX_CUT_ROUNDS ?? 4);

interface CutFile {
  model: FileModel;
  ino: number;
  fh: number;
  dfh: number;
  crash: CrashWindow;
}

async function round(t: Test, rng: Rng, n: number): Promise<void> {
  const h = await fsxVolume(t, rng, { cache: 'volatile', maxLatencyMs: 2, volume: { commitIntervalMs: 50 } });
  const { vol, dev } = h;

  const files: CutFile[] = [];
  for (let k = 0; k < FILES; k++) {
    const model = new FileModel(`cut${k}`, MAX_BYTES);
    const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(model.name), 0o644, O_RDWR, ROOT_CALLER);
    await vol.fsync(attr.ino, fh, false);
    files.push({
      model, ino: attr.ino, fh, dfh: await vol.open(attr.ino, O_RDWR | O_DIRECT),
      crash: new CrashWindow(model),
    });
  }

  let cut = false;
  const worker = async (f: CutFile, r: Rng): Promise<void> => {
    const m = f.model;
    while (!cut) {
      const s = nextStep(r, m, { block: BLOCK, maxIo: MAX_IO });
      f.crash.begin(s);
      try {
        await engineStep(vol, f, s);
      } catch (err) {
        if (cut) return; // the power went under it
        throw err;
      }
      m.apply(s);
      if (s.op === 'fsync' && !cut) f.crash.fsynced();
    }
  };

  const running = files.map((f) => worker(f, rng.fork()));
  const cutAfterMs = rng.int(100, 700);
  const keepFraction = rng.float() * 0.6;
  await new Promise((resolve) => setTimeout(resolve, cutAfterMs));
  cut = true;
  const report = await dev.powerCut({ keepFraction });
  await Promise.all(running);
  await h.close();
  t.comment(`round ${n}: cut after ${cutAfterMs} ms keeping ${(keepFraction * 100).toFixed(0)}% of unflushed pieces: ` +
    `${report.unflushedWrites} unflushed writes, ${report.keptPieces} pieces kept; ops since each file's last fsync: ` +
    files.map((f) => f.crash.open).join(', '));

  // The next mount finds the journal dirty and replays it.
  const vol2 = await h.remount();
  for (const f of files) {
    const attr = await vol2.lookup(vol2.rootIno, Buffer.from(f.model.name));
    const fh = await vol2.open(attr.ino, O_RDWR);
    const got = await vol2.read(attr.ino, fh, 0, MAX_BYTES);
    await vol2.release(attr.ino, fh);
    t.equal(got.length, attr.size, `${f.model.name}: reads its whole size`);
    t.equal(f.crash.judge(got), null, `${f.model.name}: a state its operations could have left`);
  }
  await h.finish(`volume after round ${n}`);
}

t.test('fsx with a power cut: every file recovers to a state its operations allow', async (t) => {
  const rng = rngFrom(t);
  for (let n = 1; n <= ROUNDS; n++) await round(t, rng.fork(), n);
});
