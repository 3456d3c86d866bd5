/**
 * fsx while the namespace changes under the files (fixed, printed seed;
 * SEED= replays). Files run random operations through their open handles
 * (fsxModel.ts, a 16-page cache, a device whose latency reorders
 * completions) while another task renames them, renames one over another
 * (the target, still open, becomes an orphan), unlinks them and creates new
 * files under the freed names. An open file's bytes belong to its handles,
 * whatever happens to its name: every read is checked against the model, to
 * the end. Then the handles are closed and the surviving names deleted: the
 * orphans must have been freed (every inode, extent block and data cluster
 * back, after a remount) and fsck.ocfs2 -fn must find the volume clean.
 */
import t from 'tap';
import { rngFrom, type Rng } from '../lib/seed';
import { O_RDWR, O_DIRECT, ROOT_CALLER } from './harness';
import { FileModel, nextStep } from './fsxModel';
import { engineStep, fsxVolume, type EngineHandles } from './fsxEngine';
import { allocCounts, assertCountsBack } from '../rw/helpers';

const BLOCK = 1024;
const FILES = 4;
const OPS = Number(process.env.FSX_OPS ?? 300);
const MAX_BYTES = 192 * 1024;
const MAX_IO = 40 * 1024;

interface OpenFile extends EngineHandles {
  model: FileModel;
}

const B = (s: string) => Buffer.from(s);

t.test('fsx through open handles while the files are renamed, replaced and unlinked', async (t) => {
  const rng = rngFrom(t);
  const h = await fsxVolume(t, rng);
  let vol = h.vol;
  const before = await allocCounts(vol);

  const dir = (await vol.mkdir(vol.rootIno, B('d'), 0o755, ROOT_CALLER)).ino;
  const open: OpenFile[] = [];
  /** Names in `dir` now, each naming one of the open files' inodes or a fresh empty file. */
  const names = new Set<string>();
  let serial = 0;
  const openNew = async (): Promise<OpenFile> => {
    const name = `f${serial++}`;
    const { attr, fh } = await vol.create(dir, B(name), 0o644, O_RDWR, ROOT_CALLER);
    names.add(name);
    const f = { model: new FileModel(name, MAX_BYTES), ino: attr.ino, fh, dfh: await vol.open(attr.ino, O_RDWR | O_DIRECT) };
    open.push(f);
    return f;
  };
  const first = await Promise.all(Array.from({ length: FILES }, () => openNew()));

  const failures: string[] = [];
  let running = FILES;
  const worker = async (f: OpenFile, r: Rng): Promise<void> => {
    for (let i = 0; i < OPS && failures.length === 0; i++) {
      const s = nextStep(r, f.model, { block: BLOCK, maxIo: MAX_IO });
      const result = await engineStep(vol, f, s);
      if (result instanceof Buffer) {
        const wrong = f.model.checkRead(s, result);
        if (wrong) failures.push(`${f.model.name} (inode ${f.ino}): ${wrong}; last ops: ${f.model.recent()}`);
      }
      f.model.apply(s);
    }
    running--;
  };
  const counts = { renames: 0, replaced: 0, unlinks: 0, creates: 0 };
  const chaos = async (r: Rng): Promise<void> => {
    while (running > 0 && failures.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, r.int(1, 15)));
      const list = [...names];
      const pick = r.pick(list);
      const roll = r.int(1, 4);
      if (roll === 1) {
        const to = `f${serial++}`;
        await vol.rename(dir, B(pick), dir, B(to), 0);
        names.delete(pick);
        names.add(to);
        counts.renames++;
      } else if (roll === 2 && list.length > 1) {
        // Over another name: the file it named, perhaps open, loses its last link.
        const target = r.pick(list.filter((n) => n !== pick));
        await vol.rename(dir, B(pick), dir, B(target), 0);
        names.delete(pick);
        counts.replaced++;
      } else if (roll === 3 && list.length > 1) {
        await vol.unlink(dir, B(pick));
        names.delete(pick);
        counts.unlinks++;
      } else {
        const { attr, fh } = await vol.create(dir, B(`f${serial}`), 0o644, O_RDWR, ROOT_CALLER);
        await vol.release(attr.ino, fh);
        names.add(`f${serial++}`);
        counts.creates++;
      }
    }
  };
  await Promise.all([...first.map((f) => worker(f, rng.fork())), chaos(rng.fork())]);
  t.comment(`renames ${counts.renames}, renames over another file ${counts.replaced}, unlinks ${counts.unlinks}, creates ${counts.creates}`);
  t.same(failures, [], 'every read through an open handle matched the model');

  for (const f of open) {
    const got = await vol.read(f.ino, f.fh, 0, MAX_BYTES);
    t.equal(f.model.differs(0, got, f.model.size), -1, `${f.model.name} (inode ${f.ino}) reads back as the model through its handle`);
    await vol.release(f.ino, f.fh);
    await vol.release(f.ino, f.dfh);
  }
  for (const name of names) await vol.unlink(dir, B(name));
  await vol.rmdir(vol.rootIno, B('d'));
  vol = await h.remount();
  assertCountsBack(t, before, await allocCounts(vol), 'the orphans were freed at their last close');
  await h.finish();
});
