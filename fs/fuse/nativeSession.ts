/**
 * One FUSE session through fuse-native (libfuse 2.9): mounting with the
 * options o2fuse needs, knowing when the session has ended, unmounting.
 *
 * How the end is seen: fuse-native gives JavaScript no signal when the
 * kernel ends the session (umount, fusermount -u). Its FUSE thread then
 * leaves fuse_loop_mt and closes the /dev/fuse descriptor (fuse_kern_unmount
 * closes it, and skips the umount when poll() says POLLERR, i.e. already
 * unmounted). So we note which descriptor of ours is /dev/fuse once mounted,
 * and the session has ended when that descriptor no longer is. This also
 * does the right thing for a lazy unmount (umount -l): the mount point is
 * gone at once but the session lives on, serving files still open, until
 * the kernel drops the last reference and closes the channel.
 *
 * Readiness: fuse-native calls the mount callback from the FUSE `init`
 * request, which the kernel sends only after mount(2) succeeded, so the
 * mount is live when mount() resolves.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import createDebug from 'debug';
import Fuse, { type FuseOps } from 'fuse-native';
import { mountsAt } from './mountinfo';

const log = createDebug('o2fuse:fuse');

/** How often the /dev/fuse descriptor is checked: the daemon exits at most this long after an unmount. */
export const SESSION_POLL_MS = 100;
/** fuse-native copies the option string into a 1024-byte buffer. */
const OPTION_STRING_BYTES_MAX = 1023;
/** libfuse 2 negotiates no max_pages, so the kernel caps writes at 32 pages anyway; this asks for the most. */
export const MAX_WRITE_BYTES = 1 << 20;

export interface NativeMountOptions {
  /** The mount's source as tools see it (findmnt -S, df): the device exactly as given. */
  fsname: string;
  readOnly: boolean;
  noatime: boolean;
  allowOther: boolean;
  defaultPermissions: boolean;
  dev?: boolean;
  suid?: boolean;
  exec?: boolean;
  /** libfuse's own request trace on stderr. */
  debug: boolean;
}

/** libfuse's -o syntax: a comma or backslash inside a value is escaped with a backslash. */
function escapeOptionValue(value: string): string {
  return value.replace(/[\\,]/g, (c) => `\\${c}`);
}

/**
 * The options handed to libfuse. relatime/strictatime/nodiratime are not
 * here: libfuse 2 refuses them (the engine applies the atime policy itself).
 */
export function libfuseOptions(o: NativeMountOptions): string[] {
  const opts = [
    `fsname=${escapeOptionValue(o.fsname)}`,
    'subtype=o2fuse',
    'big_writes',
    `max_write=${MAX_WRITE_BYTES}`,
    'use_ino',
    // The kernel mounts over non-empty directories; libfuse 2 would refuse without this.
    'nonempty',
    o.readOnly ? 'ro' : 'rw',
  ];
  if (o.noatime) opts.push('noatime');
  if (o.allowOther) opts.push('allow_other');
  if (o.defaultPermissions) opts.push('default_permissions');
  if (o.dev !== undefined) opts.push(o.dev ? 'dev' : 'nodev');
  if (o.suid !== undefined) opts.push(o.suid ? 'suid' : 'nosuid');
  if (o.exec !== undefined) opts.push(o.exec ? 'exec' : 'noexec');
  if (o.debug) opts.push('debug');
  return opts;
}

class O2Fuse extends Fuse {
  constructor(mnt: string, ops: FuseOps, private readonly optionString: string) {
    super(mnt, ops, { timeout: false });
  }

  // fuse-native builds "-o..." only from the options it knows; ours reach libfuse whole.
  override _fuseOptions(): string {
    return this.optionString;
  }
}

function fuseDescriptors(): Set<number> {
  const fds = new Set<number>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === '/dev/fuse') fds.add(Number(name));
    } catch {
      // closed while we looked (the readdir's own descriptor)
    }
  }
  return fds;
}

export function runFusermount(args: string[]): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    execFile('fusermount', args, { timeout: 60_000 }, (err, _stdout, stderr) => {
      resolve({ ok: !err, message: (stderr || (err ? err.message : '')).trim() });
    });
  });
}

export class MountError extends Error {
  override name = 'MountError';
}

export class NativeSession {
  /** Resolves once the kernel has ended the session (unmounted, or aborted). */
  readonly ended: Promise<void>;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly mountpoint: string,
    readonly mountId: number | undefined,
    private readonly fd: number,
  ) {
    this.ended = new Promise((resolve) => {
      this.timer = setInterval(() => {
        if (this.alive()) return;
        clearInterval(this.timer);
        log('session on %s ended', mountpoint);
        resolve();
      }, SESSION_POLL_MS);
    });
  }

  /** Mounts `ops` on `mountpoint` (absolute, symlink-free); resolves once the mount is live. */
  static async mount(mountpoint: string, ops: FuseOps, options: NativeMountOptions): Promise<NativeSession> {
    const optionString = `-o${libfuseOptions(options).join(',')}`;
    if (Buffer.byteLength(optionString) > OPTION_STRING_BYTES_MAX) {
      throw new MountError(`the FUSE option string is longer than ${OPTION_STRING_BYTES_MAX} bytes (is the device path that long?)`);
    }
    const fdsBefore = fuseDescriptors();
    const mountIdsBefore = new Set(mountsAt(mountpoint).map((m) => m.mountId));
    const fuse = new O2Fuse(mountpoint, ops, optionString);
    log('mounting %s with %s', mountpoint, optionString);
    try {
      await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      // libfuse can fail after fuse_mount() succeeded (fuse_new refusing an option): do not leave that mount behind.
      await unmountNew(mountpoint, mountIdsBefore);
      const reason = (err as Error).message;
      throw new MountError(reason === 'fuse failed' ? 'libfuse refused the mount (its reason is on the line above, or in the log)' : reason);
    }
    const fd = [...fuseDescriptors()].find((n) => !fdsBefore.has(n));
    if (fd === undefined) throw new MountError('mounted, but found no /dev/fuse descriptor to watch');
    const ours = mountsAt(mountpoint).find((m) => !mountIdsBefore.has(m.mountId) && m.fsType === 'fuse.o2fuse');
    return new NativeSession(mountpoint, ours?.mountId, fd);
  }

  alive(): boolean {
    try {
      return readlinkSync(`/proc/self/fd/${this.fd}`) === '/dev/fuse';
    } catch {
      return false;
    }
  }

  /**
   * Asks the kernel to end the session. Not lazy first: a busy mount says so.
   * With `lazyIfBusy` a busy mount is detached (it ends when the last open file closes).
   */
  async unmount(lazyIfBusy: boolean): Promise<{ ok: boolean; lazy: boolean; message: string }> {
    if (!this.alive()) return { ok: true, lazy: false, message: '' };
    const plain = await runFusermount(['-u', this.mountpoint]);
    if (plain.ok || !this.alive()) return { ok: true, lazy: false, message: '' };
    if (!lazyIfBusy) return { ok: false, lazy: false, message: plain.message };
    const lazy = await runFusermount(['-u', '-z', this.mountpoint]);
    return { ok: lazy.ok, lazy: true, message: lazy.ok ? plain.message : lazy.message };
  }
}

async function unmountNew(mountpoint: string, before: Set<number>): Promise<void> {
  for (const m of mountsAt(mountpoint)) {
    if (before.has(m.mountId) || m.fsType !== 'fuse.o2fuse') continue;
    log('removing the half-made mount %d on %s', m.mountId, mountpoint);
    const plain = await runFusermount(['-u', mountpoint]);
    if (!plain.ok) await runFusermount(['-u', '-z', mountpoint]);
  }
}
