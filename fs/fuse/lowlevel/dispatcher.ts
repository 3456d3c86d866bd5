/**
 * Requests in, replies out: decodes each message, answers INIT, routes the
 * rest to their handler and turns the outcome into a reply.
 *
 * Never serializes: every request starts at once, as it is read, and replies
 * in whatever order the engine finishes (the engine does its own locking).
 * The only state kept here is accounting: requests in flight, WRITEs in
 * flight per inode (stats), interrupted uniques.
 */
import createDebug from 'debug';
import { errnoNumber, errnoOf, type ErrnoName } from '../../errors';
import { isExpectedError } from '../errno';
import type { FuseChannel } from './channel';
import { describeNegotiated, decodeInitIn, negotiateInit, type InitPolicy, type Negotiated } from './init';
import { FuseOpcode, NO_REPLY_OPCODES, opcodeName } from './protocol';
import { NO_REPLY, type LowLevelOps } from './ops';
import { parseRequest, type Request } from './request';
import type { StatsCollector } from './stats';

const log = createDebug('o2fuse:fuse');
/** One line per request and per error reply; turned on by the session's `debug` option. */
export const traceRequests = createDebug('o2fuse:fuse:req');

export interface DispatcherOptions {
  initPolicy: InitPolicy;
  /** A handler failed with something that is not an errno (a bug): the reply says EIO. */
  onUnexpected?: (op: string, err: unknown) => void;
}

export class Dispatcher {
  private negotiatedInit: Negotiated | undefined;
  /** Uniques of requests still being served that the kernel asked to interrupt. */
  private readonly interrupted = new Set<number>();
  private readonly inFlight = new Set<number>();
  private idleWaiters: Array<() => void> = [];
  private initWaiters: Array<{ resolve(n: Negotiated): void; reject(e: Error): void }> = [];
  private initFailure: Error | undefined;

  constructor(
    private readonly channel: FuseChannel,
    private readonly ops: LowLevelOps,
    private readonly stats: StatsCollector,
    private readonly options: DispatcherOptions,
  ) {}

  get negotiated(): Negotiated | undefined {
    return this.negotiatedInit;
  }

  /** Resolves with the negotiated parameters once INIT has been answered. */
  initialized(): Promise<Negotiated> {
    if (this.negotiatedInit) return Promise.resolve(this.negotiatedInit);
    if (this.initFailure) return Promise.reject(this.initFailure);
    return new Promise((resolve, reject) => this.initWaiters.push({ resolve, reject }));
  }

  /** Fails a pending initialized() (the session ended before INIT). */
  failInit(err: Error): void {
    if (this.negotiatedInit) return;
    this.initFailure ??= err;
    for (const w of this.initWaiters.splice(0)) w.reject(err);
  }

  /** Whether a request is being served (read and not yet settled). */
  get busy(): boolean {
    return this.inFlight.size > 0;
  }

  /** Resolves when no request is being served. */
  idle(): Promise<void> {
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  markInterrupted(unique: number): void {
    if (this.inFlight.has(unique)) this.interrupted.add(unique);
  }

  handle(msg: Buffer): void {
    let req: Request;
    try {
      req = parseRequest(msg);
    } catch (err) {
      log('dropped a malformed message from /dev/fuse: %s', (err as Error).message);
      return;
    }
    this.stats.requestStarted(req.opcode);
    if (traceRequests.enabled) traceRequests('#%d %s node %d uid %d pid %d (%d bytes)', req.unique, opcodeName(req.opcode), req.nodeid, req.uid, req.pid, req.body.length);
    if (req.opcode === FuseOpcode.FUSE_INIT) {
      this.init(req);
      this.stats.requestDone();
      return;
    }
    if (!this.negotiatedInit) {
      this.finish(req, 'EIO');
      this.stats.requestDone();
      return;
    }
    const immediate = this.ops.immediateHandler(req.opcode);
    if (immediate) {
      try {
        immediate(req);
      } catch (err) {
        // No reply to send: errnoFor only reports an error that is not one of the expected errnos.
        this.errnoFor(req, err);
      }
      this.stats.requestDone();
      return;
    }
    const handler = this.ops.handler(req.opcode);
    if (!handler) {
      this.finish(req, 'ENOSYS');
      this.stats.requestDone();
      return;
    }
    const isWrite = req.opcode === FuseOpcode.FUSE_WRITE && req.body.length >= 20;
    const writeIno = isWrite ? this.safeIno(req.nodeid) : 0;
    if (isWrite) this.stats.writeStarted(writeIno, req.body.readUInt32LE(16));
    this.inFlight.add(req.unique);
    // A handler may answer before it is done (a buffered write the engine has accepted): the request stays in
    // flight until the handler settles, and what it returns or throws after answering is not sent again.
    let answered = false;
    const answer = (payload: Buffer[]): void => {
      if (answered) return;
      answered = true;
      this.reply(req, payload);
    };
    let work: Promise<Buffer[] | typeof NO_REPLY>;
    try {
      work = handler(req, answer);
    } catch (err) {
      work = Promise.reject(err);
    }
    work.then(
      (result) => {
        if (result !== NO_REPLY && !answered) this.reply(req, result);
      },
      (err) => {
        const errno = this.errnoFor(req, err);
        if (answered) log('%s #%d failed after its answer: %s', opcodeName(req.opcode), req.unique, errno);
        else this.finish(req, errno);
      },
    ).finally(() => {
      // The reply (if any) has been written: buffers it carried may be reused.
      this.ops.settled(req);
      if (isWrite) this.stats.writeDone(writeIno);
      this.inFlight.delete(req.unique);
      this.interrupted.delete(req.unique);
      this.stats.requestDone();
      if (this.inFlight.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private safeIno(nodeid: number): number {
    try {
      return this.ops.ino(nodeid);
    } catch {
      return nodeid;
    }
  }

  private errnoFor(req: Request, err: unknown): ErrnoName {
    const errno = errnoOf(err);
    if (!isExpectedError(err)) {
      log('BUG: %s (#%d, node %d) failed: %O', opcodeName(req.opcode), req.unique, req.nodeid, err);
      this.options.onUnexpected?.(opcodeName(req.opcode), err);
    }
    return errno;
  }

  private reply(req: Request, payload: Buffer[]): void {
    if (NO_REPLY_OPCODES.has(req.opcode)) return;
    this.channel.reply(req.unique, 0, payload);
  }

  /** An error reply (none for requests the kernel expects no answer to). */
  private finish(req: Request, errno: ErrnoName): void {
    this.stats.failed(errno);
    if (NO_REPLY_OPCODES.has(req.opcode)) return;
    if (traceRequests.enabled && errno !== 'ENOENT') traceRequests('#%d %s -> %s', req.unique, opcodeName(req.opcode), errno);
    this.channel.reply(req.unique, errnoNumber(errno));
  }

  private init(req: Request): void {
    const outcome = negotiateInit(decodeInitIn(req.body), this.options.initPolicy);
    if (outcome.kind === 'refuse') {
      log('INIT refused: %s', outcome.message);
      this.channel.reply(req.unique, errnoNumber(outcome.errno));
      this.failInit(new Error(outcome.message));
      return;
    }
    this.channel.reply(req.unique, 0, [outcome.reply]);
    if (outcome.kind === 'retry') {
      log('INIT: the kernel speaks a newer major protocol; answered 7.x and wait for its next INIT');
      return;
    }
    this.negotiatedInit = outcome.negotiated;
    log('INIT %s', describeNegotiated(outcome.negotiated));
    for (const w of this.initWaiters.splice(0)) w.resolve(outcome.negotiated);
  }
}
