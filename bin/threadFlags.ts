/**
 * How many background threads V8 gets in the daemon (node's --v8-pool-size).
 *
 * V8 compiles hot code, marks and sweeps the heap on a pool of worker threads
 * (node starts four). The daemon's work is one thread (its event loop) and a
 * client that calls it one request at a time needs a CPU of its own; on a
 * small machine every runnable worker beyond what is left preempts one of the
 * two, mid-request, for a scheduler slice: a fresh daemon's extending 128 KiB
 * writes stalled 1-4 ms about 50 times in their first 256 MiB (2 CPUs; with
 * one worker 2-3 times). So the pool gets the CPUs beyond those two, at least
 * one and at most node's four.
 *
 * Measured on 2 CPUs (one worker against four), through FUSE on the kernel
 * transport, each pair run A-B-B-A: 5,000 creates 3,079-3,240 -> 3,712-3,884
 * per second, cold stats 21-22k -> 28-47k, unlinks 5,262-5,643 -> 5,722-6,025;
 * sequential 1 MiB writes 590-643 -> 645-667 MiB/s; buffered 4 KiB random
 * writes 17,024-17,516 -> 17,746-18,506 IOPS; 512-byte direct writes with
 * verify 23,676-25,090 -> 23,141-25,802 (unchanged). Larger machines keep
 * more workers: not measured here, and there the workers have CPUs of their own.
 *
 * Worked out by the mount command and given to the daemon it starts, as the
 * heap floor is (heapFlags.ts); a pool size given in O2FUSE_NODE_OPTIONS is
 * left alone.
 */

import { givenFlag } from './heapFlags';

const FLAG = '--v8-pool-size';
/** node's own default. */
export const V8_POOL_SIZE_MAX = 4;
/** The CPUs the request path itself keeps busy: the daemon's event loop and one client. */
const REQUEST_PATH_CPUS = 2;

/** The node flags that size the daemon's V8 worker pool on a machine with `cpus` CPUs, given the launcher's flags. */
export function threadFlagsFor(cpus: number, execArgv: readonly string[]): string[] {
  if (givenFlag(execArgv, FLAG)) return [];
  const size = Math.max(1, Math.min(V8_POOL_SIZE_MAX, Math.floor(cpus) - REQUEST_PATH_CPUS));
  return [`${FLAG}=${size}`];
}
