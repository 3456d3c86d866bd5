/**
 * The protocol tables match include/uapi/linux/fuse.h (sizes, and the
 * fields the kernel reads at fixed offsets), and INIT negotiation answers
 * what this transport wants from what a kernel offers: the 7.45 offer seen
 * on this machine, an older kernel without flags2, a newer major, a kernel
 * too old to serve. No mount needed.
 */
import t from 'tap';
import { decodeFields, layoutSize } from '../../fs/format/layout';
import { STRUCT_SIZES, fuse_init_out, FUSE_ENTRY_OUT_SIZE, FUSE_ATTR_OUT_SIZE } from '../../fs/fuse/lowlevel/structs';
import { decodeInitIn, negotiateInit, describeNegotiated } from '../../fs/fuse/lowlevel/init';
import { InitFlag, hasFlag, initFlagNames, joinFlags, FOPEN_DIRECT_IO, FOPEN_NOFLUSH, FOPEN_PARALLEL_DIRECT_WRITES } from '../../fs/fuse/lowlevel/protocol';
import { attrOut, entryOut, encodeDirent, direntSize, direntPlusSize, zeroed } from '../../fs/fuse/lowlevel/reply';
import { openFlagsFor } from '../../fs/fuse/lowlevel/ops';
import { parseRequest } from '../../fs/fuse/lowlevel/request';
import type { Attr } from '../../fs/api';

/** What the 6.18 kernel here sent in INIT (7.45). */
const KERNEL_7_45 = { major: 7, minor: 45, maxReadahead: 131072, flags: 0x73fffffb, flags2: 0x5fd };

function initBody(o: { major: number; minor: number; maxReadahead: number; flags: number; flags2?: number }, bytes = 64): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUInt32LE(o.major, 0);
  b.writeUInt32LE(o.minor, 4);
  b.writeUInt32LE(o.maxReadahead, 8);
  b.writeUInt32LE(o.flags >>> 0, 12);
  if (bytes >= 20) b.writeUInt32LE(o.flags2 ?? 0, 16);
  return b;
}

const policy = { maxWriteBytes: 1 << 20, maxBackground: 64 };

t.test('every table has the size of its C struct', async (t) => {
  for (const [name, layout, size] of STRUCT_SIZES) t.equal(layoutSize(layout), size, `sizeof(${name})`);
  t.equal(FUSE_ENTRY_OUT_SIZE, 128, 'sizeof(fuse_entry_out)');
  t.equal(FUSE_ATTR_OUT_SIZE, 104, 'sizeof(fuse_attr_out)');
});

t.test('INIT against the 7.45 kernel: everything wanted is offered and answered', async (t) => {
  const outcome = negotiateInit(decodeInitIn(initBody(KERNEL_7_45)), policy);
  if (outcome.kind !== 'reply') throw new Error(`expected a reply, got ${outcome.kind}`);
  const n = outcome.negotiated;
  t.comment(describeNegotiated(n));
  t.equal(outcome.reply.length, 64, 'a 7.23+ kernel gets the whole fuse_init_out');
  const out = decodeFields(fuse_init_out, outcome.reply, 0);
  t.same([out.major, out.minor], [7, 42], 'we answer 7.42, the layouts we know');
  const answered = joinFlags(out.flags, out.flags2);
  for (const f of ['FUSE_ASYNC_READ', 'FUSE_ASYNC_DIO', 'FUSE_PARALLEL_DIROPS', 'FUSE_BIG_WRITES', 'FUSE_MAX_PAGES',
    'FUSE_ATOMIC_O_TRUNC', 'FUSE_DO_READDIRPLUS', 'FUSE_READDIRPLUS_AUTO', 'FUSE_INIT_EXT', 'FUSE_DIRECT_IO_ALLOW_MMAP'] as const) {
    t.ok(hasFlag(answered, InitFlag[f]), `${f} answered`);
  }
  for (const f of ['FUSE_WRITEBACK_CACHE', 'FUSE_POSIX_LOCKS', 'FUSE_FLOCK_LOCKS', 'FUSE_EXPORT_SUPPORT', 'FUSE_DONT_MASK',
    'FUSE_SPLICE_READ', 'FUSE_HANDLE_KILLPRIV', 'FUSE_ABORT_ERROR', 'FUSE_PASSTHROUGH', 'FUSE_OVER_IO_URING'] as const) {
    t.notOk(hasFlag(answered, InitFlag[f]), `${f} not asked for`);
  }
  t.equal(out.max_write, 1 << 20, 'max_write 1 MiB');
  t.equal(out.max_pages, 256, 'max_pages 256 (1 MiB of 4 KiB pages)');
  t.equal(out.time_gran, 1, 'time_gran 1 ns');
  t.equal(out.max_readahead, 131072, 'read-ahead never above the kernel offer');
  t.equal(out.max_background, 64, 'max_background lets an iodepth-32 job keep its writes in flight');
  t.equal(out.congestion_threshold, 48);
  t.same(initFlagNames(n.flags), initFlagNames(answered), 'the session reports what was answered');
});

t.test('INIT against a 7.31 kernel: no flags2, nothing above bit 31', async (t) => {
  const flags = InitFlag.FUSE_ASYNC_READ + InitFlag.FUSE_ASYNC_DIO + InitFlag.FUSE_MAX_PAGES + InitFlag.FUSE_BIG_WRITES;
  const outcome = negotiateInit(decodeInitIn(initBody({ major: 7, minor: 31, maxReadahead: 65536, flags }, 16)), policy);
  if (outcome.kind !== 'reply') throw new Error(`expected a reply, got ${outcome.kind}`);
  const out = decodeFields(fuse_init_out, outcome.reply, 0);
  t.equal(out.minor, 31, 'the older minor is used');
  t.equal(out.flags2, 0, 'flags2 stays zero without INIT_EXT');
  t.equal(joinFlags(out.flags, 0), flags, 'only what was offered');
});

t.test('INIT refusals and retries', async (t) => {
  const newer = negotiateInit(decodeInitIn(initBody({ major: 8, minor: 0, maxReadahead: 0, flags: 0 })), policy);
  t.equal(newer.kind, 'retry', 'a newer major gets our major and another INIT');
  if (newer.kind === 'retry') t.same([newer.reply.readUInt32LE(0), newer.reply.length], [7, 8]);
  const old = negotiateInit(decodeInitIn(initBody({ major: 7, minor: 20, maxReadahead: 0, flags: 0 }, 16)), policy);
  t.equal(old.kind, 'refuse', 'a 7.20 kernel is refused');
});

const attr: Attr = {
  ino: 35349, mode: 0o100644, nlink: 1, uid: 12, gid: 34, rdev: 0, size: 6, blocks: 8, blksize: 4096,
  atime: { sec: 981173106, nsec: 123456789 }, mtime: { sec: 1, nsec: 999999999 }, ctime: { sec: 2, nsec: 0 }, generation: 77,
};

t.test('replies put attributes where the kernel reads them', async (t) => {
  const timeouts = { entry: { sec: 1, nsec: 0 }, attr: { sec: 2, nsec: 500 } };
  const e = entryOut(35349, attr, timeouts);
  t.same([e.readBigUInt64LE(0), e.readBigUInt64LE(8), e.readBigUInt64LE(16), e.readBigUInt64LE(24), e.readUInt32LE(36)], [35349n, 77n, 1n, 2n, 500]);
  t.equal(e.readBigUInt64LE(40 + 0), 35349n, 'attr.ino');
  t.equal(e.readBigInt64LE(40 + 24), 981173106n, 'attr.atime');
  t.equal(e.readUInt32LE(40 + 48), 123456789, 'attr.atimensec');
  t.equal(e.readUInt32LE(40 + 60), 0o100644, 'attr.mode');
  const a = attrOut(attr, timeouts);
  t.same([a.readBigUInt64LE(0), a.readUInt32LE(8), a.readUInt32LE(16 + 52)], [2n, 500, 999999999], 'attr_out valid and mtimensec');
  const d = Buffer.alloc(direntSize(5));
  encodeDirent({ name: Buffer.from('hello'), ino: 9, type: 0o040000 }, 3, d, 0);
  t.same([d.length, d.readBigUInt64LE(0), d.readBigUInt64LE(8), d.readUInt32LE(16), d.readUInt32LE(20), d.toString('latin1', 24, 29)],
    [32, 9n, 3n, 5, 4, 'hello'], 'fuse_dirent: ino, next offset, namelen, DT_DIR, name, padded to 8');
  t.equal(direntPlusSize(5), 128 + 32, 'direntplus = entry_out + dirent');
});

t.test('reply buffers are zeroed even when the allocation pool hands out stale bytes', async (t) => {
  // Node's pool gives back whatever its slab held; stand in for it with one that always holds 0xa5.
  const real = Buffer.allocUnsafe;
  Buffer.allocUnsafe = (size: number) => real(size).fill(0xa5);
  t.teardown(() => {
    Buffer.allocUnsafe = real;
  });
  t.ok(zeroed(136).every((b) => b === 0), 'zeroed() is all zero');
  const none = { entry: { sec: 0, nsec: 0 }, attr: { sec: 0, nsec: 0 } };
  const e = entryOut(7, attr, none);
  t.equal(e.readUInt32LE(32 + 4), 0, 'entry_out: attr_valid_nsec 0 after entry_valid_nsec');
  t.equal(attrOut(attr, none).readUInt32LE(12), 0, 'attr_out: dummy is 0');
  const eAgain = entryOut(7, attr, none);
  t.ok(eAgain.equals(e), 'two encodings of the same entry are byte for byte equal (no stale byte anywhere)');
});

t.test('O_DIRECT opens ask for direct I/O with parallel direct writes', async (t) => {
  t.equal(FOPEN_PARALLEL_DIRECT_WRITES, 1 << 6, 'FOPEN_PARALLEL_DIRECT_WRITES is bit 6 (7.38)');
  t.equal(FOPEN_NOFLUSH, 1 << 5, 'FOPEN_NOFLUSH is bit 5 (7.31)');
  t.equal(openFlagsFor(0o40000 | 2), FOPEN_NOFLUSH | FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES);
  t.equal(openFlagsFor(2), FOPEN_NOFLUSH, 'buffered opens use the page cache; no open asks for a FLUSH at close');
  t.equal(openFlagsFor(0o40000 | 2, true), FOPEN_NOFLUSH,
    'with the writeback cache, O_DIRECT takes the kernel\'s direct path, which writes dirty pages back first');
});

t.test('a request header is checked against the bytes read', async (t) => {
  const msg = Buffer.alloc(48);
  msg.writeUInt32LE(48, 0);
  msg.writeUInt32LE(1, 4);
  msg.writeUInt32LE(7, 8);
  msg.writeUInt32LE(1, 16);
  msg.write('a\0', 40);
  const r = parseRequest(msg);
  t.same([r.opcode, r.unique, r.nodeid, r.body.length], [1, 7, 1, 8]);
  t.throws(() => parseRequest(msg.subarray(0, 44)), /len 48 but 44/);
  msg.writeUInt16LE(1, 36);
  t.equal(parseRequest(msg).body.length, 0, 'request extensions are cut off the body');
});
