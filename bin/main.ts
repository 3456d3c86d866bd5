/**
 * The o2fuse command line (bin/o2fuse runs this file).
 *
 *   o2fuse mkfs [...] DEVICE [SIZE]          format a volume (creates an image file)
 *   o2fuse mount [-f] [-o OPTS] DEVICE DIR   mount (daemon in the background unless -f)
 *   o2fuse DEVICE DIR -o OPTS                the same, as mount.fuse runs it
 *   o2fuse umount [-l] DIR                   unmount and wait for the write-back
 *   o2fuse status                            list running daemons
 *   o2fuse stats [--json] DIR                a daemon's counters since its mount
 *   o2fuse install [PATH]                    symlink for mount -t fuse.o2fuse
 *
 * main() takes the daemon's dependencies as a parameter so tests can run the
 * whole command line over a fake engine from their own entry script (the
 * background daemon is spawned from the same entry script, so it gets the
 * same fake).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dropEmptyLog, installCrashGuard, runDaemon, type DaemonConfig, type DaemonDeps } from './daemon';
import { defaultDaemonDeps } from './deps';
import { adoptLog, childReporter } from './detach';
import { installCommand } from './install';
import { mkfsCommand } from './mkfsCommand';
import { mountCommand, MOUNT_USAGE, parseMountArgs, statusCommand, umountCommand, UsageError } from './mountCommand';
import { statsCommand } from './statsCommand';

export const USAGE = `usage: o2fuse COMMAND ...
  o2fuse mkfs [-b BS] [-C CS] [-N SLOTS] [-L LABEL] [-J size=BYTES] [-M local|cluster]
              [--fs-features=LIST] DEVICE [SIZE]       format (creates DEVICE if SIZE is given)
  o2fuse mount [-f] [-o OPTIONS] DEVICE MOUNTPOINT      mount; -f stays in the foreground
  o2fuse DEVICE MOUNTPOINT -o OPTIONS                   the form mount -t fuse.o2fuse runs
  o2fuse umount [-l] MOUNTPOINT                         unmount and wait for the write-back
  o2fuse status                                         list running o2fuse daemons
  o2fuse stats [--json] MOUNTPOINT                      its counters: the unaligned-write rule, caches,
                                                        journal, device, FUSE requests
  o2fuse install [PATH]                                 symlink PATH (/usr/local/sbin/o2fuse) to this launcher
  o2fuse help | --version

${MOUNT_USAGE}`;

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

/** The background daemon: `__daemon CONFIG`, spawned by startDetachedDaemon. */
async function daemonChild(argv: readonly string[], deps: DaemonDeps): Promise<number> {
  const config = JSON.parse(argv[0]) as DaemonConfig;
  const reporter = childReporter();
  config.logPath = adoptLog(config);
  if (config.logPath) reporter.send({ type: 'log', path: config.logPath });
  process.title = `o2fuse ${config.device} ${config.mountpoint}`;
  installCrashGuard(config, (message) => reporter.send({ type: 'failed', message }));
  const code = await runDaemon(config, deps, {
    ready({ readOnly, warnings }) {
      for (const w of warnings) console.error(`o2fuse: warning: ${w}`);
      reporter.send({ type: 'ready', readOnly, warnings });
      reporter.done();
    },
    failed(message) {
      reporter.send({ type: 'failed', message });
      reporter.done();
    },
  });
  dropEmptyLog(config.logPath);
  return code;
}

export async function main(argv: readonly string[], deps: DaemonDeps = defaultDaemonDeps(), entry = process.argv[1]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        console.log(USAGE);
        return cmd === undefined ? 1 : 0;
      case '--version':
      case '-V':
      case 'version':
        console.log(`o2fuse ${version()}`);
        return 0;
      case 'mkfs':
        return await mkfsCommand(rest);
      case 'mount':
        return await mountCommand(parseMountArgs(rest), deps, entry);
      case 'umount':
      case 'unmount':
        return await umountCommand(rest);
      case 'status':
        return statusCommand();
      case 'stats':
        return await statsCommand(rest);
      case 'install':
        return installCommand(rest);
      case '__daemon':
        return await daemonChild(rest, deps);
      default: {
        // mount.fuse's form: o2fuse DEVICE MOUNTPOINT -o OPTIONS
        const args = parseMountArgs(argv);
        if (args.positional.length >= 2 || args.optionLists.length > 0) return await mountCommand(args, deps, entry);
        console.error(`o2fuse: unknown command "${cmd}"\n${USAGE}`);
        return 1;
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`o2fuse: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error('o2fuse:', err);
      process.exit(70);
    },
  );
}
