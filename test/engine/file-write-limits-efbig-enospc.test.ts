/**
 * The edges of what a write can do:
 * - EFBIG: the largest file is 2^32 - 1 clusters (ocfs2_max_file_offset); a
 *   write starting there fails, one crossing it is cut short, a truncate past
 *   it fails. 4K and 1M clusters.
 * - ENOSPC for data, on a 16 MB volume: a write bigger than the free space
 *   writes what fits (a short write), the next one fails, the volume stays
 *   consistent, and freeing the file gives all the space back.
 * - ENOSPC for metadata: with the extent allocator empty and no 512
 *   contiguous clusters left to grow it, a write that needs a new extent
 *   record in a full inode fails with nothing changed, while writes that
 *   merge into an existing record still work.
 * - Without sparse-alloc, a truncate up (or a write) past the free space
 *   fails, leaves the size alone and gives back the clusters it got.
 * - A write bigger than one transaction (32 MiB) that is refused part-way,
 *   after its first transactions committed (here: the device fails a data
 *   write of the second), returns a short count, as write(2) does, not an
 *   error for bytes that are in the file.
 * fsck.ocfs2 -fn after each; libocfs2 reads the data.
 */
import t from 'tap';
import { Rng, seedFrom } from '../lib/seed';
import { o2tool } from '../lib/oracle';
import { maxFileBytes } from '../../fs/fileWrite';
import { readFileData } from '../../fs/file';
import { deviceOffsetOf, engineOnFaultyDevice } from '../iopath/harness';
import {
  assertContent, assertOracleContent, assertSpaceBack, assertTree, createFile, freshImage, mountRw, openFile,
  spaceCounts, truncateBoth, unmountAndFsck, writeBoth,
} from './extent-harness';

const MiB = 1024 * 1024;
const TINY = { sizeBytes: 16 * MiB, blockSize: 1024, clusterSize: 4096, slots: 1, journalBytes: 4 * MiB };

for (const cs of [4096, MiB]) {
  t.test(`EFBIG at the largest file size: ${cs / 1024}K clusters`, async (t) => {
    const image = await freshImage(t, { blockSize: 4096, clusterSize: cs, features: 'noinline-data' });
    const vol = await mountRw(image);
    const max = maxFileBytes(vol.geo);
    t.equal(max, cs * 2 ** 32 - cs, 'the largest size is 2^32 - 1 clusters');
    const f = await createFile(vol, 'big');
    await t.rejects(vol.write(f.ino, f.fh, max, Buffer.from('x')), { message: /^EFBIG/ }, 'a write at the largest size: EFBIG');
    await t.rejects(vol.write(f.ino, f.fh, max + 12345, Buffer.from('x')), { message: /^EFBIG/ }, 'and past it');
    const n = await vol.write(f.ino, f.fh, max - 4, Buffer.from('abcdefghij'));
    t.equal(n, 4, 'a write crossing the largest size is cut short there');
    const inode = await vol.iget(f.ino);
    t.equal(inode.size, max, 'the file is as large as it gets');
    t.equal(inode.di.i_clusters, 1, 'with one cluster (the last one a file can have)');
    t.equal((await vol.read(f.ino, f.fh, max - 8, 100)).toString('hex'), Buffer.from('\0\0\0\0abcd').toString('hex'), 'the engine reads the last bytes');
    await vol.fsync(f.ino, f.fh, false);
    t.equal((await readFileData(vol, inode, max - 8, 100)).toString('hex'), Buffer.from('\0\0\0\0abcd').toString('hex'), 'and they are on the device');
    await assertTree(t, vol, f.ino, 'a cluster at the last cpos');
    await t.rejects(vol.setattr(f.ino, { size: max + 1 }), { message: /^EFBIG/ }, 'truncating past the largest size: EFBIG');
    t.equal((await vol.getattr(f.ino)).size, max, 'and the size is unchanged');
    await vol.release(f.ino, f.fh);
    await unmountAndFsck(t, vol, image, 'volume with a largest-size file');
    const tail = await o2tool(['cat', image, '/big', String(max - 8), '8']);
    t.equal(tail.toString('hex'), Buffer.from('\0\0\0\0abcd').toString('hex'), 'libocfs2 reads the last bytes');
  });
}

t.test('ENOSPC for data: a short write, then ENOSPC, the volume consistent, and all space back after', async (t) => {
  const rng = new Rng(seedFrom(t));
  const image = await freshImage(t, { ...TINY, features: 'noinline-data' });
  let vol = await mountRw(image);
  const start = await spaceCounts(vol);
  t.comment(`${start.freeClusters} free clusters (${start.freeClusters * 4096} bytes)`);
  let f = await createFile(vol, 'fill');
  const want = 16 * MiB;
  const n = await writeBoth(vol, f, 0, rng.bytes(want));
  t.ok(n > 0 && n < want, `a ${want}-byte write on a ${start.freeClusters * 4096}-byte free volume writes ${n} bytes`);
  t.equal(n % 4096, 0, 'it stops at a cluster boundary');
  t.equal(await vol.alloc.freeClusterCount(), 0, 'every free cluster went to it');
  await t.rejects(vol.write(f.ino, f.fh, n, Buffer.from('more')), { message: /^ENOSPC/ }, 'the next extending write: ENOSPC');
  await t.rejects(vol.write(f.ino, f.fh, n + 10 * MiB, Buffer.from('far')), { message: /^ENOSPC/ }, 'and one past a hole');
  t.equal((await vol.getattr(f.ino)).size, n, 'failed writes leave the size alone');
  await writeBoth(vol, f, 1000, rng.bytes(5000));
  await assertContent(t, vol, f, 'full volume, overwritten in place');
  await assertTree(t, vol, f.ino, 'full volume');
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'full volume');
  await assertOracleContent(t, image, f);

  vol = await mountRw(image);
  f = await openFile(vol, f);
  await truncateBoth(vol, f, 0);
  assertSpaceBack(t, start, await spaceCounts(vol), 'after truncating the filler');
  await writeBoth(vol, f, 0, rng.bytes(MiB));
  await assertContent(t, vol, f, 'written again after freeing');
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume after freeing and rewriting');
});

t.test('ENOSPC for metadata: no extent block for a new record changes nothing; merging writes still work', async (t) => {
  const rng = new Rng(seedFrom(t));
  const image = await freshImage(t, { ...TINY, features: 'noinline-data' });
  const vol = await mountRw(image);
  const start = await spaceCounts(vol);
  t.equal(start.extentAllocClusters, 0, 'the extent allocator starts without groups (it grows by 512 clusters)');
  const a = await createFile(vol, 'a');
  const leave = 100;
  await writeBoth(vol, a, 0, rng.bytes((start.freeClusters - leave) * 4096));
  t.equal(await vol.alloc.freeClusterCount(), leave, `${leave} clusters left: too few for an extent allocator group`);

  const b = await createFile(vol, 'b');
  const rootRecs = (await vol.iget(b.ino)).di.list!.l_count;
  for (let i = 0; i < rootRecs; i++) await writeBoth(vol, b, 2 * i * 4096, rng.bytes(10));
  t.equal((await assertTree(t, vol, b.ino, 'inode full')).records, rootRecs, `the inode's ${rootRecs} records are used`);
  const free = await vol.alloc.freeClusterCount();
  await t.rejects(vol.write(b.ino, b.fh, 2 * rootRecs * 4096, Buffer.from('x')), { message: /^ENOSPC/ },
    'a write that needs one more record: ENOSPC');
  await t.rejects(vol.write(b.ino, b.fh, 4096 + 5, Buffer.alloc(3 * 4096, 1)), { message: /^ENOSPC/ },
    'so does one that fills holes between records');
  t.equal(await vol.alloc.freeClusterCount(), free, 'the failed writes hold no clusters');
  t.equal((await assertTree(t, vol, b.ino, 'after ENOSPC')).records, rootRecs, 'and added no records');
  const lastEnd = 2 * (rootRecs - 1) * 4096 + 4096;
  await writeBoth(vol, b, lastEnd + 7, rng.bytes(3 * 4096));
  const shape = await assertTree(t, vol, b.ino, 'after a merging write');
  t.equal(shape.records, rootRecs, 'a write right after the last extent extends its record');
  await assertContent(t, vol, b, 'after ENOSPC and a merging write');
  for (const f of [a, b]) await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'volume after metadata ENOSPC');
  for (const f of [a, b]) await assertOracleContent(t, image, f);
});

t.test('without sparse-alloc, a truncate up past the free space fails with ENOSPC and keeps the size', async (t) => {
  const image = await freshImage(t, { ...TINY, features: 'noinline-data,nosparse,nounwritten' });
  const vol = await mountRw(image);
  const start = await spaceCounts(vol);
  const f = await createFile(vol, 'grow');
  await writeBoth(vol, f, 0, Buffer.from('hello'));
  const free = await vol.alloc.freeClusterCount();
  await t.rejects(vol.setattr(f.ino, { size: 64 * MiB }), { message: /^ENOSPC/ }, 'truncate up to 64 MB on a 16 MB volume: ENOSPC');
  t.equal((await vol.getattr(f.ino)).size, 5, 'the size is unchanged');
  t.equal(await vol.alloc.freeClusterCount(), free, 'and the clusters it got before running out are given back');
  await t.rejects(vol.write(f.ino, f.fh, 32 * MiB, Buffer.from('x')), { message: /^ENOSPC/ }, 'a write whose gap does not fit: ENOSPC');
  t.equal(await vol.alloc.freeClusterCount(), free, 'with nothing kept either');
  await assertTree(t, vol, f.ino, 'after the failed truncate');
  await assertContent(t, vol, f, 'after the failed truncate');
  await truncateBoth(vol, f, 3 * MiB + 3);
  await assertContent(t, vol, f, 'after a truncate up that fits');
  await truncateBoth(vol, f, 0);
  assertSpaceBack(t, start, await spaceCounts(vol), 'after truncating to 0');
  await vol.release(f.ino, f.fh);
  await unmountAndFsck(t, vol, image, 'non-sparse volume after ENOSPC');
});

t.test('a write refused after its first transaction committed returns a short count', async (t) => {
  const rng = new Rng(seedFrom(t));
  const h = await engineOnFaultyDevice(t, { image: { sizeBytes: 256 * MiB, blockSize: 4096, clusterSize: 4096 } });
  const { vol, dev } = h;
  const f = await createFile(vol, 'big');
  await writeBoth(vol, f, 0, rng.bytes(4096));
  // A fresh volume hands the file the clusters after its first: file byte 36 MiB lies 36 MiB further on the device.
  const first = await deviceOffsetOf(vol, f.ino, 0);
  const failing = dev.fail({ op: 'write', startByte: first + 36 * MiB, endByte: first + 36 * MiB + 1 }, { errno: 'EIO' });
  const free = await vol.alloc.freeClusterCount();
  const data = rng.bytes(40 * MiB);
  const n = await writeBoth(vol, f, 0, data);
  t.equal(n, 32 * MiB, 'the 40 MiB write ends short, at the end of its first transaction');
  t.ok(dev.faultStats().injectedFailures > 0, 'the device refused a write of the second transaction');
  failing.remove();
  t.equal((await vol.getattr(f.ino)).size, n, 'the size covers what was written');
  t.equal(await vol.alloc.freeClusterCount(), free - (n / 4096 - 1), 'the refused transaction holds no clusters');
  await assertContent(t, vol, f, 'after the short write');
  await writeBoth(vol, f, n, data.subarray(n));
  await assertContent(t, vol, f, 'after the rest was written');
  await assertTree(t, vol, f.ino, 'after a short write and the rest');

  // Answered before its device writes (an accepted write, as FUSE's are): the same refusal in its last transaction,
  // after the answer, is the next fsync's error, not a short count nobody hears.
  const g = await createFile(vol, 'answered');
  await writeBoth(vol, g, 0, rng.bytes(4096));
  const gFirst = await deviceOffsetOf(vol, g.ino, 0);
  const again = dev.fail({ op: 'write', startByte: gFirst + 36 * MiB, endByte: gFirst + 36 * MiB + 1 }, { errno: 'EIO' });
  // Its first page cached, clean: an overwrite of part of a page goes through the page cache; fsync writes it back.
  await writeBoth(vol, g, 10, rng.bytes(100));
  await vol.fsync(g.ino, g.fh, false);
  t.ok(vol.pages.lookup(g.ino, 0), 'the first page is cached');
  let answer: number | undefined;
  const big = rng.bytes(40 * MiB);
  const got = await vol.write(g.ino, g.fh, 0, big, { accepted: (w) => { answer = w; } });
  again.remove();
  t.equal(answer, 40 * MiB, 'the write was answered whole');
  t.equal(got, 40 * MiB, 'and returns the length it was answered with');
  await t.rejects(vol.fsync(g.ino, g.fh, false), { message: /EIO/ }, 'the device error after the answer is the next fsync\'s');
  t.equal((await vol.getattr(g.ino)).size, 32 * MiB, 'its first transaction is in the file');
  t.ok((await vol.read(g.ino, g.fh, 0, 4096)).equals(big.subarray(0, 4096)), 'and the cached page shows it, not the bytes before');
  await vol.release(g.ino, g.fh);
  await vol.release(f.ino, f.fh);
  await h.finish();
});
