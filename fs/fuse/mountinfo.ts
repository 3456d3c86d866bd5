/**
 * Reading /proc/self/mountinfo: which mounts sit on a directory, and with
 * what source and type. Used to tell our mount from anything else mounted on
 * the same directory, before and after.
 */
import { readFileSync } from 'node:fs';

export interface MountEntry {
  mountId: number;
  mountPoint: string;
  /** Per-mount options (ro, noatime, nosuid, ...). */
  options: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    entries.push({
      mountId: Number(fields[0]),
      mountPoint: unescapeOctal(fields[4]),
      options: fields[5].split(','),
      fsType: fields[dash + 1],
      source: unescapeOctal(fields[dash + 2]),
      superOptions: (fields[dash + 3] ?? '').split(','),
    });
  }
  return entries;
}

export function readMountinfo(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** Mounts whose mount point is exactly `dir` (an absolute, symlink-free path), innermost last. */
export function mountsAt(dir: string): MountEntry[] {
  return readMountinfo().filter((m) => m.mountPoint === dir);
}

/** The o2fuse mount on `dir`, if the top-most mount there is one. */
export function o2fuseMountAt(dir: string): MountEntry | undefined {
  const here = mountsAt(dir);
  const top = here[here.length - 1];
  return top && top.fsType === 'fuse.o2fuse' ? top : undefined;
}
