/**
 * `o2fuse mkfs [...] DEVICE [SIZE]`: mkfs.ocfs2's command line, run by
 * fs/mkfs (runMkfs parses it, creates a sparse image when DEVICE does not
 * exist and SIZE is given, and refuses to overwrite a volume without -F).
 * Here only: the device lock is held while formatting, so a volume an
 * o2fuse daemon has mounted is never formatted under it.
 */
import * as fs from 'node:fs';
import { parseMkfsArgs, runMkfs } from '../fs/mkfs';
import { DeviceLockedError, lockDevice, type DeviceLock } from '../io/deviceLock';

export async function mkfsCommand(argv: readonly string[]): Promise<number> {
  let devicePath: string | undefined;
  try {
    devicePath = parseMkfsArgs(argv).devicePath;
  } catch {
    // usage errors, --help, -V: runMkfs reports them
  }
  let lock: DeviceLock | undefined;
  if (devicePath !== undefined && fs.existsSync(devicePath)) {
    try {
      lock = await lockDevice(devicePath);
    } catch (err) {
      if (err instanceof DeviceLockedError) {
        console.error(`mkfs: ${devicePath} is mounted by o2fuse (pid ${err.holderPid}): unmount it first`);
        return 1;
      }
      throw err;
    }
  }
  try {
    return await runMkfs(argv);
  } finally {
    await lock?.release();
  }
}
