/**
 * With BIG_WRITES + MAX_PAGES negotiated (max_write 1 MiB, max_pages 256),
 * large sequential writes reach the engine as 1 MiB WRITE requests, buffered
 * and O_DIRECT alike (libfuse 2 caps them at 128 KiB), and read back intact.
 */
import t from 'tap';
import { assertFsckClean } from '../lib/fsck';
import { lowLevelUnavailable, mountLowLevel } from './helpers';

const MIB = 1 << 20;
const MIB_BUCKET = 20;
const FILE_MIB = 32;

t.test('sequential 1 MiB writes are 1 MiB requests', { skip: lowLevelUnavailable() }, async (t) => {
  const m = await mountLowLevel(t);
  const M = m.mnt;
  const src = `${m.image}.src`;
  await m.shOk(`head -c ${FILE_MIB * MIB} /dev/urandom > ${src}`);
  const want = (await m.shOk(`sha256sum < ${src}`)).split(' ')[0];

  const before = m.session.stats();
  await m.shOk(`dd if=${src} of=${M}/buffered bs=1M conv=fsync status=none`);
  const buffered = m.session.stats();
  const bufferedMib = (buffered.writesBySizeLog2[MIB_BUCKET] ?? 0) - (before.writesBySizeLog2[MIB_BUCKET] ?? 0);
  t.comment(`buffered dd: ${buffered.writes - before.writes} WRITEs, ${bufferedMib} of 1 MiB, largest ${buffered.largestWriteBytes}`);
  t.equal(buffered.largestWriteBytes, MIB, 'the largest WRITE is 1 MiB');
  t.equal(bufferedMib, FILE_MIB, `every one of the ${FILE_MIB} MiB arrived as one 1 MiB request`);

  await m.shOk(`dd if=${src} of=${M}/direct bs=1M oflag=direct status=none`);
  const direct = m.session.stats();
  const directMib = (direct.writesBySizeLog2[MIB_BUCKET] ?? 0) - (buffered.writesBySizeLog2[MIB_BUCKET] ?? 0);
  t.comment(`O_DIRECT dd: ${direct.writes - buffered.writes} WRITEs, ${directMib} of 1 MiB`);
  t.equal(directMib, FILE_MIB, 'O_DIRECT writes are 1 MiB requests too');

  for (const name of ['buffered', 'direct']) {
    const got = (await m.shOk(`sha256sum < ${M}/${name}`)).split(' ')[0];
    t.equal(got, want, `${name}: reads back what was written`);
  }
  const readIn = m.session.stats();
  t.ok(readIn.reads > 0, `reads: ${readIn.reads} requests, ${readIn.readBytes} bytes`);

  await m.shOk(`rm ${src}`);
  await m.close();
  await assertFsckClean(t, m.image);
});
