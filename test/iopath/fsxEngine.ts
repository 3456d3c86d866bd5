/**
 * fsx's engine driver: one step (fsxModel.ts) done with the Volume's calls,
 * as the FUSE layer would make them. Shared by the engine's fsx tests.
 */
import type { Volume } from '../../fs/volume';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE } from '../../fs/fallocate';
import type { FsxStep } from './fsxModel';

/** A file open twice: buffered (fh) and O_DIRECT (dfh). */
export interface EngineHandles {
  ino: number;
  fh: number;
  dfh: number;
}

/** Does `s`: resolves to a read's bytes, a write's byte count, or nothing. */
export async function engineStep(vol: Volume, f: EngineHandles, s: FsxStep): Promise<Buffer | number | void> {
  switch (s.op) {
    case 'bwrite': return vol.write(f.ino, f.fh, s.offset, s.data!);
    case 'dwrite': return vol.write(f.ino, f.dfh, s.offset, s.data!);
    case 'bread': return vol.read(f.ino, f.fh, s.offset, s.length);
    case 'dread': return vol.read(f.ino, f.dfh, s.offset, s.length);
    case 'truncate': await vol.setattr(f.ino, { size: s.size }); return;
    case 'punch': return vol.fallocate(f.ino, f.fh, s.offset, s.length, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
    case 'zero': return vol.fallocate(f.ino, f.fh, s.offset, s.length, FALLOC_FL_ZERO_RANGE);
    case 'prealloc': return vol.fallocate(f.ino, f.fh, s.offset, s.length, s.keep ? FALLOC_FL_KEEP_SIZE : 0);
    case 'fsync': return vol.fsync(f.ino, f.fh, false);
  }
}
