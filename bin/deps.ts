/**
 * The real device and engine behind a mount. Tests hand runDaemon/main other
 * ones (a fake engine) through the same interface.
 *
 * The engine is loaded when a mount needs it, not when the CLI starts:
 * `o2fuse mkfs`, `install` or a test's fake engine do not depend on it.
 */
import type { DaemonDeps } from './daemon';

export function defaultDaemonDeps(): DaemonDeps {
  return {
    async openDevice(path, { readOnly, inject }) {
      const { FileDevice } = await import('../io/fileDevice');
      const device = await FileDevice.open(path, { readOnly });
      if (!inject) return device;
      const { wrapWithInjectSpec } = await import('../io/injectSpec');
      return wrapWithInjectSpec(device, inject);
    },
    async openVolume(device, options) {
      const { openVolume } = await import('../fs/volume');
      return openVolume(device, options);
    },
  };
}
