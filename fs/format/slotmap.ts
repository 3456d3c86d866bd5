/**
 * The slot_map system file: which node holds which slot. Two formats:
 * plain (struct ocfs2_slot_map: s16 node numbers, -1 = empty) and, with
 * OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, struct ocfs2_extended_slot
 * (8 bytes: es_valid, es_node_num; the header comment that puts the end at 0x10 is wrong:
 * sizeof is 8 and ocfs2-tools sizes the file with it).
 * Both codecs work on the file's bytes (as many blocks as it spans).
 */
import { OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP, OCFS2_INVALID_SLOT } from './constants';
import { decodeFields, Decoded, encodeFields, FormatError } from './layout';

/** struct ocfs2_slot_map: sm_slots[] at 0 (the count is s_max_slots). */
export const SLOT_MAP_SLOT = { sm_slot: [0x00, 's16'] } as const;
export const SLOT_MAP_SLOT_SIZE = 2;

/** struct ocfs2_extended_slot */
export const EXTENDED_SLOT = {
  es_valid: [0x00, 'u8'],
  es_reserved1: [0x01, 'bytes', 3],
  es_node_num: [0x04, 'u32'],
} as const;
export const EXTENDED_SLOT_SIZE = 0x08;
export type ExtendedSlot = Decoded<typeof EXTENDED_SLOT>;

/** One slot, format-independent: the node number in it, or null when free. */
export type SlotNode = number | null;

export function slotMapIsExtended(featureIncompat: number): boolean {
  return (featureIncompat & OCFS2_FEATURE_INCOMPAT_EXTENDED_SLOT_MAP) !== 0;
}

/** Bytes of slot map data for `maxSlots` slots. */
export function slotMapBytes(maxSlots: number, extended: boolean): number {
  return maxSlots * (extended ? EXTENDED_SLOT_SIZE : SLOT_MAP_SLOT_SIZE);
}

/** Plain map: sm_slots[0..maxSlots), -1 (OCFS2_INVALID_SLOT) empty. */
export function decodeSlotMap(buf: Buffer, maxSlots: number): number[] {
  if (buf.length < maxSlots * SLOT_MAP_SLOT_SIZE) throw new FormatError(`slot_map: ${buf.length} bytes < ${maxSlots} slots`);
  const out: number[] = [];
  for (let i = 0; i < maxSlots; i++) out.push(decodeFields(SLOT_MAP_SLOT, buf, i * SLOT_MAP_SLOT_SIZE, `slot_map.sm_slots[${i}]`).sm_slot);
  return out;
}

export function encodeSlotMap(slots: readonly number[], buf: Buffer): void {
  if (buf.length < slots.length * SLOT_MAP_SLOT_SIZE) throw new RangeError(`slot_map: ${slots.length} slots do not fit ${buf.length} bytes`);
  slots.forEach((s, i) => encodeFields(SLOT_MAP_SLOT, { sm_slot: s }, buf, i * SLOT_MAP_SLOT_SIZE, `slot_map.sm_slots[${i}]`));
}

/** Extended map: se_slots[0..maxSlots). */
export function decodeExtendedSlotMap(buf: Buffer, maxSlots: number): ExtendedSlot[] {
  if (buf.length < maxSlots * EXTENDED_SLOT_SIZE) throw new FormatError(`slot_map: ${buf.length} bytes < ${maxSlots} extended slots`);
  const out: ExtendedSlot[] = [];
  for (let i = 0; i < maxSlots; i++) out.push(decodeFields(EXTENDED_SLOT, buf, i * EXTENDED_SLOT_SIZE, `slot_map.se_slots[${i}]`));
  return out;
}

export function encodeExtendedSlotMap(slots: readonly ExtendedSlot[], buf: Buffer): void {
  if (buf.length < slots.length * EXTENDED_SLOT_SIZE) throw new RangeError(`slot_map: ${slots.length} slots do not fit ${buf.length} bytes`);
  slots.forEach((s, i) => encodeFields(EXTENDED_SLOT, s, buf, i * EXTENDED_SLOT_SIZE, `slot_map.se_slots[${i}]`));
}

/** Either format as node-or-null per slot. */
export function decodeSlotNodes(buf: Buffer, maxSlots: number, extended: boolean): SlotNode[] {
  if (extended) return decodeExtendedSlotMap(buf, maxSlots).map((s) => (s.es_valid ? s.es_node_num : null));
  return decodeSlotMap(buf, maxSlots).map((n) => (n === OCFS2_INVALID_SLOT ? null : n));
}

/** Writes node-or-null per slot in either format (reserved bytes zero). */
export function encodeSlotNodes(nodes: readonly SlotNode[], buf: Buffer, extended: boolean): void {
  if (extended) {
    encodeExtendedSlotMap(nodes.map((n) => ({
      es_valid: n === null ? 0 : 1, es_reserved1: Buffer.alloc(3), es_node_num: n ?? 0,
    })), buf);
  } else {
    encodeSlotMap(nodes.map((n) => (n === null ? OCFS2_INVALID_SLOT : n)), buf);
  }
}
