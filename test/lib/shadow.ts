/**
 * The view of a tree through the VFS (a FUSE mount, or any directory), in the dump format
 * of `o2tool dump` (dumpFormat.ts), so a test compares a mount with libocfs2 line by line:
 *
 *   t.equal(await shadowDump(mnt, { fields }), await dump(image, { fields }));
 *
 * Fully asynchronous: the daemon serving the mount may run in the test's own process.
 * Field notes for mounts: ino is st_ino (fuse-native reports 32 bits, and only with
 * use_ino is it the inode's block number); atime moves with reads unless mounted
 * noatime. The extent map is not visible through the VFS (FUSE 2 has no lseek
 * SEEK_DATA/SEEK_HOLE, no FIEMAP): give mapOf to supply it, or leave 'map' out.
 *
 * Also materialize(): the write side, building a spec's tree through the VFS.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { fillGen } from './content';
import { runOk } from './exec';
import { type DumpEntry, type DumpOptions, type NodeType, type Timespec, formatDump, formatTime, resolveFields, encodeBytes } from './dumpFormat';
import { type Spec, type TimeArg, dirEntryNames, expectedContent } from './spec';

export interface ShadowOptions extends DumpOptions {
  /** Supplies the map field for a file (decoded path relative to the root, e.g. "/a/f"). */
  mapOf?: (relPath: string, absPath: string) => Promise<string>;
}

const READ_CHUNK_BYTES = 1024 * 1024;

function typeOf(st: BigIntStats): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'sock';
  if (st.isCharacterDevice()) return 'chr';
  if (st.isBlockDevice()) return 'blk';
  return 'unknown';
}

function timespec(ns: bigint): { sec: number; nsec: number } {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

/** glibc's major()/minor() of a Linux dev_t. */
function splitDev(dev: bigint): { major: number; minor: number } {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

async function sha256OfFile(p: Buffer): Promise<string> {
  const h = createHash('sha256');
  const fh = await fs.open(p, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (!bytesRead) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Dump entries for the tree under root (a mount point or any directory). */
export async function shadowEntries(root: string, o: ShadowOptions = {}): Promise<DumpEntry[]> {
  const fields = new Set(resolveFields(o));
  if (fields.has('map') && !o.mapOf) {
    throw new Error('shadowDump: the extent map is not visible through the VFS; pass mapOf or leave map out');
  }
  const out: DumpEntry[] = [];
  const start = o.path ?? '/';
  // Buffers for names: a name need not be valid UTF-8.
  const visit = async (abs: Buffer, rel: Buffer): Promise<void> => {
    const st = await fs.lstat(abs, { bigint: true });
    const type = typeOf(st);
    const relText = encodeBytes(rel);
    const e: DumpEntry = {
      path: relText,
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      nlink: Number(st.nlink),
      size: Number(st.size),
      ino: Number(st.ino),
      atime: timespec(st.atimeNs),
      mtime: timespec(st.mtimeNs),
      ctime: timespec(st.ctimeNs),
    };
    if (fields.has('data')) {
      if (type === 'file') e.sha256 = await sha256OfFile(abs);
      else if (type === 'symlink') e.target = encodeBytes(await fs.readlink(abs, { encoding: 'buffer' }));
      else if (type === 'chr' || type === 'blk') e.rdev = splitDev(st.rdev);
    }
    if (fields.has('map') && type === 'file' && o.mapOf) e.map = await o.mapOf(rel.toString('utf8'), abs.toString('utf8'));
    out.push(e);
    if (type === 'dir') {
      const names = await fs.readdir(abs, { encoding: 'buffer' });
      for (const name of names) {
        const childRel = rel.length === 1 ? Buffer.concat([rel, name]) : Buffer.concat([rel, Buffer.from('/'), name]);
        await visit(Buffer.concat([abs, Buffer.from('/'), name]), childRel);
      }
    }
  };
  const startRel = Buffer.from(start.replace(/(.)\/+$/, '$1'), 'utf8');
  const rootAbs = Buffer.from(path.join(root, start).replace(/(.)\/+$/, '$1'), 'utf8');
  await visit(rootAbs, startRel);
  return out;
}

/** The dump text for the tree under root: identical to `o2tool dump` of the same tree with the same options. */
export async function shadowDump(root: string, o: ShadowOptions = {}): Promise<string> {
  return formatDump(await shadowEntries(root, o), resolveFields(o));
}

/**
 * Builds a spec's tree under root through ordinary file calls (to write a tree through
 * a mount). Where the VFS cannot say what o2tool does, the result differs on disk but
 * not in content: inline and unwritten are plain writes / size extensions, sparse
 * writes only the data ranges (holes where the filesystem keeps them), nodes are made
 * with mknod(1), times with touch(1) (nanoseconds), last and children before parents;
 * ctime cannot be set.
 */
export async function materialize(root: string, spec: Spec): Promise<void> {
  const at = (p: string): string => path.join(root, p);
  const timed: { p: string; atime?: Timespec; mtime?: Timespec }[] = [];
  const ts = (t: TimeArg | undefined): Timespec | undefined => (typeof t === 'number' ? { sec: t, nsec: 0 } : t);
  for (const e of spec) {
    switch (e.kind) {
      case 'mkdir':
        await fs.mkdir(at(e.path), { mode: e.mode ?? 0o755 });
        break;
      case 'dir':
        await fs.mkdir(at(e.path), { mode: e.mode ?? 0o755 });
        for (const name of dirEntryNames(e.count)) await (await fs.open(at(`${e.path}/${name}`), 'wx', 0o644)).close();
        break;
      case 'file':
      case 'inline':
      case 'unwritten':
        await fs.writeFile(at(e.path), e.kind === 'unwritten' ? Buffer.alloc(0) : expectedContent(e), { mode: e.mode ?? 0o644, flag: 'wx' });
        if (e.kind === 'unwritten') await fs.truncate(at(e.path), e.size);
        break;
      case 'sparse': {
        const fh = await fs.open(at(e.path), 'wx', e.mode ?? 0o644);
        try {
          for (const r of e.ranges) {
            if (r.unwritten) continue;
            for (let off = r.offset; off < r.offset + r.length; off += READ_CHUNK_BYTES) {
              const len = Math.min(READ_CHUNK_BYTES, r.offset + r.length - off);
              const buf = Buffer.allocUnsafe(len);
              fillGen(buf, 0, e.seed, off, len);
              await fh.write(buf, 0, len, off);
            }
          }
          await fh.truncate(e.size);
        } finally {
          await fh.close();
        }
        break;
      }
      case 'symlink':
        await fs.symlink(e.target, at(e.path));
        break;
      case 'link':
        await fs.link(at(e.existing), at(e.path));
        break;
      case 'node': {
        const args = [e.node === 'chr' ? 'c' : e.node === 'blk' ? 'b' : 'p'];
        if (e.node === 'sock') throw new Error('materialize: sockets cannot be made with mknod');
        if (e.node !== 'fifo') args.push(String(e.major ?? 0), String(e.minor ?? 0));
        await runOk('mknod', ['-m', (e.mode ?? 0o644).toString(8), at(e.path), ...args]);
        break;
      }
    }
    if (e.kind !== 'link') {
      // mkdir/open/mknod modes pass through the umask: set the bits exactly
      if (e.mode !== undefined && e.kind !== 'symlink') await fs.chmod(at(e.path), e.mode);
      if (e.uid !== undefined || e.gid !== undefined) await fs.lchown(at(e.path), e.uid ?? 0, e.gid ?? 0);
    }
    if (e.kind !== 'link' && (e.atime !== undefined || e.mtime !== undefined)) {
      timed.push({ p: at(e.path), atime: ts(e.atime), mtime: ts(e.mtime) });
    }
  }
  // touch(1) takes nanoseconds; node's utimes takes a double and loses them
  for (const x of timed.reverse()) {
    if (x.atime) await runOk('touch', ['-h', '-a', '-d', `@${formatTime(x.atime)}`, x.p]);
    if (x.mtime) await runOk('touch', ['-h', '-m', '-d', `@${formatTime(x.mtime)}`, x.p]);
  }
}
