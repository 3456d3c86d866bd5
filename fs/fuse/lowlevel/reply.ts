/**
 * Reply payloads: engine objects (Attr, StatFs, directory entries) encoded
 * as the kernel reads them. Node ids are computed by the caller (see
 * NodeIds); st_ino is always the engine's inode number.
 */
import { encodeFields } from '../../format/layout';
import type { Attr, DirEntry, StatFs } from '../../api';
import { direntAlign } from './protocol';
import {
  FUSE_ATTR_OUT_ATTR_OFFSET, FUSE_ATTR_OUT_SIZE, FUSE_DIRENTPLUS_DIRENT_OFFSET, FUSE_ENTRY_OUT_ATTR_OFFSET,
  FUSE_ENTRY_OUT_SIZE, FUSE_NAME_OFFSET, FUSE_NAME_OFFSET_DIRENTPLUS, fuse_attr, fuse_attr_out, fuse_dirent,
  fuse_entry_out, fuse_kstatfs, fuse_lseek_out, fuse_open_out, fuse_write_out,
} from './structs';

/** A cache lifetime as the kernel takes it: whole seconds and nanoseconds. */
export interface Validity {
  sec: number;
  nsec: number;
}

export function validityOf(seconds: number): Validity {
  if (!(seconds >= 0) || !Number.isFinite(seconds)) throw new RangeError(`a cache timeout must be >= 0 seconds: ${seconds}`);
  const sec = Math.floor(seconds);
  return { sec, nsec: Math.round((seconds - sec) * 1e9) };
}

export interface Timeouts {
  entry: Validity;
  attr: Validity;
}

const U32_MASK = 0xffffffff;

export function encodeAttr(a: Attr, buf: Buffer, at: number): void {
  encodeFields(fuse_attr, {
    ino: a.ino,
    size: a.size,
    blocks: a.blocks,
    atime: a.atime.sec,
    mtime: a.mtime.sec,
    ctime: a.ctime.sec,
    atimensec: a.atime.nsec,
    mtimensec: a.mtime.nsec,
    ctimensec: a.ctime.nsec,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    rdev: a.rdev & U32_MASK,
    blksize: a.blksize,
    flags: 0,
  }, buf, at, 'fuse_attr');
}

function encodeEntry(nodeid: number, a: Attr, t: Timeouts, buf: Buffer, at: number): void {
  encodeFields(fuse_entry_out, {
    nodeid,
    generation: a.generation,
    entry_valid: t.entry.sec,
    attr_valid: t.attr.sec,
    entry_valid_nsec: t.entry.nsec,
    attr_valid_nsec: t.attr.nsec,
  }, buf, at, 'fuse_entry_out');
  encodeAttr(a, buf, at + FUSE_ENTRY_OUT_ATTR_OFFSET);
}

/**
 * A zeroed reply buffer. Buffer.alloc makes an ArrayBuffer of its own for
 * anything over 64 bytes (~0.6 us for an entry reply); allocUnsafe carves
 * from Node's pool, and fill zeroes it (~0.2 us). Every reply of a lookup,
 * create or getattr takes one.
 */
export function zeroed(bytes: number): Buffer {
  return Buffer.allocUnsafe(bytes).fill(0);
}

export function entryOut(nodeid: number, a: Attr, t: Timeouts): Buffer {
  const buf = zeroed(FUSE_ENTRY_OUT_SIZE);
  encodeEntry(nodeid, a, t, buf, 0);
  return buf;
}

export function attrOut(a: Attr, t: Timeouts): Buffer {
  const buf = zeroed(FUSE_ATTR_OUT_SIZE);
  encodeFields(fuse_attr_out, { attr_valid: t.attr.sec, attr_valid_nsec: t.attr.nsec, dummy: 0 }, buf, 0, 'fuse_attr_out');
  encodeAttr(a, buf, FUSE_ATTR_OUT_ATTR_OFFSET);
  return buf;
}

export function openOut(fh: number, openFlags: number): Buffer {
  const buf = Buffer.alloc(16);
  encodeFields(fuse_open_out, { fh, open_flags: openFlags, backing_id: 0 }, buf, 0, 'fuse_open_out');
  return buf;
}

export function writeOut(bytes: number): Buffer {
  const buf = Buffer.alloc(8);
  encodeFields(fuse_write_out, { size: bytes, padding: 0 }, buf, 0, 'fuse_write_out');
  return buf;
}

export function lseekOut(offset: number): Buffer {
  const buf = Buffer.alloc(8);
  encodeFields(fuse_lseek_out, { offset }, buf, 0, 'fuse_lseek_out');
  return buf;
}

const U64_SAFE = Number.MAX_SAFE_INTEGER;

export function statfsOut(s: StatFs): Buffer {
  const buf = zeroed(80);
  encodeFields(fuse_kstatfs, {
    blocks: Math.min(s.blocks, U64_SAFE),
    bfree: Math.min(s.bfree, U64_SAFE),
    bavail: Math.min(s.bavail, U64_SAFE),
    files: Math.min(s.files, U64_SAFE),
    ffree: Math.min(s.ffree, U64_SAFE),
    bsize: s.bsize,
    namelen: s.namemax,
    frsize: s.frsize,
    padding: 0,
    spare: [],
  }, buf, 0, 'fuse_kstatfs');
  return buf;
}

/** DT_* of a dirent from the S_IFMT bits the engine gives. */
export function direntType(modeType: number): number {
  return (modeType >>> 12) & 0xf;
}

export function direntSize(nameBytes: number): number {
  return direntAlign(FUSE_NAME_OFFSET + nameBytes);
}

export function direntPlusSize(nameBytes: number): number {
  return direntAlign(FUSE_NAME_OFFSET_DIRENTPLUS + nameBytes);
}

/** Writes one fuse_dirent at `at`; `nextCookie` is the offset a later READDIR resumes from. */
export function encodeDirent(e: DirEntry, nextCookie: number, buf: Buffer, at: number): number {
  encodeFields(fuse_dirent, { ino: e.ino, off: nextCookie, namelen: e.name.length, type: direntType(e.type) }, buf, at, 'fuse_dirent');
  e.name.copy(buf, at + FUSE_NAME_OFFSET);
  const size = direntSize(e.name.length);
  buf.fill(0, at + FUSE_NAME_OFFSET + e.name.length, at + size);
  return size;
}

/**
 * Writes one fuse_direntplus. `entry` undefined writes nodeid 0: the kernel
 * then shows the name without instantiating an inode (used for "." and "..",
 * and for an entry whose inode vanished between readdir and getattr).
 */
export function encodeDirentPlus(
  e: DirEntry, nextCookie: number, entry: { nodeid: number; attr: Attr; timeouts: Timeouts } | undefined, buf: Buffer, at: number,
): number {
  if (entry) encodeEntry(entry.nodeid, entry.attr, entry.timeouts, buf, at);
  else buf.fill(0, at, at + FUSE_DIRENTPLUS_DIRENT_OFFSET);
  encodeDirent(e, nextCookie, buf, at + FUSE_DIRENTPLUS_DIRENT_OFFSET);
  return direntPlusSize(e.name.length);
}
