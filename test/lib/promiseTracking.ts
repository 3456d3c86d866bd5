/**
 * Preloaded into every test process (package.json: tap's node-arg): switches
 * off the async hook tap installs through async-hook-domain.
 *
 * That hook has a destroy callback, and a destroy callback makes Node track
 * the end of every promise (a weak reference per promise, collected by the
 * garbage collector). The engine runs in the test process for the engine-level
 * tests and makes several promises per block it touches: measured, 15,000
 * mkdirs took 6.0 s of CPU without the hook and 12.0 s with it, and a power-cut
 * run 16 s against 26 s. The hook's only job is to report an exception thrown
 * outside any awaited promise (a throw in a timer, an unhandled rejection)
 * against the subtest that started it. Without it such an exception still
 * fails the run: Node exits with its stack on stderr, tap reports the file
 * failed and names the subtests it never reached.
 *
 * Only hooks created from async-hook-domain are touched; any other async hook
 * (none in o2fuse today) works as usual. How many it switched off is kept in
 * `promiseTrackingState()`: test/oracle-selftest/tap-promise-hook-off checks
 * it, so a tap that creates its hook some other way is noticed.
 */
import asyncHooks = require('node:async_hooks');

const createHook = asyncHooks.createHook;

/** What the preload did in this process (global: the test reads it through its own import of this module). */
export interface PromiseTrackingState {
  loaded: boolean;
  /** async-hook-domain hooks whose enable() was made a no-op. */
  switchedOff: number;
}

const STATE = Symbol.for('o2fuse.promiseTracking');
const state: PromiseTrackingState = ((globalThis as Record<symbol, unknown>)[STATE] as PromiseTrackingState | undefined) ??
  { loaded: false, switchedOff: 0 };
(globalThis as Record<symbol, unknown>)[STATE] = state;

/** This process's state; `loaded` is false when the file was not preloaded (`node dist/test/X.test.js`). */
export function promiseTrackingState(): PromiseTrackingState {
  return state;
}

function fromAsyncHookDomain(): boolean {
  return /[\\/]async-hook-domain[\\/]/.test(new Error().stack ?? '');
}

// Preloaded, this runs before anything creates a hook; imported again by a test, it must not wrap twice.
if (!state.loaded && process.execArgv.some((a) => a.includes('promiseTracking'))) {
  state.loaded = true;
  // The object require() returns, which async-hook-domain's require() gets too (tap loads its CommonJS build).
  asyncHooks.createHook = (callbacks) => {
    const hook = createHook(callbacks);
    if (fromAsyncHookDomain()) {
      hook.enable = () => hook;
      state.switchedOff++;
    }
    return hook;
  };
}
