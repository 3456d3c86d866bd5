/**
 * The background daemon's old-generation floor (bin/heapFlags.ts): a quarter
 * of cache_size, at most 64 MiB, none below 1 MiB, and a floor the launcher's
 * flags already set (O2FUSE_NODE_OPTIONS) left alone. Checked on the flag
 * list and on daemons the mount command really started, in the background
 * and (a child with the flag, Ctrl-C passed on) with -f.
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

t.test('a quarter of cache_size, at most 64 MiB', async (t) => {
  // As the mount command calls it: with the cache_size of the options it parsed.
  const flagsFor = (lists: string[]) => heapFlagsFor(parseMountOptions(lists).cacheSizeBytes, []);
  t.same(flagsFor([]), ['--initial-old-space-size=64'], 'the default cache (256M) gets the 64 MiB floor');
  t.same(flagsFor(['cache_size=64M']), ['--initial-old-space-size=16'], 'cache_size=64M: 16 MiB');
  t.same(flagsFor(['rw,cache_size=1G', 'noatime']), ['--initial-old-space-size=64'], 'a larger cache: still 64');
  t.same(flagsFor(['cache_size=1G', 'cache_size=8M']), ['--initial-old-space-size=2'], 'the last cache_size counts, as mount(8) reads -o lists');
  t.same(flagsFor(['cache_size=2M']), [], 'under 1 MiB: no floor');
  t.throws(() => flagsFor(['cache_size=banana']), OptionError, 'options the daemon would refuse: the mount command refuses them first, no flag');
});

t.test("the launcher's own floor wins", async (t) => {
  for (const argv of [['--initial-old-space-size=8'], ['--initial_old_space_size=8'], ['--max-semi-space-size=2', '--initial-old-space-size=0']]) {
    t.same(heapFlagsFor(undefined, argv), [], argv.join(' '));
  }
  t.same(heapFlagsFor(undefined, ['--max-old-space-size=192']), ['--initial-old-space-size=64'], 'other heap flags do not count');
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
    { command: [node, cli], want: ['--initial-old-space-size=64', ...POOL] },
    { command: [node, cli], options: 'cache_size=64M', want: ['--initial-old-space-size=16', ...POOL] },
    { command: [node, '--initial-old-space-size=8', cli], want: ['--initial-old-space-size=8', ...POOL] },
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
  t.same(await nodeFlags(m.dir), ['--initial-old-space-size=32', ...POOL], 'the serving daemon has the floor');
  t.not(liveRecord(m.dir)!.pid, m.child!.pid, 'and is a child of the command that was run');
  const exited = new Promise<number | null>((resolve) => m.child!.on('exit', (code) => resolve(code)));
  m.child!.kill('SIGINT');
  t.equal(await exited, 0, 'SIGINT to the command: exit status 0');
  t.notOk(liveRecord(m.dir), 'the daemon is gone');
});
