/**
 * `--cpu-idle poll`'s hold on the CPU wake-up latency (bench/cpuLatency.ts):
 * what it writes and when it lets go, against a plain file standing in for
 * the device, then against /dev/cpu_dma_latency itself where this machine
 * has it (root): the limit is 0 while held and back to what it was after.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CPU_LATENCY_DEVICE, cpuLatencyLimitUs, holdCpuLatency } from '../../bench/cpuLatency';
import { tempDir } from '../lib/volume';

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

t.test('writes the limit as a 4-byte integer and closes the descriptor once on release', async (t) => {
  const file = path.join(await tempDir(t), 'latency');
  fs.writeFileSync(file, '');
  const before = openFds();
  const hold = holdCpuLatency(7, file);
  t.equal(openFds(), before + 1, 'the descriptor stays open while held');
  t.same([...fs.readFileSync(file)], [7, 0, 0, 0], 'the value, binary, little-endian (the device takes an s32)');
  t.equal(cpuLatencyLimitUs(file), 7, 'read back the way the device reads');
  hold.release();
  hold.release();
  t.equal(openFds(), before, 'released: closed, and a second release closes nothing else');
  t.throws(() => holdCpuLatency(-1, file), RangeError, 'a negative limit is refused');
  t.throws(() => holdCpuLatency(0, path.join(file, 'missing')), { code: 'ENOTDIR' }, 'a device that cannot be opened throws');
  t.equal(cpuLatencyLimitUs(path.join(file, 'missing')), undefined, 'an unreadable device: unknown, not an error');
});

t.test('on this machine\'s device: 0 while held, the earlier limit after', {
  skip: cpuLatencyLimitUs() === undefined ? `${CPU_LATENCY_DEVICE} cannot be read here (needs root and PM QoS)` : false,
}, async (t) => {
  const earlier = cpuLatencyLimitUs();
  const hold = holdCpuLatency(0);
  t.equal(cpuLatencyLimitUs(), 0, 'the request is in force');
  hold.release();
  t.equal(cpuLatencyLimitUs(), earlier, 'closing the descriptor dropped it');
});
