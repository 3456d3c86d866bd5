/**
 * An engine over a fault-injecting device on a real mkfs.ocfs2 image, for
 * I/O-path tests that must control timing. Unmounts and runs fsck at teardown.
 */
import type { Test } from 'tap';
import { makeImage, type ImageOptions } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { FileDevice } from '../../io/fileDevice';
import { FaultyDevice, type FaultyDeviceOptions } from '../../io/faultyDevice';
import { Volume, type VolumeOptions } from '../../fs/volume';

export const O_RDWR = 2;
export const O_DIRECT = 0o40000;
export const ROOT_CALLER = { uid: 0, gid: 0 };

export interface Harness {
  vol: Volume;
  dev: FaultyDevice;
  image: string;
  /** Unmounts and checks the volume with fsck.ocfs2 -fn (call at the end of the test). */
  finish(): Promise<void>;
}

export async function engineOnFaultyDevice(t: Test, opts: {
  image?: ImageOptions;
  volume?: Partial<VolumeOptions>;
  faulty?: FaultyDeviceOptions;
} = {}): Promise<Harness> {
  const image = await makeImage(t, { sizeBytes: 256 << 20, features: 'noindexed-dirs,norefcount', ...opts.image });
  const inner = await FileDevice.open(image);
  const dev = new FaultyDevice(inner, { cache: 'writethrough', ...opts.faulty });
  const vol = await Volume.mount(dev, { readOnly: false, ...opts.volume });
  // Teardown only makes sure nothing stays open; the checks belong to the test (finish()).
  t.teardown(() => vol.unmount().catch(() => {}));
  return {
    vol, dev, image,
    finish: async () => {
      await vol.unmount();
      await assertFsckClean(t, image);
    },
  };
}

/** Creates a file of `size` bytes of `fill` (written back, so its blocks are allocated and written). */
export async function makeFile(vol: Volume, name: string, size: number, fill = 0x2e): Promise<number> {
  const { attr, fh } = await vol.create(vol.rootIno, Buffer.from(name), 0o644, O_RDWR, ROOT_CALLER);
  if (size > 0) await vol.write(attr.ino, fh, 0, Buffer.alloc(size, fill));
  await vol.fsync(attr.ino, fh, false);
  await vol.release(attr.ino, fh);
  return attr.ino;
}

/**
 * makeFile, then opened read-write with none of its pages cached: its first
 * reads and partial writes go to the device.
 */
export async function openColdFile(vol: Volume, name: string, size: number, fill = 0x2e): Promise<{ ino: number; fh: number }> {
  const ino = await makeFile(vol, name, size, fill);
  vol.pages.drop(ino);
  return { ino, fh: await vol.open(ino, O_RDWR) };
}

/** The device byte offset of file byte `fileOffset` (which must be mapped). */
export async function deviceOffsetOf(vol: Volume, ino: number, fileOffset: number): Promise<number> {
  const { mapRange } = await import('../../fs/file');
  const [seg] = await mapRange(vol, await vol.iget(ino), fileOffset, 1);
  if (!seg || seg.deviceOffset === null) throw new Error(`file byte ${fileOffset} of inode ${ino} is not mapped`);
  return seg.deviceOffset;
}

/** Counts the device requests of one kind submitted from now on, until off(). */
export function countSubmits(dev: FaultyDevice, op: 'read' | 'write'): { readonly n: number; off(): void } {
  let n = 0;
  const off = dev.onSubmit((r) => {
    if (r.op === op) n++;
  });
  return { get n() { return n; }, off };
}

/** Lets pending promise callbacks and I/O completions run. */
export function ticks(n = 20): Promise<void> {
  return new Promise((resolve) => {
    let left = n;
    const step = () => (--left <= 0 ? resolve() : setImmediate(step));
    setImmediate(step);
  });
}

/** Resolves when `cond()` holds, checking every 2 ms; rejects after `limitMs`. */
export async function until(cond: () => boolean, limitMs = 10000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`condition not reached within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
