/**
 * The two oracles agree with each other. The Linux kernel's OCFS2 driver (kernel-run,
 * under qemu) reads a tree o2tool wrote exactly as the spec says; and o2tool dump reads a
 * tree the kernel wrote (unpacked from a tar, so with the kernel's own inline data,
 * indexed directories and allocation) exactly as the VFS showed the source tree.
 * ~10 s a kernel run (plus ~30 s of one-time set-up on a fresh machine).
 */
import t from 'tap';
import { richSpec } from '../lib/fixtures';
import { assertFsckClean } from '../lib/fsck';
import { kernelRun, kernelUnavailable, makeTar } from '../lib/kernel';
import { type DumpField, type Spec, dump, encodePath, expectTree, populate } from '../lib/oracle';
import { materialize, shadowDump } from '../lib/shadow';
import { makeImage, tempDir } from '../lib/volume';

const skip = kernelUnavailable() ?? false;
const geometry = { blockSize: 4096, clusterSize: 4096 };
// The script reads names line by line: leave out the name with a newline. Tar has no
// sockets, and busybox tar does not restore a symlink's owner.
const spec: Spec = richSpec(geometry)
  .filter((e) => !e.path.includes('\n') && !(e.kind === 'node' && e.node === 'sock'))
  .map((e) => (e.kind === 'symlink' ? { ...e, uid: undefined, gid: undefined } : e));

// One line per path: "./PATH mode=OCTAL uid=N gid=N nlink=N [size=N sha256=HEX | target=T | rdev=MAJ:MIN]".
// The 600 empty files of /many only as a count: a busybox loop under TCG takes ~50 ms a file.
const describeTree = `
echo "many-count $(ls many | wc -l)"
find . -mindepth 1 ! -path './lost+found*' ! -path './many/*' | sort | while IFS= read -r p; do
  set -- $(stat -c '%a %u %g %h %s %t %T' "$p")
  line="$p mode=$1 uid=$2 gid=$3 nlink=$4"
  if [ -L "$p" ]; then line="$line target=$(readlink "$p")"
  elif [ -f "$p" ]; then line="$line size=$5 sha256=$(sha256sum < "$p" | cut -d' ' -f1)"
  elif [ -c "$p" ] || [ -b "$p" ]; then line="$line rdev=$((0x$6)):$((0x$7))"
  fi
  echo "$line"
done
`;

t.test('the kernel reads an o2tool-built tree as the spec says', { skip }, async (t) => {
  const image = await makeImage(t, geometry);
  await populate(image, spec);
  const r = await kernelRun(image, describeTree);
  t.comment(`kernel-run took ${r.elapsedMs} ms`);
  t.equal(r.code, 0, 'the script ran on a mounted volume', { output: r.output });
  const expected = expectTree(spec);
  let checked = 0;
  for (const line of r.scriptOutput.split('\n').filter((l) => l.startsWith('./'))) {
    const at = line.indexOf(' mode=');
    const p = line.slice(1, at);
    const fields = Object.fromEntries(line.slice(at + 1).split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const want = expected.get(encodePath(p));
    if (!want) {
      t.fail(`${p}: the kernel sees a path the spec does not have`);
      continue;
    }
    const got: Record<string, unknown> = { mode: parseInt(fields.mode, 8), uid: Number(fields.uid), gid: Number(fields.gid), nlink: Number(fields.nlink) };
    const exp: Record<string, unknown> = { mode: want.mode, uid: want.uid, gid: want.gid, nlink: want.nlink };
    if (fields.sha256) {
      Object.assign(got, { size: Number(fields.size), sha256: fields.sha256 });
      Object.assign(exp, { size: want.size, sha256: want.sha256 });
    }
    if (line.includes(' target=')) {
      got.target = encodePath(line.slice(line.indexOf(' target=') + ' target='.length));
      exp.target = want.target;
    }
    if (fields.rdev) {
      got.rdev = fields.rdev;
      exp.rdev = `${want.rdev?.major}:${want.rdev?.minor}`;
    }
    t.same(got, exp, `kernel's view of ${p}`);
    checked++;
  }
  const many = [...expected.keys()].filter((p) => p.startsWith('/many/')).length;
  t.match(r.scriptOutput, new RegExp(`^many-count ${many}$`, 'm'), `the kernel lists ${many} entries in /many`);
  t.equal(checked, expected.size - 2 - many, 'every other path of the spec was seen (all but / and /lost+found)');
  t.same(r.kernelLines.filter((l) => /error|corrupt/i.test(l)), [], 'the kernel logged no OCFS2 error');
});

t.test('o2tool dump reads a kernel-written tree as the VFS showed its source', { skip }, async (t) => {
  const source = await tempDir(t);
  await materialize(source, spec);
  const tar = await makeTar(t, source);
  const image = await makeImage(t, geometry);
  const r = await kernelRun(image, 'tar -xf /dev/vdb && sync', { data: tar });
  t.comment(`kernel-run took ${r.elapsedMs} ms`);
  t.equal(r.code, 0, 'the kernel unpacked the tar', { output: r.output });
  await assertFsckClean(t, image, 'kernel-written volume');
  const fields: DumpField[] = ['mode', 'uid', 'gid', 'nlink', 'data'];
  const withoutRootAndLostFound = (text: string): string =>
    text.split('\n').filter((l) => l && !l.startsWith('/ ') && !l.startsWith('/lost+found ')).join('\n');
  t.equal(
    withoutRootAndLostFound(await dump(image, { fields })),
    withoutRootAndLostFound(await shadowDump(source, { fields })),
    'same lines for every path',
  );
  t.match(await dump(image, { fields: ['size', 'map'], path: '/d1/inline-small' }), /map=inline/, 'the kernel stored a small file inline');
});
