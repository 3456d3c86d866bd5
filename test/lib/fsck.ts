/**
 * fsck.ocfs2 -fn as the judge of a volume.
 *
 * What fsck.ocfs2 1.8.7 does with -n (learnt by running it, -M local volumes need no
 * cluster stack): it answers "n" to every question, prints each problem as
 * "[CODE] text ... n", and STILL prints "All passes succeeded." and exits 0 for many
 * problems (a wrong link count, for one). So a clean run is judged by its output, not
 * its status: every line must be one of the fixed progress lines below. Exit codes:
 * 0 nothing changed, 1/2 errors corrected (not with -n), 4 errors left uncorrected,
 * 8 operational error (e.g. cannot open, or a -M local journal replay asking for the
 * cluster), 16 usage, 32 cancelled.
 *
 * Known mkfs.ocfs2 1.8.7 quirk: with blocks smaller than 4096 (the system directory
 * spans more than one block) a fresh volume already draws
 * "[DX_TREE_MISSING] Directory <system dir> is missing index". That one line is
 * tolerated when the directory named is the system directory.
 */
import * as path from 'node:path';
import { run, type RunOptions, type RunResult } from './exec';
import { cachedBuild } from './build';
import { superblockStats } from './debugfs';

/** test/oracle/nomlock.c, built once: fsck.ocfs2 without pinning its cache (why: in that file). */
function nomlock(): Promise<string> {
  return cachedBuild('nomlock.so', ['nomlock.c'], (srcDir, out) =>
    ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', '-o', out, path.join(srcDir, 'nomlock.c')]);
}

/**
 * Runs fsck.ocfs2 with ARGS, its cache unpinned (nomlock.c): every test's fsck goes
 * through here. Never rejects on a non-zero exit, as run().
 */
export async function fsck(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const env = { ...(opts.env ?? process.env) };
  env.LD_PRELOAD = [await nomlock(), env.LD_PRELOAD].filter(Boolean).join(' ');
  return run('fsck.ocfs2', args, { timeoutMs: 600_000, ...opts, env });
}

/**
 * fsck.ocfs2 -fy on an image whose journal may be dirty, as a replayer and repairer. fsck.ocfs2 1.8.7 replays the
 * dirty journal of a -M local image and then stops (exit 8, "Unable to access cluster service"); its second run
 * checks and repairs the replayed volume. Both runs are returned; on a volume with a clean journal the first does
 * the whole job and the second finds nothing left (exit 0).
 */
export async function fsckReplayAndRepair(image: string): Promise<{ replay: RunResult; repair: RunResult }> {
  const replay = await fsck(['-fy', image]);
  const repair = await fsck(['-fy', image]);
  return { replay, repair };
}

export interface FsckResult {
  code: number;
  /** stdout and stderr together, as a person would see them. */
  output: string;
  /** Lines that are not fsck's fixed progress lines (problems, errors). */
  complaints: string[];
}

const progressLines: RegExp[] = [
  /^$/,
  /^fsck\.ocfs2 \d+\.\d+\.\d+$/,
  /^Checking OCFS2 filesystem in .*:$/,
  /^ {2}(Label|UUID|Number of blocks|Block size|Number of clusters|Cluster size|Number of slots):.*$/,
  /^\*\* Skipping slot recovery because -n was given\. \*\*$/,
  /^.* was run with -f, check forced\.$/,
  /^Pass \d[a-z]?: [A-Za-z ]+$/,
  /^All passes succeeded\.$/,
];

/** Runs fsck.ocfs2 -fn and sorts its output into progress and complaints. */
export async function runFsck(image: string): Promise<FsckResult> {
  const r = await fsck(['-fn', image]);
  const output = `${r.text}${r.stderr}`;
  let complaints = output.split('\n').filter((line) => !progressLines.some((re) => re.test(line)));
  const dxMissing = /^\[DX_TREE_MISSING\] Directory (\d+) is missing index\./;
  if (complaints.some((l) => dxMissing.test(l))) {
    const sysdir = (await superblockStats(image)).systemDirBlkno;
    complaints = complaints.filter((l) => Number(dxMissing.exec(l)?.[1]) !== sysdir);
  }
  return { code: r.code, output, complaints };
}

/** The part of a node-tap Test assertFsckClean uses. */
export interface FsckTest {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tap's own signature is a tuple union
  ok(value: any, ...messageAndExtra: any[]): unknown;
}

/** Fails the test, with fsck's full output, unless fsck.ocfs2 -fn finds nothing. */
export async function assertFsckClean(t: FsckTest, image: string, what = 'volume'): Promise<boolean> {
  const r = await runFsck(image);
  const clean = r.code === 0 && r.complaints.length === 0 && r.output.includes('All passes succeeded.');
  const diag = clean
    ? undefined
    : { diagnostic: true, exitCode: r.code, complaints: r.complaints, fsckOutput: r.output };
  t.ok(clean, `fsck.ocfs2 -fn finds the ${what} clean`, diag);
  return clean;
}
