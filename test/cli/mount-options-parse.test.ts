/**
 * The one mount-option parser: every option has a meaning or a clear refusal,
 * sizes take K/M/G, what mount(8) adds on remount is accepted, and what
 * reaches libfuse never holds an option libfuse 2 refuses.
 */
import t from 'tap';
import { defaultMountOptions, knownOptionNames, OptionError, parseMountOptions, splitOptionList } from '../../bin/options';
import { formatSizeBytes, parseSizeBytes, SizeError } from '../../bin/size';
import { parseMountArgs, UsageError } from '../../bin/mountCommand';
import { libfuseOptions } from '../../fs/fuse/nativeSession';
import { volumeOptions } from '../../bin/daemon';

t.test('sizes: bytes, binary suffixes, refusals', async (t) => {
  t.equal(parseSizeBytes('4096'), 4096);
  t.equal(parseSizeBytes('64K'), 64 * 1024);
  t.equal(parseSizeBytes('64k'), 64 * 1024);
  t.equal(parseSizeBytes('256M'), 256 * 2 ** 20);
  t.equal(parseSizeBytes('1G'), 2 ** 30);
  t.equal(parseSizeBytes('1GiB'), 2 ** 30);
  t.equal(parseSizeBytes('2T'), 2 * 2 ** 40);
  for (const bad of ['', 'G', '1.5G', '-1', '1X', 'ten', '1iB']) {
    t.throws(() => parseSizeBytes(bad), SizeError, `"${bad}" is refused`);
  }
  t.throws(() => parseSizeBytes('99999999P'), /too large/);
  t.equal(formatSizeBytes(2 ** 20), '1M');
  t.equal(formatSizeBytes(1000), '1000');
});

t.test('defaults: rw, relatime, the kernel transport as root (libfuse otherwise), nothing else', async (t) => {
  const o = parseMountOptions([]);
  t.equal(o.readOnly, false);
  t.equal(o.atime, 'relatime');
  t.equal(o.nodiratime, false);
  t.equal(o.allowOther, false);
  t.equal(o.defaultPermissions, false);
  t.equal(o.dev, undefined);
  t.equal(o.transport, process.getuid?.() === 0 ? 'kernel' : 'libfuse');
  t.equal(o.remount, false);
  t.same(o, { ...defaultMountOptions() });
});

t.test('each flag option has its meaning', async (t) => {
  const cases: Array<[string, (o: ReturnType<typeof parseMountOptions>) => unknown, unknown]> = [
    ['ro', (o) => o.readOnly, true],
    ['rw', (o) => o.readOnly, false],
    ['ro,rw', (o) => o.readOnly, false],
    ['noatime', (o) => o.atime, 'noatime'],
    ['relatime', (o) => o.atime, 'relatime'],
    ['strictatime', (o) => o.atime, 'strictatime'],
    ['noatime,strictatime', (o) => o.atime, 'strictatime'],
    ['nodiratime', (o) => o.nodiratime, true],
    ['allow_other', (o) => o.allowOther, true],
    ['default_permissions', (o) => o.defaultPermissions, true],
    ['dev', (o) => o.dev, true],
    ['nodev', (o) => o.dev, false],
    ['suid', (o) => o.suid, true],
    ['nosuid', (o) => o.suid, false],
    ['exec', (o) => o.exec, true],
    ['noexec', (o) => o.exec, false],
    ['debug', (o) => o.debug, true],
    ['remount', (o) => o.remount, true],
    ['cache_size=64M', (o) => o.cacheSizeBytes, 64 * 2 ** 20],
    ['cache_size=1G', (o) => o.cacheSizeBytes, 2 ** 30],
    ['unaligned_dio=range', (o) => o.unalignedDio, 'range'],
    ['unaligned_dio=inode', (o) => o.unalignedDio, 'inode'],
    ['unaligned_dio=unsafe', (o) => o.unalignedDio, 'unsafe'],
    ['dx_hash=signed', (o) => o.dxHashChars, 'signed'],
    ['dx_hash=unsigned', (o) => o.dxHashChars, 'unsigned'],
    ['inject=latency:1-20ms+seed=42', (o) => o.inject, 'latency:1-20ms+seed=42'],
    ['transport=libfuse', (o) => o.transport, 'libfuse'],
  ];
  if (process.getuid?.() === 0) {
    cases.push(['transport=kernel', (o) => o.transport, 'kernel']);
    cases.push(['transport=kernel,reader=threads', (o) => o.reader, 'threads']);
    cases.push(['transport=kernel,reader=poll', (o) => o.reader, 'poll']);
    cases.push(['transport=kernel,spin_us=0', (o) => o.spinUs, 0]);
    cases.push(['transport=kernel,reader=poll,spin_us=200', (o) => o.spinUs, 200]);
    cases.push(['transport=kernel', (o) => o.spinUs, undefined]);
  }
  for (const [text, get, want] of cases) t.same(get(parseMountOptions([text])), want, text);
});

t.test('several -o lists: later ones win, as in mount(8)', async (t) => {
  const o = parseMountOptions(['ro,noatime', 'rw']);
  t.equal(o.readOnly, false);
  t.equal(o.atime, 'noatime');
  t.same([...o.explicit].sort(), ['atime', 'readOnly']);
});

t.test('unknown and malformed options are refused, naming the option', async (t) => {
  t.throws(() => parseMountOptions(['blah']), { name: 'OptionError', message: /unknown mount option "blah"/ });
  t.throws(() => parseMountOptions(['ro,frobnicate=3']), /unknown mount option "frobnicate=3"/);
  t.throws(() => parseMountOptions(['ro=1']), /takes no value/);
  t.throws(() => parseMountOptions(['cache_size']), /needs a value/);
  t.throws(() => parseMountOptions(['cache_size=lots']), /cache_size "lots" is not a size/);
  t.throws(() => parseMountOptions(['cache_size=4K']), /below the minimum/);
  t.throws(() => parseMountOptions(['unaligned_dio=maybe']), /range, inode or unsafe/);
  t.throws(() => parseMountOptions(['dx_hash=utf8']), /dx_hash=utf8: expected signed or unsigned/);
  t.throws(() => parseMountOptions(['reader=fast']), /reader=fast: expected poll or threads/);
  t.throws(() => parseMountOptions(['transport=libfuse,reader=poll']), /reader=poll needs transport=kernel/);
  t.throws(() => parseMountOptions(['transport=ioctl']), /expected kernel or libfuse/);
  t.throws(() => parseMountOptions(['spin_us=lots']), /spin_us=lots: expected whole microseconds from 0 \(never spin\) to 1000/);
  t.throws(() => parseMountOptions(['spin_us=1001']), /spin_us=1001: expected whole microseconds/);
  t.throws(() => parseMountOptions(['transport=libfuse,spin_us=50']), /spin_us=50 needs transport=kernel with reader=poll/);
  if (process.getuid?.() === 0) {
    t.throws(() => parseMountOptions(['transport=kernel,reader=threads,spin_us=50']), /spin_us=50 needs transport=kernel with reader=poll/);
  }
  t.throws(() => parseMountOptions(['inject=explode:now']), /inject=explode:now: inject:/);
  t.throws(() => parseMountOptions(['sync']), /refused: synchronous mounts/);
  t.throws(() => parseMountOptions(['fsname=x']), /sets fsname to the device/);
  t.throws(() => parseMountOptions(['subtype=x']), OptionError);
  const message = (() => {
    try {
      parseMountOptions(['nope']);
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  })();
  for (const name of ['ro', 'noatime', 'cache_size=', 'inject=']) t.match(message, name, `the error lists ${name}`);
  t.ok(knownOptionNames().includes('unaligned_dio='));
});

t.test('what mount(8) and fstab pass along is accepted', async (t) => {
  // mount -t fuse.o2fuse passes "rw,...,dev,suid"; remount hands back what mountinfo shows.
  const o = parseMountOptions(['ro,nosuid,nodev,relatime,remount,user_id=0,group_id=0']);
  t.equal(o.remount, true);
  t.equal(o.readOnly, true);
  t.same(o.ignored, ['user_id=0', 'group_id=0']);
  const f = parseMountOptions(['defaults,noauto,nofail,_netdev,x-systemd.automount,user,comment=hi']);
  t.equal(f.ignored.length, 7);
});

t.test('option lists split on commas; a backslash escapes one', async (t) => {
  t.same(splitOptionList('a,b=c,,d'), ['a', 'b=c', 'd']);
  t.same(splitOptionList('a\\,b,c'), ['a,b', 'c']);
});

t.test('libfuse gets fsname, subtype, big writes and no atime option it refuses', async (t) => {
  const base = { fsname: '/img/a,b.img', readOnly: false, noatime: false, allowOther: false, defaultPermissions: false, debug: false };
  const opts = libfuseOptions(base);
  t.equal(opts[0], 'fsname=/img/a\\,b.img', 'a comma in the device is escaped');
  t.ok(opts.includes('subtype=o2fuse'));
  t.ok(opts.includes('big_writes'));
  t.ok(opts.includes('max_write=1048576'));
  t.ok(opts.includes('use_ino'));
  t.ok(opts.includes('rw'));
  const all = libfuseOptions({ ...base, readOnly: true, noatime: true, allowOther: true, defaultPermissions: true, dev: true, suid: false, exec: false });
  for (const o of ['ro', 'noatime', 'allow_other', 'default_permissions', 'dev', 'nosuid', 'noexec']) t.ok(all.includes(o), o);
  for (const o of all) t.notOk(/^(relatime|strictatime|nodiratime)$/.test(o), `${o} is an option libfuse 2 takes`);
});

t.test('the engine gets the atime policy and the cache and dio options', async (t) => {
  const v = volumeOptions(parseMountOptions(['ro,strictatime,cache_size=32M,unaligned_dio=inode,nodiratime,dx_hash=unsigned']));
  t.same(v, { readOnly: true, atime: 'strictatime', cacheSizeBytes: 32 * 2 ** 20, unalignedDio: 'inode', nodiratime: true, dxHashChars: 'unsigned' });
});

t.test('mount arguments: both forms, -o joined or apart, flags mount(8) passes', async (t) => {
  t.same(parseMountArgs(['-f', '-o', 'ro', 'dev', 'dir']), { foreground: true, optionLists: ['ro'], positional: ['dev', 'dir'], help: false });
  t.same(parseMountArgs(['dev', 'dir', '-o', 'rw,dev,suid']).positional, ['dev', 'dir']);
  t.same(parseMountArgs(['-oro,noatime', 'dev', 'dir']).optionLists, ['ro,noatime']);
  t.same(parseMountArgs(['-n', '-v', 'dev', 'dir']).positional, ['dev', 'dir']);
  t.throws(() => parseMountArgs(['-x', 'dev', 'dir']), UsageError);
  t.throws(() => parseMountArgs(['dev', 'dir', '-o']), /needs a list/);
});
