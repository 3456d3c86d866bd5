/**
 * Errors the engine returns carry a POSIX errno name. Adapters (FUSE) map the
 * name to a number in one place; the engine never throws bare Errors for
 * conditions a caller can see.
 */
import { constants } from 'node:os';

export type ErrnoName = keyof typeof constants.errno;

export class FsError extends Error {
  constructor(readonly errno: ErrnoName, message?: string) {
    super(message ? `${errno}: ${message}` : errno);
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
