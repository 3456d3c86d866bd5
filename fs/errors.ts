/**
 * Errors the engine returns carry a POSIX errno name. Adapters (FUSE) map the
 * name to a number in one place; the engine never throws bare Errors for
 * conditions a caller can see.
 */
import { constants } from 'node:os';

export type ErrnoName = keyof typeof constants.errno;

/**
 * Errnos that answer a question rather than report a failure (no such name,
 * the name exists, no such attribute, not empty, the inode was freed): every
 * create looks its name up first and is told ENOENT, and with writeback_cache
 * the kernel sends a SETATTR for every inode just unlinked, which o2fuse has
 * freed (ESTALE). They carry no stack trace, whose capture cost more than the
 * lookup itself.
 */
const ANSWERS: ReadonlySet<string> = new Set(['ENOENT', 'EEXIST', 'ENODATA', 'ENOTEMPTY', 'ESTALE']);

export class FsError extends Error {
  readonly errno: ErrnoName;

  constructor(errno: ErrnoName, message?: string) {
    const limit = Error.stackTraceLimit;
    if (ANSWERS.has(errno)) Error.stackTraceLimit = 0;
    try {
      super(message ? `${errno}: ${message}` : errno);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.errno = errno;
    this.name = 'FsError';
  }
}

export function fsError(errno: ErrnoName, message?: string): FsError {
  return new FsError(errno, message);
}

/** The errno name of any thrown value: FsError, FormatError, a Node system error, else EIO. */
export function errnoOf(err: unknown): ErrnoName {
  if (err && typeof err === 'object') {
    const e = err as { errno?: unknown; code?: unknown };
    if (typeof e.errno === 'string' && e.errno in constants.errno) return e.errno as ErrnoName;
    if (typeof e.code === 'string' && e.code in constants.errno) return e.code as ErrnoName;
  }
  return 'EIO';
}

/** The positive errno number for an errno name (EIO for anything unknown). */
export function errnoNumber(name: ErrnoName): number {
  return constants.errno[name] ?? constants.errno.EIO;
}
