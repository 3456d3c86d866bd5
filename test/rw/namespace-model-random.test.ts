/**
 * Random namespace operations at the engine level (Volume directly) against
 * an in-memory model of the tree (namespace-model.ts): create, mkdir,
 * symlink (fast and slow targets), link, unlink, rmdir, rename (over files,
 * over empty and non-empty directories, into its own subtree, onto itself,
 * NOREPLACE, EXCHANGE), write, truncate, chmod, and files held open across
 * their last unlink (orphans, freed at the last release). Every call's
 * errno is predicted as Linux would give it; after every step the touched
 * directories (readdir, "." and "..", lookups, link counts, attributes) and
 * files (size, bytes) are compared with the model.
 *
 * Every STEPS_PER_REMOUNT steps: unmount, fsck.ocfs2 -fn, remount, compare
 * the whole tree; every other time the unmount leaves handles open, and the
 * remount must free the orphans they kept (the next round's fsck checks it). At the end libocfs2 (o2tool dump) agrees
 * with the model, everything is deleted, and the allocators are back to their
 * starting counts. Seeded ($SEED), printed.
 */
import t, { type Test } from 'tap';
import { rngFrom } from '../lib/seed';
import { assertFsckClean } from '../lib/fsck';
import { dumpEntries, sha256Hex, encodePath } from '../lib/oracle';
import { writableImage, mountEngine, allocCounts, assertCountsBack, dirHoldings, heldSince, MiB } from './helpers';
import { Model, Driver, Divergence, checkTree, type MNode } from './namespace-model';
import type { Volume } from '../../fs/volume';
import { ORPHAN_DIR_SYSTEM_INODE, systemInodeName } from '../../fs/format/constants';

const ORPHAN_DIR = systemInodeName(ORPHAN_DIR_SYSTEM_INODE, 0);

const STEPS = Number(process.env.STEPS ?? 2500);
const STEPS_PER_REMOUNT = 500;

interface Config {
  name: string;
  blockSize: number;
  clusterSize: number;
  features?: string;
}

const configs: Config[] = [
  { name: '4K blocks, 4K clusters, inline-data', blockSize: 4096, clusterSize: 4096 },
  { name: '512-byte blocks, 4K clusters, no inline-data', blockSize: 512, clusterSize: 4096, features: 'noinline-data' },
  { name: '1K blocks, 8K clusters, metaecc', blockSize: 1024, clusterSize: 8192, features: 'metaecc' },
];

/** libocfs2's view of the tree equals the model: types, sizes, link counts, bytes, targets. */
async function assertOracleAgrees(t: Test, image: string, m: Model): Promise<void> {
  const want = new Map<string, string>();
  const lineOf = (n: MNode): string => {
    const nlink = m.nlink(n);
    if (n.kind === 'file') return `file nlink=${nlink} size=${n.data.length} sha256=${sha256Hex(n.data)}`;
    if (n.kind === 'symlink') return `symlink nlink=${nlink} size=${n.target.length} target=${encodePath(n.target)}`;
    return `dir nlink=${nlink}`;
  };
  const walk = (d: MNode, prefix: Buffer) => {
    for (const [name, ino] of d.entries) {
      const p = Buffer.concat([prefix, Buffer.from('/'), Buffer.from(name, 'latin1')]);
      const n = m.node(ino);
      want.set(encodePath(p), lineOf(n));
      if (n.kind === 'dir') walk(n, p);
    }
  };
  const root = m.node(m.rootIno);
  want.set('/', lineOf(root));
  walk(root, Buffer.alloc(0));
  const got = new Map<string, string>();
  for (const e of await dumpEntries(image, { fields: ['nlink', 'size', 'data'] })) {
    const line = e.type === 'file' ? `file nlink=${e.nlink} size=${e.size} sha256=${e.sha256}`
      : e.type === 'symlink' ? `symlink nlink=${e.nlink} size=${e.size} target=${e.target}`
        : `${e.type} nlink=${e.nlink}`;
    got.set(e.path, line);
  }
  const diffs: string[] = [];
  for (const [p, line] of want) if (got.get(p) !== line) diffs.push(`${p}: libocfs2 "${got.get(p)}", model "${line}"`);
  for (const p of got.keys()) if (!want.has(p)) diffs.push(`${p}: only libocfs2 has it`);
  t.same(diffs.slice(0, 20), [], `libocfs2 (o2tool dump) reads the same ${want.size} paths as the model`);
}

/** Deletes everything the workload made, deepest first. */
async function deleteAll(vol: Volume, m: Model): Promise<void> {
  const rm = async (d: MNode) => {
    for (const [name, ino] of [...d.entries]) {
      if (m.reserved.has(ino)) continue;
      const n = m.node(ino);
      if (n.kind === 'dir') {
        await rm(n);
        await vol.rmdir(d.ino, Buffer.from(name, 'latin1'));
        m.removeDir(n);
      } else {
        await vol.unlink(d.ino, Buffer.from(name, 'latin1'));
        m.dropFileLink(n);
      }
      d.entries.delete(name);
    }
  };
  await rm(m.node(m.rootIno));
}

for (const c of configs) {
  t.test(`random namespace operations match the model: ${c.name}`, { timeout: 600_000 }, async (t) => {
    const rng = rngFrom(t);
    const image = await writableImage(t, { blockSize: c.blockSize, clusterSize: c.clusterSize, features: c.features, sizeBytes: 512 * MiB });
    let vol = await mountEngine(image);
    const start = await allocCounts(vol);
    // Directories never shrink (neither do the kernel's): the root keeps what it grows, and its index if it got one.
    const rootAtStart = await dirHoldings(vol, vol.rootIno);
    const m = await Model.load(vol);
    for (const [name, ino] of m.node(m.rootIno).entries) if (name === 'lost+found') m.reserved.add(ino);
    let driver = new Driver(vol, m, rng, { blockSize: c.blockSize, clusterSize: c.clusterSize, keepOpen: 0.1 });
    const started = Date.now();
    let step = 0;
    const history: string[] = [];
    let failed = false;
    try {
      for (step = 1; step <= STEPS; step++) {
        const { desc, dirs, files } = await driver.step();
        history.push(`${step}: ${desc}`);
        if (history.length > 40) history.shift();
        await driver.check(dirs, files);
        if (step % STEPS_PER_REMOUNT === 0) {
          // Every other time the unmount comes with handles still open: their orphans stay on disk for
          // the next mount to free (fsck -n would only say it skips them, so it waits for the next round).
          const leaveOpen = (step / STEPS_PER_REMOUNT) % 2 === 1 && m.open.length > 0;
          const orphans = m.open.filter((h) => m.unlinked(m.node(h.ino))).length;
          if (leaveOpen) m.closeAll();
          else await driver.releaseAll();
          await vol.unmount();
          if (!leaveOpen && !(await assertFsckClean(t, image, `volume after ${step} steps`))) {
            failed = true;
            break;
          }
          vol = await mountEngine(image);
          driver = new Driver(vol, m, rng, driver.o, driver.counts);
          if (leaveOpen) {
            const left = (await vol.readdir(vol.systemFile(ORPHAN_DIR))).length - 2;
            t.equal(left, 0, `unmounted after ${step} steps with ${orphans} open orphan(s): the remount freed them`);
          }
          const n = await checkTree(vol, m);
          t.pass(`after ${step} steps and a remount, the whole tree (${n} directories and files) matches the model`);
        }
      }
    } catch (err) {
      failed = true;
      const detail = err instanceof Divergence ? err.detail : { stack: (err as Error).stack };
      t.fail(`step ${step}: ${(err as Error).message}`, { ...detail, seed: rng.seed, lastSteps: history });
    }
    const counts = [...driver.counts].sort().map(([k, v]) => `${k}: ${v}`);
    t.comment(`${step - 1} steps in ${((Date.now() - started) / 1000).toFixed(1)} s; outcomes: ${counts.join(', ')}`);
    if (failed) {
      await vol.unmount().catch(() => {});
      return;
    }
    await driver.releaseAll();
    await vol.unmount();
    await assertFsckClean(t, image, 'volume after the random run');
    await assertOracleAgrees(t, image, m);

    vol = await mountEngine(image);
    const n = await checkTree(vol, m);
    t.pass(`after a remount the whole tree (${n} directories and files) matches the model`);
    await deleteAll(vol, m);
    const rootGrowth = heldSince(rootAtStart, await dirHoldings(vol, vol.rootIno));
    assertCountsBack(t, start, await allocCounts(vol), 'after deleting everything', rootGrowth);
    await vol.unmount();
    await assertFsckClean(t, image, 'emptied volume');
  });
}
