/**
 * A Device wrapper that misbehaves on purpose, for tests and for the sandbox
 * (`-o inject=...`, see io/injectSpec.ts and docs/inject.md). Modelled on
 * TigerBeetle's simulated storage: seeded, so a run replays from its seed.
 *
 * Per request, decided at submission in submission order (that is what makes a
 * seed replay the same completion order):
 *   - holds: a test catches matching requests and later release()s or fail()s them;
 *   - delays: fixed or random (seeded) latency; random latency reorders completions;
 *   - failures: matching requests fail with EIO (or another errno) once, n times or always.
 * A request runs its holds, then its delay, then fails or reaches the inner
 * device. A read takes its data when it completes, a write lands when it
 * completes: the last of two overlapping writes to complete wins, as on a disk.
 *
 * Power cut. In the 'volatile' cache mode (the default) an acknowledged write
 * is kept in a volatile overlay, as in a disk's write cache; reads see it,
 * flush() writes the overlay to the inner device in acknowledgement order and
 * flushes that. powerCut() throws the overlay away (optionally letting a seeded
 * random subset of its sector-sized pieces, and of the writes in flight,
 * persist in random order: torn and reordered persistence), fails everything in
 * flight with EIO and refuses all I/O with EIO until reopen(). The inner device
 * then holds exactly what a machine would find after the crash. When the
 * overlay outgrows its bound its oldest writes are destaged early, as a disk
 * may do; only writes that are unflushed AND still cached are dropped by a cut.
 * The 'writethrough' mode sends writes straight to the inner device (the
 * sandbox uses it unless a power cut is asked for).
 *
 * Invariants the tests check: a flushed write survives every power cut; a
 * write acknowledged after the last flush survives a cut with keepFraction 0
 * only if it was destaged; after a cut, no request succeeds until reopen().
 */
import createDebug from 'debug';
import { performance } from 'node:perf_hooks';
import { BaseDevice, DeviceOp, DeviceStats, toDeviceError } from './baseDevice';
import { Device, DeviceErrno, DeviceError } from './device';
import { Prng } from './prng';

const debug = createDebug('o2fuse:io');

/** Default bound on the volatile overlay; past it the oldest writes are destaged to the inner device. */
export const OVERLAY_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
export const OVERLAY_WRITES_MAX_DEFAULT = 4096;
/** Longest injected delay: a typo like "50s" for "50ms" must not hang a test for hours. */
export const INJECTED_DELAY_MS_MAX = 60_000;

export type FaultOp = DeviceOp;

/** Which requests a rule applies to: op(s) and a byte range [startByte, endByte) the request touches. */
export interface RequestMatcher {
  op?: FaultOp | 'any' | readonly FaultOp[];
  startByte?: number;
  /** Exclusive; default: the end of the device. */
  endByte?: number;
}

export interface FaultyRequest {
  readonly id: number;
  readonly op: FaultOp;
  readonly offset: number;
  readonly length: number;
}

export type FaultRule =
  | {
      kind: 'delay';
      match?: RequestMatcher;
      /** Each matching request waits a seeded random time in [minMs, maxMs] (equal: fixed). */
      minMs: number;
      maxMs: number;
      /** How many requests the rule applies to (default: all). */
      times?: number;
      /** For messages ("hold" rules from inject specs are delays with this label). */
      label?: string;
    }
  | {
      kind: 'fail';
      match?: RequestMatcher;
      errno?: DeviceErrno;
      /** How many requests fail (default: all). */
      times?: number;
    };

export interface PowerCutOptions {
  /** Chance that each sector-sized piece of an unflushed or in-flight write persists anyway (default 0). */
  keepFraction?: number;
}

export interface FaultyDeviceOptions {
  /** Seeds every random choice (default 1). */
  seed?: number;
  /** Random latency for every request, in [minMs, maxMs]: reorders completions. */
  latency?: { minMs: number; maxMs: number };
  rules?: FaultRule[];
  /** Cut the power right after the afterWrites-th write is acknowledged. */
  powerCut?: { afterWrites: number } & PowerCutOptions;
  cache?: 'volatile' | 'writethrough';
  overlayBytesMax?: number;
  overlayWritesMax?: number;
  /** close() also closes the inner device (default true). */
  closeInner?: boolean;
  name?: string;
}

export interface PowerCutReport {
  /** Acknowledged writes not yet flushed when the power went (dropped unless pieces were kept). */
  unflushedWrites: number;
  unflushedBytes: number;
  /** Writes still in flight at the cut: they fail with EIO. */
  inFlightWrites: number;
  /** Sector-sized pieces of those writes that persisted anyway (keepFraction > 0). */
  keptPieces: number;
  keptBytes: number;
}

export interface FaultStats extends DeviceStats {
  submitted: number;
  delayed: number;
  held: number;
  injectedFailures: number;
  powerCuts: number;
  /** Acknowledged writes still only in the volatile overlay. */
  unflushedWrites: number;
  unflushedBytes: number;
}

/** A hold on matching requests: they wait until release() or fail(). */
export interface HoldHandle {
  /** Requests caught so far. */
  readonly caught: readonly FaultyRequest[];
  /** Resolves once `count` requests (default 1) have been caught. */
  arrived(count?: number): Promise<FaultyRequest[]>;
  /** Lets every caught request go on and stops catching. */
  release(): void;
  /** Fails every caught request with errno (default EIO) and stops catching. */
  fail(errno?: DeviceErrno): void;
}

export interface RuleHandle {
  /** Requests the rule has applied to. */
  readonly hits: number;
  remove(): void;
}

type Listener = (req: FaultyRequest) => void;
type CompleteListener = (req: FaultyRequest, error: DeviceError | undefined) => void;

interface ActiveRule {
  rule: FaultRule;
  timesLeft: number;
  hits: number;
}

interface Hold {
  match: RequestMatcher;
  timesLeft: number;
  active: boolean;
  caught: FaultyRequest[];
  outcome: { errno: DeviceErrno } | 'release' | null;
  wakers: Array<(outcome: { errno: DeviceErrno } | 'release') => void>;
  arrivals: Array<{ count: number; resolve: (reqs: FaultyRequest[]) => void }>;
}

interface OverlayEntry {
  seq: number;
  offset: number;
  data: Buffer;
}

interface Sleeper {
  dueMs: number;
  id: number;
  wake: () => void;
}

function compareSleepers(a: Sleeper, b: Sleeper): number {
  return a.dueMs - b.dueMs || a.id - b.id;
}

interface Plan {
  holds: Hold[];
  delayMs: number;
  fail: DeviceErrno | null;
}

export class FaultyDevice extends BaseDevice {
  private readonly latencyPrng: Prng;
  private readonly cutPrng: Prng;
  private readonly rules: ActiveRule[] = [];
  private readonly holds: Hold[] = [];
  private latency: { minMs: number; maxMs: number } | null;
  private readonly cache: 'volatile' | 'writethrough';
  private readonly overlayBytesMax: number;
  private readonly overlayWritesMax: number;
  private readonly closeInner: boolean;

  private nextId = 0;
  private cut = false;
  /** Bumped by each power cut: a request from an older epoch never succeeds. */
  private epoch = 0;
  private cutWakers = new Set<() => void>();
  /** Delayed requests, by (dueMs, id): one timer wakes them in that order (see sleep()). */
  private sleepers: Sleeper[] = [];
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeTimerDueMs = 0;
  /** The time every request submitted in this event-loop turn counts its delay from. */
  private turnBaseMs: number | null = null;

  private overlay: OverlayEntry[] = [];
  private overlayBytes = 0;
  private ackSeq = 0;
  private destaging: Promise<void> = Promise.resolve();
  private destageError: DeviceError | null = null;
  private readonly writesInFlight = new Map<number, { offset: number; buf: Buffer }>();

  private powerCutRule: ({ afterWrites: number } & PowerCutOptions) | null;
  private writesAcked = 0;
  /** The report of the last power cut, once its kept pieces are on the inner device. */
  lastPowerCut: Promise<PowerCutReport> | null = null;

  private readonly submitListeners = new Set<Listener>();
  private readonly completeListeners = new Set<CompleteListener>();
  private counts = { submitted: 0, delayed: 0, held: 0, injectedFailures: 0, powerCuts: 0 };

  constructor(
    readonly inner: Device,
    options: FaultyDeviceOptions = {},
  ) {
    super({
      size: inner.size,
      sectorSize: inner.sectorSize,
      readOnly: inner.readOnly,
      name: options.name ?? `faulty ${inner.name}`,
    });
    const seed = options.seed ?? 1;
    const root = new Prng(seed);
    this.latencyPrng = root.fork('latency');
    this.cutPrng = root.fork('power-cut');
    this.latency = null;
    if (options.latency) this.setLatency(options.latency.minMs, options.latency.maxMs);
    for (const rule of options.rules ?? []) this.addRule(rule);
    this.cache = options.cache ?? 'volatile';
    this.overlayBytesMax = options.overlayBytesMax ?? OVERLAY_BYTES_MAX_DEFAULT;
    this.overlayWritesMax = options.overlayWritesMax ?? OVERLAY_WRITES_MAX_DEFAULT;
    this.closeInner = options.closeInner ?? true;
    this.powerCutRule = null;
    if (options.powerCut) this.powerCutAfterWrites(options.powerCut.afterWrites, options.powerCut);
  }

  // ---- configuration ----

  setLatency(minMs: number, maxMs: number): void {
    checkDelay(minMs, maxMs);
    this.latency = { minMs, maxMs };
  }

  clearLatency(): void {
    this.latency = null;
  }

  addRule(rule: FaultRule): RuleHandle {
    if (rule.kind === 'delay') checkDelay(rule.minMs, rule.maxMs);
    checkMatcher(rule.match);
    const times = rule.times ?? Infinity;
    if (!(times === Infinity || (Number.isInteger(times) && times > 0))) {
      throw new RangeError(`rule times must be a positive integer: ${times}`);
    }
    const active: ActiveRule = { rule, timesLeft: times, hits: 0 };
    this.rules.push(active);
    const rules = this.rules;
    return {
      get hits() {
        return active.hits;
      },
      remove() {
        const i = rules.indexOf(active);
        if (i >= 0) rules.splice(i, 1);
      },
    };
  }

  /** Delays matching requests by ms, or by a random time in [minMs, maxMs]. */
  delay(match: RequestMatcher, ms: number | { minMs: number; maxMs: number }, times?: number): RuleHandle {
    const range = typeof ms === 'number' ? { minMs: ms, maxMs: ms } : ms;
    return this.addRule({ kind: 'delay', match, ...range, times });
  }

  /** Fails matching requests with errno (default EIO), `times` times (default always). */
  fail(match: RequestMatcher, options: { errno?: DeviceErrno; times?: number } = {}): RuleHandle {
    return this.addRule({ kind: 'fail', match, errno: options.errno, times: options.times });
  }

  /** Catches the next `times` (default 1) matching requests and holds them until the handle says. */
  hold(match: RequestMatcher, options: { times?: number } = {}): HoldHandle {
    checkMatcher(match);
    const times = options.times ?? 1;
    if (!(times === Infinity || (Number.isInteger(times) && times > 0))) {
      throw new RangeError(`hold times must be a positive integer: ${times}`);
    }
    const hold: Hold = {
      match,
      timesLeft: times,
      active: true,
      caught: [],
      outcome: null,
      wakers: [],
      arrivals: [],
    };
    this.holds.push(hold);
    const settle = (outcome: { errno: DeviceErrno } | 'release') => {
      if (hold.outcome !== null) return;
      hold.outcome = outcome;
      hold.active = false;
      const i = this.holds.indexOf(hold);
      if (i >= 0) this.holds.splice(i, 1);
      for (const wake of hold.wakers.splice(0)) wake(outcome);
    };
    return {
      get caught() {
        return hold.caught;
      },
      arrived(count = 1) {
        if (hold.caught.length >= count) return Promise.resolve(hold.caught.slice(0, count));
        return new Promise((resolve) => hold.arrivals.push({ count, resolve }));
      },
      release: () => settle('release'),
      fail: (errno: DeviceErrno = 'EIO') => settle({ errno }),
    };
  }

  /** Cuts the power right after the n-th write from now is acknowledged. */
  powerCutAfterWrites(n: number, options: PowerCutOptions = {}): void {
    if (!(Number.isInteger(n) && n > 0)) throw new RangeError(`powerCut afterWrites must be a positive integer: ${n}`);
    checkKeepFraction(options.keepFraction);
    this.powerCutRule = { afterWrites: n, keepFraction: options.keepFraction };
    this.writesAcked = 0;
  }

  // ---- observation ----

  onSubmit(listener: Listener): () => void {
    this.submitListeners.add(listener);
    return () => this.submitListeners.delete(listener);
  }

  onComplete(listener: CompleteListener): () => void {
    this.completeListeners.add(listener);
    return () => this.completeListeners.delete(listener);
  }

  get maxInFlight(): number {
    return this.stats().maxInFlight;
  }

  get isPoweredOff(): boolean {
    return this.cut;
  }

  faultStats(): FaultStats {
    return {
      ...this.stats(),
      ...this.counts,
      unflushedWrites: this.overlay.length,
      unflushedBytes: this.overlayBytes,
    };
  }

  // ---- power ----

  /**
   * The power goes now: requests in flight fail with EIO, the unflushed overlay is
   * lost (except pieces kept by keepFraction), and I/O fails with EIO until reopen().
   */
  powerCut(options: PowerCutOptions = {}): Promise<PowerCutReport> {
    if (this.cut && this.lastPowerCut) return this.lastPowerCut;
    const keepFraction = options.keepFraction ?? this.powerCutRule?.keepFraction ?? 0;
    checkKeepFraction(keepFraction);
    this.cut = true;
    this.epoch++;
    this.counts.powerCuts++;
    this.powerCutRule = null;
    this.stopWakeTimer();
    for (const sleeper of this.sleepers.splice(0)) sleeper.wake();
    for (const wake of [...this.cutWakers]) wake();
    this.cutWakers.clear();
    // What was on its way to the media when the power went: copied now, the callers get EIO.
    const inFlight = [...this.writesInFlight.values()].map((w) => ({ offset: w.offset, data: Buffer.from(w.buf) }));
    const done = this.finishPowerCut(keepFraction, inFlight);
    // A cut fired by a rule has no caller to see a failure: log it, and keep it for lastPowerCut.
    done.catch((err) => debug('%s: power cut could not write its kept pieces: %s', this.name, err));
    this.lastPowerCut = done;
    return done;
  }

  /** Power back on: I/O works again on whatever the inner device holds. */
  reopen(): this {
    if (this.closed) throw new DeviceError('EBADF', `${this.name} is closed`);
    this.cut = false;
    this.destageError = null;
    return this;
  }

  private async finishPowerCut(keepFraction: number, inFlight: Array<{ offset: number; data: Buffer }>) {
    // Let the destager finish the write it is in; it stops before the next one.
    await this.destaging;
    const unflushed = this.overlay;
    this.overlay = [];
    const report: PowerCutReport = {
      unflushedWrites: unflushed.length,
      unflushedBytes: this.overlayBytes,
      inFlightWrites: inFlight.length,
      keptPieces: 0,
      keptBytes: 0,
    };
    this.overlayBytes = 0;
    if (keepFraction > 0) {
      const candidates = this.cutPrng.shuffle([...unflushed.map((e) => ({ offset: e.offset, data: e.data })), ...inFlight]);
      const sector = this.inner.sectorSize;
      for (const write of candidates) {
        let at = write.offset;
        const end = write.offset + write.data.length;
        while (at < end) {
          const pieceEnd = Math.min(end, (Math.floor(at / sector) + 1) * sector);
          if (this.cutPrng.chance(keepFraction)) {
            await this.inner.write(write.data.subarray(at - write.offset, pieceEnd - write.offset), at);
            report.keptPieces++;
            report.keptBytes += pieceEnd - at;
          }
          at = pieceEnd;
        }
      }
    }
    debug(
      '%s: power cut: dropped %d unflushed writes (%d bytes), %d in flight, kept %d pieces (%d bytes)',
      this.name,
      report.unflushedWrites,
      report.unflushedBytes,
      report.inFlightWrites,
      report.keptPieces,
      report.keptBytes,
    );
    return report;
  }

  // ---- the Device primitives ----

  protected readIntoImpl(buf: Buffer, offset: number): Promise<void> {
    return this.submit('read', offset, buf.length, null, async () => {
      if (this.cache === 'writethrough') return this.inner.readInto(buf, offset);
      // The overlay as it stands now; entries destaged meanwhile are in the snapshot too.
      const snapshot = this.overlay.slice();
      await this.inner.readInto(buf, offset);
      applyOverlay(snapshot, buf, offset);
    });
  }

  protected writeImpl(buf: Buffer, offset: number): Promise<void> {
    return this.submit('write', offset, buf.length, buf, async () => {
      if (this.cache === 'writethrough') return this.inner.write(buf, offset);
      // The data lands when the write completes (a caller that changes buf in flight gets what a DMA would see).
      const entry = { seq: ++this.ackSeq, offset, data: Buffer.from(buf) };
      this.overlay.push(entry);
      this.overlayBytes += entry.data.length;
      this.destageIfOverBound();
    });
  }

  protected flushImpl(): Promise<void> {
    return this.submit('flush', 0, 0, null, async () => {
      if (this.destageError) {
        const err = this.destageError;
        this.destageError = null;
        throw err;
      }
      if (this.cache === 'volatile') await this.destageUpTo(this.ackSeq);
      await this.inner.flush();
    });
  }

  protected async closeImpl(): Promise<void> {
    if (!this.cut && this.cache === 'volatile') {
      // A clean shutdown: the disk keeps its cache (it is the power cut that loses it).
      await this.destageUpTo(this.ackSeq);
    }
    this.stopWakeTimer();
    if (this.closeInner) await this.inner.close();
  }

  // ---- request life cycle ----

  private async submit(
    op: FaultOp,
    offset: number,
    length: number,
    writeBuf: Buffer | null,
    perform: () => Promise<void>,
  ): Promise<void> {
    const req: FaultyRequest = { id: ++this.nextId, op, offset, length };
    const epoch = this.epoch;
    this.counts.submitted++;
    for (const listener of this.submitListeners) callListener(() => listener(req));
    let error: DeviceError | undefined;
    try {
      if (this.cut) throw this.poweredOff(req);
      if (writeBuf) this.writesInFlight.set(req.id, { offset, buf: writeBuf });
      const plan = this.plan(req);
      for (const hold of plan.holds) {
        const outcome = await this.interruptible(
          new Promise<{ errno: DeviceErrno } | 'release'>((resolve) => {
            if (hold.outcome !== null) resolve(hold.outcome);
            else hold.wakers.push(resolve);
          }),
        );
        if (this.epoch !== epoch) throw this.poweredOff(req);
        if (outcome !== 'release' && outcome !== undefined) {
          this.counts.injectedFailures++;
          throw new DeviceError(outcome.errno, `held ${describe(req)} failed by the test`);
        }
      }
      if (plan.delayMs > 0) await this.sleep(plan.delayMs, req.id);
      if (this.epoch !== epoch) throw this.poweredOff(req);
      if (plan.fail !== null) {
        this.counts.injectedFailures++;
        debug('%s: injected %s on %s', this.name, plan.fail, describe(req));
        throw new DeviceError(plan.fail, `injected ${plan.fail} on ${describe(req)}`);
      }
      await perform();
      if (this.epoch !== epoch) throw this.poweredOff(req);
    } catch (err) {
      error = toDeviceError(err, describe(req));
      throw error;
    } finally {
      this.writesInFlight.delete(req.id);
      for (const listener of this.completeListeners) callListener(() => listener(req, error));
      if (error === undefined && op === 'write' && this.powerCutRule !== null) {
        this.writesAcked++;
        if (this.writesAcked >= this.powerCutRule.afterWrites) {
          debug('%s: power cut after %d writes', this.name, this.writesAcked);
          void this.powerCut();
        }
      }
    }
  }

  /** Everything random about a request is drawn here, at submission, in submission order. */
  private plan(req: FaultyRequest): Plan {
    const plan: Plan = { holds: [], delayMs: 0, fail: null };
    for (const hold of this.holds) {
      if (!hold.active || hold.timesLeft <= 0 || !matches(hold.match, req)) continue;
      hold.timesLeft--;
      hold.caught.push(req);
      plan.holds.push(hold);
      this.counts.held++;
      debug('%s: holding %s', this.name, describe(req));
      const ready = hold.arrivals.filter((a) => hold.caught.length >= a.count);
      hold.arrivals = hold.arrivals.filter((a) => hold.caught.length < a.count);
      for (const a of ready) a.resolve(hold.caught.slice(0, a.count));
    }
    if (this.latency) plan.delayMs += this.draw(this.latency.minMs, this.latency.maxMs);
    for (const active of this.rules) {
      const rule = active.rule;
      if (active.timesLeft <= 0 || !matches(rule.match, req)) continue;
      if (rule.kind === 'fail') {
        if (plan.fail !== null) continue;
        plan.fail = rule.errno ?? 'EIO';
      } else {
        const ms = this.draw(rule.minMs, rule.maxMs);
        plan.delayMs += ms;
        if (rule.label === 'hold') debug('%s: holding %s for %dms', this.name, describe(req), ms);
      }
      active.timesLeft--;
      active.hits++;
    }
    plan.delayMs = Math.min(plan.delayMs, INJECTED_DELAY_MS_MAX);
    if (plan.delayMs > 0) this.counts.delayed++;
    return plan;
  }

  private draw(minMs: number, maxMs: number): number {
    return minMs === maxMs ? minMs : this.latencyPrng.int(minMs, maxMs);
  }

  private poweredOff(req: FaultyRequest): DeviceError {
    return new DeviceError('EIO', `${this.name} has lost power (${describe(req)}); reopen() to power it back on`);
  }

  /** Waits for p, or for a power cut, whichever comes first (undefined then). */
  private interruptible<T>(p: Promise<T>): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve) => {
      const onCut = () => resolve(undefined);
      this.cutWakers.add(onCut);
      p.then((value) => {
        this.cutWakers.delete(onCut);
        resolve(value);
      });
    });
  }

  /**
   * Waits ms of virtual time. Wall-clock timers would make the completion order
   * depend on how fast the machine ran the submitting code; instead every
   * request submitted in one event-loop turn counts from the same base, one
   * timer wakes sleepers strictly by (due time, request id), one due instant per
   * timer callback, and requests submitted by the woken ones count from that
   * instant. Over a deterministic inner device (memory) a seed then gives one
   * completion order on every run and machine.
   */
  private sleep(ms: number, id: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const sleeper: Sleeper = { dueMs: this.turnBase() + ms, id, wake: resolve };
      let i = this.sleepers.length;
      while (i > 0 && compareSleepers(this.sleepers[i - 1]!, sleeper) > 0) i--;
      this.sleepers.splice(i, 0, sleeper);
      this.armWakeTimer();
    });
  }

  private turnBase(): number {
    if (this.turnBaseMs === null) this.setTurnBase(performance.now());
    return this.turnBaseMs!;
  }

  private setTurnBase(ms: number): void {
    if (this.turnBaseMs === null) setImmediate(() => (this.turnBaseMs = null));
    this.turnBaseMs = ms;
  }

  private armWakeTimer(): void {
    const first = this.sleepers[0];
    if (!first) return this.stopWakeTimer();
    if (this.wakeTimer !== null && this.wakeTimerDueMs === first.dueMs) return;
    this.stopWakeTimer();
    this.wakeTimerDueMs = first.dueMs;
    this.wakeTimer = setTimeout(() => this.onWakeTimer(), Math.max(0, Math.ceil(first.dueMs - performance.now())));
  }

  private stopWakeTimer(): void {
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
  }

  private onWakeTimer(): void {
    this.wakeTimer = null;
    const first = this.sleepers[0];
    if (!first) return;
    const dueMs = first.dueMs;
    this.setTurnBase(dueMs);
    while (this.sleepers.length > 0 && this.sleepers[0]!.dueMs === dueMs) this.sleepers.shift()!.wake();
    // Re-armed after the woken requests' continuations have run (they may submit earlier sleepers).
    setImmediate(() => this.armWakeTimer());
  }

  // ---- the volatile overlay ----

  private destageIfOverBound(): void {
    if (this.overlayBytes <= this.overlayBytesMax && this.overlay.length <= this.overlayWritesMax) return;
    let bytes = this.overlayBytes;
    let count = this.overlay.length;
    let target = 0;
    for (const entry of this.overlay) {
      if (bytes <= this.overlayBytesMax / 2 && count <= this.overlayWritesMax / 2) break;
      bytes -= entry.data.length;
      count--;
      target = entry.seq;
    }
    this.destageUpTo(target).catch((err) => {
      this.destageError = toDeviceError(err, `destage to ${this.inner.name}`);
    });
  }

  /** Writes overlay entries up to seq to the inner device, oldest first, one at a time. */
  private destageUpTo(seq: number): Promise<void> {
    const epoch = this.epoch;
    const run = this.destaging.then(async () => {
      while (this.overlay.length > 0 && this.overlay[0]!.seq <= seq) {
        if (this.epoch !== epoch) throw new DeviceError('EIO', `${this.name} lost power while flushing`);
        const entry = this.overlay[0]!;
        await this.inner.write(entry.data, entry.offset);
        // On the media now, power cut or not.
        if (this.overlay[0] === entry) {
          this.overlay.shift();
          this.overlayBytes -= entry.data.length;
        }
      }
      if (this.epoch !== epoch) throw new DeviceError('EIO', `${this.name} lost power while flushing`);
    });
    this.destaging = run.catch(() => undefined);
    return run;
  }
}

function applyOverlay(entries: readonly OverlayEntry[], buf: Buffer, offset: number): void {
  const end = offset + buf.length;
  for (const e of entries) {
    const eEnd = e.offset + e.data.length;
    if (eEnd <= offset || e.offset >= end) continue;
    const from = Math.max(offset, e.offset);
    const to = Math.min(end, eEnd);
    e.data.copy(buf, from - offset, from - e.offset, to - e.offset);
  }
}

export function matches(m: RequestMatcher | undefined, req: FaultyRequest): boolean {
  if (!m) return true;
  if (m.op !== undefined && m.op !== 'any') {
    const ops: readonly FaultOp[] = typeof m.op === 'string' ? [m.op] : m.op;
    if (!ops.includes(req.op)) return false;
  }
  if (m.startByte === undefined && m.endByte === undefined) return true;
  // A flush has no byte range: a ranged rule never matches it.
  if (req.op === 'flush') return false;
  const start = m.startByte ?? 0;
  const end = m.endByte ?? Infinity;
  const reqEnd = req.offset + Math.max(req.length, 1);
  return req.offset < end && reqEnd > start;
}

function describe(req: FaultyRequest): string {
  return req.op === 'flush' ? `flush #${req.id}` : `${req.op} #${req.id} [${req.offset}, ${req.offset + req.length})`;
}

function callListener(call: () => void): void {
  try {
    call();
  } catch (err) {
    // A broken test hook must be loud, but must not change the request's outcome.
    setImmediate(() => {
      throw err;
    });
  }
}

function checkDelay(minMs: number, maxMs: number): void {
  if (!(Number.isInteger(minMs) && Number.isInteger(maxMs) && minMs >= 0 && minMs <= maxMs)) {
    throw new RangeError(`delay needs integer milliseconds 0 <= min <= max: ${minMs}, ${maxMs}`);
  }
  if (maxMs > INJECTED_DELAY_MS_MAX) {
    throw new RangeError(`delay ${maxMs}ms exceeds INJECTED_DELAY_MS_MAX (${INJECTED_DELAY_MS_MAX}ms)`);
  }
}

function checkMatcher(m: RequestMatcher | undefined): void {
  if (!m) return;
  const ops = m.op === undefined || m.op === 'any' ? [] : typeof m.op === 'string' ? [m.op] : m.op;
  for (const op of ops) {
    if (op !== 'read' && op !== 'write' && op !== 'flush') throw new RangeError(`unknown request op: ${String(op)}`);
  }
  const start = m.startByte ?? 0;
  const end = m.endByte ?? Infinity;
  if (!(Number.isSafeInteger(start) && start >= 0 && (end === Infinity || Number.isSafeInteger(end)) && start < end)) {
    throw new RangeError(`matcher byte range must be 0 <= start < end: [${m.startByte}, ${m.endByte})`);
  }
}

function checkKeepFraction(f: number | undefined): void {
  if (f !== undefined && !(f >= 0 && f <= 1)) throw new RangeError(`keepFraction must be in [0, 1]: ${f}`);
}
