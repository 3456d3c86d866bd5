/**
 * fallocate (preallocate, punch hole, zero range) and SEEK_DATA/SEEK_HOLE
 * through the kernel transport, checked against the bytes read back, the
 * block counts stat reports, and fsck.
 */
import t from 'tap';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { makeImage } from '../lib/volume';
import { assertFsckClean } from '../lib/fsck';
import { mountO2fuse } from '../lib/mount';
import { runOk } from '../lib/exec';

const MiB = 1024 * 1024;

async function seek(file: string, offset: number, whence: 'DATA' | 'HOLE'): Promise<string> {
  const py = `import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\ntry:\n print(os.lseek(fd,int(sys.argv[2]),os.SEEK_${whence}))\nexcept OSError as e:\n print('errno',e.errno)`;
  return (await runOk('python3', ['-c', py, file, String(offset)])).text.trim();
}

t.test('fallocate, punch hole, zero range and SEEK_DATA/SEEK_HOLE', async (t) => {
  const image = await makeImage(t, { sizeBytes: 512 * MiB, features: 'noindexed-dirs,norefcount' });
  const m = await mountO2fuse(t, image, { options: 'transport=kernel' });
  const pre = path.join(m.dir, 'pre');
  await runOk('fallocate', ['-l', String(10 * MiB), pre]);
  let st = await fsp.stat(pre);
  t.equal(st.size, 10 * MiB, 'preallocation grows the size');
  t.equal(st.blocks, (10 * MiB) / 512, 'and allocates the clusters');
  t.ok((await fsp.readFile(pre)).equals(Buffer.alloc(10 * MiB)), 'preallocated space reads as zeros');
  t.equal(await seek(pre, 0, 'HOLE'), '0', 'unwritten space is a hole to SEEK_HOLE');

  const data = path.join(m.dir, 'data');
  const content = Buffer.alloc(8 * MiB);
  for (let i = 0; i < content.length; i++) content[i] = (i * 131 + 7) & 255;
  await fsp.writeFile(data, content);
  await runOk('fallocate', ['-p', '-o', String(MiB), '-l', String(2 * MiB), data]);
  content.fill(0, MiB, 3 * MiB);
  st = await fsp.stat(data);
  t.equal(st.size, 8 * MiB, 'punching keeps the size');
  t.equal(st.blocks, (6 * MiB) / 512, 'and frees the punched clusters');
  t.equal(await seek(data, 0, 'DATA'), '0', 'SEEK_DATA at data');
  t.equal(await seek(data, 0, 'HOLE'), String(MiB), 'SEEK_HOLE finds the punched hole');
  t.equal(await seek(data, MiB, 'DATA'), String(3 * MiB), 'SEEK_DATA skips it');
  t.equal(await seek(data, 8 * MiB, 'DATA'), 'errno 6', 'SEEK_DATA at EOF is ENXIO');

  // Zero range with unaligned edges: the edges are zeroed in place, the middle unmapped and preallocated.
  await runOk('fallocate', ['-z', '-o', String(4 * MiB + 1000), '-l', String(300000), data]);
  content.fill(0, 4 * MiB + 1000, 4 * MiB + 1000 + 300000);
  t.ok((await fsp.readFile(data)).equals(content), 'every byte is what the operations say');

  // Punch with unaligned edges inside one cluster.
  await runOk('fallocate', ['-p', '-o', '6000', '-l', '100', data]);
  content.fill(0, 6000, 6100);
  t.ok((await fsp.readFile(data)).equals(content), 'a sub-cluster punch zeros just those bytes');

  await m.unmount();
  await assertFsckClean(t, image);
});
