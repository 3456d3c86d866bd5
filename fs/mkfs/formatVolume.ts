/**
 * formatVolume: writes a complete, empty OCFS2 volume on a Device.
 *
 * Order on the device (so an interrupted mkfs never leaves a superblock
 * pointing at half-written metadata):
 *   1. wipe: the first and last MiB of the volume (old superblocks and other
 *      signatures), the inode allocator groups, the heartbeat area, the
 *      journals and the backup superblock clusters are made to read as zeros;
 *      chunks already zero are not rewritten (sparse images stay sparse),
 *      and nothing is wiped when the caller says the device is all zeros;
 *   2. every metadata block but the superblock: OCFS1 headers, inodes,
 *      directory and dx blocks, suballocator groups, slot map, journal
 *      superblocks, then the global bitmap's group descriptors in batches;
 *   3. flush; the superblock at block 2 and its backups; flush.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import createDebug from 'debug';
import type { Device } from '../../io/device';
import { CHECK_OFFSET, dirBlockCheckOffsetOf } from '../format/blockcheck';
import {
  OCFS2_FEATURE_INCOMPAT_CLUSTERINFO, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP,
  OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT, OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK,
  OCFS2_FEATURE_COMPAT_BACKUP_SB, OCFS2_SUPER_BLOCK_BLKNO,
} from '../format/constants';
import { dxSeedOf } from '../format/dxHash';
import { clusterGroupBlocks, clusterGroupUsage, globalBitmapChainList, suballocChainList, suballocGroupBlock } from './allocators';
import { backupSuperBlknos } from './backupSuper';
import { BlockWriter, zeroRange } from './blockWriter';
import { ClusterExtent } from './clusterAllocator';
import { buildDxLeafBlock, buildDxRootBlock, encodeDirBlocks } from './directories';
import { MkfsUsageError } from './errors';
import {
  emptyFeatures, FeatureRequest, FeatureSet, featureListText, hasIncompat, parseFeatureList, resolveFeatures,
  unwritableFeatures,
} from './features';
import { computeGeometry, defaultBlockSize, Geometry } from './geometry';
import {
  chainAllocatorBlock, directoryInodeBlock, heartbeatBlock, InodeContext, journalInodeBlock, localAllocBlock,
  systemFileBlock, truncateLogBlock,
} from './inodes';
import { journalSuperblockBlock } from './journal';
import { leadingSpaceBytes } from './leadingSpace';
import { MkfsOptions, parseUuid, validateClusterOptions } from './options';
import { DirPlan, planVolume, VolumePlan } from './plan';
import { ClusterStackInfo, superblockBlock, superblockDinode, uuidHash } from './superblock';

const debug = createDebug('o2fuse:mkfs');

const MiB = 1024 * 1024;
/** Global bitmap group descriptors written per batch. */
const GROUP_BATCH = 256;
/** Progress lines at most this often. */
const PROGRESS_INTERVAL_MS = 1000;

export interface MkfsResult {
  dryRun: boolean;
  label: string;
  /** 32 upper-case hex digits, as debugfs.ocfs2 prints it. */
  uuid: string;
  fsGeneration: number;
  blockSizeBytes: number;
  clusterSizeBytes: number;
  volumeBytes: number;
  totalClusters: number;
  totalBlocks: number;
  slots: number;
  mountType: 'local' | 'cluster';
  features: FeatureSet;
  /** Feature names in mkfs.ocfs2's order ("sparse extended-slotmap ..."). */
  featureText: string;
  clusterGroups: number;
  groupClusters: number;
  tailGroupClusters: number;
  journalSizeBytes: number;
  extentAllocBytesPerSlot: number;
  firstClusterGroupBlkno: number;
  rootBlkno: number;
  systemDirBlkno: number;
  lostFoundBlkno: number;
  backupSuperBlknos: number[];
  /** Each slot's journal inode and where its clusters are. */
  journals: { slot: number; inodeBlkno: number; extents: { blkno: number; clusters: number }[] }[];
  /** Clusters the global bitmap marks used. */
  usedClusters: number;
  /** Bytes of stale data overwritten with zeros. */
  zeroedBytes: number;
}

/** The feature set, mount type and cluster stack the options ask for; refuses what cannot be written. */
export function resolveVolumeFeatures(options: MkfsOptions): { features: FeatureSet; mountType: 'local' | 'cluster'; cluster?: ClusterStackInfo } {
  let request: FeatureRequest | undefined;
  if (typeof options.features === 'string') request = parseFeatureList(options.features);
  else if (options.features) request = { set: { ...options.features.set }, clear: { ...options.features.clear } };
  if (options.noBackupSuper) {
    request ??= { set: emptyFeatures(), clear: emptyFeatures() };
    request.clear.compat |= OCFS2_FEATURE_COMPAT_BACKUP_SB;
    request.set.compat &= ~OCFS2_FEATURE_COMPAT_BACKUP_SB;
  }
  const features = resolveFeatures(options.featureLevel ?? 'default', request);
  // -M decides; without it "local" in the feature words does (o2fuse defaults to local).
  const clearedLocal = request !== undefined && (request.clear.incompat & OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT) !== 0;
  const mountType = options.mountType ?? (clearedLocal ? 'cluster' : 'local');
  if (mountType === 'local') features.incompat |= OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT;
  else features.incompat &= ~OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT;
  validateClusterOptions({ ...options, mountType });
  let cluster: ClusterStackInfo | undefined;
  if (options.clusterStack && options.clusterName) {
    cluster = { stack: options.clusterStack, name: options.clusterName, globalHeartbeat: options.globalHeartbeat === true };
    features.incompat |= OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP;
    if (!(features.incompat & OCFS2_FEATURE_INCOMPAT_CLUSTERINFO)) {
      features.incompat |= cluster.stack === 'o2cb' ? OCFS2_FEATURE_INCOMPAT_CLUSTERINFO : OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK;
    }
  } else if (features.incompat & OCFS2_FEATURE_INCOMPAT_CLUSTERINFO) {
    throw new MkfsUsageError('the clusterinfo feature needs -M cluster with --cluster-stack and --cluster-name');
  }
  features.incompat >>>= 0;
  const bad = unwritableFeatures(features);
  if (bad.length > 0) throw new MkfsUsageError(`o2fuse mkfs cannot make a volume with: ${bad.join('; ')}`);
  return { features, mountType, cluster };
}

function randomU32(random: (n: number) => Buffer): number {
  return random(4).readUInt32LE(0);
}

function newUuid(options: MkfsOptions, random: (n: number) => Buffer): Buffer {
  if (options.uuid !== undefined) {
    const u = typeof options.uuid === 'string' ? parseUuid(options.uuid) : Buffer.from(options.uuid);
    if (u.length !== 16) throw new MkfsUsageError(`bad UUID: ${u.length} bytes, need 16`);
    return u;
  }
  const u = Buffer.from(random(16));
  u[6] = (u[6] & 0x0f) | 0x40; // version 4, as uuid_generate makes
  u[8] = (u[8] & 0x3f) | 0x80;
  return u;
}

/** Clusters of `extents` as one byte range each. */
function byteRanges(g: Geometry, extents: readonly ClusterExtent[]): [number, number][] {
  return extents.map((e) => [e.startCluster * g.clusterSizeBytes, e.countClusters * g.clusterSizeBytes]);
}

/**
 * Progress lines for slow steps only: a step prints nothing during its first
 * second, then at most a line a second and a last line when it ends.
 */
class Progress {
  private step = '';
  private startedMs = 0;
  private lastMs = 0;
  constructor(private readonly out?: (line: string) => void) {}

  update(step: string, done: number, total: number, unit: 'MiB' | 'items'): void {
    if (!this.out) return;
    const now = Date.now();
    if (step !== this.step) {
      this.step = step;
      this.startedMs = now;
      this.lastMs = now;
    }
    const finished = done >= total;
    if (now - this.startedMs < PROGRESS_INTERVAL_MS) return;
    if (!finished && now - this.lastMs < PROGRESS_INTERVAL_MS) return;
    this.lastMs = now;
    const pct = Math.floor((done * 100) / Math.max(1, total));
    const amount = unit === 'MiB' ? `${Math.floor(done / MiB)} of ${Math.ceil(total / MiB)} MiB` : `${done} of ${total}`;
    this.out(`${step}: ${pct}% (${amount})${finished ? ', done' : ''}`);
  }
}

export async function formatVolume(device: Device, options: MkfsOptions = {}): Promise<MkfsResult> {
  const { features, mountType, cluster } = resolveVolumeFeatures(options);
  const volumeBytes = options.volumeSizeBytes ?? device.size;
  if (!Number.isSafeInteger(volumeBytes) || volumeBytes <= 0) throw new MkfsUsageError(`bad volume size ${volumeBytes}`);
  if (volumeBytes > device.size) {
    throw new MkfsUsageError(`volume size ${volumeBytes} is larger than ${device.name} (${device.size} bytes)`, 'ENOSPC');
  }
  if (options.blockSizeBytes !== undefined && options.blockSizeBytes < device.sectorSize) {
    throw new MkfsUsageError(
      `block size ${options.blockSizeBytes} is smaller than the sector size ${device.sectorSize} of ${device.name}`,
    );
  }
  const blockSizeBytes = options.blockSizeBytes ?? Math.max(defaultBlockSize(volumeBytes), Math.min(4096, device.sectorSize));
  const g = computeGeometry({
    volumeBytes, blockSizeBytes, clusterSizeBytes: options.clusterSizeBytes, slots: options.slots, mountType,
    fsType: options.fsType ?? 'default', journalSizeBytes: options.journalSizeBytes, journal64: options.journal64 === true,
  });
  const label = options.label ?? '';
  if (Buffer.byteLength(label, 'utf8') >= 64) throw new MkfsUsageError('volume label too long: must be less than 64 bytes');

  const random = options.randomBytes ?? cryptoRandomBytes;
  const uuid = newUuid(options, random);
  const fsGeneration = randomU32(random);
  const dxSeed: [number, number, number] = [randomU32(random), randomU32(random), randomU32(random)];
  const seed = dxSeedOf({ s_dx_seed: dxSeed, s_uuid_hash: uuidHash(uuid) });
  const plan = planVolume({ geometry: g, features, dxSeed: seed });
  const nowSeconds = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const used = plan.allocator.usedExtents();
  const usage = clusterGroupUsage(g, used);
  const bitmap = globalBitmapChainList(g, usage);

  const result: MkfsResult = {
    dryRun: options.dryRun === true, label, uuid: uuid.toString('hex').toUpperCase(), fsGeneration,
    blockSizeBytes: g.blockSizeBytes, clusterSizeBytes: g.clusterSizeBytes, volumeBytes: g.volumeBytes,
    totalClusters: g.totalClusters, totalBlocks: g.totalBlocks, slots: g.slots, mountType, features,
    featureText: featureListText(features), clusterGroups: g.clusterGroupCount, groupClusters: g.groupClusters,
    tailGroupClusters: g.tailGroupClusters, journalSizeBytes: g.journalClusters * g.clusterSizeBytes,
    extentAllocBytesPerSlot: plan.slots[0].extentAlloc.groups.length * g.suballocCpg * g.clusterSizeBytes,
    firstClusterGroupBlkno: g.firstClusterGroupBlkno, rootBlkno: plan.root.inode.blkno,
    systemDirBlkno: plan.systemDir.inode.blkno, lostFoundBlkno: plan.lostFound.inode.blkno,
    backupSuperBlknos: plan.backupSuperBlknos,
    journals: plan.slots.map((s, slot) => ({
      slot, inodeBlkno: s.journal.inode.blkno,
      extents: s.journal.extents.map((e) => ({ blkno: e.startCluster * g.blocksPerCluster, clusters: e.countClusters })),
    })),
    usedClusters: bitmap.usedClusters, zeroedBytes: 0,
  };
  debug('plan: %o', { ...result, journals: result.journals.length });
  if (options.dryRun) return result;
  if (device.readOnly) throw new MkfsUsageError(`${device.name} is read-only`, 'EROFS');

  const progress = new Progress(options.progress);
  result.zeroedBytes = await wipe(device, plan, options.deviceIsZeroed === true, progress);

  const metaEcc = hasIncompat(features, OCFS2_FEATURE_INCOMPAT_META_ECC);
  const writer = new BlockWriter(device, g.blockSizeBytes, metaEcc);
  const ctx: InodeContext = {
    geometry: g, fsGeneration, nowSeconds, suballocLoc: hasIncompat(features, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG),
  };
  const superDinode = superblockDinode({
    geometry: g, features, label, uuid, fsGeneration, nowSeconds, rootBlkno: plan.root.inode.blkno,
    systemDirBlkno: plan.systemDir.inode.blkno, dxSeed, cluster,
  });

  queueMetadata(writer, plan, ctx, { uuid, journal64: options.journal64 === true, bitmap, globalUsed: bitmap.usedClusters });
  await writer.flush();
  let groupsDone = 0;
  for (const batch of clusterGroupBlocks(g, used, plan.globalBitmap.blkno, fsGeneration, GROUP_BATCH)) {
    for (const { blkno, block } of batch) writer.put(blkno, block, CHECK_OFFSET.groupDesc);
    await writer.flush();
    groupsDone += batch.length;
    progress.update('Writing cluster group descriptors', groupsDone, g.clusterGroupCount, 'items');
  }
  await device.flush();

  writer.put(OCFS2_SUPER_BLOCK_BLKNO, superblockBlock(superDinode, OCFS2_SUPER_BLOCK_BLKNO, g.blockSizeBytes), CHECK_OFFSET.dinode);
  for (const b of plan.backupSuperBlknos) writer.put(b, superblockBlock(superDinode, b, g.blockSizeBytes), CHECK_OFFSET.dinode);
  await writer.flush();
  await device.flush();
  debug('formatted %s: %d clusters of %d bytes, %d slots', device.name, g.totalClusters, g.clusterSizeBytes, g.slots);
  return result;
}

async function wipe(device: Device, plan: VolumePlan, deviceIsZeroed: boolean, progress: Progress): Promise<number> {
  if (deviceIsZeroed) return 0;
  const g = plan.geometry;
  const ranges: { what: string; offsetBytes: number; lengthBytes: number }[] = [];
  const add = (what: string, r: [number, number][]): void => {
    for (const [offsetBytes, lengthBytes] of r) ranges.push({ what, offsetBytes, lengthBytes });
  };
  // mkfs.ocfs2's clear_both_ends: stale signatures at either end of the volume.
  const edge = Math.min(MiB, g.volumeBytes);
  add('start of volume', [[0, edge]]);
  add('end of volume', [[g.volumeBytes - edge, edge]]);
  // fsck.ocfs2 reads every block of the inode allocators' groups: an unallocated bit must not hold a
  // stale inode that looks valid. (Extent allocator groups need no wipe: a block there is only ever
  // read through a pointer, and the kernel clears each one it hands out.)
  const groups = [plan.systemGroup, ...plan.slots.map((s) => s.inodeAlloc)].flatMap((a) => a.groups);
  add('inode allocator groups', byteRanges(g, groups.map((grp) => grp.extent)));
  // A live-looking heartbeat block would be taken for a node.
  add('heartbeat', byteRanges(g, plan.heartbeat.extents));
  add('backup superblocks', plan.backupSuperBlknos.map((b) => [Math.floor(b / g.blocksPerCluster) * g.clusterSizeBytes, g.clusterSizeBytes]));
  // Without backup-super, an older volume's backups (same byte offsets whatever the block size) must
  // not survive for fsck.ocfs2 -r or tunefs.ocfs2 to find.
  if (plan.backupSuperBlknos.length === 0) {
    for (const blkno of backupSuperBlknos(g)) add('old backup superblocks', [[blkno * g.blockSizeBytes, g.blockSizeBytes]]);
  }
  // Old log blocks with plausible sequence numbers must never be replayed.
  plan.slots.forEach((s) => add(s.journal.name, byteRanges(g, s.journal.extents)));

  const total = ranges.reduce((n, r) => n + r.lengthBytes, 0);
  let done = 0;
  let written = 0;
  for (const r of ranges) {
    const before = done;
    written += await zeroRange(device, r.offsetBytes, r.lengthBytes, (d) => progress.update('Clearing old data', before + d, total, 'MiB'));
    done += r.lengthBytes;
  }
  progress.update('Clearing old data', total, total, 'MiB');
  debug('wipe: %d bytes checked, %d rewritten', total, written);
  return written;
}

interface MetadataExtras {
  uuid: Buffer;
  journal64: boolean;
  bitmap: ReturnType<typeof globalBitmapChainList>;
  globalUsed: number;
}

function queueDirectory(writer: BlockWriter, ctx: InodeContext, dir: DirPlan): void {
  const g = ctx.geometry;
  writer.put(dir.inode.blkno, directoryInodeBlock(ctx, dir), CHECK_OFFSET.dinode);
  if (dir.inline) return;
  const enc = encodeDirBlocks(dir.layout, {
    blockSizeBytes: g.blockSizeBytes, blknos: dir.blknos, dirBlkno: dir.inode.blkno, hasTrailer: dir.hasTrailer,
    indexed: dir.dx !== undefined,
  });
  enc.blocks.forEach((b, k) => writer.put(dir.blknos[k], b, dir.hasTrailer ? dirBlockCheckOffsetOf(g.blockSizeBytes) : undefined));
  if (dir.dx && dir.dxEntries) {
    const dx = dir.dx;
    const leaves = dir.dxLeaves;
    const leafBlknos = leaves ? leaves.extents.map((e) => e.startCluster * g.blocksPerCluster) : [];
    writer.put(dx.blkno, buildDxRootBlock(dir.dxEntries, leaves?.clusters, leafBlknos, {
      blockSizeBytes: g.blockSizeBytes, blkno: dx.blkno, dirBlkno: dir.inode.blkno, fsGeneration: ctx.fsGeneration,
      suballocSlot: dx.slot, suballocBit: dx.bit, suballocLoc: ctx.suballocLoc ? dx.groupBlkno : 0,
      freeListHead: enc.freeListHead,
    }), CHECK_OFFSET.dxRoot);
    leaves?.clusters.forEach((cl, k) => {
      cl.leaves.forEach((entries, i) => {
        const blkno = leafBlknos[k] + i;
        writer.put(blkno, buildDxLeafBlock(g.blockSizeBytes, blkno, ctx.fsGeneration, entries), CHECK_OFFSET.dxLeaf);
      });
    });
  }
}

function queueMetadata(writer: BlockWriter, plan: VolumePlan, ctx: InodeContext, x: MetadataExtras): void {
  const g = plan.geometry;
  const bs = g.blockSizeBytes;
  writer.putRun(0, leadingSpaceBytes(bs));

  // Suballocators and their groups.
  const allocators = [plan.systemGroup, ...plan.slots.flatMap((s) => [s.inodeAlloc, s.extentAlloc])];
  for (const a of allocators) {
    const cl = suballocChainList(a, g.chainRecsPerInode);
    writer.put(a.inode.blkno, chainAllocatorBlock(ctx, a.inode, cl.chain, {
      used: cl.used, total: cl.total, clusters: cl.clusters, sizeBytes: cl.clusters * g.clusterSizeBytes,
    }), CHECK_OFFSET.dinode);
    for (const grp of a.groups) writer.put(grp.blkno, suballocGroupBlock(bs, grp, a.inode.blkno, ctx.fsGeneration), CHECK_OFFSET.groupDesc);
  }
  // The global bitmap inode (its groups are written in batches afterwards).
  writer.put(plan.globalBitmap.blkno, chainAllocatorBlock(ctx, plan.globalBitmap, x.bitmap.chain, {
    used: x.globalUsed, total: g.totalClusters, clusters: g.totalClusters, sizeBytes: g.volumeBytes,
  }), CHECK_OFFSET.dinode);

  // Directories.
  for (const dir of [plan.root, plan.systemDir, plan.lostFound, ...plan.slots.map((s) => s.orphanDir)]) {
    queueDirectory(writer, ctx, dir);
  }

  // Global system files.
  writer.put(plan.badBlocks.blkno, systemFileBlock(ctx, plan.badBlocks, [], 0), CHECK_OFFSET.dinode);
  writer.put(plan.heartbeat.inode.blkno, heartbeatBlock(ctx, plan.heartbeat.inode, plan.heartbeat.extents, plan.heartbeat.sizeBytes), CHECK_OFFSET.dinode);
  writer.put(plan.slotMap.inode.blkno, systemFileBlock(ctx, plan.slotMap.inode, plan.slotMap.extents, plan.slotMap.sizeBytes), CHECK_OFFSET.dinode);
  // Every slot empty: extended entries are all-zero (es_valid 0); plain ones are -1 (0xffff).
  const extended = hasIncompat(plan.features, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP);
  const sm = plan.slotMap.extents[0];
  writer.putRun(sm.startCluster * g.blocksPerCluster, Buffer.alloc(sm.countClusters * g.clusterSizeBytes, extended ? 0 : 0xff));

  // Per-slot files.
  for (const s of plan.slots) {
    writer.put(s.journal.inode.blkno, journalInodeBlock(ctx, s.journal.inode, s.journal.extents), CHECK_OFFSET.dinode);
    writer.put(s.journal.extents[0].startCluster * g.blocksPerCluster, journalSuperblockBlock({
      blockSizeBytes: bs, journalBlocks: g.journalBlocks, uuid: x.uuid, journal64: x.journal64,
    }));
    writer.put(s.localAlloc.blkno, localAllocBlock(ctx, s.localAlloc), CHECK_OFFSET.dinode);
    writer.put(s.truncateLog.blkno, truncateLogBlock(ctx, s.truncateLog), CHECK_OFFSET.dinode);
  }
}
