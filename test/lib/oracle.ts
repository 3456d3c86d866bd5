/**
 * o2tool, the libocfs2 oracle (test/oracle/o2tool.c): builds it once, then populates,
 * dumps and reads volumes with it, independently of o2fuse's code.
 *
 *   await populate(image, [{ kind: 'mkdir', path: '/a' }, { kind: 'file', path: '/a/f', size: 5000, seed: 7 }]);
 *   const text = await dump(image);            // the dump format of dumpFormat.ts
 *   const bytes = await cat(image, '/a/f');    // equals genBytes(7, 0, 5000)
 *   const part = await cat(image, '/a/f', { offset: 100, length: 10 });
 *
 * The build: gcc links the static libocfs2.a with com_err and libaio (what libocfs2's
 * objects reference: com_err/error_message/_et_list, io_submit & co), once (build.ts).
 * Needs ocfs2-tools-dev, comerr-dev, gcc (scripts/setup-system.sh --test).
 *
 * Also re-exports the content generator (content.ts), the dump format (dumpFormat.ts)
 * and the spec builder (spec.ts), so tests import one module.
 */
import * as path from 'node:path';
import { run, runOk, SETUP_HINT } from './exec';
import { cachedBuild } from './build';
import { type DumpEntry, type DumpOptions, parseDump, resolveFields, encodePath } from './dumpFormat';
import { type Spec, specText } from './spec';

export * from './content';
export * from './dumpFormat';
export * from './spec';

const SOURCES = ['o2tool.c', 'sha256.c', 'sha256.h'];

async function compileCommand(srcDir: string, out: string): Promise<string[]> {
  // gcc finds the multiarch directory itself; it echoes the bare name when it does not
  const lib = (await runOk('gcc', ['-print-file-name=libocfs2.a'])).text.trim();
  if (!path.isAbsolute(lib)) throw new Error(`libocfs2.a not found (${SETUP_HINT})`);
  return [
    '-O2', '-Wall', '-Wextra', '-o', out,
    path.join(srcDir, 'o2tool.c'), path.join(srcDir, 'sha256.c'),
    lib, '-lcom_err', '-l:libaio.so.1',
  ];
}

/** Path of the o2tool binary, compiling it on first use. */
export function o2toolPath(): Promise<string> {
  return cachedBuild('o2tool', SOURCES, compileCommand);
}

/** Runs o2tool; rejects with its message on failure. */
export async function o2tool(args: readonly string[], input?: string): Promise<Buffer> {
  const r = await run(await o2toolPath(), args, { input, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`o2tool ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Builds the tree a spec describes (objects, or spec text) on a volume that is not mounted. */
export async function populate(image: string, spec: Spec | string): Promise<void> {
  await o2tool(['populate', image, '-'], typeof spec === 'string' ? spec : specText(spec));
}

function dumpArgs(image: string, o: DumpOptions): string[] {
  const args = ['dump', image, '-f', resolveFields(o).join(',')];
  if (o.path) args.push(encodePath(o.path));
  return args;
}

/** `o2tool dump` text (see dumpFormat.ts); compare it with shadowDump() of a mount. */
export async function dump(image: string, o: DumpOptions = {}): Promise<string> {
  return (await o2tool(dumpArgs(image, o))).toString('utf8');
}

export async function dumpEntries(image: string, o: DumpOptions = {}): Promise<DumpEntry[]> {
  return parseDump(await dump(image, o));
}

/** A file's bytes (a symlink's target) as libocfs2 reads them; optionally only [offset, offset + length). */
export async function cat(image: string, filePath: string, range?: { offset: number; length?: number }): Promise<Buffer> {
  const args = ['cat', image, encodePath(filePath)];
  if (range) args.push(String(range.offset), ...(range.length !== undefined ? [String(range.length)] : []));
  return o2tool(args);
}
