/**
 * Test preload (`NODE_OPTIONS=--require …/slow-start.js`), inherited by every
 * process a script starts: the Warpgate (`dist/warpgate/main.js`) sleeps
 * MEZU_TEST_WARPGATE_START_DELAY_MS before it runs, as on a loaded machine
 * where its enrollment and first tunnels take seconds. Other processes are
 * untouched. Used by test/integration/devstack.test.ts.
 */
const delay = Number(process.env.MEZU_TEST_WARPGATE_START_DELAY_MS ?? '0');
if (Number.isFinite(delay) && delay > 0 && /[\\/]warpgate[\\/]main\.js$/.test(process.argv[1] ?? '')) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delay);
}
