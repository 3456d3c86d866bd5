/**
 * Inodes ocfs2-tools cannot create, built with our encoders over files
 * libocfs2 made: a fast symlink (target in id2, i_clusters 0) and a
 * character device (i_rdev, the dev1 view of id1), with their dirents'
 * file_type rewritten in the inline root directory. debugfs.ocfs2 must show
 * the symlink target and the types, fsck.ocfs2 -fn must find nothing, and
 * our decoders must read back what we wrote (id2 kind, id1 view, bytes).
 */
import t from 'tap';
import {
  decodeDinode, Dinode, dinodeId1View, dinodeId2Kind, encodeDinode, encodeDirEntry, fastSymlinkChars, iterateDirEntries,
  OCFS2_FT_CHRDEV, OCFS2_FT_SYMLINK,
} from '../../fs/format';
import { debugfs, Image, makeVolume, runHelper, scratchDir } from './helpers';
import { assertFsckClean } from '../lib/fsck';

t.test('fast symlink and character device', async (t) => {
  const { dir, cleanup } = scratchDir('special');
  t.teardown(cleanup);
  const file = makeVolume(dir, 'v', { blockSize: 2048, clusterSize: 4096, slots: 2 });
  const [lnk] = runHelper(file, 'newblock', 'lnk').map(Number);
  const [dev] = runHelper(file, 'newblock', 'dev').map(Number);
  const img = new Image(file, true);
  t.teardown(() => img.close());
  const bs = img.blockSize;
  const rootBlk = img.sb.s_root_blkno;
  const root = decodeDinode(img.read(rootBlk), rootBlk);
  t.ok(root.data, 'the root directory is inline data');
  const entries = [...iterateDirEntries(root.data!.id_data, 0, root.i_size, 'root')];

  const rewrite = (blkno: number, change: (d: Dinode) => number): void => {
    const d = decodeDinode(img.read(blkno), blkno);
    const fileType = change(d);
    const raw = Buffer.alloc(bs);
    encodeDinode(d, raw);
    img.write(blkno, raw);
    const de = entries.find((e) => e.inode === blkno)!;
    de.file_type = fileType;
    encodeDirEntry(de, root.data!.id_data);
  };
  const target = Buffer.from('../some/where/else');
  rewrite(lnk, (d) => {
    d.i_mode = 0o120777;
    d.i_size = target.length;
    delete d.list;
    d.symlink = Buffer.alloc(fastSymlinkChars(bs));
    target.copy(d.symlink);
    return OCFS2_FT_SYMLINK;
  });
  const rdev = (8 << 8) | 3; // new_encode_dev(MKDEV(8, 3))
  rewrite(dev, (d) => {
    d.i_mode = 0o020640;
    d.i_rdev = rdev;
    return OCFS2_FT_CHRDEV;
  });
  const rootRaw = Buffer.alloc(bs);
  encodeDinode(root, rootRaw);
  img.write(rootBlk, rootRaw);

  const l = decodeDinode(img.read(lnk), lnk);
  t.equal(dinodeId2Kind(l), 'symlink', 'S_IFLNK with no clusters decodes as a fast symlink');
  t.ok(l.symlink!.subarray(0, l.i_size).equals(target), 'target bytes read back');
  const c = decodeDinode(img.read(dev), dev);
  t.equal(dinodeId1View(c), 'dev1');
  t.equal(c.i_rdev, rdev, 'i_rdev read back');

  t.match(debugfs(file, 'stat /lnk'), `Fast Symlink Destination: ${target}`, 'debugfs reads the symlink target');
  t.match(debugfs(file, 'stat /dev'), 'Type: Char Device', 'debugfs sees a character device');
  const ls = debugfs(file, 'ls -l /');
  t.match(ls, /lrwxrwxrwx.*\slnk/, 'ls shows the link');
  t.match(ls, /crw-r-----.*\sdev/, 'ls shows the device');
  await assertFsckClean(t, file);
});
