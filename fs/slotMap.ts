/**
 * The slot map: which node holds which slot. A slot in use means a node has
 * (or had, until it recovers) the volume mounted in that slot.
 */
import type { VolumeContext } from './context';
import type { Inode } from './inode';
import { readFileData } from './file';
import { FsError } from './errors';

// sizeof(struct ocfs2_extended_slot): es_valid, 3 reserved bytes, es_node_num.
const EXTENDED_SLOT_BYTES = 8;

/** For each slot, the node number holding it, or null when free. */
export async function readSlotMap(ctx: VolumeContext, slotMap: Inode): Promise<(number | null)[]> {
  const max = ctx.sb.s_max_slots;
  if (ctx.features.extendedSlotMap) {
    const need = max * EXTENDED_SLOT_BYTES;
    if (slotMap.size < need) throw new FsError('EIO', `slot_map: i_size ${slotMap.size} < ${need} for ${max} extended slots`);
    const buf = await readFileData(ctx, slotMap, 0, need);
    const out: (number | null)[] = [];
    for (let i = 0; i < max; i++) {
      const off = i * EXTENDED_SLOT_BYTES;
      out.push(buf[off] !== 0 ? buf.readUInt32LE(off + 4) : null);
    }
    return out;
  }
  const buf = await readFileData(ctx, slotMap, 0, max * 2);
  if (buf.length < max * 2) throw new FsError('EIO', `slot_map: i_size ${slotMap.size} too small for ${max} slots`);
  const out: (number | null)[] = [];
  for (let i = 0; i < max; i++) {
    const node = buf.readInt16LE(i * 2);
    out.push(node === -1 ? null : node);
  }
  return out;
}
