/**
 * Running one corpus case against the engine: mount (with a time limit), check what the
 * case expects, check that everything else still reads, unmount. Shared by the engine
 * corpus test; the FUSE corpus test has its own driver.
 */
import { FileDevice } from '../../io/fileDevice';
import { Volume } from '../../fs/volume';
import { runFsck } from '../lib/fsck';
import { rejectsErrno, type ErrnoTest } from '../read/assertErrno';
import { type Located, contentOf } from './corpus';
import { type CorruptCase, INTACT, readPath, resolve } from './cases';

/** Longest any single engine call of a case may take before it counts as a hang. */
export const CALL_MS_MAX = 20_000;

export interface CaseTest extends ErrnoTest {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tap's own signatures
  equal(found: any, wanted: any, ...messageAndExtra: any[]): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tap's own signatures
  same(found: any, wanted: any, ...messageAndExtra: any[]): unknown;
  comment(...args: unknown[]): void;
}

/** `p`, or a rejection naming `what` if it does not settle within `ms` (a hang is a failure, not a stuck run). */
export function withTimeout<T>(p: Promise<T>, what: string, ms = CALL_MS_MAX): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} did not settle within ${ms} ms (hang)`), { errno: 'HANG' })), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/** Opens and mounts an image; on refusal the device is closed again and the error rethrown. */
export async function mountImage(image: string, readOnly: boolean): Promise<Volume> {
  const dev = await FileDevice.open(image, { readOnly });
  try {
    return await Volume.mount(dev, { readOnly });
  } catch (err) {
    await dev.close().catch(() => undefined);
    throw err;
  }
}

function isDamaged(damaged: readonly string[], p: string): boolean {
  return damaged.some((d) => p === d || (d.endsWith('/') && p.startsWith(d)));
}

/** Every INTACT path not in `damaged` (exact, or a prefix ending in '/') reads back right; the root lists its names. */
export async function checkIntact(t: CaseTest, vol: Volume, damaged: readonly string[] = []): Promise<void> {
  const names = await withTimeout(vol.readdir(vol.rootIno), 'readdir /').then(
    (entries) => entries.map((e) => e.name.toString()).sort().join(' '),
    (err: Error) => `readdir / failed: ${err.message}`,
  );
  t.equal(names, '. .. bigdir dir frag inl keep link lost+found small', 'readdir / still lists the whole root');
  const bad: string[] = [];
  for (const p of INTACT) {
    if (isDamaged(damaged, p)) continue;
    try {
      if (p === '/link') {
        const target = (await withTimeout(vol.readlink(await resolve(vol, p)), `readlink ${p}`)).toString();
        if (target !== 'keep') bad.push(`${p}: target ${target}`);
      } else {
        const got = await withTimeout(readPath(vol, p), `read ${p}`);
        if (!got.equals(contentOf(p))) bad.push(`${p}: ${got.length} bytes, content differs`);
      }
    } catch (err) {
      bad.push(`${p}: ${(err as Error).message}`);
    }
  }
  t.equal(bad.join('; '), '', `the rest of the tree reads back right (${INTACT.filter((p) => !isDamaged(damaged, p)).join(' ')})`);
}

/**
 * fsck.ocfs2 -fn's complaints, comparable between runs: 1.8.7's DX_LOOKUP_FAILED prints an "inode #" that is not
 * read from the volume (it differs from run to run on the same image).
 */
export async function fsckComplaints(image: string): Promise<string[]> {
  return (await runFsck(image)).complaints.map((l) => l.replace(/\(inode # \d+\)/g, '(inode # ?)'));
}

/** Runs one case's expectation against the damaged image. */
export async function checkCase(t: CaseTest, c: CorruptCase, image: string, at: Located): Promise<void> {
  const x = c.expect;
  switch (x.kind) {
    case 'refuse': {
      const err = await rejectsErrno(t, withTimeout(mountImage(image, true), 'read-only mount'), x.errno, 'the read-only mount is refused', x.message(at));
      if (err) {
        t.ok(err.message.includes(image), 'the refusal names the device', { diagnostic: !err.message.includes(image), message: err.message });
        t.comment(`refused: ${err.message}`);
      }
      return;
    }
    case 'rwRefuse': {
      const err = await rejectsErrno(t, withTimeout(mountImage(image, false), 'read-write mount'), x.errno, 'the read-write mount is refused', x.message(at));
      if (err) t.comment(`refused: ${err.message}`);
      const vol = await withTimeout(mountImage(image, true), 'read-only mount');
      try {
        t.equal(vol.readOnly, true, 'the read-only mount works');
        await checkIntact(t, vol, c.damaged);
      } finally {
        await vol.unmount();
      }
      return;
    }
    case 'damagedOp': {
      // A change that fails on damage must write nothing of itself: what fsck finds stays what it found before.
      const before = x.rw ? await fsckComplaints(image) : undefined;
      const vol = await withTimeout(mountImage(image, !x.rw), `${x.rw ? 'read-write' : 'read-only'} mount`);
      try {
        const re = x.message(at);
        const err = await rejectsErrno(t, withTimeout(x.op(vol), x.what), x.errno, `${x.what} fails`, re);
        if (err) t.comment(`${x.what}: ${err.message}`);
        await rejectsErrno(t, withTimeout(x.op(vol), `${x.what} again`), x.errno, `${x.what} fails again when retried (the bad block was not cached as good)`, re);
        await checkIntact(t, vol, c.damaged);
      } finally {
        await withTimeout(vol.unmount(), 'unmount');
      }
      if (before) t.same(await fsckComplaints(image), before, 'the failed change wrote nothing: fsck.ocfs2 -fn finds what it found before the mount');
      return;
    }
    case 'corrected': {
      const vol = await withTimeout(mountImage(image, true), 'read-only mount').catch((err: Error) => {
        t.ok(false, `the read-only mount works (${err.message})`);
        return undefined;
      });
      if (!vol) return;
      try {
        const got = await withTimeout(x.op(vol), x.what).catch((err: Error) => err);
        const want = x.want();
        const ok = !(got instanceof Error) && (Buffer.isBuffer(got) && Buffer.isBuffer(want) ? got.equals(want) : got === want);
        t.ok(ok, `${x.what} gives the right answer (the flipped bit was corrected)`, ok ? undefined : { diagnostic: true, got: got instanceof Error ? got.message : String(got).slice(0, 200) });
        await checkIntact(t, vol, c.damaged);
      } finally {
        await vol.unmount();
      }
      return;
    }
  }
}
