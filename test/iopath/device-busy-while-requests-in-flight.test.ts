/**
 * The engine says when it waits for the device (Volume.deviceBusy): the
 * kernel transport's poll reader does not spin on /dev/fuse then, since the
 * completion of that read-ahead or write-back needs the event loop (spin.ts).
 * Deterministic: a direct read held in flight by the fault device.
 */
import t from 'tap';
import { engineOnFaultyDevice, makeFile, deviceOffsetOf, ticks, O_RDWR, O_DIRECT } from './harness';

t.test('deviceBusy is true exactly while a device request is in flight', async (t) => {
  const h = await engineOnFaultyDevice(t);
  const ino = await makeFile(h.vol, 'f', 16384, 0x5a);
  const block0 = await deviceOffsetOf(h.vol, ino, 0);
  const fh = await h.vol.open(ino, O_RDWR | O_DIRECT);
  await ticks();
  t.notOk(h.vol.deviceBusy(), 'idle: nothing in flight');
  const hold = h.dev.hold({ op: 'read', startByte: block0, endByte: block0 + 4096 });
  const read = h.vol.read(ino, fh, 0, 4096);
  await hold.arrived(1);
  t.ok(h.vol.deviceBusy(), 'a direct read held at the device: busy');
  hold.release();
  const data = await read;
  t.ok(data.subarray(0, 4096).every((b) => b === 0x5a), 'the read completes with the file\'s bytes');
  t.notOk(h.vol.deviceBusy(), 'and the device is idle again');
  await h.vol.release(ino, fh);
  await h.finish();
});
