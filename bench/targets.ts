/**
 * What the benchmark measures: o2fuse (once per transport it has) and the
 * baselines. A target knows how to make an empty volume of its kind (an
 * image file or a host directory), how to mount one fresh, and which process
 * serves the mount (for its peak RSS).
 *
 * Every mount is undone by Mounted.unmount(): fusermount -u (retried while
 * busy), then -uz, then wait for the daemon to exit, killing it if it hangs.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { liveRecord, pidAlive } from '../bin/registry';
import type { DaemonStats } from '../bin/control';
import type { GateStats } from '../io/unalignedGate';
import { mountsAt } from '../fs/fuse/mountinfo';
import { pidsWithArgument, run, runOk, sleep, track, waitForExit } from './proc';

export type VolumeKind = 'image' | 'dir';

export interface Mounted {
  /** Where the workload runs. */
  dir: string;
  /** The serving daemon, when there is one (not for the host directory). */
  pid?: number;
  /**
   * o2fuse: the unaligned-write gate's counters now (`o2fuse stats`); undefined when the daemon does not say.
   * A run takes them before and after its workload.
   */
  gateCounters?(): Promise<GateCounters | undefined>;
  /** Unmounts and waits for the daemon to exit; idempotent, never throws. */
  unmount(): Promise<void>;
}

/** The unaligned-write gate's running totals, as `o2fuse stats --json` gives them. */
export type GateCounters = Pick<GateStats, 'entered' | 'waits' | 'totalWaitMs'>;

export interface Target {
  /** Short id used in file names and tables: o2fuse-libfuse, host, passthrough, bindfs, fuse2fs. */
  id: string;
  /** What the report calls it. */
  label: string;
  kind: VolumeKind;
  /** o2fuse variants are the measured ones; the rest are baselines. */
  isO2fuse: boolean;
  /** For o2fuse: the transport= value. */
  transport?: string;
  /** Set when the target cannot run at all (missing package, failed mount); the reason. */
  unavailable?: string;
  /** How it is mounted, for the report. */
  describe: string;
  /** Makes an empty volume at `volume` (an image file or a directory). */
  makeEmpty(volume: string): Promise<void>;
  /** Mounts `volume` on the empty directory `mnt`; throws with the reason when it does not come up. */
  mount(volume: string, mnt: string): Promise<Mounted>;
}

export interface TargetConfig {
  repoRoot: string;
  /**
   * How o2fuse's CLI is run: [program, ...leading args]. main.ts runs a
   * copy of bin/o2fuse over a snapshot of dist/ taken at start, so a rebuild
   * during the run neither changes the code under test nor costs a tsc run
   * inside a mount (bin/o2fuse rebuilds when a source is newer).
   * Read when used: main.ts fills it in once the snapshot exists.
   */
  o2fuseCli: string[];
  /** Size of every image (bytes). */
  volumeBytes: number;
  /** Extra o2fuse -o options (e.g. cache_size=...). */
  o2fuseOptions?: string;
}

const UNMOUNT_BUSY_RETRIES = 20;
const DAEMON_EXIT_WAIT_MS = 60_000;
const MOUNT_WAIT_MS = 30_000;

function fuseMountAt(dir: string): boolean {
  return mountsAt(dir).some((m) => m.fsType === 'fuse' || m.fsType.startsWith('fuse.') || m.fsType === 'fuseblk');
}

/** fusermount -u while busy, then lazily; then the daemon must go (SIGKILL after a minute). */
async function unmountFuse(dir: string, pid: number | undefined): Promise<void> {
  for (let i = 0; i < UNMOUNT_BUSY_RETRIES && fuseMountAt(dir); i++) {
    const r = await run('fusermount', ['-u', dir]);
    if (r.code === 0) break;
    await sleep(100);
  }
  if (fuseMountAt(dir)) await run('fusermount', ['-u', '-z', dir]);
  if (pid !== undefined && !(await waitForExit(pid, DAEMON_EXIT_WAIT_MS))) {
    process.stderr.write(`bench: daemon ${pid} still running ${DAEMON_EXIT_WAIT_MS / 1000} s after its unmount: killing it\n`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await waitForExit(pid, 5000);
    if (fuseMountAt(dir)) await run('fusermount', ['-u', '-z', dir]);
  }
}

function onceUnmount(dir: string, pid: number | undefined): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= unmountFuse(dir, pid).catch(() => undefined));
}

/** The daemon a forking FUSE server left behind: the process whose arguments name the mount point. */
function daemonServing(mnt: string): number | undefined {
  const pids = pidsWithArgument(mnt).filter(pidAlive);
  return pids.length > 0 ? Math.max(...pids) : undefined;
}

async function makeSparseImage(image: string, bytes: number): Promise<void> {
  fs.rmSync(image, { force: true });
  const fd = fs.openSync(image, 'w');
  try {
    fs.ftruncateSync(fd, bytes);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * o2fuse over one transport; `extra` names a mount option this target adds
 * (a variant measured beside the default, e.g. writeback_cache).
 */
export function o2fuseTarget(cfg: TargetConfig, transport: string, extra?: string): Target {
  const cli = () => ({ bin: cfg.o2fuseCli[0], lead: cfg.o2fuseCli.slice(1) });
  // With a unit: a bare number after the device is mkfs.ocfs2's blocks-count, not bytes.
  const size = `${Math.round(cfg.volumeBytes / (1 << 20))}M`;
  const options = [`transport=${transport}`, ...(extra ? [extra] : []), ...(cfg.o2fuseOptions ? [cfg.o2fuseOptions] : [])].join(',');
  return {
    id: `o2fuse-${transport}${extra ? `-${extra.replace(/[^a-z0-9]+/g, '-')}` : ''}`,
    label: `o2fuse (${transport}${extra ? `, ${extra}` : ''})`,
    kind: 'image',
    isO2fuse: true,
    transport,
    describe: `o2fuse mkfs IMG ${size}; o2fuse mount -o ${options} IMG DIR (bin/o2fuse over a snapshot of dist/ taken at start)`,
    async makeEmpty(volume) {
      fs.rmSync(volume, { force: true });
      const { bin, lead } = cli();
      await runOk(bin, [...lead, 'mkfs', volume, size], { timeoutMs: 120_000 });
    },
    async mount(volume, mnt) {
      const { bin, lead } = cli();
      const r = await run(bin, [...lead, 'mount', '-o', options, volume, mnt], { timeoutMs: 120_000 });
      const pid = liveRecord(mnt)?.pid;
      const unmount = onceUnmount(mnt, pid);
      if (r.code !== 0 || pid === undefined || !fuseMountAt(mnt)) {
        await unmount();
        throw new Error(`o2fuse mount exited ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr.trim() || '(no message)'}${r.code === 0 ? ` (but ${mnt} is not served)` : ''}`);
      }
      const gateCounters = async (): Promise<GateCounters | undefined> => {
        const s = await run(bin, [...lead, 'stats', '--json', mnt], { timeoutMs: 60_000 });
        if (s.code !== 0) return undefined;
        try {
          const g = (JSON.parse(s.stdout) as DaemonStats).engine?.unalignedGate;
          return g && { entered: g.entered, waits: g.waits, totalWaitMs: g.totalWaitMs };
        } catch {
          return undefined;
        }
      };
      return { dir: mnt, pid, unmount, gateCounters };
    },
  };
}

export function hostTarget(): Target {
  return {
    id: 'host',
    label: 'host dir',
    kind: 'dir',
    isO2fuse: false,
    describe: 'a directory on the scratch filesystem, no FUSE (the physical limit)',
    async makeEmpty(volume) {
      fs.rmSync(volume, { recursive: true, force: true });
      fs.mkdirSync(volume, { recursive: true });
    },
    async mount(volume) {
      return { dir: volume, unmount: async () => undefined };
    },
  };
}

export function passthroughTarget(cfg: TargetConfig): Target {
  const script = path.join(cfg.repoRoot, 'dist', 'bench', 'passthrough.js');
  return {
    id: 'passthrough',
    label: 'fuse-native passthrough',
    kind: 'dir',
    isO2fuse: false,
    describe: 'node dist/bench/passthrough.js DIR MNT (fuse-native 2.2.6, libfuse 2.9, big_writes, max_write=1048576)',
    async makeEmpty(volume) {
      fs.rmSync(volume, { recursive: true, force: true });
      fs.mkdirSync(volume, { recursive: true });
    },
    async mount(volume, mnt) {
      const child = spawn(process.execPath, [script, volume, mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
      track(child);
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => { stderr += b.toString('utf8'); });
      const unmount = onceUnmount(mnt, child.pid);
      const ready = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), MOUNT_WAIT_MS);
        let out = '';
        child.stdout!.on('data', (b: Buffer) => {
          out += b.toString('utf8');
          if (out.includes('ready')) { clearTimeout(timer); resolve(true); }
        });
        child.on('exit', () => { clearTimeout(timer); resolve(false); });
      });
      child.stdout!.resume();
      if (!ready || !fuseMountAt(mnt)) {
        child.kill('SIGTERM');
        await unmount();
        throw new Error(`passthrough did not mount: ${stderr.trim() || 'no ready line'}`);
      }
      return { dir: mnt, pid: child.pid, unmount };
    },
  };
}

export function bindfsTarget(): Target {
  const args = ['--multithreaded', '--no-allow-other', '-o', 'big_writes,max_write=1048576'];
  return {
    id: 'bindfs',
    label: 'bindfs',
    kind: 'dir',
    isO2fuse: false,
    describe: `bindfs ${args.join(' ')} DIR MNT (C, libfuse 2.9; O_DIRECT cleared, its default)`,
    async makeEmpty(volume) {
      fs.rmSync(volume, { recursive: true, force: true });
      fs.mkdirSync(volume, { recursive: true });
    },
    async mount(volume, mnt) {
      const r = await run('bindfs', [...args, volume, mnt], { timeoutMs: MOUNT_WAIT_MS });
      const pid = daemonServing(mnt);
      const unmount = onceUnmount(mnt, pid);
      if (r.code !== 0 || !fuseMountAt(mnt)) {
        await unmount();
        throw new Error(`bindfs exited ${r.code}: ${r.stderr.trim() || '(no message)'}`);
      }
      return { dir: mnt, pid, unmount };
    },
  };
}

export function fuse2fsTarget(cfg: TargetConfig): Target {
  return {
    id: 'fuse2fs',
    label: 'fuse2fs (ext4)',
    kind: 'image',
    isO2fuse: false,
    describe: `truncate -s ${cfg.volumeBytes} IMG; mkfs.ext4 -F -q IMG; fuse2fs IMG MNT (its defaults include big_writes)`,
    async makeEmpty(volume) {
      await makeSparseImage(volume, cfg.volumeBytes);
      await runOk('mkfs.ext4', ['-F', '-q', volume], { timeoutMs: 120_000 });
    },
    async mount(volume, mnt) {
      const r = await run('fuse2fs', [volume, mnt], { timeoutMs: MOUNT_WAIT_MS });
      const pid = daemonServing(mnt);
      const unmount = onceUnmount(mnt, pid);
      // fuse2fs exits 0 even when the mount was refused: the mount table decides.
      if (r.code !== 0 || !fuseMountAt(mnt)) {
        await unmount();
        throw new Error(`fuse2fs exited ${r.code}${fuseMountAt(mnt) ? '' : ', no mount'}: ${r.stderr.trim() || '(no message)'}`);
      }
      return { dir: mnt, pid, unmount };
    },
  };
}
