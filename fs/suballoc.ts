/**
 * Chain allocators: the global bitmap (bits are clusters) and the per-slot
 * inode_alloc / extent_alloc suballocators (bits are blocks), as OCFS2 lays
 * them out: an allocator inode whose id2 chain list heads linked lists of
 * group descriptors, each descriptor owning a bitmap.
 *
 * Invariants kept on every change (fsck.ocfs2 checks each): a group's
 * bg_free_bits_count equals its bitmap's zero bits; a chain record's c_free /
 * c_total equal the sums over its groups; the allocator inode's i_used /
 * i_total equal the sums over its chains.
 *
 * The in-memory group list is a search hint only; the bitmap inside the
 * transaction is the authority when claiming. All calls run under the
 * volume's metadata lock.
 */
import createDebug from 'debug';
import type { VolumeContext } from './context';
import type { Allocator, ClusterRun, MetaBlockClaim } from './allocApi';
import type { Transaction } from './transaction';
import type { Inode } from './inode';
import { readGroupDesc } from './blocks';
import { encodeGroupDesc, emptyGroupDesc, groupBitmapSize, testBit, setBit, setBits, clearBit, groupIsDiscontig,
  GROUP_DESC, GROUP_DESC_BITMAP_OFFSET, type GroupDesc } from './format/group';
import { editInode } from './transaction';
import { FsError } from './errors';
import {
  EXTENT_ALLOC_SYSTEM_INODE, GLOBAL_BITMAP_SYSTEM_INODE, GLOBAL_INODE_ALLOC_SYSTEM_INODE, INODE_ALLOC_SYSTEM_INODE,
  systemInodeName,
} from './format/constants';

const trace = createDebug('o2fuse:alloc');

/** Groups in one chain we will follow before calling the chain corrupt. */
const MAX_GROUPS_PER_CHAIN = 1 << 20;
/** The u16 slot number that means "the global allocator" (OCFS2_INVALID_SLOT as stored). */
const GLOBAL_SLOT = 0xffff;

interface GroupInfo {
  blkno: number;
  chain: number;
  bits: number;
  free: number;
  /** Global bitmap: cluster of bit 0. Suballocators: block of bit 0 (contiguous groups). */
  base: number;
  discontig?: boolean;
  /**
   * Every bit below this one is set in the committed bitmap: a search for a
   * run from bit 0 starts here. A create claimed the first free inode bit by
   * walking the group's bitmap from its start, past every inode already
   * allocated (~2-4 us in a directory of a few thousand files).
   */
  setBelow: number;
}

export interface AllocatorHost extends VolumeContext {
  iget(ino: number): Promise<Inode>;
  systemFile(name: string): number;
}

/**
 * Group descriptor buffers known to be valid: validated as they came in from
 * the device, or committed by this module. Every claim and free touches a
 * group; readGroupDesc decodes the whole descriptor on each call, cached or
 * not, so claims and frees work on the raw bytes of trusted buffers instead
 * (bitmap at GROUP_DESC_BITMAP_OFFSET, bg_bits and bg_free_bits_count in place).
 */
const trustedGroups = new WeakSet<Buffer>();
const BG_BITS = GROUP_DESC.bg_bits[0];
const BG_FREE = GROUP_DESC.bg_free_bits_count[0];
const BG_SIZE = GROUP_DESC.bg_size[0];

function rawBitmap(buf: Buffer): Buffer {
  return buf.subarray(GROUP_DESC_BITMAP_OFFSET, GROUP_DESC_BITMAP_OFFSET + buf.readUInt16LE(BG_SIZE));
}

/** One chain allocator (an allocator inode and its groups). */
class ChainAllocator {
  private groups: GroupInfo[] | null = null;

  constructor(private readonly host: AllocatorHost, readonly ino: number, readonly clusterBitmap: boolean, readonly name: string) {}

  private groupBase(gd: GroupDesc): number {
    if (!this.clusterBitmap) return gd.bg_blkno;
    return gd.bg_blkno === this.host.sb.s_first_cluster_group ? 0 : gd.bg_blkno / this.host.geo.bpc;
  }

  async load(): Promise<GroupInfo[]> {
    if (this.groups) return this.groups;
    const inode = await this.host.iget(this.ino);
    const chain = inode.di.chain;
    if (!chain) throw new FsError('EIO', `${this.name}: inode ${this.ino} has no chain list`);
    const groups: GroupInfo[] = [];
    const seen = new Set<number>();
    for (let c = 0; c < chain.cl_next_free_rec; c++) {
      let blkno = chain.cl_recs[c].c_blkno;
      let n = 0;
      while (blkno !== 0) {
        if (seen.has(blkno)) throw new FsError('EIO', `${this.name}: group ${blkno} appears twice in the chains (loop)`);
        if (++n > MAX_GROUPS_PER_CHAIN) throw new FsError('EIO', `${this.name}: chain ${c} too long`);
        seen.add(blkno);
        const { gd } = await readGroupDesc(this.host, blkno, this.ino);
        if (gd.bg_chain !== c) throw new FsError('EIO', `${this.name}: group ${blkno} says chain ${gd.bg_chain}, found in chain ${c}`);
        // Discontiguous groups (made by the kernel on fragmented volumes) map bits through bg_list; this
        // allocator only claims from contiguous groups, so it records them with no free bits to offer.
        const discontig = groupIsDiscontig(gd);
        if (discontig) trace('%s: group %d is discontiguous: used for frees only', this.name, blkno);
        groups.push({ blkno, chain: c, bits: gd.bg_bits, free: discontig ? 0 : gd.bg_free_bits_count, base: this.groupBase(gd), discontig, setBelow: 0 });
        blkno = gd.bg_next_group;
      }
    }
    this.groups = groups;
    return groups;
  }

  /** The validated bytes of a group descriptor (the cached copy; do not modify). */
  private async groupBytes(blkno: number): Promise<Buffer> {
    const cached = await this.host.cache.read(blkno, 'group descriptor');
    if (trustedGroups.has(cached)) return cached;
    const { block } = await readGroupDesc(this.host, blkno, this.ino);
    trustedGroups.add(block);
    return block;
  }

  /** A group descriptor of `tx` for modification; what it commits becomes the cached copy, trusted. */
  private async txGroup(tx: Transaction, blkno: number, phase: 'alloc' | 'free'): Promise<Buffer> {
    if (!tx.has(blkno)) await this.groupBytes(blkno);
    const buf = await tx.block(blkno, 'group descriptor', phase);
    tx.onCommit(() => trustedGroups.add(buf));
    return buf;
  }

  /** Changes bits of one group inside `tx`, keeping group, chain and inode counts in step. */
  private async changeBits(tx: Transaction, g: GroupInfo, bit: number, count: number, set: boolean): Promise<void> {
    const buf = await this.txGroup(tx, g.blkno, set ? 'alloc' : 'free');
    const bitmap = rawBitmap(buf);
    if (bit < 0 || bit + count > buf.readUInt16LE(BG_BITS)) {
      throw new FsError('EIO', `${this.name}: bits ${bit}+${count} outside group ${g.blkno}`);
    }
    for (let i = bit; i < bit + count; i++) {
      if (testBit(bitmap, i) === set) {
        throw new FsError('EIO', `${this.name}: bit ${i} of group ${g.blkno} is already ${set ? 'set' : 'clear'}`);
      }
      if (set) setBit(bitmap, i);
      else clearBit(bitmap, i);
    }
    const delta = set ? -count : count;
    buf.writeUInt16LE(buf.readUInt16LE(BG_FREE) + delta, BG_FREE);
    const inode = await this.host.iget(this.ino);
    const di = await editInode(tx, inode);
    di.chain!.cl_recs[g.chain].c_free += delta;
    di.i_used -= delta;
    tx.onCommit(() => {
      g.free += delta;
      if (!set) g.setBelow = Math.min(g.setBelow, bit);
    });
  }

  /** First run of >= min free bits (up to max) in a group's bitmap at or after `from`; null if none. */
  private static findRun(map: Buffer, bits: number, from: number, min: number, max: number): { bit: number; count: number } | null {
    let i = from;
    while (i < bits) {
      if ((i & 7) === 0 && map[i >>> 3] === 0xff) {
        i += 8;
        continue;
      }
      if (testBit(map, i)) {
        i++;
        continue;
      }
      let j = i;
      while (j < bits && j - i < max && !testBit(map, j)) j++;
      if (j - i >= min) return { bit: i, count: j - i };
      i = j;
    }
    return null;
  }

  /**
   * The bitmap the search may use: clusters freed by journal transactions
   * that have not committed yet count as used (a crash before that commit
   * would give them back to their old owner).
   */
  private allocatableMap(map: Buffer, g: GroupInfo): Buffer {
    const journal = this.host.journal;
    if (!this.clusterBitmap || !journal?.hasPendingFrees) return map;
    const pending = journal.pendingFrees(g.base, g.base + g.bits);
    if (!pending.length) return map;
    const masked = Buffer.from(map);
    for (const r of pending) {
      const from = Math.max(r.cluster, g.base) - g.base;
      const to = Math.min(r.cluster + r.count, g.base + g.bits) - g.base;
      // Bytewise: after a large file is deleted, every claim until the journal commits masks its clusters.
      if (to > from) setBits(masked, from, to);
    }
    return masked;
  }

  /** Claims a run within one group, searching groups from the one holding `goal`. */
  async claim(tx: Transaction, min: number, max: number, goal = 0): Promise<{ g: GroupInfo; bit: number; count: number } | null> {
    const groups = await this.load();
    if (!groups.length) return null;
    let start = groups.findIndex((g) => goal >= g.base && goal < g.base + g.bits);
    if (start < 0) start = 0;
    for (let k = 0; k < groups.length; k++) {
      const g = groups[(start + k) % groups.length];
      if (g.discontig || (g.free < min && !tx.has(g.blkno))) continue;
      // Scan the transaction's copy if this change already touched the group, else the cached one.
      const buf = tx.has(g.blkno) ? await this.txGroup(tx, g.blkno, 'alloc') : await this.groupBytes(g.blkno);
      if (buf.readUInt16LE(BG_FREE) < min) continue;
      const bits = buf.readUInt16LE(BG_BITS);
      const raw = rawBitmap(buf);
      const map = this.allocatableMap(raw, g);
      const mark = g.setBelow;
      const from = Math.max(k === 0 && goal > g.base ? goal - g.base : 0, mark);
      let run = ChainAllocator.findRun(map, bits, from, min, max);
      let searchedFromMark = from === mark;
      if (!run && from > mark) {
        run = ChainAllocator.findRun(map, bits, mark, min, max);
        searchedFromMark = true;
      }
      if (!run) continue;
      await this.changeBits(tx, g, run.bit, run.count, true);
      // The first clear bit from the mark on was this run's: with it, every bit below its end is set. Not when the
      // search wanted a longer run (it passes shorter holes) or read a map with uncommitted frees masked as set
      // (they come free later, below the new mark); nor if the mark moved before this commits.
      if (min === 1 && searchedFromMark && map === raw) {
        const end = run.bit + run.count;
        tx.onCommit(() => {
          if (g.setBelow === mark) g.setBelow = end;
        });
      }
      return { g, ...run };
    }
    return null;
  }

  async free(tx: Transaction, groupBlkno: number, bit: number, count: number): Promise<void> {
    const groups = await this.load();
    const g = groups.find((x) => x.blkno === groupBlkno);
    if (!g) throw new FsError('EIO', `${this.name}: no group at block ${groupBlkno}`);
    if (bit < 0 || bit + count > g.bits) throw new FsError('EIO', `${this.name}: bits ${bit}+${count} outside group ${groupBlkno}`);
    await this.changeBits(tx, g, bit, count, false);
  }

  /** Global bitmap: the group holding cluster `cluster`. */
  async groupOfCluster(cluster: number): Promise<GroupInfo> {
    const groups = await this.load();
    const g = groups.find((x) => cluster >= x.base && cluster < x.base + x.bits);
    if (!g) throw new FsError('EIO', `${this.name}: cluster ${cluster} is in no group`);
    return g;
  }

  /**
   * Adds a new group to a suballocator: cl_cpg clusters from the global
   * bitmap, descriptor in the first block (its own bit set), linked at the
   * head of the chain with the fewest bits (ocfs2_block_group_alloc).
   */
  async grow(tx: Transaction, global: ChainAllocator): Promise<GroupInfo> {
    const { geo, sb, fsGeneration } = this.host;
    const inode = await this.host.iget(this.ino);
    const di = await editInode(tx, inode);
    const cl = di.chain!;
    const cpg = cl.cl_cpg;
    const got = await global.claim(tx, cpg, cpg);
    if (!got) throw new FsError('ENOSPC', `${this.name}: no ${cpg} contiguous free clusters for a new group`);
    const cluster = got.g.base + got.bit;
    const blkno = cluster * geo.bpc;
    // The chain with the fewest bits (ocfs2_find_smallest_chain), over all cl_count records: an unused one
    // (decoded lists leave zeroed records out, see ChainList) counts as empty.
    const totalOf = (c: number) => cl.cl_recs[c]?.c_total ?? 0;
    let chain = 0;
    for (let c = 0; c < cl.cl_count; c++) if (totalOf(c) < totalOf(chain)) chain = c;
    for (let c = cl.cl_recs.length; c <= chain; c++) cl.cl_recs[c] = { c_free: 0, c_total: 0, c_blkno: 0 };
    const bits = cpg * geo.bpc;
    const gd = emptyGroupDesc(geo.blockSize, groupBitmapSize(geo.blockSize, true, sb.s_feature_incompat));
    if (bits > gd.bg_size * 8) throw new FsError('EIO', `${this.name}: ${bits} bits per group exceed the bitmap`);
    gd.bg_bits = bits;
    gd.bg_chain = chain;
    gd.bg_generation = fsGeneration;
    gd.bg_parent_dinode = this.ino;
    gd.bg_blkno = blkno;
    gd.bg_next_group = cl.cl_recs[chain].c_blkno;
    setBit(gd.bg_bitmap, 0);
    gd.bg_free_bits_count = bits - 1;
    const gdBuf = tx.newBlock(blkno, 'group descriptor');
    encodeGroupDesc(gd, gdBuf);
    tx.onCommit(() => trustedGroups.add(gdBuf));
    const rec = cl.cl_recs[chain];
    rec.c_blkno = blkno;
    rec.c_total += bits;
    rec.c_free += bits - 1;
    if (chain === cl.cl_next_free_rec) cl.cl_next_free_rec++;
    di.i_used += 1;
    di.i_total += bits;
    di.i_clusters += cpg;
    di.i_size = di.i_clusters * geo.clusterSize;
    const info: GroupInfo = { blkno, chain, bits, free: bits - 1, base: blkno, setBelow: 0 };
    tx.onCommit(() => this.groups?.push(info));
    trace('%s: new group at block %d (chain %d, %d bits)', this.name, blkno, chain, bits);
    return info;
  }

  /** Claims one bit from a suballocator, growing it when full. */
  async claimOne(tx: Transaction, global: ChainAllocator): Promise<{ g: GroupInfo; bit: number }> {
    const got = await this.claim(tx, 1, 1);
    if (got) return got;
    const g = await this.grow(tx, global);
    await this.changeBits(tx, g, 1, 1, true);
    return { g, bit: 1 };
  }
}

/** The allocators of a read-write mount. */
export class Allocators implements Allocator {
  private readonly global: ChainAllocator;
  private readonly byName = new Map<string, ChainAllocator>();

  constructor(private readonly host: AllocatorHost) {
    this.global = this.get(systemInodeName(GLOBAL_BITMAP_SYSTEM_INODE), true);
  }

  private get(name: string, clusterBitmap = false): ChainAllocator {
    let a = this.byName.get(name);
    if (!a) {
      a = new ChainAllocator(this.host, this.host.systemFile(name), clusterBitmap, name);
      this.byName.set(name, a);
    }
    return a;
  }

  private suballocator(kind: 'inode' | 'extent', slot: number): ChainAllocator {
    if (slot === GLOBAL_SLOT) {
      if (kind !== 'inode') throw new FsError('EIO', 'extent block owned by the global slot');
      return this.get(systemInodeName(GLOBAL_INODE_ALLOC_SYSTEM_INODE));
    }
    if (slot >= this.host.sb.s_max_slots) throw new FsError('EIO', `suballocator slot ${slot} out of range`);
    return this.get(systemInodeName(kind === 'inode' ? INODE_ALLOC_SYSTEM_INODE : EXTENT_ALLOC_SYSTEM_INODE, slot));
  }

  async claimClusters(tx: Transaction, minCount: number, maxCount: number, goalCluster = 0): Promise<ClusterRun> {
    if (minCount < 1 || maxCount < minCount) throw new RangeError(`claimClusters(${minCount}, ${maxCount})`);
    let got = await this.global.claim(tx, minCount, maxCount, goalCluster);
    const journal = this.host.journal;
    if (!got && journal?.hasPendingFrees) {
      // Clusters freed but not yet committed may be what is missing: commit, then they are free for good.
      trace('no run of %d free clusters: committing the journal for its freed clusters', minCount);
      await journal.commit();
      got = await this.global.claim(tx, minCount, maxCount, goalCluster);
    }
    if (!got) throw new FsError('ENOSPC', `no run of ${minCount} free clusters`);
    trace('clusters %d+%d claimed', got.g.base + got.bit, got.count);
    return { cluster: got.g.base + got.bit, count: got.count };
  }

  async freeClusters(tx: Transaction, run: ClusterRun): Promise<void> {
    let cluster = run.cluster;
    let left = run.count;
    while (left > 0) {
      const g = await this.global.groupOfCluster(cluster);
      const n = Math.min(left, g.base + g.bits - cluster);
      await this.global.free(tx, g.blkno, cluster - g.base, n);
      tx.freedClusters(cluster, n);
      cluster += n;
      left -= n;
    }
    trace('clusters %d+%d freed', run.cluster, run.count);
  }

  async claimMetaBlock(tx: Transaction, kind: 'inode' | 'extent'): Promise<MetaBlockClaim> {
    const sub = this.suballocator(kind, this.host.slot);
    const { g, bit } = await sub.claimOne(tx, this.global);
    const blkno = g.base + bit;
    return { blkno, slot: this.host.slot, bit, groupBlkno: this.host.features.discontigBg ? g.blkno : 0 };
  }

  async freeMetaBlock(tx: Transaction, kind: 'inode' | 'extent', owner: { blkno: number; slot: number; bit: number; loc: number }): Promise<void> {
    const sub = this.suballocator(kind, owner.slot);
    const groupBlkno = owner.loc || owner.blkno - owner.bit;
    await sub.free(tx, groupBlkno, owner.bit, 1);
  }

  async freeClusterCount(): Promise<number> {
    const inode = await this.host.iget(this.global.ino);
    return inode.di.i_total - inode.di.i_used;
  }
}
