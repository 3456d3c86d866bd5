/** The order of the benchmark's runs (bench/main.ts runs every job on every target, repetition by repetition). */

/**
 * The targets in the order one repetition of one job runs them: the list
 * rotated by (rep - 1 + jobIndex), so no target always runs first after the
 * job changes. That first run pays for the job before it: a cold sequential
 * read right after a sequential write of 512 MiB ran at about half the rate
 * of the same read run again (o2fuse over libfuse: 297-327 against 627-634
 * MiB/s, 15 s of idling in between made no difference). With the order fixed,
 * the first target (o2fuse over libfuse) took that in every repetition, and
 * the median kept it; rotated, a target runs first in at most one of a job's
 * repetitions (while there are no more repetitions than targets).
 */
export function runOrder<T>(targets: readonly T[], rep: number, jobIndex: number): T[] {
  if (targets.length === 0) return [];
  const k = (rep - 1 + jobIndex) % targets.length;
  return [...targets.slice(k), ...targets.slice(0, k)];
}
