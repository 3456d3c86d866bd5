/**
 * Device reads the host's page cache can answer at once, done on the calling
 * thread.
 *
 * An image file (or a block device opened without O_DIRECT) is read through
 * the host's page cache, and most of o2fuse's small reads hit it: the edge
 * blocks a read-modify-write reads back right after writing them, metadata
 * blocks evicted from our cache, pages of ours the host still holds. On the
 * libuv threadpool each costs two thread wake-ups (a worker woken to read,
 * the event loop woken for the result), tens of microseconds on a virtual
 * machine, against a copy of a few microseconds. A cold read must not block
 * the event loop for a disk's latency, so the read is tried with RWF_NOWAIT
 * (preadv2), which answers EAGAIN instead of waiting: then it goes to the
 * threadpool as before. Reads over CACHED_READ_MAX_BYTES always do (a long
 * copy holds the loop; the threadpool copies beside it).
 *
 * Measured with a plain synchronous read of up to 64 KiB in place of the
 * threadpool, kernel transport, alternating runs: the 512-byte unaligned
 * direct writes at QD32 (read-modify-write, one at a time per file: the rule)
 * 21,059-21,874 -> 30,682-31,148 IOPS; but 4 KiB random reads from a
 * host-cold file 54,054-60,373 -> 39,658-40,988, each cold read then holding
 * the loop: hence RWF_NOWAIT.
 *
 * Needs the native addon (io/nativeAddon.ts); without it, or on a file that
 * does not support RWF_NOWAIT, every read takes the threadpool.
 */
import { constants } from 'node:os';
import createDebug from 'debug';
import { nativeAddon } from './nativeAddon';

const trace = createDebug('o2fuse:io');

/** Reads longer than this always take the threadpool. */
export const CACHED_READ_MAX_BYTES = 64 * 1024;

const { EAGAIN, EOPNOTSUPP, EINVAL } = constants.errno;

type PreadNoWait = (fd: number, buf: Buffer, offset: number, length: number, position: number) => number;

let preadNoWait: PreadNoWait | null | undefined;

function addonRead(): PreadNoWait | null {
  if (preadNoWait === undefined) {
    const r = nativeAddon(['preadNoWait']);
    preadNoWait = 'addon' in r ? (r.addon.preadNoWait as PreadNoWait) : null;
    if ('failure' in r) trace('device reads all take the threadpool: %s', r.failure);
  }
  return preadNoWait;
}

/**
 * What a try found: bytes read (0 at the end of the file; fewer than asked when only the start was cached),
 * 'not cached' (read it the slow way), or 'unsupported' (this file, or this build, never can: stop trying).
 */
export type CachedRead = number | 'not cached' | 'unsupported';

/** pread of `length` bytes into buf[offset..] from `position` if the page cache holds them. */
export function readIfCached(fd: number, buf: Buffer, offset: number, length: number, position: number): CachedRead {
  const read = addonRead();
  if (!read) return 'unsupported';
  const n = read(fd, buf, offset, length, position);
  if (n >= 0) return n;
  if (n === -EAGAIN) return 'not cached';
  // EOPNOTSUPP and EINVAL: no RWF_NOWAIT here. Any other error (EIO, ...) is left to the ordinary read, which
  // reports it the way every read error is reported.
  return n === -EOPNOTSUPP || n === -EINVAL ? 'unsupported' : 'not cached';
}
