/**
 * The page cache for file data.
 *
 * Pages are PAGE_BYTES of one file, keyed by (inode, page index). Clean
 * pages live in an LRU bounded in bytes and may be evicted at any time;
 * dirty pages live apart, outside the LRU, so nothing can evict a page before
 * it is written. A dirty page remembers the byte range that is dirty, and
 * write-back writes that range rounded out to the volume's block size (the
 * page holds the bytes around it, so the rounding never writes stale data).
 *
 * The cache is bounded as a whole: when clean plus dirty bytes would pass the
 * limit, clean pages go first; writers that find dirty bytes over the dirty
 * limit wait for write-back (see fs/writeback.ts) before dirtying more.
 */
import { LRUCache } from 'lru-cache';
import createDebug from 'debug';

const trace = createDebug('o2fuse:cache');

export const PAGE_BYTES = 4096;
const SLAB_BYTES = 1024 * 1024;

export interface Page {
  ino: number;
  index: number;
  data: Buffer;
  /** Dirty byte range within the page, [dirtyStart, dirtyEnd); empty when clean. */
  dirtyStart: number;
  dirtyEnd: number;
  /** When the page first became dirty (ms), for age-based write-back. */
  dirtiedAtMs: number;
}

export interface PageCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  cleanBytes: number;
  dirtyBytes: number;
  readIns: number;
  /** Memory held in page slabs (cached pages plus recycled free ones). */
  slabBytes: number;
}

function key(ino: number, index: number): string {
  return `${ino}:${index}`;
}

export class PageCache {
  private readonly clean: LRUCache<string, Page>;
  /** Dirty pages per inode, by page index. */
  private readonly dirty = new Map<number, Map<number, Page>>();
  private dirtyPages = 0;
  /**
   * Page buffers are carved from 1 MiB slabs and recycled when a page leaves
   * the cache, so streaming a large file does not churn one small allocation
   * per page through the garbage collector (which let RSS climb far above the
   * cache size before the collector caught up).
   */
  private readonly freeBuffers: Buffer[] = [];
  /** Clean page indexes per inode, so dropping one file's pages does not scan the whole cache. */
  private readonly cleanIndex = new Map<number, Set<number>>();
  readonly stats: PageCacheStats = { hits: 0, misses: 0, evictions: 0, cleanBytes: 0, dirtyBytes: 0, readIns: 0, slabBytes: 0 };

  constructor(readonly maxBytes: number) {
    if (maxBytes < PAGE_BYTES * 16) throw new RangeError(`cache of ${maxBytes} bytes is too small (min ${PAGE_BYTES * 16})`);
    this.clean = new LRUCache<string, Page>({
      maxSize: maxBytes,
      sizeCalculation: () => PAGE_BYTES,
      dispose: (p, _k, reason) => {
        if (reason === 'evict') this.stats.evictions++;
        if (reason === 'set') return;
        // A page leaving the LRU clean is unreferenced unless it went dirty (markDirty removes it from the LRU).
        if (p.dirtyEnd <= p.dirtyStart) this.recycle(p.data);
        const set = this.cleanIndex.get(p.ino);
        set?.delete(p.index);
        if (set && set.size === 0) this.cleanIndex.delete(p.ino);
      },
    });
  }

  get dirtyBytes(): number {
    return this.dirtyPages * PAGE_BYTES;
  }

  /** Dirty bytes above which writers wait for write-back. */
  get dirtyLimitBytes(): number {
    return Math.floor(this.maxBytes / 2);
  }

  private shrinkClean(): void {
    // Clean pages make room for dirty ones: the total stays within maxBytes.
    const room = this.maxBytes - this.dirtyBytes;
    while (this.clean.calculatedSize > Math.max(0, room) && this.clean.size > 0) {
      const k = this.clean.rkeys().next().value as string | undefined;
      if (k === undefined) break;
      this.clean.delete(k);
      this.stats.evictions++;
    }
  }

  lookup(ino: number, index: number): Page | undefined {
    const d = this.dirty.get(ino)?.get(index);
    const p = d ?? this.clean.get(key(ino, index));
    if (p) this.stats.hits++;
    else this.stats.misses++;
    return p;
  }

  private pageBuffer(): Buffer {
    const b = this.freeBuffers.pop();
    if (b) return b;
    const slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    this.stats.slabBytes += SLAB_BYTES;
    for (let off = PAGE_BYTES; off < SLAB_BYTES; off += PAGE_BYTES) this.freeBuffers.push(slab.subarray(off, off + PAGE_BYTES));
    return slab.subarray(0, PAGE_BYTES);
  }

  private recycle(buf: Buffer): void {
    if (buf.length === PAGE_BYTES && this.freeBuffers.length * PAGE_BYTES < this.maxBytes) this.freeBuffers.push(buf);
  }

  /**
   * Caches a copy of `src` (PAGE_BYTES read from the device, or zeros) as a
   * clean page, unless the page is cached already: then that page is returned
   * and `src` ignored. Callers use the returned page's data synchronously.
   */
  insertClean(ino: number, index: number, src: Buffer): Page {
    const existing = this.dirty.get(ino)?.get(index) ?? this.clean.peek(key(ino, index));
    if (existing) return existing;
    if (this.dirtyBytes + PAGE_BYTES > this.maxBytes) {
      // No room while dirty pages fill the cache: an uncached page the caller can still dirty.
      return { ino, index, data: Buffer.from(src), dirtyStart: 0, dirtyEnd: 0, dirtiedAtMs: 0 };
    }
    const data = this.pageBuffer();
    src.copy(data, 0, 0, PAGE_BYTES);
    if (src.length < PAGE_BYTES) data.fill(0, src.length);
    const page: Page = { ino, index, data, dirtyStart: 0, dirtyEnd: 0, dirtiedAtMs: 0 };
    this.setClean(page);
    return page;
  }

  /** Marks [start, end) of a page dirty; the page moves out of the LRU until written. */
  markDirty(page: Page, start: number, end: number): void {
    if (page.dirtyEnd > page.dirtyStart) {
      page.dirtyStart = Math.min(page.dirtyStart, start);
      page.dirtyEnd = Math.max(page.dirtyEnd, end);
      return;
    }
    page.dirtyStart = start;
    page.dirtyEnd = end;
    page.dirtiedAtMs = Date.now();
    this.clean.delete(key(page.ino, page.index));
    let m = this.dirty.get(page.ino);
    if (!m) this.dirty.set(page.ino, (m = new Map()));
    if (!m.has(page.index)) {
      m.set(page.index, page);
      this.dirtyPages++;
    }
    this.shrinkClean();
  }

  /** A page just written back: clean again (kept, if there is room). */
  markClean(page: Page): void {
    const m = this.dirty.get(page.ino);
    if (m?.get(page.index) === page) {
      m.delete(page.index);
      this.dirtyPages--;
      if (m.size === 0) this.dirty.delete(page.ino);
    }
    page.dirtyStart = page.dirtyEnd = 0;
    if (this.dirtyBytes + PAGE_BYTES <= this.maxBytes) this.setClean(page);
  }

  private setClean(page: Page): void {
    this.clean.set(key(page.ino, page.index), page);
    let set = this.cleanIndex.get(page.ino);
    if (!set) this.cleanIndex.set(page.ino, (set = new Set()));
    set.add(page.index);
  }

  /** Dirty pages of one inode (snapshot), in index order, optionally only those in [first, last]. */
  dirtyOf(ino: number, first = 0, last = Infinity): Page[] {
    const m = this.dirty.get(ino);
    if (!m) return [];
    return [...m.values()].filter((p) => p.index >= first && p.index <= last).sort((a, b) => a.index - b.index);
  }

  /** Inodes with dirty pages. */
  dirtyInodes(): number[] {
    return [...this.dirty.keys()];
  }

  /** Dirty pages dirtied before `olderThanMs` (all inodes). */
  expired(olderThanMs: number): Page[] {
    const out: Page[] = [];
    for (const m of this.dirty.values()) for (const p of m.values()) if (p.dirtiedAtMs <= olderThanMs) out.push(p);
    return out;
  }

  /**
   * Forgets pages [first, last] of an inode, dirty ones included: the caller
   * has written back what must survive (direct I/O) or the data is gone
   * (truncate, delete).
   */
  drop(ino: number, first = 0, last = Infinity): void {
    const m = this.dirty.get(ino);
    if (m) {
      for (const [idx, p] of m) {
        if (idx >= first && idx <= last) {
          m.delete(idx);
          this.dirtyPages--;
          p.dirtyStart = p.dirtyEnd = 0;
          this.recycle(p.data);
        }
      }
      if (m.size === 0) this.dirty.delete(ino);
    }
    const set = this.cleanIndex.get(ino);
    if (set) for (const idx of [...set]) if (idx >= first && idx <= last) this.clean.delete(key(ino, idx));
    trace('dropped pages %d..%s of inode %d', first, last === Infinity ? 'end' : String(last), ino);
  }

  snapshotStats(): PageCacheStats {
    this.stats.cleanBytes = this.clean.calculatedSize;
    this.stats.dirtyBytes = this.dirtyBytes;
    return { ...this.stats };
  }
}
