/**
 * The system files mkfs.ocfs2 makes decode as the kernel would see them and
 * re-encode to the same bytes: the system directory holds exactly the names
 * systemInodeName gives; each allocator/journal/local-alloc/truncate-log
 * inode's id2 is the kind the kernel picks, sized by our capacity helpers;
 * the journal superblock (block 0 of journal:NNNN), the slot map (plain and
 * extended), heartbeat blocks and the quota file headers round-trip; on a
 * metaecc volume every quota block's trailer check verifies.
 */
import t from 'tap';
import {
  chainRecsPerInode, decodeGlobalQuotaHeader, decodeHeartbeatBlock, decodeJournalSuperblock, decodeLocalQuotaHeader,
  decodeSlotMap, decodeSlotNodes, dinodeId1View, dinodeId2Kind, encodeGlobalQuotaHeader, encodeHeartbeatBlock,
  encodeJournalSuperblock, encodeLocalQuotaHeader, encodeSlotNodes, extentRecsPerInode, GRPQUOTA, JBD2_MAGIC_NUMBER,
  JBD2_SUPERBLOCK_V2, localAllocSize, NUM_SYSTEM_INODES, OCFS2_FEATURE_RO_COMPAT_GRPQUOTA,
  OCFS2_FEATURE_RO_COMPAT_USRQUOTA, OCFS2_INVALID_SLOT, OCFS2_LAST_GLOBAL_SYSTEM_INODE, OCFS2_SYSTEM_INODES,
  quotaBlockCheckOffsetOf, slotMapBytes, slotMapIsExtended, systemInodeName, truncateRecsPerInode, USRQUOTA, verifyBlockCheck,
  decodeDirBlock, iterateDirEntries, volumeHasDirTrailers, decodeDinode, OCFS2_FEATURE_INCOMPAT_META_ECC,
  BAD_BLOCK_SYSTEM_INODE, USER_QUOTA_SYSTEM_INODE, GROUP_QUOTA_SYSTEM_INODE, LOCAL_USER_QUOTA_SYSTEM_INODE,
  LOCAL_GROUP_QUOTA_SYSTEM_INODE, S_IFMT, backupSuperBlkno, decodeSuperBlockInode, encodeDinode,
} from '../../fs/format';
import { firstDiff, Image, makeVolume, scratchDir, systemInode, VolumeSpec } from './helpers';
import { assertFsckClean } from '../lib/fsck';

const { dir, cleanup } = scratchDir('sysfiles');
t.teardown(cleanup);

const specs: Array<{ name: string; spec: VolumeSpec }> = [
  { name: '4096/4096, 2 slots, defaults (extended slot map)', spec: { blockSize: 4096, clusterSize: 4096, slots: 2 } },
  { name: '1024/8192, 3 slots, plain slot map, quotas', spec: { blockSize: 1024, clusterSize: 8192, slots: 3, features: 'noextended-slotmap,noindexed-dirs,usrquota,grpquota' } },
  { name: '4096/4096, 2 slots, metaecc, quotas', spec: { blockSize: 4096, clusterSize: 4096, slots: 2, features: 'metaecc,usrquota,grpquota' } },
  { name: '512/4096, 2 slots, metaecc', spec: { blockSize: 512, clusterSize: 4096, slots: 2, features: 'metaecc,noindexed-dirs' } },
];

for (const { name, spec } of specs) {
  t.test(name, async (t) => {
    const img = new Image(makeVolume(dir, `v${spec.blockSize}-${spec.slots}`, spec));
    t.teardown(() => img.close());
    const bs = img.blockSize;
    const sb = img.sb;
    const slots = sb.s_max_slots;
    const quotas = (sb.s_feature_ro_compat & (OCFS2_FEATURE_RO_COMPAT_USRQUOTA | OCFS2_FEATURE_RO_COMPAT_GRPQUOTA)) !== 0;

    // The system directory holds exactly the names of the C table (bad_blocks is made too; quota files only with quotas).
    const sysDir = decodeDinode(img.read(sb.s_system_dir_blkno), sb.s_system_dir_blkno);
    const trailers = volumeHasDirTrailers(sb.s_feature_incompat);
    const listed = (sysDir.data
      ? [...iterateDirEntries(sysDir.data.id_data, 0, sysDir.i_size)]
      : img.fileBlocks(sysDir.list!, Math.ceil(sysDir.i_size / bs)).flatMap((b) => decodeDirBlock(img.read(b), { hasTrailer: trailers }).entries)
    ).filter((de) => de.inode !== 0).map((de) => de.name.toString()).filter((n) => n !== '.' && n !== '..').sort();
    const expected: string[] = [];
    const quotaIdx = [USER_QUOTA_SYSTEM_INODE, GROUP_QUOTA_SYSTEM_INODE, LOCAL_USER_QUOTA_SYSTEM_INODE, LOCAL_GROUP_QUOTA_SYSTEM_INODE];
    for (let i = BAD_BLOCK_SYSTEM_INODE; i < NUM_SYSTEM_INODES; i++) {
      if (quotaIdx.includes(i) && !quotas) continue;
      if (i <= OCFS2_LAST_GLOBAL_SYSTEM_INODE) expected.push(systemInodeName(i));
      else for (let s = 0; s < slots; s++) expected.push(systemInodeName(i, s));
    }
    t.same(listed, expected.sort(), 'system directory names = systemInodeName over the C table');
    for (let i = 0; i < NUM_SYSTEM_INODES; i++) {
      if (quotaIdx.includes(i) && !quotas) continue;
      const { d } = systemInode(img, systemInodeName(i, 0));
      t.equal(d.i_mode & S_IFMT, OCFS2_SYSTEM_INODES[i].si_mode & S_IFMT, `${systemInodeName(i, 0)}: file type as in the table`);
    }

    // id2 kinds and capacities as the kernel sizes them.
    const kinds: Record<string, string> = {
      global_bitmap: 'chain', global_inode_alloc: 'chain', 'inode_alloc:0000': 'chain', 'extent_alloc:0000': 'chain',
      'local_alloc:0000': 'lab', 'truncate_log:0000': 'dealloc', 'journal:0000': 'list', heartbeat: 'list', slot_map: 'list',
    };
    for (const [file, kind] of Object.entries(kinds)) {
      const { d } = systemInode(img, file);
      t.equal(dinodeId2Kind(d), kind, `${file}: id2 is ${kind}`);
      if (d.chain) t.equal(d.chain.cl_count, chainRecsPerInode(bs), `${file}: cl_count = chainRecsPerInode(${bs})`);
      if (d.lab) t.equal(d.lab.la_size, localAllocSize(bs), `${file}: la_size = localAllocSize(${bs})`);
      if (d.dealloc) t.equal(d.dealloc.tl_count, truncateRecsPerInode(bs), `${file}: tl_count = truncateRecsPerInode(${bs})`);
      if (d.list) t.equal(d.list.l_count, extentRecsPerInode(bs), `${file}: l_count = extentRecsPerInode(${bs})`);
    }
    t.equal(dinodeId1View(systemInode(img, 'journal:0000').d), 'journal1', 'journal inodes use the journal1 view of id1');
    const gb = systemInode(img, 'global_bitmap').d;
    t.equal(dinodeId1View(gb), 'bitmap1');
    t.equal(gb.i_total, gb.i_clusters, 'global_bitmap: i_total (bitmap1 view) = i_clusters');

    // Journal superblocks.
    for (let s = 0; s < slots; s++) {
      const { d } = systemInode(img, systemInodeName(10, s));
      const blk0 = img.fileBlocks(d.list!, 1)[0];
      const raw = img.read(blk0);
      const jsb = decodeJournalSuperblock(raw, `journal:${s} superblock`);
      t.equal(jsb.h_magic, JBD2_MAGIC_NUMBER);
      t.equal(jsb.h_blocktype, JBD2_SUPERBLOCK_V2, `journal:${s}: a v2 superblock`);
      t.equal(jsb.s_blocksize, bs, 'journal s_blocksize = volume block size');
      t.equal(jsb.s_maxlen, d.i_size / bs, 'journal s_maxlen = file blocks');
      const again = Buffer.alloc(bs);
      encodeJournalSuperblock(jsb, again);
      t.ok(again.equals(raw), `journal:${s} superblock round-trips (${firstDiff(raw, again)})`);
    }

    // Slot map: free after mkfs, in the format the feature says.
    const sm = systemInode(img, 'slot_map').d;
    const smBytes = Buffer.concat(img.fileBlocks(sm.list!, Math.ceil(sm.i_size / bs)).map((b) => img.read(b)));
    const extended = slotMapIsExtended(sb.s_feature_incompat);
    const nodes = decodeSlotNodes(smBytes, slots, extended);
    t.same(nodes, new Array(slots).fill(null), `slot map (${extended ? 'extended' : 'plain'}): every slot free`);
    if (!extended) t.same(decodeSlotMap(smBytes, slots), new Array(slots).fill(OCFS2_INVALID_SLOT), 'plain slots hold -1');
    // Only s_max_slots entries are the map; mkfs fills the rest of a plain map's file with -1 too.
    const smAgain = Buffer.from(smBytes);
    smAgain.fill(0, 0, slotMapBytes(slots, extended));
    encodeSlotNodes(nodes, smAgain, extended);
    t.ok(smAgain.equals(smBytes), `slot map re-encodes its ${slotMapBytes(slots, extended)} bytes identically (${firstDiff(smBytes, smAgain)})`);
    if (!extended) t.ok(smBytes.every((b) => b === 0xff), 'plain map: mkfs writes -1 in every entry of the file');

    // Heartbeat blocks (one per node slot of the region).
    const hb = systemInode(img, 'heartbeat').d;
    for (const b of img.fileBlocks(hb.list!, 4)) {
      const raw = img.read(b);
      const again = Buffer.from(raw);
      encodeHeartbeatBlock(decodeHeartbeatBlock(raw), again);
      t.ok(again.equals(raw), `heartbeat block ${b} round-trips`);
    }

    // Quota files.
    if (quotas) {
      const metaecc = (sb.s_feature_incompat & OCFS2_FEATURE_INCOMPAT_META_ECC) !== 0;
      const files: Array<[string, number, boolean]> = [['aquota.user', USRQUOTA, true], ['aquota.group', GRPQUOTA, true]];
      for (let s = 0; s < slots; s++) {
        files.push([systemInodeName(LOCAL_USER_QUOTA_SYSTEM_INODE, s), USRQUOTA, false]);
        files.push([systemInodeName(LOCAL_GROUP_QUOTA_SYSTEM_INODE, s), GRPQUOTA, false]);
      }
      for (const [file, type, global] of files) {
        const { d } = systemInode(img, file);
        const blocks = img.fileBlocks(d.list!, Math.ceil(d.i_size / bs));
        const raw = img.read(blocks[0]);
        const again = Buffer.from(raw);
        if (global) encodeGlobalQuotaHeader(decodeGlobalQuotaHeader(raw, type, file), again);
        else encodeLocalQuotaHeader(decodeLocalQuotaHeader(raw, type, file), again);
        t.ok(again.equals(raw), `${file}: header decodes (magic checked) and re-encodes`);
        if (metaecc) {
          const bad = blocks.filter((b) => verifyBlockCheck(img.read(b), quotaBlockCheckOffsetOf(bs)) !== 'ok');
          t.same(bad, [], `${file}: all ${blocks.length} quota blocks verify (dq_check in the last 8 bytes)`);
        }
      }
    }
    await assertFsckClean(t, img.file);
  });
}

t.test('backup superblocks (1 GiB and 4 GiB into a 4.5 GiB volume) decode and round-trip', async (t) => {
  const img = new Image(makeVolume(dir, 'backups', { blockSize: 4096, clusterSize: 4096, slots: 2, sizeBytes: 4.5 * 2 ** 30 }));
  t.teardown(() => img.close());
  const primary = img.sbInode;
  for (const i of [0, 1]) {
    const blkno = backupSuperBlkno(img.blockSize, i);
    t.equal(blkno, (2 ** 30 * 4 ** i) / img.blockSize, `backup ${i} at block ${blkno}`);
    const raw = img.read(blkno);
    const b = decodeSuperBlockInode(raw, blkno);
    t.equal(b.i_blkno, blkno, 'says where it lives');
    t.same(b.super.s_uuid, primary.super.s_uuid, 'same volume');
    t.equal(b.super.s_root_blkno, primary.super.s_root_blkno);
    const again = Buffer.alloc(img.blockSize);
    encodeDinode(b, again);
    t.ok(again.equals(raw), `backup ${i} re-encodes to the same bytes (${firstDiff(raw, again)})`);
  }
  t.equal(backupSuperBlkno(img.blockSize, 6), 0, 'there are at most 6 backups');
  await assertFsckClean(t, img.file);
});
