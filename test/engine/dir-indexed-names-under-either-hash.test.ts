/**
 * Names indexed under either char signedness. The kernel hashes a name's
 * bytes as `char` for the dx index: signed on x86 before 6.2 (and in
 * ocfs2-tools), unsigned since 6.2 (-funsigned-char), so a non-ASCII name a
 * newer kernel added sits in the leaf of its "unsigned" hash. Checked on the
 * engine, with every lookup through the index (dirLookups 'index'):
 * - a mount adding names as a 6.2+ kernel does (dxHashChars 'unsigned')
 *   fills an indexed directory of several leaf clusters with 500 non-ASCII
 *   names (each hashing differently the two ways) and 200 ASCII ones, and
 *   fsck.ocfs2 (signed) then misses each non-ASCII one in the index, as it
 *   does on a 6.2+ kernel's volume;
 * - a default mount (signed, as ocfs2-tools) finds every one of them, and
 *   removes the non-ASCII ones: each entry leaves the index from the leaf it
 *   is in (without the fallback: ENOENT, or EIO from the index);
 * - it adds 300 non-ASCII names of its own, which a mount as a 6.2+ kernel
 *   then finds, and removes a third of;
 * - what is left is indexed as ocfs2-tools hash it: the independent dx check
 *   is clean block by block, and fsck.ocfs2 -fn finds the volume clean.
 * And through a real mount: `-o dx_hash=unsigned` places non-ASCII names as
 * a 6.2+ kernel does (fsck.ocfs2 misses each), a default mount lists, opens
 * and renames every one, and fsck.ocfs2 -fn is then clean.
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { FileDevice } from '../../io/fileDevice';
import { Volume } from '../../fs/volume';
import { dxDirNameHash, dxSeedOf } from '../../fs/format/dxHash';
import { assertFsckClean, runFsck } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { rngFrom } from '../lib/seed';
import { writableImage, outcome, MiB } from '../rw/helpers';
import { checkDxIndex } from './dx-check';

const ROOT = { uid: 0, gid: 0 };
const O_RDONLY = 0;

async function mount(image: string, dxHashChars: 'signed' | 'unsigned'): Promise<Volume> {
  return Volume.mount(await FileDevice.open(image), { readOnly: false, dirLookups: 'index', dxHashChars });
}

t.test('an indexed directory with non-ASCII names added under each char signedness', async (t) => {
  const rng = rngFrom(t, 0x62);
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 256 * MiB });
  const letters = ['é', 'ü', 'ß', 'ø', 'ł', 'д', 'ж', 'λ', 'ω', '中', '文', 'ñ'];
  const nonAscii = (prefix: string, i: number) =>
    Buffer.from(`${prefix}${i}-${Array.from({ length: rng.int(1, 12) }, () => rng.pick(letters)).join('')}`, 'utf8');
  const newer = Array.from({ length: 500 }, (_, i) => nonAscii('k', i));
  const ascii = Array.from({ length: 200 }, (_, i) => Buffer.from(`plain-${i}-${'x'.repeat(rng.int(0, 40))}`));
  const older = Array.from({ length: 300 }, (_, i) => nonAscii('o', i));

  let vol = await mount(image, 'unsigned');
  let dirIno: number;
  try {
    const seed = dxSeedOf(vol.sb);
    const same = newer.filter((n) => {
      const s = dxDirNameHash(n, seed);
      const u = dxDirNameHash(n, seed, { signedChars: false });
      return s.major_hash === u.major_hash && s.minor_hash === u.minor_hash;
    });
    t.equal(same.length, 0, 'every non-ASCII name hashes differently signed and unsigned');
    dirIno = (await vol.mkdir(vol.rootIno, Buffer.from('d'), 0o755, ROOT)).ino;
    for (const name of [...newer, ...ascii]) {
      const { attr, fh } = await vol.create(dirIno, name, 0o644, O_RDONLY, ROOT);
      await vol.release(attr.ino, fh);
    }
    const { facts } = await checkDxIndex(vol, await vol.iget(dirIno));
    t.ok(facts && facts.clusters >= 3, `the index has several leaf clusters (${JSON.stringify(facts)})`);
  } finally {
    await vol.unmount();
  }

  // As for a volume a 6.2+ kernel wrote: ocfs2-tools hash signed, and look for these names in other leaves.
  const fsck = await runFsck(image);
  const missing = fsck.complaints.filter((l) => /^\[DX_LOOKUP_FAILED\] .* is missing an index entry for the file/.test(l));
  t.equal(missing.length, newer.length, `fsck.ocfs2 misses each non-ASCII name in the index (${missing.length} [DX_LOOKUP_FAILED])`);

  vol = await mount(image, 'signed');
  try {
    const found = await Promise.all([...newer, ...ascii].map((n) => outcome(vol.lookup(dirIno, n))));
    t.same(found.filter((o) => o !== 'ok'), [], 'a signed mount finds every name a 6.2+ kernel would have indexed');
    const removed: string[] = [];
    for (const name of newer) removed.push(await outcome(vol.unlink(dirIno, name)));
    t.same(removed.filter((o) => o !== 'ok'), [], 'and removes the non-ASCII ones, each from the leaf it is in');
    const gone = await Promise.all(newer.map((n) => outcome(vol.lookup(dirIno, n))));
    t.same(gone.filter((o) => o !== 'ENOENT'), [], 'they are gone');
    for (const name of older) {
      const { attr, fh } = await vol.create(dirIno, name, 0o644, O_RDONLY, ROOT);
      await vol.release(attr.ino, fh);
    }
  } finally {
    await vol.unmount();
  }

  vol = await mount(image, 'unsigned');
  try {
    const found = await Promise.all([...older, ...ascii].map((n) => outcome(vol.lookup(dirIno, n))));
    t.same(found.filter((o) => o !== 'ok'), [], 'a mount as a 6.2+ kernel finds the names a signed mount added');
    const removed: string[] = [];
    for (const name of older.filter((_, i) => i % 3 === 0)) removed.push(await outcome(vol.unlink(dirIno, name)));
    t.same(removed.filter((o) => o !== 'ok'), [], 'and removes a third of them');
  } finally {
    await vol.unmount();
  }

  vol = await mount(image, 'signed');
  try {
    const left = [...older.filter((_, i) => i % 3 !== 0), ...ascii];
    const found = await Promise.all(left.map((n) => outcome(vol.lookup(dirIno, n))));
    t.same(found.filter((o) => o !== 'ok'), [], `the ${left.length} names left are found`);
    const { problems, facts } = await checkDxIndex(vol, await vol.iget(dirIno));
    t.same(problems.slice(0, 20), [], `the index is right block by block as ocfs2-tools hash (${JSON.stringify(facts)})`);
  } finally {
    await vol.unmount();
  }
  await assertFsckClean(t, image, 'volume after names came and went under both hashes');
});

t.test('dx_hash= through the mount: a 6.2+ kernel\'s placement, then ocfs2-tools\'', async (t) => {
  const image = await writableImage(t, { blockSize: 4096, clusterSize: 4096, sizeBytes: 256 * MiB });
  // Enough names to take the directory out of the inode's inline area, into blocks with an index.
  const names = Array.from({ length: 120 }, (_, i) => `ñame-${i}-${'é'.repeat(i % 20)}`);
  let m = await mountO2fuse(t, image, { options: 'dx_hash=unsigned' });
  await fs.mkdir(path.join(m.dir, 'd'));
  for (const n of names) await fs.writeFile(path.join(m.dir, 'd', n), n);
  await m.unmount();
  const fsck = await runFsck(image);
  t.equal(fsck.complaints.filter((l) => l.startsWith('[DX_LOOKUP_FAILED]')).length, names.length,
    'with dx_hash=unsigned the names are indexed as a 6.2+ kernel does (fsck.ocfs2 looks for each elsewhere)');

  m = await mountO2fuse(t, image);
  const listed = (await fs.readdir(path.join(m.dir, 'd'))).sort();
  t.same(listed, [...names].sort(), 'the default mount lists them');
  const read = await Promise.all(names.map((n) => fs.readFile(path.join(m.dir, 'd', n), 'utf8').catch((e: NodeJS.ErrnoException) => e.code)));
  t.same(read, names, 'opens each by name');
  const renamed = await Promise.all(names.map((n) =>
    fs.rename(path.join(m.dir, 'd', n), path.join(m.dir, 'd', `${n}-again`)).then(() => 'ok', (e: NodeJS.ErrnoException) => e.code)));
  t.same(renamed.filter((r) => r !== 'ok'), [], 'renames each: its index entry is found under the other hash and dropped');
  await m.unmount();
  await assertFsckClean(t, image, 'volume once the default mount renamed every name (indexed again as ocfs2-tools hash)');
});
