/**
 * Making and removing the kernel mount of a low-level session, with mount(8)
 * and umount(8) (no libfuse, no fusermount: the daemon runs as root).
 *
 *   mount -i --no-canonicalize -t fuse.o2fuse -o fd=3,rootmode=40000,user_id=0,group_id=0[,...]
 *         --source SOURCE --target MOUNTPOINT
 *
 * with our /dev/fuse descriptor passed as the child's fd 3. `-i` keeps
 * mount(8) from running a mount.fuse.o2fuse helper (that would be us). The
 * kernel takes "fuse.o2fuse" as type fuse with subtype o2fuse. SOURCE is
 * shown exactly as given (findmnt -S SOURCE, df): --no-canonicalize stops
 * mount(8) from making a relative image path absolute, and --source keeps a
 * name starting with "-" from being read as an option.
 *
 * The last resort for a session that does not answer is the fusectl abort
 * file: /sys/fs/fuse/connections/<dev>/abort.
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import { mountsAt, type MountEntry } from '../mountinfo';

export const FUSE_TYPE = 'fuse.o2fuse';
const FUSECTL_DIR = '/sys/fs/fuse/connections';
const CHILD_FD = 3;
/** mount(8) and umount(8) do not wait for FUSE requests; a minute means something is wrong. */
const TOOL_TIMEOUT_MS = 60_000;

export interface KernelMountFlags {
  readOnly: boolean;
  allowOther: boolean;
  defaultPermissions: boolean;
  noatime: boolean;
  dev?: boolean;
  suid?: boolean;
  exec?: boolean;
  /** S_IFMT bits of the root inode (rootmode=, octal). */
  rootModeType: number;
  uid: number;
  gid: number;
}

/** The -o list handed to mount(8): the fuse options the kernel parses, then the generic mount flags. */
export function mountOptionList(f: KernelMountFlags): string[] {
  const opts = [`fd=${CHILD_FD}`, `rootmode=${f.rootModeType.toString(8)}`, `user_id=${f.uid}`, `group_id=${f.gid}`];
  if (f.allowOther) opts.push('allow_other');
  if (f.defaultPermissions) opts.push('default_permissions');
  opts.push(f.readOnly ? 'ro' : 'rw');
  if (f.noatime) opts.push('noatime');
  if (f.dev !== undefined) opts.push(f.dev ? 'dev' : 'nodev');
  if (f.suid !== undefined) opts.push(f.suid ? 'suid' : 'nosuid');
  if (f.exec !== undefined) opts.push(f.exec ? 'exec' : 'noexec');
  return opts;
}

export interface ToolResult {
  ok: boolean;
  message: string;
}

/** Runs mount(8) with `fuseFd` as its fd 3; resolves when it has exited. */
export function runMount(fuseFd: number, source: string, mountpoint: string, options: string[]): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn('mount', ['-i', '--no-canonicalize', '-t', FUSE_TYPE, '-o', options.join(','), '--source', source, '--target', mountpoint], {
      stdio: ['ignore', 'pipe', 'pipe', fuseFd],
      timeout: TOOL_TIMEOUT_MS,
    });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.on('error', (err) => resolve({ ok: false, message: `cannot run mount: ${err.message}` }));
    child.on('close', (code, signal) => {
      resolve({ ok: code === 0, message: out.trim() || (code === 0 ? '' : `mount exited ${code ?? signal}`) });
    });
  });
}

export function runUmount(mountpoint: string, lazy: boolean): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile('umount', ['-i', ...(lazy ? ['-l'] : []), mountpoint], { timeout: TOOL_TIMEOUT_MS }, (err, stdout, stderr) => {
      resolve({ ok: !err, message: (stderr || stdout || (err ? err.message : '')).trim() });
    });
  });
}

/** The fuse.o2fuse mount on `dir` made after `before` (mount ids seen before mounting). */
export function newMountAt(dir: string, before: ReadonlySet<number>): MountEntry | undefined {
  return mountsAt(dir).find((m) => !before.has(m.mountId) && m.fsType === FUSE_TYPE);
}

/** The fusectl connection number of a mount: its anonymous device number as the kernel prints dev_t. */
export function connectionOf(mountId: number): number | undefined {
  // mountinfo's third field (major:minor) is not in MountEntry: read it here.
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (Number(fields[0]) === mountId && fields[2]) return connectionFromDevice(fields[2]);
  }
  return undefined;
}

export function connectionFromDevice(device: string): number | undefined {
  const m = /^(\d+):(\d+)$/.exec(device);
  if (!m) return undefined;
  // The kernel's internal dev_t: major << 20 | minor.
  return Number(m[1]) * 2 ** 20 + Number(m[2]);
}

/**
 * Sets the kernel's read-ahead for the mount (its backing device info,
 * /sys/class/bdi/MAJ:MIN/read_ahead_kb). A FUSE mount starts with the
 * default 128 KiB, so a sequential reader gets 128 KiB READ requests however
 * large max_pages is; a window as large as one request lets each READ carry
 * 1 MiB. Returns whether the kernel took it (it is only a speed-up).
 */
export async function setReadAheadKb(mountId: number, kb: number): Promise<boolean> {
  let device: string | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (Number(fields[0]) === mountId && fields[2]) device = fields[2];
  }
  if (!device || !/^\d+:\d+$/.test(device)) return false;
  try {
    await fsp.writeFile(`/sys/class/bdi/${device}/read_ahead_kb`, `${Math.floor(kb)}\n`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Aborts the connection: every waiting request fails with ENOTCONN and our
 * reads end with ENODEV. fusectl is not always mounted (systemd mounts it at
 * boot, minimal systems do not): then it is mounted for the write and
 * unmounted again.
 */
export async function abortConnection(connection: number): Promise<boolean> {
  const file = `${FUSECTL_DIR}/${connection}/abort`;
  const exists = () => fsp.access(file).then(() => true, () => false);
  let mountedHere = false;
  if (!(await exists())) mountedHere = await runTool('mount', ['-t', 'fusectl', 'fusectl', FUSECTL_DIR]);
  try {
    await fsp.writeFile(file, '1');
    return true;
  } catch {
    return false;
  } finally {
    if (mountedHere) await runTool('umount', [FUSECTL_DIR]);
  }
}

function runTool(cmd: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => execFile(cmd, args, { timeout: TOOL_TIMEOUT_MS }, (err) => resolve(!err)));
}
