/**
 * The low-level FUSE transport (the FUSE protocol spoken over /dev/fuse, no
 * libfuse): what the command line needs. See session.ts for the options and
 * README.md for how it differs from the fuse-native transport.
 */
export { LowLevelSession, MountError, READERS_DEFAULT, type LowLevelMountOptions, type UnmountResult } from './session';
export type { LowLevelEngine } from './ops';
export type { SessionStats } from './stats';
export { describeNegotiated, type Negotiated } from './init';
