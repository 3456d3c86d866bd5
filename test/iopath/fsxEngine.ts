/**
 * fsx's engine side: the volume the engine's fsx tests run on (a real image
 * in memory under a fault-injecting device), and one step (fsxModel.ts) done
 * with the Volume's calls, as the FUSE layer would make them.
 */
import path from 'node:path';
import type { Test } from 'tap';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import type { Rng } from '../lib/seed';
import { MemoryDevice } from '../../io/memoryDevice';
import { FaultyDevice } from '../../io/faultyDevice';
import { Volume, type VolumeOptions } from '../../fs/volume';
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

export interface FsxVolumeOptions {
  /** Image size (default 64 MiB). */
  sizeBytes?: number;
  /** mkfs.ocfs2 journal size (default mkfs's). */
  journalBytes?: number;
  blockSize?: number;
  clusterSize?: number;
  features?: string;
  /** The device's write cache: 'volatile' for power cuts (default 'writethrough'). */
  cache?: 'volatile' | 'writethrough';
  /** Largest random latency per request (ms); default 3. */
  maxLatencyMs?: number;
  volume?: Partial<VolumeOptions>;
}

export interface FsxVolume {
  /** The image file (written back from memory by finish()). */
  image: string;
  vol: Volume;
  dev: FaultyDevice;
  /** Unmounts what is mounted (errors ignored: a power cut or an abort may have left it failing). */
  close(): Promise<void>;
  /** Mounts the memory copy again as the last unmount (or cut) left it, through a fresh device. */
  remount(volume?: Partial<VolumeOptions>): Promise<Volume>;
  /** Unmounts, writes the memory copy back to the image and runs fsck.ocfs2 -fn on it. */
  finish(what?: string): Promise<void>;
}

/**
 * A real mkfs.ocfs2 image (64 MiB, 1 KiB blocks and 4 KiB clusters unless told; one slot when the journal size is
 * given), copied into memory under a
 * fault-injecting device with seeded random latency, mounted with a 16-page cache unless told.
 */
export async function fsxVolume(t: Test, rng: Rng, o: FsxVolumeOptions = {}): Promise<FsxVolume> {
  const image = path.join(path.dirname(await makeImage(t, {
    sizeBytes: o.sizeBytes ?? 64 << 20, blockSize: o.blockSize ?? 1024, clusterSize: o.clusterSize ?? 4096,
    features: o.features ?? 'noindexed-dirs,norefcount', journalBytes: o.journalBytes, slots: o.journalBytes ? 1 : undefined,
  })), 'ocfs2.img');
  const mem = await MemoryDevice.fromFile(image);
  const dev = new FaultyDevice(mem, {
    seed: rng.next(), latency: { minMs: 0, maxMs: o.maxLatencyMs ?? 3 }, cache: o.cache ?? 'writethrough', closeInner: false,
  });
  let current = await Volume.mount(dev, { readOnly: false, cacheSizeBytes: 16 * 4096, ...o.volume });
  t.teardown(() => current.unmount().catch(() => {}));
  const h: FsxVolume = {
    image,
    vol: current,
    dev,
    close: () => current.unmount().catch(() => {}),
    remount: async (volume) => {
      await h.close();
      current = await Volume.mount(new FaultyDevice(mem, { cache: 'writethrough', closeInner: false }), { readOnly: false, ...volume });
      return current;
    },
    finish: async (what) => {
      await h.close();
      await mem.saveTo(image);
      await assertFsckClean(t, image, what);
    },
  };
  return h;
}
