/**
 * What every engine module needs from a mounted volume, as one object, so the
 * modules (extent maps, directories, allocators) are functions of the volume
 * and not of each other.
 */
import type { Device } from '../io/device';
import type { BlockCache } from '../cache/blockCache';
import type { SuperBlock } from './format/superblock';
import type { Geometry } from './super';
import type { Allocator } from './allocApi';
import type { Journal } from './journal/journal';
import { OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_INLINE_DATA,
  OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, OCFS2_FEATURE_RO_COMPAT_UNWRITTEN, OCFS2_FEATURE_INCOMPAT_XATTR,
  OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, OCFS2_FEATURE_INCOMPAT_APPEND_DIO,
} from './format/constants';

export interface Features {
  metaEcc: boolean;
  indexedDirs: boolean;
  inlineData: boolean;
  sparse: boolean;
  unwritten: boolean;
  xattr: boolean;
  discontigBg: boolean;
  extendedSlotMap: boolean;
  appendDio: boolean;
  /** Directory blocks end in a trailer (ocfs2_supports_dir_trailer). */
  dirTrailers: boolean;
}

export function featuresOf(sb: SuperBlock): Features {
  const inc = sb.s_feature_incompat;
  const has = (bit: number) => (inc & bit) !== 0;
  return {
    metaEcc: has(OCFS2_FEATURE_INCOMPAT_META_ECC),
    indexedDirs: has(OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS),
    inlineData: has(OCFS2_FEATURE_INCOMPAT_INLINE_DATA),
    sparse: has(OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC),
    unwritten: (sb.s_feature_ro_compat & OCFS2_FEATURE_RO_COMPAT_UNWRITTEN) !== 0,
    xattr: has(OCFS2_FEATURE_INCOMPAT_XATTR),
    discontigBg: has(OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG),
    extendedSlotMap: has(OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP),
    appendDio: has(OCFS2_FEATURE_INCOMPAT_APPEND_DIO),
    dirTrailers: has(OCFS2_FEATURE_INCOMPAT_META_ECC) || has(OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS),
  };
}

/** How the dx hash reads a name's bytes: as x86 kernels before 6.2 and ocfs2-tools do, or as kernels since. */
export type DxHashChars = 'signed' | 'unsigned';

export interface VolumeContext {
  readonly device: Device;
  readonly cache: BlockCache;
  readonly geo: Geometry;
  readonly sb: SuperBlock;
  readonly features: Features;
  /** i_fs_generation of the superblock; every metadata block of the volume carries it. */
  readonly fsGeneration: number;
  /** The slot this mount uses (0 for local mounts). */
  readonly slot: number;
  /** Cluster and metadata-block allocation (read-write mounts only; throws EROFS otherwise). */
  readonly alloc: Allocator;
  /** A new generation number for a new inode (i_generation). */
  nextGeneration(): number;
  /**
   * The mounting slot's journal on a read-write mount once it is open:
   * transactions commit into it. Absent (or null) means commits write home
   * directly, in crash-sensible order (read-only mounts, tools).
   */
  readonly journal?: Journal | null;
  /**
   * How lookups in indexed directories find names (fs/dir.ts): 'auto'
   * (default) through the name map, or through the dx index for a large
   * directory without one; 'index' always through the index (tests).
   */
  readonly dirLookups?: 'auto' | 'index';
  /**
   * How the indexed-directory hash reads name bytes for the names this mount
   * adds (fs/dxIndex.ts dxHashOf): 'signed' (default) as ocfs2-tools and
   * x86 kernels before 6.2 do, 'unsigned' as kernels built with
   * -funsigned-char (6.2 on) do. Lookups and removals try both.
   */
  readonly dxHashChars?: DxHashChars;
}
