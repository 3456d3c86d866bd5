/**
 * C helpers the tests compile, built once per source and command: the binary is
 * cached in node_modules/.cache/o2fuse-oracle/ under a hash of the sources and the
 * compile command, and rebuilt only when either changes.
 *
 *   const bin = await cachedBuild('o2tool', ['o2tool.c', 'sha256.c', 'sha256.h'],
 *     (srcDir, out) => ['-O2', '-o', out, path.join(srcDir, 'o2tool.c'), ...]);
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { repoRoot, run, SETUP_HINT } from './exec';

/** gcc's arguments for sources in srcDir (test/oracle) built to out. */
export type CompileCommand = (srcDir: string, out: string) => Promise<string[]> | string[];

const builds = new Map<string, Promise<string>>();

/**
 * Path of NAME built by COMMAND, compiling it on first use. Every file of SOURCES (in test/oracle, headers too)
 * is hashed into the cache key with the command; COMMAND decides what is compiled.
 */
export function cachedBuild(name: string, sources: readonly string[], command: CompileCommand): Promise<string> {
  const key = `${name}\0${sources.join('\0')}`;
  let built = builds.get(key);
  if (!built) {
    built = build(name, sources, command);
    builds.set(key, built);
  }
  return built;
}

async function build(name: string, sources: readonly string[], command: CompileCommand): Promise<string> {
  const root = repoRoot();
  const srcDir = path.join(root, 'test', 'oracle');
  const cacheDir = path.join(root, 'node_modules', '.cache', 'o2fuse-oracle');
  const hash = createHash('sha256');
  for (const f of sources) hash.update(f).update(await fs.readFile(path.join(srcDir, f)));
  hash.update((await command(srcDir, 'OUT')).join(' '));
  const ext = path.extname(name);
  const bin = path.join(cacheDir, `${path.basename(name, ext)}-${hash.digest('hex').slice(0, 16)}${ext}`);
  try {
    await fs.access(bin);
    return bin;
  } catch {
    // not built yet
  }
  await fs.mkdir(cacheDir, { recursive: true });
  // Parallel test files may build at once: each writes its own file, rename is atomic.
  const tmp = `${bin}.${process.pid}.tmp`;
  const r = await run('gcc', await command(srcDir, tmp));
  if (r.code !== 0) throw new Error(`building ${name} failed (${SETUP_HINT}):\n${r.stderr}`);
  // Older binaries stay: another checkout sharing this node_modules may still use one.
  await fs.rename(tmp, bin);
  return bin;
}
