/**
 * The metadata workload, run as a child process of the benchmark (its
 * synchronous calls then never stall a daemon the benchmark serves):
 *
 *   node dist/bench/metadata.js DIR COUNT
 *
 * In DIR/meta: create COUNT empty files (open O_CREAT|O_EXCL + close), stat
 * each, list the directory, unlink each. Between phases the kernel's dentry
 * and inode caches are dropped (when root), so stat and unlink look names up
 * in the filesystem rather than in the kernel's caches. Prints one JSON line:
 * {"create": ops/s, "stat": ops/s, "readdir": entries/s, "unlink": ops/s}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The listing is repeated until it has run this long, so small directories still give a stable rate. */
const READDIR_MIN_MS = 500;
const READDIR_MAX_PASSES = 50;

export interface MetadataRates {
  create: number;
  stat: number;
  readdir: number;
  unlink: number;
}

function dropDentries(): void {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '2\n');
  } catch {
    // not root: the phases then run with warm kernel caches
  }
}

function timed(fn: () => number): { ops: number; seconds: number } {
  const start = process.hrtime.bigint();
  const ops = fn();
  return { ops, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

export function runMetadata(dir: string, count: number): MetadataRates {
  const base = path.join(dir, 'meta');
  // what an interrupted run left
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base);
  const names = Array.from({ length: count }, (_, i) => path.join(base, `f${String(i).padStart(6, '0')}`));

  const create = timed(() => {
    for (const name of names) fs.closeSync(fs.openSync(name, 'wx', 0o644));
    return names.length;
  });
  dropDentries();
  const stat = timed(() => {
    for (const name of names) fs.statSync(name);
    return names.length;
  });
  dropDentries();
  const readdir = timed(() => {
    let entries = 0;
    const start = Date.now();
    for (let pass = 0; pass < READDIR_MAX_PASSES && (pass === 0 || Date.now() - start < READDIR_MIN_MS); pass++) {
      const listed = fs.readdirSync(base);
      if (listed.length !== count) throw new Error(`readdir listed ${listed.length} entries, expected ${count}`);
      entries += listed.length;
    }
    return entries;
  });
  dropDentries();
  const unlink = timed(() => {
    for (const name of names) fs.unlinkSync(name);
    return names.length;
  });
  fs.rmdirSync(base);
  const rate = (t: { ops: number; seconds: number }) => t.ops / t.seconds;
  return { create: rate(create), stat: rate(stat), readdir: rate(readdir), unlink: rate(unlink) };
}

if (require.main === module) {
  const [dir, countText] = process.argv.slice(2);
  const count = Number(countText);
  if (!dir || !Number.isInteger(count) || count <= 0) {
    process.stderr.write('usage: metadata.js DIR COUNT\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(runMetadata(dir, count))}\n`);
}
