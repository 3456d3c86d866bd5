/**
 * Blocks 0 and 1: OCFS1 compatibility headers (ocfs1_fs_compat.h), so that
 * OCFS1 tools, which look for "OracleCFS" at sector 0, find a signature
 * that is not theirs and refuse the volume. mkfs.ocfs2 (format_leading_space)
 * fills both blocks with 0x02 and writes "this is an ocfs2 volume" into the
 * volume header's signature and mount point (sector 0) and the volume
 * label's label and cluster name (sector 1). libocfs2 and the kernel never
 * read these blocks.
 */

/** struct ocfs1_vol_disk_hdr: signature at 0x08, mount_point at 0x88. */
const OCFS1_HDR_SIGNATURE = 0x08;
const OCFS1_HDR_MOUNT_POINT = 0x88;
/** struct ocfs1_vol_label at byte 512: label at 0x30, cluster_name at 0x84. */
const OCFS1_LABEL_BASE = 512;
const OCFS1_LABEL_LABEL = 0x30;
const OCFS1_LABEL_CLUSTER_NAME = 0x84;
const FILL = 0x02;
const TEXT = 'this is an ocfs2 volume\0';

/** The bytes of blocks 0 and 1. */
export function leadingSpaceBytes(blockSizeBytes: number): Buffer {
  const buf = Buffer.alloc(2 * blockSizeBytes, FILL);
  for (const off of [
    OCFS1_HDR_SIGNATURE,
    OCFS1_HDR_MOUNT_POINT,
    OCFS1_LABEL_BASE + OCFS1_LABEL_LABEL,
    OCFS1_LABEL_BASE + OCFS1_LABEL_CLUSTER_NAME,
  ]) {
    buf.write(TEXT, off, 'latin1');
  }
  return buf;
}
