/**
 * A field table is compiled (fs/format/layout.ts) from its second use: the
 * generated decoder and encoder read and write bytes directly and hand
 * anything unusual to the generic loop. They must be indistinguishable from
 * it. For every integer kind, in a scalar and in an array, values at and
 * past each edge and random ones (fixed seed, printed; O2FUSE_SEED replays)
 * encode to the same bytes or fail with the same error, and random bytes
 * decode to the same object or fail the same way. A table object used once
 * takes the generic path, so a fresh copy of the table is the reference.
 */
import t from 'tap';
import { decodeFields, encodeFields, layoutSize, type IntKind, type Layout } from '../../fs/format/layout';
import { Prng, seedFromEnv } from '../../io/prng';

const KINDS: IntKind[] = ['u8', 'u16', 'u32', 'u64', 's16', 's32', 's64', 'be16', 'be32', 'be64'];
const SIZE: Record<IntKind, number> = { u8: 1, u16: 2, u32: 4, u64: 8, s16: 2, s32: 4, s64: 8, be16: 2, be32: 4, be64: 8 };

/** A table holding one scalar and one 3-element array of `kind`, a byte apart so offsets are odd too. */
function tableOf(kind: IntKind): Layout {
  const n = SIZE[kind];
  return { pad: [0, 'u8'], one: [1, kind], arr: [1 + n, kind, 3] } as Layout;
}

function edges(kind: IntKind): unknown[] {
  const bits = SIZE[kind] * 8;
  const signed = kind.startsWith('s');
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const min = signed ? -(2 ** (bits - 1)) : 0;
  return [0, -0, 1, -1, max, max + 1, min, min - 1, 0.5, -0.5, NaN, Infinity, undefined, null, '7', 2 ** 53, 2 ** 53 - 1,
    -(2 ** 53), 2 ** 32, 2 ** 32 - 1, 2 ** 31, -(2 ** 31), 0x1fffff * 2 ** 32, 0x200000 * 2 ** 32];
}

function randomValue(rng: Prng, kind: IntKind): number {
  const bits = SIZE[kind] * 8;
  const span = Math.min(bits, 53);
  const v = Math.floor(rng.next() * 2 ** span);
  return kind.startsWith('s') && rng.chance(0.5) ? -v : v;
}

type Outcome = { bytes: string } | { error: string };

function encodeWith(layout: Layout, obj: Record<string, unknown>): Outcome {
  const buf = Buffer.alloc(layoutSize(layout) + 2, 0xa5);
  try {
    encodeFields(layout, obj as never, buf, 1, 'x');
    return { bytes: buf.toString('hex') };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

function decodeWith(layout: Layout, buf: Buffer): unknown {
  try {
    return decodeFields(layout, buf, 1, 'x');
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

t.test('compiled encoders and decoders agree with the generic ones on every integer kind', async (t) => {
  const seed = seedFromEnv(20261126);
  t.comment(`seed ${seed} (O2FUSE_SEED=${seed} replays)`);
  const rng = new Prng(seed);
  for (const kind of KINDS) {
    const compiled = tableOf(kind);
    // Its second use compiles it (a fresh copy, used once, stays generic).
    encodeWith(compiled, { pad: 0, one: 0, arr: [] });
    encodeWith(compiled, { pad: 0, one: 0, arr: [] });
    const values = [...edges(kind), ...Array.from({ length: 300 }, () => randomValue(rng, kind))];
    let encodeMismatches = 0;
    for (const v of values) {
      for (const obj of [{ pad: 1, one: v, arr: [1, 2, 3] }, { pad: 1, one: 1, arr: [v, 2] }]) {
        const fast = encodeWith(compiled, obj);
        const slow = encodeWith(tableOf(kind), obj);
        if (JSON.stringify(fast) !== JSON.stringify(slow)) {
          encodeMismatches++;
          if (encodeMismatches <= 5) t.same(fast, slow, `${kind} encode of ${String(v)} in ${obj.one === v ? 'the scalar' : 'the array'}`);
        }
      }
    }
    t.equal(encodeMismatches, 0, `${kind}: ${values.length * 2} encodes match the generic encoder`);
    let decodeMismatches = 0;
    for (let i = 0; i < 300; i++) {
      const buf = Buffer.alloc(layoutSize(compiled) + 2);
      for (let k = 0; k < buf.length; k++) buf[k] = rng.int(0, 255);
      // 64-bit kinds: mostly values that fit a safe integer (random high bytes almost never do), some that do not.
      if (SIZE[kind] === 8 && rng.chance(0.7)) {
        for (const at of [1, 9, 17, 25].map((off) => 1 + off)) {
          const hi = kind === 'be64' ? at : at + 4;
          const negative = kind === 's64' && rng.chance(0.5);
          const top = negative ? 0xff : 0;
          // The high 32 bits (little-endian: bytes 4-7; big-endian: bytes 0-3) within +-2^21.
          const order = kind === 'be64' ? [hi, hi + 1, hi + 2] : [hi + 3, hi + 2, hi + 1];
          buf[order[0]] = top;
          buf[order[1]] = top;
          buf[order[2]] = negative ? buf[order[2]] | 0xe0 : buf[order[2]] & 0x1f;
        }
      }
      const fast = decodeWith(compiled, buf);
      const slow = decodeWith(tableOf(kind), buf);
      if (JSON.stringify(fast) !== JSON.stringify(slow)) {
        decodeMismatches++;
        if (decodeMismatches <= 5) t.same(fast, slow, `${kind} decode of ${buf.toString('hex')}`);
      }
    }
    t.equal(decodeMismatches, 0, `${kind}: 300 random decodes match the generic decoder`);
  }
});
