/**
 * The layout of a new volume, decided before anything is written: where
 * every system inode, allocator group, directory block, journal and backup
 * superblock goes. Pure: the result is positions and sizes; the encoders in
 * the other mkfs files turn it into blocks.
 *
 * Layout (clusters, in allocation order, after the first group descriptor):
 *   1. the system inode group of global_inode_alloc, next to the superblock
 *      as mkfs.ocfs2 puts it: root dir, system dir and every system file
 *      inode (sized, as mkfs.ocfs2 does, for at least 32 slots)
 *   2. inode_alloc:0000's first group (lost+found's inode lives there)
 *   3. directory blocks of root / system dir / orphan dirs when not inline
 *   4. heartbeat (256 blocks), slot_map (one cluster)
 *   5. lost+found's block when not inline
 *   6. each slot's extent_alloc groups (mkfs.ocfs2's ~0.1% reserve; dx roots
 *      of indexed directories come from slot 0's first group), then dx leaf
 *      clusters of directories too big for an inline index
 *   7. the journals, one per slot, split only where a cluster group's
 *      descriptor or a backup superblock sits in the way
 * Every cluster group's first cluster holds its descriptor; backups sit at
 * 1G, 4G, ... in clusters of their own.
 */
import {
  BAD_BLOCK_SYSTEM_INODE, EXTENT_ALLOC_SYSTEM_INODE, GLOBAL_BITMAP_SYSTEM_INODE, GLOBAL_INODE_ALLOC_SYSTEM_INODE,
  HEARTBEAT_SYSTEM_INODE, INODE_ALLOC_SYSTEM_INODE, JOURNAL_SYSTEM_INODE, LOCAL_ALLOC_SYSTEM_INODE,
  OCFS2_FEATURE_COMPAT_BACKUP_SB, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS, OCFS2_FEATURE_INCOMPAT_INLINE_DATA,
  OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, OCFS2_FT_DIR, OCFS2_FT_REG_FILE, ORPHAN_DIR_SYSTEM_INODE,
  OCFS2_SYSTEM_INODES, SLOT_MAP_SYSTEM_INODE, systemInodeName, TRUNCATE_LOG_SYSTEM_INODE,
} from '../format/constants';
import { extentRecsPerInode, maxInlineDataWithXattr } from '../format/dinode';
import { volumeHasDirTrailers } from '../format/dirent';
import { GROUP_DESC_BITMAP_OFFSET, groupBitmapSize } from '../format/group';
import { slotMapBytes } from '../format/slotmap';
import { backupSuperBlknos, backupSuperClusters } from './backupSuper';
import { ClusterAllocator, ClusterExtent } from './clusterAllocator';
import { DxEntry, dxEntriesPerLeaf, dxEntriesPerRoot, extentRecsPerDxRoot } from '../format/dx';
import {
  dirBlockAreaBytes, DirLayout, dirEntriesBytes, dirLinkCount, dxIndexEntries, DxLeafCluster, layoutDirEntries,
  NewDirEntry, planDxLeaves,
} from './directories';
import { MkfsUsageError } from './errors';
import { FeatureSet, hasIncompat } from './features';
import { Geometry } from './geometry';

/** i_suballoc_slot of inodes in the global inode allocator (OCFS2_INVALID_SLOT as u16). */
export const GLOBAL_SLOT = 0xffff;
/** o2hb: a heartbeat block per possible node, O2NM_MAX_NODES + 1. */
export const HEARTBEAT_BLOCKS = 256;

/** Where an inode (or a dx root) lives and which allocator bit accounts for it. */
export interface SuballocAddr {
  blkno: number;
  /** i_suballoc_slot: GLOBAL_SLOT for global_inode_alloc, else the slot. */
  slot: number;
  bit: number;
  /** The group descriptor block (i_suballoc_loc on discontig-bg volumes). */
  groupBlkno: number;
}

/** One group of a suballocator (inode_alloc, extent_alloc, global_inode_alloc). */
export interface SuballocGroupPlan {
  blkno: number;
  extent: ClusterExtent;
  /** bg_bits: blocks the group hands out (its clusters' blocks, bit 0 = the descriptor). */
  bits: number;
  /** bg_size */
  bitmapBytes: number;
  chain: number;
  /** Bits in use: 0 (descriptor) .. usedBits-1. */
  usedBits: number;
  /** bg_next_group (0 at the end of a chain). */
  nextGroup: number;
}

export interface ChainAllocatorPlan {
  inode: SuballocAddr;
  /** cl_cpg */
  cpg: number;
  /** cl_bpc */
  bpc: number;
  groups: SuballocGroupPlan[];
}

export interface DirPlan {
  name: string;
  inode: SuballocAddr;
  /** OCFS2_SYSTEM_FL (root, system dir, orphan dirs; not lost+found). */
  system: boolean;
  entries: NewDirEntry[];
  links: number;
  inline: boolean;
  /** Non-inline: the cluster run, the blocks used (i_size / block size) and their layout. */
  extent?: ClusterExtent;
  blknos: number[];
  layout: DirLayout;
  hasTrailer: boolean;
  /** Indexed: on an indexed-dirs volume every directory that is not inline (fsck.ocfs2 wants an index on each). */
  indexed: boolean;
  /** Indexed: the dx root's address (from extent_alloc:0000). */
  dx?: SuballocAddr;
  /** Indexed: every record's index entry. */
  dxEntries?: DxEntry[];
  /** Indexed, when the entries do not fit in the dx root: the leaf clusters and where they are. */
  dxLeaves?: { clusters: DxLeafCluster[]; extents: ClusterExtent[] };
}

export interface FilePlan {
  name: string;
  inode: SuballocAddr;
  extents: ClusterExtent[];
  sizeBytes: number;
}

export interface SlotPlan {
  orphanDir: DirPlan;
  extentAlloc: ChainAllocatorPlan;
  inodeAlloc: ChainAllocatorPlan;
  journal: FilePlan;
  localAlloc: SuballocAddr;
  truncateLog: SuballocAddr;
}

export interface VolumePlan {
  geometry: Geometry;
  features: FeatureSet;
  allocator: ClusterAllocator;
  backupSuperBlknos: number[];
  systemGroup: ChainAllocatorPlan;
  root: DirPlan;
  systemDir: DirPlan;
  lostFound: DirPlan;
  badBlocks: SuballocAddr;
  globalBitmap: SuballocAddr;
  heartbeat: FilePlan;
  slotMap: FilePlan;
  slots: SlotPlan[];
}

/** Inline space of a new inode with no inline xattrs. */
function inlineCapacity(g: Geometry): number {
  return maxInlineDataWithXattr(g.blockSizeBytes);
}

/** A group of `clusters` clusters with a descriptor in its first block. */
function newGroup(g: Geometry, extent: ClusterExtent, bits: number, bitmapBytes: number): SuballocGroupPlan {
  return {
    blkno: extent.startCluster * g.blocksPerCluster, extent, bits, bitmapBytes, chain: 0, usedBits: 1, nextGroup: 0,
  };
}

/** Chains: group k on chain k % count; groups sharing a chain are linked in order. */
function assignChains(groups: SuballocGroupPlan[], chainCount: number): void {
  groups.forEach((grp, k) => {
    grp.chain = k % chainCount;
    const next = groups[k + chainCount];
    grp.nextGroup = next ? next.blkno : 0;
  });
}

/** Hands out the next free bit of a group. */
function takeBit(grp: SuballocGroupPlan, slot: number): SuballocAddr {
  if (grp.usedBits >= grp.bits) throw new Error(`mkfs internal: group ${grp.blkno} is full`);
  const bit = grp.usedBits++;
  return { blkno: grp.blkno + bit, slot, bit, groupBlkno: grp.blkno };
}

export interface PlanInput {
  geometry: Geometry;
  features: FeatureSet;
  /** The 4-word dx hash seed (s_dx_seed[0..2], s_uuid_hash): indexed directories' leaf layout depends on it. */
  dxSeed: readonly number[];
}

export function planVolume({ geometry: g, features, dxSeed }: PlanInput): VolumePlan {
  const withBackups = (features.compat & OCFS2_FEATURE_COMPAT_BACKUP_SB) !== 0;
  const backups = withBackups ? backupSuperBlknos(g) : [];
  const allocator = new ClusterAllocator(g, withBackups ? backupSuperClusters(g) : []);
  const inlineData = hasIncompat(features, OCFS2_FEATURE_INCOMPAT_INLINE_DATA);
  const indexed = hasIncompat(features, OCFS2_FEATURE_INCOMPAT_INDEXED_DIRS);
  const hasTrailer = volumeHasDirTrailers(features.incompat);
  const bpc = g.blocksPerCluster;
  const slots = g.slots;

  // 1. The system inode group. mkfs.ocfs2 sizes it for the system files of at
  // least 32 slots (room for tunefs to add slots) and uses a full-block bitmap.
  const globalTypes = [BAD_BLOCK_SYSTEM_INODE, GLOBAL_INODE_ALLOC_SYSTEM_INODE, SLOT_MAP_SYSTEM_INODE, HEARTBEAT_SYSTEM_INODE,
    GLOBAL_BITMAP_SYSTEM_INODE];
  const localTypes = [ORPHAN_DIR_SYSTEM_INODE, EXTENT_ALLOC_SYSTEM_INODE, INODE_ALLOC_SYSTEM_INODE, JOURNAL_SYSTEM_INODE,
    LOCAL_ALLOC_SYSTEM_INODE, TRUNCATE_LOG_SYSTEM_INODE];
  const neededBits = 1 + 2 + globalTypes.length + localTypes.length * slots;
  const mkfsBlocks = 4 + 7 + 8 * Math.max(32, slots);
  const capacityBits = (g.blockSizeBytes - GROUP_DESC_BITMAP_OFFSET) * 8;
  const sysClusters = Math.min(Math.ceil(mkfsBlocks / bpc), Math.floor(capacityBits / bpc));
  if (sysClusters * bpc < neededBits) {
    throw new MkfsUsageError(`${slots} slots need ${neededBits} system inodes, more than one system group holds with this geometry`);
  }
  const sysExtent = allocator.allocContiguous(sysClusters, 'the system inode group');
  const sysGroup = newGroup(g, sysExtent, sysClusters * bpc, g.blockSizeBytes - GROUP_DESC_BITMAP_OFFSET);
  const rootAddr = takeBit(sysGroup, GLOBAL_SLOT);
  const sysdirAddr = takeBit(sysGroup, GLOBAL_SLOT);
  const globalAddr = new Map<number, SuballocAddr>();
  for (const t of globalTypes) globalAddr.set(t, takeBit(sysGroup, GLOBAL_SLOT));
  const localAddr = new Map<number, SuballocAddr[]>();
  for (const t of localTypes) {
    const arr: SuballocAddr[] = [];
    for (let s = 0; s < slots; s++) arr.push(takeBit(sysGroup, GLOBAL_SLOT));
    localAddr.set(t, arr);
  }
  const systemGroup: ChainAllocatorPlan = {
    inode: globalAddr.get(GLOBAL_INODE_ALLOC_SYSTEM_INODE) as SuballocAddr, cpg: sysClusters, bpc, groups: [sysGroup],
  };

  const sysEntries: NewDirEntry[] = [
    { name: '.', inode: sysdirAddr.blkno, fileType: OCFS2_FT_DIR },
    { name: '..', inode: sysdirAddr.blkno, fileType: OCFS2_FT_DIR },
  ];
  for (const t of globalTypes) sysEntries.push({ name: systemInodeName(t), inode: (globalAddr.get(t) as SuballocAddr).blkno, fileType: OCFS2_FT_REG_FILE });
  for (const t of localTypes) {
    const isDir = (OCFS2_SYSTEM_INODES[t].si_mode & 0o170000) === 0o040000;
    (localAddr.get(t) as SuballocAddr[]).forEach((a, s) =>
      sysEntries.push({ name: systemInodeName(t, s), inode: a.blkno, fileType: isDir ? OCFS2_FT_DIR : OCFS2_FT_REG_FILE }),
    );
  }

  // inode_alloc:0000's first group is made before lost+found needs it; its address is known now.
  const areaBytes = dirBlockAreaBytes(g.blockSizeBytes, hasTrailer);
  const makeDir = (name: string, inode: SuballocAddr, entries: NewDirEntry[], system: boolean): DirPlan => {
    const inline = inlineData && dirEntriesBytes(entries) <= inlineCapacity(g);
    const dir: DirPlan = {
      name, inode, system, entries, links: dirLinkCount(entries), inline, blknos: [], layout: [],
      hasTrailer: !inline && hasTrailer, indexed: false,
    };
    if (inline) {
      dir.layout = layoutDirEntries(entries, inlineCapacity(g));
    } else {
      dir.layout = layoutDirEntries(entries, areaBytes);
      const blocks = dir.layout.length;
      dir.extent = allocator.allocContiguous(Math.ceil(blocks / bpc), `directory ${name}`);
      const first = dir.extent.startCluster * bpc;
      dir.blknos = Array.from({ length: blocks }, (_, k) => first + k);
      dir.indexed = indexed;
    }
    return dir;
  };

  // 2. Directory blocks. lost+found's inode number is needed for root's entries: reserve its group first
  // (cluster order then puts inode_alloc:0000's group before the directory blocks, which is fine).
  const inodeAllocCpg = g.suballocCpg;
  const suballocBitmapBytes = groupBitmapSize(g.blockSizeBytes, true, features.incompat);
  const inodeGroup0 = newGroup(g, allocator.allocContiguous(inodeAllocCpg, 'inode_alloc:0000'), g.suballocBitsPerGroup, suballocBitmapBytes);
  const lostFoundAddr = takeBit(inodeGroup0, 0);

  const root = makeDir('/', rootAddr, [
    { name: '.', inode: rootAddr.blkno, fileType: OCFS2_FT_DIR },
    { name: '..', inode: rootAddr.blkno, fileType: OCFS2_FT_DIR },
    { name: 'lost+found', inode: lostFoundAddr.blkno, fileType: OCFS2_FT_DIR },
  ], true);
  // mkfs.ocfs2 leaves the system directory unindexed, and fsck.ocfs2 then reports DX_TREE_MISSING for it;
  // o2fuse indexes every directory that is not inline on an indexed-dirs volume.
  const systemDir = makeDir('//', sysdirAddr, sysEntries, true);
  const orphanDirs = (localAddr.get(ORPHAN_DIR_SYSTEM_INODE) as SuballocAddr[]).map((a, s) =>
    makeDir(`//${systemInodeName(ORPHAN_DIR_SYSTEM_INODE, s)}`, a, [
      { name: '.', inode: a.blkno, fileType: OCFS2_FT_DIR },
      { name: '..', inode: sysdirAddr.blkno, fileType: OCFS2_FT_DIR },
    ], true),
  );

  // 3. heartbeat and slot map.
  const hbBytes = HEARTBEAT_BLOCKS * g.blockSizeBytes;
  const heartbeat: FilePlan = {
    name: 'heartbeat', inode: globalAddr.get(HEARTBEAT_SYSTEM_INODE) as SuballocAddr,
    extents: [allocator.allocContiguous(Math.ceil(hbBytes / g.clusterSizeBytes), 'heartbeat')], sizeBytes: hbBytes,
  };
  const smBytes = slotMapBytes(slots, hasIncompat(features, OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP));
  const smClusters = Math.ceil(smBytes / g.clusterSizeBytes);
  // The slot map's i_size covers its whole allocation (ocfs2_format_slot_map).
  const slotMap: FilePlan = {
    name: 'slot_map', inode: globalAddr.get(SLOT_MAP_SYSTEM_INODE) as SuballocAddr,
    extents: [allocator.allocContiguous(smClusters, 'slot_map')], sizeBytes: smClusters * g.clusterSizeBytes,
  };

  // 4. lost+found.
  const lostFound = makeDir('/lost+found', lostFoundAddr, [
    { name: '.', inode: lostFoundAddr.blkno, fileType: OCFS2_FT_DIR },
    { name: '..', inode: rootAddr.blkno, fileType: OCFS2_FT_DIR },
  ], false);

  // 5. Extent allocators; slot 0 gets a group anyway when dx roots need one.
  const extentGroupsPerSlot = g.extentAllocClustersPerSlot / g.suballocCpg;
  const indexedDirs = [root, systemDir, ...orphanDirs, lostFound].filter((d) => d.indexed);
  const extentAllocs: ChainAllocatorPlan[] = [];
  for (let s = 0; s < slots; s++) {
    const count = s === 0 && indexedDirs.length > 0 ? Math.max(1, extentGroupsPerSlot) : extentGroupsPerSlot;
    const groups: SuballocGroupPlan[] = [];
    for (let k = 0; k < count; k++) {
      groups.push(newGroup(g, allocator.allocContiguous(g.suballocCpg, `extent_alloc:${String(s).padStart(4, '0')}`),
        g.suballocBitsPerGroup, suballocBitmapBytes));
    }
    assignChains(groups, g.chainRecsPerInode);
    extentAllocs.push({
      inode: (localAddr.get(EXTENT_ALLOC_SYSTEM_INODE) as SuballocAddr[])[s], cpg: g.suballocCpg, bpc, groups,
    });
  }
  for (const d of indexedDirs) {
    d.dx = takeBit(extentAllocs[0].groups[0], 0);
    d.dxEntries = dxIndexEntries(d.layout, d.blknos, dxSeed);
    if (d.dxEntries.length > dxEntriesPerRoot(g.blockSizeBytes)) {
      const clusters = planDxLeaves(d.dxEntries, bpc, dxEntriesPerLeaf(g.blockSizeBytes), extentRecsPerDxRoot(g.blockSizeBytes));
      d.dxLeaves = { clusters, extents: clusters.map(() => allocator.allocContiguous(1, `dx leaves of ${d.name}`)) };
    }
  }

  // 6. Journals.
  const maxExtents = extentRecsPerInode(g.blockSizeBytes);
  const journals: FilePlan[] = [];
  for (let s = 0; s < slots; s++) {
    const name = systemInodeName(JOURNAL_SYSTEM_INODE, s);
    journals.push({
      name, inode: (localAddr.get(JOURNAL_SYSTEM_INODE) as SuballocAddr[])[s],
      extents: allocator.allocExtents(g.journalClusters, maxExtents, name), sizeBytes: g.journalClusters * g.clusterSizeBytes,
    });
  }

  const slotPlans: SlotPlan[] = [];
  for (let s = 0; s < slots; s++) {
    const inodeAlloc: ChainAllocatorPlan = {
      inode: (localAddr.get(INODE_ALLOC_SYSTEM_INODE) as SuballocAddr[])[s], cpg: g.suballocCpg, bpc,
      groups: s === 0 ? [inodeGroup0] : [],
    };
    slotPlans.push({
      orphanDir: orphanDirs[s], extentAlloc: extentAllocs[s], inodeAlloc, journal: journals[s],
      localAlloc: (localAddr.get(LOCAL_ALLOC_SYSTEM_INODE) as SuballocAddr[])[s],
      truncateLog: (localAddr.get(TRUNCATE_LOG_SYSTEM_INODE) as SuballocAddr[])[s],
    });
  }
  return {
    geometry: g, features, allocator, backupSuperBlknos: backups, systemGroup, root, systemDir, lostFound,
    badBlocks: globalAddr.get(BAD_BLOCK_SYSTEM_INODE) as SuballocAddr,
    globalBitmap: globalAddr.get(GLOBAL_BITMAP_SYSTEM_INODE) as SuballocAddr,
    heartbeat, slotMap, slots: slotPlans,
  };
}
