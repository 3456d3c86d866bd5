/**
 * The daemon's end: after `umount`, `fusermount -u`, SIGTERM, or Ctrl-C in
 * the foreground it writes back (engine.unmount), releases the device and
 * exits promptly; a harness can mount the same device on the same directory
 * at once; a daemon killed outright leaves a dead mount that the next mount
 * clears. One daemon per mount point, always.
 */
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { o2fuseMountAt } from '../../fs/fuse/mountinfo';
import { liveRecord, liveRecords, pidAlive } from '../../bin/registry';
import { run } from '../lib/exec';
import { mountO2fuse, waitForExit } from '../lib/mount';
import { tempDir, type TestLike } from '../lib/volume';
import { assertNothingLeft, eventually, memoryCliCommand } from './helpers';

/** A daemon must be gone this soon after its unmount (measured: ~0.1 s). */
const EXIT_AFTER_UNMOUNT_MS = 5000;

/** Removes the daemon's log at teardown (it is kept when something was written to it, or when the daemon was killed). */
function forgetLog(t: TestLike, dir: string): void {
  const log = liveRecord(dir)?.log;
  if (log) t.teardown(() => fs.rmSync(log, { force: true }));
}

async function scratch(t: TestLike): Promise<{ image: string; marker: string; dir: string }> {
  const dir = await tempDir(t);
  const image = path.join(dir, 'mem.img');
  fs.writeFileSync(image, Buffer.alloc(1 << 20));
  return { image, marker: path.join(dir, 'unmounted'), dir };
}

for (const how of ['umount', 'fusermount -u'] as const) {
  t.test(`after ${how} the daemon writes back and exits`, async (t) => {
    const s = await scratch(t);
    const m = await mountO2fuse(t, s.image, { command: memoryCliCommand(), env: { O2FUSE_TEST_MARKER: s.marker } });
    t.ok(pidAlive(m.pid), 'the daemon runs');
    const started = Date.now();
    const r = how === 'umount' ? await run('umount', [m.dir]) : await run('fusermount', ['-u', m.dir]);
    t.equal(r.code, 0, `${how}: ${r.stderr}`);
    t.ok(await waitForExit(m.pid, EXIT_AFTER_UNMOUNT_MS), `the daemon exited ${Date.now() - started} ms after ${how}`);
    t.equal(fs.readFileSync(s.marker, 'utf8'), 'unmounted\n', 'engine.unmount() ran');
    assertNothingLeft(t, m.dir, how);
  });
}

t.test('SIGTERM makes the daemon unmount itself and exit', async (t) => {
  const s = await scratch(t);
  const m = await mountO2fuse(t, s.image, { command: memoryCliCommand(), env: { O2FUSE_TEST_MARKER: s.marker } });
  process.kill(m.pid, 'SIGTERM');
  t.ok(await waitForExit(m.pid, EXIT_AFTER_UNMOUNT_MS), 'exited');
  t.notOk(o2fuseMountAt(m.dir), 'the mount is gone');
  t.ok(fs.existsSync(s.marker), 'engine.unmount() ran');
});

t.test('SIGTERM while a file is open detaches lazily; the daemon exits at the last close', async (t) => {
  const s = await scratch(t);
  const m = await mountO2fuse(t, s.image, { command: memoryCliCommand(), env: { O2FUSE_TEST_MARKER: s.marker } });
  forgetLog(t, m.dir);
  const fh = await fs.promises.open(path.join(m.dir, 'hello'), 'r');
  process.kill(m.pid, 'SIGTERM');
  t.ok(await eventually(() => !o2fuseMountAt(m.dir), EXIT_AFTER_UNMOUNT_MS), 'the mount point is released at once');
  t.ok(pidAlive(m.pid), 'the daemon still serves the open file');
  t.equal((await fh.readFile('utf8')).length > 0, true, 'the open file still reads');
  await fh.close();
  t.ok(await waitForExit(m.pid, EXIT_AFTER_UNMOUNT_MS), 'the daemon exits after the last close');
  t.ok(fs.existsSync(s.marker), 'engine.unmount() ran');
});

t.test('foreground: Ctrl-C unmounts and exits 0', async (t) => {
  const s = await scratch(t);
  const m = await mountO2fuse(t, s.image, { command: memoryCliCommand(), foreground: true, env: { O2FUSE_TEST_MARKER: s.marker } });
  // The line may still be on its way through the pipe when the mount is already visible.
  t.ok(await eventually(() => /mounted on .*Ctrl-C unmounts/.test(m.stderr()), 10_000), 'says it is mounted');
  const exited = new Promise<number | null>((resolve) => m.child!.on('exit', (code) => resolve(code)));
  m.child!.kill('SIGINT');
  t.equal(await exited, 0, 'exit status 0');
  t.notOk(o2fuseMountAt(m.dir), 'the mount is gone');
  t.ok(fs.existsSync(s.marker), 'engine.unmount() ran');
});

t.test('umount then mount again at once, as harnesses do', async (t) => {
  const s = await scratch(t);
  const dir = path.join(s.dir, 'mnt');
  fs.mkdirSync(dir);
  for (let round = 0; round < 3; round++) {
    const m = await mountO2fuse(t, s.image, { command: memoryCliCommand(), dir });
    t.equal(await fs.promises.readFile(path.join(dir, 'hello'), 'utf8'), 'hello from the memory engine\n', `round ${round}: serves`);
    const r = await run('umount', [dir]);
    t.equal(r.code, 0, `round ${round}: umount`);
    // no wait here: the next mount must cope with a predecessor still writing back
    void m;
  }
  await eventually(() => liveRecords().every((r) => r.mountpoint !== fs.realpathSync(dir)), EXIT_AFTER_UNMOUNT_MS);
  assertNothingLeft(t, dir, 'after three rounds');
});

t.test('a second mount on a live mount point is refused; no second daemon', async (t) => {
  const s = await scratch(t);
  const other = path.join(s.dir, 'other.img');
  fs.writeFileSync(other, Buffer.alloc(1 << 20));
  const m = await mountO2fuse(t, s.image, { command: memoryCliCommand() });
  const [node, cli] = memoryCliCommand();
  const r = await run(node, [cli, 'mount', other, m.dir]);
  t.not(r.code, 0, 'refused');
  t.match(r.stderr, /already mounted by o2fuse \(pid \d+/);
  t.equal(liveRecord(m.dir)?.pid, m.pid, 'the first daemon still serves it');
  t.equal(liveRecords().filter((rec) => rec.mountpoint === m.dir).length, 1, 'one daemon for the mount point');
});

t.test('a daemon killed outright leaves a dead mount that the next mount clears', async (t) => {
  const s = await scratch(t);
  const dir = path.join(s.dir, 'mnt');
  fs.mkdirSync(dir);
  const m = await mountO2fuse(t, s.image, { command: memoryCliCommand(), dir });
  forgetLog(t, m.dir);
  process.kill(m.pid, 'SIGKILL');
  t.ok(await waitForExit(m.pid, EXIT_AFTER_UNMOUNT_MS), 'killed');
  t.ok(o2fuseMountAt(dir), 'the dead mount is still there');
  await t.rejects(fs.promises.readdir(dir), { code: 'ENOTCONN' }, 'and not connected');
  const again = await mountO2fuse(t, s.image, { command: memoryCliCommand(), dir });
  t.match(again.stderr(), /dead o2fuse mount .*unmounting it first/, 'the new mount says it cleared the dead one');
  t.same((await fs.promises.readdir(dir)).sort(), ['hello'], 'the new daemon serves the directory');
});
