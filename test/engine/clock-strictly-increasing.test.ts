/**
 * The engine's timestamp clock: wall-clock time, strictly increasing. Two
 * changes in the same millisecond must still get ordered ctimes (a test of
 * utimens after unlink once failed in CI because Date.now()-based times
 * could repeat or step back within a millisecond).
 */
import t from 'tap';
import { nowTimespec } from '../../fs/times';

t.test('100,000 timestamps in a tight loop are strictly increasing and near the wall clock', async (t) => {
  let prev = -1n;
  let repeats = 0;
  const start = BigInt(Date.now()) * 1_000_000n;
  for (let i = 0; i < 100_000; i++) {
    const ts = nowTimespec();
    const ns = BigInt(ts.sec) * 1_000_000_000n + BigInt(ts.nsec);
    if (ns <= prev) repeats++;
    if (ts.nsec < 0 || ts.nsec >= 1e9) repeats++;
    prev = ns;
  }
  const end = BigInt(Date.now()) * 1_000_000n;
  t.equal(repeats, 0, 'no timestamp repeats or goes back, nsec always in [0, 1e9)');
  const first = nowTimespec();
  const firstNs = BigInt(first.sec) * 1_000_000_000n + BigInt(first.nsec);
  t.ok(firstNs >= start - 1_000_000_000n && firstNs <= end + 1_000_000_000n, 'within a second of Date.now()');
});
