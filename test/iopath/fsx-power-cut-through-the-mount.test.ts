/**
 * fsx through FUSE, then the power goes (fixed, printed seed; SEED=
 * replays): the mount runs over a fault device with a volatile write cache
 * (`inject=powercut:after-writes=N:keep=F`), files run random operations
 * through the system calls (fsxMount.ts), and after the N-th acknowledged
 * device write the power goes, a random share of the lost writes persisting
 * torn. From then on the operations fail; the daemon is unmounted, the image
 * mounted again (replaying the journal), and each file must hold a state its
 * operations allow (fsxModel.ts, CrashWindow): what fsync(2) reported
 * durable through the mount is there. fsck.ocfs2 -fn must find it clean.
 *
 * Kernel transport, with and without writeback_cache, and libfuse. Writes
 * stay within one FUSE request (libfuse's 128 KiB), so that a crash leaves
 * the size after a whole operation; CrashWindow allows for the splits the
 * kernel makes anyway: a buffered write starting inside an uncached page
 * goes as two requests, and with writeback_cache the kernel writes a file's
 * pages back in its own order, so any page boundary in between may be the
 * size a crash leaves.
 */
import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { rngFrom, type Rng } from '../lib/seed';
import { CrashWindow, FALLOCATE_OPS, FileModel, nextStep } from './fsxModel';
import { mountStep, openMountFile, type MountFile } from './fsxMount';

const FILES = 3;
/** Per file, at most: the power normally goes well before. */
const OPS = 600;
const MAX_BYTES = 1024 * 1024;
const MAX_IO = 96 * 1024;
const BLOCK = 4096;

interface CutFile extends MountFile {
  model: FileModel;
  crash: CrashWindow;
}

const MOUNTS = [
  { name: 'kernel transport', options: 'transport=kernel', fallocate: true, pagedSizes: false },
  // The kernel holds dirty pages and writes them back in its own order: sizes at any page boundary in between.
  { name: 'kernel transport, writeback_cache', options: 'transport=kernel,writeback_cache', fallocate: true, pagedSizes: true },
  { name: 'libfuse', options: 'transport=libfuse', fallocate: false, pagedSizes: false },
];

for (const mount of MOUNTS) {
  t.test(`fsx through the mount with a power cut: ${mount.name}`, async (t) => {
    const rng = rngFrom(t);
    const image = await makeImage(t, { sizeBytes: 256 << 20, features: 'noindexed-dirs,norefcount' });
    const afterWrites = rng.int(150, 900);
    const keep = (rng.float() * 0.6).toFixed(2);
    const inject = `powercut:after-writes=${afterWrites}:keep=${keep}+latency:0-2ms+seed=${rng.int(1, 1e6)}`;
    let m = await mountO2fuse(t, image, { options: `${mount.options},cache_size=1M,inject=${inject}` });
    const files: CutFile[] = [];
    for (let k = 0; k < FILES; k++) {
      const model = new FileModel(`cut${k}`, MAX_BYTES);
      const f = await openMountFile(m.dir, model.name);
      await f.buffered.sync();
      files.push({ model, crash: new CrashWindow(model, { pageSplitWrites: true, pagedSizes: mount.pagedSizes }), ...f });
    }
    // The files' names are durable before the workload: fsync of each, then of the directory.
    const dir = await fsp.open(m.dir, 'r');
    await dir.sync();
    await dir.close();

    let cut = false;
    const errors: string[] = [];
    let opsDone = 0;
    const worker = async (f: CutFile, r: Rng): Promise<void> => {
      for (let i = 0; i < OPS && !cut; i++) {
        const s = nextStep(r, f.model, { block: BLOCK, maxIo: MAX_IO, without: mount.fallocate ? undefined : FALLOCATE_OPS });
        f.crash.begin(s);
        try {
          await mountStep(f, s);
        } catch (err) {
          // The power went: every later request fails. Stop here.
          cut = true;
          errors.push(`${f.model.name} ${s.op}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          return;
        }
        f.model.apply(s);
        opsDone++;
        if (s.op === 'fsync') f.crash.fsynced();
      }
    };
    await Promise.all(files.map((f) => worker(f, rng.fork())));
    t.comment(`power cut after ${afterWrites} device writes (keep ${keep}): ${opsDone} ops done, then ${errors.join('; ') || 'no error'}; ` +
      `ops since each file's last fsync: ${files.map((f) => f.crash.open).join(', ')}`);
    for (const f of files) {
      await f.buffered.close().catch(() => {});
      await f.direct.close().catch(() => {});
    }
    await m.unmount();

    m = await mountO2fuse(t, image, { options: mount.options });
    for (const f of files) {
      const got = await fsp.readFile(path.join(m.dir, f.model.name));
      t.equal(f.crash.judge(got), null, `${f.model.name}: a state its operations could have left`);
    }
    await m.unmount();
    await assertFsckClean(t, image);
  });
}
