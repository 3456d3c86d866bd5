/**
 * The libfuse transport's path cache (fs/fuse/paths.ts) against a counting
 * fake engine: forget() drops one name and nothing else (a removed file),
 * forgetTree() drops a directory's name and everything cached below it but
 * not a sibling that merely shares the first letters, and a lookup that
 * raced with either is not cached. What the cache still answers is seen in
 * the engine's lookup count: a dropped path is walked again.
 *
 * Then through a real libfuse mount, each change made right after its paths
 * were looked up (so they are cached): a directory renamed away and a new
 * one made under its old name, a file renamed over another, a file
 * unlinked and made again. Every old path must then name what is there now;
 * fsck.ocfs2 -fn is clean afterwards.
 */
import t from 'tap';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { writableImage } from './helpers';
import type { Attr, Engine } from '../../fs/api';
import { FsError } from '../../fs/errors';
import { PathResolver } from '../../fs/fuse/paths';

/** A namespace of directory entries (parent ino + name -> ino), answering lookups and counting them. */
function fakeEngine(entries: Record<string, number>) {
  const lookups: string[] = [];
  let gate: Promise<void> | undefined;
  const engine = {
    rootIno: 1,
    async lookup(parent: number, name: Buffer): Promise<Attr> {
      const key = `${parent}/${name.toString()}`;
      lookups.push(key);
      if (gate) await gate;
      const ino = entries[key];
      if (ino === undefined) throw new FsError('ENOENT', key);
      return { ino } as Attr;
    },
    async getattr(ino: number): Promise<Attr> {
      return { ino } as Attr;
    },
  } as unknown as Engine;
  return {
    engine,
    lookups,
    entries,
    /** Holds every lookup until the returned function is called. */
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => { release = r; });
      return () => { gate = undefined; release(); };
    },
  };
}

// /a (2) holds b (3), bc (4) and file f (5); /a/b holds x (6).
const TREE = { '1/a': 2, '2/b': 3, '2/bc': 4, '2/f': 5, '3/x': 6 };

async function warm(paths: PathResolver): Promise<void> {
  for (const p of ['/a/b/x', '/a/bc', '/a/f']) await paths.ino(p);
}

t.test('forget() drops the one name: everything else is still answered from the cache', async (t) => {
  const e = fakeEngine({ ...TREE });
  const paths = new PathResolver(e.engine);
  await warm(paths);
  t.equal(paths.size, 5, '/a, /a/b, /a/b/x, /a/bc, /a/f cached');
  e.lookups.length = 0;
  paths.forget('/a/f');
  t.equal(paths.size, 4);
  t.equal(await paths.ino('/a/b/x'), 6);
  t.equal(await paths.ino('/a/bc'), 4);
  t.same(e.lookups, [], 'no lookup for what stayed');
  t.equal(await paths.ino('/a/f'), 5);
  t.same(e.lookups, ['2/f'], 'the forgotten name is walked again, from its cached directory');
});

t.test('forgetTree() drops a directory and what is below it, not a sibling sharing its first letters', async (t) => {
  const e = fakeEngine({ ...TREE });
  const paths = new PathResolver(e.engine);
  await warm(paths);
  // /a/b renamed away: its name and /a/b/x must go; /a/bc is another name.
  delete e.entries['2/b'];
  e.entries['2/b2'] = 3;
  paths.forgetTree('/a/b');
  t.equal(paths.size, 3, '/a, /a/bc, /a/f left');
  e.lookups.length = 0;
  t.equal(await paths.ino('/a/bc'), 4);
  t.same(e.lookups, [], '/a/bc still cached');
  await t.rejects(paths.ino('/a/b/x'), /ENOENT/, 'the old path is looked up again and is gone');
  t.equal(await paths.ino('/a/b2/x'), 6, 'the new one resolves');
  t.equal(paths.size, 5, '/a/b2 and /a/b2/x cached');
  paths.forgetTree('/a');
  t.equal(paths.size, 0, 'the whole tree under /a, two levels deep, is gone');
});

t.test('a lookup that raced with a forget is not cached', async (t) => {
  for (const how of ['forget', 'forgetTree'] as const) {
    const e = fakeEngine({ ...TREE });
    const paths = new PathResolver(e.engine);
    await paths.ino('/a');
    const release = e.hold();
    const walking = paths.ino('/a/f');
    paths[how]('/a/f');
    release();
    t.equal(await walking, 5);
    e.lookups.length = 0;
    await paths.ino('/a/f');
    t.same(e.lookups, ['2/f'], `${how}: the answer that crossed it was not kept`);
  }
});

t.test('through a libfuse mount: old paths name what is there after renames and removals', async (t) => {
  const image = await writableImage(t);
  const m = await mountO2fuse(t, image, { options: 'transport=libfuse' });
  const at = (p: string) => path.join(m.dir, p);
  const ino = async (p: string) => (await fs.stat(at(p))).ino;
  const gone = async (p: string) => fs.stat(at(p)).then(() => 'exists', (err: NodeJS.ErrnoException) => err.code);

  // A directory with a file and a subdirectory, all looked up, renamed away; a new directory takes the old name.
  await fs.mkdir(at('d/sub'), { recursive: true });
  await fs.writeFile(at('d/f'), 'in d');
  await fs.writeFile(at('d/sub/g'), 'in d/sub');
  const [fIno, gIno] = [await ino('d/f'), await ino('d/sub/g')];
  await fs.rename(at('d'), at('e'));
  await fs.mkdir(at('d'));
  t.equal(await gone('d/f'), 'ENOENT', 'the moved file is not under the new directory');
  t.equal(await gone('d/sub/g'), 'ENOENT', 'nor is the moved subdirectory\'s file');
  t.equal(await ino('e/f'), fIno, 'the file is under the new name');
  t.equal(await fs.readFile(at('e/sub/g'), 'utf8'), 'in d/sub');
  t.equal(await ino('e/sub/g'), gIno);
  await fs.writeFile(at('d/f'), 'new');
  t.not(await ino('d/f'), fIno, 'a new file under the old path is a new inode');
  t.equal(await fs.readFile(at('e/f'), 'utf8'), 'in d', 'the moved file is untouched');

  // A file renamed over another: the target's path names the source's inode, the source's path nothing.
  await fs.writeFile(at('a'), 'a');
  await fs.writeFile(at('b'), 'b');
  const aIno = await ino('a');
  await ino('b');
  await fs.rename(at('a'), at('b'));
  t.equal(await gone('a'), 'ENOENT');
  t.equal(await ino('b'), aIno);
  t.equal(await fs.readFile(at('b'), 'utf8'), 'a');

  // A file unlinked and made again under the same name (which may well get the freed inode block back).
  await fs.writeFile(at('u'), 'first');
  await ino('u');
  await fs.unlink(at('u'));
  t.equal(await gone('u'), 'ENOENT');
  await fs.writeFile(at('u'), 'second');
  t.equal(await fs.readFile(at('u'), 'utf8'), 'second');

  // A directory removed and made again: nothing of the old one is found under it.
  await fs.mkdir(at('r'));
  await fs.writeFile(at('r/x'), 'x');
  await ino('r/x');
  await fs.unlink(at('r/x'));
  await fs.rmdir(at('r'));
  await fs.mkdir(at('r'));
  t.equal(await gone('r/x'), 'ENOENT');

  await m.unmount();
  await assertFsckClean(t, image, 'volume after the renames and removals');
});
