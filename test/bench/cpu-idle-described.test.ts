/**
 * The report's line on how idle CPUs wait (bench/cpuIdle.ts), read from a
 * made-up /sys: guest halt polling off and on, another cpuidle driver, none.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeCpuIdle } from '../../bench/cpuIdle';
import { tempDir, type TestLike } from '../lib/volume';

async function fakeSys(t: TestLike, files: Record<string, string>): Promise<string> {
  const root = await tempDir(t);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), `${text}\n`);
  }
  return root;
}

const CPUIDLE = 'devices/system/cpu/cpuidle';
const POLL_NS = 'module/haltpoll/parameters/guest_halt_poll_ns';

t.test('haltpoll with polling off: says every cross-CPU wake-up interrupts a halted CPU', async (t) => {
  const root = await fakeSys(t, { [`${CPUIDLE}/current_driver`]: 'haltpoll', [`${CPUIDLE}/current_governor`]: 'haltpoll', [POLL_NS]: '0' });
  t.equal(describeCpuIdle(root), 'idle CPUs: cpuidle driver haltpoll, governor haltpoll; guest halt polling off ' +
    '(guest_halt_poll_ns=0): an idle CPU halts at once, and every wake-up of a client or daemon sleeping on another ' +
    'CPU is an interrupt to a halted CPU (see bench/README)');
});

t.test('haltpoll with polling on, another driver, no driver', async (t) => {
  let root = await fakeSys(t, { [`${CPUIDLE}/current_driver`]: 'haltpoll', [`${CPUIDLE}/current_governor_ro`]: 'haltpoll', [POLL_NS]: '200000' });
  t.equal(describeCpuIdle(root), 'idle CPUs: cpuidle driver haltpoll, governor haltpoll; guest halt polling up to 200000 ns before halting',
    'the polling window (governor read from current_governor_ro)');
  root = await fakeSys(t, { [`${CPUIDLE}/current_driver`]: 'intel_idle', [`${CPUIDLE}/current_governor`]: 'menu', [POLL_NS]: '0' });
  t.equal(describeCpuIdle(root), 'idle CPUs: cpuidle driver intel_idle, governor menu', 'halt polling only matters with haltpoll');
  root = await fakeSys(t, {});
  t.equal(describeCpuIdle(root), "idle CPUs: no cpuidle driver (the kernel's default idle loop)");
});

t.test('the PM QoS CPU latency limit: said when one is in force, and who holds it', async (t) => {
  const root = await fakeSys(t, { [`${CPUIDLE}/current_driver`]: 'haltpoll', [`${CPUIDLE}/current_governor`]: 'haltpoll', [POLL_NS]: '0' });
  const base = describeCpuIdle(root);
  t.equal(describeCpuIdle(root, undefined), base, 'unknown limit: nothing added');
  t.equal(describeCpuIdle(root, 2_000_000_000), base, 'the default (no limit): nothing added');
  t.equal(describeCpuIdle(root, 0, true), 'idle CPUs: cpuidle driver haltpoll, governor haltpoll; its guest_halt_poll_ns=0 ' +
    'does not apply while the limit below holds; CPU latency limit 0 us (PM QoS, held by this run for every target ' +
    '(--cpu-idle poll)): idle CPUs poll instead of halting, so a wake-up on another CPU costs no interrupt');
  t.equal(describeCpuIdle(root, 20), `${base}; CPU latency limit 20 us (PM QoS, held by some other process): idle CPUs ` +
    'stay in states that wake within it', 'a limit someone else holds (tuned, say) is reported too');
});
