/**
 * How this machine's idle CPUs wait, for the report's environment lines.
 *
 * The one-at-a-time jobs (buffered random writes, the metadata phases) are
 * decided by the wake-ups around each request (bench/README). A virtual CPU
 * that halts as soon as it is idle costs an inter-processor interrupt, and on
 * a nested VM tens of microseconds, to wake; guest halt polling (the haltpoll
 * cpuidle driver with guest_halt_poll_ns > 0) keeps it spinning for a while
 * first. Two machines that differ only there give different ratios on those
 * jobs, so the report says which it ran on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NO_CPU_LATENCY_LIMIT_US } from './cpuLatency';

function readTrimmed(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * One line describing the idle state of this machine's CPUs, read from `sysRoot` (/sys), with the PM QoS CPU
 * latency limit in force (`limitUs`, bench/cpuLatency.ts; undefined: unknown) and whether this run holds it.
 */
export function describeCpuIdle(sysRoot = '/sys', limitUs?: number, heldByRun = false): string {
  return `${describeIdleStates(sysRoot, limitUs === 0)}${describeLimit(limitUs, heldByRun)}`;
}

function describeLimit(limitUs: number | undefined, heldByRun: boolean): string {
  if (limitUs === undefined || limitUs >= NO_CPU_LATENCY_LIMIT_US) return '';
  const who = heldByRun ? 'held by this run for every target (--cpu-idle poll)' : 'held by some other process';
  return limitUs === 0
    ? `; CPU latency limit 0 us (PM QoS, ${who}): idle CPUs poll instead of halting, so a wake-up on another CPU costs no interrupt`
    : `; CPU latency limit ${limitUs} us (PM QoS, ${who}): idle CPUs stay in states that wake within it`;
}

/** `polling`: a latency limit of 0 keeps idle CPUs polling, so the machine's own halt-polling setting does not apply. */
function describeIdleStates(sysRoot: string, polling: boolean): string {
  const cpuidle = path.join(sysRoot, 'devices', 'system', 'cpu', 'cpuidle');
  const driver = readTrimmed(path.join(cpuidle, 'current_driver'));
  if (!driver || driver === 'none') return 'idle CPUs: no cpuidle driver (the kernel\'s default idle loop)';
  const governor = readTrimmed(path.join(cpuidle, 'current_governor')) ?? readTrimmed(path.join(cpuidle, 'current_governor_ro'));
  let line = `idle CPUs: cpuidle driver ${driver}${governor ? `, governor ${governor}` : ''}`;
  const pollNs = readTrimmed(path.join(sysRoot, 'module', 'haltpoll', 'parameters', 'guest_halt_poll_ns'));
  if (driver === 'haltpoll' && pollNs !== undefined) {
    line += polling ? `; its guest_halt_poll_ns=${pollNs} does not apply while the limit below holds`
      : Number(pollNs) > 0
      ? `; guest halt polling up to ${pollNs} ns before halting`
      : '; guest halt polling off (guest_halt_poll_ns=0): an idle CPU halts at once, and every wake-up of a ' +
        'client or daemon sleeping on another CPU is an interrupt to a halted CPU (see bench/README)';
  }
  return line;
}
