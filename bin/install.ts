/**
 * `o2fuse install [PATH]`: puts `o2fuse` where mount.fuse finds it.
 * mount -t fuse.o2fuse runs `o2fuse DEV DIR -o OPTS` through /bin/sh with PATH
 * reset to the system directories, so the program must be in one of them:
 * a symlink /usr/local/sbin/o2fuse -> <repo>/bin/o2fuse (the launcher
 * resolves the symlink to find the repository).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const INSTALL_PATH_DEFAULT = '/usr/local/sbin/o2fuse';

export function repoDirectory(): string {
  // dist/bin/install.js -> the repository
  return path.resolve(__dirname, '..', '..');
}

export function installCommand(argv: readonly string[]): number {
  const force = argv.includes('--force');
  const rest = argv.filter((a) => a !== '--force');
  if (rest.length > 1 || rest.some((a) => a.startsWith('-'))) {
    console.error('usage: o2fuse install [--force] [PATH]   (default PATH: /usr/local/sbin/o2fuse)');
    return 1;
  }
  const target = path.resolve(rest[0] ?? INSTALL_PATH_DEFAULT);
  const launcher = path.join(repoDirectory(), 'bin', 'o2fuse');
  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(target);
  } catch {
    existing = undefined;
  }
  if (existing) {
    if (existing.isSymbolicLink() && fs.readlinkSync(target) === launcher) {
      console.log(`o2fuse: ${target} -> ${launcher} is already installed`);
      return 0;
    }
    if (!existing.isSymbolicLink() && !force) {
      console.error(`o2fuse: ${target} exists and is not a symlink; remove it or use --force`);
      return 1;
    }
    const was = existing.isSymbolicLink() ? ` (was -> ${fs.readlinkSync(target)})` : '';
    fs.rmSync(target);
    console.log(`o2fuse: replacing ${target}${was}`);
  }
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.symlinkSync(launcher, target);
  } catch (err) {
    console.error(`o2fuse: cannot create ${target}: ${(err as Error).message}${process.getuid?.() !== 0 ? ' (run as root)' : ''}`);
    return 1;
  }
  console.log(`o2fuse: installed ${target} -> ${launcher}`);
  if (!['/sbin/mount.fuse', '/usr/sbin/mount.fuse'].some((p) => fs.existsSync(p))) {
    console.log('o2fuse: mount.fuse is missing (mount -t fuse.o2fuse needs it): sudo bash scripts/setup-system.sh');
  } else {
    console.log('o2fuse: now "mount -t fuse.o2fuse DEVICE DIR" and fstab lines of type fuse.o2fuse work');
  }
  return 0;
}
