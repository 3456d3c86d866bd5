/**
 * `-o inject=SPEC` parsing: every documented form, canonical formatting that
 * parses back to the same options, and a clear message for each kind of
 * mistake. A wrapped device really behaves as the spec says.
 */
import t from 'tap';
import { formatInjectSpec, InjectSpecError, parseInjectSpec, wrapWithInjectSpec } from '../../io/injectSpec';
import { MemoryDevice } from '../../io/memoryDevice';
import { errnoOf } from './helpers';

t.test('documented forms parse to FaultyDevice options', async (t) => {
  const cases: Array<[string, object]> = [
    ['delay:5ms', { rules: [{ kind: 'delay', minMs: 5, maxMs: 5, label: 'delay' }], cache: 'writethrough' }],
    [
      'latency:1-20ms+seed=42',
      { seed: 42, rules: [{ kind: 'delay', minMs: 1, maxMs: 20, label: 'latency' }], cache: 'writethrough' },
    ],
    [
      'latency:1-20ms:seed=42',
      { seed: 42, rules: [{ kind: 'delay', minMs: 1, maxMs: 20, label: 'latency' }], cache: 'writethrough' },
    ],
    [
      'eio:write@1048576-1052672',
      { rules: [{ kind: 'fail', match: { op: 'write', startByte: 1048576, endByte: 1052672 } }], cache: 'writethrough' },
    ],
    [
      'eio:read@1M-1028K:once',
      { rules: [{ kind: 'fail', match: { op: 'read', startByte: 1048576, endByte: 1052672 }, times: 1 }], cache: 'writethrough' },
    ],
    [
      'eio:@0x1000-:3:errno=enospc',
      { rules: [{ kind: 'fail', match: { startByte: 4096 }, times: 3, errno: 'ENOSPC' }], cache: 'writethrough' },
    ],
    ['eio:flush:always', { rules: [{ kind: 'fail', match: { op: 'flush' }, times: Infinity }], cache: 'writethrough' }],
    [
      'hold:write@8192-12288:50ms',
      {
        rules: [{ kind: 'delay', minMs: 50, maxMs: 50, label: 'hold', match: { op: 'write', startByte: 8192, endByte: 12288 } }],
        cache: 'writethrough',
      },
    ],
    [
      'hold/write@0-512/2s/x2',
      { rules: [{ kind: 'delay', minMs: 2000, maxMs: 2000, label: 'hold', match: { op: 'write', startByte: 0, endByte: 512 }, times: 2 }], cache: 'writethrough' },
    ],
    ['powercut:after-writes=100', { powerCut: { afterWrites: 100 }, cache: 'volatile' }],
    ['powercut:after-writes=7:keep=0.25', { powerCut: { afterWrites: 7, keepFraction: 0.25 }, cache: 'volatile' }],
  ];
  for (const [spec, expected] of cases) {
    t.same(parseInjectSpec(spec), expected, spec);
  }
  t.same(
    parseInjectSpec('delay:2-4ms:read + eio:write@0-4096:once'),
    {
      rules: [
        { kind: 'delay', minMs: 2, maxMs: 4, label: 'delay', match: { op: 'read' } },
        { kind: 'fail', match: { op: 'write', startByte: 0, endByte: 4096 }, times: 1 },
      ],
      cache: 'writethrough',
    },
    'spaces around separators are fine',
  );
});

t.test('formatInjectSpec gives a canonical spec that parses back to the same options', async (t) => {
  const specs = [
    'delay:5ms',
    'latency:1-20ms+seed=42',
    'eio:write@1048576-1052672',
    'eio:read@1M-1028K:once',
    'eio:@4096-:3:errno=ENOSPC',
    'hold:write@8192-12288:50ms:2',
    'powercut:after-writes=7:keep=0.25+seed=9+latency:write:0-3ms',
    'delay:2-4ms:read ; eio:write@0-4096:once',
    'delay:1s:any@0-',
  ];
  for (const spec of specs) {
    const options = parseInjectSpec(spec);
    const canonical = formatInjectSpec(options);
    t.same(parseInjectSpec(canonical), options, `${spec} -> ${canonical}`);
  }
  t.equal(formatInjectSpec(parseInjectSpec('eio:read@1M-1028K:once')), 'eio:read@1048576-1052672:once');
});

t.test('mistakes get a message that names the rule and says what was expected', async (t) => {
  const errors: Array<[string, RegExp]> = [
    ['', /empty spec/],
    ['delay:5ms,seed=1', /',' ends a mount option; separate rules with '\+'/],
    ['delay:5ms++eio', /rule 2 is empty/],
    ['explode:5ms', /rule 1 'explode:5ms': unknown kind 'explode' \(expected delay, latency, eio, hold, powercut, seed=N\)/],
    ['delay', /delay needs one duration/],
    ['delay:5', /delay needs one duration/],
    ['delay:5ms:10ms', /more than one duration/],
    ['latency:20-1ms', /runs backwards/],
    ['delay:90s', /exceeds INJECTED_DELAY_MS_MAX/],
    ['eio:wirte@0-4096', /'wirte@0-4096' is neither a request type \(read, write, flush, any\)/],
    ['eio:write@4096-0', /byte range '4096-0' is empty/],
    ['eio:write@abc', /byte range 'abc' is not START-END/],
    ['eio:write@1q-2', /byte range '1q-2' is not START-END/],
    ['eio:write:5ms', /eio takes no duration/],
    ['eio:write:once:once', /count given twice/],
    ['eio:write:0', /count must be once, always or a number >= 1/],
    ['eio:write:errno=EWHAT', /unknown errno 'EWHAT'/],
    ['eio:flush@0-10', /a flush has no byte range/],
    ['eio:read:write', /more than one target/],
    ['hold:50ms', /hold needs a target/],
    ['hold:write@0-1:50ms:colour=red', /unknown option 'colour='/],
    ['powercut', /powercut needs after-writes=N/],
    ['powercut:after-writes=0', /powercut needs after-writes=N with N >= 1/],
    ['powercut:after-writes=3:keep=2', /keep must be a fraction in \[0, 1\]/],
    ['powercut:after-writes=3+powercut:after-writes=4', /only one powercut rule/],
    ['powercut:after-writes=3:write', /powercut takes only after-writes=N and keep=F/],
    ['seed=x', /seed must be an integer/],
    ['seed=1+seed=2', /seed given twice \(1 and 2\)/],
    ['seed=1:delay', /seed=N takes no fields/],
    ['delay:5ms:', /empty field/],
    ['delay:500us-2ms:read', /500us is not a whole number of milliseconds/],
  ];
  for (const [spec, message] of errors) {
    let caught: unknown = null;
    try {
      parseInjectSpec(spec);
    } catch (err) {
      caught = err;
    }
    t.type(caught, InjectSpecError, `'${spec}' is refused`);
    t.match(String((caught as Error)?.message), message, `'${spec}': ${(caught as Error)?.message}`);
    t.equal((caught as InjectSpecError)?.errno, 'EINVAL');
  }
  t.throws(() => parseInjectSpec(Array(65).fill('delay:1ms').join('+')), /INJECT_RULES_MAX/);
});

t.test('a device wrapped from a spec fails and holds the requests the spec names', async (t) => {
  const mem = new MemoryDevice(1 << 20);
  const dev = wrapWithInjectSpec(mem, 'eio:write@4096-8192:once+hold:read@0-512:40ms');
  t.match(dev.name, /inject=eio:write@4096-8192:once\+hold:read@0-512:40ms/);
  t.equal(await errnoOf(dev.write(Buffer.alloc(10), 8000)), 'EIO');
  t.equal(await errnoOf(dev.write(Buffer.alloc(10), 8000)), 'resolved', 'once');
  t.equal(await errnoOf(dev.write(Buffer.from('through'), 0)), 'resolved');
  t.equal(mem.peek(0, 7).toString(), 'through', 'writethrough without a powercut rule');
  const t0 = Date.now();
  await dev.read(100, 10);
  t.ok(Date.now() - t0 >= 39, 'the matching read was held 40 ms');
  t.equal(dev.faultStats().delayed, 1, 'one request held so far');
  // Counted, not timed: on a loaded machine an unheld read can take longer than a bound would allow.
  await dev.read(1000, 10);
  t.equal(dev.faultStats().delayed, 1, 'a read outside the range was not held');
  await dev.close();
});
