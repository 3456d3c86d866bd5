/**
 * Facts about an image that the read tests compare against: the global bitmap's
 * totals as debugfs.ocfs2 prints them, and a hash of the image file (a read-only
 * mount must leave it byte-for-byte unchanged).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { debugfs } from '../lib/debugfs';

/** Global bitmap totals from `debugfs.ocfs2 -R 'stat //global_bitmap'` ("Bitmap Total: N   Used: N   Free: N"), in clusters. */
export async function bitmapStats(image: string): Promise<{ total: number; used: number; free: number }> {
  const text = await debugfs(image, 'stat //global_bitmap');
  const m = /Bitmap Total: (\d+)\s+Used: (\d+)\s+Free: (\d+)/.exec(text);
  if (!m) throw new Error(`no bitmap totals in debugfs stat //global_bitmap:\n${text}`);
  return { total: Number(m[1]), used: Number(m[2]), free: Number(m[3]) };
}

export async function sha256OfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
