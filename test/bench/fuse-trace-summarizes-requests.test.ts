/**
 * The FUSE request tracer (bench/fuseTrace.ts): the kernel's trace lines are
 * read into per-opcode latencies, client gaps and concurrency exactly, other
 * connections are left out, and it runs for real against a mount where the
 * kernel has the tracepoints.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseFuseTrace, summarize, formatSummary, tracingUnavailable, traceWhile, connectionOf } from '../../bench/fuseTrace';
import { makeImage } from '../lib/volume';
import { mountO2fuse } from '../lib/mount';
import { assertFsckClean } from '../lib/fsck';

// As /sys/kernel/tracing/trace prints them (times in seconds), with a header, another connection and noise.
const TRACE = `# tracer: nop
#
            node-100   [000] ...1.   10.000000: fuse_request_send: connection 39 req 2 opcode 1 (FUSE_LOOKUP) len 48
          o2fuse-200   [001] ...1.   10.000020: fuse_request_end: connection 39 req 2 len 144 error -2
            node-100   [000] ...1.   10.000050: fuse_request_send: connection 39 req 4 opcode 35 (FUSE_CREATE) len 70
            cat-300    [001] ...1.   10.000060: fuse_request_send: connection 40 req 2 opcode 15 (FUSE_READ) len 80
          o2fuse-200   [001] ...1.   10.000150: fuse_request_end: connection 39 req 4 len 160 error 0
            node-100   [000] ...1.   10.000160: fuse_request_send: connection 39 req 6 opcode 42 (FUSE_BATCH_FORGET) len 56
            node-100   [000] ...1.   10.000200: fuse_request_send: connection 39 req 8 opcode 1 (FUSE_LOOKUP) len 48
            node-100   [000] ...1.   10.000210: fuse_request_send: connection 39 req 10 opcode 1 (FUSE_LOOKUP) len 48
          o2fuse-200   [001] ...1.   10.000260: fuse_request_end: connection 39 req 8 len 144 error 0
          o2fuse-200   [001] ...1.   10.000300: fuse_request_end: connection 39 req 10 len 144 error 0
            cat-300    [001] ...1.   10.001060: fuse_request_end: connection 40 req 2 len 4096 error 0
          o2fuse-200   [001] ...1.   10.000400: fuse_request_end: connection 39 req 99 len 16 error 0
            node-100   [000] ...1.   10.000500: fuse_request_send: connection 39 req 12 opcode 18 (FUSE_RELEASE) len 64
some unrelated line: fuse_request_send: connection x
`;

t.test('trace lines become per-opcode latencies, gaps and concurrency', async (t) => {
  const events = parseFuseTrace(TRACE);
  t.equal(events.length, 13, 'every fuse line read, the rest skipped');
  t.same(events[0], { t: 10, kind: 'send', connection: 39, unique: 2, opcode: 'FUSE_LOOKUP' });
  t.same(events[1], { t: 10.00002, kind: 'end', connection: 39, unique: 2, error: -2 });

  const s = summarize(events, 39);
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-6;
  const lookup = s.latency.get('FUSE_LOOKUP')!;
  t.equal(lookup.n, 3, 'three lookups answered');
  t.equal(lookup.errors, 1, 'one of them an error (ENOENT)');
  // 20, 60 and 90 us.
  t.ok(near(lookup.p50Us, 60) && near(lookup.maxUs, 90) && near(lookup.meanUs, 170 / 3), 'lookup percentiles and mean');
  t.ok(near(s.latency.get('FUSE_CREATE')!.p50Us, 100), 'create took 100 us');
  t.notOk(s.latency.has('FUSE_BATCH_FORGET'), 'forgets are never answered and are not counted');
  t.notOk(s.latency.has('FUSE_RELEASE'), 'a request still in flight when the trace stopped is not counted');
  t.notOk(s.latency.has('FUSE_READ'), 'another connection is left out');
  // LOOKUP answered at .000020 -> CREATE sent at .000050; CREATE answered at .000150 -> (forget skipped) LOOKUP at .000200.
  t.ok(near(s.gaps.get('FUSE_LOOKUP->FUSE_CREATE')!.meanUs, 30), 'gap lookup -> create');
  t.ok(near(s.gaps.get('FUSE_CREATE->FUSE_LOOKUP')!.meanUs, 50), 'gap create -> lookup, the forget between not counted');
  // The two lookups overlapped: no gap after the first; after the second (nothing in flight) -> RELEASE at .000500.
  t.notOk(s.gaps.has('FUSE_LOOKUP->FUSE_LOOKUP'), 'no gap is measured while another request is in flight');
  t.ok(near(s.gaps.get('FUSE_LOOKUP->FUSE_RELEASE')!.meanUs, 200), 'gap lookup -> release');
  t.equal(s.maxInFlight, 2, 'two requests were in flight at once');

  const all = summarize(events);
  t.ok(near(all.latency.get('FUSE_READ')!.p50Us, 1000), 'without a connection, every connection counts');
  const text = formatSummary(s);
  t.match(text, /\| FUSE_LOOKUP \| 3 \| 1 \| 60 \| 90 \| 90 \| 57 \| 90 \|/, 'the table row of the lookups');
  t.match(text, /most requests in flight at once: 2/);
});

t.test('a real mount, traced', { skip: tracingUnavailable() ?? false }, async (t) => {
  const image = await makeImage(t, { sizeBytes: 256 * 1024 * 1024, features: 'noindexed-dirs,norefcount' });
  const m = await mountO2fuse(t, image, { options: 'transport=kernel' });
  const file = path.join(m.dir, 'f');
  const sizeBefore = fs.readFileSync('/sys/kernel/tracing/buffer_size_kb', 'utf8');
  const r = await traceWhile('sh', ['-c', `for i in 1 2 3 4 5; do echo x > ${file}.$i; done; cat ${file}.1 ${file}.5`]);
  t.equal(r.code, 0, 'the traced command ran');
  const s = summarize(r.events, connectionOf(m.dir));
  t.ok((s.latency.get('FUSE_CREATE')?.n ?? 0) >= 5, 'the five creates are seen');
  t.ok((s.latency.get('FUSE_WRITE')?.n ?? 0) >= 5, 'and their writes');
  t.ok([...s.latency.values()].every((l) => l.p50Us > 0 && l.maxUs < 10_000_000), 'latencies are positive and sane');
  t.ok(fs.readFileSync('/sys/kernel/tracing/events/fuse/fuse_request_send/enable', 'utf8').trim() === '0', 'tracing is off again');
  const sizeAfter = fs.readFileSync('/sys/kernel/tracing/buffer_size_kb', 'utf8');
  const kb = (text: string) => Number((/expanded: (\d+)/.exec(text) ?? /^(\d+)/.exec(text))?.[1]);
  t.ok(Math.abs(kb(sizeAfter) - kb(sizeBefore)) <= 8, `the trace buffer is back to its size (${sizeBefore.trim()} -> ${sizeAfter.trim()} KiB)`);
  await m.unmount();
  await assertFsckClean(t, image);
});
