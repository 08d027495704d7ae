/**
 * HTTP/1.1 framing on raw sockets against a running edge (one worker, so every
 * connection meets the same parser), with the recording origin as canary.
 *
 * Story: request smuggling lives where two parsers disagree about where a
 * request ends (RFC 9112 §6.3, §11.2). The pinned uWebSockets.js build (20.30)
 * takes the first of two differing Content-Length fields and parses the rest as
 * a new request, reads any Transfer-Encoding value as chunked, and ignores
 * `end(body, true)` when more requests are already buffered. The edge checks
 * framing itself and closes the connection without dispatching what follows
 * (src/front/framing.ts, src/errors/http.ts `closeWith`). Every case
 * carries a smuggled follow-up; the canary must never see one.
 */
import test from 'ava';
import { Stack, pidAlive } from '../integration/harness.js';
import { SECURITY_CONFIG, SMUGGLED, SMUGGLED_PUBLIC, NEVER_FORWARDED, head, pool } from './config.js';
import { raw, errorCode, type RawResult } from './raw.js';

const stack = new Stack(1, SECURITY_CONFIG);
let session = '';

test.before(async () => {
  await stack.start();
  stack.addUser('viewer@example.com', ['--roles', 'viewer']);
  session = stack.session('viewer@example.com');
});
test.after.always(async () => {
  await stack.stop();
});

const P = '/public/x';
const CHUNKED = 'Transfer-Encoding: chunked';
const BODY = '3\r\nabc\r\n0\r\n\r\n';

/** The edge itself answers 400 MEZU_FRAMING_INVALID and closes the connection. */
const edge400: [string, string][] = [
  ['two equal Content-Length fields', head('POST', P, ['Content-Length: 3', 'Content-Length: 3']) + 'abc'],
  ['Transfer-Encoding: xchunked', head('POST', P, ['Transfer-Encoding: xchunked']) + BODY],
  ['Transfer-Encoding: chunked, identity', head('POST', P, ['Transfer-Encoding: chunked, identity']) + BODY],
  ['Transfer-Encoding: gzip, chunked', head('POST', P, ['Transfer-Encoding: gzip, chunked']) + BODY],
  ['Transfer-Encoding: chunked twice', head('POST', P, [CHUNKED, CHUNKED]) + BODY],
  ['Transfer-Encoding: chunked;q=1', head('POST', P, ['Transfer-Encoding: chunked;q=1']) + BODY],
  ['a Trailer field announcing trailers', head('POST', P, [CHUNKED, 'Trailer: X-Mezu-User-Id']) + '3\r\nabc\r\n0\r\nX-Mezu-User-Id: evil\r\n\r\n'],
  ['a Trailer field on a bodiless request', head('GET', P, ['Trailer: Cookie'])],
];

/** The same with a request pipelined behind: never anything but the 400, and the follow-up is never parsed. */
const edge400Pipelined: [string, string][] = edge400.map(([name, bytes]) => [`${name}, then a pipelined request`, bytes + SMUGGLED_PUBLIC + SMUGGLED]);

/**
 * Refused with the connection cut and no answer: uWS closes these itself (CL+TE,
 * bad chunk sizes, Content-Length it cannot parse — after the handler ran, so the
 * edge's 400 is discarded with the socket), or aborts the connection because a
 * request arrived behind one the edge was refusing (the 400 would have left one
 * turn later). Either way nothing is forwarded and nothing behind it is parsed.
 */
const cut: [string, string][] = [
  ['two differing Content-Length fields', head('POST', P, ['Content-Length: 3', 'Content-Length: 10']) + 'abc' + SMUGGLED_PUBLIC],
  ['Content-Length: +3', head('POST', P, ['Content-Length: +3']) + 'abc' + SMUGGLED],
  ['Content-Length: 0x3', head('POST', P, ['Content-Length: 0x3']) + 'abc' + SMUGGLED],
  ['Content-Length: 1 0', head('POST', P, ['Content-Length: 1 0']) + 'abc' + SMUGGLED],
  ['Content-Length: -1', head('POST', P, ['Content-Length: -1']) + 'abc' + SMUGGLED],
  ['Content-Length: 3, 3', head('POST', P, ['Content-Length: 3, 3']) + 'abc' + SMUGGLED],
  ['empty Content-Length', head('POST', P, ['Content-Length: ']) + 'abc' + SMUGGLED_PUBLIC],
  ['Content-Length above 2^64', head('POST', P, ['Content-Length: 99999999999999999999']) + 'abc' + SMUGGLED],
  ['Content-Length above 2^32', head('POST', P, ['Content-Length: 4294967299']) + 'abc' + SMUGGLED],
  ['Transfer-Encoding: identity', head('POST', P, ['Transfer-Encoding: identity']) + 'abc' + SMUGGLED_PUBLIC],
  ['CL.TE: Content-Length then Transfer-Encoding', head('POST', P, ['Content-Length: 4', CHUNKED]) + '0\r\n\r\n' + SMUGGLED_PUBLIC],
  ['TE.CL: Transfer-Encoding then Content-Length', head('POST', P, [CHUNKED, 'Content-Length: 3']) + BODY + SMUGGLED_PUBLIC],
  ['first chunk size not hex', head('POST', P, [CHUNKED]) + 'zz\r\nabc\r\n0\r\n\r\n' + SMUGGLED],
  ['first chunk size overflowing 64 bits', head('POST', P, [CHUNKED]) + 'FFFFFFFFFFFFFFFFF3\r\nabc\r\n0\r\n\r\n' + SMUGGLED],
  ['chunk extension', head('POST', P, [CHUNKED]) + '3;ext=1\r\nabc\r\n0\r\n\r\n' + SMUGGLED],
  ['negative chunk size', head('POST', P, [CHUNKED]) + '-3\r\nabc\r\n0\r\n\r\n' + SMUGGLED],
  ['chunk sizes with bare LF', head('POST', P, [CHUNKED]) + '3\nabc\n0\n\n' + SMUGGLED_PUBLIC],
  ['a refused request with a pipelined one behind it', head('GET', '/public/%2f') + SMUGGLED_PUBLIC],
];

function describe(r: RawResult): string {
  return `statuses ${JSON.stringify(r.statuses)}, closed ${r.closed} after ${r.closedAfterMs} ms, ${r.text.slice(0, 120).replace(/\r\n/g, '⏎')}`;
}

async function assertCanaryClean(t: import('ava').ExecutionContext): Promise<void> {
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => `${s.method} ${s.path}`), [], 'the canary origin received nothing');
}

test.serial('ambiguous framing: 400 MEZU_FRAMING_INVALID, connection closed, nothing forwarded, nothing behind it parsed', async (t) => {
  await stack.clearOrigin();
  const results = await pool(edge400, 8, ([, bytes]) => raw(stack.port, bytes));
  edge400.forEach(([name], i) => {
    const r = results[i]!;
    t.deepEqual(r.statuses, [400], `${name}: ${describe(r)}`);
    t.is(errorCode(r.text), 'MEZU_FRAMING_INVALID', name);
    t.regex(r.text, /\r\nConnection: close\r\n/i, name);
    t.true(r.closed && r.closedAfterMs < 1_000, `${name}: closed at once (${describe(r)})`);
  });
  await assertCanaryClean(t);
});

test.serial('ambiguous framing with requests pipelined behind it: at most the 400, connection closed, the pipelined requests never parsed', async (t) => {
  await stack.clearOrigin();
  const results = await pool(edge400Pipelined, 8, ([, bytes]) => raw(stack.port, bytes));
  edge400Pipelined.forEach(([name], i) => {
    const r = results[i]!;
    t.true(r.statuses.every((s) => s === 400), `${name}: ${describe(r)}`);
    t.true(r.closed && r.closedAfterMs < 1_000, `${name}: closed at once (${describe(r)})`);
  });
  await assertCanaryClean(t);
});

test.serial('framing uWS refuses on its own, and refusals with a pipelined request behind: cut at once, nothing forwarded', async (t) => {
  await stack.clearOrigin();
  const results = await pool(cut, 8, ([, bytes]) => raw(stack.port, bytes));
  cut.forEach(([name], i) => {
    const r = results[i]!;
    t.deepEqual(r.statuses, [], `${name}: ${describe(r)}`);
    t.true(r.closed && r.closedAfterMs < 1_000, `${name}: closed at once (${describe(r)})`);
  });
  await assertCanaryClean(t);
  t.true(pidAlive(stack.workerPids[0]!), 'the worker is alive');
});

test.serial('heads uWS never dispatches (bare LF/CR, NUL and CR/LF in fields, obs-fold, "_" in names, HTTP/1.0, absolute-form, too many fields): closed within the idle timeout, nothing forwarded', async (t) => {
  // These never reach the edge's handler: uWS waits for a head it can parse, then its 10 s idle
  // timeout (4 s granularity) closes the connection. No answer, and nothing forwarded.
  const silent: [string, string][] = [
    ['bare LF line ends', `GET ${P} HTTP/1.1\nHost: localhost\n\n`],
    ['bare LF inside the head', `GET ${P} HTTP/1.1\r\nHost: localhost\nX-Mezu-User-Id: evil\r\n\r\n`],
    ['bare CR inside a value', `GET ${P} HTTP/1.1\r\nHost: localhost\r\nX-A: 1\rX-Mezu-User-Id: evil\r\n\r\n`],
    ['NUL in a value', `GET ${P} HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n`],
    ['NUL in a name', `GET ${P} HTTP/1.1\r\nHost: localhost\r\nX-\0A: b\r\n\r\n`],
    ['control character in a value', `GET ${P} HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b\r\n\r\n`],
    ['space in a name', `GET ${P} HTTP/1.1\r\nHost: localhost\r\nX A: b\r\n\r\n`],
    ['space before the colon', `POST ${P} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n${BODY}`],
    ['obs-fold continuation line', `GET ${P} HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n  X-Mezu-User-Id: evil\r\n\r\n`],
    ['"_" in a name (X_Mezu_User_Id)', `GET ${P} HTTP/1.1\r\nHost: localhost\r\nX_Mezu_User_Id: evil\r\n\r\n`],
    ['HTTP/1.0', head('GET', P, [], 'HTTP/1.0')],
    ['Transfer-Encoding on HTTP/1.0', head('POST', P, [CHUNKED], 'HTTP/1.0') + BODY],
    ['HTTP/0.9 request line', `GET ${P}\r\n\r\n`],
    ['absolute-form target', `GET http://localhost${P} HTTP/1.1\r\nHost: localhost\r\n\r\n`],
    ['absolute-form target disagreeing with Host', `GET http://other.localhost/admin/x HTTP/1.1\r\nHost: localhost\r\n\r\n`],
    ['no Host field', `GET ${P} HTTP/1.1\r\n\r\n`],
    ['CONNECT', head('CONNECT', 'localhost:443')],
    ['60 header fields', head('GET', P, Array.from({ length: 60 }, (_, i) => `X-H${i}: v`))],
  ];
  await stack.clearOrigin();
  const results = await Promise.all(silent.map(([, bytes]) => raw(stack.port, bytes, { waitMs: 16_000 })));
  silent.forEach(([name], i) => {
    const r = results[i]!;
    t.deepEqual(r.statuses, [], `${name}: ${describe(r)}`);
    t.true(r.closed, `${name}: closed (${describe(r)})`);
  });
  await assertCanaryClean(t);
});

test.serial('unknown and lower-case methods: uWS closes at once; TRACE gets 405; nothing forwarded', async (t) => {
  await stack.clearOrigin();
  for (const m of ['FOO', 'PROPFIND', 'get', 'Get']) {
    const r = await raw(stack.port, head(m, P));
    t.deepEqual(r.statuses, [], `${m}: ${describe(r)}`);
    t.true(r.closed, `${m} closed`);
  }
  const trace = await raw(stack.port, head('TRACE', P, ['Cookie: mezu_session=secret']), { responses: 1 });
  t.deepEqual(trace.statuses, [405]);
  t.is(errorCode(trace.text), 'MEZU_METHOD_NOT_ALLOWED');
  t.false(trace.text.includes('secret'), 'TRACE reflects nothing');
  await assertCanaryClean(t);
});

test.serial('a valid chunked body is forwarded decoded; trailer fields reach neither authentication nor the origin', async (t) => {
  await stack.clearOrigin();
  const trailers = `3\r\nabc\r\n0\r\nCookie: mezu_session=${session}\r\nAuthorization: Bearer mzk_x\r\nX-Mezu-User-Id: evil\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n`;
  const pub = await raw(stack.port, head('POST', P, ['Transfer-Encoding: Chunked']) + trailers, { responses: 1 });
  t.deepEqual(pub.statuses, [200], describe(pub));
  // A protected route with the session only in a trailer: no credential.
  const prot = await raw(stack.port, head('POST', '/api/x', [CHUNKED]) + trailers, { responses: 1 });
  t.deepEqual(prot.statuses, [401], describe(prot));
  const seen = await stack.originSeen();
  t.is(seen.length, 1);
  const s = seen[0]!;
  t.is(s.path, P);
  t.is(s.bodyBytes, 3);
  for (const h of ['cookie', 'authorization', 'x-mezu-user-id']) t.false(h in s.headers, `${h} from a trailer reached the origin`);
  t.deepEqual(s.headers['x-forwarded-for'], ['127.0.0.1']);
});

test.serial('a malformed chunk after a good one resets the stream: the origin never sees a complete request', async (t) => {
  await stack.clearOrigin();
  const r = await raw(stack.port, [head('POST', P, [CHUNKED]) + '3\r\nabc\r\n', 'zz\r\nabc\r\n0\r\n\r\n' + SMUGGLED_PUBLIC], { gapMs: 150 });
  t.deepEqual(r.statuses, []);
  t.true(r.closed);
  // The first chunk may have been forwarded (bodies stream); the request never completes there.
  await new Promise((res) => setTimeout(res, 200));
  const seen = await stack.originSeen();
  for (const s of seen) {
    t.is(s.path, P);
    t.false(s.complete, 'the origin never received the end of the body');
  }
  t.false(seen.some((s) => NEVER_FORWARDED.includes(s.path)));
});

test.serial('known limit: uWS tolerates a missing CRLF after chunk data; the body is forwarded as uWS decoded it', async (t) => {
  await stack.clearOrigin();
  const r = await raw(stack.port, head('POST', P, [CHUNKED]) + '3\r\nabcXX0\r\n\r\n', { responses: 1 });
  t.deepEqual(r.statuses, [200], describe(r));
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => `${s.path} ${s.bodyBytes} ${s.complete}`), [`${P} 3 true`]);
});

test.serial('GET with a body: framed by its Content-Length and forwarded with it', async (t) => {
  await stack.clearOrigin();
  const r = await raw(stack.port, head('GET', P, ['Content-Length: 3']) + 'abc', { responses: 1 });
  t.deepEqual(r.statuses, [200]);
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => `${s.method} ${s.path} ${s.bodyBytes}`), [`GET ${P} 3`]);
});

test.serial('known limit: a request pipelined behind a forwarded one makes uWS close the connection; nothing of it reaches the origin, not even the first', async (t) => {
  // uWS refuses asynchronous pipelining (its HttpContext: a request arriving while an answer is
  // pending closes the connection, before the handler sees it), and every forwarded request is
  // answered asynchronously. Story: the first request used to be forwarded at once and its answer
  // lost with the connection, so a client retrying a pipelined POST ran it twice. The edge now
  // opens a request's stream only after the uWS read that carried it (src/front/request.ts
  // forward): by then uWS has closed the connection and nothing is sent.
  // Warm: the Warpgate holds idle origin connections, so a request that reached it would be written
  // to the origin at once (with none, it would wait for a connect and the edge's reset would beat it).
  const warm = await raw(stack.port, [head('GET', `${P}?warm=1`), head('GET', `${P}?warm=2`)], { responses: 2, gapMs: 200 });
  t.deepEqual(warm.statuses, [200, 200]);
  await stack.clearOrigin();
  const r = await raw(stack.port, head('GET', `${P}?delay=100`) + SMUGGLED_PUBLIC + SMUGGLED);
  t.deepEqual(r.statuses, []);
  t.true(r.closed);
  const post = await raw(stack.port, head('POST', `${P}?pipelined-post`, ['Content-Length: 3']) + 'abc' + SMUGGLED_PUBLIC);
  t.deepEqual(post.statuses, []);
  t.true(post.closed);
  await new Promise((res) => setTimeout(res, 300));
  const seen = await stack.originSeen();
  t.deepEqual(seen.map((s) => s.path), [], 'nothing of a pipelined connection reached the origin');
  // Pipelining behind an answer the edge gives at once works (a 401 here, then the next).
  const ok = await raw(stack.port, head('GET', '/api/a') + head('GET', '/api/b'), { responses: 2 });
  t.deepEqual(ok.statuses, [401, 401]);
});
