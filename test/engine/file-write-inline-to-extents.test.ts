/**
 * Inline-data files: writes and truncates stay in the inode while the data
 * fits (gaps and regrown tails read as zeros), and the first write or
 * truncate that does not fit moves the bytes into a cluster and gives the
 * inode an extent list (ocfs2_convert_inline_data_to_extents). An empty
 * inline file converts without a cluster. 4K and 512-byte blocks; fsck.ocfs2
 * -fn and libocfs2 check the result.
 */
import t from 'tap';
import { Rng, seedFrom } from '../lib/seed';
import { maxInlineDataWithXattr } from '../../fs/format/dinode';
import type { Volume } from '../../fs/volume';
import {
  assertContent, assertOracleContent, assertTree, createFile, freshImage, mountRw, truncateBoth, unmountAndFsck,
  writeBoth, type TestFile,
} from './extent-harness';

async function inlineState(vol: Volume, f: TestFile): Promise<{ inline: boolean; clusters: number; idCount?: number }> {
  const inode = await vol.iget(f.ino);
  return { inline: inode.inline, clusters: inode.di.i_clusters, idCount: inode.di.data?.id_count };
}

for (const blockSize of [4096, 512]) {
  t.test(`inline data grows in place, then converts to extents: ${blockSize}-byte blocks`, async (t) => {
    const rng = new Rng(seedFrom(t) ^ blockSize);
    const cs = 4096;
    const image = await freshImage(t, { blockSize, clusterSize: cs });
    const vol = await mountRw(image);
    const cap = maxInlineDataWithXattr(blockSize);

    const a = await createFile(vol, 'a');
    t.same(await inlineState(vol, a), { inline: true, clusters: 0, idCount: cap }, `a new file is inline with room for ${cap} bytes`);
    await writeBoth(vol, a, 0, rng.bytes(100));
    await writeBoth(vol, a, Math.floor(cap / 2), rng.bytes(10));
    t.ok((await inlineState(vol, a)).inline, 'writes that fit stay inline');
    await assertContent(t, vol, a, 'inline with a gap');
    await truncateBoth(vol, a, 50);
    await truncateBoth(vol, a, cap - 1);
    t.ok((await inlineState(vol, a)).inline, 'truncates that fit stay inline');
    await assertContent(t, vol, a, 'inline truncated down and up (the old tail reads as zeros)');
    await writeBoth(vol, a, cap - 1, rng.bytes(1));
    t.same(await inlineState(vol, a), { inline: true, clusters: 0, idCount: cap }, 'a write ending exactly at the capacity stays inline');
    await writeBoth(vol, a, cap, rng.bytes(1));
    t.same(await inlineState(vol, a), { inline: false, clusters: 1, idCount: undefined }, 'one byte more converts it to one cluster');
    await assertContent(t, vol, a, 'converted');
    await assertTree(t, vol, a.ino, 'converted');

    const b = await createFile(vol, 'b');
    await writeBoth(vol, b, 0, rng.bytes(cap - 7));
    await writeBoth(vol, b, 5 * cs + 3, rng.bytes(2 * cs));
    t.same(await inlineState(vol, b), { inline: false, clusters: 4, idCount: undefined },
      'a far write converts: the inline bytes take cluster 0, the write clusters 5..7, a hole between');
    await assertContent(t, vol, b, 'converted by a far write');

    const c = await createFile(vol, 'c');
    await writeBoth(vol, c, 3 * cs, rng.bytes(10));
    t.same(await inlineState(vol, c), { inline: false, clusters: 1, idCount: undefined }, 'an empty inline file converts without a cluster of its own');
    await assertContent(t, vol, c, 'empty inline file written far away');

    const d = await createFile(vol, 'd');
    await writeBoth(vol, d, 0, rng.bytes(20));
    await truncateBoth(vol, d, 10 * cs + 1);
    t.same(await inlineState(vol, d), { inline: false, clusters: 1, idCount: undefined }, 'truncating past the capacity converts (sparse: one cluster)');
    await assertContent(t, vol, d, 'converted by truncate');

    for (const f of [a, b, c, d]) await vol.release(f.ino, f.fh);
    await unmountAndFsck(t, vol, image, 'volume with converted files');
    for (const f of [a, b, c, d]) await assertOracleContent(t, image, f);
  });
}
