/**
 * The workloads: each fio job file in bench/jobs/ and the metadata script,
 * and the numbers (rows of the report) each yields. Every job starts from
 * the volume as laid out (seq.dat, rand.dat, verify.dat). Every number is "higher is better" (MiB/s, IOPS, ops/s), so a
 * ratio above 1 always means o2fuse is ahead.
 */
import type { FioResult } from './fio';

/** A row of the report's latency table: one direction of one fio job. */
export interface LatencyRow {
  id: string;
  jobId: string;
  title: string;
  direction: 'read' | 'write';
}

export interface Row {
  id: string;
  jobId: string;
  title: string;
  unit: 'MiB/s' | 'IOPS' | 'ops/s' | 'entries/s';
  /** Sequential I/O: the rows the passthrough target is about. */
  sequential: boolean;
}

export interface Job {
  id: string;
  kind: 'fio' | 'metadata';
  /** File name under bench/jobs/. */
  fioFile?: string;
  /** A file the job creates, removed (untimed, still mounted) so the next job finds the volume as laid out. */
  creates?: string;
  /** A verify job: a mismatch is FAILED, never a number. */
  verify: boolean;
  rows: Row[];
  /** The number of each row from one fio run. */
  values?(r: FioResult): Record<string, number>;
  /** The directions whose completion latency the report shows (fio jobs). */
  latencyRows?: LatencyRow[];
}

const MiB = 1024;

function row(jobId: string, title: string, unit: Row['unit'], sequential = false, id = jobId): Row {
  return { id, jobId, title, unit, sequential };
}

/** The latency row of a job that moves data one way; a mixed job has one per direction. */
function lat(jobId: string, title: string, direction: LatencyRow['direction'], id = jobId): LatencyRow {
  return { id, jobId, title, direction };
}

export const JOBS: Job[] = [
  {
    id: 'seqwrite', kind: 'fio', fioFile: 'seqwrite.fio', creates: 'seqwrite.dat', verify: false,
    rows: [row('seqwrite', 'seq write 1 MiB, end_fsync', 'MiB/s', true)],
    latencyRows: [lat('seqwrite', 'seq write 1 MiB (each write(2); the final fsync not counted)', 'write')],
    values: (r) => ({ seqwrite: r.write.bwKiBps / MiB }),
  },
  {
    id: 'seqread', kind: 'fio', fioFile: 'seqread.fio', verify: false,
    rows: [row('seqread', 'seq read 1 MiB, cold', 'MiB/s', true)],
    latencyRows: [lat('seqread', 'seq read 1 MiB, cold', 'read')],
    values: (r) => ({ seqread: r.read.bwKiBps / MiB }),
  },
  {
    id: 'randread', kind: 'fio', fioFile: 'randread.fio', verify: false,
    rows: [row('randread', 'rand read 4 KiB direct, QD16', 'IOPS')],
    latencyRows: [lat('randread', 'rand read 4 KiB direct, QD16', 'read')],
    values: (r) => ({ randread: r.read.iops }),
  },
  {
    id: 'randwrite', kind: 'fio', fioFile: 'randwrite.fio', verify: false,
    rows: [row('randwrite', 'rand write 4 KiB direct, QD16', 'IOPS')],
    latencyRows: [lat('randwrite', 'rand write 4 KiB direct, QD16', 'write')],
    values: (r) => ({ randwrite: r.write.iops }),
  },
  {
    id: 'randwrite-prealloc', kind: 'fio', fioFile: 'randwrite-prealloc.fio', creates: 'prealloc.dat', verify: false,
    rows: [row('randwrite-prealloc', 'rand write 4 KiB direct, QD16, into preallocated space', 'IOPS')],
    latencyRows: [lat('randwrite-prealloc', 'rand write 4 KiB direct, QD16, into preallocated space', 'write')],
    values: (r) => ({ 'randwrite-prealloc': r.write.iops }),
  },
  {
    id: 'randwrite-buffered', kind: 'fio', fioFile: 'randwrite-buffered.fio', verify: false,
    rows: [row('randwrite-buffered', 'rand write 4 KiB buffered', 'IOPS')],
    latencyRows: [lat('randwrite-buffered', 'rand write 4 KiB buffered', 'write')],
    values: (r) => ({ 'randwrite-buffered': r.write.iops }),
  },
  {
    id: 'unaligned-verify', kind: 'fio', fioFile: 'unaligned-verify.fio', verify: true,
    rows: [row('unaligned-verify', '512 B rand write direct, QD32, verify=crc32c', 'IOPS')],
    latencyRows: [lat('unaligned-verify', '512 B rand write direct, QD32, verify=crc32c', 'write')],
    values: (r) => ({ 'unaligned-verify': r.write.iops }),
  },
  {
    id: 'mix', kind: 'fio', fioFile: 'mix.fio', verify: false,
    rows: [row('mix', 'rand 70/30 read/write 4 KiB direct, QD16 (total)', 'IOPS')],
    latencyRows: [
      lat('mix', 'rand 70/30 4 KiB direct, QD16: reads', 'read', 'mix-read'),
      lat('mix', 'rand 70/30 4 KiB direct, QD16: writes', 'write', 'mix-write'),
    ],
    values: (r) => ({ mix: r.read.iops + r.write.iops }),
  },
  {
    id: 'metadata', kind: 'metadata', creates: 'meta', verify: false,
    rows: [
      row('metadata', 'metadata: create', 'ops/s', false, 'meta-create'),
      row('metadata', 'metadata: stat (cold dentries)', 'ops/s', false, 'meta-stat'),
      row('metadata', 'metadata: readdir', 'entries/s', false, 'meta-readdir'),
      row('metadata', 'metadata: unlink', 'ops/s', false, 'meta-unlink'),
    ],
  },
];

export function allRows(jobs: Job[]): Row[] {
  return jobs.flatMap((j) => j.rows);
}

export function allLatencyRows(jobs: Job[]): LatencyRow[] {
  return jobs.flatMap((j) => j.latencyRows ?? []);
}
