/**
 * The daemon's V8 worker pool (bin/threadFlags.ts): the CPUs beyond the two
 * the request path uses, at least one, at most node's four; a pool size the
 * launcher's flags already set (O2FUSE_NODE_OPTIONS) left alone. Checked on
 * the flag list and on a daemon the mount command really started.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { threadFlagsFor } from '../../bin/threadFlags';
import { sendControl } from '../../bin/control';
import { liveRecord } from '../../bin/registry';
import { mountO2fuse } from '../lib/mount';
import { tempDir } from '../lib/volume';
import { memoryCliCommand } from './helpers';

t.test('CPUs minus two, at least one, at most four', async (t) => {
  const cases: [number, number][] = [[1, 1], [2, 1], [3, 1], [4, 2], [5, 3], [6, 4], [64, 4]];
  for (const [cpus, pool] of cases) t.same(threadFlagsFor(cpus, []), [`--v8-pool-size=${pool}`], `${cpus} CPUs: ${pool}`);
});

t.test("the launcher's own pool size wins", async (t) => {
  for (const argv of [['--v8-pool-size=3'], ['--v8_pool_size=3'], ['--max-semi-space-size=2', '--v8-pool-size=0']]) {
    t.same(threadFlagsFor(2, argv), [], argv.join(' '));
  }
  t.same(threadFlagsFor(2, ['--initial-old-space-size=8']), ['--v8-pool-size=1'], 'other flags do not count');
});

t.test('the spawned daemon runs with it', async (t) => {
  const dir = await tempDir(t);
  const image = path.join(dir, 'mem.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  const [node, cli] = memoryCliCommand();
  const want = `--v8-pool-size=${Math.max(1, Math.min(4, os.availableParallelism() - 2))}`;
  for (const c of [{ command: [node, cli], want }, { command: [node, '--v8-pool-size=3', cli], want: '--v8-pool-size=3' }]) {
    const m = await mountO2fuse(t, image, { command: c.command });
    const reply = await sendControl(liveRecord(m.dir)!.socket, { op: 'status' });
    const flags = (reply.ok ? reply.status?.nodeFlags : []) as string[];
    t.same(flags.filter((f) => f.startsWith('--v8-pool-size')), [c.want], `${c.command.length > 2 ? c.command[1] : 'no flags'}: ${c.want}`);
    await m.unmount();
  }
});
