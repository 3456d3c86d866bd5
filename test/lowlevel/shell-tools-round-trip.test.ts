/**
 * The everyday tools work on a low-level mount of a real volume: the mount
 * shows the image as its source and fuse.o2fuse as its type; ls, stat, cat,
 * cp (-a), mkdir, rm, mv, ln, ln -s, truncate, chmod, chown, df behave;
 * touch -d keeps nanoseconds; open(O_TRUNC) truncates; renameat2 honours
 * RENAME_NOREPLACE and RENAME_EXCHANGE; a directory larger than one READDIR
 * reply lists whole (offsets); umount ends the session; fsck finds the
 * volume clean.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertFsckClean } from '../lib/fsck';
import { lowLevelUnavailable, mountLowLevel, waitEnded } from './helpers';
import { describeNegotiated } from '../../fs/fuse/lowlevel/init';

const unavailable = lowLevelUnavailable();

/** renameat2(AT_FDCWD, a, AT_FDCWD, b, flags) from python3: prints "ok" or the errno name. */
const RENAMEAT2_PY = `
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), int(sys.argv[3]))
print("ok" if r == 0 else errno.errorcode[ctypes.get_errno()])
`;

t.test('shell tools on a low-level mount', { skip: unavailable }, async (t) => {
  const m = await mountLowLevel(t);
  const M = m.mnt;
  const n = m.session.negotiated!;
  t.comment(`INIT ${describeNegotiated(n)}`);

  const findmnt = (await m.shOk(`findmnt -no SOURCE,FSTYPE ${M}`)).trim().split(/\s+/);
  t.same(findmnt, [m.image, 'fuse.o2fuse'], 'findmnt: source is the image as given, type fuse.o2fuse');
  t.match(await m.shOk(`df -P ${M} | tail -1`), m.image, 'df shows the source');

  const ls = await m.sh(`ls -la ${M}`);
  t.equal(ls.code, 0, 'ls -la');
  t.equal(ls.stderr, '', 'ls says nothing on stderr (no xattr noise)');
  t.match(ls.text, /lost\+found/);
  const rootIno = Number((await m.shOk(`stat -c %i ${M}`)).trim());
  t.equal(rootIno, m.engine.rootIno, 'the root shows its OCFS2 inode number');

  // files, cat, O_TRUNC
  await m.shOk(`printf 'hello world\\n' > ${M}/a`);
  t.equal(await m.shOk(`cat ${M}/a`), 'hello world\n', 'cat reads what was written');
  await m.shOk(`printf 'x\\n' > ${M}/a`);
  t.equal(await m.shOk(`cat ${M}/a`), 'x\n', 'open(O_TRUNC) truncates (ATOMIC_O_TRUNC handled in OPEN)');
  await m.shOk(`printf 'more\\n' >> ${M}/a`);
  t.equal(await m.shOk(`cat ${M}/a`), 'x\nmore\n', 'O_APPEND appends');

  // nanosecond times
  await m.shOk(`touch -d '2001-02-03 04:05:06.123456789' ${M}/a`);
  t.equal((await m.shOk(`stat -c %y ${M}/a`)).trim(), '2001-02-03 04:05:06.123456789 +0000', 'touch -d keeps nanoseconds');
  await m.shOk(`touch -m -d '1999-12-31 23:59:59.000000001' ${M}/a`);
  t.equal((await m.shOk(`stat -c '%x|%y' ${M}/a`)).trim(),
    '2001-02-03 04:05:06.123456789 +0000|1999-12-31 23:59:59.000000001 +0000', 'touch -m changes mtime only');

  // attributes
  await m.shOk(`chmod 640 ${M}/a && chown 12:34 ${M}/a && truncate -s 10000 ${M}/a`);
  t.equal((await m.shOk(`stat -c '%a %u %g %s' ${M}/a`)).trim(), '640 12 34 10000', 'chmod, chown, truncate');

  // cp of a small tree, in and out
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'o2fuse-lowlevel-src-'));
  t.teardown(() => fs.rmSync(src, { recursive: true, force: true }));
  await m.shOk(`mkdir -p ${src}/t/sub && head -c 300000 /dev/urandom > ${src}/t/r && printf abc > ${src}/t/sub/s && ln -s r ${src}/t/link`);
  const cp = await m.sh(`cp -a ${src}/t ${M}/t`);
  t.equal(cp.code, 0, 'cp -a into the mount');
  t.equal(cp.stderr, '', 'cp -a says nothing (xattrs: EOPNOTSUPP is taken silently)');
  t.equal((await m.sh(`diff -r ${src}/t ${M}/t`)).code, 0, 'diff -r finds the copy equal');
  t.equal((await m.shOk(`readlink ${M}/t/link`)).trim(), 'r', 'cp -a kept the symlink');
  await m.shOk(`cp ${M}/t/r ${src}/back && cmp ${src}/back ${src}/t/r`);
  t.pass('cp out of the mount reads the same bytes');

  // mkdir, ln, ln -s, mv, rm
  await m.shOk(`mkdir ${M}/d && ln ${M}/a ${M}/d/hard && ln -s ../a ${M}/d/soft`);
  t.equal((await m.shOk(`stat -c %h ${M}/a`)).trim(), '2', 'ln: link count 2');
  t.equal((await m.shOk(`cat ${M}/d/soft | head -c 5`)), 'x\nmor', 'ln -s: the symlink resolves');
  t.equal((await m.shOk(`readlink ${M}/d/soft`)).trim(), '../a');
  await m.shOk(`mv ${M}/d/hard ${M}/moved && mv ${M}/t/sub ${M}/d/sub`);
  t.equal((await m.shOk(`ls ${M}/d`)).trim().split('\n').join(' '), 'soft sub', 'mv across directories');
  t.equal(await m.shOk(`cat ${M}/d/sub/s`), 'abc');
  await m.shOk(`rm ${M}/moved && rm -r ${M}/t && rmdir ${M}/d/sub 2>/dev/null || rm -r ${M}/d/sub`);
  t.equal((await m.shOk(`stat -c %h ${M}/a`)).trim(), '1', 'rm: link count back to 1');
  t.equal((await m.sh(`ls ${M}/t`)).code, 2, 'rm -r removed the tree');
  const rmdirFull = await m.sh(`mkdir ${M}/full && touch ${M}/full/x && rmdir ${M}/full`);
  t.match(rmdirFull.stderr, /not empty/i, 'rmdir of a non-empty directory fails with ENOTEMPTY');

  // renameat2
  fs.writeFileSync(path.join(src, 'r2.py'), RENAMEAT2_PY);
  const r2 = (a: string, b: string, flags: number) => m.shOk(`python3 ${src}/r2.py ${M}/${a} ${M}/${b} ${flags}`).then((s) => s.trim());
  await m.shOk(`printf one > ${M}/one && printf two > ${M}/two`);
  t.equal(await r2('one', 'two', 1), 'EEXIST', 'RENAME_NOREPLACE onto an existing name: EEXIST');
  t.equal(await r2('one', 'three', 1), 'ok', 'RENAME_NOREPLACE onto a free name');
  t.equal(await r2('three', 'two', 2), 'ok', 'RENAME_EXCHANGE');
  t.equal(await m.shOk(`cat ${M}/two ${M}/three`), 'onetwo', 'RENAME_EXCHANGE swapped the two files');
  t.equal(await r2('two', 'nothere', 2), 'ENOENT', 'RENAME_EXCHANGE needs both names');
  t.equal(await r2('two', 'x', 4), 'EINVAL', 'RENAME_WHITEOUT is refused');
  const mvn = await m.sh(`mv -n ${M}/two ${M}/three; cat ${M}/two ${M}/three`);
  t.equal(mvn.text, 'onetwo', 'mv -n leaves both files alone');
  await m.shOk(`mv -f ${M}/two ${M}/three`);
  t.equal(await m.shOk(`cat ${M}/three; ls ${M}/two 2>/dev/null || echo gone`), 'onegone\n', 'mv over an existing file replaces it');
  t.ok((m.session.stats().byOpcode.RENAME ?? 0) >= 1, 'plain rename(2) arrives as FUSE_RENAME');

  // a directory spanning many READDIR replies
  await m.shOk(`mkdir ${M}/many && cd ${M}/many && i=0; while [ $i -lt 400 ]; do : > file-with-a-longish-name-$i; i=$((i+1)); done`);
  t.equal((await m.shOk(`ls ${M}/many | wc -l`)).trim(), '400', 'ls lists all 400 entries');
  t.equal((await m.shOk(`ls -f ${M}/many | sort | uniq | wc -l`)).trim(), '402', 'ls -f: 400 entries plus . and .., no repeats');
  t.equal((await m.shOk(`find ${M}/many -type f | wc -l`)).trim(), '400', 'find sees every file');
  const st = m.session.stats();
  t.ok((st.byOpcode.READDIRPLUS ?? 0) + (st.byOpcode.READDIR ?? 0) > 10, `the listing took several READDIR(PLUS) requests (${JSON.stringify({ READDIR: st.byOpcode.READDIR, READDIRPLUS: st.byOpcode.READDIRPLUS })})`);
  await m.shOk(`rm -r ${M}/many`);

  // statfs
  const df = (await m.shOk(`stat -f -c '%S %b %a %l' ${M}`)).trim().split(' ').map(Number);
  t.equal(df[0], 4096, 'statfs block size');
  t.ok(df[1] > 200_000 && df[2] > 0 && df[2] <= df[1], 'statfs counts');
  t.equal(df[3], 255, 'statfs name length');

  t.comment(`stats: ${JSON.stringify(m.session.stats())}`);
  t.equal(m.session.stats().errors.EIO ?? 0, 0, 'no request failed with EIO');

  const r = await m.session.unmount(false);
  t.ok(r.ok, `umount: ${r.message}`);
  t.ok(await waitEnded(m.session, 30_000), 'the session ends after umount');
  t.notOk(m.session.alive(), 'the session says it is not alive');
  await m.close();
  await assertFsckClean(t, m.image);
});
