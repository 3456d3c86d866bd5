/**
 * fsx through FUSE, on each transport (and the kernel's with writeback_cache):
 * the engine test's random operations (fsxModel.ts) done with the system calls
 * a storage engineer's tools make: pread/pwrite on a buffered and an O_DIRECT
 * descriptor of each file, ftruncate, fsync, and fallocate(1) for punch, zero
 * range and preallocation. Several files at once, a 1 MiB cache (the
 * smallest the mount takes) under files larger than it, and a device whose
 * random latency reorders completions (inject=latency). On top of the
 * engine's own paths this covers the kernel's page cache in front of the
 * daemon: a direct write, a truncate or a punch must not leave the kernel
 * serving bytes the file no longer holds. Every read is checked against the
 * model as it happens; at the end each file is read through a fresh open,
 * then again after a remount, and fsck.ocfs2 -fn must find the volume clean.
 */
import t from 'tap';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { rngFrom, type Rng } from '../lib/seed';
import { FALLOCATE_OPS, FileModel, nextStep } from './fsxModel';
import { mountStep, openMountFile, type MountFile } from './fsxMount';

const FILES = 3;
const OPS = Number(process.env.FSX_OPS ?? 120);
const MAX_BYTES = 1536 * 1024;
const MAX_IO = 192 * 1024;
const BLOCK = 4096;

interface FsxFile extends MountFile {
  model: FileModel;
}

const MOUNTS = [
  { name: 'kernel transport', options: 'transport=kernel', fallocate: true },
  { name: 'kernel transport, writeback_cache', options: 'transport=kernel,writeback_cache', fallocate: true },
  // fuse-native has no fallocate (README: EOPNOTSUPP there).
  { name: 'libfuse', options: 'transport=libfuse', fallocate: false },
];

for (const mount of MOUNTS) {
  t.test(`fsx through the mount: ${mount.name}`, async (t) => {
    const rng = rngFrom(t);
    const image = await makeImage(t, { sizeBytes: 256 << 20, features: 'noindexed-dirs,norefcount' });
    const options = `${mount.options},cache_size=1M,inject=latency:0-2ms+seed=${rng.int(1, 1e6)}`;
    let m = await mountO2fuse(t, image, { options });
    const files: FsxFile[] = [];
    for (let k = 0; k < FILES; k++) {
      const model = new FileModel(`fsx${k}`, MAX_BYTES);
      files.push({ model, ...(await openMountFile(m.dir, model.name)) });
    }
    const failures: string[] = [];
    const fail = (f: FsxFile, what: string) => failures.push(`${f.model.name}: ${what}; last ops: ${f.model.recent()}`);

    const worker = async (f: FsxFile, r: Rng): Promise<void> => {
      const m = f.model;
      for (let i = 0; i < OPS && failures.length === 0; i++) {
        const s = nextStep(r, m, { block: BLOCK, maxIo: MAX_IO, without: mount.fallocate ? undefined : FALLOCATE_OPS });
        const result = await mountStep(f, s);
        if (s.data && result !== s.length) fail(f, `${s.op} ${s.offset}+${s.length} wrote ${String(result)}`);
        if (result instanceof Buffer) {
          const wrong = m.checkRead(s, result);
          if (wrong) fail(f, wrong);
        }
        m.apply(s);
      }
    };

    await Promise.all(files.map((f) => worker(f, rng.fork())));
    t.same(failures, [], 'every read matched the model while the files ran');
    for (const f of files) {
      await f.buffered.close();
      await f.direct.close();
      const st = await fsp.stat(f.file);
      t.equal(st.size, f.model.size, `${f.model.name}: size`);
      const got = await fsp.readFile(f.file);
      t.equal(f.model.differs(0, got, f.model.size), -1, `${f.model.name} reads back as the model through a fresh open`);
    }
    await m.unmount();
    m = await mountO2fuse(t, image, { options: mount.options });
    for (const f of files) {
      const got = await fsp.readFile(path.join(m.dir, f.model.name));
      t.equal(f.model.differs(0, got, f.model.size), -1, `${f.model.name} reads back as the model after a remount`);
    }
    await m.unmount();
    await assertFsckClean(t, image);
  });
}
