/**
 * The report's "where the client woke" section (bench/wakeups.ts): a traced
 * run's summary becomes a row (requests per second, the mean client gap over
 * every pair of opcodes, where the client woke and how long after), a failed
 * trace a row that says why, and no rows no section.
 */
import t from 'tap';
import type { TraceSummary } from '../../bench/fuseTrace';
import { formatWakeups, wakeupRow } from '../../bench/wakeups';

function summary(): TraceSummary {
  const lat = (n: number) => ({ n, errors: 0, p50Us: 10, p90Us: 20, p99Us: 30, meanUs: 12, maxUs: 40 });
  return {
    latency: new Map([['FUSE_WRITE', lat(3000)], ['FUSE_GETXATTR', lat(1000)]]),
    gaps: new Map([['FUSE_WRITE->FUSE_WRITE', { n: 300, meanUs: 30 }], ['FUSE_GETXATTR->FUSE_WRITE', { n: 100, meanUs: 10 }]]),
    maxInFlight: 1,
    wakeups: { sameCpu: { n: 30, p50Us: 1.2 }, otherCpu: { n: 370, p50Us: 21.6 } },
  };
}

t.test('a traced run: rate over every answered request, gap weighted by pairs, where the client woke', async (t) => {
  const row = wakeupRow('o2fuse-kernel', 'o2fuse (kernel)', summary(), 4);
  t.equal(row.requestsPerSec, 1000, '4,000 answers in 4 s');
  t.equal(row.gapUs, 25, '(300 x 30 + 100 x 10) / 400');
  const md = formatWakeups([row, { targetId: 'fuse2fs', label: 'fuse2fs (ext4)', error: 'fio exited 1: no | space' }], 'randwrite-buffered', 4);
  t.equal(md[0], '## Where the client woke (traced, not measured)');
  t.match(md.join('\n'), /One run of randwrite-buffered per FUSE target \(4 s\)/);
  t.ok(md.includes('| o2fuse (kernel) | 1,000 | 25 us | 8 % | 1 us | 93 % | 22 us |'), 'the row: shares of 400 wake-ups and their medians');
  t.ok(md.includes('| fuse2fs (ext4) | fio exited 1: no / space | | | | | |'), 'a failed trace says why (a pipe would split the cell)');
});

t.test('no wake-up events (a kernel without sched_wakeup), and nothing traced', async (t) => {
  const s = summary();
  s.wakeups = { sameCpu: { n: 0, p50Us: 0 }, otherCpu: { n: 0, p50Us: 0 } };
  s.gaps = new Map();
  const md = formatWakeups([wakeupRow('x', 'X', s, 2)], 'randwrite-buffered', 2);
  t.ok(md.includes('| X | 2,000 | – | – | – | – | – |'), 'dashes, not zeros or NaN');
  t.same(formatWakeups([], 'randwrite-buffered', 2), [], 'no rows: no section');
  const noted = formatWakeups([{ ...wakeupRow('y', 'Y', summary(), 2), note: 'bursts, not round trips' }], 'randwrite-buffered', 2);
  t.equal(noted[noted.length - 2], '- Y: bursts, not round trips', 'a row\'s note follows the table');
});
