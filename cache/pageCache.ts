/**
 * The page cache for file data.
 *
 * Pages are PAGE_BYTES of one file, keyed by (inode, page index). Clean
 * pages live in an LRU bounded in bytes and may be evicted at any time;
 * dirty pages live apart, outside the LRU, so nothing can evict a page before
 * its write-back has landed (a page under write-back stays dirty until then,
 * as Linux's PG_writeback keeps a page from being reclaimed). A dirty page
 * remembers the byte range that is dirty, and write-back writes that range
 * rounded out to the volume's block size (the page holds the bytes around
 * it, so the rounding never writes stale data).
 *
 * The cache is bounded as a whole: when clean plus dirty bytes would pass the
 * limit, clean pages go first; writers that find dirty bytes over the dirty
 * limit wait for write-back (see fs/writeback.ts) before dirtying more.
 *
 * A streaming reader moves hundreds of pages per MiB through here, so the
 * LRU is intrusive (a list threaded through the pages, found through a map
 * per inode keyed by page index: no key strings). Measured with the bench's
 * 4 KiB random buffered write job on the kernel transport: 6,495 IOPS with
 * this list, 5,641 with lru-cache and string keys, 2,663-3,255 with
 * lru-cache keyed by the page objects; the block cache and the inode cache
 * stay on lru-cache, where nothing comparable was measured. Read-ins can take a run
 * of pages that are adjacent in memory (runBuffer/adoptClean): the device
 * reads straight into the pages, and a reader copies a run out in one call.
 */
import createDebug from 'debug';

const trace = createDebug('o2fuse:cache');

export const PAGE_BYTES = 4096;
const SLAB_BYTES = 1024 * 1024;
const PAGES_PER_SLAB = SLAB_BYTES / PAGE_BYTES;
/**
 * Slabs are carved from chunks of up to this size. Every new buffer's full
 * size counts as external memory to V8, which runs a full collection each
 * time enough of it has been added: a cold stream filling the cache one 1 MiB
 * slab at a time paid for a mark-compact every ~10 MiB read. Chunks (not
 * touched until carved, so not resident either) grow with the cache.
 */
const CHUNK_BYTES_MAX = 64 * 1024 * 1024;

export interface Page {
  ino: number;
  index: number;
  data: Buffer;
  /** Dirty byte range within the page, [dirtyStart, dirtyEnd); empty when clean. */
  dirtyStart: number;
  dirtyEnd: number;
  /** When the page first became dirty (ms), for age-based write-back. */
  dirtiedAtMs: number;
  /**
   * Bumped by every markDirty. Write-back notes it when it copies the page and cleans the page after the device
   * write lands only if no write came in between.
   */
  writes: number;
}

/** A clean page in the LRU list (newer toward the head). */
interface CleanPage extends Page {
  lruPrev?: CleanPage;
  lruNext?: CleanPage;
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

/**
 * One 1 MiB slab of page buffers: never-used pages from `bump` on (adjacent
 * in memory, what runBuffer hands out), and a stack of recycled ones. A slab
 * whose pages have all come back starts over as one contiguous run.
 */
interface Slab {
  buf: Buffer;
  bump: number;
  free: Buffer[];
  /** Pages handed out and not recycled. */
  live: number;
}

export class PageCache {
  /** Clean pages per inode, by page index. */
  private readonly clean = new Map<number, Map<number, CleanPage>>();
  private cleanPages = 0;
  /** Most and least recently used clean pages. */
  private lruHead: CleanPage | undefined;
  private lruTail: CleanPage | undefined;
  /** Dirty pages per inode, by page index. */
  private readonly dirty = new Map<number, Map<number, Page>>();
  private dirtyPages = 0;
  /**
   * Page buffers are carved from 1 MiB slabs and recycled when a page leaves
   * the cache, so streaming a large file does not churn one small allocation
   * per page through the garbage collector (which let RSS climb far above the
   * cache size before the collector caught up).
   */
  /** Slabs by the chunk they were carved from, by position in it. */
  private readonly slabs = new Map<ArrayBufferLike, Slab[]>();
  /** The chunk new slabs come from, and how much of it is carved. */
  private chunk: Buffer | undefined;
  private chunkUsed = 0;
  /** Slabs with a recycled page to give (single pages come from here first, keeping bump runs whole). */
  private readonly slabsWithFree = new Set<Slab>();
  /** Slabs with never-used pages left at their end. */
  private readonly slabsWithRoom = new Set<Slab>();
  private freePages = 0;
  /** The last slab whose pages all came back (runBuffer watches for one while it evicts). */
  private slabFreed: Slab | undefined;
  readonly stats: PageCacheStats = { hits: 0, misses: 0, evictions: 0, cleanBytes: 0, dirtyBytes: 0, readIns: 0, slabBytes: 0 };

  constructor(readonly maxBytes: number) {
    if (maxBytes < PAGE_BYTES * 16) throw new RangeError(`cache of ${maxBytes} bytes is too small (min ${PAGE_BYTES * 16})`);
  }

  get dirtyBytes(): number {
    return this.dirtyPages * PAGE_BYTES;
  }

  /** Dirty bytes above which writers wait for write-back. */
  get dirtyLimitBytes(): number {
    return Math.floor(this.maxBytes / 2);
  }

  private get maxCleanPages(): number {
    return Math.floor(this.maxBytes / PAGE_BYTES);
  }

  // ---- the clean LRU ----

  private lruUnlink(p: CleanPage): void {
    if (p.lruPrev) p.lruPrev.lruNext = p.lruNext;
    else this.lruHead = p.lruNext;
    if (p.lruNext) p.lruNext.lruPrev = p.lruPrev;
    else this.lruTail = p.lruPrev;
    p.lruPrev = p.lruNext = undefined;
  }

  private lruPushHead(p: CleanPage): void {
    p.lruPrev = undefined;
    p.lruNext = this.lruHead;
    if (this.lruHead) this.lruHead.lruPrev = p;
    this.lruHead = p;
    if (!this.lruTail) this.lruTail = p;
  }

  private cleanGet(ino: number, index: number): CleanPage | undefined {
    return this.clean.get(ino)?.get(index);
  }

  /** Takes a clean page out of the LRU; its buffer is recycled unless the page went dirty. */
  private cleanRemove(p: CleanPage, recycle: boolean): void {
    const m = this.clean.get(p.ino);
    if (!m || m.get(p.index) !== p) return;
    m.delete(p.index);
    if (m.size === 0) this.clean.delete(p.ino);
    this.lruUnlink(p);
    this.cleanPages--;
    if (recycle && p.dirtyEnd <= p.dirtyStart) this.recycle(p.data);
  }

  private evictOldest(): boolean {
    const p = this.lruTail;
    if (!p) return false;
    this.cleanRemove(p, true);
    this.stats.evictions++;
    return true;
  }

  private shrinkClean(): void {
    // Clean pages make room for dirty ones: the total stays within maxBytes.
    const room = Math.max(0, this.maxBytes - this.dirtyBytes);
    while (this.cleanPages * PAGE_BYTES > room && this.evictOldest()) { /* evicted one */ }
  }

  lookup(ino: number, index: number): Page | undefined {
    const d = this.dirty.get(ino)?.get(index);
    if (d) {
      this.stats.hits++;
      return d;
    }
    const p = this.cleanGet(ino, index);
    if (!p) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    if (p !== this.lruHead) {
      this.lruUnlink(p);
      this.lruPushHead(p);
    }
    return p;
  }

  // ---- page memory ----

  private newSlab(): Slab {
    if (!this.chunk || this.chunkUsed + SLAB_BYTES > this.chunk.length) {
      // Double what the cache holds, within what it may hold (one slab at least).
      const cap = this.maxBytes + 2 * SLAB_BYTES - this.stats.slabBytes;
      const want = Math.min(CHUNK_BYTES_MAX, Math.max(SLAB_BYTES, this.stats.slabBytes), cap);
      this.chunk = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, Math.floor(want / SLAB_BYTES) * SLAB_BYTES));
      this.chunkUsed = 0;
      this.slabs.set(this.chunk.buffer, []);
    }
    const buf = this.chunk.subarray(this.chunkUsed, this.chunkUsed + SLAB_BYTES);
    this.chunkUsed += SLAB_BYTES;
    const slab: Slab = { buf, bump: 0, free: [], live: 0 };
    this.slabs.get(buf.buffer)![Math.floor(buf.byteOffset / SLAB_BYTES)] = slab;
    this.slabsWithRoom.add(slab);
    this.stats.slabBytes += SLAB_BYTES;
    return slab;
  }

  private pageBuffer(): Buffer {
    for (const slab of this.slabsWithFree) {
      const b = slab.free.pop()!;
      if (slab.free.length === 0) this.slabsWithFree.delete(slab);
      this.freePages--;
      slab.live++;
      return b;
    }
    const slab = this.slabsWithRoom.values().next().value ?? this.newSlab();
    return this.takeRun(slab, 1);
  }

  /** `count` never-used pages from the end of `slab`'s used part. */
  private takeRun(slab: Slab, count: number): Buffer {
    const start = slab.bump * PAGE_BYTES;
    slab.bump += count;
    slab.live += count;
    if (slab.bump >= PAGES_PER_SLAB) this.slabsWithRoom.delete(slab);
    return slab.buf.subarray(start, start + count * PAGE_BYTES);
  }

  private recycle(buf: Buffer): void {
    if (buf.length !== PAGE_BYTES) return;
    const slab = this.slabs.get(buf.buffer)?.[Math.floor(buf.byteOffset / SLAB_BYTES)];
    if (!slab) return;
    slab.live--;
    if (slab.live === 0) {
      // Every page is back: the whole slab is one free run again.
      this.freePages -= slab.free.length;
      slab.free.length = 0;
      slab.bump = 0;
      this.slabsWithFree.delete(slab);
      this.slabsWithRoom.add(slab);
      this.slabFreed = slab;
      return;
    }
    if (this.freePages * PAGE_BYTES >= this.maxBytes) return; // as before: the pool is bounded; the rest is garbage
    slab.free.push(buf);
    this.freePages++;
    this.slabsWithFree.add(slab);
  }

  /**
   * Memory for `count` pages adjacent in memory, to read a run into and then
   * hand to adoptClean page by page; undefined when no such run is at hand
   * without growing the slabs past the cache size (the caller then reads into
   * a buffer of its own and lets insertClean copy).
   */
  runBuffer(count: number): Buffer | undefined {
    if (count < 1 || count > PAGES_PER_SLAB) return undefined;
    const roomy = this.slabWithRoom(count);
    if (roomy) return this.takeRun(roomy, count);
    if (this.stats.slabBytes + SLAB_BYTES <= this.maxBytes + 2 * SLAB_BYTES) return this.takeRun(this.newSlab(), count);
    // At the size limit: the oldest clean pages make way now, as adopting the run would evict as many later. A
    // streaming reader's oldest pages are an earlier run, so a whole slab usually comes free within `count`
    // evictions; without this, a full cache read every run into a scratch buffer and copied it page by page.
    this.slabFreed = undefined;
    for (let i = 0; i < count && this.evictOldest(); i++) {
      if (this.slabFreed) {
        trace('run of %d pages: %d oldest pages evicted to free a slab', count, i + 1);
        return this.takeRun(this.slabFreed, count);
      }
    }
    return undefined;
  }

  private slabWithRoom(count: number): Slab | undefined {
    for (const slab of this.slabsWithRoom) if (PAGES_PER_SLAB - slab.bump >= count) return slab;
    return undefined;
  }

  /** Returns pages of a runBuffer that were not adopted (the caller keeps no reference to them). */
  releaseRun(buf: Buffer): void {
    for (let off = 0; off < buf.length; off += PAGE_BYTES) this.recycle(buf.subarray(off, off + PAGE_BYTES));
  }

  // ---- entering and leaving ----

  /**
   * Caches a copy of `src` (PAGE_BYTES read from the device, or zeros) as a
   * clean page, unless the page is cached already: then that page is returned
   * and `src` ignored. Callers use the returned page's data synchronously.
   */
  insertClean(ino: number, index: number, src: Buffer): Page {
    const existing = this.dirty.get(ino)?.get(index) ?? this.cleanGet(ino, index);
    if (existing) return existing;
    if (this.dirtyBytes + PAGE_BYTES > this.maxBytes) {
      // No room while dirty pages fill the cache: an uncached page the caller can still dirty.
      return { ino, index, data: Buffer.from(src), dirtyStart: 0, dirtyEnd: 0, dirtiedAtMs: 0, writes: 0 };
    }
    const data = this.pageBuffer();
    src.copy(data, 0, 0, PAGE_BYTES);
    if (src.length < PAGE_BYTES) data.fill(0, src.length);
    const page: Page = { ino, index, data, dirtyStart: 0, dirtyEnd: 0, dirtiedAtMs: 0, writes: 0 };
    this.setClean(page);
    return page;
  }

  /**
   * insertClean without the copy, for a page of a runBuffer: `data` (exactly
   * PAGE_BYTES of it) becomes the page. When the page is cached already, that
   * page is returned and `data` goes back to the pool: the caller must not
   * keep it.
   */
  adoptClean(ino: number, index: number, data: Buffer): Page {
    const existing = this.dirty.get(ino)?.get(index) ?? this.cleanGet(ino, index);
    if (existing || this.dirtyBytes + PAGE_BYTES > this.maxBytes) {
      const page = existing ?? { ino, index, data: Buffer.from(data), dirtyStart: 0, dirtyEnd: 0, dirtiedAtMs: 0, writes: 0 };
      this.recycle(data);
      return page;
    }
    const page: Page = { ino, index, data, dirtyStart: 0, dirtyEnd: 0, dirtiedAtMs: 0, writes: 0 };
    this.setClean(page);
    return page;
  }

  /**
   * Enters an uncached page that a write covers whole, straight as a dirty page holding
   * src[srcStart, srcStart + PAGE_BYTES): no zeros copied in first and no pass through the clean LRU on the way
   * (a full-page buffered write of a page not in the cache). The caller has looked the page up and not found it.
   */
  insertDirty(ino: number, index: number, src: Buffer, srcStart: number): Page {
    // As insertClean: with dirty pages filling the cache, an uncached buffer (the throttle bounds dirty bytes).
    const data = this.dirtyBytes + PAGE_BYTES > this.maxBytes ? Buffer.allocUnsafe(PAGE_BYTES) : this.pageBuffer();
    src.copy(data, 0, srcStart, srcStart + PAGE_BYTES);
    const page: Page = { ino, index, data, dirtyStart: 0, dirtyEnd: 0, dirtiedAtMs: 0, writes: 0 };
    this.markDirty(page, 0, PAGE_BYTES);
    return page;
  }

  /** Marks [start, end) of a page dirty; the page moves out of the LRU until written. */
  markDirty(page: Page, start: number, end: number): void {
    page.writes++;
    if (page.dirtyEnd > page.dirtyStart) {
      page.dirtyStart = Math.min(page.dirtyStart, start);
      page.dirtyEnd = Math.max(page.dirtyEnd, end);
      return;
    }
    page.dirtyStart = start;
    page.dirtyEnd = end;
    page.dirtiedAtMs = Date.now();
    const c = this.cleanGet(page.ino, page.index);
    if (c) this.cleanRemove(c, true);
    let m = this.dirty.get(page.ino);
    if (!m) this.dirty.set(page.ino, (m = new Map()));
    if (!m.has(page.index)) {
      m.set(page.index, page);
      this.dirtyPages++;
    }
    this.shrinkClean();
  }

  /**
   * A page whose write-back has landed on the device: clean again (kept, if there is room). Not before: a dirty
   * page cannot be evicted, and while its device write is in flight the device still holds the old bytes.
   */
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
    let m = this.clean.get(page.ino);
    if (!m) this.clean.set(page.ino, (m = new Map()));
    const old = m.get(page.index);
    if (old === page) {
      this.lruUnlink(page);
      this.lruPushHead(page);
      return;
    }
    if (old) {
      // Replaced: the old page leaves without its buffer being reused (someone may still hold it).
      this.cleanRemove(old, false);
      m = this.clean.get(page.ino);
      if (!m) this.clean.set(page.ino, (m = new Map()));
    }
    // Make room first, as a bounded LRU does on insert.
    while (this.cleanPages >= this.maxCleanPages && this.evictOldest()) { /* evicted one */ }
    m = this.clean.get(page.ino);
    if (!m) this.clean.set(page.ino, (m = new Map()));
    m.set(page.index, page);
    this.lruPushHead(page);
    this.cleanPages++;
  }

  /** Dirty pages of one inode (snapshot), in index order, optionally only those in [first, last]. */
  dirtyOf(ino: number, first = 0, last = Infinity): Page[] {
    const m = this.dirty.get(ino);
    if (!m) return [];
    if (last - first < m.size) {
      // A range narrower than the inode's dirty set (the pages of one direct read or write, or of an allocating
      // write, in a file with many dirty pages): look the indexes up rather than walk every dirty page.
      const out: Page[] = [];
      for (let i = first; i <= last; i++) {
        const p = m.get(i);
        if (p) out.push(p);
      }
      return out;
    }
    const all = [...m.values()];
    return (first === 0 && last === Infinity ? all : all.filter((p) => p.index >= first && p.index <= last)).sort((a, b) => a.index - b.index);
  }

  /** Whether `page` is still the dirty page of its index (not written back, not replaced). */
  isDirty(page: Page): boolean {
    return this.dirty.get(page.ino)?.get(page.index) === page;
  }

  /** How many dirty pages an inode has. */
  dirtyCount(ino: number): number {
    return this.dirty.get(ino)?.size ?? 0;
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
      for (const p of pagesIn(m, first, last)) {
        m.delete(p.index);
        this.dirtyPages--;
        p.dirtyStart = p.dirtyEnd = 0;
        this.recycle(p.data);
      }
      if (m.size === 0) this.dirty.delete(ino);
    }
    this.dropCleanPages(ino, first, last);
    trace('dropped pages %d..%s of inode %d', first, last === Infinity ? 'end' : String(last), ino);
  }

  /** Forgets the clean pages [first, last] of an inode; dirty ones stay (what they hold is newer than the device). */
  dropClean(ino: number, first = 0, last = Infinity): void {
    this.dropCleanPages(ino, first, last);
    trace('dropped clean pages %d..%s of inode %d', first, last === Infinity ? 'end' : String(last), ino);
  }

  private dropCleanPages(ino: number, first: number, last: number): void {
    const c = this.clean.get(ino);
    if (c) for (const p of pagesIn(c, first, last)) this.cleanRemove(p, true);
  }

  /** Whether any page of [first, last] of the inode is dirty. */
  hasDirtyIn(ino: number, first: number, last: number): boolean {
    const m = this.dirty.get(ino);
    return m !== undefined && anyIn(m, first, last);
  }

  /** Whether any page of [first, last] of the inode is cached, clean or dirty (no hit or miss counted). */
  hasAnyIn(ino: number, first: number, last: number): boolean {
    const d = this.dirty.get(ino);
    const c = this.clean.get(ino);
    return (d !== undefined && anyIn(d, first, last)) || (c !== undefined && anyIn(c, first, last));
  }

  snapshotStats(): PageCacheStats {
    this.stats.cleanBytes = this.cleanPages * PAGE_BYTES;
    this.stats.dirtyBytes = this.dirtyBytes;
    return { ...this.stats };
  }
}

/**
 * The pages of [first, last] in an inode's map: by index when the range is
 * the smaller (a write of a few pages in a file with thousands cached), by a
 * walk of the map otherwise (a whole-file drop).
 */
function pagesIn<P extends Page>(m: Map<number, P>, first: number, last: number): P[] {
  const out: P[] = [];
  if (last - first + 1 <= m.size) {
    for (let i = first; i <= last; i++) {
      const p = m.get(i);
      if (p) out.push(p);
    }
  } else {
    for (const [idx, p] of m) if (idx >= first && idx <= last) out.push(p);
  }
  return out;
}

/** Whether an inode's map holds a page of [first, last] (pagesIn without the list). */
function anyIn(m: Map<number, Page>, first: number, last: number): boolean {
  if (m.size === 0) return false;
  if (last - first + 1 <= m.size) {
    for (let i = first; i <= last; i++) if (m.has(i)) return true;
    return false;
  }
  for (const idx of m.keys()) if (idx >= first && idx <= last) return true;
  return false;
}
