/**
 * What debugfs.ocfs2 says about reflinked files and their refcount trees, for
 * the tests that have the kernel make reflinks and o2fuse change them: a
 * file's tree and its count, the tree's records (and per leaf block), a
 * file's extents with their flags, and the allocator counts a volume must
 * come back to once every reflink is gone.
 */
import { debugfs } from '../lib/debugfs';
import { debugfsBitmap } from './helpers';

/** Used bits of slot 0's extent allocator, where refcount blocks (and extent blocks) come from. */
export const extentAllocUsed = async (image: string): Promise<number> => (await debugfsBitmap(image, 'extent_alloc:0000')).used;

/** The refcount tree root of a file, and how many inodes it says share it. */
export async function treeOf(image: string, file: string): Promise<{ blkno: number; count: number }> {
  const stat = await debugfs(image, `stat ${file}`);
  const blkno = Number(/Refcount Block: (\d+)/.exec(stat)?.[1] ?? 0);
  const tree = await debugfs(image, `refcount <${blkno}>`);
  return { blkno, count: Number(/Reftree Count: (\d+)/.exec(tree)?.[1] ?? -1) };
}

/** Allocator counts to come back to: the extent allocator's used blocks and the global bitmap's used clusters. */
export interface Baseline {
  blocks: number;
  clusters: number;
}

export async function baselineOf(image: string): Promise<Baseline> {
  return { blocks: await extentAllocUsed(image), clusters: (await debugfsBitmap(image, 'global_bitmap')).used };
}

/** The record rows of debugfs.ocfs2's refcount listing: [cluster, clusters, count]. */
export function recordRows(text: string): number[][] {
  return [...text.matchAll(/^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s*$/gm)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
}

/** The records of a refcount tree, all its leaves', as debugfs.ocfs2 lists them: [cluster, clusters, count], by cluster. */
export async function recordsOf(image: string, blkno: number): Promise<number[][]> {
  return recordRows(await debugfs(image, `refcount <${blkno}>`)).sort((a, b) => a[0] - b[0]);
}

/** The records of each leaf block of a refcount tree, as debugfs.ocfs2 lists them (none: its root holds the records). */
export async function leavesOf(image: string, blkno: number): Promise<number[][][]> {
  // One section per block, each opening with its "SubAlloc Bit:" line.
  return (await debugfs(image, `refcount <${blkno}>`)).split(/^\s*SubAlloc Bit:/m)
    .filter((block) => /Flags: 0x1 Leaf/.test(block))
    .map(recordRows);
}

/** The leaf extents debugfs.ocfs2 lists for `file`: [cpos, clusters, block, flags]. */
export async function extentsOf(image: string, file: string): Promise<number[][]> {
  const stat = await debugfs(image, `stat ${file}`);
  return [...stat.matchAll(/^\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+0x([0-9a-f]+)/gm)]
    .map((m) => [Number(m[1]), Number(m[2]), Number(m[3]), parseInt(m[4], 16)]);
}
