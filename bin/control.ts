/**
 * The daemon's control socket: one JSON request per connection, one JSON
 * reply. `o2fuse ... -o remount` and `o2fuse stats` talk to a running daemon
 * through it.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { EngineStats } from '../fs/api';
import type { SessionStats } from '../fs/fuse/lowlevel/stats';

export type ControlRequest = { op: 'remount'; options: string[] } | { op: 'status' } | { op: 'stats' };

export type ControlReply =
  | { ok: true; message?: string; status?: Record<string, unknown>; stats?: DaemonStats }
  | { ok: false; error: string };

/** What `o2fuse stats` shows: the engine's counters and the FUSE session's, since the mount. */
export interface DaemonStats {
  pid: number;
  device: string;
  mountpoint: string;
  transport: string;
  /** Seconds since the daemon started serving. */
  uptimeSec: number;
  engine: EngineStats | null;
  /** The kernel transport's request counters (fs/fuse/lowlevel/stats.ts); null over libfuse, which keeps none. */
  fuse: SessionStats | null;
}

/** A request bigger than this is not ours. */
const REQUEST_BYTES_MAX = 64 * 1024;
export const CONTROL_TIMEOUT_MS = 120_000;

export function serveControl(socket: string, handle: (req: ControlRequest) => Promise<ControlReply>): Promise<net.Server> {
  fs.rmSync(socket, { force: true });
  const server = net.createServer((conn) => {
    let text = '';
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > REQUEST_BYTES_MAX) conn.destroy();
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(text.slice(0, nl)) as ControlRequest;
      } catch {
        conn.end(`${JSON.stringify({ ok: false, error: 'malformed request' })}\n`);
        return;
      }
      handle(req).then(
        (reply) => conn.end(`${JSON.stringify(reply)}\n`),
        (err) => conn.end(`${JSON.stringify({ ok: false, error: (err as Error).message })}\n`),
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      fs.chmodSync(socket, 0o600);
      resolve(server);
    });
  });
}

export function sendControl(socket: string, req: ControlRequest, timeoutMs = CONTROL_TIMEOUT_MS): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    let text = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`the daemon did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (chunk: string) => {
      text += chunk;
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as ControlReply);
      } catch {
        reject(new Error(`the daemon sent a malformed reply: ${text.slice(0, 200)}`));
      }
    });
  });
}
