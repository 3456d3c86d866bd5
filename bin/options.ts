/**
 * Mount options: the one parser for `-o` strings, whichever way o2fuse was
 * started (o2fuse mount, mount -t fuse.o2fuse, fstab, remount).
 *
 * Each option is accepted with a meaning or refused with a message that names
 * it: a harness that passes an option we silently ignore would test something
 * else than it thinks.
 */
import { parseInjectSpec } from '../io/injectSpec';
import { parseSizeBytes, SizeError } from './size';
import { SPIN_BUDGET_US_MAX } from '../fs/fuse/lowlevel/spin';
import type { DxHashChars } from '../fs/context';

export type AtimePolicy = 'relatime' | 'noatime' | 'strictatime';
export type UnalignedDio = 'range' | 'inode' | 'unsafe';

export interface MountOptions {
  readOnly: boolean;
  atime: AtimePolicy;
  nodiratime: boolean;
  allowOther: boolean;
  defaultPermissions: boolean;
  /** undefined: libfuse's default (nodev, nosuid, exec). */
  dev?: boolean;
  suid?: boolean;
  exec?: boolean;
  cacheSizeBytes?: number;
  /** commit=SECONDS: how often the journal commits (the kernel's option; default 5). */
  commitIntervalMs?: number;
  unalignedDio?: UnalignedDio;
  /**
   * dx_hash=signed|unsigned: how the indexed-directory hash reads the bytes of the names this mount adds
   * (VolumeContext.dxHashChars): signed as ocfs2-tools and x86 kernels before 6.2, unsigned as kernels since.
   */
  dxHashChars?: DxHashChars;
  /** The fault-injection spec (io/injectSpec.ts syntax), kept as text. */
  inject?: string;
  /**
   * 'kernel': o2fuse speaks the FUSE protocol on /dev/fuse itself (async direct I/O, 1 MiB writes, nanosecond
   * times; needs root). 'libfuse': fuse-native over libfuse 2.9 (works unprivileged, serializes writes per inode).
   */
  transport: 'kernel' | 'libfuse';
  /**
   * writeback_cache: the kernel's page cache absorbs buffered writes and sends them later, in runs (FUSE
   * writeback cache; kernel transport only). Off by default: then every write(2) reaches the engine as it happens.
   */
  writebackCache: boolean;
  /**
   * reader=poll|threads (kernel transport): how /dev/fuse is read; undefined picks poll where its addon is built
   * (fs/fuse/lowlevel/channel.ts explains both).
   */
  reader?: 'poll' | 'threads';
  /**
   * spin_us=N (kernel transport, poll reader): how long the reader keeps reading an empty /dev/fuse queue
   * once nothing is in flight, before sleeping; undefined is the default (fs/fuse/lowlevel/spin.ts).
   */
  spinUs?: number;
  debug: boolean;
  /** `remount` was among the options: change a live mount, start nothing. */
  remount: boolean;
  /** Options that only mean something to mount(8) or fstab, accepted and unused. */
  ignored: string[];
  /** Which of ro/rw and the atime options were given explicitly (remount changes only those). */
  explicit: Set<'readOnly' | 'atime' | 'nodiratime'>;
}

export class OptionError extends Error {
  override name = 'OptionError';
}

/** Flags that take no value, and what each does to the options. */
const FLAGS: Record<string, (o: MountOptions) => void> = {
  ro: (o) => { o.readOnly = true; o.explicit.add('readOnly'); },
  rw: (o) => { o.readOnly = false; o.explicit.add('readOnly'); },
  noatime: (o) => { o.atime = 'noatime'; o.explicit.add('atime'); },
  relatime: (o) => { o.atime = 'relatime'; o.explicit.add('atime'); },
  strictatime: (o) => { o.atime = 'strictatime'; o.explicit.add('atime'); },
  // mount(8): "atime" only clears noatime, which leaves the default, relatime.
  atime: (o) => { o.atime = 'relatime'; o.explicit.add('atime'); },
  nodiratime: (o) => { o.nodiratime = true; o.explicit.add('nodiratime'); },
  diratime: (o) => { o.nodiratime = false; o.explicit.add('nodiratime'); },
  allow_other: (o) => { o.allowOther = true; },
  default_permissions: (o) => { o.defaultPermissions = true; },
  dev: (o) => { o.dev = true; },
  nodev: (o) => { o.dev = false; },
  suid: (o) => { o.suid = true; },
  nosuid: (o) => { o.suid = false; },
  exec: (o) => { o.exec = true; },
  noexec: (o) => { o.exec = false; },
  // Writes are asynchronous (write-back) unless the file asks otherwise; that is the default.
  async: () => {},
  debug: (o) => { o.debug = true; },
  writeback_cache: (o) => { o.writebackCache = true; },
  remount: (o) => { o.remount = true; },
};

/** Options that only mount(8), fstab or systemd read; they reach us through mount.fuse. */
const MOUNT_TOOL_ONLY = new Set(['defaults', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', 'nofail', '_netdev', 'loop']);

/**
 * What the kernel reports for every FUSE mount (mountinfo): mount(8) hands
 * them back to us on `mount -o remount`. They describe the session, not a wish.
 */
const FUSE_SESSION_REPORTED = new Set(['user_id', 'group_id', 'rootmode', 'max_read', 'blksize', 'fd']);

const VALUED: Record<string, (o: MountOptions, value: string) => void> = {
  cache_size: (o, v) => {
    try {
      o.cacheSizeBytes = parseSizeBytes(v, 'cache_size');
    } catch (err) {
      throw new OptionError((err as SizeError).message);
    }
    if (o.cacheSizeBytes < 1 << 20) throw new OptionError(`cache_size=${v} is below the minimum of 1M`);
  },
  commit: (o, v) => {
    // As the kernel: seconds, 0 means the default.
    if (!/^\d+$/.test(v) || Number(v) > 86400) throw new OptionError(`commit=${v}: expected whole seconds (0 = default 5, at most 86400)`);
    o.commitIntervalMs = Number(v) === 0 ? undefined : Number(v) * 1000;
  },
  unaligned_dio: (o, v) => {
    if (v !== 'range' && v !== 'inode' && v !== 'unsafe') {
      throw new OptionError(`unaligned_dio=${v}: expected range, inode or unsafe`);
    }
    o.unalignedDio = v;
  },
  dx_hash: (o, v) => {
    if (v !== 'signed' && v !== 'unsigned') throw new OptionError(`dx_hash=${v}: expected signed or unsigned`);
    o.dxHashChars = v;
  },
  inject: (o, v) => {
    try {
      parseInjectSpec(v);
    } catch (err) {
      throw new OptionError(`inject=${v}: ${(err as Error).message}`);
    }
    o.inject = v;
  },
  reader: (o, v) => {
    if (v !== 'poll' && v !== 'threads') throw new OptionError(`reader=${v}: expected poll or threads`);
    o.reader = v;
  },
  spin_us: (o, v) => {
    if (!/^\d+$/.test(v) || Number(v) > SPIN_BUDGET_US_MAX) {
      throw new OptionError(`spin_us=${v}: expected whole microseconds from 0 (never spin) to ${SPIN_BUDGET_US_MAX}`);
    }
    o.spinUs = Number(v);
  },
  transport: (o, v) => {
    if (v !== 'libfuse' && v !== 'kernel') throw new OptionError(`transport=${v}: expected kernel or libfuse`);
    if (v === 'kernel' && process.getuid?.() !== 0) throw new OptionError('transport=kernel needs root (it opens /dev/fuse and calls mount)');
    o.transport = v;
  },
};

/** Why a known mount option is refused (so the message says more than "unknown"). */
const REFUSED: Record<string, string> = {
  sync: 'synchronous mounts are not supported (open files with O_SYNC or call fsync)',
  dirsync: 'synchronous directory updates are not supported',
  lazytime: 'lazytime is not supported',
  mand: 'mandatory locks are not supported',
  fsname: 'o2fuse sets fsname to the device itself',
  subtype: 'o2fuse sets the subtype itself',
  blkdev: 'o2fuse mounts as fuse.o2fuse, not fuseblk',
};

export function defaultMountOptions(): MountOptions {
  return {
    readOnly: false,
    atime: 'relatime',
    nodiratime: false,
    allowOther: false,
    defaultPermissions: false,
    // The protocol transport is the default where it can run: as root.
    transport: process.getuid?.() === 0 ? 'kernel' : 'libfuse',
    writebackCache: false,
    debug: false,
    remount: false,
    ignored: [],
    explicit: new Set(),
  };
}

/** Splits "a,b=c" into items; a backslash escapes a comma inside a value. */
export function splitOptionList(text: string): string[] {
  const items: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) {
      current += text[++i];
    } else if (ch === ',') {
      items.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  items.push(current);
  return items.map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Parses one or more `-o` strings (later options override earlier ones, as mount(8) does). */
export function parseMountOptions(lists: string[]): MountOptions {
  const o = defaultMountOptions();
  for (const list of lists) {
    for (const item of splitOptionList(list)) {
      const eq = item.indexOf('=');
      const key = eq < 0 ? item : item.slice(0, eq);
      const value = eq < 0 ? undefined : item.slice(eq + 1);
      if (key in REFUSED) throw new OptionError(`mount option "${key}" refused: ${REFUSED[key]}`);
      if (MOUNT_TOOL_ONLY.has(key) || FUSE_SESSION_REPORTED.has(key) || key.startsWith('x-') || key === 'comment') {
        o.ignored.push(item);
        continue;
      }
      if (key in FLAGS) {
        if (value !== undefined) throw new OptionError(`mount option "${key}" takes no value (got "${item}")`);
        FLAGS[key](o);
        continue;
      }
      if (key in VALUED) {
        if (value === undefined) throw new OptionError(`mount option "${key}" needs a value (${key}=...)`);
        VALUED[key](o, value);
        continue;
      }
      throw new OptionError(`unknown mount option "${item}" (known: ${knownOptionNames().join(', ')})`);
    }
  }
  if (o.writebackCache && o.transport !== 'kernel') {
    throw new OptionError('writeback_cache needs transport=kernel (libfuse 2 cannot negotiate the FUSE writeback cache)');
  }
  if (o.reader && o.transport !== 'kernel') {
    throw new OptionError(`reader=${o.reader} needs transport=kernel (libfuse reads /dev/fuse itself)`);
  }
  if (o.spinUs !== undefined && (o.transport !== 'kernel' || o.reader === 'threads')) {
    throw new OptionError(`spin_us=${o.spinUs} needs transport=kernel with reader=poll (only the poll reader can spin)`);
  }
  return o;
}

export function knownOptionNames(): string[] {
  return [...Object.keys(FLAGS), ...Object.keys(VALUED).map((k) => `${k}=`)];
}
