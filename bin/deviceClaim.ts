/**
 * One o2fuse daemon per device (io/deviceLock.ts), with one addition for
 * harnesses: after `umount` a daemon still writes back before it lets the
 * device go, and umount(8) does not wait for that. A new mount of the same
 * device waits for such a predecessor (a lock holder that no longer serves
 * a mount point) instead of failing, and fails at once when the device is
 * really in use.
 */
import createDebug from 'debug';
import { DeviceLockedError, lockDevice, type DeviceLock } from '../io/deviceLock';
import { liveRecords, pidAlive, RegistryError } from './registry';

const log = createDebug('o2fuse:daemon');

/** How long a mount waits for the previous daemon of its device to finish writing back. */
export const PREDECESSOR_WAIT_MS = 120_000;
const POLL_MS = 50;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function claimDevice(devicePath: string, cancelled: () => boolean, waitMs = PREDECESSOR_WAIT_MS): Promise<DeviceLock> {
  const deadline = Date.now() + waitMs;
  let waitingFor = 0;
  for (;;) {
    try {
      const lock = await lockDevice(devicePath);
      if (waitingFor) log('%s released by pid %d', devicePath, waitingFor);
      return lock;
    } catch (err) {
      if (!(err instanceof DeviceLockedError)) throw err;
      const holder = err.holderPid;
      const serving = liveRecords().find((r) => r.pid === holder);
      if (serving) throw new RegistryError(`${devicePath} is in use: o2fuse pid ${holder} has it mounted on ${serving.mountpoint}`);
      if (holder === process.pid) throw err;
      if (!waitingFor) log('%s: waiting for pid %d to finish writing back', devicePath, holder);
      waitingFor = holder;
      if (cancelled()) throw new RegistryError('interrupted while waiting for the previous daemon of the device');
      if (Date.now() > deadline) {
        throw new RegistryError(`${devicePath} is still held by pid ${holder} ${pidAlive(holder) ? '(an o2fuse writing back after its umount?)' : ''} after ${waitMs / 1000} s`);
      }
      await sleep(POLL_MS);
    }
  }
}
