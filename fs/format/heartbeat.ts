/**
 * The heartbeat system file: one struct o2hb_disk_heartbeat_block per node
 * (node i at block i of the file), from /usr/include/o2cb/ocfs2_heartbeat.h.
 * hb_cksum is crc32_le(0, whole heartbeat block with hb_cksum zeroed)
 * (o2hb_compute_block_crc_le; note the seed 0, unlike metaecc's ~0).
 */
import { crc32Le } from './crc32';
import { decodeFields, Decoded, encodeFields } from './layout';

export const O2HB_DISK_HEARTBEAT_BLOCK = {
  hb_seq: [0x00, 'u64'],
  hb_node: [0x08, 'u8'],
  hb_pad1: [0x09, 'bytes', 3],
  hb_cksum: [0x0c, 'u32'],
  hb_generation: [0x10, 'u64'],
  hb_dead_ms: [0x18, 'u32'],
} as const;
/** sizeof(struct o2hb_disk_heartbeat_block), including 4 bytes of tail padding. */
export const O2HB_DISK_HEARTBEAT_BLOCK_SIZE = 0x20;
export type HeartbeatBlock = Decoded<typeof O2HB_DISK_HEARTBEAT_BLOCK>;

export function decodeHeartbeatBlock(block: Buffer, what = 'heartbeat block'): HeartbeatBlock {
  return decodeFields(O2HB_DISK_HEARTBEAT_BLOCK, block, 0, what);
}

/** Writes the struct over the start of the block (the rest of the block is untouched). */
export function encodeHeartbeatBlock(hb: HeartbeatBlock, block: Buffer): void {
  encodeFields(O2HB_DISK_HEARTBEAT_BLOCK, hb, block, 0, 'heartbeat block');
}

/** o2hb_compute_block_crc_le over the whole block (hb_cksum treated as zero). */
export function heartbeatCksum(block: Buffer): number {
  const off = O2HB_DISK_HEARTBEAT_BLOCK.hb_cksum[0];
  const saved = block.readUInt32LE(off);
  block.writeUInt32LE(0, off);
  try {
    return crc32Le(0, block);
  } finally {
    block.writeUInt32LE(saved, off);
  }
}
