/**
 * Memory of the daemon over time, on the o2fuse:mem debug namespace: RSS,
 * the JS heap and the buffers outside it, every few seconds while enabled.
 * What a storage engineer checks when a cache_size does not seem to hold.
 */
import createDebug from 'debug';

const trace = createDebug('o2fuse:mem');
export const MEMORY_TRACE_INTERVAL_MS = 2000;

export function startMemoryTrace(): () => void {
  if (!trace.enabled) return () => {};
  const mib = (n: number) => (n / 1048576).toFixed(1);
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    trace('rss %s MiB, heap %s/%s MiB, external %s MiB (array buffers %s MiB)',
      mib(m.rss), mib(m.heapUsed), mib(m.heapTotal), mib(m.external), mib(m.arrayBuffers));
  }, MEMORY_TRACE_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
