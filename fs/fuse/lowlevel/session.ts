/**
 * One FUSE session spoken directly over /dev/fuse (no libfuse, no native
 * code): the second transport next to fs/fuse/nativeSession.ts, with the same
 * life cycle.
 *
 *   const session = await LowLevelSession.mount(engine, '/mnt', { fsname: '/dev/sdb' });
 *   ... serve ...                 // requests run concurrently; session.stats()
 *   await session.unmount(true);  // or umount(8) from anywhere
 *   await session.ended;          // resolves once the kernel ended the session and every request settled
 *   await engine.unmount();       // the caller's job (as with NativeSession)
 *
 * mount() resolves when the mount is live: mount(8) succeeded and INIT has
 * been answered. The session ends when reads of /dev/fuse fail with ENODEV:
 * after umount, after the last file of a lazily unmounted (umount -l) mount
 * closes, or after an abort (abort(), or writing to fusectl's abort file).
 *
 * Options (LowLevelMountOptions):
 *   fsname              the mount's source as findmnt/df show it: the device exactly as given (required)
 *   readOnly            mount ro (forced when the engine is read-only)
 *   allowOther          let users other than root in (kernel option allow_other)
 *   defaultPermissions  the kernel checks permissions from the mode bits (default_permissions)
 *   noatime             the kernel's noatime flag (the engine applies its own atime policy)
 *   dev, suid, exec     the kernel's [no]dev/[no]suid/[no]exec flags; left to mount(8)'s default when unset
 *   debug               log every request and every error reply (debug namespace o2fuse:fuse:req)
 *   maxWrite            largest WRITE/READ request in bytes (4 KiB .. 1 MiB, default 1 MiB)
 *   entryTimeoutSec     how long the kernel caches a name -> inode answer (default 1 s)
 *   attrTimeoutSec      how long the kernel caches attributes (default 1 s)
 *   reader              'poll' (the main thread reads /dev/fuse when its event loop sees requests; needs the
 *                       addon, devPoll.ts) or 'threads' (worker threads read it); default poll where built
 *   readers             with reader 'threads': how many, one read outstanding each (default 2, at most 16)
 *   spinUs              with reader 'poll': once nothing is in flight, keep reading the empty queue this many
 *                       microseconds before sleeping (default 50; 0 never), paused while the client is quiet (spin.ts)
 *   maxBackground       background requests (async direct I/O, read-ahead) the kernel keeps in flight (default 64)
 *   readAheadBytes      the kernel's read-ahead window for the mount (default maxWrite, so sequential READs are 1 MiB)
 *   writebackCache      ask for FUSE_WRITEBACK_CACHE (default off; see init.ts for what it changes)
 *
 * Threads: /dev/fuse is read on the main thread (polled) or in worker threads
 * of its own (channel.ts), never in the libuv threadpool; the pool (UV_THREADPOOL_SIZE,
 * default 4) is left whole to the engine's device I/O. A bigger pool only
 * helps the engine overlap device requests; it must be in the environment
 * before node starts (set it in the launcher, bin/o2fuse), since the pool is
 * sized on first use.
 */
import * as fs from 'node:fs';
import createDebug from 'debug';
import type { Negotiated } from './init';
import { clampMaxWrite, MAX_BACKGROUND_DEFAULT } from './init';
import { FuseChannel } from './channel';
import { devPoll, unavailableReason, type DevPoll } from './devPoll';
import { Dispatcher, traceRequests } from './dispatcher';
import {
  abortConnection, connectionOf, mountOptionList, newMountAt, runMount, runUmount, setReadAheadKb,
} from './kernelMount';
import { mountsAt } from '../mountinfo';
import { LowLevelOps, type LowLevelEngine } from './ops';
import { FuseNotifyCode, hasFlag, InitFlag } from './protocol';
import { validityOf } from './reply';
import { StatsCollector, type SessionStats } from './stats';
import { checkSpinBudget, SpinPolicy, SPIN_BUDGET_US_DEFAULT } from './spin';
import { encodeFields } from '../../format/layout';
import { fuse_notify_delete_out, fuse_notify_inval_entry_out, fuse_notify_inval_inode_out } from './structs';

const log = createDebug('o2fuse:fuse');

/** Reader threads: one keeps up with the kernel; a second covers the moment the first hands a message over. */
export const READERS_DEFAULT = 2;
/** How long mount() waits for the kernel's INIT after mount(8) returned. */
export const INIT_TIMEOUT_MS = 30_000;
/** Room for the in header and fuse_write_in in front of max_write bytes of data. */
const REQUEST_HEADROOM_BYTES = 4096;
const S_IFMT = 0o170000;

export interface LowLevelMountOptions {
  fsname: string;
  readOnly?: boolean;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  noatime?: boolean;
  dev?: boolean;
  suid?: boolean;
  exec?: boolean;
  debug?: boolean;
  maxWrite?: number;
  entryTimeoutSec?: number;
  attrTimeoutSec?: number;
  reader?: 'poll' | 'threads';
  readers?: number;
  spinUs?: number;
  maxBackground?: number;
  /** The kernel's read-ahead window for this mount (default maxWrite: one full READ request). */
  readAheadBytes?: number;
  /** Ask for the FUSE writeback cache (buffered writes land in the kernel's page cache, reach us later in runs). */
  writebackCache?: boolean;
  /** Called once per request that failed for a reason that is not an errno (a bug). */
  onUnexpected?: (op: string, err: unknown) => void;
}

export class MountError extends Error {
  override name = 'MountError';
}

export interface UnmountResult {
  ok: boolean;
  lazy: boolean;
  message: string;
}

export class LowLevelSession {
  /** Resolves once the kernel has ended the session and no request is being served. */
  readonly ended: Promise<void>;
  private endedResolve!: () => void;
  private isEnded = false;
  private readonly stats_ = new StatsCollector();
  private readonly channel: FuseChannel;
  private readonly dispatcher: Dispatcher;
  private readonly ops: LowLevelOps;
  private readonly spin: SpinPolicy | undefined;
  private mountId_: number | undefined;
  private connection: number | undefined;
  /** How /dev/fuse is read; `fallback` says why it is 'threads' when nobody asked for threads. */
  readonly reader: { kind: 'poll' | 'threads'; fallback?: string };

  private constructor(
    readonly engine: LowLevelEngine,
    readonly mountpoint: string,
    fd: number,
    options: LowLevelMountOptions,
    readers: number,
    maxWriteBytes: number,
    reader: { kind: 'poll' | 'threads'; fallback?: string; poll?: DevPoll },
  ) {
    this.reader = { kind: reader.kind, fallback: reader.fallback };
    this.ended = new Promise((resolve) => (this.endedResolve = resolve));
    const timeouts = { entry: validityOf(options.entryTimeoutSec ?? 1), attr: validityOf(options.attrTimeoutSec ?? 1) };
    this.ops = new LowLevelOps(engine, timeouts, {
      interrupted: (unique) => {
        this.stats_.interrupts++;
        this.dispatcher.markInterrupted(unique);
      },
      forgotten: (count) => {
        this.stats_.forgets += count;
      },
      readDone: (bytes) => this.stats_.readDone(bytes),
      // Sent for fuseblk mounts only: the kernel waits for this reply, so the write-back is done when umount returns.
      destroy: () => engine.unmount(),
      writebackCache: () => hasFlag(this.dispatcher.negotiated?.flags ?? 0, InitFlag.FUSE_WRITEBACK_CACHE),
    });
    this.spin = reader.poll ? new SpinPolicy(options.spinUs ?? SPIN_BUDGET_US_DEFAULT) : undefined;
    this.channel = new FuseChannel(fd, {
      poll: reader.poll,
      spin: this.spin,
      // No spin while a request is served or the engine waits for the device (read-ins, write-back): their
      // completions need the event loop.
      busy: () => this.dispatcher.busy || !!engine.deviceBusy?.(),
      readers,
      bufferBytes: maxWriteBytes + REQUEST_HEADROOM_BYTES,
      onMessage: (msg) => this.dispatcher.handle(msg),
      onStopped: (err) => void this.channelStopped(err),
    });
    this.dispatcher = new Dispatcher(this.channel, this.ops, this.stats_, {
      initPolicy: {
        maxWriteBytes, maxBackground: options.maxBackground ?? MAX_BACKGROUND_DEFAULT, writebackCache: options.writebackCache ?? false,
      },
      onUnexpected: options.onUnexpected,
    });
  }

  /** Mounts `engine` on `mountpoint` (absolute, symlink-free); resolves once the mount is live. */
  static async mount(engine: LowLevelEngine, mountpoint: string, options: LowLevelMountOptions): Promise<LowLevelSession> {
    const maxWriteBytes = clampMaxWrite(options.maxWrite);
    const readers = options.readers ?? READERS_DEFAULT;
    const poll = options.reader === 'threads' ? undefined : devPoll();
    if (options.reader === 'poll' && !poll) throw new MountError(`reader=poll: ${unavailableReason()}`);
    if (options.spinUs !== undefined) checkSpinBudget(options.spinUs);
    if (options.spinUs !== undefined && !poll) {
      throw new MountError(`spin_us=${options.spinUs}: only the poll reader spins, and it is ${options.reader === 'threads' ? 'not chosen' : `unavailable: ${unavailableReason()}`}`);
    }
    const reader = poll ? { kind: 'poll' as const, poll } : { kind: 'threads' as const, fallback: options.reader ? undefined : unavailableReason() };
    if (options.debug) traceRequests.enabled = true;
    const root = await engine.getattr(engine.rootIno);
    const readOnly = !!options.readOnly || engine.readOnly;
    const before = new Set(mountsAt(mountpoint).map((m) => m.mountId));

    let fd: number;
    try {
      // libuv opens with O_CLOEXEC: no child but mount(8) (given it as fd 3) ever holds the channel open.
      fd = fs.openSync('/dev/fuse', fs.constants.O_RDWR);
    } catch (err) {
      throw new MountError(`cannot open /dev/fuse: ${(err as Error).message}`);
    }
    const optionList = mountOptionList({
      readOnly,
      allowOther: !!options.allowOther,
      defaultPermissions: !!options.defaultPermissions,
      noatime: !!options.noatime,
      dev: options.dev,
      suid: options.suid,
      exec: options.exec,
      rootModeType: root.mode & S_IFMT,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
    });
    log('mounting %s on %s with %s (%s, max_write %d)', options.fsname, mountpoint, optionList.join(','),
      poll ? 'polled on the main thread' : `${readers} reader threads${reader.fallback ? `: ${reader.fallback}` : ''}`, maxWriteBytes);
    const made = await runMount(fd, options.fsname || 'o2fuse', mountpoint, optionList);
    if (!made.ok) {
      fs.closeSync(fd);
      throw new MountError(`mount ${options.fsname} on ${mountpoint} failed: ${made.message}`);
    }

    // /dev/fuse refuses reads (EPERM) until mount(2) has attached it; the kernel's INIT is waiting now.
    const session = new LowLevelSession(engine, mountpoint, fd, options, readers, maxWriteBytes, reader);
    const ours = newMountAt(mountpoint, before);
    session.mountId_ = ours?.mountId;
    session.connection = ours ? connectionOf(ours.mountId) : undefined;
    session.channel.start();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        session.dispatcher.initialized(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no INIT from the kernel within ${INIT_TIMEOUT_MS / 1000} s`)), INIT_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      log('mount of %s failed after mount(8): %s; removing it', mountpoint, (err as Error).message);
      await session.abort();
      await runUmount(mountpoint, true);
      throw new MountError(`mount ${options.fsname} on ${mountpoint}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    const readAheadKb = Math.floor((options.readAheadBytes ?? maxWriteBytes) / 1024);
    if (session.mountId_ !== undefined && readAheadKb > 0 && !(await setReadAheadKb(session.mountId_, readAheadKb))) {
      log('could not set read_ahead_kb %d for %s: sequential reads stay at the kernel default', readAheadKb, mountpoint);
    }
    return session;
  }

  get mountId(): number | undefined {
    return this.mountId_;
  }

  /** What INIT settled (undefined only before mount() resolved). */
  get negotiated(): Negotiated | undefined {
    return this.dispatcher.negotiated;
  }

  stats(): SessionStats {
    return this.stats_.snapshot(this.channel.counters, this.spin);
  }

  /** True until the kernel has ended the session (a lazily unmounted session is alive while files are open). */
  alive(): boolean {
    return !this.channel.ended;
  }

  private async channelStopped(err: NodeJS.ErrnoException | undefined): Promise<void> {
    if (err) log('session on %s: reading /dev/fuse failed (%s): ending it', this.mountpoint, err.message);
    this.dispatcher.failInit(new Error('the session ended before INIT'));
    await this.dispatcher.idle();
    this.channel.close();
    this.isEnded = true;
    log('session on %s ended after %d requests', this.mountpoint, this.stats_.snapshot(this.channel.counters).requests);
    this.endedResolve();
  }

  /**
   * Asks the kernel to end the session. Not lazy first: a busy mount says so.
   * With `lazyIfBusy` a busy mount is detached (it ends when the last open file closes).
   */
  async unmount(lazyIfBusy: boolean): Promise<UnmountResult> {
    if (!this.alive() || this.isEnded) return { ok: true, lazy: false, message: '' };
    if (!this.stillMounted()) return { ok: true, lazy: true, message: 'already detached; the session ends when its last file closes' };
    const plain = await runUmount(this.mountpoint, false);
    if (plain.ok || !this.alive()) return { ok: true, lazy: false, message: '' };
    if (!lazyIfBusy) return { ok: false, lazy: false, message: plain.message };
    const lazy = await runUmount(this.mountpoint, true);
    return { ok: lazy.ok, lazy: true, message: lazy.ok ? plain.message : lazy.message };
  }

  private stillMounted(): boolean {
    if (this.mountId_ === undefined) return mountsAt(this.mountpoint).length > 0;
    return mountsAt(this.mountpoint).some((m) => m.mountId === this.mountId_);
  }

  /**
   * Ends the session from the kernel side at once (fusectl abort): waiting
   * requests fail with ENOTCONN, the mount stays until umount. For a daemon
   * that cannot serve any more; false if fusectl could not be reached.
   */
  async abort(): Promise<boolean> {
    if (this.connection === undefined) return false;
    return abortConnection(this.connection);
  }

  // ---- notifications ----

  /**
   * Drops the kernel's cached attributes of `ino` and its cached pages in
   * [offsetBytes, offsetBytes + lengthBytes) (length 0: to the end; offset -1:
   * attributes only). False when the kernel has no such inode cached.
   */
  invalInode(ino: number, offsetBytes = 0, lengthBytes = 0): Promise<boolean> {
    const body = Buffer.alloc(24);
    encodeFields(fuse_notify_inval_inode_out, { ino: this.ops.nodeid(ino), off: offsetBytes, len: lengthBytes }, body, 0, 'fuse_notify_inval_inode_out');
    return this.channel.notify(FuseNotifyCode.FUSE_NOTIFY_INVAL_INODE, [body]);
  }

  /** Drops the kernel's cached name `name` in directory `parentIno`. False when it has none cached. */
  invalEntry(parentIno: number, name: Buffer): Promise<boolean> {
    const body = Buffer.alloc(16);
    encodeFields(fuse_notify_inval_entry_out, { parent: this.ops.nodeid(parentIno), namelen: name.length, flags: 0 }, body, 0, 'fuse_notify_inval_entry_out');
    return this.channel.notify(FuseNotifyCode.FUSE_NOTIFY_INVAL_ENTRY, [body, name, Buffer.alloc(1)]);
  }

  /** Tells the kernel `name` in `parentIno` (naming `childIno`) is gone: like invalEntry, and open files see it deleted. */
  notifyDelete(parentIno: number, childIno: number, name: Buffer): Promise<boolean> {
    const body = Buffer.alloc(24);
    encodeFields(fuse_notify_delete_out, { parent: this.ops.nodeid(parentIno), child: this.ops.nodeid(childIno), namelen: name.length, padding: 0 }, body, 0, 'fuse_notify_delete_out');
    return this.channel.notify(FuseNotifyCode.FUSE_NOTIFY_DELETE, [body, name, Buffer.alloc(1)]);
  }
}
