/**
 * Finding and checking the superblock: the first thing a mount does.
 *
 * The superblock sits at block 2 of the volume's own block size, which is not
 * known until it is found, so every legal block size is probed (the kernel's
 * ocfs2_sb_probe does the same). Then the feature bits decide whether this
 * engine may mount the volume at all, read-only, or read-write.
 */
import createDebug from 'debug';
import type { Device } from '../io/device';
import {
  OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV, OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG, OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG,
  OCFS2_SUPER_BLOCK_BLKNO, OCFS2_SUPER_BLOCK_SIGNATURE, OCFS2_FEATURE_INCOMPAT_META_ECC,
  OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT, INCOMPAT_FEATURE_NAMES, RO_COMPAT_FEATURE_NAMES,
} from './format/constants';
import { decodeSuperBlockInode, type Dinode } from './format/dinode';
import { type SuperBlock, unsupportedFeatures, validateSuperBlock, labelOf, featureNames } from './format/superblock';
import { FormatError } from './format/layout';
import { FsError } from './errors';
import { verifyBlockCheck } from './format/blockcheck';
import { DINODE_CHECK_OFFSET } from './format/dinode';

export interface Geometry {
  blockSize: number;
  blockBits: number;
  clusterSize: number;
  clusterBits: number;
  /** Blocks per cluster. */
  bpc: number;
  /** Clusters on the volume (from the global bitmap, filled in at mount). */
  totalClusters: number;
}

export interface ProbedSuper {
  inode: Dinode & { super: SuperBlock };
  sb: SuperBlock;
  geometry: Geometry;
  /** i_fs_generation of the superblock inode: every metadata block of this volume carries it. */
  fsGeneration: number;
  label: string;
}

const PROBE_SIZES = [512, 1024, 2048, 4096];
/** s_feature_incompat: id2 (0xC0) + 0x20. */
const SUPER_INCOMPAT_OFFSET = 0xc0 + 0x20;
const trace = createDebug('o2fuse:fs');

/** Finds the superblock; throws FsError('EINVAL') with a message saying what was found instead. */
export async function probeSuper(device: Device): Promise<ProbedSuper> {
  const reasons: string[] = [];
  for (const bs of PROBE_SIZES) {
    const offset = OCFS2_SUPER_BLOCK_BLKNO * bs;
    if (offset + bs > device.size) {
      reasons.push(`${bs}-byte blocks: device of ${device.size} bytes too small`);
      continue;
    }
    const block = await device.read(offset, bs);
    // The block check comes first, as in the kernel: a single flipped bit anywhere (even in the signature or the
    // block size) is corrected before anything is decoded from it. The feature word is read raw to know.
    const rawIncompat = block.readUInt32LE(SUPER_INCOMPAT_OFFSET);
    let eccNote = '';
    if (rawIncompat & OCFS2_FEATURE_INCOMPAT_META_ECC) {
      const r = verifyBlockCheck(block, DINODE_CHECK_OFFSET);
      if (r === 'bad') {
        reasons.push(`${bs}-byte blocks: superblock metaecc check failed (more than one bit is wrong)`);
        continue;
      }
      if (r === 'corrected') eccNote = 'corrected';
    }
    if (block.toString('latin1', 0, OCFS2_SUPER_BLOCK_SIGNATURE.length) !== OCFS2_SUPER_BLOCK_SIGNATURE) continue;
    try {
      const inode = decodeSuperBlockInode(block, OCFS2_SUPER_BLOCK_BLKNO);
      const sb = inode.super;
      validateSuperBlock(sb, bs);
      if (eccNote) trace('superblock: a flipped bit was corrected by metaecc');
      const clusterSize = 2 ** sb.s_clustersize_bits;
      return {
        inode,
        sb,
        geometry: {
          blockSize: bs,
          blockBits: sb.s_blocksize_bits,
          clusterSize,
          clusterBits: sb.s_clustersize_bits,
          bpc: clusterSize / bs,
          totalClusters: 0,
        },
        fsGeneration: inode.i_fs_generation,
        label: labelOf(sb),
      };
    } catch (err) {
      if (err instanceof FormatError) {
        reasons.push(`${bs}-byte blocks: ${err.message}`);
        continue;
      }
      throw err;
    }
  }
  const why = reasons.length ? ` (${reasons.join('; ')})` : '';
  throw new FsError('EINVAL', `${device.name}: no OCFS2 superblock found${why}`);
}

export interface FeatureVerdict {
  /** Why the volume cannot be mounted at all (null: it can). */
  refuse: string | null;
  /** Why it can only be mounted read-only (null: read-write is fine as far as features go). */
  readOnlyBecause: string | null;
}

/**
 * The kernel's rules: an unknown incompat bit refuses the mount; an unknown
 * ro-compat bit allows read-only only. Tunefs or resize left in progress, and
 * heartbeat-only devices, refuse too. `writable` is what this engine can also
 * write correctly: a known feature outside it makes the mount read-only-only,
 * said with the feature's name, rather than risk writing a structure wrongly.
 */
export function judgeFeatures(sb: SuperBlock, writable: { incompat: number; roCompat: number }): FeatureVerdict {
  const unknown = unsupportedFeatures(sb);
  if (sb.s_feature_incompat & OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV) {
    return { refuse: 'this is a heartbeat device, not a filesystem', readOnlyBecause: null };
  }
  if (sb.s_feature_incompat & (OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG | OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG)) {
    return { refuse: 'a tunefs.ocfs2 operation or resize was left in progress; run fsck.ocfs2', readOnlyBecause: null };
  }
  if (unknown.incompat.length) {
    return { refuse: `unsupported incompat feature(s): ${unknown.incompat.join(', ')}`, readOnlyBecause: null };
  }
  if (unknown.roCompat.length) {
    return { refuse: null, readOnlyBecause: `unsupported ro-compat feature(s): ${unknown.roCompat.join(', ')}` };
  }
  const notWritable = [
    ...featureNames((sb.s_feature_incompat & ~writable.incompat) >>> 0, INCOMPAT_FEATURE_NAMES),
    ...featureNames((sb.s_feature_ro_compat & ~writable.roCompat) >>> 0, RO_COMPAT_FEATURE_NAMES),
  ];
  if (notWritable.length) {
    return { refuse: null, readOnlyBecause: `o2fuse cannot write volumes with feature(s) ${notWritable.join(', ')} yet` };
  }
  return { refuse: null, readOnlyBecause: null };
}

export function isLocalMount(sb: SuperBlock): boolean {
  return (sb.s_feature_incompat & OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT) !== 0;
}
