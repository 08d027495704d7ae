/**
 * Limits and slow clients on raw sockets: the request head limit, header
 * count, per-route body limits (declared and chunked), slow heads, slow
 * bodies, idle keep-alive connections, and a crowd of dribbling connections
 * beside legitimate traffic. docs/SECURITY.md ("Limits") states each value.
 *
 * Story: every connection an edge holds costs a file descriptor and memory;
 * Slowloris (2009) held web servers' connection slots with heads sent a byte at
 * a time. uWS closes a connection that has not completed a head, or that
 * receives less than 16 KiB of body, within its 10 s idle timeout (4 s timer
 * granularity), and holds no thread per connection, so a crowd of dribblers
 * costs descriptors, not service.
 */
import test from 'ava';
import * as net from 'node:net';
import { Stack } from '../integration/harness.js';
import { SECURITY_CONFIG, head, pool } from './config.js';
import { raw, errorCode } from './raw.js';

const stack = new Stack(1, SECURITY_CONFIG);

test.before(async () => {
  await stack.start();
});
test.after.always(async () => {
  await stack.stop();
});

const cookieOf = (bytes: number) => `Cookie: big=${'a'.repeat(bytes)}`;

test.serial('request head: up to --max-head-size (16 KiB) in one read is served; beyond it 431 and the connection closed, nothing forwarded', async (t) => {
  await stack.clearOrigin();
  const ok = await raw(stack.port, head('GET', '/public/ok', [cookieOf(15 * 1024)]), { responses: 1 });
  t.deepEqual(ok.statuses, [200]);
  const big = await raw(stack.port, head('GET', '/public/big', [cookieOf(17 * 1024)]));
  t.deepEqual(big.statuses, [431]);
  t.is(errorCode(big.text), 'MEZU_HEAD_TOO_LARGE');
  t.true(big.closed);
  // Many fields adding up past the limit count the same.
  const many = await raw(stack.port, head('GET', '/public/many', Array.from({ length: 40 }, (_, i) => `X-F${i}: ${'v'.repeat(500)}`)));
  t.deepEqual(many.statuses, [431]);
  // 200 KiB may arrive in several reads; then uWS closes the connection before the edge sees it (see the next test).
  const huge = await raw(stack.port, head('GET', '/public/huge', [cookieOf(200 * 1024)]));
  t.true(huge.closed && huge.statuses.every((s) => s === 431), `huge head: ${JSON.stringify(huge.statuses)}`);
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => s.path), ['/public/ok']);
});

test.serial('known limit: a head split over several reads is reassembled by uWS up to 4 KiB only; longer, the connection is closed without an answer', async (t) => {
  await stack.clearOrigin();
  const small = head('GET', '/public/split-small', [cookieOf(3_500)]);
  const r1 = await raw(stack.port, [small.slice(0, 100), small.slice(100)], { gapMs: 60, responses: 1 });
  t.deepEqual(r1.statuses, [200]);
  const large = head('GET', '/public/split-large', [cookieOf(6_000)]);
  const r2 = await raw(stack.port, [large.slice(0, 100), large.slice(100)], { gapMs: 60 });
  t.deepEqual(r2.statuses, []);
  t.true(r2.closed);
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => s.path), ['/public/split-small']);
});

test.serial('header count: 40 fields are served; uWS itself stops near 48 (see framing.test.ts, "60 header fields")', async (t) => {
  const r = await raw(stack.port, head('GET', '/public/fields', Array.from({ length: 40 }, (_, i) => `X-F${i}: v`)), { responses: 1 });
  t.deepEqual(r.statuses, [200]);
});

test.serial('body limits: a declared length over the rule\'s max_body gets 413 before anything is forwarded; the connection is closed', async (t) => {
  await stack.clearOrigin();
  const cases: [string, number, number][] = [
    ['/tiny/x', 16, 200], // max_body: 16
    ['/tiny/x', 17, 413],
    ['/public/x', 64 * 1024, 200], // project max_body: 64KiB
    ['/public/x', 64 * 1024 + 1, 413],
    ['/upload/x', 64 * 1024 + 1, 200], // max_body: 1MiB
    ['/upload/x', 1024 * 1024 + 1, 413],
    ['/api/x', 64 * 1024 + 1, 413], // the limit is checked before credentials
  ];
  const results = await pool(cases, 4, ([path, n]) => raw(stack.port, head('POST', path, [`Content-Length: ${n}`]) + 'x'.repeat(n), { responses: 1, waitMs: 5_000 }));
  cases.forEach(([path, n, want], i) => {
    const r = results[i]!;
    t.deepEqual(r.statuses, [want], `${path} with ${n} bytes`);
    if (want === 413) {
      t.is(errorCode(r.text), 'MEZU_REQUEST_TOO_LARGE');
      t.true(r.closed, 'closed after 413');
    }
  });
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => `${s.path} ${s.bodyBytes}`).sort(), ['/public/x 65536', '/tiny/x 16', '/upload/x 65537']);
});

test.serial('body limits: a chunked body is counted as it streams; past max_body the stream is reset, 413, and the origin never gets a complete request', async (t) => {
  await stack.clearOrigin();
  // Over the limit in the first chunk: the tunnel stream is never opened.
  const first = await raw(stack.port, head('POST', '/tiny/first', ['Transfer-Encoding: chunked']) + '14\r\n' + 'x'.repeat(20) + '\r\n0\r\n\r\n');
  t.deepEqual(first.statuses, [413]);
  t.true(first.closed);
  // Over the limit in a later chunk: the origin may have seen the start, never the end.
  const later = await raw(stack.port, [head('POST', '/tiny/later', ['Transfer-Encoding: chunked']) + 'a\r\n' + 'x'.repeat(10) + '\r\n', 'a\r\n' + 'y'.repeat(10) + '\r\n0\r\n\r\n'], { gapMs: 150 });
  t.deepEqual(later.statuses, [413]);
  t.true(later.closed);
  // Within the limit.
  const ok = await raw(stack.port, head('POST', '/tiny/ok', ['Transfer-Encoding: chunked']) + '8\r\n' + 'x'.repeat(8) + '\r\n8\r\n' + 'y'.repeat(8) + '\r\n0\r\n\r\n', { responses: 1 });
  t.deepEqual(ok.statuses, [200]);
  await new Promise((r) => setTimeout(r, 200));
  const seen = await stack.originSeen();
  t.false(seen.some((s) => s.path === '/tiny/first'), 'nothing of the first');
  for (const s of seen.filter((x) => x.path === '/tiny/later')) t.false(s.complete, 'the origin never received the end of /tiny/later');
  t.deepEqual(seen.filter((s) => s.path === '/tiny/ok').map((s) => `${s.bodyBytes} ${s.complete}`), ['16 true']);
});

test.serial('slow head, slow body and idle keep-alive are closed within the idle timeout; the slow body never completes at the origin', async (t) => {
  await stack.clearOrigin();
  const bound = 15_000;
  const dribbleHead = head('GET', '/public/slow-head', ['X-Pad: ' + 'p'.repeat(200)]);
  const slowHead = raw(stack.port, dribbleHead.split(''), { gapMs: 500, waitMs: bound + 3_000 });
  const slowBody = raw(stack.port, [head('POST', '/upload/slow-body', ['Content-Length: 100000']), ...Array.from({ length: 60 }, () => 'x'.repeat(10))], { gapMs: 500, waitMs: bound + 3_000 });
  const idle = raw(stack.port, head('GET', '/public/idle'), { waitMs: bound + 3_000 });
  const [h, b, i] = await Promise.all([slowHead, slowBody, idle]);
  t.deepEqual(h.statuses, []);
  t.true(h.closed && h.closedAfterMs < bound, `slow head closed after ${h.closedAfterMs} ms`);
  // uWS closes the slow upload, or the origin (uWS too) gives up on it first and the edge answers 502 and closes.
  t.true(b.statuses.every((s) => s === 502), b.text);
  t.true(b.closed && b.closedAfterMs < bound, `slow body closed after ${b.closedAfterMs} ms: ${b.text}`);
  t.deepEqual(i.statuses, [200]);
  t.true(i.closed && i.closedAfterMs < bound, `idle keep-alive closed after ${i.closedAfterMs} ms`);
  await new Promise((r) => setTimeout(r, 300));
  const seen = await stack.originSeen();
  t.false(seen.some((s) => s.path === '/public/slow-head'));
  for (const s of seen.filter((x) => x.path === '/upload/slow-body')) t.false(s.complete, 'the slow body never completed at the origin');
});

test.serial('a thousand dribbling connections do not stop legitimate traffic', async (t) => {
  const crowd: net.Socket[] = [];
  const N = 1_000;
  try {
    for (let i = 0; i < N; i++) {
      const s = net.connect(stack.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.write('GET /public/crowd HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
      crowd.push(s);
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 10));
    }
    const drip = setInterval(() => {
      for (const s of crowd) if (!s.destroyed) s.write('a');
    }, 1_000);
    try {
      const latencies: number[] = [];
      for (let i = 0; i < 100; i++) {
        const started = Date.now();
        const r = await stack.request('/public/legit');
        latencies.push(Date.now() - started);
        t.is(r.status, 200);
      }
      latencies.sort((a, b) => a - b);
      const p50 = latencies[50]!;
      const max = latencies[latencies.length - 1]!;
      t.log(`legitimate requests beside ${N} dribbling connections: p50 ${p50} ms, max ${max} ms`);
      // A front end starved by the dribblers would answer only after uWS's
      // 10 s idle timeout frees them; the bounds leave room for a loaded CI machine.
      t.true(p50 < 500, `p50 ${p50} ms`);
      t.true(max < 5_000, `max ${max} ms`);
    } finally {
      clearInterval(drip);
    }
    // uWS closes the dribblers within its idle timeout: a head never completes.
    const end = Date.now() + 16_000;
    while (Date.now() < end && crowd.some((s) => !s.destroyed && s.readyState !== 'closed')) await new Promise((r) => setTimeout(r, 250));
    const open = crowd.filter((s) => !s.destroyed && s.readyState !== 'closed').length;
    t.is(open, 0, `${open} dribbling connections still open after 16 s`);
  } finally {
    for (const s of crowd) s.destroy();
  }
  const seen = await stack.originSeen();
  t.false(seen.some((s) => s.path === '/public/crowd'));
});
