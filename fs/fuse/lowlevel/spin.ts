/**
 * When the poll reader keeps reading /dev/fuse instead of sleeping.
 *
 * A client that calls the filesystem in a loop (stat after stat, one 4 KiB
 * write(2) after another) sends its next request a few microseconds after
 * our reply. If the main thread has gone back to sleep in the event loop by
 * then, the kernel must wake it, and on a virtual machine whose idle CPUs
 * halt that is an inter-processor interrupt to a halted virtual CPU: tens of
 * microseconds, more than the request itself costs. Measured on 2 CPUs with
 * a 50 us budget, 3-5 runs each: an open/close pair 89 -> 45 us, cold stat
 * 101-112 -> 37-81 us, 4 KiB buffered random writes 7.9-10.7k -> 16.4-17.7k
 * IOPS (fs/fuse/lowlevel/README.md has the rest).
 *
 * So once nothing is in flight, the reader spins on the queue for up to
 * `budgetUs` (the addon's spinRead). Spinning costs a CPU, so it adapts, as
 * guest halt polling does: after MISSES_TO_PAUSE spins in a row that found
 * nothing, it stops; it starts again when a request arrives within the
 * budget of the moment the reader went idle (the client is back in a tight
 * loop). Nothing spins while a request is being served or the engine waits
 * for the device (read-ins, write-back): their completions need the event
 * loop. A sequential reader lost a fifth of its throughput to spins before
 * that check (5 runs each: 498 against 611 MiB/s, measured when the engine
 * still read ahead).
 */
import createDebug from 'debug';

const log = createDebug('o2fuse:fuse');

/** The default budget: above a tight client loop's gap between requests (10-30 us measured), far below a scheduler tick. */
export const SPIN_BUDGET_US_DEFAULT = 50;
/** Largest budget the option takes. */
export const SPIN_BUDGET_US_MAX = 1000;
/** Empty spins in a row after which spinning pauses. */
export const MISSES_TO_PAUSE = 4;

export interface SpinCounters {
  /** Spins that found a request. */
  spinHits: number;
  /** Spins that ran out of budget. */
  spinMisses: number;
  /** Times spinning paused (the client went quiet) and resumed. */
  spinPauses: number;
  spinResumes: number;
}

/** Throws unless `budgetUs` is a budget SpinPolicy takes. */
export function checkSpinBudget(budgetUs: number): void {
  if (!Number.isInteger(budgetUs) || budgetUs < 0 || budgetUs > SPIN_BUDGET_US_MAX) {
    throw new RangeError(`spin budget ${budgetUs} us: expected an integer from 0 to ${SPIN_BUDGET_US_MAX}`);
  }
}

export class SpinPolicy {
  readonly counters: SpinCounters = { spinHits: 0, spinMisses: 0, spinPauses: 0, spinResumes: 0 };
  private misses = 0;
  private paused = false;
  /** When the reader last went idle while paused (ns, monotonic), or undefined. */
  private idleSince: bigint | undefined;

  constructor(readonly budgetUs: number, private readonly clock: () => bigint = process.hrtime.bigint) {
    checkSpinBudget(budgetUs);
  }

  get enabled(): boolean {
    return this.budgetUs > 0;
  }

  /**
   * The reader has nothing in flight and nothing queued: how long to spin
   * (ns), 0 for not at all (then it notes the time, for `arrived`).
   */
  idle(): number {
    if (!this.enabled) return 0;
    if (this.paused) {
      this.idleSince ??= this.clock();
      return 0;
    }
    return this.budgetUs * 1000;
  }

  /** A spin ended: it found a request, or not. */
  spun(found: boolean): void {
    if (found) {
      this.counters.spinHits++;
      this.misses = 0;
      return;
    }
    this.counters.spinMisses++;
    if (++this.misses >= MISSES_TO_PAUSE) {
      this.paused = true;
      this.idleSince = undefined;
      this.counters.spinPauses++;
      log('poll reader: %d spins of %d us found nothing; sleeping in the event loop until requests come back to back', this.misses, this.budgetUs);
    }
  }

  /** The event loop woke the reader for requests (it was asleep, not spinning). */
  arrived(): void {
    if (!this.paused || this.idleSince === undefined) return;
    const gapNs = this.clock() - this.idleSince;
    this.idleSince = undefined;
    if (gapNs > BigInt(this.budgetUs * 1000)) return;
    this.paused = false;
    this.misses = 0;
    this.counters.spinResumes++;
    log('poll reader: a request came %d us after going idle; spinning again', Number(gapNs / 1000n));
  }
}
