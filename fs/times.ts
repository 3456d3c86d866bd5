/** Inode timestamps: seconds + nanoseconds, and the relatime rule. */
import type { Dinode } from './format/dinode';
import type { Timespec } from './api';

export function nowTimespec(): Timespec {
  const ms = Date.now();
  const sec = Math.floor(ms / 1000);
  // Date.now has millisecond resolution; add a monotonic sub-millisecond part so times still move forward.
  const nsec = (ms % 1000) * 1_000_000 + Number(process.hrtime.bigint() % 1_000_000n);
  return { sec, nsec };
}

export function stamp(di: Dinode, which: 'atime' | 'mtime' | 'ctime', t: Timespec): void {
  switch (which) {
    case 'atime': di.i_atime = t.sec; di.i_atime_nsec = t.nsec; break;
    case 'mtime': di.i_mtime = t.sec; di.i_mtime_nsec = t.nsec; break;
    case 'ctime': di.i_ctime = t.sec; di.i_ctime_nsec = t.nsec; break;
  }
}

/** A change to an inode's contents: mtime and ctime both become now (one instant). */
export function stampModified(di: Dinode): void {
  const now = nowTimespec();
  stamp(di, 'mtime', now);
  stamp(di, 'ctime', now);
}

function cmp(aSec: number, aNsec: number, bSec: number, bNsec: number): number {
  return aSec !== bSec ? aSec - bSec : aNsec - bNsec;
}

/**
 * relatime (the kernel's default): update atime on access only if it is not
 * newer than mtime or ctime, or is more than a day old.
 */
export function relatimeNeedsUpdate(di: Dinode, now: Timespec): boolean {
  if (cmp(di.i_atime, di.i_atime_nsec, di.i_mtime, di.i_mtime_nsec) <= 0) return true;
  if (cmp(di.i_atime, di.i_atime_nsec, di.i_ctime, di.i_ctime_nsec) <= 0) return true;
  return now.sec - di.i_atime >= 24 * 60 * 60;
}
