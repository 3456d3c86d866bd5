/**
 * The slot map: which node holds which slot. A slot in use means a node has
 * (or had, until it recovers) the volume mounted in that slot.
 */
import type { VolumeContext } from './context';
import type { Inode } from './inode';
import { mapRange } from './file';
import type { Transaction } from './transaction';
import { FsError } from './errors';

// sizeof(struct ocfs2_extended_slot): es_valid, 3 reserved bytes, es_node_num.
const EXTENDED_SLOT_BYTES = 8;

/**
 * The first `length` bytes of the slot map. Its blocks are metadata: they are
 * read through the block cache, which holds what the journal has committed
 * but not yet written home (a plain file read would see the old bytes).
 */
async function slotMapBytes(ctx: VolumeContext, slotMap: Inode, length: number): Promise<Buffer> {
  const bs = ctx.geo.blockSize;
  const out = Buffer.alloc(Math.min(length, slotMap.size));
  for (const s of await mapRange(ctx, slotMap, 0, out.length)) {
    if (s.deviceOffset === null) continue;
    for (let done = 0; done < s.length;) {
      const at = s.deviceOffset + done;
      const block = await ctx.cache.read(Math.floor(at / bs));
      const inBlock = at % bs;
      const n = Math.min(bs - inBlock, s.length - done);
      block.copy(out, s.fileOffset + done, inBlock, inBlock + n);
      done += n;
    }
  }
  return out;
}

/** For each slot, the node number holding it, or null when free. */
export async function readSlotMap(ctx: VolumeContext, slotMap: Inode): Promise<(number | null)[]> {
  const max = ctx.sb.s_max_slots;
  if (ctx.features.extendedSlotMap) {
    const need = max * EXTENDED_SLOT_BYTES;
    if (slotMap.size < need) throw new FsError('EIO', `slot_map: i_size ${slotMap.size} < ${need} for ${max} extended slots`);
    const buf = await slotMapBytes(ctx, slotMap, need);
    const out: (number | null)[] = [];
    for (let i = 0; i < max; i++) {
      const off = i * EXTENDED_SLOT_BYTES;
      out.push(buf[off] !== 0 ? buf.readUInt32LE(off + 4) : null);
    }
    return out;
  }
  const buf = await slotMapBytes(ctx, slotMap, max * 2);
  if (buf.length < max * 2) throw new FsError('EIO', `slot_map: i_size ${slotMap.size} too small for ${max} slots`);
  const out: (number | null)[] = [];
  for (let i = 0; i < max; i++) {
    const node = buf.readInt16LE(i * 2);
    out.push(node === -1 ? null : node);
  }
  return out;
}

/** Sets slot `slot` to `node` (null: free) inside `tx`. The slot map's data blocks are metadata. */
export async function writeSlot(ctx: VolumeContext, tx: Transaction, slotMap: Inode, slot: number, node: number | null): Promise<void> {
  const bytes = ctx.features.extendedSlotMap ? EXTENDED_SLOT_BYTES : 2;
  const offset = slot * bytes;
  const [seg] = await mapRange(ctx, slotMap, offset - (offset % ctx.geo.blockSize), ctx.geo.blockSize);
  if (!seg || seg.deviceOffset === null) throw new FsError('EIO', `slot_map: no block for slot ${slot}`);
  const buf = await tx.block(seg.deviceOffset / ctx.geo.blockSize, 'raw');
  const at = offset % ctx.geo.blockSize;
  if (ctx.features.extendedSlotMap) {
    buf[at] = node === null ? 0 : 1;
    buf.writeUInt32LE(node ?? 0, at + 4);
  } else {
    buf.writeInt16LE(node ?? -1, at);
  }
}
