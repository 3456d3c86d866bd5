/**
 * The one errno map of the FUSE adapters: any thrown value -> the negative
 * errno number a FUSE reply carries.
 */
import { errnoNumber, errnoOf, type ErrnoName } from '../errors';

export function fuseErrno(err: unknown): number {
  return -errnoNumber(errnoOf(err));
}

export function errnoName(err: unknown): ErrnoName {
  return errnoOf(err);
}

/** True for errors the engine or the OS raised on purpose; false for bugs (TypeError, assertions). */
export function isExpectedError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { errno?: unknown; code?: unknown };
  return typeof e.errno === 'string' || typeof e.code === 'string';
}
