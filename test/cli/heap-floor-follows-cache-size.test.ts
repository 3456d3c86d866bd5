/**
 * The daemon's heap flags (bin/heapFlags.ts): an old-generation floor of a
 * quarter of cache_size, at most 64 MiB, none below 1 MiB; a semi-space of
 * 1/32 of cache_size, from 2 to 16 MiB; and either left alone when the
 * launcher's flags already set it (O2FUSE_NODE_OPTIONS). Checked on the flag
 * list and on daemons the mount command really started, in the background
 * and (a child with the flags, Ctrl-C passed on) with -f.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { heapFlagsFor } from '../../bin/heapFlags';
import { threadFlagsFor } from '../../bin/threadFlags';
import { OptionError, parseMountOptions } from '../../bin/options';
import { sendControl } from '../../bin/control';
import { liveRecord } from '../../bin/registry';
import { mountO2fuse } from '../lib/mount';
import { tempDir } from '../lib/volume';
import { memoryCliCommand } from './helpers';

const SEMI_DEFAULT = '--max-semi-space-size=8';

t.test('a floor of a quarter of cache_size, at most 64 MiB; a semi-space of 1/32, 2 to 16 MiB', async (t) => {
  // As the mount command calls it: with the cache_size of the options it parsed.
  const flagsFor = (lists: string[]) => heapFlagsFor(parseMountOptions(lists).cacheSizeBytes, []);
  t.same(flagsFor([]), ['--initial-old-space-size=64', SEMI_DEFAULT], 'the default cache (256M) gets the 64 MiB floor and 8 MiB semi-spaces');
  t.same(flagsFor(['cache_size=64M']), ['--initial-old-space-size=16', '--max-semi-space-size=2'], 'cache_size=64M: 16 and 2 MiB');
  t.same(flagsFor(['rw,cache_size=1G', 'noatime']), ['--initial-old-space-size=64', '--max-semi-space-size=16'], 'a larger cache: 64 and V8\'s own 16');
  t.same(flagsFor(['cache_size=1G', 'cache_size=8M']), ['--initial-old-space-size=2', '--max-semi-space-size=2'],
    'the last cache_size counts, as mount(8) reads -o lists');
  t.same(flagsFor(['cache_size=2M']), ['--max-semi-space-size=2'], 'under 1 MiB: no floor, the smallest semi-space');
  t.throws(() => flagsFor(['cache_size=banana']), OptionError, 'options the daemon would refuse: the mount command refuses them first, no flag');
});

t.test("the launcher's own settings win", async (t) => {
  for (const argv of [['--initial-old-space-size=8'], ['--initial_old_space_size=8'], ['--initial-old-space-size=0']]) {
    t.same(heapFlagsFor(undefined, argv), [SEMI_DEFAULT], argv.join(' '));
  }
  for (const argv of [['--max-semi-space-size=2'], ['--max_semi_space_size=4']]) {
    t.same(heapFlagsFor(undefined, argv), ['--initial-old-space-size=64'], argv.join(' '));
  }
  t.same(heapFlagsFor(undefined, ['--max-semi-space-size=2', '--initial-old-space-size=0']), [], 'both given: nothing added');
  t.same(heapFlagsFor(undefined, ['--max-old-space-size=192']), ['--initial-old-space-size=64', SEMI_DEFAULT], 'other heap flags do not count');
});

/** The node flags the daemon serving `dir` runs with, as it reports them (its title hides its command line). */
async function nodeFlags(dir: string): Promise<unknown> {
  const reply = await sendControl(liveRecord(dir)!.socket, { op: 'status' });
  return reply.ok ? reply.status?.nodeFlags : reply.error;
}

/** The worker-pool flag every daemon started here also gets (v8-pool-follows-cpus.test.ts). */
const POOL = threadFlagsFor(os.availableParallelism(), []);

t.test('the spawned daemon runs with it', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'mem.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  const [node, cli] = memoryCliCommand();
  const cases: { command: string[]; options?: string; want: string[] }[] = [
    { command: [node, cli], want: ['--initial-old-space-size=64', SEMI_DEFAULT, ...POOL] },
    { command: [node, cli], options: 'cache_size=64M', want: ['--initial-old-space-size=16', '--max-semi-space-size=2', ...POOL] },
    { command: [node, '--initial-old-space-size=8', cli], want: ['--initial-old-space-size=8', SEMI_DEFAULT, ...POOL] },
  ];
  for (const c of cases) {
    const m = await mountO2fuse(t, image, { command: c.command, options: c.options });
    t.same(await nodeFlags(m.dir), c.want, `${c.command.length > 2 ? c.command[1] : 'no flags'}${c.options ? ` -o ${c.options}` : ''}: ${c.want}`);
    await m.unmount();
  }
});

t.test('mount -f runs its daemon in a child that has it, and Ctrl-C still unmounts', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'mem.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  const m = await mountO2fuse(t, image, { command: memoryCliCommand(), foreground: true, options: 'cache_size=128M' });
  t.same(await nodeFlags(m.dir), ['--initial-old-space-size=32', '--max-semi-space-size=4', ...POOL], 'the serving daemon has the floor and the semi-space');
  t.not(liveRecord(m.dir)!.pid, m.child!.pid, 'and is a child of the command that was run');
  const exited = new Promise<number | null>((resolve) => m.child!.on('exit', (code) => resolve(code)));
  m.child!.kill('SIGINT');
  t.equal(await exited, 0, 'SIGINT to the command: exit status 0');
  t.notOk(liveRecord(m.dir), 'the daemon is gone');
});
