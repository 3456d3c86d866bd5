/**
 * shadow.ts prints the same dump format as o2tool: the TS formatter reproduces o2tool's
 * lines exactly (parse then format gives the same text for every field set), and a tree
 * built through the VFS from a spec (materialize) dumps, through shadowDump, to the same
 * lines as o2tool's dump of the same spec on OCFS2 for the fields that do not depend on
 * the filesystem (dir sizes, inode numbers and times do).
 */
import t from 'tap';
import { richSpec } from '../lib/fixtures';
import {
  ALL_FIELDS, type DumpField, type Spec, dump, formatDump, parseDump, populate, resolveFields,
} from '../lib/oracle';
import { materialize, shadowDump, shadowEntries } from '../lib/shadow';
import { makeImage, tempDir } from '../lib/volume';

const geometry = { blockSize: 4096, clusterSize: 4096 };
// sockets cannot be made through the VFS from a script (bind() would be needed)
const spec: Spec = richSpec(geometry).filter((e) => !(e.kind === 'node' && e.node === 'sock'));

t.test('the TS dump formatter reproduces o2tool dump lines exactly', async (t) => {
  const image = await makeImage(t);
  await populate(image, spec);
  const fieldSets: DumpField[][] = [[...ALL_FIELDS], resolveFields(), ['data'], [], ['size', 'map'], ['mode', 'nlink', 'ctime']];
  for (const fields of fieldSets) {
    const text = await dump(image, { fields });
    t.equal(formatDump(parseDump(text), fields), text, `fields [${fields.join(',')}] round-trip`);
  }
  const sub = await dump(image, { path: '/we ird%dir' });
  t.match(sub, /^\/we%20ird%25dir dir /, 'a subtree dump starts at its (encoded) root');
  t.equal(sub.split('\n').filter(Boolean).length, 3, 'and holds only that subtree');
});

const notRoot = process.getuid?.() !== 0 ? 'needs root (chown, mknod)' : false;

t.test('a spec written through the VFS shadow-dumps like o2tool dumps it from OCFS2', { skip: notRoot }, async (t) => {
  const image = await makeImage(t);
  await populate(image, spec);
  const root = await tempDir(t);
  await materialize(root, spec);

  const fields: DumpField[] = ['mode', 'uid', 'gid', 'nlink', 'data'];
  const dropLostFound = (text: string): string =>
    text.split('\n').filter((l) => !l.startsWith('/lost+found ')).join('\n');
  const fromOcfs2 = dropLostFound(await dump(image, { fields })).replace(/^\/ dir .*$/m, '');
  const fromVfs = (await shadowDump(root, { fields })).replace(/^\/ dir .*$/m, '');
  t.equal(fromVfs, fromOcfs2, 'same lines (the roots differ by lost+found)');

  const sizes = (text: string): string[] => text.split('\n').filter((l) => l && !/ dir /.test(l));
  t.same(sizes(await shadowDump(root, { fields: ['size'] })), sizes(dropLostFound(await dump(image, { fields: ['size'] }))), 'same sizes for everything but directories');

  const entries = await shadowEntries(root);
  const d1 = entries.find((e) => e.path === '/d1');
  t.same(d1?.mtime, { sec: 1700000000, nsec: 123456789 }, 'materialize and shadow keep nanosecond mtimes');
  await t.rejects(shadowDump(root, { map: true }), /not visible through the VFS/, 'maps need a mapOf');
  const mapped = await shadowDump(root, { fields: ['map'], mapOf: async () => 'inline' });
  t.match(mapped, /^\/empty file map=inline$/m, 'mapOf supplies the map field');
});
