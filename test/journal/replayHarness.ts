/**
 * A bench for journal replay tests: a volume formatted by o2fuse's mkfs with
 * a few files written through the engine, the slot 0 journal opened as a
 * JournalSpace, and helpers to lay crafted JBD2 transactions into its log
 * (descriptor, the logged copies, revoke, commit, then a zero block so the
 * log ends where the test says), mark the journal dirty, and ask
 * fsck.ocfs2 -y to replay a copy as the independent oracle.
 *
 *   const lab = await JournalLab.create(t, { blockSize: 4096 });
 *   const ino = lab.files.get('a')!;
 *   const changed = await lab.inodeWith(ino, (di) => { di.i_mtime = 1234; });
 *   await lab.writeLog(lab.first, 50, [{ blocks: [{ blkno: ino, data: changed }] }]);
 *   const report = await replayJournal(lab.device, lab.space, lab.volumeBlocks);
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { Test } from 'tap';
import { FileDevice } from '../../io/fileDevice';
import { formatVolume, type MkfsOptions } from '../../fs/mkfs';
import { Volume } from '../../fs/volume';
import { JournalSpace } from '../../fs/journal/space';
import {
  encodeCommitBlock, encodeDescriptorBlock, encodeRevokeBlock, JBD2_COMMIT_BLOCK, JBD2_DESCRIPTOR_BLOCK,
  JBD2_FLAG_ESCAPE, JBD2_FLAG_LAST_TAG, JBD2_FLAG_SAME_UUID, JBD2_MAGIC_NUMBER, JBD2_REVOKE_BLOCK,
  JOURNAL_REVOKE_HEADER_SIZE, revokeRecordBytes, type JournalSuperblock, type JournalTag,
} from '../../fs/format/jbd2';
import { decodeDinode, encodeDinode, DINODE_CHECK_OFFSET, type Dinode } from '../../fs/format/dinode';
import { computeBlockCheck } from '../../fs/format/blockcheck';
import { JOURNAL_SYSTEM_INODE, OCFS2_JOURNAL_DIRTY_FL, S_IFREG, systemInodeName } from '../../fs/format/constants';
import { tempDir, copyImage } from '../lib/volume';
import { fsck } from '../lib/fsck';

export const MiB = 1024 * 1024;
const O_RDWR = 2;
const ROOT = { uid: 0, gid: 0 };

export interface LabOptions {
  blockSize?: number;
  clusterSize?: number;
  /** mkfs --fs-features list ("metaecc"). */
  features?: string;
  /** JBD2 64-bit block numbers (mkfs -J block64). */
  journal64?: boolean;
  /** Files to create through the engine: name → size in bytes (content: byte i = (i * 7 + name length) & 0xff). */
  files?: Record<string, number>;
}

/** One crafted transaction. */
export interface TxSpec {
  /** Blocks to log: the home block number and the block's new content (full block). */
  blocks?: { blkno: number; data: Buffer }[];
  /** Block numbers revoked by this transaction (one revoke block, written before its descriptor as jbd2 does). */
  revokes?: number[];
  /** Write the commit block (default true). */
  commit?: boolean;
  /** Override what the descriptor's tags say (e.g. a high word) after they are built. */
  editTags?: (tags: JournalTag[]) => void;
}

export class JournalLab {
  /** Blocks the log may use: journal blocks [first, last). */
  first = 0;
  last = 0;

  private constructor(
    readonly image: string,
    readonly dir: string,
    readonly vol: Volume,
    readonly space: JournalSpace,
    readonly journalIno: number,
    /** Regular files created, name → inode block. */
    readonly files: Map<string, number>,
    public jsb: JournalSuperblock,
  ) {
    this.first = jsb.s_first;
    this.last = jsb.s_maxlen;
  }

  static async create(t: Test, o: LabOptions = {}): Promise<JournalLab> {
    const dir = await tempDir(t, 'o2fuse-replay-');
    const image = path.join(dir, 'ocfs2.img');
    const fh = await fs.open(image, 'wx');
    await fh.truncate(96 * MiB);
    await fh.close();
    const mkfs: MkfsOptions = {
      deviceIsZeroed: true, blockSizeBytes: o.blockSize ?? 4096, clusterSizeBytes: o.clusterSize ?? 4096, slots: 2,
      journalSizeBytes: 4 * MiB, journal64: o.journal64 ?? false, mountType: 'local', features: o.features,
    };
    const fmtDevice = await FileDevice.open(image);
    try {
      await formatVolume(fmtDevice, mkfs);
    } finally {
      await fmtDevice.close();
    }

    const files = new Map<string, number>();
    const rw = await Volume.mount(await FileDevice.open(image), { readOnly: false });
    try {
      for (const [name, size] of Object.entries(o.files ?? { a: 100, b: 200 })) {
        const { attr, fh: handle } = await rw.create(rw.rootIno, Buffer.from(name), S_IFREG | 0o644, O_RDWR, ROOT);
        if (size) await rw.write(attr.ino, handle, 0, fileContent(name, size));
        await rw.release(attr.ino, handle);
        files.set(name, attr.ino);
      }
    } finally {
      await rw.unmount();
    }

    // A read-only mount over a writable device: the engine finds the journal and writes nothing; the lab writes
    // the crafted log through the same device.
    const vol = await Volume.mount(await FileDevice.open(image), { readOnly: true });
    const journalIno = vol.systemFile(systemInodeName(JOURNAL_SYSTEM_INODE, 0));
    const space = await JournalSpace.open(vol, 0, journalIno, (await vol.iget(journalIno)).di);
    const lab = new JournalLab(image, dir, vol, space, journalIno, files, await space.readSuperblock());
    t.teardown(() => lab.close());
    return lab;
  }

  get device(): Volume['device'] {
    return this.vol.device;
  }

  get blockSize(): number {
    return this.vol.geo.blockSize;
  }

  get volumeBlocks(): number {
    return this.vol.geo.totalClusters * this.vol.geo.bpc;
  }

  private closed = false;
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.vol.unmount();
  }

  async readHome(blkno: number): Promise<Buffer> {
    return this.device.read(blkno * this.blockSize, this.blockSize);
  }

  /** The decoded inode at `ino` as it is on the device now. */
  async dinode(ino: number): Promise<Dinode> {
    return decodeDinode(await this.readHome(ino), ino);
  }

  /** A new image of inode block `ino`: decoded, changed by `change`, encoded, metaecc recomputed when the volume has it. */
  async inodeWith(ino: number, change: (di: Dinode) => void): Promise<Buffer> {
    const di = decodeDinode(await this.readHome(ino), ino);
    change(di);
    const block = Buffer.alloc(this.blockSize);
    encodeDinode(di, block);
    if (this.vol.features.metaEcc) computeBlockCheck(block, DINODE_CHECK_OFFSET);
    return block;
  }

  /** The first data block of a file with extents. */
  async firstDataBlock(ino: number): Promise<number> {
    const di = await this.dinode(ino);
    const rec = di.list?.l_recs[0];
    if (!rec || !di.list?.l_next_free_rec) throw new Error(`inode ${ino} has no extents`);
    return rec.e_blkno;
  }

  /** The journal block after `lblk`, wrapping from the end of the log to its start. */
  next(lblk: number): number {
    return lblk + 1 >= this.last ? this.first : lblk + 1;
  }

  /**
   * Lays `txs` into the log from journal block `start` with sequences from
   * `firstSeq`, then a zero block; points the journal superblock at them
   * (s_start, s_sequence; `jsbChanges` for feature bits). Returns the journal
   * block of each logged copy, per transaction, and the block after the end.
   */
  async writeLog(start: number, firstSeq: number, txs: TxSpec[], jsbChanges: Partial<JournalSuperblock> = {}):
    Promise<{ copies: number[][]; end: number }> {
    const jsb = { ...this.jsb, ...jsbChanges };
    const incompat = jsb.s_feature_incompat;
    const bs = this.blockSize;
    let lblk = start;
    const copies: number[][] = [];
    const put = async (buf: Buffer): Promise<number> => {
      const at = lblk;
      await this.space.write(at, buf);
      lblk = this.next(lblk);
      return at;
    };
    for (let i = 0; i < txs.length; i++) {
      const tx = txs[i];
      const seq = (firstSeq + i) >>> 0;
      if (tx.revokes?.length) {
        const block = Buffer.alloc(bs);
        const rCount = JOURNAL_REVOKE_HEADER_SIZE + tx.revokes.length * revokeRecordBytes(incompat);
        encodeRevokeBlock({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_REVOKE_BLOCK, h_sequence: seq, r_count: rCount,
          records: tx.revokes }, block, incompat);
        await put(block);
      }
      const blocks = tx.blocks ?? [];
      const txCopies: number[] = [];
      if (blocks.length) {
        const tags: JournalTag[] = blocks.map((b, n) => ({
          t_blocknr: b.blkno % 2 ** 32,
          t_blocknr_high: Math.floor(b.blkno / 2 ** 32),
          t_flags: (n ? JBD2_FLAG_SAME_UUID : 0) | (n === blocks.length - 1 ? JBD2_FLAG_LAST_TAG : 0) |
            (b.data.readUInt32BE(0) === JBD2_MAGIC_NUMBER ? JBD2_FLAG_ESCAPE : 0),
          t_checksum: 0,
          uuid: n ? undefined : jsb.s_uuid,
        }));
        tx.editTags?.(tags);
        const desc = Buffer.alloc(bs);
        encodeDescriptorBlock({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_DESCRIPTOR_BLOCK, h_sequence: seq, tags },
          desc, incompat);
        await put(desc);
        for (let n = 0; n < blocks.length; n++) {
          const copy = Buffer.from(blocks[n].data);
          if (tags[n].t_flags & JBD2_FLAG_ESCAPE) copy.writeUInt32BE(0, 0);
          txCopies.push(await put(copy));
        }
      }
      copies.push(txCopies);
      if (tx.commit !== false) {
        const commit = Buffer.alloc(bs);
        encodeCommitBlock({ h_magic: JBD2_MAGIC_NUMBER, h_blocktype: JBD2_COMMIT_BLOCK, h_sequence: seq,
          h_chksum_type: 0, h_chksum_size: 0, h_padding: Buffer.alloc(2), h_chksum: new Array(8).fill(0),
          h_commit_sec: 1700000000 + i, h_commit_nsec: 0 }, commit);
        await put(commit);
      }
    }
    const end = lblk;
    await this.space.write(end, Buffer.alloc(bs));
    this.jsb = { ...jsb, s_start: start, s_sequence: firstSeq >>> 0 };
    await this.space.writeSuperblock(this.jsb);
    return { copies, end };
  }

  /** Sets or clears OCFS2_JOURNAL_DIRTY_FL in the journal inode (what a crashed kernel leaves set). */
  async setJournalDirty(dirty: boolean): Promise<void> {
    const block = await this.inodeWith(this.journalIno, (di) => {
      di.ij_flags = dirty ? di.ij_flags | OCFS2_JOURNAL_DIRTY_FL : di.ij_flags & ~OCFS2_JOURNAL_DIRTY_FL;
    });
    await this.device.write(block, this.journalIno * this.blockSize);
    await this.device.flush();
  }

  /**
   * fsck.ocfs2 -y on a copy of the image as it is now (journal marked dirty
   * first): the reference replay. Returns the copy and fsck's output. The
   * -M local volume makes fsck 1.8.7 stop with status 8 ("Unable to access
   * cluster service") after the replay; the replay itself is done by then.
   */
  async oracleReplay(t: Test): Promise<{ copy: string; output: string }> {
    await this.setJournalDirty(true);
    const copy = await copyImage(t, this.image);
    const r = await fsck(['-y', copy]);
    const output = `${r.text}${r.stderr}`;
    t.comment(`oracle: fsck.ocfs2 -y exited ${r.code}`);
    t.ok(/Slot 0's journal replayed successfully/.test(output), 'fsck.ocfs2 -y replays the crafted journal (the oracle)',
      { diagnostic: !/Slot 0's journal replayed successfully/.test(output), exitCode: r.code, output });
    return { copy, output };
  }
}

/** The content the lab writes into file `name`. */
export function fileContent(name: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + name.length) & 0xff;
  return b;
}

/** Block `blkno` of an image file. */
export async function readImageBlock(image: string, blkno: number, blockSize: number): Promise<Buffer> {
  const fh = await fs.open(image, 'r');
  try {
    const buf = Buffer.alloc(blockSize);
    await fh.read(buf, 0, blockSize, blkno * blockSize);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Asserts that every block in `blknos` is byte-for-byte the same in both images. */
export async function assertSameBlocks(t: Test, ours: string, oracle: string, blknos: number[], blockSize: number,
  what: string): Promise<void> {
  for (const blkno of blknos) {
    const a = await readImageBlock(ours, blkno, blockSize);
    const b = await readImageBlock(oracle, blkno, blockSize);
    const at = firstDifference(a, b);
    const diag = at < 0 ? {} : {
      diagnostic: true, offset: at, ours: a.subarray(at, at + 16).toString('hex'), oracle: b.subarray(at, at + 16).toString('hex'),
    };
    t.ok(at < 0, `${what}: block ${blkno} is what fsck.ocfs2's replay wrote`, diag);
  }
}

export function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** sha256 of a whole image file. */
export async function imageHash(image: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(image)).digest('hex');
}
