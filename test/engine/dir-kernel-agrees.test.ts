/**
 * The Linux kernel's OCFS2 driver (kernel-run under qemu) reads a directory
 * this engine filled (inline turned block directory, names removed here and
 * there; 600 ASCII names and 60 non-ASCII ones, hashed as signed chars as
 * the 6.1 driver and ocfs2-tools do), lists exactly the model's names, and
 * changes it in turn: it
 * removes some of the names, creates new files and a subdirectory in the
 * records this engine laid out. fsck.ocfs2 -fn is clean after the kernel,
 * the engine then reads the kernel's changes and adds more names on top,
 * and fsck is clean again. On indexed-dirs volumes the kernel's rm and touch
 * go through this engine's dx index (a name it cannot find there stays
 * listed), its rm -r frees an index of several leaf clusters this engine
 * grew, and the index is checked block by block before the kernel and after
 * the engine carried on in what the kernel left.
 */
import t, { type Test } from 'tap';
import type { Volume } from '../../fs/volume';
import type { Inode } from '../../fs/inode';
import { checkDxIndex } from './dx-check';
import { readDirSlots, lookupEntry } from '../../fs/dir';
import { kernelRun, kernelUnavailable } from '../lib/kernel';
import { assertFsckClean } from '../lib/fsck';
import { Rng, seedFrom } from '../lib/seed';
import {
  type Model, type VolumeCase, applyOps, checkAgainstModel, checkOnDisk, dirOf, makeFixture, makeNames, mountRw, nameOfText, textOfName,
} from './dir-workload';

const skip = kernelUnavailable() ?? false;

const cases: VolumeCase[] = [
  { name: '4K blocks, 4K clusters, inline-data', blockSize: 4096, clusterSize: 4096 },
  { name: '1K blocks, 8K clusters, metaecc', blockSize: 1024, clusterSize: 8192, features: 'metaecc' },
  // Indexed: the kernel's rm and touch find names through this engine's index (and split its leaves), its
  // rm -r frees an index of several leaf clusters, and the engine then carries on in the kernel's index.
  { name: '4K blocks, 4K clusters, indexed-dirs, inline-data', blockSize: 4096, clusterSize: 4096, indexed: true },
  { name: '1K blocks, 4K clusters, indexed-dirs, metaecc', blockSize: 1024, clusterSize: 4096, features: 'metaecc', indexed: true },
];

const quote = (name: string) => `'${textOfName(name)}'`;
/** Names with bytes of 0x80 and more, which the kernel and ocfs2-tools hash as signed chars (x86, before 6.2). */
const LETTERS = ['é', 'ü', 'ß', 'ø', 'д', 'λ', '中', 'ñ'];
function nonAsciiNames(rng: Rng, prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    nameOfText(`${prefix}${i}-${Array.from({ length: rng.int(1, 10) }, () => rng.pick(LETTERS)).join('')}`));
}
/**
 * Lists DIR's names one a line, "." and ".." first, bytes as they are: busybox's ls prints "?" for every byte
 * over 0x7f, even into a pipe.
 */
const listing = (dir: string) =>
  `echo .; echo ..; for f in ${dir}/* ${dir}/.[!.]* ${dir}/..?*; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\\n' "\${f#${dir}/}"; fi; done`;
const ROOT = { uid: 0, gid: 0 };

async function indexOk(t: Test, vol: Volume, dir: Inode, what: string): Promise<void> {
  const { problems, facts } = await checkDxIndex(vol, dir);
  t.same(problems.slice(0, 20), [], `${what}: right block by block ${JSON.stringify(facts)}`);
}

function section(output: string, tag: string): string[] {
  const lines = output.split('\n');
  const from = lines.indexOf(`BEGIN ${tag}`);
  const to = lines.indexOf(`END ${tag}`);
  return from >= 0 && to > from ? lines.slice(from + 1, to).map(nameOfText) : [];
}

for (const c of cases) {
  t.test(`the kernel reads and changes a directory this engine wrote: ${c.name}`, { skip }, async (t) => {
    const rng = new Rng(seedFrom(t) ^ c.blockSize);
    const { image, targets } = await makeFixture(t, c);
    const model: Model = new Map();
    const names = [...makeNames(rng, 600), ...nonAsciiNames(rng, 'e', 60)];
    let vol = await mountRw(image);
    try {
      const dir = await dirOf(vol, '/d');
      await applyOps(vol, dir, names.map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
      await applyOps(vol, dir, names.filter((_, i) => i % 3 === 0).map((name) => ({ kind: 'remove', name })), model, rng);
      if (c.indexed) {
        await indexOk(t, vol, dir, 'the engine\'s index before the kernel');
        await vol.mkdir(vol.rootIno, Buffer.from('d2'), 0o755, ROOT);
        const d2 = await dirOf(vol, '/d2');
        await applyOps(vol, d2, makeNames(rng, 700).map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), new Map(), rng);
        await indexOk(t, vol, d2, 'a second indexed directory for the kernel to remove');
      }
    } finally {
      await vol.unmount();
    }
    await assertFsckClean(t, image, 'volume before the kernel');

    // The kernel's rm finds each name through its own lookup (the dx index, hashed as it hashes): non-ASCII ones too.
    const isAscii = (n: string) => /^[\x00-\x7f]*$/.test(n);
    const kernelRemoves = [
      ...[...model.keys()].filter(isAscii).filter((_, i) => i % 10 === 0).slice(0, 40),
      ...[...model.keys()].filter((n) => !isAscii(n)).slice(0, 10),
    ];
    const kernelAdds = [...Array.from({ length: 30 }, (_, i) => `k${i}-${'y'.repeat(rng.int(0, 120))}`), ...nonAsciiNames(rng, 'k', 10)];
    const script = [
      `echo "BEGIN before"; ${listing('d')}; echo "END before"`,
      ...kernelRemoves.map((n) => `rm -- d/${quote(n)}`),
      ...kernelAdds.map((n) => `touch -- d/${quote(n)}`),
      'mkdir d/kdir',
      ...(c.indexed ? ['rm -r d2'] : []),
      `echo "BEGIN after"; ${listing('d')}; echo "END after"`,
    ].join('\n') + '\n';
    const r = await kernelRun(image, script);
    t.comment(`kernel-run took ${r.elapsedMs} ms`);
    t.equal(r.code, 0, 'the script ran on the kernel-mounted volume', { output: r.output.slice(-4000) });
    const before = section(r.scriptOutput, 'before').sort();
    t.same(before, ['.', '..', ...model.keys()].sort(), `the kernel lists the model's ${model.size} names`);
    for (const n of kernelRemoves) model.delete(n);
    const after = new Set(section(r.scriptOutput, 'after'));
    const expectedAfter = ['.', '..', ...model.keys(), ...kernelAdds, 'kdir'];
    t.same([...after].sort(), expectedAfter.sort(), 'after its own changes the kernel lists what it should');
    t.same(r.kernelLines.filter((l) => /error|corrupt|bad entry/i.test(l)), [], 'no OCFS2 errors from the kernel');
    await assertFsckClean(t, image, 'volume after the kernel changed the directory');

    vol = await mountRw(image);
    try {
      const dir = await dirOf(vol, '/d');
      const slots = await readDirSlots(vol, dir);
      t.same(slots.map((s) => s.name.toString('latin1')).sort(), expectedAfter.sort(), 'the engine reads the kernel\'s changes');
      for (const n of [...kernelAdds, 'kdir']) {
        const e = await lookupEntry(vol, dir, Buffer.from(n, 'latin1'));
        if (!e) t.fail(`lookup of the kernel's "${n}"`);
        else model.set(n, { path: `/d/${n}`, ino: e.ino, fileType: e.fileType });
      }
      // Not the names the kernel removed: they are checked to be gone.
      const more = makeNames(rng, 300, new Set([...model.keys(), ...kernelRemoves]));
      await applyOps(vol, dir, more.map((name) => ({ kind: 'add', name, target: rng.pick(targets) })), model, rng);
      await checkAgainstModel(t, vol, dir, vol.rootIno, model, kernelRemoves, 'after adding on top of the kernel');
      if (c.indexed) {
        // Entries only (no rmdir): the kernel's kdir stays, or its inode would be left without a name.
        const removals = [...model.keys()].filter((n, i) => i % 4 === 0 && n !== 'kdir');
        await applyOps(vol, dir, removals.map((name) => ({ kind: 'remove', name })), model, rng);
        await indexOk(t, vol, dir, 'the index after the kernel\'s changes and the engine\'s on top');
      }
    } finally {
      await vol.unmount();
    }
    await checkOnDisk(t, image, model, 'after adding on top of the kernel');
  });
}
