/**
 * Path -> inode resolution for path-based transports (fuse-native hands us
 * "/a/b/c", the engine wants inode numbers). Transport glue only: it walks
 * engine.lookup from the root and remembers a bounded number of answers.
 *
 * The cache is correct as long as every rename/unlink/rmdir passes through
 * this mount's adapter, which calls forget() or forgetTree(). A lookup that
 * raced with either is not cached (the generation check), so a rename can
 * never be undone by a slow lookup finishing after it.
 */
import type { Attr, Engine } from '../api';
import { FsError } from '../errors';

export const PATH_CACHE_ENTRIES_MAX = 4096;

export class PathResolver {
  private readonly inoByPath = new Map<string, number>();
  /** Bumped by every forget(): lookups started before it do not cache their answer. */
  private generation = 0;

  constructor(
    private readonly engine: Engine,
    private readonly entriesMax = PATH_CACHE_ENTRIES_MAX,
  ) {}

  /** The inode number of `path`. */
  async ino(path: string): Promise<number> {
    if (path === '/') return this.engine.rootIno;
    const cached = this.inoByPath.get(path);
    if (cached !== undefined) {
      this.remember(path, cached);
      return cached;
    }
    return (await this.walk(path)).ino;
  }

  /**
   * The attributes of `path`. The last lookup of a walk already returns them;
   * a cached inode is asked with getattr and, if it has gone away behind our
   * back, walked again once.
   */
  async attr(path: string): Promise<Attr> {
    if (path === '/') return this.engine.getattr(this.engine.rootIno);
    const cached = this.inoByPath.get(path);
    if (cached !== undefined) {
      try {
        return await this.engine.getattr(cached);
      } catch (err) {
        if (!(err instanceof FsError) || (err.errno !== 'ENOENT' && err.errno !== 'ESTALE')) throw err;
        this.forget(path);
      }
    }
    return this.walk(path);
  }

  /** The parent directory's inode and the last component, for create/remove ops. */
  async parentOf(path: string): Promise<{ parent: number; name: Buffer }> {
    const slash = path.lastIndexOf('/');
    const dir = slash <= 0 ? '/' : path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (name.length === 0) throw new FsError('EINVAL', `no name in path "${path}"`);
    return { parent: await this.ino(dir), name: Buffer.from(name, 'utf8') };
  }

  /**
   * Drops `path`, a name with nothing cached below it: one that named a
   * file (no lookup under a file succeeds, so none is cached).
   */
  forget(path: string): void {
    this.generation++;
    this.inoByPath.delete(path);
  }

  /**
   * Drops `path` and every cached path below it: for a directory renamed or
   * removed. That looks at every cached path, so a file's name goes through
   * forget() instead (the metadata benchmark's 5,000 unlinks each scanned
   * ~2,500 cached paths, 14 us a scan at the median).
   */
  forgetTree(path: string): void {
    this.forget(path);
    const prefix = path.endsWith('/') ? path : `${path}/`;
    for (const key of this.inoByPath.keys()) {
      if (key.startsWith(prefix)) this.inoByPath.delete(key);
    }
  }

  get size(): number {
    return this.inoByPath.size;
  }

  private async walk(path: string): Promise<Attr> {
    const startGeneration = this.generation;
    const parts = path.split('/').filter((p) => p.length > 0);
    let ino = this.engine.rootIno;
    let prefix = '';
    let attr: Attr | undefined;
    for (let i = 0; i < parts.length; i++) {
      prefix += `/${parts[i]}`;
      const last = i === parts.length - 1;
      const cached = last ? undefined : this.inoByPath.get(prefix);
      if (cached !== undefined) {
        ino = cached;
        continue;
      }
      attr = await this.engine.lookup(ino, Buffer.from(parts[i], 'utf8'));
      ino = attr.ino;
      if (this.generation === startGeneration) this.remember(prefix, ino);
    }
    return attr ?? this.engine.getattr(ino);
  }

  private remember(path: string, ino: number): void {
    this.inoByPath.delete(path);
    this.inoByPath.set(path, ino);
    if (this.inoByPath.size > this.entriesMax) {
      const oldest = this.inoByPath.keys().next().value as string;
      this.inoByPath.delete(oldest);
    }
  }
}
