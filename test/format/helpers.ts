/**
 * Real volumes for the format tests: made with mkfs.ocfs2 (and, for what
 * mkfs does not make, the libocfs2 fixture in fixtures/o2helper.c), read
 * block by block, and walked with our own decoders so that every metadata
 * block reachable from the superblock is visited once.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CHECK_OFFSET, decodeDinode, decodeDirBlock, decodeDxLeaf, decodeDxRoot, decodeExtentBlock, decodeGroupDesc,
  decodeRefcountBlock, decodeSuperBlockInode, decodeXattrBlock, decodeXattrBucket, Dinode, dirBlockCheckOffsetOf,
  encodeDinode, encodeDirBlock, encodeDxLeaf, encodeDxRoot, encodeExtentBlock, encodeGroupDesc, encodeRefcountBlock,
  encodeXattrBlock, encodeXattrBucket, ExtentList, ExtentRec, iterateDirEntries, OCFS2_DX_FLAG_INLINE, OCFS2_FT_DIR,
  OCFS2_HAS_XATTR_FL, OCFS2_INDEXED_DIR_FL, OCFS2_REFCOUNT_TREE_FL, OCFS2_XATTR_BUCKET_SIZE, OCFS2_XATTR_INDEXED,
  SuperBlock, volumeHasDirTrailers,
} from '../../fs/format';

export const SCRATCH = path.join(os.tmpdir(), 'format-tests');

/** A fresh scratch directory for one test file (removed by the returned cleanup). */
export function scratchDir(tag: string): { dir: string; cleanup: () => void } {
  fs.mkdirSync(SCRATCH, { recursive: true });
  const dir = fs.mkdtempSync(path.join(SCRATCH, `${tag}-`));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface VolumeSpec {
  blockSize: number;
  clusterSize: number;
  slots: number;
  /** --fs-features value, e.g. "metaecc" or "noindexed-dirs,usrquota" */
  features?: string;
  sizeBytes?: number;
}

/** Runs mkfs.ocfs2 on a sparse file and returns its path. */
export function makeVolume(dir: string, name: string, spec: VolumeSpec): string {
  const img = path.join(dir, `${name}.img`);
  fs.writeFileSync(img, '');
  fs.truncateSync(img, spec.sizeBytes ?? 1 << 30);
  const args = ['-q', '-F', '-b', String(spec.blockSize), '-C', String(spec.clusterSize), '-N', String(spec.slots), '-M', 'local'];
  if (spec.features) args.push(`--fs-features=${spec.features}`);
  args.push(img);
  execFileSync('mkfs.ocfs2', args, { stdio: 'pipe' });
  return img;
}

let helperPath: string | undefined;

/** Builds fixtures/o2helper.c (libocfs2) once per process. */
export function o2helper(): string {
  if (helperPath) return helperPath;
  const src = path.join(__dirname, '..', '..', '..', 'test', 'format', 'fixtures', 'o2helper.c');
  fs.mkdirSync(SCRATCH, { recursive: true });
  const out = path.join(SCRATCH, `o2helper-${process.pid}`);
  execFileSync('gcc', ['-O1', '-o', out, src, '-l:libocfs2.a', '-l:libcom_err.a', '-luuid', '-l:libaio.so.1'], { stdio: 'pipe' });
  helperPath = out;
  process.on('exit', () => fs.rmSync(out, { force: true }));
  return out;
}

export function runHelper(img: string, ...args: string[]): string[] {
  return execFileSync(o2helper(), [img, ...args], { encoding: 'utf8' }).trim().split(/\s+/);
}

export function debugfs(img: string, request: string): string {
  return execFileSync('debugfs.ocfs2', ['-R', request, img], { encoding: 'utf8', stdio: 'pipe' });
}

export class Image {
  readonly fd: number;
  readonly blockSize: number;
  readonly sbInode: Dinode & { super: SuperBlock };
  readonly sb: SuperBlock;
  readonly blocksPerCluster: number;

  constructor(readonly file: string, writable = false) {
    this.fd = fs.openSync(file, writable ? 'r+' : 'r');
    let bs = 0;
    for (const size of [512, 1024, 2048, 4096]) {
      const b = Buffer.alloc(size);
      fs.readSync(this.fd, b, 0, size, 2 * size);
      if (b.toString('latin1', 0, 6) === 'OCFSV2') {
        bs = size;
        break;
      }
    }
    if (!bs) throw new Error(`${file}: no OCFS2 superblock`);
    this.blockSize = bs;
    this.sbInode = decodeSuperBlockInode(this.read(2));
    this.sb = this.sbInode.super;
    this.blocksPerCluster = 2 ** (this.sb.s_clustersize_bits - this.sb.s_blocksize_bits);
  }

  read(blkno: number, count = 1): Buffer {
    const b = Buffer.alloc(this.blockSize * count);
    fs.readSync(this.fd, b, 0, b.length, blkno * this.blockSize);
    return b;
  }

  write(blkno: number, buf: Buffer): void {
    fs.writeSync(this.fd, buf, 0, buf.length, blkno * this.blockSize);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /** The leaf records of an extent tree, in order. */
  leafRecords(list: ExtentList): ExtentRec[] {
    if (list.l_tree_depth === 0) return list.l_recs.slice(0, list.l_next_free_rec);
    return list.l_recs.slice(0, list.l_next_free_rec).flatMap((r) => this.leafRecords(decodeExtentBlock(this.read(r.e_blkno), r.e_blkno).h_list));
  }

  /** Physical blocks of the first `count` logical blocks of an extent list (descending through extent blocks). */
  fileBlocks(list: ExtentList, count: number): number[] {
    const out: number[] = [];
    const walk = (l: ExtentList): void => {
      for (let i = 0; i < l.l_next_free_rec && out.length < count; i++) {
        const r = l.l_recs[i];
        if (l.l_tree_depth > 0) walk(decodeExtentBlock(this.read(r.e_blkno), r.e_blkno).h_list);
        else {
          const base = r.e_cpos * this.blocksPerCluster;
          for (let c = 0; c < r.e_leaf_clusters * this.blocksPerCluster; c++) out[base + c] = r.e_blkno + c;
        }
      }
    };
    walk(list);
    return out.slice(0, count);
  }
}

/** One metadata block found by the walk: its bytes as read, and how to decode+encode it. */
export interface MetaBlock {
  kind: string;
  blkno: number;
  /** Where its ocfs2_block_check lives (metaecc). */
  checkOffset: number;
  /** Blocks in the unit (an xattr bucket spans several). */
  count: number;
  bytes: Buffer;
  /** decode(bytes) then encode into a fresh buffer. */
  reencode: () => Buffer;
  /** Short description for failure messages. */
  what: string;
}

/**
 * Walks every metadata block reachable from the superblock: system and
 * root directory trees (inodes, dir blocks, dx roots/leaves, extent blocks),
 * chain allocator groups, xattr blocks and buckets, refcount trees.
 */
export function walkMetadata(img: Image): MetaBlock[] {
  const out: MetaBlock[] = [];
  const seen = new Set<number>();
  const bs = img.blockSize;
  const trailers = volumeHasDirTrailers(img.sb.s_feature_incompat);
  const add = (kind: string, blkno: number, checkOffset: number, what: string, reencode: (b: Buffer) => Buffer, count = 1): Buffer => {
    const bytes = img.read(blkno, count);
    out.push({ kind, blkno, checkOffset, count, bytes, what, reencode: () => reencode(Buffer.from(bytes)) });
    return bytes;
  };
  const fresh = (len = bs): Buffer => Buffer.alloc(len);

  const visitExtentTree = (list: ExtentList, owner: string): void => {
    if (list.l_tree_depth === 0) return;
    for (let i = 0; i < list.l_next_free_rec; i++) {
      const blk = list.l_recs[i].e_blkno;
      const b = add('extent block', blk, CHECK_OFFSET.extentBlock, `extent block ${blk} of ${owner}`, (x) => {
        const o = fresh(); encodeExtentBlock(decodeExtentBlock(x, blk), o); return o;
      });
      visitExtentTree(decodeExtentBlock(b, blk).h_list, owner);
    }
  };

  const visitInode = (blkno: number, name: string): Dinode | undefined => {
    if (seen.has(blkno)) return undefined;
    seen.add(blkno);
    const b = add('inode', blkno, CHECK_OFFSET.dinode, `inode ${blkno} (${name})`, (x) => {
      const o = fresh(); encodeDinode(decodeDinode(x, blkno), o); return o;
    });
    const d = decodeDinode(b, blkno);
    if (d.list) visitExtentTree(d.list, name);
    if (d.chain) {
      for (let i = 0; i < d.chain.cl_next_free_rec; i++) {
        for (let g = d.chain.cl_recs[i].c_blkno; g !== 0;) {
          const gblk = g;
          const gb = add('group desc', gblk, CHECK_OFFSET.groupDesc, `group desc ${gblk} of ${name}`, (x) => {
            const o = fresh(); encodeGroupDesc(decodeGroupDesc(x, gblk), o); return o;
          });
          g = decodeGroupDesc(gb, { expectedBlkno: gblk, parentBlkno: blkno }).bg_next_group;
        }
      }
    }
    if ((d.i_dyn_features & OCFS2_HAS_XATTR_FL) && d.i_xattr_loc) visitXattrBlock(d.i_xattr_loc, name);
    if (d.i_refcount_loc && !seen.has(d.i_refcount_loc)) visitRefcount(d.i_refcount_loc, name);
    return d;
  };

  const visitXattrBlock = (blkno: number, owner: string): void => {
    const b = add('xattr block', blkno, CHECK_OFFSET.xattrBlock, `xattr block ${blkno} of ${owner}`, (x) => {
      const o = fresh(); encodeXattrBlock(decodeXattrBlock(x, blkno), o); return o;
    });
    const xb = decodeXattrBlock(b, blkno);
    if (xb.xb_flags & OCFS2_XATTR_INDEXED && xb.xb_root) {
      // Each leaf record's first bucket says how many buckets of the record are in use.
      const perBucket = OCFS2_XATTR_BUCKET_SIZE / bs;
      for (const rec of img.leafRecords(xb.xb_root.xt_list)) {
        const used = decodeXattrBucket(img.read(rec.e_blkno, perBucket)).xh_num_buckets;
        for (let i = 0; i < used; i++) {
          const blk = rec.e_blkno + i * perBucket;
          add('xattr bucket', blk, CHECK_OFFSET.xattrBucket, `xattr bucket ${blk} of ${owner}`, (x) => {
            const o = fresh(OCFS2_XATTR_BUCKET_SIZE); encodeXattrBucket(decodeXattrBucket(x), o); return o;
          }, perBucket);
        }
      }
    }
  };

  const visitRefcount = (blkno: number, owner: string): void => {
    seen.add(blkno);
    const b = add('refcount block', blkno, CHECK_OFFSET.refcountBlock, `refcount block ${blkno} of ${owner}`, (x) => {
      const o = fresh(); encodeRefcountBlock(decodeRefcountBlock(x, blkno), o); return o;
    });
    const rb = decodeRefcountBlock(b, blkno);
    if (rb.rf_flags & OCFS2_REFCOUNT_TREE_FL && rb.rf_list) {
      for (let i = 0; i < rb.rf_list.l_next_free_rec; i++) visitRefcount(rb.rf_list.l_recs[i].e_blkno, owner);
    }
  };

  const visitDir = (blkno: number, name: string): void => {
    const d = visitInode(blkno, name);
    if (!d) return;
    const children: Array<[number, string, number]> = [];
    if (d.data) {
      for (const de of iterateDirEntries(d.data.id_data, 0, Math.min(d.i_size, d.data.id_count), `inline dir ${blkno}`)) {
        children.push([de.inode, de.name.toString('latin1'), de.file_type]);
      }
    } else if (d.list) {
      for (const db of img.fileBlocks(d.list, Math.ceil(d.i_size / bs))) {
        const b = add('dir block', db, dirBlockCheckOffsetOf(bs), `dir block ${db} of ${name}`, (x) => {
          const o = fresh(); encodeDirBlock(decodeDirBlock(x, { blkno: db, hasTrailer: trailers }), o); return o;
        });
        for (const de of decodeDirBlock(b, { blkno: db, hasTrailer: trailers, parentBlkno: trailers ? blkno : undefined }).entries) {
          children.push([de.inode, de.name.toString('latin1'), de.file_type]);
        }
      }
    }
    if ((d.i_dyn_features & OCFS2_INDEXED_DIR_FL) && d.i_dx_root) visitDx(d.i_dx_root, blkno, name);
    for (const [ino, child, ft] of children) {
      if (ino === 0 || child === '.' || child === '..') continue;
      if (ft === OCFS2_FT_DIR) visitDir(ino, `${name}/${child}`);
      else visitInode(ino, `${name}/${child}`);
    }
  };

  const visitDx = (rootBlk: number, dirBlk: number, name: string): void => {
    const b = add('dx root', rootBlk, CHECK_OFFSET.dxRoot, `dx root ${rootBlk} of ${name}`, (x) => {
      const o = fresh(); encodeDxRoot(decodeDxRoot(x, rootBlk), o); return o;
    });
    const root = decodeDxRoot(b, { expectedBlkno: rootBlk, dirBlkno: dirBlk });
    if (!(root.dr_flags & OCFS2_DX_FLAG_INLINE) && root.dr_list) {
      visitExtentTree(root.dr_list, `${name} (index)`);
      // dr_list's e_cpos are major-hash ranges, not file offsets: take every block of every leaf record.
      const leafBlocks = img.leafRecords(root.dr_list).flatMap((r) => Array.from({ length: r.e_leaf_clusters * img.blocksPerCluster }, (_, i) => r.e_blkno + i));
      for (const lb of leafBlocks) {
        add('dx leaf', lb, CHECK_OFFSET.dxLeaf, `dx leaf ${lb} of ${name}`, (x) => {
          const o = fresh(); encodeDxLeaf(decodeDxLeaf(x, lb), o); return o;
        });
      }
    }
  };

  add('superblock', 2, CHECK_OFFSET.dinode, 'superblock', (x) => {
    const o = fresh(); encodeDinode(decodeSuperBlockInode(x), o); return o;
  });
  seen.add(2);
  visitDir(img.sb.s_system_dir_blkno, '/<system>');
  visitDir(img.sb.s_root_blkno, '');
  return out;
}

/** The inode of a system file by name ("journal:0000"), looked up in the system directory. */
export function systemInode(img: Image, name: string): { blkno: number; d: Dinode } {
  const sys = decodeDinode(img.read(img.sb.s_system_dir_blkno), img.sb.s_system_dir_blkno);
  const trailers = volumeHasDirTrailers(img.sb.s_feature_incompat);
  const entries = sys.data
    ? [...iterateDirEntries(sys.data.id_data, 0, sys.i_size)]
    : img.fileBlocks(sys.list!, Math.ceil(sys.i_size / img.blockSize)).flatMap((b) => decodeDirBlock(img.read(b), { hasTrailer: trailers }).entries);
  const de = entries.find((e) => e.inode !== 0 && e.name.toString('latin1') === name);
  if (!de) throw new Error(`no system file ${name}`);
  return { blkno: de.inode, d: decodeDinode(img.read(de.inode), de.inode) };
}

/** First difference between two buffers, for messages. */
export function firstDiff(a: Buffer, b: Buffer): string {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return `byte ${i} (0x${i.toString(16)}): read 0x${a[i].toString(16)}, re-encoded 0x${b[i].toString(16)}`;
  }
  return 'identical';
}
