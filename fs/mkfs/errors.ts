/**
 * Errors mkfs reports. They carry an errno (EINVAL for options that cannot
 * make a volume, ENOSPC for a device too small for what was asked) so the
 * CLI prints one clear line and exits non-zero.
 */
import { ErrnoName, FsError } from '../errors';

/** A flag, size or feature mkfs cannot use: the message names it and says what would work. */
export class MkfsUsageError extends FsError {
  /** The message without the errno prefix, for the CLI's one line. */
  readonly detail: string;
  constructor(message: string, errno: ErrnoName = 'EINVAL') {
    super(errno, message);
    this.name = 'MkfsUsageError';
    this.detail = message;
  }
}
