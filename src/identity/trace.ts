/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) at the edge: the
 * edge is one hop of the trace, so each forwarded request carries a
 * `traceparent` naming the client's trace (or a new one when the client sent
 * none, or one that does not parse) and a span id of the edge's own as the
 * parent the origin sees. `tracestate` travels with a valid `traceparent`
 * only (§3.3.1.1: a vendor that cannot parse traceparent must not use
 * tracestate). A new trace is flagged not sampled (`-00`) unless the edge
 * exports spans (`--otlp-endpoint`) and samples it (`--otlp-sample`,
 * src/front/spans.ts): only then does a parent span exist for the origin's
 * tracer to join. The span id forwarded is the edge's tunnel round-trip span.
 *
 * Ids come from a pooled random buffer refilled in 4 KiB draws (a
 * randomBytes call per request costs ~1 µs), hex-encoded straight into a
 * scratch buffer that holds the whole field: one string made per request,
 * flat, as the HPACK encoder copies it.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let at = POOL_BYTES;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** The field being made: `00-` trace id (3..34) `-` span id (36..51) `-` flags (53..54). */
const field = Buffer.from('00-00000000000000000000000000000000-0000000000000000-00', 'latin1');

/** `n` random bytes from the pool, as lower-case hex into `field` from `pos`. */
function randomHexInto(pos: number, n: number): void {
  if (at + n > POOL_BYTES) {
    randomFillSync(pool);
    at = 0;
  }
  for (let i = 0; i < n; i++) {
    const b = pool[at + i]!;
    field[pos + 2 * i] = HEX[b >> 4]!;
    field[pos + 2 * i + 1] = HEX[b & 15]!;
  }
  at += n;
}

/** version-traceid-parentid-flags, all lower-case hex (§3.2.2); a later version may append `-…`. */
const SHAPE = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/**
 * Whether `v` (a `traceparent` as received; several fields joined with `,`
 * never pass) is one the edge continues: version `ff` is invalid, version
 * `00` is exactly 55 characters, a later version has 55 or goes on with `-`
 * (§3.2.4), and neither id is all zeros.
 */
export function validTraceparent(v: string): boolean {
  // (A hand-written loop over the 55 characters measured no faster than this regex.)
  if (v.length < 55 || !SHAPE.test(v) || v.startsWith('ff')) return false;
  if (v.length !== 55 && (v.startsWith('00') || v.charCodeAt(55) !== 45 /* - */)) return false;
  return !v.startsWith(ZERO_TRACE, 3) && !v.startsWith(ZERO_SPAN, 36);
}

/**
 * The `traceparent` the edge forwards for a client's (`''` when none): the
 * client's trace id and sampled flag with a new span id of the edge's, in
 * version 00; or, when the client's is absent or invalid, a new trace,
 * flagged sampled when `sampleNew` (the edge records its spans).
 */
export function forwardTraceparent(client: string, sampleNew = false): string {
  let sampled = false;
  if (client !== '' && validTraceparent(client)) {
    for (let i = 3; i < 35; i++) field[i] = client.charCodeAt(i);
    sampled = sampledFlag(client);
  } else {
    randomHexInto(3, 16);
    sampled = sampleNew;
  }
  randomHexInto(36, 8);
  field[54] = sampled ? 0x31 : 0x30;
  return field.toString('latin1', 0, 55);
}

/** The sampled bit of a valid `traceparent`: only that bit is defined for version 00; other bits are not passed on. */
export function sampledFlag(v: string): boolean {
  const f = v.charCodeAt(54);
  return (f >= 0x61 ? f - 0x57 : f - 0x30) % 2 === 1;
}

/** The trace id of a `traceparent` the edge made (for its logs). */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}
