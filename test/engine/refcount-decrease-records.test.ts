/**
 * The arithmetic of lowering refcounts (fs/refcountDecrease.ts,
 * decreaseRecords), on records as the kernel leaves them: a run that covers
 * whole records takes one from each and frees what reaches zero; a run that
 * covers part of a record splits it, the parts outside keeping their count; a
 * lowered record merges with a neighbour it continues at its new count; a
 * run that reaches a cluster no record counts, or a record that already
 * counts zero, is damage (EIO) and changes nothing. Where a full leaf is
 * divided when the tree grows (fs/refcountGrow.ts, splitIndex): nearest the
 * middle, at a record that does not overlap the one before it in the low 32
 * bits of their clusters. The kernel's own records and fsck.ocfs2 check the
 * same code through a mount in test/rw/reflinked-files-leave-their-refcount-tree
 * and test/rw/reflinked-files-copy-on-write.
 */
import t from 'tap';
import { decreaseRecords } from '../../fs/refcountDecrease';
import { splitIndex } from '../../fs/refcountGrow';
import type { RefcountRec } from '../../fs/format/refcount';

const rec = (r_cpos: number, r_clusters: number, r_refcount: number): RefcountRec => ({ r_cpos, r_clusters, r_refcount });
const errno = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (err) {
    return (err as { errno?: string }).errno ?? String(err);
  }
};

t.test('a run covering whole records takes one from each', async (t) => {
  const recs = [rec(100, 3, 3), rec(103, 2, 1), rec(105, 3, 2), rec(200, 4, 2)];
  const { recs: out, freed } = decreaseRecords(recs, 100, 8, 'test');
  t.same(out, [rec(100, 3, 2), rec(105, 3, 1), rec(200, 4, 2)], 'counts drop by one; the record at one is gone; others untouched');
  t.same(freed, [{ cluster: 103, count: 2 }], 'the clusters nobody shares any more are freed');
  t.same(recs[0], rec(100, 3, 3), 'the input records are not changed');
});

t.test('a run covering part of a record splits it', async (t) => {
  t.same(decreaseRecords([rec(10, 10, 2)], 10, 4, 'test'), { recs: [rec(10, 4, 1), rec(14, 6, 2)], freed: [] }, 'left part');
  t.same(decreaseRecords([rec(10, 10, 2)], 16, 4, 'test'), { recs: [rec(10, 6, 2), rec(16, 4, 1)], freed: [] }, 'right part');
  t.same(decreaseRecords([rec(10, 10, 2)], 13, 4, 'test'), { recs: [rec(10, 3, 2), rec(13, 4, 1), rec(17, 3, 2)], freed: [] },
    'middle: three records');
  t.same(decreaseRecords([rec(10, 10, 1)], 13, 4, 'test'), { recs: [rec(10, 3, 1), rec(17, 3, 1)], freed: [{ cluster: 13, count: 4 }] },
    'middle of a record at one: the middle is freed, the two ends stay');
  t.same(decreaseRecords([rec(10, 5, 2), rec(15, 5, 3)], 12, 6, 'test'),
    { recs: [rec(10, 2, 2), rec(12, 3, 1), rec(15, 3, 2), rec(18, 2, 3)], freed: [] }, 'across two records, split at both ends');
});

t.test('a lowered record merges with a neighbour it continues at the same count, as the kernel merges', async (t) => {
  t.same(decreaseRecords([rec(10, 3, 1), rec(13, 4, 2)], 13, 4, 'test').recs, [rec(10, 7, 1)], 'with the one before');
  t.same(decreaseRecords([rec(10, 3, 2), rec(13, 4, 1)], 10, 3, 'test').recs, [rec(10, 7, 1)], 'with the one after');
  // A file whose middle was copied on write: its two shared runs are lowered one after the other.
  const first = decreaseRecords([rec(10, 3, 2), rec(13, 2, 1), rec(15, 5, 2)], 10, 3, 'test').recs;
  t.same(first, [rec(10, 5, 1), rec(15, 5, 2)], 'the first run joins the record after it');
  t.same(decreaseRecords(first, 15, 5, 'test').recs, [rec(10, 10, 1)], 'the second joins that: one record, as the kernel leaves it');
  t.same(decreaseRecords([rec(10, 4, 2)], 12, 2, 'test').recs, [rec(10, 2, 2), rec(12, 2, 1)], 'a split part stays apart at another count');
  t.same(decreaseRecords([rec(10, 3, 1), rec(14, 4, 2)], 14, 4, 'test').recs, [rec(10, 3, 1), rec(14, 4, 1)],
    'not across a gap');
  t.same(decreaseRecords([rec(10, 3, 1), rec(13, 3, 1), rec(20, 2, 3)], 20, 2, 'test').recs, [rec(10, 3, 1), rec(13, 3, 1), rec(20, 2, 2)],
    'records the change did not touch stay as they are, even where they could merge');
  t.same(decreaseRecords([rec(10, 3, 2), rec(13, 3, 1), rec(16, 3, 1)], 10, 3, 'test').recs, [rec(10, 6, 1), rec(16, 3, 1)],
    'once on each side: the neighbour joined takes no neighbour of its own, as the kernel rotates once per side');
  t.same(decreaseRecords([rec(10, 3, 1), rec(13, 3, 1), rec(16, 3, 2)], 16, 3, 'test').recs, [rec(10, 3, 1), rec(13, 6, 1)],
    'and on the left');
});

t.test('a cluster no record counts, or a record at zero, is damage', async (t) => {
  t.equal(errno(() => decreaseRecords([rec(10, 5, 2)], 12, 6, 'test')), 'EIO', 'run past the last record');
  t.equal(errno(() => decreaseRecords([rec(10, 5, 2), rec(16, 4, 2)], 12, 6, 'test')), 'EIO', 'a gap between records');
  t.equal(errno(() => decreaseRecords([rec(12, 5, 2)], 10, 4, 'test')), 'EIO', 'run starting before the first record');
  t.equal(errno(() => decreaseRecords([], 10, 1, 'test')), 'EIO', 'no records at all');
  t.equal(errno(() => decreaseRecords([rec(10, 5, 0)], 10, 5, 'test')), 'EIO', 'a record that counts zero');
  t.throws(() => decreaseRecords([rec(10, 5, 2), rec(12, 5, 2)], 10, 5, 'test'), /records overlap at cluster 12; run fsck\.ocfs2/,
    'records that overlap (the run covered by the first already)');
  t.throws(() => decreaseRecords([rec(10, 5, 2)], 12, 6, 'refcount tree 7 of inode 9'),
    /refcount tree 7 of inode 9: cluster 15 is mapped as shared but has no refcount record; run fsck\.ocfs2/, 'the message names the tree and the cluster');
});

t.test('a full leaf is divided nearest its middle, where no record overlaps the last in the low 32 bits', async (t) => {
  const run = (n: number, step = 4) => Array.from({ length: n }, (_, i) => rec(i * step, 2, 2));
  t.equal(splitIndex(run(24)), 12, 'even: at the middle');
  t.equal(splitIndex(run(25)), 12, 'odd: at the middle, rounded down');
  // Past 2^32 clusters the low 32 bits start again: the record at 12 (low cluster 45) overlaps the one before it
  // (44+2) there, so the division moves to the nearest place where none does.
  const high = [...run(12), rec(2 ** 32 + 45, 2, 2), ...Array.from({ length: 12 }, (_, i) => rec(2 ** 32 + 48 + i * 4, 2, 2))];
  t.equal(splitIndex(high), 13, 'not between records whose low clusters overlap: the next place past the middle');
  t.equal(splitIndex([rec(5, 1, 1)]), -1, 'a single record cannot be divided');
});
