/**
 * Filling a small volume through a real FUSE mount, and getting every byte
 * back:
 * - statfs and debugfs.ocfs2 (global_bitmap, inode_alloc:0000,
 *   extent_alloc:0000) give the starting free counts;
 * - big files are written until a write fails with ENOSPC: the failing write
 *   is the only casualty (every byte written before reads back), the daemon
 *   keeps serving, and statfs says the volume is (nearly) full;
 * - then empty and one-byte files are made until creating fails too (no room
 *   left to grow the inode allocator);
 * - everything is deleted, and the free clusters (statfs and the global
 *   bitmap) and the suballocators' used counts are EXACTLY what they were;
 * - the space is usable again (a second fill reaches the same size), and
 *   fsck.ocfs2 -fn is clean after each stage.
 */
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { run } from '../lib/exec';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse, type MountedO2fuse } from '../lib/mount';
import { Rng } from '../lib/seed';
import { writableImage, debugfsBitmap, MiB } from './helpers';

const CHUNK = MiB;

interface Counts {
  /** statfs: free and total blocks in f_frsize units, as df sees them. */
  bfree: number;
  blocks: number;
  frsize: number;
  globalUsed: number;
  globalFree: number;
  inodeUsed: number;
  inodeTotal: number;
  extentUsed: number;
  extentTotal: number;
}

async function statfsOf(dir: string): Promise<{ bfree: number; blocks: number; frsize: number }> {
  const r = await run('stat', ['-f', '-c', '%S %b %f', dir]);
  const [frsize, blocks, bfree] = r.text.trim().split(' ').map(Number);
  return { frsize, blocks, bfree };
}

async function debugfsCounts(image: string): Promise<Omit<Counts, 'bfree' | 'blocks' | 'frsize'>> {
  const g = await debugfsBitmap(image, 'global_bitmap');
  const i = await debugfsBitmap(image, 'inode_alloc:0000');
  const e = await debugfsBitmap(image, 'extent_alloc:0000');
  return { globalUsed: g.used, globalFree: g.free, inodeUsed: i.used, inodeTotal: i.total, extentUsed: e.used, extentTotal: e.total };
}

/** Writes 1 MiB chunks of seeded bytes to a new file until a write fails; returns what was written and the error. */
async function fillFile(p: string, seed: number): Promise<{ bytes: number; sha: string; error: string }> {
  const h = createHash('sha256');
  const rng = new Rng(seed);
  const fh = await fs.open(p, 'wx', 0o644);
  let bytes = 0;
  let error = '';
  try {
    for (;;) {
      const chunk = rng.bytes(CHUNK);
      try {
        const { bytesWritten } = await fh.write(chunk, 0, chunk.length, bytes);
        h.update(chunk.subarray(0, bytesWritten));
        bytes += bytesWritten;
        if (bytesWritten < chunk.length) continue; // a short write: the next one says why
        if (bytes >= 16 * MiB) break;
      } catch (err) {
        error = (err as NodeJS.ErrnoException).code ?? String(err);
        break;
      }
    }
  } finally {
    await fh.close().catch(() => {});
  }
  return { bytes, sha: h.digest('hex'), error };
}

async function sha256Of(p: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(p)).digest('hex');
}

async function fillVolume(t: Test, m: MountedO2fuse, tag: string): Promise<{ files: { p: string; bytes: number; sha: string }[]; total: number }> {
  const files: { p: string; bytes: number; sha: string }[] = [];
  let total = 0;
  for (let i = 0; ; i++) {
    const p = path.join(m.dir, `${tag}-${i}`);
    const r = await fillFile(p, i + 1);
    files.push({ p, bytes: r.bytes, sha: r.sha });
    total += r.bytes;
    if (r.error) {
      t.equal(r.error, 'ENOSPC', `${tag}: the write that does not fit fails with ENOSPC (file ${i}, after ${r.bytes} bytes of it)`);
      break;
    }
    if (i > 1000) throw new Error('the volume never filled');
  }
  return { files, total };
}

t.test('fill to ENOSPC through the mount, delete everything, and the free space is exactly back', { timeout: 900_000 }, async (t) => {
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 96 * MiB, slots: 2 });
  const startDebugfs = await debugfsCounts(image);
  let m = await mountO2fuse(t, image);
  const startStatfs = await statfsOf(m.dir);
  t.equal(startStatfs.bfree * startStatfs.frsize, startDebugfs.globalFree * 4096, 'statfs free space equals the global bitmap\'s free clusters');
  t.comment(`start: ${startDebugfs.globalFree} free clusters of ${startDebugfs.globalFree + startDebugfs.globalUsed}; ` +
    `inode_alloc ${startDebugfs.inodeUsed}/${startDebugfs.inodeTotal}, extent_alloc ${startDebugfs.extentUsed}/${startDebugfs.extentTotal}`);

  // Directories for the small files later: inline (no cluster), so that running out of inodes, not of
  // directory space, is what stops the small files.
  const DIRS = 10;
  for (let d = 0; d < DIRS; d++) await fs.mkdir(path.join(m.dir, `d${d}`));

  // Big files until ENOSPC.
  const first = await fillVolume(t, m, 'big');
  t.comment(`${first.files.length} files, ${first.total} bytes written before ENOSPC`);
  const full = await statfsOf(m.dir);
  t.ok(full.bfree * full.frsize < 2 * MiB, `the volume is full (${full.bfree * full.frsize} bytes free)`);
  for (const f of first.files) {
    t.equal((await fs.stat(f.p)).size, f.bytes, `${path.basename(f.p)}: the size is what was written`);
    t.equal(await sha256Of(f.p), f.sha, `${path.basename(f.p)}: every byte written before ENOSPC reads back`);
  }
  t.ok((await fs.readdir(m.dir)).length >= first.files.length, 'the daemon still serves readdir');

  // Small files until creating fails too.
  let small = 0;
  let smallError = '';
  for (; small < 20000; small++) {
    try {
      const p = path.join(m.dir, `d${small % DIRS}`, `s${small}`);
      if (small % 2) await fs.writeFile(p, 'x', { flag: 'wx' });
      else await (await fs.open(p, 'wx')).close();
    } catch (err) {
      smallError = (err as NodeJS.ErrnoException).code ?? String(err);
      break;
    }
  }
  t.equal(smallError, 'ENOSPC', `creating files fails with ENOSPC once the inode allocator cannot grow (${small} made)`);
  const inodesLeft = startDebugfs.inodeTotal - startDebugfs.inodeUsed - DIRS - first.files.length;
  t.equal(small, inodesLeft, `after exactly the ${inodesLeft} inodes its group still had`);
  t.equal(await sha256Of(first.files[0].p), first.files[0].sha, 'the first file still reads back');
  await m.unmount();
  await assertFsckClean(t, image, 'full volume');

  // Delete everything.
  m = await mountO2fuse(t, image);
  for (const name of await fs.readdir(m.dir)) {
    if (name === 'lost+found') continue;
    if (/^d\d+$/.test(name)) {
      for (const f of await fs.readdir(path.join(m.dir, name))) await fs.unlink(path.join(m.dir, name, f));
      await fs.rmdir(path.join(m.dir, name));
    } else {
      await fs.unlink(path.join(m.dir, name));
    }
  }
  const emptied = await statfsOf(m.dir);
  t.equal(emptied.bfree, startStatfs.bfree, `statfs: the free space is exactly back (${emptied.bfree} x ${emptied.frsize} bytes)`);
  await m.unmount();
  const after = await debugfsCounts(image);
  t.same(after, startDebugfs, 'debugfs.ocfs2: global bitmap, inode_alloc:0000 and extent_alloc:0000 counts are exactly back');
  await assertFsckClean(t, image, 'emptied volume');

  // And usable again: a second fill reaches the same size.
  m = await mountO2fuse(t, image);
  const second = await fillVolume(t, m, 'again');
  t.equal(second.total, first.total, `a second fill writes as many bytes (${second.total})`);
  for (const f of second.files) await fs.unlink(f.p);
  t.equal((await statfsOf(m.dir)).bfree, startStatfs.bfree, 'and deleting it gives everything back again');
  await m.unmount();
  t.same(await debugfsCounts(image), startDebugfs, 'debugfs agrees');
  await assertFsckClean(t, image, 'volume after the second fill');
});
