/**
 * The Linux kernel's OCFS2 driver mounts volumes o2fuse's mkfs writes and
 * works on them (mkdir, create, write, unlink, symlink); fsck.ocfs2 finds
 * them clean afterwards. Two volumes: the default feature set, and metaecc +
 * indexed-dirs without inline data on 512-byte blocks with 40 slots, whose
 * system directory the kernel can only search through dx leaf blocks.
 * Skipped where the kernel oracle (qemu) is not available.
 */
import t from 'tap';
import { kernelRun, kernelUnavailable } from '../lib/kernel';
import { assertFsckStrict, formatImage, MiB, tempDir } from './helpers';

const SCRIPT = [
  'set -e',
  'mkdir d',
  'for i in $(seq 1 60); do echo "line $i" > d/f$i; done',
  'dd if=/dev/zero of=big bs=64k count=40 2>/dev/null',
  'rm d/f7',
  'ln -s d/f8 link',
  'cat d/f42',
  'ls d | wc -l',
  'ls lost+found | wc -l',
].join('\n');

const skip = kernelUnavailable();

t.test('the kernel mounts and writes new volumes', { skip }, async (t) => {
  const dir = await tempDir(t, 'o2fuse-mkfs-kernel-');
  const volumes = [
    { name: 'default', options: { slots: 2, label: 'kdefault' } },
    {
      name: 'metaecc-dx-leaves',
      options: { slots: 40, blockSizeBytes: 512, journalSizeBytes: 4 * MiB, features: 'metaecc,indexed-dirs,noinline-data' },
    },
  ];
  for (const v of volumes) {
    const { image } = await formatImage(dir, `${v.name}.img`, 256 * MiB, v.options);
    const r = await kernelRun(image, SCRIPT);
    t.equal(r.code, 0, `${v.name}: the script ran on the kernel mount`, { output: r.output });
    t.match(r.scriptOutput, /line 42\n59\n0/, `${v.name}: the kernel read back what it wrote`);
    t.notMatch(r.kernelLines.join('\n'), /ERROR|error|corrupt/i, `${v.name}: no kernel complaints`);
    await assertFsckStrict(t, image, `the ${v.name} volume after the kernel used it`);
  }
});
