/**
 * A directory of 100,000 entries through a real FUSE mount (bin/o2fuse
 * mount): a child process creates them (the libfuse transport serializes
 * requests, so this is the long part), then readdir counts them, random
 * names are looked up (present and absent), half are deleted by another
 * child, the count and lookups agree again, a thousand new names fill the
 * holes; a fresh daemon (remounted) finds and misses names through the
 * on-disk index, unlinks one and makes one; and after the unmount
 * fsck.ocfs2 -fn is clean and libocfs2 lists exactly the names that must be
 * there. Timings are printed as comments.
 * ENTRIES=N changes the size.
 */
import t, { type Test } from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { run } from '../lib/exec';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { dumpEntries } from '../lib/oracle';
import { rngFrom } from '../lib/seed';
import { writableImage, MiB } from './helpers';

const ENTRIES = Number(process.env.ENTRIES ?? 100_000);
const name = (i: number) => `f${String(i).padStart(6, '0')}`;

/** A child node process that creates (or unlinks) names [from, to) with step `step` in dir: one FUSE client, no test-process overhead. */
const CHILD = `
const fs = require('node:fs');
const [op, dir, from, to, step] = process.argv.slice(1);
for (let i = Number(from); i < Number(to); i += Number(step)) {
  const p = dir + '/f' + String(i).padStart(6, '0');
  if (op === 'create') fs.closeSync(fs.openSync(p, 'wx', 0o644));
  else fs.unlinkSync(p);
}
`;

async function child(t: Test, op: 'create' | 'unlink', dir: string, from: number, to: number, step = 1): Promise<number> {
  const started = Date.now();
  const r = await run(process.execPath, ['-e', CHILD, op, dir, String(from), String(to), String(step)], { timeoutMs: 3_600_000 });
  t.equal(r.code, 0, `child ${op} ${from}..${to} step ${step} exits 0`, r.code ? { stderr: r.stderr } : {});
  return Date.now() - started;
}

t.test(`a directory of ${ENTRIES} entries through the mount`, { timeout: 3_600_000 }, async (t) => {
  const rng = rngFrom(t);
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 2048 * MiB });
  const m = await mountO2fuse(t, image);
  const dir = path.join(m.dir, 'big');
  await fs.mkdir(dir);
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

  const createMs = await child(t, 'create', dir, 0, ENTRIES);
  t.comment(`created ${ENTRIES} files in ${secs(createMs)} (${(createMs / ENTRIES).toFixed(2)} ms each)`);

  let started = Date.now();
  const names = await fs.readdir(dir);
  t.comment(`readdir of ${names.length} names: ${secs(Date.now() - started)}`);
  t.equal(names.length, ENTRIES, 'readdir lists every entry');
  t.equal(new Set(names).size, ENTRIES, 'each once');
  t.ok(names.every((n) => /^f\d{6}$/.test(n) && Number(n.slice(1)) < ENTRIES), 'and only the names created');
  t.equal((await fs.stat(dir)).nlink, 2, 'a directory of files only has nlink 2');

  const LOOKUPS = 2000;
  started = Date.now();
  let found = 0;
  let absent = 0;
  for (let k = 0; k < LOOKUPS; k++) {
    const i = rng.int(0, ENTRIES - 1);
    if ((await fs.stat(path.join(dir, name(i)))).isFile()) found++;
    const missing = `${name(i)}x`;
    await fs.stat(path.join(dir, missing)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') absent++;
    });
  }
  t.comment(`${LOOKUPS} random lookups of present and absent names: ${secs(Date.now() - started)}`);
  t.equal(found, LOOKUPS, 'random names are found');
  t.equal(absent, LOOKUPS, 'absent names are not (ENOENT)');

  const unlinkMs = await child(t, 'unlink', dir, 0, ENTRIES, 2);
  t.comment(`deleted ${ENTRIES / 2} (every even name) in ${secs(unlinkMs)} (${(unlinkMs / (ENTRIES / 2)).toFixed(2)} ms each)`);
  const left = await fs.readdir(dir);
  t.equal(left.length, ENTRIES / 2, 'half are left');
  t.ok(left.every((n) => Number(n.slice(1)) % 2 === 1), 'the odd ones');
  let wrong = 0;
  for (let k = 0; k < 500; k++) {
    const i = rng.int(0, ENTRIES - 1);
    const exists = await fs.stat(path.join(dir, name(i))).then(() => true, () => false);
    if (exists !== (i % 2 === 1)) wrong++;
  }
  t.equal(wrong, 0, 'lookups agree: deleted names are gone, the others are there');

  // New names go into the holes the deletes left (the directory does not need to grow for them).
  const refill = await child(t, 'create', dir, ENTRIES, ENTRIES + 1000);
  t.comment(`1000 new names after the deletes: ${secs(refill)}`);
  t.equal((await fs.readdir(dir)).length, ENTRIES / 2 + 1000, 'the new names are listed too');

  started = Date.now();
  await m.unmount();
  t.comment(`unmount (write-back, daemon exit): ${secs(Date.now() - started)}`);

  // A fresh daemon knows no names: its first lookups go through the on-disk dx index (fs/dir.ts), not a scan.
  const m2 = await mountO2fuse(t, image);
  const big2 = path.join(m2.dir, 'big');
  started = Date.now();
  t.ok((await fs.stat(path.join(big2, name(ENTRIES + 1)))).isFile(), 'after a remount, a name is found');
  t.comment(`first stat in the directory after a remount: ${Date.now() - started} ms`);
  const present = (i: number) => (i < ENTRIES ? i % 2 === 1 : i < ENTRIES + 1000);
  wrong = 0;
  for (let k = 0; k < 1000; k++) {
    const i = rng.int(0, ENTRIES + 1999);
    const exists = await fs.stat(path.join(big2, name(i))).then(() => true, () => false);
    if (exists !== present(i)) wrong++;
  }
  t.equal(wrong, 0, 'after a remount, 1000 lookups agree: present names found, deleted and never-made ones ENOENT');
  await fs.unlink(path.join(big2, name(1)));
  await fs.writeFile(path.join(big2, name(ENTRIES + 1000)), '');
  t.equal(await fs.stat(path.join(big2, name(1))).then(() => 'there', (e: NodeJS.ErrnoException) => e.code), 'ENOENT', 'a name unlinked after the remount is gone');
  t.ok((await fs.stat(path.join(big2, name(ENTRIES + 1000)))).isFile(), 'a name made after the remount is found');
  await m2.unmount();
  started = Date.now();
  await assertFsckClean(t, image, `volume with a ${ENTRIES}-entry directory`);
  t.comment(`fsck.ocfs2 -fn: ${secs(Date.now() - started)}`);
  started = Date.now();
  const listed = (await dumpEntries(image, { fields: ['nlink', 'size'], path: '/big' })).map((e) => e.path).filter((p) => p !== '/big');
  t.comment(`o2tool dump of /big: ${secs(Date.now() - started)}`);
  const want = new Set<string>();
  for (let i = 3; i < ENTRIES; i += 2) want.add(`/big/${name(i)}`);
  for (let i = ENTRIES; i <= ENTRIES + 1000; i++) want.add(`/big/${name(i)}`);
  t.equal(listed.length, want.size, `libocfs2 lists ${want.size} entries`);
  t.ok(listed.every((p) => want.has(p)), 'exactly the names that must be there');
});
