/**
 * The CPU wake-up latency limit (Linux PM QoS, /dev/cpu_dma_latency): read
 * for the report, and held for a whole run by `--cpu-idle poll`.
 *
 * Why the benchmark touches it: on a virtual machine whose idle CPUs halt,
 * every wake-up of a task sleeping on another CPU is an interrupt to a halted
 * CPU, ~20 us on this project's machines, and the one-at-a-time jobs
 * (buffered random writes, the metadata phases) pay one per request in each
 * direction. Measured with bench/fuseTrace on 4 KiB buffered random writes:
 * o2fuse's client woke on the other CPU for 99 % of its answers (22 us median
 * after the answer), while fuse2fs's client woke on the answering CPU for 78 %
 * (1 us), because fuse2fs's other worker threads kept the second CPU busy and
 * the scheduler places a woken task on an idle CPU when it has one. Whichever
 * filesystem happens to keep the other CPU busy wins the round trip; that is
 * the machine's idle policy, not the filesystem.
 *
 * A process that holds the device open with a limit of 0 us makes the
 * cpuidle governor keep idle CPUs polling instead of halting (`tuned`'s
 * latency-performance profile does the same); closing the descriptor drops
 * the request. Held for the whole run, it applies to every target alike, and
 * the report says so. The daemon never does this itself: how a machine's CPUs
 * idle is its owner's choice.
 */
import * as fs from 'node:fs';

export const CPU_LATENCY_DEVICE = '/dev/cpu_dma_latency';

/** The value the device reads as when nothing asks for a limit (PM_QOS_CPU_LATENCY_DEFAULT_VALUE). */
export const NO_CPU_LATENCY_LIMIT_US = 2_000_000_000;

/** The limit in force (microseconds), or undefined when the device cannot be read (not root, no PM QoS). */
export function cpuLatencyLimitUs(device = CPU_LATENCY_DEVICE): number | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(device, 'r');
    const buf = Buffer.alloc(4);
    return fs.readSync(fd, buf, 0, 4, null) === 4 ? buf.readInt32LE(0) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface CpuLatencyHold {
  readonly us: number;
  /** Drops the request (closes the descriptor). Idempotent. */
  release(): void;
}

/** Asks for a CPU wake-up latency of at most `us` microseconds until release() or the process's exit. Throws if it cannot. */
export function holdCpuLatency(us: number, device = CPU_LATENCY_DEVICE): CpuLatencyHold {
  if (!Number.isInteger(us) || us < 0) throw new RangeError(`CPU latency ${us} us: expected whole microseconds >= 0`);
  let fd: number | undefined = fs.openSync(device, 'w');
  try {
    const buf = Buffer.alloc(4);
    buf.writeInt32LE(us, 0);
    if (fs.writeSync(fd, buf, 0, 4, null) !== 4) throw new Error(`${device}: short write`);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return {
    us,
    release() {
      if (fd === undefined) return;
      fs.closeSync(fd);
      fd = undefined;
    },
  };
}
