/**
 * The metadata block cache.
 *
 * Every metadata block the engine reads comes through here. A block is read
 * from the device once, checked by the validator its reader names (signature,
 * "the block says it lives where we read it", metaecc), and then served from
 * memory until evicted. A block that fails validation is never cached, so a
 * corrupt block keeps failing loudly instead of being half-trusted.
 *
 * Buffers handed out are shared: callers must not modify them. The transaction
 * layer takes copies to modify and puts the committed bytes back with put().
 * Concurrent misses on one block share a single device read.
 */
import { LRUCache } from 'lru-cache';
import createDebug from 'debug';
import type { Device } from '../io/device';

const trace = createDebug('o2fuse:cache');

/** Checks a freshly read block; throws (FormatError) if it is not what the caller expects. */
export type BlockValidator = (block: Buffer, blkno: number) => void;

interface Entry {
  buf: Buffer;
  /**
   * Names of the validators this copy has passed, so each runs once per fill:
   * nearly always one. An array, not a Set: every committed block gets a new
   * entry, and a Set per block was a measurable part of what a metadata
   * change leaves for the collector.
   */
  validated: string[];
}

export interface BlockCacheStats {
  hits: number;
  misses: number;
  evictions: number;
}

export class BlockCache {
  private readonly lru: LRUCache<number, Entry>;
  private readonly pending = new Map<number, Promise<Entry>>();
  /** Blocks a commit is writing: served from here so eviction cannot expose the old bytes on disk. */
  private readonly writing = new Map<number, Entry>();
  readonly stats: BlockCacheStats = { hits: 0, misses: 0, evictions: 0 };

  constructor(
    private readonly device: Device,
    readonly blockSize: number,
    maxBytes = 32 * 1024 * 1024,
  ) {
    this.lru = new LRUCache<number, Entry>({
      maxSize: Math.max(maxBytes, blockSize * 16),
      sizeCalculation: () => blockSize,
      dispose: () => {
        this.stats.evictions++;
      },
    });
  }

  /**
   * Reads a block, validating it with `validate` (named `kind`) the first time this copy is served as that kind.
   * A hit is answered without going through an async function (metadata operations read several cached blocks
   * each; the promise and microtask hops of each were a measurable share of a create).
   */
  read(blkno: number, kind = 'raw', validate?: BlockValidator): Promise<Buffer> {
    const hit = this.lru.get(blkno) ?? this.writing.get(blkno);
    if (hit) {
      this.stats.hits++;
      try {
        this.check(hit, blkno, kind, validate);
      } catch (err) {
        return Promise.reject(err);
      }
      return Promise.resolve(hit.buf);
    }
    return this.entry(blkno).then((entry) => {
      this.check(entry, blkno, kind, validate);
      return entry.buf;
    });
  }

  /**
   * The cached bytes of a block, or undefined when it is not in memory: no device read and no validation (for
   * callers that validated the block before, as the transaction layer's callers have). Counts a hit.
   */
  peek(blkno: number): Buffer | undefined {
    const hit = this.lru.get(blkno) ?? this.writing.get(blkno);
    if (!hit) return undefined;
    this.stats.hits++;
    return hit.buf;
  }

  /**
   * peek(), for a copy already validated as `kind` only (undefined otherwise: read it through its validator).
   * Lets a caller that touches the same few blocks on every operation (a directory index's root and leaves)
   * skip the validating read's promise.
   */
  peekValidated(blkno: number, kind: string): Buffer | undefined {
    const hit = this.lru.get(blkno) ?? this.writing.get(blkno);
    if (!hit || !hit.validated.includes(kind)) return undefined;
    this.stats.hits++;
    return hit.buf;
  }

  private check(entry: Entry, blkno: number, kind: string, validate?: BlockValidator): void {
    if (validate && !entry.validated.includes(kind)) {
      try {
        validate(entry.buf, blkno);
      } catch (err) {
        // A block that fails validation must be re-read next time, not served.
        this.lru.delete(blkno);
        trace('block %d failed %s validation: %s', blkno, kind, (err as Error).message);
        throw err;
      }
      entry.validated.push(kind);
    }
  }

  /** Installs bytes just written to the device (by the transaction layer) as the cached copy. */
  put(blkno: number, buf: Buffer, kind?: string): void {
    const entry: Entry = { buf, validated: kind ? [kind] : [] };
    this.lru.set(blkno, entry);
  }

  /**
   * Installs bytes a commit is about to write. Until `done()` the block is
   * served from this copy even if the LRU evicts it, so no reader can see the
   * older bytes still on the device while the write is in flight.
   */
  putWriting(blkno: number, buf: Buffer, kind?: string): () => void {
    const entry: Entry = { buf, validated: kind ? [kind] : [] };
    this.lru.set(blkno, entry);
    this.writing.set(blkno, entry);
    return () => {
      if (this.writing.get(blkno) === entry) this.writing.delete(blkno);
    };
  }

  invalidate(blkno: number): void {
    this.lru.delete(blkno);
  }

  clear(): void {
    this.lru.clear();
  }

  private entry(blkno: number): Promise<Entry> {
    const hit = this.lru.get(blkno) ?? this.writing.get(blkno);
    if (hit) {
      this.stats.hits++;
      return Promise.resolve(hit);
    }
    const inFlight = this.pending.get(blkno);
    if (inFlight) return inFlight;
    this.stats.misses++;
    const p = this.device
      .read(blkno * this.blockSize, this.blockSize)
      .then((buf) => {
        const entry: Entry = { buf, validated: [] };
        this.lru.set(blkno, entry);
        return entry;
      })
      .finally(() => this.pending.delete(blkno));
    this.pending.set(blkno, p);
    return p;
  }
}
