/**
 * Every field table says what the C compiler says: a generated C program
 * prints offsetof() and sizeof() of each field from the installed headers
 * (ocfs2-kernel/ocfs2_fs.h, ocfs2/jbd2.h, quota_tree.h, o2cb heartbeat),
 * and each table entry must match in offset and width; the fixed-size
 * constants must match sizeof of their structs. This is how a typo in an
 * offset (or a wrong comment in the header, like the dir trailer's) is caught.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as F from '../../fs/format';
import { fieldSize, Layout } from '../../fs/format';
import { scratchDir } from './helpers';

interface Spec {
  table: Layout;
  struct: string;
  /** C member path for a table name when it is not the same name */
  rename?: Record<string, string>;
  /** table entries that are not C members (later kernel names for padding bytes) */
  skip?: string[];
  /** extra members: [C member, expected offset] for flexible arrays and nested structs */
  extra?: Array<[string, number]>;
}

const specs: Spec[] = [
  { table: F.BLOCK_CHECK, struct: 'struct ocfs2_block_check' },
  { table: F.EXTENT_REC, struct: 'struct ocfs2_extent_rec' },
  { table: F.EXTENT_LIST, struct: 'struct ocfs2_extent_list', extra: [['l_recs', F.EXTENT_LIST_RECS_OFFSET]] },
  { table: F.CHAIN_REC, struct: 'struct ocfs2_chain_rec' },
  { table: F.CHAIN_LIST, struct: 'struct ocfs2_chain_list', extra: [['cl_recs', F.CHAIN_LIST_RECS_OFFSET]] },
  { table: F.TRUNCATE_REC, struct: 'struct ocfs2_truncate_rec' },
  { table: F.TRUNCATE_LOG, struct: 'struct ocfs2_truncate_log', extra: [['tl_recs', F.TRUNCATE_LOG_RECS_OFFSET]] },
  { table: F.EXTENT_BLOCK, struct: 'struct ocfs2_extent_block', extra: [['h_list', F.EXTENT_BLOCK_LIST_OFFSET]] },
  { table: F.EXTENDED_SLOT, struct: 'struct ocfs2_extended_slot' },
  { table: F.CLUSTER_INFO, struct: 'struct ocfs2_cluster_info' },
  { table: F.SUPER_BLOCK, struct: 'struct ocfs2_super_block', extra: [['s_cluster_info', F.SUPER_BLOCK_CLUSTER_INFO_OFFSET]] },
  { table: F.LOCAL_ALLOC, struct: 'struct ocfs2_local_alloc', extra: [['la_bitmap', F.LOCAL_ALLOC_BITMAP_OFFSET]] },
  { table: F.INLINE_DATA, struct: 'struct ocfs2_inline_data', extra: [['id_data', F.INLINE_DATA_DATA_OFFSET]] },
  {
    table: F.DINODE, struct: 'struct ocfs2_dinode',
    rename: {
      i_rdev: 'id1.dev1.i_rdev', i_used: 'id1.bitmap1.i_used', i_total: 'id1.bitmap1.i_total',
      ij_flags: 'id1.journal1.ij_flags', ij_recovery_generation: 'id1.journal1.ij_recovery_generation',
    },
    extra: [['id2', F.dinodeId2Offset], ['id2.i_symlink', F.dinodeId2Offset]],
  },
  { table: F.DIR_ENTRY, struct: 'struct ocfs2_dir_entry', extra: [['name', F.OCFS2_DIR_MEMBER_LEN]] },
  { table: F.DIR_TRAILER, struct: 'struct ocfs2_dir_block_trailer' },
  { table: F.DX_ENTRY, struct: 'struct ocfs2_dx_entry' },
  { table: F.DX_ENTRY_LIST, struct: 'struct ocfs2_dx_entry_list', extra: [['de_entries', F.DX_ENTRY_LIST_ENTRIES_OFFSET]] },
  { table: F.DX_ROOT, struct: 'struct ocfs2_dx_root_block', extra: [['dr_list', F.DX_ROOT_UNION_OFFSET], ['dr_entries', F.DX_ROOT_UNION_OFFSET]] },
  { table: F.DX_LEAF, struct: 'struct ocfs2_dx_leaf', extra: [['dl_list', F.DX_LEAF_LIST_OFFSET]] },
  { table: F.GROUP_DESC, struct: 'struct ocfs2_group_desc', extra: [['bg_bitmap', F.GROUP_DESC_BITMAP_OFFSET], ['bg_list', F.GROUP_DESC_LIST_OFFSET]] },
  { table: F.REFCOUNT_REC, struct: 'struct ocfs2_refcount_rec' },
  { table: F.REFCOUNT_LIST, struct: 'struct ocfs2_refcount_list', extra: [['rl_recs', F.REFCOUNT_LIST_RECS_OFFSET]] },
  { table: F.REFCOUNT_BLOCK, struct: 'struct ocfs2_refcount_block', extra: [['rf_records', F.REFCOUNT_BLOCK_UNION_OFFSET], ['rf_list', F.REFCOUNT_BLOCK_UNION_OFFSET]] },
  { table: F.XATTR_ENTRY, struct: 'struct ocfs2_xattr_entry' },
  { table: F.XATTR_HEADER, struct: 'struct ocfs2_xattr_header', extra: [['xh_entries', F.XATTR_HEADER_ENTRIES_OFFSET]] },
  { table: F.XATTR_VALUE_ROOT, struct: 'struct ocfs2_xattr_value_root', extra: [['xr_list', F.XATTR_VALUE_ROOT_LIST_OFFSET]] },
  { table: F.XATTR_TREE_ROOT, struct: 'struct ocfs2_xattr_tree_root', extra: [['xt_list', F.XATTR_TREE_ROOT_LIST_OFFSET]] },
  { table: F.XATTR_BLOCK, struct: 'struct ocfs2_xattr_block', extra: [['xb_attrs', F.XATTR_BLOCK_ATTRS_OFFSET]] },
  { table: F.DISK_DQHEADER, struct: 'struct ocfs2_disk_dqheader' },
  { table: F.GLOBAL_DISK_DQINFO, struct: 'struct ocfs2_global_disk_dqinfo' },
  { table: F.GLOBAL_DISK_DQBLK, struct: 'struct ocfs2_global_disk_dqblk' },
  { table: F.LOCAL_DISK_DQINFO, struct: 'struct ocfs2_local_disk_dqinfo' },
  { table: F.LOCAL_DISK_CHUNK, struct: 'struct ocfs2_local_disk_chunk', extra: [['dqc_bitmap', F.LOCAL_DISK_CHUNK_BITMAP_OFFSET]] },
  { table: F.LOCAL_DISK_DQBLK, struct: 'struct ocfs2_local_disk_dqblk' },
  { table: F.DISK_DQTRAILER, struct: 'struct ocfs2_disk_dqtrailer' },
  { table: F.QT_DISK_DQDBHEADER, struct: 'struct qt_disk_dqdbheader' },
  { table: F.O2HB_DISK_HEARTBEAT_BLOCK, struct: 'struct o2hb_disk_heartbeat_block' },
  { table: F.JOURNAL_HEADER, struct: 'journal_header_t' },
  {
    table: F.JOURNAL_SUPERBLOCK, struct: 'journal_superblock_t',
    rename: { h_magic: 's_header.h_magic', h_blocktype: 's_header.h_blocktype', h_sequence: 's_header.h_sequence' },
    skip: ['s_checksum_type', 's_checksum'],
    extra: [['s_users', F.JOURNAL_SUPERBLOCK_USERS_OFFSET]],
  },
  { table: F.COMMIT_HEADER, struct: 'struct commit_header' },
  {
    table: F.JOURNAL_REVOKE_HEADER, struct: 'journal_revoke_header_t',
    rename: { h_magic: 'r_header.h_magic', h_blocktype: 'r_header.h_blocktype', h_sequence: 'r_header.h_sequence' },
  },
  { table: F.JOURNAL_BLOCK_TAG, struct: 'journal_block_tag_t' },
];

const sizes: Array<[string, number]> = [
  ['struct ocfs2_extent_rec', F.EXTENT_REC_SIZE],
  ['struct ocfs2_chain_rec', F.CHAIN_REC_SIZE],
  ['struct ocfs2_truncate_rec', F.TRUNCATE_REC_SIZE],
  ['struct ocfs2_dir_block_trailer', F.DIR_TRAILER_SIZE],
  ['struct ocfs2_dx_entry', F.DX_ENTRY_SIZE],
  ['struct ocfs2_refcount_rec', F.REFCOUNT_REC_SIZE],
  ['struct ocfs2_xattr_entry', F.XATTR_ENTRY_SIZE],
  ['struct ocfs2_super_block', F.SUPER_BLOCK_SIZE],
  ['struct ocfs2_extended_slot', F.EXTENDED_SLOT_SIZE],
  ['struct ocfs2_block_check', F.BLOCK_CHECK_SIZE],
  ['struct o2hb_disk_heartbeat_block', F.O2HB_DISK_HEARTBEAT_BLOCK_SIZE],
  ['journal_superblock_t', F.JOURNAL_SUPERBLOCK_SIZE],
  ['struct commit_header', F.COMMIT_HEADER_SIZE],
  ['journal_revoke_header_t', F.JOURNAL_REVOKE_HEADER_SIZE],
  ['journal_header_t', F.JOURNAL_HEADER_SIZE],
  ['struct ocfs2_global_disk_dqblk', F.GLOBAL_DISK_DQBLK_SIZE],
  ['struct ocfs2_local_disk_dqblk', F.LOCAL_DISK_DQBLK_SIZE],
  ['struct qt_disk_dqdbheader', F.QT_DISK_DQDBHEADER_SIZE],
  ['struct ocfs2_xattr_value_root', F.OCFS2_XATTR_ROOT_SIZE - F.EXTENT_REC_SIZE],
];

t.test('field tables match offsetof/sizeof from the C headers', async (t) => {
  const { dir, cleanup } = scratchDir('layouts');
  t.teardown(cleanup);
  const lines: string[] = [];
  const expected = new Map<string, { off: number; size?: number }>();
  for (const s of specs) {
    for (const name of Object.keys(s.table)) {
      if (s.skip?.includes(name)) continue;
      const member = s.rename?.[name] ?? name;
      const key = `${s.struct}.${member}`;
      expected.set(key, { off: s.table[name][0], size: fieldSize(s.table[name]) });
      lines.push(`  printf("%s\\t%zu\\t%zu\\n", "${key}", offsetof(${s.struct}, ${member}), sizeof(((${s.struct} *)0)->${member}));`);
    }
    for (const [member, off] of s.extra ?? []) {
      const key = `${s.struct}.${member}`;
      expected.set(key, { off });
      lines.push(`  printf("%s\\t%zu\\t%zu\\n", "${key}", offsetof(${s.struct}, ${member}), (size_t)0);`);
    }
  }
  for (const [struct, size] of sizes) {
    expected.set(`sizeof ${struct}`, { off: size });
    lines.push(`  printf("%s\\t%zu\\t%zu\\n", "sizeof ${struct}", sizeof(${struct}), (size_t)0);`);
  }
  const src = [
    '#include <stdio.h>', '#include <stddef.h>', '#include <ocfs2/ocfs2.h>', '#include <ocfs2-kernel/quota_tree.h>',
    '#include <o2cb/ocfs2_heartbeat.h>', 'int main(void) {', ...lines, '  return 0;', '}',
  ].join('\n');
  const c = path.join(dir, 'offsets.c');
  const exe = path.join(dir, 'offsets');
  fs.writeFileSync(c, src);
  execFileSync('gcc', ['-o', exe, c], { stdio: 'pipe' });
  const out = execFileSync(exe, { encoding: 'utf8' }).trim().split('\n');
  let checked = 0;
  for (const line of out) {
    const [key, offStr, sizeStr] = line.split('\t');
    const want = expected.get(key)!;
    const off = Number(offStr);
    const size = Number(sizeStr);
    if (off !== want.off) t.fail(`${key}: C says ${key.startsWith('sizeof') ? 'size' : 'offset'} ${off}, table says ${want.off}`);
    else if (want.size !== undefined && size !== want.size) t.fail(`${key}: C says ${size} bytes, table says ${want.size}`);
    else checked++;
  }
  t.equal(out.length, expected.size, 'the program printed every field');
  t.equal(checked, expected.size, `all ${expected.size} offsets and sizes agree with the compiler`);
});

t.test('capacity helpers equal the header\'s inline functions at every block size', async (t) => {
  const { dir, cleanup } = scratchDir('capacities');
  t.teardown(cleanup);
  const D = F.OCFS2_FEATURE_INCOMPAT_DISCONTIG_BG;
  const checks: Array<[string, (bs: number) => number]> = [
    ['ocfs2_extent_recs_per_inode(bs)', F.extentRecsPerInode],
    ['ocfs2_chain_recs_per_inode(bs)', F.chainRecsPerInode],
    ['ocfs2_extent_recs_per_eb(bs)', F.extentRecsPerExtentBlock],
    ['ocfs2_extent_recs_per_gd(bs)', F.extentRecsPerGroupDesc],
    ['ocfs2_dx_entries_per_leaf(bs)', F.dxEntriesPerLeaf],
    ['ocfs2_dx_entries_per_root(bs)', F.dxEntriesPerRoot],
    ['ocfs2_extent_recs_per_dx_root(bs)', F.extentRecsPerDxRoot],
    ['ocfs2_local_alloc_size(bs)', F.localAllocSize],
    ['ocfs2_truncate_recs_per_inode(bs)', F.truncateRecsPerInode],
    ['ocfs2_xattr_recs_per_xb(bs)', F.xattrRecsPerXattrBlock],
    ['ocfs2_extent_recs_per_rb(bs)', F.extentRecsPerRefcountBlock],
    ['ocfs2_refcount_recs_per_rb(bs)', F.refcountRecsPerRefcountBlock],
    ['ocfs2_fast_symlink_chars(bs)', F.fastSymlinkChars],
    ['ocfs2_max_inline_data_with_xattr(bs, NULL)', (bs) => F.maxInlineDataWithXattr(bs)],
    ['ocfs2_max_inline_data_with_xattr(bs, &xdi)', (bs) => F.maxInlineDataWithXattr(bs, { i_dyn_features: F.OCFS2_INLINE_XATTR_FL, i_xattr_inline_size: 256 })],
    ['ocfs2_group_bitmap_size(bs, 0, 0)', (bs) => F.groupBitmapSize(bs, false, 0)],
    ['ocfs2_group_bitmap_size(bs, 1, 0)', (bs) => F.groupBitmapSize(bs, true, 0)],
    [`ocfs2_group_bitmap_size(bs, 1, ${D})`, (bs) => F.groupBitmapSize(bs, true, D)],
    ...[0, 1, 2, 3, 4, 5].map((i): [string, (bs: number) => number] => [`(long long)ocfs2_backup_super_blkno(bs, ${i})`, (bs) => F.backupSuperBlkno(bs, i)]),
  ];
  const body = checks.map(([expr]) => `    printf("%d\\t%s\\t%lld\\n", bs, "${expr.replace(/"/g, '\\"')}", (long long)(${expr}));`).join('\n');
  const src = [
    '#include <stdio.h>', '#include <stddef.h>', '#include <ocfs2/ocfs2.h>', 'int main(void) {',
    '  static struct ocfs2_dinode xdi;', '  xdi.i_dyn_features = OCFS2_INLINE_XATTR_FL; xdi.i_xattr_inline_size = 256;',
    '  for (int bs = 512; bs <= 4096; bs *= 2) {', body, '  }', '  return 0;', '}',
  ].join('\n');
  const c = path.join(dir, 'cap.c');
  const exe = path.join(dir, 'cap');
  fs.writeFileSync(c, src);
  execFileSync('gcc', ['-o', exe, c], { stdio: 'pipe' });
  const rows = execFileSync(exe, { encoding: 'utf8' }).trim().split('\n').map((l) => l.split('\t'));
  const byExpr = new Map(checks);
  let agree = 0;
  for (const [bs, expr, value] of rows) {
    const ours = byExpr.get(expr)!(Number(bs));
    if (ours === Number(value)) agree++;
    else t.fail(`${expr} at ${bs}: header says ${value}, ours ${ours}`);
  }
  t.equal(agree, checks.length * 4, `${checks.length} helpers agree at 512, 1024, 2048 and 4096`);
});
