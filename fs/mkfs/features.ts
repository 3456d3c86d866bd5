/**
 * Feature sets for a new volume: the names mkfs.ocfs2 1.8.7 accepts in
 * --fs-features (with `no` prefixes and dependencies), the feature levels,
 * and o2fuse's own default set.
 *
 * o2fuse's default is what the engine can write, not mkfs.ocfs2's default:
 * sparse, unwritten, inline-data, extended-slotmap, backup-super,
 * strict-journal-super, append-dio and indexed-dirs. xattr, refcount,
 * discontig-bg and metaecc are written when asked for.
 */
import {
  OCFS2_FEATURE_COMPAT_BACKUP_SB, OCFS2_FEATURE_COMPAT_JBD2_SB, OCFS2_FEATURE_INCOMPAT_APPEND_DIO,
  OCFS2_FEATURE_INCOMPAT_CLUSTERINFO, OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP,
  OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_INLINE_DATA, OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT,
  OCFS2_FEATURE_INCOMPAT_META_ECC, OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE, OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC,
  OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK, OCFS2_FEATURE_INCOMPAT_XATTR, OCFS2_FEATURE_RO_COMPAT_GRPQUOTA,
  OCFS2_FEATURE_RO_COMPAT_UNWRITTEN, OCFS2_FEATURE_RO_COMPAT_USRQUOTA, OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV,
  OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG, OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG,
} from '../format/constants';
import { MkfsUsageError } from './errors';

/** The three feature words of a superblock. */
export interface FeatureSet {
  compat: number;
  incompat: number;
  roCompat: number;
}

export function emptyFeatures(): FeatureSet {
  return { compat: 0, incompat: 0, roCompat: 0 };
}

function union(a: FeatureSet, b: FeatureSet): FeatureSet {
  return { compat: (a.compat | b.compat) >>> 0, incompat: (a.incompat | b.incompat) >>> 0, roCompat: (a.roCompat | b.roCompat) >>> 0 };
}

function minus(a: FeatureSet, b: FeatureSet): FeatureSet {
  return { compat: (a.compat & ~b.compat) >>> 0, incompat: (a.incompat & ~b.incompat) >>> 0, roCompat: (a.roCompat & ~b.roCompat) >>> 0 };
}

function overlaps(a: FeatureSet, b: FeatureSet): boolean {
  return (a.compat & b.compat) !== 0 || (a.incompat & b.incompat) !== 0 || (a.roCompat & b.roCompat) !== 0;
}

const c = (compat: number): FeatureSet => ({ compat, incompat: 0, roCompat: 0 });
const i = (incompat: number): FeatureSet => ({ compat: 0, incompat, roCompat: 0 });
const r = (roCompat: number): FeatureSet => ({ compat: 0, incompat: 0, roCompat });

interface SettableFeature {
  readonly name: string;
  /** The feature's own bit. */
  readonly own: FeatureSet;
  /** Its bit plus the bits of every feature it needs (turning one of those off turns this off too). */
  readonly withDeps: FeatureSet;
}

/** What --fs-features accepts, as mkfs.ocfs2 1.8.7 does (strict-journal-super is not settable there either). */
const SETTABLE: readonly SettableFeature[] = [
  { name: 'local', own: i(OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT), withDeps: i(OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT) },
  { name: 'sparse', own: i(OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC), withDeps: i(OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC) },
  { name: 'backup-super', own: c(OCFS2_FEATURE_COMPAT_BACKUP_SB), withDeps: c(OCFS2_FEATURE_COMPAT_BACKUP_SB) },
  {
    name: 'unwritten',
    own: r(OCFS2_FEATURE_RO_COMPAT_UNWRITTEN),
    withDeps: { compat: 0, incompat: OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, roCompat: OCFS2_FEATURE_RO_COMPAT_UNWRITTEN },
  },
  { name: 'extended-slotmap', own: i(OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP), withDeps: i(OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP) },
  { name: 'inline-data', own: i(OCFS2_FEATURE_INCOMPAT_INLINE_DATA), withDeps: i(OCFS2_FEATURE_INCOMPAT_INLINE_DATA) },
  { name: 'metaecc', own: i(OCFS2_FEATURE_INCOMPAT_META_ECC), withDeps: i(OCFS2_FEATURE_INCOMPAT_META_ECC) },
  { name: 'xattr', own: i(OCFS2_FEATURE_INCOMPAT_XATTR), withDeps: i(OCFS2_FEATURE_INCOMPAT_XATTR) },
  { name: 'indexed-dirs', own: i(OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS), withDeps: i(OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS) },
  { name: 'usrquota', own: r(OCFS2_FEATURE_RO_COMPAT_USRQUOTA), withDeps: r(OCFS2_FEATURE_RO_COMPAT_USRQUOTA) },
  { name: 'grpquota', own: r(OCFS2_FEATURE_RO_COMPAT_GRPQUOTA), withDeps: r(OCFS2_FEATURE_RO_COMPAT_GRPQUOTA) },
  { name: 'refcount', own: i(OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE), withDeps: i(OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE) },
  { name: 'discontig-bg', own: i(OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG), withDeps: i(OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG) },
  { name: 'clusterinfo', own: i(OCFS2_FEATURE_INCOMPAT_CLUSTERINFO), withDeps: i(OCFS2_FEATURE_INCOMPAT_CLUSTERINFO) },
  { name: 'append-dio', own: i(OCFS2_FEATURE_INCOMPAT_APPEND_DIO), withDeps: i(OCFS2_FEATURE_INCOMPAT_APPEND_DIO) },
];

export const SETTABLE_FEATURE_NAMES: readonly string[] = SETTABLE.map((f) => f.name);

/** o2fuse's default: the features the engine writes once read-write lands. */
export const O2FUSE_DEFAULT_FEATURES: FeatureSet = {
  compat: OCFS2_FEATURE_COMPAT_BACKUP_SB | OCFS2_FEATURE_COMPAT_JBD2_SB,
  incompat:
    OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC | OCFS2_FEATURE_INCOMPAT_INLINE_DATA | OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP |
    OCFS2_FEATURE_INCOMPAT_APPEND_DIO | OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS,
  roCompat: OCFS2_FEATURE_RO_COMPAT_UNWRITTEN,
};

/** mkfs.ocfs2 1.8.7's default set (for reference and for --fs-feature-level=mkfs-default). */
export const MKFS_OCFS2_DEFAULT_FEATURES: FeatureSet = {
  compat: OCFS2_FEATURE_COMPAT_BACKUP_SB | OCFS2_FEATURE_COMPAT_JBD2_SB,
  incompat:
    OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC | OCFS2_FEATURE_INCOMPAT_INLINE_DATA | OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP |
    OCFS2_FEATURE_INCOMPAT_XATTR | OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS | OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE |
    OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG | OCFS2_FEATURE_INCOMPAT_APPEND_DIO,
  roCompat: OCFS2_FEATURE_RO_COMPAT_UNWRITTEN,
};

/** --fs-feature-level values. */
export type FeatureLevel = 'default' | 'max-compat' | 'max-features';

const LEVELS: Readonly<Record<FeatureLevel, FeatureSet>> = {
  default: O2FUSE_DEFAULT_FEATURES,
  'max-compat': c(OCFS2_FEATURE_COMPAT_BACKUP_SB | OCFS2_FEATURE_COMPAT_JBD2_SB),
  // Everything o2fuse's mkfs can write (mkfs.ocfs2's max-features adds quotas, which it cannot).
  'max-features': union(MKFS_OCFS2_DEFAULT_FEATURES, i(OCFS2_FEATURE_INCOMPAT_META_ECC)),
};

export function parseFeatureLevel(text: string): FeatureLevel {
  if (text === 'default' || text === 'max-compat' || text === 'max-features') return text;
  throw new MkfsUsageError(`bad --fs-feature-level "${text}": use default, max-compat or max-features`);
}

/** What --fs-features asked for: bits to set and bits to clear (with everything that depends on them). */
export interface FeatureRequest {
  set: FeatureSet;
  clear: FeatureSet;
}

/**
 * Parses a --fs-features list ("sparse,nounwritten,metaecc"). Names are
 * exact and lower case, separated by commas without spaces, as mkfs.ocfs2
 * takes them. `noX` clears X and every feature that needs X; asking to set
 * and clear the same feature is an error.
 */
export function parseFeatureList(text: string, into: FeatureRequest = { set: emptyFeatures(), clear: emptyFeatures() }): FeatureRequest {
  for (const raw of text.split(',')) {
    if (raw === '') continue;
    const negate = raw.startsWith('no');
    const name = negate ? raw.slice(2) : raw;
    const f = SETTABLE.find((x) => x.name === name) ?? SETTABLE.find((x) => x.name === raw);
    if (!f) {
      throw new MkfsUsageError(
        `unsupported feature "${raw}" in --fs-features (known: ${SETTABLE_FEATURE_NAMES.join(', ')}, each with an optional "no" prefix)`,
      );
    }
    if (negate && f.name === name) into.clear = union(into.clear, f.own);
    else into.set = union(into.set, f.withDeps);
  }
  // Clearing a feature clears everything that needs it (nosparse also drops unwritten).
  for (const f of SETTABLE) if (overlaps(into.clear, f.withDeps)) into.clear = union(into.clear, f.own);
  if (overlaps(into.set, into.clear)) {
    throw new MkfsUsageError(`conflicting features in --fs-features "${text}": a feature (or one it needs) is both set and cleared`);
  }
  return into;
}

/** The features a volume gets: the level's set, plus what was asked for, minus what was cleared. */
export function resolveFeatures(level: FeatureLevel, request?: FeatureRequest): FeatureSet {
  let out = { ...LEVELS[level] };
  if (request) out = minus(union(out, request.set), request.clear);
  return out;
}

/**
 * Features the mkfs can be asked for but cannot write, with the reason;
 * formatVolume refuses a set that holds any of them.
 */
export function unwritableFeatures(f: FeatureSet): string[] {
  const out: string[] = [];
  if (f.roCompat & OCFS2_FEATURE_RO_COMPAT_USRQUOTA) out.push('usrquota (quota files are not written by o2fuse mkfs)');
  if (f.roCompat & OCFS2_FEATURE_RO_COMPAT_GRPQUOTA) out.push('grpquota (quota files are not written by o2fuse mkfs)');
  const internal =
    OCFS2_FEATURE_INCOMPAT_HEARTBEAT_DEV | OCFS2_FEATURE_INCOMPAT_RESIZE_INPROG | OCFS2_FEATURE_INCOMPAT_TUNEFS_INPROG;
  if (f.incompat & internal) out.push('heartbeat-device/resize/tunefs-in-progress bits (not for a new volume)');
  return out;
}

/** Names in mkfs.ocfs2's print order ("sparse extended-slotmap backup-super ..."), for the summary line. */
const PRINT_ORDER: readonly [string, FeatureSet][] = [
  ['local', i(OCFS2_FEATURE_INCOMPAT_LOCAL_MOUNT)],
  ['sparse', i(OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC)],
  ['extended-slotmap', i(OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP)],
  ['userspace-stack', i(OCFS2_FEATURE_INCOMPAT_USERSPACE_STACK)],
  ['backup-super', c(OCFS2_FEATURE_COMPAT_BACKUP_SB)],
  ['unwritten', r(OCFS2_FEATURE_RO_COMPAT_UNWRITTEN)],
  ['inline-data', i(OCFS2_FEATURE_INCOMPAT_INLINE_DATA)],
  ['strict-journal-super', c(OCFS2_FEATURE_COMPAT_JBD2_SB)],
  ['metaecc', i(OCFS2_FEATURE_INCOMPAT_META_ECC)],
  ['xattr', i(OCFS2_FEATURE_INCOMPAT_XATTR)],
  ['indexed-dirs', i(OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS)],
  ['usrquota', r(OCFS2_FEATURE_RO_COMPAT_USRQUOTA)],
  ['grpquota', r(OCFS2_FEATURE_RO_COMPAT_GRPQUOTA)],
  ['refcount', i(OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE)],
  ['discontig-bg', i(OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG)],
  ['clusterinfo', i(OCFS2_FEATURE_INCOMPAT_CLUSTERINFO)],
  ['append-dio', i(OCFS2_FEATURE_INCOMPAT_APPEND_DIO)],
];

export function featureListText(f: FeatureSet): string {
  return PRINT_ORDER.filter(([, bits]) => overlaps(f, bits)).map(([name]) => name).join(' ');
}

export function hasIncompat(f: FeatureSet, bit: number): boolean {
  return (f.incompat & bit) !== 0;
}
export function hasCompat(f: FeatureSet, bit: number): boolean {
  return (f.compat & bit) !== 0;
}
export function hasRoCompat(f: FeatureSet, bit: number): boolean {
  return (f.roCompat & bit) !== 0;
}
