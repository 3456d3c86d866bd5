/**
 * The preload test/lib/promiseTracking.ts (tap's node-arg in package.json)
 * switched off the async hook tap creates through async-hook-domain in this
 * process: without it the engine-level tests take two to three times the CPU.
 * Fails when the preload is missing from tap's configuration or no longer
 * recognizes tap's hook (a tap that creates it another way); skipped when the
 * file is run with plain node, which does not preload it.
 */
import t from 'tap';
import { promiseTrackingState } from '../lib/promiseTracking';

const underTapRunner = process.env.TAP === '1';

t.test('tap\'s per-promise async hook is off in test processes', { skip: underTapRunner ? false : 'run through tap (npx tap or npm test): plain node does not preload' }, async (t) => {
  const state = promiseTrackingState();
  t.ok(state.loaded, 'the preload ran (tap passes --require=./dist/test/lib/promiseTracking.js)');
  t.ok(state.switchedOff >= 1, `it switched off async-hook-domain's hook (${state.switchedOff})`);
});
