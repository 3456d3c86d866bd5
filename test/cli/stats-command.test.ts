/**
 * `o2fuse stats`: a running daemon's counters through the command line,
 * after real fio workloads through the mount (kernel transport, a device
 * with 0-2 ms of latency so that writes overlap):
 * - 4 KiB direct writes at iodepth 16 never reach the unaligned-write gate
 *   (the rule costs aligned I/O nothing), while several are in flight to the
 *   inode at once;
 * - 512-byte direct writes all count in, and under the kernels' rule
 *   (unaligned_dio=inode) some wait and never more than one is in flight;
 * - the human form names each layer; over libfuse the FUSE counters say they
 *   are not kept; a directory no daemon serves is an error that says so.
 * fsck.ocfs2 -fn clean after.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DaemonStats } from '../../bin/control';
import { run, runOk } from '../lib/exec';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse, o2fuseCommand } from '../lib/mount';
import { makeImage, tempDir } from '../lib/volume';

/** The launcher without tap's hooks (test/lib/mount.ts says why). */
const cli = (args: string[]) => run('env', ['-u', 'NODE_OPTIONS', ...o2fuseCommand(), ...args]);

async function statsOf(dir: string): Promise<DaemonStats> {
  const r = await cli(['stats', '--json', dir]);
  if (r.code !== 0) throw new Error(`o2fuse stats --json ${dir} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.text) as DaemonStats;
}

function fio(file: string, bs: string, ios: number): Promise<unknown> {
  return runOk('fio', ['--name=w', `--filename=${file}`, '--ioengine=libaio', '--direct=1', '--rw=randwrite', `--bs=${bs}`,
    '--iodepth=16', '--size=1M', `--number_ios=${ios}`, '--randseed=7', '--output-format=terse']);
}

t.test('the unaligned-write rule, the caches and the FUSE requests, as counted by the daemon', async (t) => {
  const image = await makeImage(t, { sizeBytes: 256 << 20, features: 'norefcount' });
  // Written first, so that the fio writes are overwrites that take the direct path.
  const prep = await mountO2fuse(t, image, { options: 'transport=kernel' });
  await runOk('dd', ['if=/dev/zero', `of=${path.join(prep.dir, 'f')}`, 'bs=1M', 'count=1', 'conv=fsync', 'status=none']);
  await prep.unmount();

  const m = await mountO2fuse(t, image, { options: 'transport=kernel,unaligned_dio=inode,inject=latency:0-2ms+seed=3' });
  const file = path.join(m.dir, 'f');
  const s0 = await statsOf(m.dir);
  t.equal(s0.transport, 'kernel', 'the transport');
  t.equal(s0.pid, m.pid, 'the serving daemon answers');
  t.ok(s0.engine && s0.fuse, 'engine and FUSE counters');

  await fio(file, '4k', 256);
  const s1 = await statsOf(m.dir);
  const g0 = s0.engine!.unalignedGate;
  const g1 = s1.engine!.unalignedGate;
  t.equal(g1.mode, 'inode', 'the rule in force');
  t.equal(g1.entered - g0.entered, 0, '4 KiB direct writes: none counted in at the gate');
  t.equal(g1.waits - g0.waits, 0, 'and none waited');
  t.ok(s1.fuse!.maxInFlightWritesPerInode >= 2, `several writes to the inode in flight at once (${s1.fuse!.maxInFlightWritesPerInode})`);
  t.ok((s1.fuse!.byOpcode.WRITE ?? 0) - (s0.fuse!.byOpcode.WRITE ?? 0) >= 256, 'every write reached the daemon');
  t.ok(s1.engine!.device!.writes - s0.engine!.device!.writes >= 256, 'and the device');

  await fio(file, '512', 1000);
  const s2 = await statsOf(m.dir);
  const g2 = s2.engine!.unalignedGate;
  t.equal(g2.entered - g1.entered, 1000, '512-byte direct writes: every one counted in');
  t.ok(g2.waits - g1.waits > 0, `some waited for the one in flight (${g2.waits - g1.waits})`);
  t.equal(g2.maxInFlight, 1, 'never more than one in flight on the inode (the kernels\' rule)');
  t.equal(g2.inFlight + g2.waiting, 0, 'none left in flight or waiting');

  const human = await cli(['stats', m.dir]);
  t.equal(human.code, 0, 'o2fuse stats exits 0');
  const lines = human.text.split('\n');
  t.match(lines[0], new RegExp(`on ${m.dir}: pid ${m.pid}, kernel transport`), 'the first line names the mount');
  t.ok(lines.some((l) => /^unaligned dio: +1,000 writes counted in \(rule: inode\), \d+ waited/.test(l)), 'the gate line');
  for (const layer of ['page cache:', 'block cache:', 'journal:', 'device:', 'fuse requests:', 'fuse writes:', 'fuse spin:']) {
    t.ok(lines.some((l) => l.startsWith(layer)), `a "${layer}" line`);
  }
  await m.unmount();

  const lib = await mountO2fuse(t, image, { options: 'transport=libfuse' });
  const s3 = await statsOf(lib.dir);
  t.equal(s3.transport, 'libfuse', 'over libfuse');
  t.equal(s3.fuse, null, 'no FUSE counters there');
  t.ok(s3.engine?.journal, 'the engine\'s are there (a read-write mount has its journal)');
  t.match((await cli(['stats', lib.dir])).text, /fuse requests: +not counted over the libfuse transport/, 'and the human form says so');
  await lib.unmount();

  const nobody = await tempDir(t);
  fs.mkdirSync(path.join(nobody, 'mnt'));
  const none = await cli(['stats', path.join(nobody, 'mnt')]);
  t.equal(none.code, 1, 'a directory no daemon serves: exit 1');
  t.match(none.stderr, /no o2fuse daemon serves it/, 'saying so');
  t.equal((await cli(['stats'])).code, 1, 'no mount point: exit 1 (usage)');

  await assertFsckClean(t, image);
});
