/**
 * The o2fuse command line over MemoryEngine: `node dist/test/cli/memoryCli.js
 * mount ...` behaves as `bin/o2fuse mount ...` (the background daemon is this
 * same script), with the engine swapped. The device is still opened and
 * locked for real (any file will do). Test knobs come from the environment:
 *   O2FUSE_TEST_OPLOG   file to append the engine's op log to
 *   O2FUSE_TEST_MARKER  file the engine writes "unmounted" to
 *   O2FUSE_TEST_NO_REMOUNT=1  an engine without remount
 */
import { main } from '../../bin/main';
import { FileDevice } from '../../io/fileDevice';
import { MemoryEngine } from './memoryEngine';

main(process.argv.slice(2), {
  openDevice: (path, { readOnly }) => FileDevice.open(path, { readOnly }),
  openVolume: async (_device, options) =>
    new MemoryEngine({
      readOnly: options.readOnly,
      opLog: process.env.O2FUSE_TEST_OPLOG,
      marker: process.env.O2FUSE_TEST_MARKER,
      noRemount: process.env.O2FUSE_TEST_NO_REMOUNT === '1',
    }),
}).then(
  (code) => process.exit(code),
  (err) => {
    console.error('memoryCli:', err);
    process.exit(70);
  },
);
