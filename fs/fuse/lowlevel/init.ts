/**
 * FUSE_INIT: what o2fuse asks of the kernel, and the reply.
 *
 * Asked for when offered:
 * - ASYNC_READ: several reads of one file in flight (read-ahead among them);
 * - ASYNC_DIO: aio direct I/O stays asynchronous, so one inode can have many
 *   writes in flight (libfuse 2 never asks, and turns fio's iodepth into 1);
 * - PARALLEL_DIROPS: lookups and readdirs of one directory in parallel;
 * - BIG_WRITES + MAX_PAGES with max_write = 1 MiB: 1 MiB requests, not 128 KiB;
 * - ATOMIC_O_TRUNC: open(O_TRUNC) arrives as one OPEN (the handler truncates);
 * - DO_READDIRPLUS + READDIRPLUS_AUTO: attributes come with directory listings;
 * - AUTO_INVAL_DATA: cached pages are dropped when a getattr shows another
 *   size or mtime (libfuse's default; it matters once other nodes write);
 * - DIRECT_IO_ALLOW_MMAP (7.39): FOPEN_DIRECT_IO files may still be mmapped shared;
 * - INIT_EXT: needed to answer flags 32..63 at all.
 * - WRITEBACK_CACHE only when the mount asks (`-o writeback_cache`): buffered
 *   writes then complete in the kernel's page cache and reach the engine
 *   later, as runs of pages (WRITE with FUSE_WRITE_CACHE, always buffered in
 *   the engine, whatever handle carries them); the kernel keeps i_size and
 *   mtime/ctime itself and sends them by SETATTR; O_APPEND is the kernel's;
 *   it may READ pages of files opened write-only (the engine allows that).
 *   What that costs: ENOSPC and write errors show at fsync or close, not at
 *   write(2), and the engine's trace no longer sees each write. Off by
 *   default, because the engine wants every write as it happens. O_DIRECT
 *   opens then get no FOPEN_DIRECT_IO (ops.ts, openFlagsFor): the kernel's
 *   own direct I/O path writes its dirty pages back before a direct request.
 * Never asked: POSIX_LOCKS/FLOCK_LOCKS (the kernel keeps locks local),
 * EXPORT_SUPPORT (no lookups of "." and ".."), DONT_MASK (the kernel applies the umask),
 * HANDLE_KILLPRIV (the kernel sends the setattr that clears suid), SPLICE_*,
 * ABORT_ERROR (an ended session reads as ENODEV), anything newer.
 */
import { decodeFields, encodeFields, zeroFields, type Decoded } from '../../format/layout';
import {
  FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_MIN_MINOR_VERSION, InitFlag, hasFlag, initFlagNames,
  joinFlags, splitFlags,
} from './protocol';
import {
  FUSE_COMPAT_22_INIT_OUT_SIZE, FUSE_COMPAT_INIT_OUT_SIZE, FUSE_INIT_IN_SIZE, FUSE_INIT_OUT_SIZE, fuse_init_in,
  fuse_init_out,
} from './structs';

/** The page size the kernel's max_pages counts in (x86-64 and most arm64 kernels). */
export const KERNEL_PAGE_BYTES = 4096;
export const MAX_WRITE_BYTES_DEFAULT = 1 << 20;
/** The kernel caps max_pages at fuse_max_pages_limit (256 by default): more than 1 MiB is never used. */
export const MAX_WRITE_BYTES_MAX = 1 << 20;
export const MAX_WRITE_BYTES_MIN = 4096;
/**
 * Async direct writes are background requests: the kernel dispatches at most
 * max_background of them at once (its default is 12). 64 lets an iodepth-32
 * job keep every write in flight.
 */
export const MAX_BACKGROUND_DEFAULT = 64;

export const WANTED_INIT_FLAGS: readonly number[] = [
  InitFlag.FUSE_ASYNC_READ,
  InitFlag.FUSE_ATOMIC_O_TRUNC,
  InitFlag.FUSE_BIG_WRITES,
  InitFlag.FUSE_AUTO_INVAL_DATA,
  InitFlag.FUSE_DO_READDIRPLUS,
  InitFlag.FUSE_READDIRPLUS_AUTO,
  InitFlag.FUSE_ASYNC_DIO,
  InitFlag.FUSE_PARALLEL_DIROPS,
  InitFlag.FUSE_MAX_PAGES,
  InitFlag.FUSE_DIRECT_IO_ALLOW_MMAP,
];

export interface InitPolicy {
  maxWriteBytes: number;
  maxBackground: number;
  /** Upper bound for read-ahead; the kernel's offer is never exceeded. */
  maxReadaheadBytes?: number;
  /** Ask for FUSE_WRITEBACK_CACHE too (when offered). */
  writebackCache?: boolean;
}

export type InitIn = Decoded<typeof fuse_init_in>;

/** What both sides agreed on, for the session and its debug log. */
export interface Negotiated {
  kernelMajor: number;
  kernelMinor: number;
  /** The minor both use: min(kernel, FUSE_KERNEL_MINOR_VERSION). */
  minor: number;
  /** Everything the kernel offered (64-bit word as a number). */
  offered: number;
  /** What we answered: WANTED_INIT_FLAGS the kernel offered, plus INIT_EXT when it sent flags2. */
  flags: number;
  maxWriteBytes: number;
  /** 0 when the kernel did not offer MAX_PAGES (it then caps requests at 32 pages). */
  maxPages: number;
  maxReadaheadBytes: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGranNs: number;
}

export type InitOutcome =
  | { kind: 'reply'; reply: Buffer; negotiated: Negotiated }
  /** The kernel speaks a newer major: answer our major and wait for another INIT. */
  | { kind: 'retry'; reply: Buffer }
  | { kind: 'refuse'; errno: 'EPROTO'; message: string };

/** Decodes an INIT body; kernels before 7.36 send 16 bytes, the rest reads as zero. */
export function decodeInitIn(body: Buffer): InitIn {
  const whole = Buffer.alloc(FUSE_INIT_IN_SIZE);
  body.copy(whole, 0, 0, Math.min(body.length, FUSE_INIT_IN_SIZE));
  return decodeFields(fuse_init_in, whole, 0, 'fuse_init_in');
}

export function clampMaxWrite(bytes: number | undefined): number {
  const wanted = bytes ?? MAX_WRITE_BYTES_DEFAULT;
  if (!Number.isSafeInteger(wanted) || wanted <= 0) throw new RangeError(`maxWrite must be a byte count: ${wanted}`);
  return Math.min(MAX_WRITE_BYTES_MAX, Math.max(MAX_WRITE_BYTES_MIN, wanted));
}

function replySizeFor(minor: number): number {
  if (minor < 5) return FUSE_COMPAT_INIT_OUT_SIZE;
  if (minor < 23) return FUSE_COMPAT_22_INIT_OUT_SIZE;
  return FUSE_INIT_OUT_SIZE;
}

export function negotiateInit(init: InitIn, policy: InitPolicy): InitOutcome {
  if (init.major < FUSE_KERNEL_VERSION) {
    return { kind: 'refuse', errno: 'EPROTO', message: `kernel FUSE protocol ${init.major}.${init.minor} is older than 7.x` };
  }
  const out = zeroFields(fuse_init_out);
  out.major = FUSE_KERNEL_VERSION;
  out.minor = FUSE_KERNEL_MINOR_VERSION;
  if (init.major > FUSE_KERNEL_VERSION) {
    const reply = Buffer.alloc(FUSE_INIT_OUT_SIZE);
    encodeFields(fuse_init_out, out, reply, 0, 'fuse_init_out');
    return { kind: 'retry', reply: reply.subarray(0, FUSE_COMPAT_INIT_OUT_SIZE) };
  }
  if (init.minor < FUSE_MIN_MINOR_VERSION) {
    return {
      kind: 'refuse', errno: 'EPROTO',
      message: `kernel FUSE protocol 7.${init.minor} is older than 7.${FUSE_MIN_MINOR_VERSION}, the oldest this transport speaks`,
    };
  }

  const extended = hasFlag(init.flags, InitFlag.FUSE_INIT_EXT);
  const offered = joinFlags(init.flags, extended ? init.flags2 : 0);
  let flags = 0;
  for (const f of WANTED_INIT_FLAGS) if (hasFlag(offered, f)) flags += f;
  if (policy.writebackCache && hasFlag(offered, InitFlag.FUSE_WRITEBACK_CACHE)) flags += InitFlag.FUSE_WRITEBACK_CACHE;
  if (extended) flags += InitFlag.FUSE_INIT_EXT;
  const { low, high } = splitFlags(flags);

  const maxWriteBytes = clampMaxWrite(policy.maxWriteBytes);
  const maxPages = hasFlag(flags, InitFlag.FUSE_MAX_PAGES) ? Math.ceil(maxWriteBytes / KERNEL_PAGE_BYTES) : 0;
  const maxReadaheadBytes = Math.min(init.max_readahead, policy.maxReadaheadBytes ?? init.max_readahead);
  const maxBackground = Math.min(0xffff, Math.max(1, policy.maxBackground));
  const congestionThreshold = Math.max(1, Math.floor((maxBackground * 3) / 4));
  const minor = Math.min(init.minor, FUSE_KERNEL_MINOR_VERSION);

  out.minor = minor;
  out.max_readahead = maxReadaheadBytes;
  out.flags = low;
  out.flags2 = extended ? high : 0;
  out.max_background = maxBackground;
  out.congestion_threshold = congestionThreshold;
  out.max_write = maxWriteBytes;
  out.time_gran = 1;
  out.max_pages = maxPages;

  const reply = Buffer.alloc(FUSE_INIT_OUT_SIZE);
  encodeFields(fuse_init_out, out, reply, 0, 'fuse_init_out');
  return {
    kind: 'reply',
    reply: reply.subarray(0, replySizeFor(init.minor)),
    negotiated: {
      kernelMajor: init.major,
      kernelMinor: init.minor,
      minor,
      offered,
      flags,
      maxWriteBytes,
      maxPages,
      maxReadaheadBytes,
      maxBackground,
      congestionThreshold,
      timeGranNs: 1,
    },
  };
}

/** One line for the debug log: "7.45 (we 7.42): ASYNC_READ|... max_write 1048576 ...". */
export function describeNegotiated(n: Negotiated): string {
  const notOffered = WANTED_INIT_FLAGS.filter((f) => !hasFlag(n.offered, f)).flatMap((f) => initFlagNames(f));
  return `kernel ${n.kernelMajor}.${n.kernelMinor}, agreed 7.${n.minor}: ${initFlagNames(n.flags).join('|')}` +
    `${notOffered.length ? ` (not offered: ${notOffered.join('|')})` : ''}; max_write ${n.maxWriteBytes}, max_pages ${n.maxPages}, ` +
    `max_readahead ${n.maxReadaheadBytes}, max_background ${n.maxBackground}, congestion_threshold ${n.congestionThreshold}, time_gran ${n.timeGranNs} ns`;
}
