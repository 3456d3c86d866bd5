/**
 * Shared pieces of the directory tests: a volume with a test directory and a
 * few real target inodes (made by the libocfs2 oracle), entry changes through
 * fs/dirUpdate.ts in transactions that also keep the targets' link counts
 * right (fsck checks them), and a model of what the directory must hold.
 */
import type { Test } from 'tap';
import { FileDevice } from '../../io/fileDevice';
import { Volume } from '../../fs/volume';
import type { Inode } from '../../fs/inode';
import { Transaction, editInode } from '../../fs/transaction';
import { addEntry, removeEntry, setEntryInode, placementOf } from '../../fs/dirUpdate';
import { readDirSlots, lookupEntry } from '../../fs/dir';
import { dinodeLinksCount, setDinodeLinksCount } from '../../fs/format/dinode';
import { OCFS2_FT_REG_FILE, OCFS2_FT_SYMLINK } from '../../fs/format/constants';
import { makeImage } from '../lib/volume';
import { populate } from '../lib/oracle';
import { lsDir } from '../lib/debugfs';
import { assertFsckClean } from '../lib/fsck';
import type { Rng } from '../lib/seed';

export interface VolumeCase {
  name: string;
  blockSize: number;
  clusterSize: number;
  /** mkfs --fs-features (noindexed-dirs is added unless `indexed`). */
  features?: string;
  /** Keep mkfs's indexed-dirs: every block directory carries a dx index. */
  indexed?: boolean;
}

export const CASES: VolumeCase[] = [
  { name: '4K blocks, 4K clusters, inline-data', blockSize: 4096, clusterSize: 4096 },
  { name: '512-byte blocks, 4K clusters, no inline-data', blockSize: 512, clusterSize: 4096, features: 'noinline-data' },
  { name: '1K blocks, 8K clusters, metaecc, inline-data', blockSize: 1024, clusterSize: 8192, features: 'metaecc' },
  { name: '2K blocks, 4K clusters, metaecc, no inline-data', blockSize: 2048, clusterSize: 4096, features: 'metaecc,noinline-data' },
];

export interface Target {
  path: string;
  ino: number;
  fileType: number;
}

/** What the test directory must hold (apart from "." and ".."): name -> target. */
export type Model = Map<string, Target>;

/*
 * Model names are latin1 strings of a name's bytes; tools print names as text (UTF-8). The non-ASCII names the
 * tests make are valid UTF-8, so the two convert both ways.
 */
/** A model name from a line a tool printed. */
export const nameOfText = (line: string): string => Buffer.from(line, 'utf8').toString('latin1');
/** A model name as text, for a script. */
export const textOfName = (name: string): string => Buffer.from(name, 'latin1').toString('utf8');

export interface Fixture {
  image: string;
  /** Target files and a symlink that entries point at (their link counts follow the entries). */
  targets: Target[];
}

/** A fresh image with /d (empty) and /t0.. /t5, /s as link targets. */
export async function makeFixture(t: Test, c: VolumeCase): Promise<Fixture> {
  const features = [...(c.indexed ? [] : ['noindexed-dirs']), ...(c.features ? [c.features] : [])].join(',');
  const image = await makeImage(t, { blockSize: c.blockSize, clusterSize: c.clusterSize, features, sizeBytes: 512 * 1024 * 1024 });
  const spec = ['mkdir /d'];
  for (let i = 0; i < 6; i++) spec.push(`file /t${i} 0 0`);
  spec.push('symlink /s target-of-s');
  await populate(image, spec.join('\n') + '\n');
  const ls = await lsDir(image, '/');
  const inoOf = (name: string) => {
    const e = ls.find((x) => x.name === name);
    if (!e) throw new Error(`no /${name} after populate`);
    return e.blkno;
  };
  const targets: Target[] = [];
  for (let i = 0; i < 6; i++) targets.push({ path: `/t${i}`, ino: inoOf(`t${i}`), fileType: OCFS2_FT_REG_FILE });
  targets.push({ path: '/s', ino: inoOf('s'), fileType: OCFS2_FT_SYMLINK });
  return { image, targets };
}

export async function mountRw(image: string): Promise<Volume> {
  return Volume.mount(await FileDevice.open(image), { readOnly: false });
}

export async function dirOf(vol: Volume, path: string): Promise<Inode> {
  const root = await vol.iget(vol.rootIno);
  const e = await lookupEntry(vol, root, Buffer.from(path.replace(/^\//, '')));
  if (!e) throw new Error(`${path} not found`);
  return vol.iget(e.ino);
}

/** One change of the test directory. */
export type Op = { kind: 'add'; name: string; target: Target } | { kind: 'remove'; name: string }
  | { kind: 'repoint'; name: string; target: Target };

/**
 * Applies ops in transactions of 1..maxPerTx ops (sizes from rng), each also
 * moving the link counts of the targets involved, and updates the model.
 */
export async function applyOps(vol: Volume, dir: Inode, ops: readonly Op[], model: Model, rng: Rng, maxPerTx = 8): Promise<void> {
  let i = 0;
  while (i < ops.length) {
    const n = Math.min(ops.length - i, rng.int(1, maxPerTx));
    const tx = new Transaction(vol, `dir test ops ${i}..${i + n - 1}`);
    const linkDelta = new Map<number, number>();
    const bump = (ino: number, d: number) => linkDelta.set(ino, (linkDelta.get(ino) ?? 0) + d);
    for (const op of ops.slice(i, i + n)) {
      const name = Buffer.from(op.name, 'latin1');
      if (op.kind === 'add') {
        await addEntry(vol, tx, dir, name, op.target.ino, op.target.fileType);
        bump(op.target.ino, +1);
        model.set(op.name, op.target);
      } else if (op.kind === 'remove') {
        const gone = await removeEntry(vol, tx, dir, name);
        const was = model.get(op.name);
        if (!was || gone.ino !== was.ino || gone.fileType !== was.fileType) {
          throw new Error(`removeEntry(${op.name}) returned ${JSON.stringify(gone)}, model has ${JSON.stringify(was)}`);
        }
        bump(gone.ino, -1);
        model.delete(op.name);
      } else {
        const was = model.get(op.name)!;
        await setEntryInode(vol, tx, dir, name, op.target.ino, op.target.fileType);
        bump(was.ino, -1);
        bump(op.target.ino, +1);
        model.set(op.name, op.target);
      }
    }
    for (const [ino, d] of linkDelta) {
      if (d === 0) continue;
      const di = await editInode(tx, await vol.iget(ino));
      setDinodeLinksCount(di, dinodeLinksCount(di) + d);
    }
    await tx.commit();
    i += n;
  }
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=,.~';

/** `count` distinct names of 1..255 bytes (mostly short, some long), none "." or "..", none in `avoid`. */
export function makeNames(rng: Rng, count: number, avoid: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  const seen = new Set(avoid);
  while (out.length < count) {
    const r = rng.float();
    const len = r < 0.4 ? rng.int(1, 16) : r < 0.85 ? rng.int(17, 64) : rng.int(65, 255);
    let s = '';
    for (let k = 0; k < len; k++) s += ALPHABET[rng.int(0, ALPHABET.length - 1)];
    if (s === '.' || s === '..' || seen.has(s)) continue;
    seen.add(s);
    out.push(s);
  }
  return out;
}

/**
 * The engine agrees with the model: readdir (on-disk order, "." and ".." first),
 * lookups through the name index for every name, lookups of `absent` names fail,
 * and the placement map (when current) names the block each entry is in.
 */
export async function checkAgainstModel(t: Test, vol: Volume, dir: Inode, parentIno: number, model: Model,
  absent: readonly string[], what: string): Promise<void> {
  const slots = await readDirSlots(vol, dir);
  const problems: string[] = [];
  if (slots[0]?.name.toString() !== '.' || slots[0].ino !== dir.ino) problems.push('first entry is not "." -> itself');
  if (slots[1]?.name.toString() !== '..' || slots[1].ino !== parentIno) problems.push('second entry is not ".." -> parent');
  const seen = new Map<string, { ino: number; fileType: number }>();
  for (const s of slots.slice(2)) {
    const key = s.name.toString('latin1');
    if (seen.has(key)) problems.push(`"${key}" listed twice`);
    seen.set(key, { ino: s.ino, fileType: s.fileType });
  }
  for (const [name, target] of model) {
    const s = seen.get(name);
    if (!s) problems.push(`readdir lacks "${name}"`);
    else if (s.ino !== target.ino || s.fileType !== target.fileType) problems.push(`readdir: "${name}" -> ${s.ino}/${s.fileType}, model ${target.ino}/${target.fileType}`);
    const e = await lookupEntry(vol, dir, Buffer.from(name, 'latin1'));
    if (!e || e.ino !== target.ino || e.fileType !== target.fileType) problems.push(`lookup("${name}") gives ${JSON.stringify(e)}`);
    if (problems.length > 20) break;
  }
  for (const name of seen.keys()) if (!model.has(name)) problems.push(`readdir has unexpected "${name}"`);
  for (const name of absent.slice(0, 500)) {
    if (await lookupEntry(vol, dir, Buffer.from(name, 'latin1'))) problems.push(`lookup("${name}") finds a removed name`);
  }
  const placement = placementOf(dir);
  if (placement) {
    for (const s of slots) {
      if (placement.get(s.name.toString('latin1')) !== s.lblk) problems.push(`placement map puts "${s.name}" in ${placement.get(s.name.toString('latin1'))}, it is in ${s.lblk}`);
      if (problems.length > 40) break;
    }
    if (placement.size !== slots.length) problems.push(`placement map has ${placement.size} names, directory ${slots.length}`);
  }
  t.same(problems, [], `${what}: readdir, lookups and placement agree with the model (${model.size} names)`);
}

/** debugfs.ocfs2 lists exactly the model's names with the model's inodes, and fsck.ocfs2 -fn is clean. */
export async function checkOnDisk(t: Test, image: string, model: Model, what: string): Promise<void> {
  const ls = await lsDir(image, '/d');
  const listed = new Map(ls.filter((e) => e.name !== '.' && e.name !== '..').map((e) => [nameOfText(e.name), e.blkno]));
  const problems: string[] = [];
  for (const [name, target] of model) if (listed.get(name) !== target.ino) problems.push(`debugfs: "${name}" -> ${listed.get(name)}`);
  for (const name of listed.keys()) if (!model.has(name)) problems.push(`debugfs lists unexpected "${name}"`);
  t.same(problems.slice(0, 20), [], `${what}: debugfs.ocfs2 ls -l /d lists the model's ${model.size} names`);
  await assertFsckClean(t, image, `volume ${what}`);
}
