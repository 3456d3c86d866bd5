/**
 * Scratch directories and fresh OCFS2 images for tests.
 *
 *   const dir = await tempDir(t);                       // removed at teardown
 *   const image = await makeImage(t, { blockSize: 512, clusterSize: 4096 });
 *
 * Images are sparse files formatted by mkfs.ocfs2 -M local (one node, no cluster
 * stack). Set O2FUSE_KEEP=1 to keep scratch directories for a post-mortem (the path
 * is printed as a test comment).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { runOk } from './exec';

/** The part of a node-tap Test these helpers use. */
export interface TestLike {
  teardown(fn: () => unknown): void;
  comment(...args: unknown[]): void;
}

/** A fresh directory under the system temp dir, removed (recursively) at teardown. */
export async function tempDir(t: TestLike, prefix = 'o2fuse-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(async () => {
    if (process.env.O2FUSE_KEEP) {
      t.comment(`kept ${dir}`);
      return;
    }
    await fs.rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export interface ImageOptions {
  /** Volume size in bytes (the file is sparse). Default 256 MiB. */
  sizeBytes?: number;
  /** 512, 1024, 2048 or 4096. Default 4096. */
  blockSize?: number;
  /** 4 KiB .. 1 MiB, a power of two. Default 4096. */
  clusterSize?: number;
  /** Node slots. Default 2. */
  slots?: number;
  /** mkfs.ocfs2 --fs-features list, e.g. "noinline-data,nosparse" or "metaecc". */
  features?: string;
  /** mkfs.ocfs2 --fs-feature-level: default, max-compat or max-features. */
  featureLevel?: string;
  label?: string;
  /** Journal size in bytes (mkfs -J size=). Default: mkfs's choice. */
  journalBytes?: number;
  /** Directory for the image; default a new tempDir(t). */
  dir?: string;
  /** File name inside dir. Default "ocfs2.img". */
  name?: string;
  /** Anything else for mkfs.ocfs2, placed before the image path. */
  extraArgs?: string[];
}

/** The mkfs.ocfs2 argument list makeImage uses (exported for tests of o2fuse's own mkfs). */
export function mkfsArgs(image: string, o: ImageOptions = {}): string[] {
  const args = ['-q', '-F', '-M', 'local'];
  args.push('-b', String(o.blockSize ?? 4096), '-C', String(o.clusterSize ?? 4096));
  args.push('-N', String(o.slots ?? 2));
  if (o.label !== undefined) args.push('-L', o.label);
  if (o.features) args.push(`--fs-features=${o.features}`);
  if (o.featureLevel) args.push(`--fs-feature-level=${o.featureLevel}`);
  if (o.journalBytes) args.push('-J', `size=${Math.ceil(o.journalBytes / (1024 * 1024))}M`);
  args.push(...(o.extraArgs ?? []), image);
  return args;
}

/** Creates and formats a sparse image; returns its path. */
export async function makeImage(t: TestLike, o: ImageOptions = {}): Promise<string> {
  const dir = o.dir ?? (await tempDir(t));
  const image = path.join(dir, o.name ?? 'ocfs2.img');
  const handle = await fs.open(image, 'w');
  try {
    await handle.truncate(o.sizeBytes ?? 256 * 1024 * 1024);
  } finally {
    await handle.close();
  }
  await runOk('mkfs.ocfs2', mkfsArgs(image, o));
  return image;
}

/** A byte-for-byte copy of an image (sparse-preserving), for tests that must not touch the original. */
export async function copyImage(t: TestLike, image: string, dir?: string): Promise<string> {
  const target = path.join(dir ?? (await tempDir(t)), path.basename(image));
  await runOk('cp', ['--sparse=always', image, target]);
  return target;
}
