/**
 * The Debian packages only the benchmark needs (the project's own are
 * scripts/setup-system.sh's business). Asks dpkg once and calls apt-get only
 * for what is missing, saying so; a package that cannot be installed leaves
 * its target unavailable rather than stopping the run.
 */
import { isRoot, run } from './proc';

export interface BenchPackage {
  name: string;
  why: string;
}

export const BENCH_PACKAGES: BenchPackage[] = [
  { name: 'fio', why: 'runs every I/O job' },
  { name: 'libaio1', why: "fio's libaio engine (iodepth > 1)" },
  { name: 'bindfs', why: 'the C passthrough over libfuse baseline' },
  { name: 'fuse2fs', why: 'the ext4-in-FUSE baseline' },
  { name: 'e2fsprogs', why: 'mkfs.ext4 for the fuse2fs image' },
];

const APT_LOG = '/tmp/o2fuse-bench-apt.log';

async function installed(names: string[]): Promise<Set<string>> {
  const r = await run('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\\n', ...names]);
  const have = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const [pkg, status] = line.trim().split(/\s+/);
    // dpkg-query prints "libaio1:amd64" for multi-arch packages
    if (pkg && status === 'ii') have.add(pkg.split(':')[0]);
  }
  return have;
}

/** Installs what is missing; returns the packages still missing afterwards (with the reason). */
export async function ensureBenchPackages(say: (line: string) => void): Promise<Map<string, string>> {
  const names = BENCH_PACKAGES.map((p) => p.name);
  const have = await installed(names);
  const missing = BENCH_PACKAGES.filter((p) => !have.has(p.name));
  const failed = new Map<string, string>();
  if (missing.length === 0) {
    say(`packages: ${names.join(', ')} present`);
    return failed;
  }
  for (const p of missing) say(`packages: missing ${p.name} (${p.why})`);
  if (!isRoot()) {
    for (const p of missing) failed.set(p.name, 'not installed (not root: run apt-get install yourself)');
    return failed;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  say(`packages: installing ${missing.map((p) => p.name).join(' ')} (apt-get update, then apt-get install; log in ${APT_LOG})`);
  const update = await run('sh', ['-c', `apt-get update -qq >${APT_LOG} 2>&1`], { env });
  if (update.code !== 0) say(`packages: apt-get update failed (see ${APT_LOG}); trying the install anyway`);
  const inst = await run('sh', ['-c', `apt-get install -y -q --no-install-recommends ${missing.map((p) => p.name).join(' ')} >>${APT_LOG} 2>&1`], { env });
  const after = await installed(names);
  for (const p of missing) {
    if (after.has(p.name)) say(`packages: installed ${p.name}`);
    else failed.set(p.name, `apt-get install failed (exit ${inst.code}, see ${APT_LOG})`);
  }
  return failed;
}
