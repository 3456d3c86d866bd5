/**
 * Counters of one low-level session: how many requests, how many at once,
 * and how many writes to one inode were in flight at once (the evidence that
 * async direct I/O reaches the engine in parallel).
 */
import { opcodeName } from './protocol';
import type { SpinCounters } from './spin';

export interface SessionStats {
  /** Requests read from /dev/fuse (INIT and FORGETs included). */
  requests: number;
  /** Requests being served now (read, reply not yet written). */
  inFlight: number;
  maxInFlight: number;
  /** WRITE requests being served now, summed over inodes. */
  inFlightWrites: number;
  /** The most WRITE requests to a single inode ever in flight at once. */
  maxInFlightWritesPerInode: number;
  writes: number;
  writeBytes: number;
  /** WRITE requests by size: index n counts sizes in [2^n, 2^(n+1)) (1 MiB requests land in 20). */
  writesBySizeLog2: number[];
  largestWriteBytes: number;
  reads: number;
  readBytes: number;
  /** Requests answered with an error, by errno name. */
  errors: Record<string, number>;
  /** Requests by opcode name. */
  byOpcode: Record<string, number>;
  interrupts: number;
  forgets: number;
  /** Replies the kernel no longer wanted (interrupted requests). */
  staleReplies: number;
  notifications: number;
  /** The poll reader's spins on an empty queue (all zero when it does not spin): spin.ts. */
  spin: SpinCounters;
}

export class StatsCollector {
  private requests = 0;
  private inFlight = 0;
  private maxInFlight = 0;
  private readonly writesByIno = new Map<number, number>();
  private inFlightWrites = 0;
  private maxWritesPerInode = 0;
  private writes = 0;
  private writeBytes = 0;
  private readonly writesBySizeLog2: number[] = [];
  private largestWriteBytes = 0;
  private reads = 0;
  private readBytes = 0;
  private readonly errors = new Map<string, number>();
  private readonly byOpcode = new Map<number, number>();
  interrupts = 0;
  forgets = 0;

  requestStarted(opcode: number): void {
    this.requests++;
    this.byOpcode.set(opcode, (this.byOpcode.get(opcode) ?? 0) + 1);
    this.inFlight++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
  }

  requestDone(): void {
    this.inFlight--;
  }

  writeStarted(ino: number, bytes: number): void {
    const n = (this.writesByIno.get(ino) ?? 0) + 1;
    this.writesByIno.set(ino, n);
    this.inFlightWrites++;
    if (n > this.maxWritesPerInode) this.maxWritesPerInode = n;
    this.writes++;
    this.writeBytes += bytes;
    if (bytes > this.largestWriteBytes) this.largestWriteBytes = bytes;
    const bucket = bytes > 0 ? Math.floor(Math.log2(bytes)) : 0;
    while (this.writesBySizeLog2.length <= bucket) this.writesBySizeLog2.push(0);
    this.writesBySizeLog2[bucket]++;
  }

  writeDone(ino: number): void {
    const n = (this.writesByIno.get(ino) ?? 1) - 1;
    if (n > 0) this.writesByIno.set(ino, n);
    else this.writesByIno.delete(ino);
    this.inFlightWrites--;
  }

  readDone(bytes: number): void {
    this.reads++;
    this.readBytes += bytes;
  }

  failed(errno: string): void {
    this.errors.set(errno, (this.errors.get(errno) ?? 0) + 1);
  }

  snapshot(channel: { staleReplies: number; notifications: number }, spin?: { counters: SpinCounters }): SessionStats {
    return {
      requests: this.requests,
      inFlight: this.inFlight,
      maxInFlight: this.maxInFlight,
      inFlightWrites: this.inFlightWrites,
      maxInFlightWritesPerInode: this.maxWritesPerInode,
      writes: this.writes,
      writeBytes: this.writeBytes,
      writesBySizeLog2: [...this.writesBySizeLog2],
      largestWriteBytes: this.largestWriteBytes,
      reads: this.reads,
      readBytes: this.readBytes,
      errors: Object.fromEntries(this.errors),
      byOpcode: Object.fromEntries([...this.byOpcode].map(([op, n]) => [opcodeName(op), n])),
      interrupts: this.interrupts,
      forgets: this.forgets,
      staleReplies: channel.staleReplies,
      notifications: channel.notifications,
      spin: { ...(spin?.counters ?? { spinHits: 0, spinMisses: 0, spinPauses: 0, spinResumes: 0 }) },
    };
  }
}
