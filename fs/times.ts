/** Inode timestamps: seconds + nanoseconds, and the relatime rule. */
import type { Dinode } from './format/dinode';
import type { Timespec } from './api';

/*
 * The clock behind every timestamp the engine writes: wall-clock time with
 * nanosecond digits, strictly increasing within the process. Date.now() alone
 * has millisecond resolution, so two changes in one millisecond would get the
 * same ctime and a reader could not tell they happened in order (make, rsync
 * and the tests compare times). The wall clock is read from an anchor taken
 * against the monotonic clock, re-anchored when the system clock is stepped
 * by more than a second; and no instant is handed out twice (unless the
 * system clock itself was stepped back).
 */
const NS_PER_MS = 1_000_000n;
let anchor = BigInt(Date.now()) * NS_PER_MS - process.hrtime.bigint();
let last = 0n;

function wallClockNs(): bigint {
  let now = anchor + process.hrtime.bigint();
  const wall = BigInt(Date.now()) * NS_PER_MS;
  const drift = now > wall ? now - wall : wall - now;
  if (drift > 1000n * NS_PER_MS) {
    anchor = wall - process.hrtime.bigint();
    now = wall;
  }
  // Equal or slightly behind (a re-anchor, rounding): step past the last
  // instant. A clock stepped back by more than a second is followed.
  if (now <= last && last - now < 1000n * NS_PER_MS) now = last + 1n;
  last = now;
  return now;
}

export function nowTimespec(): Timespec {
  const ns = wallClockNs();
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
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
export function relatimeNeedsUpdate(di: Dinode, now: Timespec, atime: Timespec = { sec: di.i_atime, nsec: di.i_atime_nsec }): boolean {
  if (cmp(atime.sec, atime.nsec, di.i_mtime, di.i_mtime_nsec) <= 0) return true;
  if (cmp(atime.sec, atime.nsec, di.i_ctime, di.i_ctime_nsec) <= 0) return true;
  return now.sec - atime.sec >= 24 * 60 * 60;
}
