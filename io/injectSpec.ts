/**
 * `-o inject=SPEC`: fault injection on a live mount, so a storage engineer can
 * widen a race or fail a block by hand. SPEC becomes a FaultyDevice around the
 * real device. Full description with examples: docs/inject.md.
 *
 *   SPEC   := RULE { '+' RULE }            (';' works too; ',' cannot: it ends the mount option)
 *   RULE   := KIND { ':' FIELD }            ('/' works as well as ':')
 *   KIND   := delay | latency | eio | hold | powercut | seed=N
 *   FIELD  := DURATION | DURATION '-' DURATION | TARGET | COUNT | KEY '=' VALUE
 *   TARGET := OP [ '@' RANGE ] | '@' RANGE   OP := read | write | flush | any
 *   RANGE  := BYTES '-' [ BYTES ]           half-open [start, end); no end: to the end of the device
 *   BYTES  := decimal or 0x hex, optional K M G T suffix (binary: K = 1024)
 *   DURATION := NUMBER ( us | ms | s )      whole milliseconds after conversion
 *   COUNT  := once | always | N | Nx | times=N
 *
 *   delay:5ms[:TARGET][:COUNT]          every matching request waits 5 ms
 *   latency:1-20ms[:TARGET]             random wait per request (seeded): completions reorder
 *   eio:TARGET[:COUNT][:errno=NAME]     matching requests fail (default always, EIO)
 *   hold:TARGET:50ms[:COUNT]            matching requests are held 50 ms (logged on o2fuse:io)
 *   powercut:after-writes=N[:keep=F]    power goes right after the N-th acknowledged write:
 *                                       unflushed writes are lost (a fraction F of their sectors
 *                                       persists anyway), then every request fails with EIO
 *   seed=N                              seeds every random choice (default 1); also ':seed=N' on a rule
 *
 * Example: -o inject=latency:1-20ms+seed=42+eio:write@1048576-1052672:once
 */
import { constants } from 'node:os';
import { Device, DeviceErrno } from './device';
import {
  FaultRule,
  FaultyDevice,
  FaultyDeviceOptions,
  FaultOp,
  INJECTED_DELAY_MS_MAX,
  RequestMatcher,
} from './faultyDevice';

/** Rules one spec may hold: a spec is typed by hand, and a longer one is a mistake. */
export const INJECT_RULES_MAX = 64;

export class InjectSpecError extends Error {
  readonly errno = 'EINVAL' as const;
  constructor(message: string) {
    super(`inject: ${message}`);
    this.name = 'InjectSpecError';
  }
}

const OPS = ['read', 'write', 'flush', 'any'] as const;
const KINDS = ['delay', 'latency', 'eio', 'hold', 'powercut', 'seed=N'];
const BYTE_SUFFIX: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const MS_PER_UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };

interface Fields {
  durations: Array<{ minMs: number; maxMs: number; text: string }>;
  target: RequestMatcher | null;
  times: number | null;
  options: Map<string, string>;
}

/** Parses SPEC (the text after `inject=`) into FaultyDevice options; throws InjectSpecError. */
export function parseInjectSpec(spec: string): FaultyDeviceOptions {
  const text = spec.trim();
  if (text === '') throw new InjectSpecError('empty spec (expected e.g. delay:5ms or eio:write@0-4096)');
  if (text.includes(',')) {
    throw new InjectSpecError(
      `'${text}': ',' ends a mount option; separate rules with '+' (e.g. latency:1-20ms+seed=42)`,
    );
  }
  const ruleTexts = text.split(/[+;]/);
  if (ruleTexts.length > INJECT_RULES_MAX) {
    throw new InjectSpecError(`${ruleTexts.length} rules; at most INJECT_RULES_MAX (${INJECT_RULES_MAX})`);
  }
  const options: FaultyDeviceOptions = { rules: [] };
  let seed: number | null = null;
  const setSeed = (value: string, where: string) => {
    const n = parseCount(value);
    if (n === null || n > 0xffffffff) throw new InjectSpecError(`${where}: seed must be an integer in [0, 2^32): '${value}'`);
    if (seed !== null && seed !== n) throw new InjectSpecError(`${where}: seed given twice (${seed} and ${n})`);
    seed = n;
  };

  ruleTexts.forEach((ruleText, index) => {
    const where = `rule ${index + 1} '${ruleText}'`;
    if (ruleText.trim() === '') throw new InjectSpecError(`rule ${index + 1} is empty (a stray '+' or ';'?)`);
    const [kindRaw, ...rest] = ruleText.trim().split(/[:/]/);
    const kind = kindRaw!.toLowerCase();
    if (kind.startsWith('seed=')) {
      if (rest.length > 0) throw new InjectSpecError(`${where}: seed=N takes no fields`);
      setSeed(kind.slice('seed='.length), where);
      return;
    }
    const fields = parseFields(rest, where);
    const seedOpt = fields.options.get('seed');
    if (seedOpt !== undefined) {
      setSeed(seedOpt, where);
      fields.options.delete('seed');
    }
    switch (kind) {
      case 'delay':
      case 'latency':
      case 'hold': {
        allowOptions(fields, [], where);
        if (fields.durations.length !== 1) {
          throw new InjectSpecError(
            `${where}: ${kind} needs one duration (${kind === 'latency' ? 'e.g. 1-20ms' : 'e.g. 5ms'})`,
          );
        }
        if (kind === 'hold' && fields.target === null) {
          throw new InjectSpecError(`${where}: hold needs a target (e.g. hold:write@1048576-1052672:50ms)`);
        }
        const d = fields.durations[0]!;
        const rule: FaultRule = { kind: 'delay', minMs: d.minMs, maxMs: d.maxMs, label: kind };
        if (fields.target) rule.match = fields.target;
        if (fields.times !== null) rule.times = fields.times;
        options.rules!.push(rule);
        return;
      }
      case 'eio': {
        allowOptions(fields, ['errno'], where);
        if (fields.durations.length > 0) {
          throw new InjectSpecError(`${where}: eio takes no duration (add a separate delay or hold rule)`);
        }
        const rule: FaultRule = { kind: 'fail' };
        const errno = fields.options.get('errno');
        if (errno !== undefined) {
          const name = errno.toUpperCase();
          if (!(name in constants.errno)) throw new InjectSpecError(`${where}: unknown errno '${errno}'`);
          rule.errno = name as DeviceErrno;
        }
        if (fields.target) rule.match = fields.target;
        if (fields.times !== null) rule.times = fields.times;
        options.rules!.push(rule);
        return;
      }
      case 'powercut': {
        allowOptions(fields, ['after-writes', 'keep'], where);
        if (fields.durations.length > 0 || fields.target !== null || fields.times !== null) {
          throw new InjectSpecError(`${where}: powercut takes only after-writes=N and keep=F`);
        }
        if (options.powerCut) throw new InjectSpecError(`${where}: only one powercut rule`);
        const afterText = fields.options.get('after-writes');
        const after = afterText === undefined ? null : parseCount(afterText);
        if (after === null || after < 1) {
          throw new InjectSpecError(`${where}: powercut needs after-writes=N with N >= 1`);
        }
        options.powerCut = { afterWrites: after };
        const keepText = fields.options.get('keep');
        if (keepText !== undefined) {
          const keep = Number(keepText);
          if (!/^(0|1|0?\.\d+|1\.0*)$/.test(keepText) || !(keep >= 0 && keep <= 1)) {
            throw new InjectSpecError(`${where}: keep must be a fraction in [0, 1]: '${keepText}'`);
          }
          options.powerCut.keepFraction = keep;
        }
        return;
      }
      default:
        throw new InjectSpecError(`${where}: unknown kind '${kindRaw}' (expected ${KINDS.join(', ')})`);
    }
  });
  if (seed !== null) options.seed = seed;
  // Writes pass straight through unless a power cut needs the volatile write cache to drop.
  options.cache = options.powerCut ? 'volatile' : 'writethrough';
  if (options.rules!.length === 0) delete options.rules;
  return options;
}

/** The canonical spec for options (parse(format(o)) equals o): for logs and the mount table. */
export function formatInjectSpec(options: FaultyDeviceOptions): string {
  const parts: string[] = [];
  if (options.seed !== undefined) parts.push(`seed=${options.seed}`);
  if (options.latency) parts.push(`latency:${formatDuration(options.latency.minMs, options.latency.maxMs)}`);
  for (const rule of options.rules ?? []) {
    const fields: string[] = [];
    if (rule.kind === 'delay') {
      fields.push(rule.label === 'latency' || rule.label === 'hold' ? rule.label : 'delay');
      if (rule.match) fields.push(formatTarget(rule.match));
      fields.push(formatDuration(rule.minMs, rule.maxMs));
    } else {
      fields.push('eio');
      if (rule.match) fields.push(formatTarget(rule.match));
      if (rule.errno && rule.errno !== 'EIO') fields.push(`errno=${rule.errno}`);
    }
    if (rule.times !== undefined && rule.times !== Infinity) fields.push(rule.times === 1 ? 'once' : String(rule.times));
    parts.push(fields.join(':'));
  }
  if (options.powerCut) {
    const keep = options.powerCut.keepFraction;
    parts.push(`powercut:after-writes=${options.powerCut.afterWrites}${keep ? `:keep=${keep}` : ''}`);
  }
  return parts.join('+');
}

/** The device a mount with `-o inject=SPEC` uses. */
export function wrapWithInjectSpec(inner: Device, spec: string): FaultyDevice {
  const options = parseInjectSpec(spec);
  return new FaultyDevice(inner, { ...options, name: `${inner.name} (inject=${formatInjectSpec(options)})` });
}

function parseFields(texts: string[], where: string): Fields {
  const fields: Fields = { durations: [], target: null, times: null, options: new Map() };
  for (const raw of texts) {
    const f = raw.trim();
    if (f === '') throw new InjectSpecError(`${where}: empty field (a stray ':' or '/'?)`);
    const lower = f.toLowerCase();
    const eq = f.indexOf('=');
    if (eq > 0 && !f.includes('@')) {
      const key = lower.slice(0, eq);
      const value = f.slice(eq + 1);
      if (key === 'times') {
        setTimes(fields, value, where);
        continue;
      }
      if (fields.options.has(key)) throw new InjectSpecError(`${where}: ${key}= given twice`);
      fields.options.set(key, value);
      continue;
    }
    if (lower === 'once' || lower === 'always' || /^x?\d+x?$/.test(lower)) {
      setTimes(fields, lower, where);
      continue;
    }
    const duration = parseDurationField(lower, where);
    if (duration) {
      fields.durations.push({ ...duration, text: f });
      continue;
    }
    if (fields.target !== null) throw new InjectSpecError(`${where}: more than one target ('${f}')`);
    fields.target = parseTarget(lower, where);
  }
  if (fields.durations.length > 1) throw new InjectSpecError(`${where}: more than one duration`);
  return fields;
}

function setTimes(fields: Fields, text: string, where: string): void {
  if (fields.times !== null) throw new InjectSpecError(`${where}: count given twice`);
  if (text === 'always') {
    fields.times = Infinity;
    return;
  }
  if (text === 'once') {
    fields.times = 1;
    return;
  }
  const n = parseCount(text.replace(/^x|x$/g, ''));
  if (n === null || n < 1) throw new InjectSpecError(`${where}: count must be once, always or a number >= 1: '${text}'`);
  fields.times = n;
}

function allowOptions(fields: Fields, allowed: string[], where: string): void {
  for (const key of fields.options.keys()) {
    if (!allowed.includes(key)) {
      throw new InjectSpecError(
        `${where}: unknown option '${key}='${allowed.length ? ` (expected ${allowed.map((k) => `${k}=`).join(', ')})` : ''}`,
      );
    }
  }
}

function parseDurationField(text: string, where: string): { minMs: number; maxMs: number } | null {
  const m = /^(\d+(?:\.\d+)?)(us|ms|s)?(?:-(\d+(?:\.\d+)?)(us|ms|s))?$/.exec(text);
  if (!m) return null;
  const [, a, unitA, b, unitB] = m;
  if (b === undefined) {
    if (unitA === undefined) return null; // a bare number is a count
    const ms = toMs(a!, unitA, where);
    return { minMs: ms, maxMs: ms };
  }
  const minMs = toMs(a!, unitA ?? unitB!, where);
  const maxMs = toMs(b, unitB!, where);
  if (minMs > maxMs) throw new InjectSpecError(`${where}: duration range '${text}' runs backwards`);
  return { minMs, maxMs };
}

function toMs(value: string, unit: string, where: string): number {
  const ms = Number(value) * MS_PER_UNIT[unit]!;
  if (!Number.isInteger(ms)) throw new InjectSpecError(`${where}: ${value}${unit} is not a whole number of milliseconds`);
  if (ms > INJECTED_DELAY_MS_MAX) {
    throw new InjectSpecError(`${where}: ${value}${unit} exceeds INJECTED_DELAY_MS_MAX (${INJECTED_DELAY_MS_MAX}ms)`);
  }
  return ms;
}

function parseTarget(text: string, where: string): RequestMatcher {
  const at = text.indexOf('@');
  const opText = at < 0 ? text : text.slice(0, at);
  const match: RequestMatcher = {};
  if (opText !== '') {
    if (!(OPS as readonly string[]).includes(opText)) {
      throw new InjectSpecError(
        `${where}: '${text}' is neither a request type (${OPS.join(', ')}), a duration (5ms), ` +
          `a count (once, always, N) nor key=value`,
      );
    }
    if (opText !== 'any') match.op = opText as FaultOp;
  }
  if (at < 0) return match;
  const rangeText = text.slice(at + 1);
  const m = /^([0-9a-fx]+[kmgt]?)-([0-9a-fx]+[kmgt]?)?$/.exec(rangeText);
  if (!m) {
    throw new InjectSpecError(`${where}: byte range '${rangeText}' is not START-END (e.g. @1048576-1052672 or @1M-1028K)`);
  }
  match.startByte = parseBytes(m[1]!, where);
  if (m[2] !== undefined) {
    match.endByte = parseBytes(m[2], where);
    if (match.endByte <= match.startByte) {
      throw new InjectSpecError(`${where}: byte range '${rangeText}' is empty (END is exclusive and must exceed START)`);
    }
  }
  if (match.op === 'flush') throw new InjectSpecError(`${where}: a flush has no byte range`);
  return match;
}

function parseBytes(text: string, where: string): number {
  const m = /^(0x[0-9a-f]+|\d+)([kmgt]?)$/.exec(text);
  if (!m) throw new InjectSpecError(`${where}: '${text}' is not a byte offset`);
  const n = Number(m[1]) * BYTE_SUFFIX[m[2]!]!;
  if (!Number.isSafeInteger(n)) throw new InjectSpecError(`${where}: byte offset '${text}' is too large`);
  return n;
}

function parseCount(text: string): number | null {
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

function formatDuration(minMs: number, maxMs: number): string {
  return minMs === maxMs ? `${minMs}ms` : `${minMs}-${maxMs}ms`;
}

function formatTarget(m: RequestMatcher): string {
  const op = m.op === undefined ? 'any' : typeof m.op === 'string' ? m.op : m.op.join('|');
  if (m.startByte === undefined && m.endByte === undefined) return op;
  return `${op}@${m.startByte ?? 0}-${m.endByte ?? ''}`;
}
