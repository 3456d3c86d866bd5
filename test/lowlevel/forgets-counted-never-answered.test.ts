/**
 * FORGET and BATCH_FORGET are handled at once (ops.ts immediateHandler, no
 * promise round): when the kernel drops its inodes it sends one forget per
 * node, in batches, ahead of other requests. Each is counted, none is
 * answered (an answer would come back as a stale reply), nothing stays in
 * flight, and the names are looked up again afterwards as usual.
 */
import t from 'tap';
import { assertFsckClean } from '../lib/fsck';
import { lowLevelUnavailable, mountLowLevel } from './helpers';

const skip = lowLevelUnavailable();
const FILES = 400;

t.test('dropping the kernel\'s inodes: every forget counted, none answered, lookups go on', { skip }, async (t) => {
  const m = await mountLowLevel(t);
  await m.shOk(`mkdir ${m.mnt}/d && cd ${m.mnt}/d && for i in $(seq 1 ${FILES}); do : > f$i; done && stat -c %i f* > /dev/null`);
  const before = m.session.stats();
  await m.shOk('sync && echo 2 > /proc/sys/vm/drop_caches');
  // Forgets are queued by the eviction and read by this process's event loop, maybe after the shell returned.
  for (let i = 0; i < 50 && m.session.stats().forgets - before.forgets < FILES; i++) await new Promise((r) => setTimeout(r, 20));
  const after = m.session.stats();
  const forgot = after.forgets - before.forgets;
  const forgetRequests = (after.byOpcode.FORGET ?? 0) + (after.byOpcode.BATCH_FORGET ?? 0) -
    (before.byOpcode.FORGET ?? 0) - (before.byOpcode.BATCH_FORGET ?? 0);
  t.ok(forgot >= FILES, `${forgot} nodes forgotten in ${forgetRequests} requests (at least the ${FILES} files)`);
  t.equal(after.staleReplies, 0, 'no forget was answered');
  t.same(after.errors, before.errors, 'no errors');
  t.equal(after.inFlight, 0, 'nothing left in flight');
  t.equal((await m.shOk(`ls ${m.mnt}/d | wc -l`)).trim(), String(FILES), 'the directory lists as before');
  t.equal((await m.shOk(`stat -c %s ${m.mnt}/d/f${FILES}`)).trim(), '0', 'and its names are looked up again');
  await m.close();
  await assertFsckClean(t, m.image);
});
