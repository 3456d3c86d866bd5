/**
 * The read side of the engine, driven directly (no FUSE), against libocfs2 as the oracle:
 * a tree o2tool wrote (readSpec.ts: nested dirs, a 3,000-entry directory, inline and
 * extent files at block and cluster edges, holes, unwritten extents, an extent tree of
 * depth >= 1, hard links, fast and slow symlinks, nodes) reads back through a read-only
 * Volume exactly as `o2tool dump` sees it: names, types, modes, owners, link counts,
 * sizes, inode numbers, all three times to the nanosecond, content sha256, symlink
 * targets, device numbers and the extent map (holes and unwritten extents in the right
 * places). Also: readdir returns entries in on-disk order (as debugfs.ocfs2 ls lists
 * them); partial reads at random and at every block/cluster edge match the generator;
 * holes and unwritten extents read as zeros; lookup fails with ENOENT / ENOTDIR /
 * ENAMETOOLONG, read of a directory with EISDIR, readlink of a file with EINVAL; every
 * change is EROFS; statfs agrees with the global bitmap as debugfs.ocfs2 prints it; and
 * the image is byte-for-byte unchanged afterwards and fsck.ocfs2 -fn clean.
 */
import t from 'tap';
import * as fs from 'node:fs';
import { Volume } from '../../fs/volume';
import { FileDevice } from '../../io/fileDevice';
import { lsDir, statPath } from '../lib/debugfs';
import { assertFsckClean } from '../lib/fsck';
import { ALL_FIELDS, type SpecEntry, decodeToBytes, dump, expectedContent, populate } from '../lib/oracle';
import { rngFrom } from '../lib/seed';
import { makeImage } from '../lib/volume';
import { type EngineDumpProblem, dumpDiff, engineDump, readAll } from './engineDump';
import { readSpec } from './readSpec';
import { rejectsErrno } from './assertErrno';
import { bitmapStats, sha256OfFile } from './volumeFacts';

interface Config {
  name: string;
  blockSize: number;
  clusterSize: number;
  features?: string;
  featureLevel?: string;
  inlineData: boolean;
  sparse: boolean;
  unwritten: boolean;
}

const ALL_OFF = 'noinline-data,nosparse,nounwritten,noindexed-dirs,noxattr,norefcount,nodiscontig-bg,noextended-slotmap,noappend-dio';

const configs: Config[] = [
  { name: '4K blocks, 4K clusters, default features', blockSize: 4096, clusterSize: 4096, inlineData: true, sparse: true, unwritten: true },
  { name: '512-byte blocks, 4K clusters, default features', blockSize: 512, clusterSize: 4096, inlineData: true, sparse: true, unwritten: true },
  { name: '2K blocks, 64K clusters, max features (metaecc, quotas)', blockSize: 2048, clusterSize: 65536, featureLevel: 'max-features', inlineData: true, sparse: true, unwritten: true },
  { name: '4K blocks, 1M clusters, default features', blockSize: 4096, clusterSize: 1 << 20, inlineData: true, sparse: true, unwritten: true },
  { name: '1K blocks, 8K clusters, every optional feature off', blockSize: 1024, clusterSize: 8192, features: ALL_OFF, inlineData: false, sparse: false, unwritten: false },
];

async function resolvePath(vol: Volume, p: string): Promise<number> {
  let ino = vol.rootIno;
  for (const part of p.split('/').filter(Boolean)) ino = (await vol.lookup(ino, Buffer.from(part))).ino;
  return ino;
}

type FileEntry = Extract<SpecEntry, { kind: 'file' | 'inline' | 'sparse' | 'unwritten' }>;

for (const c of configs) {
  t.test(`engine reads an o2tool-built tree exactly as libocfs2 does: ${c.name}`, { timeout: 180_000 }, async (t) => {
    const { blockSize: bs, clusterSize: cs } = c;
    const image = await makeImage(t, { blockSize: bs, clusterSize: cs, features: c.features, featureLevel: c.featureLevel });
    const spec = readSpec(c);
    await populate(image, spec);
    const before = await sha256OfFile(image);

    const vol = await Volume.mount(await FileDevice.open(image, { readOnly: true }), { readOnly: true });
    let mounted = true;
    t.teardown(async () => {
      if (mounted) await vol.unmount();
    });
    t.equal(vol.readOnly, true, 'the mount is read-only');

    // 1. the whole tree, every field, against libocfs2
    const problems: EngineDumpProblem[] = [];
    const want = await dump(image, { fields: ALL_FIELDS });
    const got = await engineDump(vol, { fields: ALL_FIELDS }, problems);
    t.same(dumpDiff(want, got), [], 'engine dump (all fields, with extent maps) equals o2tool dump line by line');
    t.equal(got.split('\n').length, want.split('\n').length, `same number of paths (${want.split('\n').length - 1})`);
    t.same(problems, [], 'readdir and lookup agree on every entry (inode and type)');

    // 2. readdir order is the on-disk order (what debugfs.ocfs2 ls lists)
    const dirs = want.split('\n').filter((l) => / dir /.test(l)).map((l) => l.split(' ')[0]);
    for (const encoded of dirs) {
      const decoded = decodeToBytes(encoded).toString('utf8');
      const ino = await resolvePath(vol, decoded);
      const fromEngine = (await vol.readdir(ino)).map((e) => `${e.ino} ${e.name.toString('utf8')}`);
      const fromDebugfs = (await lsDir(image, `<${ino}>`)).map((e) => `${e.blkno} ${e.name}`);
      if (encoded === '/many') t.equal(fromEngine.length, 3002, '/many lists 3,000 entries plus . and ..');
      t.same(fromEngine, fromDebugfs, `readdir ${encoded} returns ${fromEngine.length} entries in debugfs.ocfs2 ls order`);
    }

    // 3. partial reads: random ranges and every block / cluster edge of every file
    const rng = rngFrom(t);
    const files = spec.filter((e): e is FileEntry => e.kind === 'file' || e.kind === 'inline' || e.kind === 'sparse' || e.kind === 'unwritten');
    let reads = 0;
    let wrong: string[] = [];
    for (const e of files) {
      const ino = await resolvePath(vol, e.path);
      const content = expectedContent(e);
      const fh = await vol.open(ino, 0);
      const check = async (offset: number, length: number): Promise<void> => {
        const got = await vol.read(ino, fh, offset, length);
        const exp = content.subarray(Math.min(offset, content.length), Math.min(offset + length, content.length));
        reads++;
        if (!got.equals(exp) && wrong.length < 10) wrong.push(`${e.path} [${offset}, +${length}): ${got.length} bytes, expected ${exp.length}${got.length === exp.length ? ' (content differs)' : ''}`);
      };
      for (let i = 0; i < 12; i++) {
        const offset = rng.int(0, e.size + bs);
        await check(offset, rng.int(0, 3 * cs));
      }
      const edges = new Set<number>();
      for (const unit of [bs, cs]) {
        for (let x = unit; x <= Math.min(e.size + unit, 8 * cs); x += unit) for (const d of [-1, 0, 1]) if (x + d >= 0) edges.add(x + d);
      }
      for (const x of edges) {
        await check(x, 1);
        await check(Math.max(0, x - 3), 7);
      }
      await check(e.size, 10);
      await check(e.size + 12345, 10);
      await check(0, 0);
      await vol.release(ino, fh);
    }
    t.same(wrong, [], `${reads} partial reads (random, and around every block and cluster edge) match the generator`);

    // 3b. the same reads all at once on a cold mount (shared block reads, extent maps built concurrently)
    const cold = await Volume.mount(await FileDevice.open(image, { readOnly: true }), { readOnly: true });
    try {
      const jobs: Promise<string | null>[] = [];
      for (const e of files) {
        const content = expectedContent(e);
        for (let i = 0; i < 8; i++) {
          const offset = rng.int(0, e.size);
          const length = rng.int(1, 2 * cs);
          jobs.push((async () => {
            const ino = await resolvePath(cold, e.path);
            const got = await cold.read(ino, 0, offset, length);
            return got.equals(content.subarray(offset, Math.min(offset + length, content.length))) ? null : `${e.path} [${offset}, +${length})`;
          })());
        }
      }
      const many = await resolvePath(cold, '/many');
      for (let i = 0; i < 64; i++) {
        const name = `f${String(rng.int(0, 2999)).padStart(5, '0')}`;
        jobs.push(cold.lookup(many, Buffer.from(name)).then((a) => (a.size === 0 ? null : `/many/${name}: size ${a.size}`)));
      }
      const bad = (await Promise.all(jobs)).filter((x) => x !== null);
      t.same(bad, [], `${jobs.length} reads and lookups issued at once on a cold mount all give the right answer`);
    } finally {
      await cold.unmount();
    }

    // 4. holes and unwritten extents are zeros (checked range by range, not only by hash)
    wrong = [];
    for (const e of files) {
      if (e.kind !== 'sparse' && e.kind !== 'unwritten') continue;
      const ino = await resolvePath(vol, e.path);
      const data = await readAll(vol, ino, e.size);
      const written = e.kind === 'sparse' ? e.ranges.filter((r) => !r.unwritten) : [];
      for (let x = 0; x < e.size; x++) {
        if (data[x] !== 0 && !written.some((r) => x >= r.offset && x < r.offset + r.length)) {
          wrong.push(`${e.path}: byte ${x} is ${data[x]} outside every written range`);
          break;
        }
      }
    }
    t.same(wrong, [], 'no byte outside the written ranges of a sparse or unwritten file is non-zero');

    if (spec.some((e) => e.path === '/sparse/fragmented')) {
      const st = await statPath(image, '/sparse/fragmented');
      t.ok((st.treeDepth ?? 0) >= 1, `/sparse/fragmented has an extent tree of depth ${st.treeDepth} (extent blocks are read)`);
    }

    // 5. symlinks
    for (const e of spec) {
      if (e.kind !== 'symlink') continue;
      const ino = await resolvePath(vol, e.path);
      t.equal((await vol.readlink(ino)).toString('utf8'), e.target, `readlink ${e.path} (${e.target.length} bytes)`);
    }

    // 6. errors
    const root = vol.rootIno;
    const fileIno = await resolvePath(vol, '/sizes/bs');
    const dirIno = await resolvePath(vol, '/a/b');
    await rejectsErrno(t, vol.lookup(root, Buffer.from('no-such-name')), 'ENOENT', 'lookup of a missing name: ENOENT');
    await rejectsErrno(t, vol.lookup(dirIno, Buffer.from('c'.repeat(255))), 'ENOENT', 'lookup of a missing 255-byte name: ENOENT');
    await rejectsErrno(t, vol.lookup(root, Buffer.from('x'.repeat(256))), 'ENAMETOOLONG', 'lookup of a 256-byte name: ENAMETOOLONG');
    await rejectsErrno(t, vol.lookup(fileIno, Buffer.from('x')), 'ENOTDIR', 'lookup inside a regular file: ENOTDIR');
    await rejectsErrno(t, vol.readdir(fileIno), 'ENOTDIR', 'readdir of a regular file: ENOTDIR');
    const dirFh = await vol.open(dirIno, 0);
    await rejectsErrno(t, vol.read(dirIno, dirFh, 0, 100), 'EISDIR', 'read of a directory: EISDIR');
    await vol.release(dirIno, dirFh);
    await rejectsErrno(t, vol.readlink(fileIno), 'EINVAL', 'readlink of a regular file: EINVAL');
    const dataBlk = (await statPath(image, `<${fileIno}>`)).extents[0].blkno;
    await rejectsErrno(t, vol.getattr(dataBlk), 'EIO', `getattr of a data block (${dataBlk}) as an inode: EIO`);
    await rejectsErrno(t, vol.getattr(vol.device.size / bs + 10), 'EIO', 'getattr of a block past the end of the volume: EIO');

    // 7. a read-only mount changes nothing and says so
    const caller = { uid: 0, gid: 0 };
    await rejectsErrno(t, vol.open(fileIno, fs.constants.O_WRONLY), 'EROFS', 'open for writing: EROFS');
    await rejectsErrno(t, vol.write(fileIno, 1, 0, Buffer.from('x')), 'EROFS', 'write: EROFS');
    await rejectsErrno(t, vol.mkdir(root, Buffer.from('new'), 0o755, caller), 'EROFS', 'mkdir: EROFS');
    await rejectsErrno(t, vol.unlink(dirIno, Buffer.from('hard-2')), 'EROFS', 'unlink: EROFS');
    await rejectsErrno(t, vol.setattr(fileIno, { size: 0 }), 'EROFS', 'truncate: EROFS');

    // 8. statfs against the global bitmap
    const bm = await bitmapStats(image);
    const sfs = await vol.statfs();
    const bpc = cs / bs;
    t.same(
      { bsize: sfs.bsize, blocks: sfs.blocks, bfree: sfs.bfree, bavail: sfs.bavail, namemax: sfs.namemax },
      { bsize: bs, blocks: bm.total * bpc, bfree: bm.free * bpc, bavail: bm.free * bpc, namemax: 255 },
      `statfs: ${bm.total} clusters, ${bm.free} free (debugfs.ocfs2 stat //global_bitmap), in ${bs}-byte blocks`,
    );

    await vol.unmount();
    mounted = false;
    t.equal(await sha256OfFile(image), before, 'the image is byte-for-byte what o2tool left');
    await assertFsckClean(t, image);
  });
}
