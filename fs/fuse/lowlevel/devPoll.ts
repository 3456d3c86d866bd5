/**
 * The /dev/fuse poll reader (native/fusepoll.c, built into
 * dist/native/fusepoll.node by scripts/build-native.sh; io/nativeAddon.ts
 * loads it): the main thread waits for requests in its own event loop and
 * reads them itself, instead of worker threads reading and handing each
 * request over (see channel.ts).
 *
 * Optional by design: a machine without a C compiler or node's headers gets
 * the worker-thread reader, and says why (`unavailableReason`).
 */
import { nativeAddon } from '../../../io/nativeAddon';

export interface DevPoll {
  /** Calls `onReadable` on the main thread whenever `fd` is readable (level-triggered); status < 0 is a libuv error. */
  watch(fd: number, onReadable: (status: number) => void): unknown;
  /** Stops a watch; idempotent. */
  unwatch(handle: unknown): void;
  /** read(2) into `buf`: bytes read, or minus the errno (-EAGAIN when nothing is queued). */
  readInto(fd: number, buf: Buffer): number;
  /**
   * Like readInto, but an empty queue is read again for up to `budgetNs`
   * before -EAGAIN (the thread stays awake; see spin.ts).
   */
  spinRead(fd: number, buf: Buffer, budgetNs: number): number;
  /** Sets O_NONBLOCK on `fd`: 0, or minus the errno. */
  setNonblocking(fd: number): number;
}

const FUNCTIONS = ['watch', 'unwatch', 'readInto', 'spinRead', 'setNonblocking'] as const;

/** The addon, or undefined (then `unavailableReason()` says why). */
export function devPoll(): DevPoll | undefined {
  const r = nativeAddon(FUNCTIONS);
  return 'addon' in r ? (r.addon as unknown as DevPoll) : undefined;
}

export function unavailableReason(): string | undefined {
  const r = nativeAddon(FUNCTIONS);
  return 'failure' in r ? r.failure : undefined;
}
