/**
 * The mkfs command: mkfs.ocfs2's flags in, a formatted device out.
 * runMkfs does what a bin/ wrapper needs (parse, open or create the image,
 * refuse to overwrite a volume without -F, print mkfs.ocfs2's summary) and
 * returns the exit status instead of exiting, so tests call it directly.
 *
 * An image path that does not exist is created with the size given after it
 * ("mkfs -L data vol.img 1G"), sparse, and known to read as zeros, so
 * nothing is wiped. An existing image smaller than the size given is grown.
 */
import * as fs from 'node:fs';
import { FileDevice } from '../../io/fileDevice';
import { OCFS2_MAX_BLOCKSIZE, OCFS2_MIN_BLOCKSIZE, OCFS2_SUPER_BLOCK_BLKNO, OCFS2_SUPER_BLOCK_SIGNATURE } from '../format/constants';
import { MkfsUsageError } from './errors';
import { formatVolume, MkfsResult } from './formatVolume';
import { MKFS_USAGE, MkfsInfoRequest, MkfsOptions, parseMkfsArgs } from './options';

export const MKFS_VERSION = 'o2fuse mkfs 0.1.0 (on-disk format of mkfs.ocfs2 1.8.7)';

export interface MkfsIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: MkfsIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** mkfs.ocfs2's print_state, from the result. */
export function summaryText(r: MkfsResult): string {
  const bits = (n: number): number => Math.round(Math.log2(n));
  const lines = [
    `Label: ${r.label}`,
    `Features: ${r.featureText}`,
    `Block size: ${r.blockSizeBytes} (${bits(r.blockSizeBytes)} bits)`,
    `Cluster size: ${r.clusterSizeBytes} (${bits(r.clusterSizeBytes)} bits)`,
    `Volume size: ${r.volumeBytes} (${r.totalClusters} clusters) (${r.totalBlocks} blocks)`,
    `Cluster groups: ${r.clusterGroups} (tail covers ${r.tailGroupClusters} clusters, rest cover ${r.groupClusters} clusters)`,
    `Extent allocator size: ${r.extentAllocBytesPerSlot} per slot`,
    `Journal size: ${r.journalSizeBytes}`,
    `Node slots: ${r.slots}`,
    `UUID: ${r.uuid}`,
    `Backup superblocks: ${r.backupSuperBlknos.length} (${r.backupSuperBlknos.join(', ') || 'volume under 1 GiB'})`,
  ];
  return lines.join('\n') + '\n';
}

/** The block size of an OCFS2 superblock already on the device, or 0. */
async function existingOcfs2(device: FileDevice): Promise<number> {
  for (let bs = OCFS2_MIN_BLOCKSIZE; bs <= OCFS2_MAX_BLOCKSIZE; bs *= 2) {
    const at = OCFS2_SUPER_BLOCK_BLKNO * bs;
    if (at + 8 > device.size) break;
    const sig = (await device.read(at, 8)).toString('latin1').replace(/\0+$/, '');
    if (sig === OCFS2_SUPER_BLOCK_SIGNATURE) return bs;
  }
  return 0;
}

/** Refuses a block device that is mounted (O_EXCL on a block device fails with EBUSY when it is in use). */
function checkNotBusy(devicePath: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(devicePath, fs.constants.O_RDONLY | fs.constants.O_EXCL);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EBUSY') throw new MkfsUsageError(`${devicePath} is in use (mounted or held by another program)`, 'EBUSY');
    throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export async function runMkfs(argv: readonly string[], io: MkfsIo = processIo): Promise<number> {
  let device: FileDevice | undefined;
  let createdPath: string | undefined;
  let ok = false;
  try {
    const args = parseMkfsArgs(argv);
    const options: MkfsOptions = { ...args.options };
    const path = args.devicePath;
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let created = false;
    if (!st) {
      if (args.sizeBytes === undefined) {
        throw new MkfsUsageError(`${path} does not exist: give a size to create an image file (e.g. "mkfs ${path} 1G")`, 'ENOENT');
      }
      if (options.dryRun) throw new MkfsUsageError(`${path} does not exist (a dry run creates nothing)`, 'ENOENT');
      const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
      try {
        fs.ftruncateSync(fd, args.sizeBytes);
      } finally {
        fs.closeSync(fd);
      }
      created = true;
      createdPath = path;
    } else if (st.isFile()) {
      if (args.sizeBytes !== undefined && args.sizeBytes > st.size && !options.dryRun) fs.truncateSync(path, args.sizeBytes);
      if (args.sizeBytes !== undefined) options.volumeSizeBytes = args.sizeBytes;
    } else if (st.isBlockDevice()) {
      checkNotBusy(path);
      if (args.sizeBytes !== undefined) options.volumeSizeBytes = args.sizeBytes;
    } else {
      throw new MkfsUsageError(`${path} is neither a regular file nor a block device`);
    }

    device = await FileDevice.open(path, { readOnly: options.dryRun === true });
    if (!created && !args.force && !options.dryRun) {
      const bs = await existingOcfs2(device);
      if (bs) throw new MkfsUsageError(`${path} already holds an OCFS2 volume (block size ${bs}): use -F to overwrite it`, 'EEXIST');
    }
    options.deviceIsZeroed = created;
    if (!args.quiet) options.progress = (line) => io.stderr(`${line}\n`);
    const result = await formatVolume(device, options);
    if (!args.quiet) {
      io.stdout(summaryText(result));
      io.stdout(result.dryRun ? 'Dry run: nothing written\n' : `mkfs successful: ${path}\n`);
    }
    ok = true;
    return 0;
  } catch (err) {
    if (err instanceof MkfsInfoRequest) {
      io.stdout(err.kind === 'help' ? `${MKFS_USAGE}\n` : `${MKFS_VERSION}\n`);
      return 0;
    }
    if (err instanceof MkfsUsageError) {
      io.stderr(`mkfs: ${err.detail}\n`);
      return 1;
    }
    io.stderr(`mkfs: ${(err as Error).message}\n`);
    return 1;
  } finally {
    if (device) await device.close().catch(() => undefined);
    // An image this run created and could not format is not left behind.
    if (!ok && createdPath) fs.rmSync(createdPath, { force: true });
  }
}
