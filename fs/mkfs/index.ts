/**
 * mkfs for o2fuse: formatVolume(device, options) writes a new OCFS2 volume;
 * parseMkfsArgs reads mkfs.ocfs2's command line into options; runMkfs is the
 * whole command (for bin/).
 */
export { formatVolume, resolveVolumeFeatures } from './formatVolume';
export type { MkfsResult } from './formatVolume';
export { parseMkfsArgs, parseSize, MKFS_USAGE, MkfsInfoRequest } from './options';
export type { MkfsOptions, ParsedMkfsArgs } from './options';
export { runMkfs, summaryText, MKFS_VERSION } from './cli';
export { MkfsUsageError } from './errors';
export { O2FUSE_DEFAULT_FEATURES, MKFS_OCFS2_DEFAULT_FEATURES, featureListText, parseFeatureList } from './features';
export type { FeatureSet, FeatureRequest, FeatureLevel } from './features';
export { computeGeometry } from './geometry';
export type { Geometry } from './geometry';
