/**
 * One daemon per device on this machine: a second lock on the same device
 * (by any path) is refused naming the holder's pid; a lock left by a dead
 * process, a reused pid or a garbled file is taken over; only one of many
 * simultaneous takers wins, in one process or across processes.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeviceLock, deviceLockName, DeviceLockedError, lockDevice, processStartTicks } from '../../io/deviceLock';
import { scratchDir } from './helpers';

function setup(t: tap.Test) {
  const dir = scratchDir(t, 'lock');
  const image = path.join(dir, 'vol.img');
  fs.writeFileSync(image, 'x');
  const lockDir = path.join(dir, 'run');
  return { dir, image, lockDir };
}

async function lockPathOf(image: string, lockDir: string): Promise<string> {
  return path.join(lockDir, await deviceLockName(image));
}

t.test('the lock file is named for the device identity and holds our pid', async (t) => {
  const { image, lockDir } = setup(t);
  const st = fs.statSync(image, { bigint: true });
  t.equal(await deviceLockName(image), `${st.dev}-${st.ino}.lock`);
  if (fs.existsSync('/dev/loop0')) t.match(await deviceLockName('/dev/loop0'), /^rdev-7:0\.lock$/, 'a block device by rdev');
  const lock = await lockDevice(image, { lockDir });
  const content = fs.readFileSync(lock.lockPath, 'utf8');
  t.match(content, new RegExp(`^${process.pid} \\d+\\n${image.replace(/[.]/g, '\\.')}\\n[0-9a-f]{16}\\n$`));
  t.same(fs.readdirSync(lockDir), [path.basename(lock.lockPath)], 'no temporary files left behind');
  await lock.release();
  t.equal(fs.existsSync(lock.lockPath), false);
  await lock.release(); // idempotent
});

t.test('a second lock on the same device, by any path, is refused with the holder pid', async (t) => {
  const { dir, image, lockDir } = setup(t);
  const lock = await lockDevice(image, { lockDir });
  const err = await lockDevice(image, { lockDir }).catch((e: unknown) => e);
  t.type(err, DeviceLockedError);
  t.equal((err as DeviceLockedError).errno, 'EBUSY');
  t.equal((err as DeviceLockedError).holderPid, process.pid);
  t.match(String((err as Error).message), `${image} is already mounted by o2fuse pid ${process.pid}`);
  const link = path.join(dir, 'alias.img');
  fs.symlinkSync(image, link);
  const hard = path.join(dir, 'hard.img');
  fs.linkSync(image, hard);
  await t.rejects(lockDevice(link, { lockDir }), DeviceLockedError, 'a symlink reaches the same lock');
  await t.rejects(lockDevice(hard, { lockDir }), DeviceLockedError, 'a hard link reaches the same lock');
  await lock.release();
  const again = await lockDevice(link, { lockDir });
  t.pass('free again after release');
  await again.release();
});

t.test('a lock held by another live process is refused', async (t) => {
  const { image, lockDir } = setup(t);
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => {
    child.kill();
  });
  const ticks = await processStartTicks(child.pid!);
  fs.mkdirSync(lockDir, { recursive: true });
  fs.writeFileSync(await lockPathOf(image, lockDir), `${child.pid} ${ticks}\n${image}\nabc\n`);
  const err = await lockDevice(image, { lockDir }).catch((e: unknown) => e);
  t.type(err, DeviceLockedError);
  t.equal((err as DeviceLockedError).holderPid, child.pid);
});

t.test('stale locks are taken over: dead pid, reused pid, garbled file', async (t) => {
  const { image, lockDir } = setup(t);
  fs.mkdirSync(lockDir, { recursive: true });
  const lockPath = await lockPathOf(image, lockDir);
  const dead = spawnSync('true');
  const stales = [
    [`${dead.pid} 12345\n${image}\nold\n`, 'a dead pid'],
    [`${process.pid} 1\n${image}\nold\n`, 'our own pid, but a different start time: the pid was reused'],
    ['garbage', 'a garbled file'],
    ['', 'an empty file'],
  ];
  for (const [content, what] of stales) {
    fs.writeFileSync(lockPath, content!);
    const lock = await lockDevice(image, { lockDir });
    t.match(fs.readFileSync(lockPath, 'utf8'), new RegExp(`^${process.pid} `), `taken over: ${what}`);
    await lock.release();
  }
  t.same(fs.readdirSync(lockDir), [], 'nothing left behind');
});

t.test('of many simultaneous takers of a stale lock exactly one wins (one process)', async (t) => {
  const { image, lockDir } = setup(t);
  fs.mkdirSync(lockDir, { recursive: true });
  fs.writeFileSync(await lockPathOf(image, lockDir), `${spawnSync('true').pid} 1\n${image}\nold\n`);
  const results = await Promise.allSettled(Array.from({ length: 12 }, () => lockDevice(image, { lockDir })));
  const won = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof DeviceLockedError);
  t.equal(won.length, 1, 'one winner');
  t.equal(refused.length, 11, 'the others are told who holds it');
  await (won[0] as PromiseFulfilledResult<DeviceLock>).value.release();
  t.same(fs.readdirSync(lockDir), []);
});

t.test('of several daemons starting together on a stale lock exactly one wins (processes)', async (t) => {
  const { image, lockDir } = setup(t);
  fs.mkdirSync(lockDir, { recursive: true });
  fs.writeFileSync(await lockPathOf(image, lockDir), `${spawnSync('true').pid} 1\n${image}\nold\n`);
  const modulePath = path.join(__dirname, '..', '..', 'io', 'deviceLock.js');
  const script = `
    const { lockDevice } = require(${JSON.stringify(modulePath)});
    lockDevice(${JSON.stringify(image)}, { lockDir: ${JSON.stringify(lockDir)} }).then(
      () => { process.stdout.write('won'); setTimeout(() => {}, 1500); },
      (e) => { process.stdout.write(e.name); },
    );`;
  const outcomes = await Promise.all(
    Array.from(
      { length: 6 },
      () =>
        new Promise<string>((resolve) => {
          const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.on('exit', () => resolve(out));
        }),
    ),
  );
  t.equal(outcomes.filter((o) => o === 'won').length, 1, `outcomes: ${outcomes.join(', ')}`);
  t.equal(outcomes.filter((o) => o === 'DeviceLockedError').length, 5);
  // The winner has exited without releasing: its lock is now stale and ours to take.
  const lock = await lockDevice(image, { lockDir });
  await lock.release();
});

t.test('an unusable lock directory gives an error that says how to choose another', async (t) => {
  const { image, dir } = setup(t);
  const blocker = path.join(dir, 'not-a-dir');
  fs.writeFileSync(blocker, '');
  const err = await lockDevice(image, { lockDir: path.join(blocker, 'run') }).catch((e: Error) => e);
  t.match(String(err), /cannot create lock directory .* \(set O2FUSE_LOCK_DIR to use another\)/);
  await t.rejects(lockDevice(path.join(dir, 'missing.img'), { lockDir: dir }), /ENOENT: stat/);
});

t.test('releaseSync removes only our own lock', async (t) => {
  const { image, lockDir } = setup(t);
  const lock = await lockDevice(image, { lockDir });
  fs.writeFileSync(lock.lockPath, 'someone else\n');
  lock.releaseSync();
  t.equal(fs.readFileSync(lock.lockPath, 'utf8'), 'someone else\n', 'a lock that is no longer ours stays');
});
