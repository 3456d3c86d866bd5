/**
 * Helpers for the mkfs tests: format a sparse image with o2fuse's mkfs, and
 * judge it with fsck.ocfs2 -fn strictly (test/lib/fsck.ts tolerates
 * mkfs.ocfs2's own DX_TREE_MISSING quirk; a volume o2fuse writes must not
 * need that), and read back what debugfs.ocfs2 says about it.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { FileDevice } from '../../io/fileDevice';
import { formatVolume, MkfsOptions, MkfsResult } from '../../fs/mkfs';
import { fsck } from '../lib/fsck';

export { tempDir } from '../lib/volume';
export { superblockStats, lsDir, debugfs } from '../lib/debugfs';

/** A sparse image of `sizeBytes` formatted by formatVolume (the file is new, so it reads as zeros). */
export async function formatImage(dir: string, name: string, sizeBytes: number, options: MkfsOptions = {}): Promise<{ image: string; result: MkfsResult }> {
  const image = path.join(dir, name);
  await fs.rm(image, { force: true });
  const fh = await fs.open(image, 'wx');
  await fh.truncate(sizeBytes);
  await fh.close();
  const device = await FileDevice.open(image);
  try {
    const result = await formatVolume(device, { deviceIsZeroed: true, ...options });
    return { image, result };
  } finally {
    await device.close();
  }
}

const FSCK_PROGRESS: readonly RegExp[] = [
  /^$/,
  /^fsck\.ocfs2 \d+\.\d+\.\d+$/,
  /^Checking OCFS2 filesystem in .*:$/,
  /^ {2}(Label|UUID|Number of blocks|Block size|Number of clusters|Cluster size|Number of slots):.*$/,
  /^\*\* Skipping slot recovery because -n was given\. \*\*$/,
  /^.* was run with -f, check forced\.$/,
  /^Pass \d[a-z]?: [A-Za-z ]+$/,
  /^All passes succeeded\.$/,
];

export interface StrictFsck {
  clean: boolean;
  code: number;
  complaints: string[];
  output: string;
}

/** fsck.ocfs2 -fn; clean means exit 0, "All passes succeeded." and no line besides its progress lines. */
export async function fsckStrict(image: string): Promise<StrictFsck> {
  const r = await fsck(['-fn', image]);
  const output = `${r.text}${r.stderr}`;
  const complaints = output.split('\n').filter((line) => !FSCK_PROGRESS.some((re) => re.test(line)));
  const clean = r.code === 0 && complaints.length === 0 && output.includes('All passes succeeded.');
  return { clean, code: r.code, complaints, output };
}

interface OkTest {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tap's own signature is a tuple union
  ok(value: any, ...messageAndExtra: any[]): unknown;
}

export async function assertFsckStrict(t: OkTest, image: string, what: string): Promise<boolean> {
  const r = await fsckStrict(image);
  t.ok(r.clean, `fsck.ocfs2 -fn finds ${what} clean`, { exitCode: r.code, complaints: r.complaints, fsckOutput: r.clean ? '' : r.output });
  return r.clean;
}

/** Runs `work` over items with at most `limit` at once (fsck is the slow part of these tests). */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
