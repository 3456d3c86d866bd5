/**
 * The reason for this transport: with ASYNC_DIO negotiated and O_DIRECT
 * opens answered FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES, one fio job
 * at iodepth 32 has many writes to the same inode in flight in the daemon at
 * once (through fuse-native / libfuse 2 the same job shows at most 1).
 *
 * The file is written whole first (dd, 1 MiB requests) so fio's random
 * writes land inside i_size: the kernel serializes direct writes that
 * extend a file, and the engine's cost of allocating clusters one 4 KiB
 * write at a time is not what this test measures. The volume is checked by
 * fsck afterwards, and the file by content: the last fio pass writes a
 * verifiable pattern and reads it back.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { assertFsckClean } from '../lib/fsck';
import { lowLevelUnavailable, mountLowLevel } from './helpers';

const FIO_TIMEOUT_MS = 600_000;

/** Checked before anything is mounted: a synchronous child is harmless then. */
function fioUnavailable(): string | undefined {
  const why = lowLevelUnavailable();
  if (why) return why;
  return spawnSync('sh', ['-c', 'command -v fio']).status === 0 ? undefined : 'fio is not installed';
}

t.test('fio libaio iodepth 32 keeps many writes to one inode in flight', { skip: fioUnavailable() }, async (t) => {
  const m = await mountLowLevel(t);
  const f = `${m.mnt}/f`;
  await m.shOk(`dd if=/dev/zero of=${f} bs=1M count=64 conv=fsync status=none`);

  const cmd = `fio --name=t --filename=${f} --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 --size=64M --numjobs=1`;
  t.comment(cmd);
  const before = m.session.stats();
  const started = Date.now();
  const run = await m.sh(cmd, FIO_TIMEOUT_MS);
  t.equal(run.code, 0, 'fio ran', { output: run.text.slice(-3000) + run.stderr });
  const iops = /IOPS=([\d.k]+)/.exec(run.text)?.[1];
  const st = m.session.stats();
  t.comment(`fio: ${st.writes - before.writes} WRITEs in ${((Date.now() - started) / 1000).toFixed(1)} s (IOPS=${iops}); ` +
    `maxInFlightWritesPerInode=${st.maxInFlightWritesPerInode}, maxInFlight=${st.maxInFlight}`);
  t.ok(st.writes - before.writes >= 16384, 'fio wrote 64 MiB in 4 KiB requests');
  t.ok(st.maxInFlightWritesPerInode > 1, `more than one write to the inode was in flight at once (max ${st.maxInFlightWritesPerInode})`);
  t.equal(st.inFlight, 0, 'nothing left in flight');

  const verify = await m.sh(`fio --name=v --filename=${f} --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 ` +
    '--size=16M --numjobs=1 --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_state_save=0', FIO_TIMEOUT_MS);
  t.equal(verify.code, 0, 'a verifying pass at the same depth reads back every block it wrote', { output: verify.text.slice(-3000) + verify.stderr });
  t.comment(`after the verify pass: maxInFlightWritesPerInode=${m.session.stats().maxInFlightWritesPerInode}`);

  await m.close();
  await assertFsckClean(t, m.image);
});
