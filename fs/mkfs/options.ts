/**
 * mkfs options: the MkfsOptions object formatVolume takes, and parsing of
 * mkfs.ocfs2's command line into it (same flags, same size syntax).
 *
 *   mkfs [-b blocksize] [-C clustersize] [-N slots] [-L label] [-J size=N[,block64]]
 *        [-M local|cluster] [-T datafiles|mail|vmstore] [-U uuid] [-n] [-q] [-F]
 *        [--fs-features=[no]name,...] [--fs-feature-level=default|max-compat|max-features]
 *        [--no-backup-super] [--cluster-stack=NAME --cluster-name=NAME [--global-heartbeat]]
 *        device [blocks-count | SIZE]
 *
 * The trailing count is mkfs.ocfs2's blocks-count when it is a bare number
 * (in -b blocks, 4K blocks when -b is absent); with a unit (512K, 64M, 1G,
 * 2T) it is a size in bytes. An image file that does not exist yet is
 * created with that size.
 */
import { OCFS2_CLUSTER_NAME_LEN, OCFS2_MAX_SLOTS, OCFS2_MAX_VOL_LABEL_LEN } from '../format/constants';
import { MkfsUsageError } from './errors';
import { emptyFeatures, FeatureLevel, FeatureRequest, parseFeatureLevel, parseFeatureList } from './features';
import { checkBlockSize, checkClusterSize, FsType } from './geometry';

export interface MkfsOptions {
  /** -b: 512, 1024, 2048 or 4096 (default by volume size, as mkfs.ocfs2). */
  blockSizeBytes?: number;
  /** -C: 4K..1M, a power of two (default 4K until the cluster count passes 2^32-2). */
  clusterSizeBytes?: number;
  /** -N: node slots, 1..255 (default 1 for a local volume, by size for a cluster volume). */
  slots?: number;
  /** -L: volume label, under 64 bytes. */
  label?: string;
  /** -J size=: bytes per journal (default by volume size, as mkfs.ocfs2). */
  journalSizeBytes?: number;
  /** -J block64: JBD2 64-bit block numbers (needed past 2^32 blocks). */
  journal64?: boolean;
  /** -M: 'local' (default: one node, in-process locking) or 'cluster'. */
  mountType?: 'local' | 'cluster';
  /** -T: mkfs.ocfs2's volume types; they change journal, cluster and extent-allocator sizes only. */
  fsType?: FsType;
  /** --fs-feature-level (default: o2fuse's default set). */
  featureLevel?: FeatureLevel;
  /** --fs-features: a list string ("metaecc,noinline-data") or a parsed request. */
  features?: string | FeatureRequest;
  /** --no-backup-super (same as nobackup-super in the feature list). */
  noBackupSuper?: boolean;
  /** --cluster-stack / --cluster-name / --global-heartbeat (-M cluster only). */
  clusterStack?: string;
  clusterName?: string;
  globalHeartbeat?: boolean;
  /** -U: the volume UUID (32 hex digits, dashes allowed); random by default. */
  uuid?: string | Buffer;
  /** Bytes of the device to use (default: all of it, down to whole clusters). */
  volumeSizeBytes?: number;
  /** -n: compute and report the layout, write nothing. */
  dryRun?: boolean;
  /**
   * The caller knows every byte of the device reads as zero (a sparse image
   * file it just created): skip reading journals and allocator groups to
   * find stale data to wipe.
   */
  deviceIsZeroed?: boolean;
  /** Progress lines for long steps (journal zeroing); default none. The CLI passes stderr. */
  progress?: (line: string) => void;
  /** Format time in seconds since the epoch (tests pin it). */
  nowSeconds?: number;
  /** Random bytes (tests pin them): UUID, generation, dx seeds. Default crypto.randomBytes. */
  randomBytes?: (n: number) => Buffer;
}

const UNIT: Readonly<Record<string, number>> = {
  '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50,
};

/**
 * A byte count: digits (or 0x hex) with an optional binary unit K, M, G, T,
 * P (also KB/KiB forms) or B. "1G" = 1073741824. Fractions and negative
 * numbers are refused.
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(0x[0-9a-f]+|\d+)\s*([kmgtp]?)(i?b)?\s*$/i.exec(text);
  if (!m) throw new MkfsUsageError(`bad ${what} "${text}": use a whole number with an optional unit K, M, G, T (e.g. 512K, 1G)`);
  const n = m[1].toLowerCase().startsWith('0x') ? parseInt(m[1], 16) : Number(m[1]);
  const unit = m[2] ? UNIT[m[2].toLowerCase()] : 1;
  const value = n * unit;
  if (!Number.isSafeInteger(value)) throw new MkfsUsageError(`bad ${what} "${text}": too large`);
  return value;
}

/** True when the text carries a unit (so it is bytes, not mkfs.ocfs2's blocks-count). */
export function sizeHasUnit(text: string): boolean {
  return /[kmgtpb]\s*$/i.test(text.trim()) && !/^\s*0x[0-9a-f]+\s*$/i.test(text);
}

/** Parses a UUID given as 32 hex digits, with or without dashes. */
export function parseUuid(text: string): Buffer {
  const hex = text.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new MkfsUsageError(`bad UUID "${text}": use 32 hex digits (dashes allowed)`);
  return Buffer.from(hex, 'hex');
}

export interface ParsedMkfsArgs {
  devicePath: string;
  /** Size from the trailing argument, in bytes (blocks-count times the block size, or a size with a unit). */
  sizeBytes?: number;
  options: MkfsOptions;
  quiet: boolean;
  force: boolean;
  verbose: boolean;
}

export const MKFS_USAGE =
  'usage: mkfs [-b block-size] [-C cluster-size] [-J size=journal-size[,block64]]\n' +
  '            [-L volume-label] [-M local|cluster] [-N number-of-node-slots]\n' +
  '            [-T datafiles|mail|vmstore] [-U uuid] [-FnqvV] [--dry-run]\n' +
  '            [--fs-feature-level=default|max-compat|max-features]\n' +
  '            [--fs-features=[no]sparse,...] [--no-backup-super]\n' +
  '            [--cluster-stack=stack --cluster-name=name [--global-heartbeat]]\n' +
  '            device [blocks-count | size with unit, e.g. 1G]';

/** Help and version are not errors but stop parsing; the CLI prints and exits 0. */
export class MkfsInfoRequest extends Error {
  constructor(readonly kind: 'help' | 'version') {
    super(kind);
    this.name = 'MkfsInfoRequest';
  }
}

/** Long options: name -> [short equivalent, takes an argument]. */
const LONG: Readonly<Record<string, [string, boolean]>> = {
  'block-size': ['b', true],
  'cluster-size': ['C', true],
  label: ['L', true],
  'node-slots': ['N', true],
  verbose: ['v', false],
  quiet: ['q', false],
  version: ['V', false],
  'journal-options': ['J', true],
  'heartbeat-device': ['H', false],
  force: ['F', false],
  mount: ['M', true],
  'dry-run': ['n', false],
  'no-backup-super': ['no-backup-super', false],
  'fs-feature-level': ['fs-feature-level', true],
  'fs-features': ['fs-features', true],
  'cluster-stack': ['cluster-stack', true],
  'cluster-name': ['cluster-name', true],
  'global-heartbeat': ['global-heartbeat', false],
  help: ['h', false],
};
const SHORT_WITH_ARG = new Set(['b', 'C', 'L', 'N', 'J', 'M', 'T', 'U']);
const SHORT_FLAGS = new Set(['v', 'n', 'q', 'V', 'F', 'H', 'x', 'h']);

function parseJournalOptions(text: string, opts: MkfsOptions): void {
  for (const token of text.split(',')) {
    if (token === '') continue;
    const invert = token.startsWith('no');
    const body = invert ? token.slice(2) : token;
    const eq = body.indexOf('=');
    const key = eq < 0 ? body : body.slice(0, eq);
    const arg = eq < 0 ? undefined : body.slice(eq + 1);
    if (key === 'size' && arg !== undefined && !invert) {
      opts.journalSizeBytes = parseSize(arg, 'journal size');
    } else if (key === 'block32' && arg === undefined) {
      opts.journal64 = invert;
    } else if (key === 'block64' && arg === undefined) {
      opts.journal64 = !invert;
    } else {
      throw new MkfsUsageError(`bad journal option "${token}" in -J: use size=<journal size>, [no]block32, [no]block64`);
    }
  }
}

function parseIntStrict(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim())) throw new MkfsUsageError(`bad ${what} "${text}": use a whole number`);
  return Number(text.trim());
}

const FS_TYPES: readonly FsType[] = ['datafiles', 'mail', 'vmstore'];
/** o2cb_valid_stack_name: the stacks ocfs2-tools knows. */
const KNOWN_STACKS = ['o2cb', 'pcmk', 'cman'];

/**
 * Parses mkfs.ocfs2's arguments (without the program name). Throws
 * MkfsUsageError with a message naming the bad flag, or MkfsInfoRequest for
 * --help / -V.
 */
export function parseMkfsArgs(argv: readonly string[]): ParsedMkfsArgs {
  const options: MkfsOptions = {};
  let quiet = false;
  let force = false;
  let verbose = false;
  let features: FeatureRequest | undefined;
  const positional: string[] = [];

  const apply = (key: string, value: string | undefined): void => {
    const need = (): string => {
      if (value === undefined) throw new MkfsUsageError(`option ${key.length === 1 ? '-' : '--'}${key} needs an argument`);
      return value;
    };
    switch (key) {
      case 'b': {
        const v = parseSize(need(), 'block size (-b)');
        checkBlockSize(v);
        options.blockSizeBytes = v;
        break;
      }
      case 'C': {
        const v = parseSize(need(), 'cluster size (-C)');
        checkClusterSize(v);
        options.clusterSizeBytes = v;
        break;
      }
      case 'L': {
        const v = need();
        if (Buffer.byteLength(v, 'utf8') >= OCFS2_MAX_VOL_LABEL_LEN) {
          throw new MkfsUsageError(`volume label too long: must be less than ${OCFS2_MAX_VOL_LABEL_LEN} bytes`);
        }
        options.label = v;
        break;
      }
      case 'N': {
        const v = parseIntStrict(need(), 'slot count (-N)');
        if (v < 1 || v > OCFS2_MAX_SLOTS) throw new MkfsUsageError(`bad slot count ${v} (-N): use 1 to ${OCFS2_MAX_SLOTS}`);
        options.slots = v;
        break;
      }
      case 'J':
        parseJournalOptions(need(), options);
        break;
      case 'M': {
        const v = need().toLowerCase();
        if (v.startsWith('local')) options.mountType = 'local';
        else if (v.startsWith('cluster')) options.mountType = 'cluster';
        else throw new MkfsUsageError(`bad mount type "${value}" (-M): use local or cluster`);
        break;
      }
      case 'T': {
        const v = need();
        if (!(FS_TYPES as readonly string[]).includes(v)) throw new MkfsUsageError(`bad fs type "${v}" (-T): use datafiles, mail or vmstore`);
        options.fsType = v as FsType;
        break;
      }
      case 'U':
        options.uuid = parseUuid(need());
        break;
      case 'n':
        options.dryRun = true;
        break;
      case 'q':
        quiet = true;
        break;
      case 'v':
        verbose = true;
        break;
      case 'F':
      case 'x':
        force = true;
        break;
      case 'V':
        throw new MkfsInfoRequest('version');
      case 'h':
        throw new MkfsInfoRequest('help');
      case 'H':
        throw new MkfsUsageError('heartbeat-only devices (-H) are not supported by o2fuse mkfs');
      case 'no-backup-super':
        options.noBackupSuper = true;
        break;
      case 'fs-feature-level':
        options.featureLevel = parseFeatureLevel(need());
        break;
      case 'fs-features':
        features = parseFeatureList(need(), features ?? { set: emptyFeatures(), clear: emptyFeatures() });
        break;
      case 'cluster-stack': {
        const v = need();
        if (!KNOWN_STACKS.includes(v)) throw new MkfsUsageError(`unknown cluster stack "${v}": use ${KNOWN_STACKS.join(', ')}`);
        options.clusterStack = v;
        break;
      }
      case 'cluster-name':
        if (need() === '') throw new MkfsUsageError('option --cluster-name needs an argument');
        options.clusterName = need();
        break;
      case 'global-heartbeat':
        options.globalHeartbeat = true;
        break;
      default:
        throw new MkfsUsageError(`unknown option ${key.length === 1 ? '-' : '--'}${key}\n${MKFS_USAGE}`);
    }
  };

  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k];
    if (arg === '--') {
      positional.push(...argv.slice(k + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = LONG[name];
      if (!spec) throw new MkfsUsageError(`unknown option --${name}\n${MKFS_USAGE}`);
      let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
      if (spec[1] && value === undefined) {
        if (k + 1 >= argv.length) throw new MkfsUsageError(`option --${name} needs an argument`);
        value = argv[++k];
      }
      if (!spec[1] && value !== undefined) throw new MkfsUsageError(`option --${name} takes no argument`);
      apply(spec[0], value);
    } else if (arg.startsWith('-') && arg.length > 1) {
      // Clustered short flags (-qF) and attached arguments (-b4096), as getopt takes them.
      for (let j = 1; j < arg.length; j++) {
        const ch = arg[j];
        if (SHORT_WITH_ARG.has(ch)) {
          let value = arg.slice(j + 1);
          if (value === '') {
            if (k + 1 >= argv.length) throw new MkfsUsageError(`option -${ch} needs an argument`);
            value = argv[++k];
          }
          apply(ch, value);
          break;
        }
        if (!SHORT_FLAGS.has(ch)) throw new MkfsUsageError(`unknown option -${ch}\n${MKFS_USAGE}`);
        apply(ch, undefined);
      }
    } else {
      positional.push(arg);
    }
  }

  if (positional.length === 0) throw new MkfsUsageError(`no device given\n${MKFS_USAGE}`);
  if (positional.length > 2) throw new MkfsUsageError(`too many arguments: ${positional.slice(2).join(' ')}\n${MKFS_USAGE}`);
  if (features) options.features = features;

  let sizeBytes: number | undefined;
  if (positional.length === 2) {
    const text = positional[1];
    if (sizeHasUnit(text)) {
      sizeBytes = parseSize(text, 'device size');
    } else {
      const blocks = parseSize(text, 'blocks-count');
      sizeBytes = blocks * (options.blockSizeBytes ?? 4096);
    }
    if (sizeBytes <= 0) throw new MkfsUsageError(`bad device size "${text}": must be more than 0`);
  }
  validateClusterOptions(options);
  return { devicePath: positional[0], sizeBytes, options, quiet, force, verbose };
}

/** is_cluster_info_valid: cluster attributes need -M cluster, a known stack and a cluster name. */
export function validateClusterOptions(o: MkfsOptions): void {
  const any = o.clusterStack !== undefined || o.clusterName !== undefined || o.globalHeartbeat === true;
  if (!any) return;
  if ((o.mountType ?? 'local') === 'local') {
    throw new MkfsUsageError('a local volume (-M local, the default) takes no --cluster-stack, --cluster-name or --global-heartbeat: add -M cluster');
  }
  if (!o.clusterStack) throw new MkfsUsageError('missing --cluster-stack (o2cb, pcmk or cman) for the cluster attributes given');
  if (!KNOWN_STACKS.includes(o.clusterStack)) throw new MkfsUsageError(`unknown cluster stack "${o.clusterStack}"`);
  if (!o.clusterName) throw new MkfsUsageError('missing --cluster-name for --cluster-stack');
  const nameBytes = Buffer.byteLength(o.clusterName, 'utf8');
  if (nameBytes > OCFS2_CLUSTER_NAME_LEN) {
    throw new MkfsUsageError(`cluster name "${o.clusterName}" too long: at most ${OCFS2_CLUSTER_NAME_LEN} characters`);
  }
  if (o.clusterStack === 'o2cb' && !/^[A-Za-z0-9]+$/.test(o.clusterName)) {
    throw new MkfsUsageError(`bad o2cb cluster name "${o.clusterName}": at most ${OCFS2_CLUSTER_NAME_LEN} letters and digits`);
  }
  if (o.globalHeartbeat && o.clusterStack !== 'o2cb') {
    throw new MkfsUsageError('--global-heartbeat applies only to the o2cb cluster stack');
  }
}
