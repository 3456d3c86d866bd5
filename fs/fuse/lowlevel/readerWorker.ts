/**
 * A worker thread that reads /dev/fuse: read(2) blocks until the kernel has
 * a request, so it gets a thread of its own instead of a libuv threadpool
 * thread (the pool is shared with the engine's device I/O; a pool filled
 * with blocked reads deadlocks the mount, and its size cannot be raised once
 * anything has used it).
 *
 * Each message goes to the main thread as a transferred ArrayBuffer: small
 * ones copied out (the read buffer is reused at once), big ones (large
 * WRITEs) in the read buffer itself, which is then replaced. The worker ends
 * when the session does (ENODEV) and reports why it stopped.
 */
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

export interface ReaderWorkerData {
  fd: number;
  bufferBytes: number;
  copyLimitBytes: number;
}

/** What the worker posts: a request, or its last word. */
export type ReaderMessage = Uint8Array | { stopped: string; message?: string };

/** read(2) errors that mean "read again": a signal, or a request interrupted before we took it (ENOENT). */
const RETRY = new Set(['EINTR', 'EAGAIN', 'ENOENT']);

function serve(data: ReaderWorkerData): void {
  const port = parentPort!;
  let buf = new Uint8Array(new ArrayBuffer(data.bufferBytes));
  for (;;) {
    let n: number;
    try {
      n = readSync(data.fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      if (RETRY.has(code)) continue;
      port.postMessage({ stopped: code, message: (err as Error).message });
      return;
    }
    if (n === 0) {
      port.postMessage({ stopped: 'EOF' });
      return;
    }
    if (n <= data.copyLimitBytes) {
      const copy = buf.slice(0, n);
      port.postMessage(copy, [copy.buffer]);
    } else {
      port.postMessage(buf.subarray(0, n), [buf.buffer]);
      buf = new Uint8Array(new ArrayBuffer(data.bufferBytes));
    }
  }
}

if (parentPort && workerData) serve(workerData as ReaderWorkerData);
