/**
 * Background write-back that a buffered write kicks (dirty bytes past a
 * quarter of the cache) starts on a later turn of the event loop, never inside
 * the write's own promise chain: its first window is a burst of work on the
 * one thread (listing, sorting and copying the dirty pages, writing them), and
 * the request whose write kicked it must be answered first. Fails when kick()
 * starts the run at once.
 */
import t from 'tap';
import { countSubmits, engineOnFaultyDevice, makeFile, O_RDWR, until } from './harness';

const PAGE = 4096;

t.test('the write that passes the background threshold is answered before its write-back starts', async (t) => {
  const cache = 4 * 1024 * 1024;
  const h = await engineOnFaultyDevice(t, { volume: { cacheSizeBytes: cache } });
  const { vol, dev } = h;
  const size = 2 * cache;
  const ino = await makeFile(vol, 'f', size, 0x41);
  const fh = await vol.open(ino, O_RDWR);
  const writes = countSubmits(dev, 'write');
  // A stream of whole pages (each write continues the last, so it enters the cache; scattered whole pages would
  // go straight to the device), up to just under a quarter of the cache dirty: no write-back yet.
  const page = Buffer.alloc(PAGE, 0x42);
  const threshold = cache / 4 / PAGE;
  let p = 0;
  for (; p < threshold; p++) await vol.write(ino, fh, p * PAGE, page);
  await new Promise((r) => setImmediate(r));
  const before = writes.n;
  // One more page passes the threshold: this write kicks background write-back.
  await vol.write(ino, fh, p * PAGE, page);
  // A transport answers the write a few promise hops later; none of those hops may let write-back run first.
  for (let hop = 0; hop < 200; hop++) await null;
  t.equal(writes.n, before, 'no write-back write was submitted in the promise hops after the kicking write');
  await until(() => writes.n > before, 5000);
  t.pass('write-back started on a later turn');
  writes.off();
  await vol.fsync(ino, fh, false);
  await vol.release(ino, fh);
  await h.finish();
});
