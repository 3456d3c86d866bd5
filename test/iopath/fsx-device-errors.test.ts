/**
 * fsx with device errors (fixed, printed seed; SEED= replays): files run
 * random operations while the device fails one request in every few dozen
 * with EIO. For the first two thirds of the operations only reads fail
 * (metadata and data: a failed write of metadata, home or in the log, aborts
 * the journal, and these failures must first reach every path a read error
 * can take with the volume still writable); then anything may, writes and
 * flushes included. Every operation must succeed or fail with EIO; once a failed log
 * write has aborted the journal, as a kernel filesystem remounted read-only,
 * every change fails with EROFS and fsync with EIO (nothing can be made
 * durable), while reads go on. Nothing else: no other errno, nothing the
 * FUSE layer would count as a bug, and the daemon keeps answering. Then the
 * volume is unmounted, mounted again (replaying what the journal holds),
 * every file read whole, and fsck.ocfs2 -fn must find it clean: errors lose
 * what they hit, never the volume's consistency.
 */
import t from 'tap';
import { rngFrom, type Rng } from '../lib/seed';
import { errnoOf } from '../../fs/errors';
import { isExpectedError } from '../../fs/fuse/errno';
import { O_RDWR, O_DIRECT, ROOT_CALLER } from './harness';
import { FileModel, nextStep } from './fsxModel';
import { engineStep, fsxVolume } from './fsxEngine';

const BLOCK = 1024;
const FILES = 3;
const OPS = Number(process.env.FSX_OPS ?? 250);
const MAX_BYTES = 192 * 1024;
const MAX_IO = 40 * 1024;

t.test('fsx with device errors: only EIO or EROFS, and the volume stays consistent', async (t) => {
  const rng = rngFrom(t);
  const h = await fsxVolume(t, rng, { maxLatencyMs: 2, volume: { commitIntervalMs: 50 } });
  const { vol, dev } = h;

  const files: { model: FileModel; ino: number; fh: number; dfh: number }[] = [];
  for (let k = 0; k < FILES; k++) {
    const model = new FileModel(`eio${k}`, MAX_BYTES);
    const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(model.name), 0o644, O_RDWR, ROOT_CALLER);
    files.push({ model, ino: attr.ino, fh, dfh: await vol.open(attr.ino, O_RDWR | O_DIRECT) });
  }
  await vol.syncAll();

  // One request in every 20-60 fails: each failure is armed for the next request of a random kind.
  const faults = rng.fork();
  let opsDone = 0;
  let countdown = faults.int(20, 60);
  const offSubmit = dev.onSubmit(() => {
    if (--countdown > 0) return;
    countdown = faults.int(20, 60);
    if (opsDone < (FILES * OPS * 2) / 3) {
      dev.fail({ op: 'read' }, { times: 1 });
    } else {
      dev.fail({ op: faults.pick(['read', 'write', 'flush'] as const) }, { times: 1 });
    }
  });

  const errnos = new Map<string, number>();
  const unexpected: string[] = [];
  let refusedAfterAbort = 0;
  const worker = async (f: (typeof files)[number], r: Rng): Promise<void> => {
    for (let i = 0; i < OPS; i++) {
      const s = nextStep(r, f.model, { block: BLOCK, maxIo: MAX_IO });
      const afterAbort = vol.journal!.abortedBy !== null;
      let outcome = 'ok';
      try {
        await engineStep(vol, f, s);
      } catch (err) {
        // What the FUSE layer would answer (fs/fuse/errno.ts); anything it counts as a bug is reported as such.
        outcome = isExpectedError(err) ? errnoOf(err) : `${(err as Error).name}: ${(err as Error).message}`;
        if (outcome !== 'EIO' && outcome !== 'EROFS' && unexpected.length < 5) unexpected.push(`${f.model.name} ${s.op}: ${outcome} ${(err as Error).stack}`);
        // fsync reports that something could not be made durable: EIO, even when the journal aborts during it.
        if (s.op === 'fsync' && outcome === 'EROFS' && unexpected.length < 5) unexpected.push(`${f.model.name} fsync: EROFS, not EIO`);
      }
      errnos.set(outcome, (errnos.get(outcome) ?? 0) + 1);
      opsDone++;
      if (afterAbort && s.op !== 'bread' && s.op !== 'dread') {
        // The volume went read-only: changes are refused, and fsync cannot make anything durable.
        const want = s.op === 'fsync' ? 'EIO' : 'EROFS';
        if (outcome === want) refusedAfterAbort++;
        else if (unexpected.length < 5) unexpected.push(`${f.model.name} ${s.op} after the journal aborted: ${outcome}, not ${want}`);
      }
    }
  };
  await Promise.all(files.map((f) => worker(f, rng.fork())));
  offSubmit();
  t.comment(`outcomes: ${[...errnos].map(([k, v]) => `${k} ${v}`).join(', ')}; ${dev.faultStats().injectedFailures} requests failed`);
  t.same(unexpected, [], 'every operation succeeded or failed with EIO or EROFS; after the abort changes EROFS, fsync EIO');
  const abortedBy = vol.journal!.abortedBy;
  t.comment(abortedBy ? `journal aborted by: ${abortedBy.message}; ${refusedAfterAbort} operations refused after it` : 'the journal never aborted');
  t.ok((errnos.get('EIO') ?? 0) > 0, 'device errors reached the callers');

  for (const f of files) {
    await vol.release(f.ino, f.fh).catch(() => {});
    await vol.release(f.ino, f.dfh).catch(() => {});
  }
  await vol.unmount().catch((err) => t.comment(`unmount: ${(err as Error).message}`));
  const vol2 = await h.remount();
  for (const f of files) {
    const attr = await vol2.lookup(vol2.rootIno, Buffer.from(f.model.name));
    const fh = await vol2.open(attr.ino, O_RDWR);
    const got = await vol2.read(attr.ino, fh, 0, MAX_BYTES);
    t.equal(got.length, attr.size, `${f.model.name}: reads its whole size after the remount`);
    await vol2.release(attr.ino, fh);
  }
  await h.finish();
});
