/**
 * The FUSE request tracer (bench/fuseTrace.ts): the kernel's trace lines are
 * read into per-opcode latencies, client gaps, where the client woke after
 * each answer and concurrency exactly, other connections are left out, and it
 * runs for real against a mount where the kernel has the tracepoints.
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
  t.same(events[0], { t: 10, kind: 'send', pid: 100, cpu: 0, connection: 39, unique: 2, opcode: 'FUSE_LOOKUP' });
  t.same(events[1], { t: 10.00002, kind: 'end', pid: 200, cpu: 1, connection: 39, unique: 2, error: -2 });

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
  t.notMatch(text, /wake-ups/, 'no wake-up line without sched_wakeup events');
});

// A client (python3, pid 100) in a one-at-a-time loop, answered by a daemon whose comm holds spaces and a dash.
const WAKEUPS = `
         python3-100     [001] ...1.   20.000000: fuse_request_send: connection 39 req 2 opcode 1 (FUSE_LOOKUP) len 48
 o2fuse img /tmp-200     [000] .....   20.000010: fuse_request_end: connection 39 req 2 len 144 error 0
          <idle>-0       [001] dNh2.   20.000035: sched_wakeup: comm=python3 pid=100 prio=120 target_cpu=001
         python3-100     [001] ...1.   20.000045: fuse_request_send: connection 39 req 4 opcode 10 (FUSE_UNLINK) len 48
 o2fuse img /tmp-200     [000] .....   20.000100: fuse_request_end: connection 39 req 4 len 16 error 0
          <idle>-0       [001] dNh2.   20.000120: sched_wakeup: comm=python3 pid=100 prio=120 target_cpu=001
          <idle>-0       [001] dNh2.   20.000121: sched_wakeup: comm=kworker/1:1 pid=77 prio=120 target_cpu=001
         python3-100     [001] ...1.   20.000130: fuse_request_send: connection 39 req 6 opcode 1 (FUSE_LOOKUP) len 48
 o2fuse img /tmp-201     [001] .....   20.000140: fuse_request_end: connection 39 req 6 len 144 error 0
 o2fuse img /tmp-201     [001] d..4.   20.000142: sched_wakeup: comm=python3 pid=100 prio=120 target_cpu=001
         python3-100     [001] ...1.   20.000150: fuse_request_send: connection 39 req 8 opcode 10 (FUSE_UNLINK) len 48
         python3-100     [001] ...1.   20.000160: fuse_request_send: connection 39 req 10 opcode 1 (FUSE_LOOKUP) len 48
 o2fuse img /tmp-201     [001] .....   20.000170: fuse_request_end: connection 39 req 8 len 16 error 0
 o2fuse img /tmp-201     [001] d..4.   20.000171: sched_wakeup: comm=python3 pid=100 prio=120 target_cpu=001
`;

t.test('where the client wakes after each answer, and how long after', async (t) => {
  const events = parseFuseTrace(WAKEUPS);
  t.same(events[2], { t: 20.000035, kind: 'wakeup', pid: 100, targetCpu: 1 }, 'a wake-up: the task woken and its CPU');
  t.equal(events[1].kind === 'end' && events[1].pid, 200, "a daemon's comm with spaces and a dash still gives its pid");
  const s = summarize(events, 39);
  const near = (a: number, b: number) => Math.abs(a - b) < 1e-6;
  // Answered on CPU 0, woken on CPU 1 25 and 20 us later; answered on CPU 1, woken there 2 us later. The last
  // answer came with another request still in flight: no wake-up is counted for it, and other tasks never are.
  t.equal(s.wakeups.otherCpu.n, 2, 'two wake-ups on another CPU than the answer');
  t.ok(near(s.wakeups.otherCpu.p50Us, 25), 'their median latency');
  t.equal(s.wakeups.sameCpu.n, 1, 'one on the answering CPU');
  t.ok(near(s.wakeups.sameCpu.p50Us, 2), 'two microseconds after the answer');
  t.match(formatSummary(s), /1 on the answering CPU \(median 2 us after the answer\), 2 on another CPU \(median 25 us\)/);
});

t.test('a real mount, traced', { skip: tracingUnavailable() ?? false }, async (t) => {
  const image = await makeImage(t, { sizeBytes: 256 * 1024 * 1024, features: 'noindexed-dirs,norefcount' });
  const m = await mountO2fuse(t, image, { options: 'transport=kernel' });
  const file = path.join(m.dir, 'f');
  const sizeBefore = fs.readFileSync('/sys/kernel/tracing/buffer_size_kb', 'utf8');
  // Left off by whatever traced last: the tracer must switch it on for the run, and put it back.
  const switchBefore = fs.readFileSync('/sys/kernel/tracing/tracing_on', 'utf8');
  fs.writeFileSync('/sys/kernel/tracing/tracing_on', '0');
  t.teardown(() => fs.writeFileSync('/sys/kernel/tracing/tracing_on', switchBefore));
  const r = await traceWhile('sh', ['-c', `for i in 1 2 3 4 5; do echo x > ${file}.$i; done; cat ${file}.1 ${file}.5`]);
  t.equal(r.code, 0, 'the traced command ran');
  const s = summarize(r.events, connectionOf(m.dir));
  t.ok((s.latency.get('FUSE_CREATE')?.n ?? 0) >= 5, 'the five creates are seen');
  t.ok((s.latency.get('FUSE_WRITE')?.n ?? 0) >= 5, 'and their writes');
  t.ok([...s.latency.values()].every((l) => l.p50Us > 0 && l.maxUs < 10_000_000), 'latencies are positive and sane');
  if (fs.existsSync('/sys/kernel/tracing/events/sched/sched_wakeup/enable')) {
    const { sameCpu, otherCpu } = s.wakeups;
    t.ok(sameCpu.n + otherCpu.n > 0, `the client's wake-ups are seen (${sameCpu.n} on the answering CPU, ${otherCpu.n} elsewhere)`);
  }
  t.ok(fs.readFileSync('/sys/kernel/tracing/events/fuse/fuse_request_send/enable', 'utf8').trim() === '0', 'tracing is off again');
  t.equal(fs.readFileSync('/sys/kernel/tracing/tracing_on', 'utf8').trim(), '0', 'the tracing switch is back off');
  const sizeAfter = fs.readFileSync('/sys/kernel/tracing/buffer_size_kb', 'utf8');
  const kb = (text: string) => Number((/expanded: (\d+)/.exec(text) ?? /^(\d+)/.exec(text))?.[1]);
  t.ok(Math.abs(kb(sizeAfter) - kb(sizeBefore)) <= 8, `the trace buffer is back to its size (${sizeBefore.trim()} -> ${sizeAfter.trim()} KiB)`);
  await m.unmount();
  await assertFsckClean(t, image);
});
