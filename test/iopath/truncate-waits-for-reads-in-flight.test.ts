/**
 * A read holds the inode lock shared while its device reads are in flight, so
 * a truncate (or punch) waits for it. Otherwise the truncate frees the
 * clusters under the read, a commit makes them reusable, another file's
 * write lands there, and the read, completing last, returns that file's
 * bytes. Deterministic: the read is held at the device while the rest is
 * tried; the clusters are checked to be the ones the other file gets.
 */
import t from 'tap';
import type { Test } from 'tap';
import { engineOnFaultyDevice, openColdFile, deviceOffsetOf, O_RDWR, O_DIRECT, ROOT_CALLER } from './harness';
import { RwLock } from '../../fs/lock';

const KiB = 1024;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readAcrossTruncateAndReuse(t: Test, flags: number): Promise<void> {
  const h = await engineOnFaultyDevice(t);
  const { vol, dev } = h;
  const { ino, fh } = await openColdFile(vol, 'a', 64 * KiB, 0xaa);
  if (flags & O_DIRECT) await vol.release(ino, fh);
  const rfh = flags & O_DIRECT ? await vol.open(ino, flags) : fh;
  const block0 = await deviceOffsetOf(vol, ino, 0);
  const hold = dev.hold({ op: 'read', startByte: block0, endByte: block0 + 4096 });
  const reading = vol.read(ino, rfh, 0, 4 * KiB);
  await hold.arrived(1);
  let truncated = false;
  const truncate = vol.setattr(ino, { size: 0 }).then(() => void (truncated = true));
  // What another file does once the truncate is done: its clusters are free after a commit, and it takes them.
  let other = -1;
  const reuse = truncate.then(async () => {
    await vol.syncMetadata();
    const b = await vol.create(vol.rootIno, Buffer.from('b'), 0o644, O_RDWR, ROOT_CALLER);
    await vol.write(b.attr.ino, b.fh, 0, Buffer.alloc(64 * KiB, 0xbb));
    await vol.fsync(b.attr.ino, b.fh, false);
    other = await deviceOffsetOf(vol, b.attr.ino, 0);
    await vol.release(b.attr.ino, b.fh);
  });
  await Promise.race([reuse, sleep(500)]);
  t.notOk(truncated, 'the truncate waits while the read is at the device');
  hold.release();
  const data = await reading;
  await reuse;
  t.equal(other, block0, 'the other file got the truncated file\'s first block (the race was possible)');
  t.ok(data.equals(Buffer.alloc(4 * KiB, 0xaa)), 'the read returns the truncated file\'s bytes, not the other file\'s');
  t.equal((await vol.getattr(ino)).size, 0, 'and the truncate happened after it');
  await vol.release(ino, rfh);
  await h.finish();
}

t.test('a buffered read in flight holds off a truncate', (t) => readAcrossTruncateAndReuse(t, O_RDWR));
t.test('a direct read in flight holds off a truncate', (t) => readAcrossTruncateAndReuse(t, O_RDWR | O_DIRECT));

t.test('the read\'s lock without an await: at once when free or shared, never past a holder or a waiting writer', async (t) => {
  const lock = new RwLock('test');
  const r1 = lock.tryShared();
  const r2 = lock.tryShared();
  t.ok(r1 && r2, 'two readers at once');
  const writing = lock.exclusive();
  t.equal(lock.tryShared(), undefined, 'not past a writer waiting for the readers (FIFO)');
  r1!();
  r2!();
  const releaseWriter = await writing;
  t.equal(lock.tryShared(), undefined, 'not while the writer holds it');
  releaseWriter();
  const r3 = lock.tryShared();
  t.ok(r3, 'free again: at once');
  r3!();
  t.ok(lock.idle, 'and idle after');
});
