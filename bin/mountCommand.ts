/**
 * `o2fuse mount [-f] [-o OPTS] DEV DIR`, its mount.fuse form
 * `o2fuse DEV DIR -o OPTS`, remount, umount and status.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { o2fuseMountAt, mountsAt } from '../fs/fuse/mountinfo';
import { runFusermount } from '../fs/fuse/nativeSession';
import { sendControl } from './control';
import { installCrashGuard, runDaemon, type DaemonConfig, type DaemonDeps } from './daemon';
import { runForegroundWithFlags, startDetachedDaemon } from './detach';
import { heapFlagsFor } from './heapFlags';
import { threadFlagsFor } from './threadFlags';
import { OptionError, parseMountOptions } from './options';
import { liveRecord, liveRecords, recordAlive, type DaemonRecord } from './registry';

export const MOUNT_USAGE = `usage: o2fuse mount [-f] [-o OPTIONS] DEVICE MOUNTPOINT
       o2fuse DEVICE MOUNTPOINT [-o OPTIONS]      (the form mount -t fuse.o2fuse runs)
       o2fuse mount -o remount,OPTIONS [DEVICE] MOUNTPOINT
  -f  stay in the foreground; Ctrl-C unmounts
  OPTIONS: ro rw noatime relatime strictatime nodiratime allow_other
           default_permissions dev nodev suid nosuid exec noexec
           cache_size=BYTES commit=SECONDS unaligned_dio=range|inode|unsafe
               dx_hash=signed|unsigned inject=SPEC
           transport=kernel|libfuse debug remount`;

/** How long `o2fuse umount` waits for the daemon to write back and exit. */
export const UMOUNT_WAIT_MS = 300_000;

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface MountArgs {
  foreground: boolean;
  optionLists: string[];
  positional: string[];
  help: boolean;
}

export function parseMountArgs(argv: readonly string[]): MountArgs {
  const out: MountArgs = { foreground: false, optionLists: [], positional: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-f' || arg === '--foreground') out.foreground = true;
    else if (arg === '-h' || arg === '--help') out.help = true;
    else if (arg === '-o') {
      if (i + 1 >= argv.length) throw new UsageError('-o needs a list of options');
      out.optionLists.push(argv[++i]);
    } else if (arg.startsWith('-o')) out.optionLists.push(arg.slice(2));
    // mount(8) and mount.fuse may pass these: no mtab, sloppy, verbose.
    else if (arg === '-n' || arg === '-s' || arg === '-v') continue;
    else if (arg.startsWith('-') && arg.length > 1) throw new UsageError(`unknown flag ${arg}\n${MOUNT_USAGE}`);
    else out.positional.push(arg);
  }
  return out;
}

/** The mount point as the kernel names it: absolute and symlink-free (a dead FUSE mount cannot be resolved, its parent can). */
export function resolveMountpoint(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') return path.join(fs.realpathSync(path.dirname(path.resolve(dir))), path.basename(dir));
    throw err;
  }
}

export function fail(message: string): number {
  console.error(`o2fuse: ${message}`);
  return 1;
}

/**
 * The live daemon serving `dir`, for a command that talks to it (remount,
 * stats); or, when there is none, the place and the reason for the message
 * "cannot ... WHERE: WHY".
 */
export function servingDaemon(dir: string): { mountpoint: string; rec: DaemonRecord } | { where: string; why: string } {
  let mountpoint: string;
  try {
    mountpoint = resolveMountpoint(dir);
  } catch (err) {
    return { where: dir, why: (err as Error).message };
  }
  const rec = liveRecord(mountpoint);
  if (rec) return { mountpoint, rec };
  if (o2fuseMountAt(mountpoint)) return { where: mountpoint, why: 'its o2fuse daemon is gone; umount it and mount again' };
  return { where: mountpoint, why: 'no o2fuse daemon serves it (not mounted?)' };
}

/** A mount point left by a daemon that died: fuse.o2fuse on top, nobody serving it. */
async function clearDeadMount(mountpoint: string): Promise<void> {
  if (!o2fuseMountAt(mountpoint) || liveRecord(mountpoint)) return;
  console.error(`o2fuse: ${mountpoint} holds a dead o2fuse mount (its daemon is gone): unmounting it first`);
  const plain = await runFusermount(['-u', mountpoint]);
  if (!plain.ok) await runFusermount(['-u', '-z', mountpoint]);
}

export async function mountCommand(args: MountArgs, deps: DaemonDeps, entry: string): Promise<number> {
  if (args.help) {
    console.log(MOUNT_USAGE);
    return 0;
  }
  let options;
  try {
    options = parseMountOptions(args.optionLists);
  } catch (err) {
    if (err instanceof OptionError) return fail(err.message);
    throw err;
  }
  if (options.remount) return remountCommand(args);
  if (args.positional.length !== 2) return fail(`mount needs a DEVICE and a MOUNTPOINT\n${MOUNT_USAGE}`);
  const [device, dir] = args.positional;
  const devicePath = path.resolve(device);

  let st: fs.Stats;
  try {
    st = fs.statSync(devicePath);
  } catch (err) {
    return fail(`cannot mount ${device}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or block device' : (err as Error).message}`);
  }
  if (!st.isFile() && !st.isBlockDevice()) return fail(`cannot mount ${device}: not an image file or a block device`);

  let mountpoint: string;
  try {
    mountpoint = resolveMountpoint(dir);
  } catch (err) {
    return fail(`cannot mount on ${dir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (err as Error).message}`);
  }
  const holder = liveRecord(mountpoint);
  if (holder) return fail(`${mountpoint} is already mounted by o2fuse (pid ${holder.pid}, device ${holder.device}); use -o remount to change it`);
  await clearDeadMount(mountpoint);
  try {
    if (!fs.statSync(mountpoint).isDirectory()) return fail(`cannot mount on ${dir}: not a directory`);
  } catch (err) {
    return fail(`cannot mount on ${dir}: ${(err as Error).message}`);
  }
  const top = mountsAt(mountpoint).pop();
  if (top) return fail(`cannot mount on ${mountpoint}: it is already a mount point (${top.fsType} from ${top.source}); fuse-native mounts only on a plain directory`);

  const config: DaemonConfig = { device, devicePath, mountpoint, optionLists: args.optionLists, foreground: args.foreground };
  // The daemon's heap floor and V8 worker pool are node flags: the daemon runs in a process started with them.
  const flags = [...heapFlagsFor(options.cacheSizeBytes, process.execArgv), ...threadFlagsFor(os.availableParallelism(), process.execArgv)];
  if (args.foreground) {
    if (flags.length) return runForegroundWithFlags(entry, process.argv.slice(2), flags);
    return runForeground(config, deps);
  }

  const result = await startDetachedDaemon(entry, config, flags);
  if (!result.ok) return fail(`cannot mount ${device} on ${mountpoint}:\n${result.error}`);
  for (const w of result.warnings) console.error(`o2fuse: warning: ${w}`);
  // Silent on success, as mount(8) is (harnesses compare output); a person at a terminal learns where the log is.
  if (process.stderr.isTTY) console.error(`o2fuse: ${device} mounted on ${mountpoint}${result.readOnly ? ' (read-only)' : ''}; daemon pid ${result.pid}, log ${result.logPath}`);
  return 0;
}

export async function runForeground(config: DaemonConfig, deps: DaemonDeps): Promise<number> {
  installCrashGuard(config, () => undefined);
  let mounted = false;
  const code = await runDaemon(config, deps, {
    ready({ readOnly, warnings }) {
      for (const w of warnings) console.error(`o2fuse: warning: ${w}`);
      console.error(`o2fuse: ${config.device} mounted on ${config.mountpoint}${readOnly ? ' (read-only)' : ''}; Ctrl-C unmounts`);
      mounted = true;
    },
    failed(message) {
      console.error(`o2fuse: cannot mount ${config.device} on ${config.mountpoint}: ${message}`);
    },
  });
  if (mounted) console.error(`o2fuse: ${config.mountpoint} unmounted${code === 0 ? '' : ' (with errors, see above)'}`);
  return code;
}

export async function remountCommand(args: MountArgs): Promise<number> {
  const dir = args.positional[args.positional.length - 1];
  if (!dir || args.positional.length > 2) return fail(`remount needs the MOUNTPOINT\n${MOUNT_USAGE}`);
  const daemon = servingDaemon(dir);
  if (!('rec' in daemon)) return fail(`cannot remount ${daemon.where}: ${daemon.why}`);
  const { mountpoint, rec } = daemon;
  try {
    const reply = await sendControl(rec.socket, { op: 'remount', options: args.optionLists });
    if (!reply.ok) return fail(`cannot remount ${mountpoint}: ${reply.error}`);
    if (process.stderr.isTTY && reply.message) console.error(`o2fuse: ${mountpoint}: ${reply.message}`);
    return 0;
  } catch (err) {
    return fail(`cannot remount ${mountpoint}: the daemon (pid ${rec.pid}) did not answer: ${(err as Error).message}`);
  }
}

/** `o2fuse umount [-l] DIR`: unmount, then wait until the daemon has written back and let the device go. */
export async function umountCommand(argv: readonly string[]): Promise<number> {
  const lazy = argv.includes('-l');
  const dirs = argv.filter((a) => a !== '-l');
  if (dirs.length !== 1) return fail('usage: o2fuse umount [-l] MOUNTPOINT');
  let mountpoint: string;
  try {
    mountpoint = resolveMountpoint(dirs[0]);
  } catch (err) {
    return fail(`cannot unmount ${dirs[0]}: ${(err as Error).message}`);
  }
  const rec = liveRecord(mountpoint);
  const r = await runFusermount(lazy ? ['-u', '-z', mountpoint] : ['-u', mountpoint]);
  if (!r.ok) return fail(`cannot unmount ${mountpoint}: ${r.message}`);
  if (!rec) return 0;
  const deadline = Date.now() + UMOUNT_WAIT_MS;
  while (recordAlive(rec)) {
    if (Date.now() > deadline) return fail(`${mountpoint} is unmounted but its daemon (pid ${rec.pid}) is still writing back after ${UMOUNT_WAIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return 0;
}

export function statusCommand(): number {
  const recs = liveRecords();
  if (recs.length === 0) {
    console.log('no o2fuse mounts');
    return 0;
  }
  for (const r of recs) console.log(`${r.device} on ${r.mountpoint} pid ${r.pid}${r.log ? ` log ${r.log}` : ''}`);
  return 0;
}
