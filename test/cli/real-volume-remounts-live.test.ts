/**
 * `mount -o remount,ro` and back to rw on a real volume, through the real
 * command line, daemon and engine, over each transport: the same daemon goes
 * read-only (writes get EROFS, files still read) and read-write again takes
 * writes; an atime option changes live too. fsck clean after the unmount.
 * (fsck.ocfs2 will not check an image it sees mounted: that the volume is
 * clean while mounted read-only is shown by the engine's own test,
 * test/engine/live-remount-read-only-and-back.)
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { o2fuseMountAt } from '../../fs/fuse/mountinfo';
import { liveRecords } from '../../bin/registry';
import { run } from '../lib/exec';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { makeImage } from '../lib/volume';
import { o2fuseBin } from './helpers';

const transports = ['kernel', 'libfuse'] as const;

for (const transport of transports) {
  const skip = transport === 'kernel' && process.getuid?.() !== 0 ? 'the kernel transport mounts as root' : false;
  t.test(`remount ro and rw on a live ${transport} mount of a real volume`, { skip }, async (t) => {
    // mkfs.ocfs2's default indexed-dirs mounts read-only (README): the volume is made without it.
    const image = await makeImage(t, { sizeBytes: 64 << 20, features: 'noindexed-dirs' });
    const m = await mountO2fuse(t, image, { options: `transport=${transport}` });
    const file = path.join(m.dir, 'f');
    const data = Buffer.alloc(300_000, 0x5c);
    await fs.promises.writeFile(file, data);

    const ro = await run(o2fuseBin(), ['mount', '-o', 'remount,ro', image, m.dir]);
    t.equal(ro.code, 0, `remount,ro: ${ro.stderr}`);
    t.ok(o2fuseMountAt(m.dir)?.options.includes('ro'), 'the kernel shows ro');
    await t.rejects(fs.promises.writeFile(path.join(m.dir, 'g'), 'x'), { code: 'EROFS' }, 'a new file is refused');
    await t.rejects(fs.promises.appendFile(file, 'x'), { code: 'EROFS' }, 'so is a write');
    t.ok((await fs.promises.readFile(file)).equals(data), 'the file reads back');

    const rw = await run(o2fuseBin(), ['mount', '-o', 'remount,rw,noatime', image, m.dir]);
    t.equal(rw.code, 0, `remount,rw,noatime: ${rw.stderr}`);
    t.ok(o2fuseMountAt(m.dir)?.options.includes('rw'), 'the kernel shows rw');
    await fs.promises.writeFile(path.join(m.dir, 'g'), 'after');
    await fs.promises.appendFile(file, 'tail');
    t.equal((await fs.promises.stat(file)).size, data.length + 4, 'writes work again');
    t.equal(liveRecords().filter((r) => r.mountpoint === m.dir).length, 1, 'one daemon all along');
    t.equal(liveRecords().find((r) => r.mountpoint === m.dir)?.pid, m.pid, 'the same one');
    await m.unmount();
    await assertFsckClean(t, image);
  });
}
