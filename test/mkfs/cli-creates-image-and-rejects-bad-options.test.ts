/**
 * The mkfs command (runMkfs): an image path that does not exist plus a size
 * creates a sparse image and formats it; an existing OCFS2 volume is not
 * overwritten without -F; a dry run writes nothing; bad options fail with
 * exit 1 and one line naming the problem.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import t from 'tap';
import { runMkfs } from '../../fs/mkfs';
import { assertFsckStrict, lsDir, MiB, superblockStats, tempDir } from './helpers';

async function mkfs(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runMkfs(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

t.test('a missing image plus a size is created, sparse, and formatted', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-cli-');
  const image = path.join(dir, 'new.img');
  const r = await mkfs(['-L', 'fresh', '-N', '2', image, '300M']);
  t.equal(r.code, 0, 'exit 0');
  t.match(r.out, /Block size: 1024 \(10 bits\)/, 'prints the geometry');
  t.match(r.out, /mkfs successful/);
  const st = await fs.stat(image);
  t.equal(st.size, 300 * MiB, 'the image has the size asked for');
  t.ok(st.blocks * 512 < 64 * MiB, `the image is sparse (${st.blocks * 512} bytes allocated)`);
  await assertFsckStrict(t, image, 'the created image');
  const sb = await superblockStats(image);
  t.equal(sb.label, 'fresh');
  t.equal(sb.maxSlots, 2);
  t.same((await lsDir(image, '/')).map((e) => e.name), ['.', '..', 'lost+found'], 'root holds . .. lost+found');
  t.same((await lsDir(image, '//')).map((e) => e.name), [
    '.', '..', 'bad_blocks', 'global_inode_alloc', 'slot_map', 'heartbeat', 'global_bitmap',
    'orphan_dir:0000', 'orphan_dir:0001', 'extent_alloc:0000', 'extent_alloc:0001', 'inode_alloc:0000', 'inode_alloc:0001',
    'journal:0000', 'journal:0001', 'local_alloc:0000', 'local_alloc:0001', 'truncate_log:0000', 'truncate_log:0001',
  ], 'the system directory holds every system file');
});

t.test('blocks-count in 4K blocks, as mkfs.ocfs2 takes it', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-cli-');
  const image = path.join(dir, 'count.img');
  const r = await mkfs(['-q', '-b', '2048', image, '131072']);
  t.equal(r.code, 0, r.err);
  t.equal((await fs.stat(image)).size, 131072 * 2048, 'blocks of -b bytes');
  await assertFsckStrict(t, image, 'the counted image');
});

t.test('an existing volume needs -F; a dry run writes nothing', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-cli-');
  const image = path.join(dir, 'vol.img');
  t.equal((await mkfs(['-q', '-L', 'first', image, '128M'])).code, 0);
  const again = await mkfs(['-q', '-L', 'second', image]);
  t.equal(again.code, 1, 'refused');
  t.match(again.err, /already holds an OCFS2 volume.*-F/);
  t.equal((await superblockStats(image)).label, 'first', 'the volume is untouched');
  const dry = await mkfs(['-n', '-F', '-L', 'dry', '-b', '4096', image]);
  t.equal(dry.code, 0);
  t.match(dry.out, /Dry run: nothing written/);
  t.match(dry.out, /Block size: 4096/);
  t.equal((await superblockStats(image)).label, 'first', 'a dry run writes nothing');
  const forced = await mkfs(['-q', '-F', '-L', 'second', '-C', '64K', image]);
  t.equal(forced.code, 0, forced.err);
  const sb = await superblockStats(image);
  t.equal(sb.label, 'second');
  t.equal(sb.clusterSize, 65536);
  await assertFsckStrict(t, image, 'the reformatted volume');
});

t.test('bad options exit 1 with a message naming them', async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-cli-');
  const image = path.join(dir, 'bad.img');
  const cases: [string[], RegExp][] = [
    [['-b', '3000', image, '64M'], /bad block size 3000/],
    [['-b', '8192', image, '64M'], /bad block size 8192/],
    [['-C', '2K', image, '64M'], /bad cluster size 2048/],
    [['-C', '2M', image, '64M'], /bad cluster size 2097152/],
    [['-N', '0', image, '64M'], /bad slot count 0/],
    [['-N', '256', image, '64M'], /bad slot count 256/],
    [['-L', 'x'.repeat(64), image, '64M'], /label too long/],
    [['-J', 'size=1M', image, '64M'], /bad journal size/],
    [['-J', 'size=xyz', image, '64M'], /bad journal size "xyz"/],
    [['-J', 'bogus', image, '64M'], /bad journal option "bogus"/],
    [['-M', 'shared', image, '64M'], /bad mount type "shared"/],
    [['--fs-features=metaecc,nosuch', image, '64M'], /unsupported feature "nosuch"/],
    [['--fs-features=sparse,nosparse', image, '64M'], /conflicting features/],
    [['--fs-features=usrquota', image, '64M'], /usrquota/],
    [['--cluster-stack=o2cb', '--cluster-name=c', image, '64M'], /local volume/],
    [['-M', 'cluster', '--cluster-stack=o2cb', image, '64M'], /missing --cluster-name/],
    [['-M', 'cluster', '--cluster-stack=zzz', '--cluster-name=c', image, '64M'], /unknown cluster stack "zzz"/],
    [[image, '64X'], /bad blocks-count "64X"|bad device size "64X"/],
    [[image, '1.5G'], /bad (blocks-count|device size) "1.5G"/],
    [[image], /does not exist: give a size/],
    [[image, '1M'], /too small/],
    [['--bogus', image, '64M'], /unknown option --bogus/],
    [[], /no device given/],
  ];
  for (const [argv, re] of cases) {
    const r = await mkfs(argv);
    t.equal(r.code, 1, `${argv.join(' ')}: exit 1`);
    t.match(r.err, re, `${argv.join(' ')}: says why`);
    t.equal(r.err.trim().split('\n')[0].startsWith('mkfs: '), true, `${argv.join(' ')}: one "mkfs:" line first`);
  }
  await t.rejects(fs.stat(image), { code: 'ENOENT' }, 'an image mkfs created but could not format is removed');
  const help = await mkfs(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /^usage: mkfs/);
});
