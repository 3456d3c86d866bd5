/**
 * A small in-memory Engine (fs/api.ts) for testing the command line and the
 * fuse-native adapter end to end while the real engine is read-only: it
 * keeps a tree in memory, records what it was asked (open flags, setattr
 * changes, callers) in an op log file, and supports remount.
 *
 * Not a model of OCFS2: no allocation, no limits beyond name length.
 */
import * as fs from 'node:fs';
import { constants } from 'node:fs';
import type { Attr, Caller, DirEntry, Engine, SetAttr, StatFs, Timespec } from '../../fs/api';
import { FsError } from '../../fs/errors';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const NAME_BYTES_MAX = 255;

interface Node {
  attr: Attr;
  data: Buffer;
  entries?: Map<string, number>;
  parent?: number;
}

export interface MemoryEngineOptions {
  readOnly: boolean;
  /** Append one JSON line per call here. */
  opLog?: string;
  /** Write "unmounted" here when unmount() has run. */
  marker?: string;
  /** Refuse remount (to test the refusal path). */
  noRemount?: boolean;
}

function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

const key = (name: Buffer) => name.toString('latin1');

export class MemoryEngine implements Engine {
  readonly rootIno = 1;
  readonly blockSize = 4096;
  private ro: boolean;
  private nextIno = 2;
  private nextFh = 1;
  private readonly nodes = new Map<number, Node>();
  private readonly handles = new Map<number, number>();
  remount?: (o: { readOnly: boolean }) => Promise<void>;

  constructor(private readonly options: MemoryEngineOptions) {
    this.ro = options.readOnly;
    this.nodes.set(1, this.newNode(1, S_IFDIR | 0o755, { uid: 0, gid: 0 }, 1));
    this.nodes.get(1)!.attr.nlink = 2;
    const hello = this.newNode(this.nextIno++, S_IFREG | 0o644, { uid: 0, gid: 0 }, 1);
    hello.data = Buffer.from('hello from the memory engine\n');
    hello.attr.size = hello.data.length;
    this.nodes.set(hello.attr.ino, hello);
    this.nodes.get(1)!.entries!.set('hello', hello.attr.ino);
    if (!options.noRemount) {
      this.remount = async (o) => {
        this.record('remount', o);
        this.ro = o.readOnly;
      };
    }
  }

  get readOnly(): boolean {
    return this.ro;
  }

  private record(op: string, args: Record<string, unknown>): void {
    if (this.options.opLog) fs.appendFileSync(this.options.opLog, `${JSON.stringify({ op, ...args })}\n`);
  }

  private newNode(ino: number, mode: number, caller: Caller, parent: number): Node {
    const t = now();
    const node: Node = {
      attr: { ino, mode, nlink: 1, uid: caller.uid, gid: caller.gid, rdev: 0, size: 0, blocks: 0, blksize: 4096, atime: t, mtime: t, ctime: t, generation: 1 },
      data: Buffer.alloc(0),
      parent,
    };
    if ((mode & S_IFMT) === S_IFDIR) {
      node.entries = new Map();
      node.attr.nlink = 2;
    }
    return node;
  }

  private node(ino: number): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FsError('ENOENT', `no inode ${ino}`);
    return n;
  }

  private dir(ino: number): Node {
    const n = this.node(ino);
    if (!n.entries) throw new FsError('ENOTDIR', `inode ${ino} is not a directory`);
    return n;
  }

  private writable(): void {
    if (this.ro) throw new FsError('EROFS', 'read-only');
  }

  private checkName(name: Buffer): void {
    if (name.length > NAME_BYTES_MAX) throw new FsError('ENAMETOOLONG', `${name.length} bytes`);
  }

  private attrOf(n: Node): Attr {
    n.attr.size = (n.attr.mode & S_IFMT) === S_IFDIR ? 4096 : n.data.length;
    n.attr.blocks = Math.ceil(n.attr.size / 512);
    return { ...n.attr };
  }

  async lookup(parent: number, name: Buffer): Promise<Attr> {
    this.checkName(name);
    const ino = this.dir(parent).entries!.get(key(name));
    if (ino === undefined) throw new FsError('ENOENT', name.toString());
    return this.attrOf(this.node(ino));
  }

  async getattr(ino: number): Promise<Attr> {
    return this.attrOf(this.node(ino));
  }

  async readdir(ino: number): Promise<DirEntry[]> {
    const d = this.dir(ino);
    const out: DirEntry[] = [
      { name: Buffer.from('.'), ino, type: S_IFDIR },
      { name: Buffer.from('..'), ino: d.parent ?? ino, type: S_IFDIR },
    ];
    for (const [name, child] of d.entries!) out.push({ name: Buffer.from(name, 'latin1'), ino: child, type: this.node(child).attr.mode & S_IFMT });
    return out;
  }

  async readlink(ino: number): Promise<Buffer> {
    const n = this.node(ino);
    if ((n.attr.mode & S_IFMT) !== S_IFLNK) throw new FsError('EINVAL', 'not a symlink');
    return Buffer.from(n.data);
  }

  async statfs(): Promise<StatFs> {
    return { bsize: 4096, frsize: 4096, blocks: 1 << 20, bfree: 1 << 19, bavail: 1 << 19, files: 1000, ffree: 900, namemax: NAME_BYTES_MAX };
  }

  async open(ino: number, flags: number): Promise<number> {
    this.record('open', { ino, flags, direct: (flags & constants.O_DIRECT) !== 0 });
    if ((flags & 3) !== constants.O_RDONLY) this.writable();
    this.node(ino);
    const fh = this.nextFh++;
    this.handles.set(fh, ino);
    return fh;
  }

  async read(ino: number, _fh: number, offset: number, length: number): Promise<Buffer> {
    return Buffer.from(this.node(ino).data.subarray(offset, offset + length));
  }

  async write(ino: number, fh: number, offset: number, data: Buffer): Promise<number> {
    this.writable();
    if (this.handles.get(fh) !== ino) throw new FsError('EBADF', `handle ${fh} is not inode ${ino}`);
    const n = this.node(ino);
    const end = offset + data.length;
    if (end > n.data.length) {
      const grown = Buffer.alloc(end);
      n.data.copy(grown);
      n.data = grown;
    }
    data.copy(n.data, offset);
    n.attr.mtime = n.attr.ctime = now();
    return data.length;
  }

  async flush(): Promise<void> {}
  async fsync(): Promise<void> {}

  async release(_ino: number, fh: number): Promise<void> {
    this.handles.delete(fh);
  }

  async create(): Promise<{ attr: Attr; fh: number }> {
    throw new FsError('ENOSYS', 'the adapter must use mknod + open');
  }

  private add(parent: number, name: Buffer, node: Node): Attr {
    this.writable();
    this.checkName(name);
    const d = this.dir(parent);
    if (d.entries!.has(key(name))) throw new FsError('EEXIST', name.toString());
    this.nodes.set(node.attr.ino, node);
    d.entries!.set(key(name), node.attr.ino);
    if (node.entries) d.attr.nlink++;
    return this.attrOf(node);
  }

  async mknod(parent: number, name: Buffer, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    this.record('mknod', { name: name.toString(), mode, rdev, caller });
    const n = this.newNode(this.nextIno++, mode, caller, parent);
    n.attr.rdev = rdev;
    return this.add(parent, name, n);
  }

  async mkdir(parent: number, name: Buffer, mode: number, caller: Caller): Promise<Attr> {
    return this.add(parent, name, this.newNode(this.nextIno++, S_IFDIR | (mode & 0o7777), caller, parent));
  }

  async symlink(parent: number, name: Buffer, target: Buffer, caller: Caller): Promise<Attr> {
    const n = this.newNode(this.nextIno++, S_IFLNK | 0o777, caller, parent);
    n.data = Buffer.from(target);
    return this.add(parent, name, n);
  }

  async link(ino: number, newParent: number, newName: Buffer): Promise<Attr> {
    this.writable();
    const n = this.node(ino);
    if (n.entries) throw new FsError('EPERM', 'hard link to a directory');
    const d = this.dir(newParent);
    if (d.entries!.has(key(newName))) throw new FsError('EEXIST', newName.toString());
    d.entries!.set(key(newName), ino);
    n.attr.nlink++;
    return this.attrOf(n);
  }

  async unlink(parent: number, name: Buffer): Promise<void> {
    this.writable();
    const d = this.dir(parent);
    const ino = d.entries!.get(key(name));
    if (ino === undefined) throw new FsError('ENOENT', name.toString());
    const n = this.node(ino);
    if (n.entries) throw new FsError('EISDIR', name.toString());
    d.entries!.delete(key(name));
    if (--n.attr.nlink === 0) this.nodes.delete(ino);
  }

  async rmdir(parent: number, name: Buffer): Promise<void> {
    this.writable();
    const d = this.dir(parent);
    const ino = d.entries!.get(key(name));
    if (ino === undefined) throw new FsError('ENOENT', name.toString());
    const n = this.dir(ino);
    if (n.entries!.size > 0) throw new FsError('ENOTEMPTY', name.toString());
    d.entries!.delete(key(name));
    d.attr.nlink--;
    this.nodes.delete(ino);
  }

  async rename(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number): Promise<void> {
    this.writable();
    this.record('rename', { from: name.toString(), to: newName.toString(), flags });
    const from = this.dir(parent);
    const to = this.dir(newParent);
    const ino = from.entries!.get(key(name));
    if (ino === undefined) throw new FsError('ENOENT', name.toString());
    const existing = to.entries!.get(key(newName));
    if (existing !== undefined && existing !== ino) {
      const victim = this.node(existing);
      if (victim.entries && victim.entries.size > 0) throw new FsError('ENOTEMPTY', newName.toString());
      if (--victim.attr.nlink === 0 || victim.entries) this.nodes.delete(existing);
    }
    from.entries!.delete(key(name));
    to.entries!.set(key(newName), ino);
    this.node(ino).parent = newParent;
  }

  async setattr(ino: number, changes: SetAttr): Promise<Attr> {
    this.writable();
    this.record('setattr', { ino, changes });
    const n = this.node(ino);
    if (changes.mode !== undefined) n.attr.mode = (n.attr.mode & S_IFMT) | (changes.mode & 0o7777);
    if (changes.uid !== undefined) n.attr.uid = changes.uid;
    if (changes.gid !== undefined) n.attr.gid = changes.gid;
    if (changes.size !== undefined) {
      const resized = Buffer.alloc(changes.size);
      n.data.copy(resized, 0, 0, Math.min(changes.size, n.data.length));
      n.data = resized;
    }
    if (changes.atime !== undefined) n.attr.atime = changes.atime === 'now' ? now() : changes.atime;
    if (changes.mtime !== undefined) n.attr.mtime = changes.mtime === 'now' ? now() : changes.mtime;
    n.attr.ctime = now();
    return this.attrOf(n);
  }

  async fsyncdir(): Promise<void> {}

  async unmount(): Promise<void> {
    this.record('unmount', {});
    if (this.options.marker) fs.writeFileSync(this.options.marker, 'unmounted\n');
  }
}
