/**
 * Byte sizes as people type them on command lines: "4096", "4K", "1G", "1GiB".
 * Suffixes are binary (K = 1024), case-insensitive, as mkfs.ocfs2 and dd read them.
 */

const SHIFT_BY_SUFFIX: Record<string, number> = { '': 0, k: 10, m: 20, g: 30, t: 40, p: 50 };

export class SizeError extends Error {
  override name = 'SizeError';
}

/** Parses a byte count; throws SizeError naming `what` when the text is not a size. */
export function parseSizeBytes(text: string, what = 'size'): number {
  const m = /^(\d+)([kmgtp]?)(i?b)?$/i.exec(text.trim());
  if (!m || (m[3] && m[3].toLowerCase() === 'ib' && !m[2])) {
    throw new SizeError(`${what} "${text}" is not a size (examples: 4096, 64K, 256M, 1G)`);
  }
  const bytes = Number(m[1]) * 2 ** SHIFT_BY_SUFFIX[m[2].toLowerCase()];
  if (!Number.isSafeInteger(bytes)) throw new SizeError(`${what} "${text}" is too large`);
  return bytes;
}

/** "1048576" -> "1M": the shortest exact form, for messages. */
export function formatSizeBytes(bytes: number): string {
  for (const [suffix, shift] of [['P', 50], ['T', 40], ['G', 30], ['M', 20], ['K', 10]] as const) {
    const unit = 2 ** shift;
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}
