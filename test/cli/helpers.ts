/**
 * Shared by the command-line tests: the memory-engine CLI, checks that
 * nothing was left behind, small waits.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mountsAt } from '../../fs/fuse/mountinfo';
import { liveRecord, liveRecords } from '../../bin/registry';
import { repoRoot } from '../lib/exec';

/** `node dist/test/cli/memoryCli.js`: the o2fuse CLI over the in-memory engine. */
export function memoryCliCommand(): string[] {
  return [process.execPath, path.join(repoRoot(), 'dist', 'test', 'cli', 'memoryCli.js')];
}

export function o2fuseBin(): string {
  return path.join(repoRoot(), 'bin', 'o2fuse');
}

/** The part of a node-tap Test the checks use. */
export interface CheckTest {
  /* eslint-disable @typescript-eslint/no-explicit-any -- tap's own signatures are tuple unions */
  equal(found: any, wanted: any, ...messageAndExtra: any[]): unknown;
  same(found: any, wanted: any, ...messageAndExtra: any[]): unknown;
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

/** No mount, no daemon record, no daemon for `dir`. */
export function assertNothingLeft(t: CheckTest, dir: string, what: string): void {
  const real = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
  t.same(mountsAt(real).map((m) => `${m.fsType} ${m.source}`), [], `${what}: nothing mounted on ${real}`);
  t.equal(liveRecord(real), undefined, `${what}: no daemon serves ${real}`);
  t.same(liveRecords().filter((r) => r.mountpoint === real), [], `${what}: no daemon listed for ${real}`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}
