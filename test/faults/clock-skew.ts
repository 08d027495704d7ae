/**
 * Test preload (`NODE_OPTIONS=--require …/clock-skew.js`): shifts this
 * process's wall clock by MEZU_TEST_CLOCK_SKEW_MS (Date.now and `new Date()`),
 * as a host whose clock drifted would see it. Timers and the monotonic clock
 * are untouched. Used by test/faults/clock.test.ts on the Warpgate.
 */
const skew = Number(process.env.MEZU_TEST_CLOCK_SKEW_MS ?? '0');
if (Number.isFinite(skew) && skew !== 0) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  const now = (): number => realNow() + skew;
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(now());
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return now();
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}
