/**
 * parseMkfsArgs reads mkfs.ocfs2's command line: short and long flags,
 * attached and separate arguments, sizes with units, -J options, feature
 * lists with "no" prefixes and their dependencies (nosparse drops
 * unwritten), and the trailing blocks-count or size.
 */
import t from 'tap';
import {
  OCFS2_FEATURE_COMPAT_BACKUP_SB, OCFS2_FEATURE_INCOMPAT_INLINE_DATA, OCFS2_FEATURE_INCOMPAT_META_ECC,
  OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, OCFS2_FEATURE_RO_COMPAT_UNWRITTEN,
} from '../../fs/format/constants';
import { MkfsUsageError, parseMkfsArgs, parseSize, resolveVolumeFeatures } from '../../fs/mkfs';

t.test('sizes', async (t) => {
  t.equal(parseSize('4096'), 4096);
  t.equal(parseSize('4k'), 4096);
  t.equal(parseSize('64K'), 65536);
  t.equal(parseSize('1M'), 1048576);
  t.equal(parseSize('1G'), 1073741824);
  t.equal(parseSize('2T'), 2 * 2 ** 40);
  t.equal(parseSize('1GiB'), 1073741824);
  t.equal(parseSize('0x1000'), 4096);
  t.equal(parseSize('512b'), 512);
  for (const bad of ['', 'G', '1.5G', '-1', '1X', '1 2', 'ten']) t.throws(() => parseSize(bad), MkfsUsageError, `"${bad}" is refused`);
});

t.test('flags', async (t) => {
  const a = parseMkfsArgs(['-b', '1k', '-C64K', '-N', '4', '-L', 'data', '-J', 'size=8M,block64', '-M', 'cluster', '-q', '-F', 'dev.img', '1G']);
  t.equal(a.devicePath, 'dev.img');
  t.equal(a.sizeBytes, 2 ** 30);
  t.equal(a.options.blockSizeBytes, 1024);
  t.equal(a.options.clusterSizeBytes, 65536);
  t.equal(a.options.slots, 4);
  t.equal(a.options.label, 'data');
  t.equal(a.options.journalSizeBytes, 8 * 2 ** 20);
  t.equal(a.options.journal64, true);
  t.equal(a.options.mountType, 'cluster');
  t.ok(a.quiet);
  t.ok(a.force);

  const b = parseMkfsArgs(['--block-size=2048', '--cluster-size', '1M', '--node-slots=2', '--label', 'x', '--dry-run', '--no-backup-super', 'd', '1000']);
  t.equal(b.options.blockSizeBytes, 2048);
  t.equal(b.options.clusterSizeBytes, 1048576);
  t.equal(b.options.dryRun, true);
  t.equal(b.options.noBackupSuper, true);
  t.equal(b.sizeBytes, 1000 * 2048, 'a bare trailing count is blocks of -b bytes');
  t.equal(parseMkfsArgs(['d', '1000']).sizeBytes, 1000 * 4096, 'blocks of 4K without -b');

  const c = parseMkfsArgs(['-qFn', '-Ldata', 'd']);
  t.ok(c.quiet && c.force && c.options.dryRun, 'clustered short flags');
  t.equal(c.options.label, 'data');
  t.equal(c.sizeBytes, undefined);

  t.equal(parseMkfsArgs(['-T', 'mail', 'd']).options.fsType, 'mail');
  t.equal(parseMkfsArgs(['-M', 'LOCAL', 'd']).options.mountType, 'local');
  t.same(parseMkfsArgs(['-U', '178BDC83-D502-41EF-94EB-474A677D498B', 'd']).options.uuid, Buffer.from('178BDC83D50241EF94EB474A677D498B', 'hex'));
  t.throws(() => parseMkfsArgs(['-U', 'nothex', 'd']), /bad UUID/);
  t.throws(() => parseMkfsArgs(['-H', 'd']), /heartbeat-only/);
  t.throws(() => parseMkfsArgs(['-b']), /needs an argument/);
  t.throws(() => parseMkfsArgs(['a', 'b', 'c']), /too many arguments/);
});

t.test('feature lists', async (t) => {
  const f = (list: string, extra: string[] = []) =>
    resolveVolumeFeatures(parseMkfsArgs([`--fs-features=${list}`, ...extra, 'd']).options).features;
  const off = f('nosparse');
  t.equal(off.incompat & OCFS2_FEATURE_INCOMPAT_SPARSE_ALLOC, 0, 'nosparse clears sparse');
  t.equal(off.roCompat & OCFS2_FEATURE_RO_COMPAT_UNWRITTEN, 0, 'and unwritten, which needs it');
  t.not(f('metaecc').incompat & OCFS2_FEATURE_INCOMPAT_META_ECC, 0, 'metaecc set');
  t.equal(f('noinline-data').incompat & OCFS2_FEATURE_INCOMPAT_INLINE_DATA, 0);
  t.equal(f('nobackup-super').compat & OCFS2_FEATURE_COMPAT_BACKUP_SB, 0);
  const both = parseMkfsArgs(['--fs-features=metaecc', '--fs-features=noinline-data', 'd']).options;
  const fb = resolveVolumeFeatures(both).features;
  t.ok((fb.incompat & OCFS2_FEATURE_INCOMPAT_META_ECC) && !(fb.incompat & OCFS2_FEATURE_INCOMPAT_INLINE_DATA), 'repeated --fs-features add up');
  t.throws(() => parseMkfsArgs(['--fs-features=nosparse,unwritten', 'd']), /conflicting/, 'unwritten needs sparse');
  t.throws(() => parseMkfsArgs(['--fs-features=nostrict-journal-super', 'd']), /unsupported feature/, 'as mkfs.ocfs2: not settable');
  t.throws(() => parseMkfsArgs(['--fs-features=SPARSE', 'd']), /unsupported feature/, 'names are exact');
  t.throws(() => parseMkfsArgs(['--fs-feature-level=huge', 'd']), /bad --fs-feature-level/);
});
