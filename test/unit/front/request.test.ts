/**
 * EdgeRequest (src/front/request.ts), the one object a request is at the
 * edge: every field is assigned in its constructor, so every request shares
 * one hidden class whatever its fields (no header, many, cookies, body
 * framing of every kind) and whatever happens to it later (route, session,
 * identity, tunnel, response) — the request path's property accesses then
 * stay monomorphic. The hidden class is V8's map, compared with
 * `%HaveSameMap`, which needs `--allow-natives-syntax`: ava passes node flags
 * only to every test file at once, so a small node process started from here
 * builds the requests and prints what it found.
 *
 * Also: what the constructor's single pass over the fields collects (framing,
 * Host, cookies, Authorization, Accept, X-Forwarded-For, Connection) agrees
 * with the request as the client sent it, and the framing with inspectFraming.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { HttpRequest, HttpResponse } from '../../../native/uws.js';
import { EdgeRequest, inspectFraming, BODY_NONE, BODY_CHUNKED, FRAMING_INVALID, type RequestScope } from '../../../src/front/index.js';

type Pair = [string, string];

/** Header sets the requests are built with (names lower-case, as uWS gives them). */
const CASES: Record<string, { method: string; url: string; query: string | undefined; fields: Pair[] }> = {
  none: { method: 'GET', url: '/', query: undefined, fields: [] },
  host: { method: 'GET', url: '/a', query: '', fields: [['host', 'app.example.com']] },
  many: {
    method: 'GET',
    url: '/api/v1/items',
    query: 'page=2&sort=name',
    fields: [
      ['host', 'app.example.com'],
      ...Array.from({ length: 60 }, (_, i): Pair => [`x-field-${i}`, `value ${i}`]),
      ['user-agent', 'Mozilla/5.0'],
      ['accept', 'text/html,application/xhtml+xml'],
      ['accept-language', 'en'],
    ],
  },
  cookie: { method: 'GET', url: '/c', query: undefined, fields: [['host', 'h'], ['cookie', 'a=1; mezu_session=tok']] },
  cookies: { method: 'GET', url: '/c', query: undefined, fields: [['host', 'h'], ['cookie', 'a=1'], ['cookie', 'mezu_session=tok'], ['cookie', 'b=2']] },
  credentials: {
    method: 'GET',
    url: '/k',
    query: undefined,
    fields: [['host', 'h'], ['authorization', 'Bearer mzk_x'], ['x-forwarded-for', '10.0.0.1'], ['x-forwarded-for', '10.0.0.2'], ['connection', 'keep-alive, x-foo'], ['connection', 'x-bar']],
  },
  'content-length': { method: 'POST', url: '/u', query: undefined, fields: [['host', 'h'], ['content-length', '5'], ['content-type', 'text/plain']] },
  'content-length 0': { method: 'POST', url: '/u', query: undefined, fields: [['host', 'h'], ['content-length', '0']] },
  'content-length large': { method: 'PUT', url: '/u', query: undefined, fields: [['host', 'h'], ['content-length', '123456789012345']] },
  chunked: { method: 'POST', url: '/u', query: undefined, fields: [['host', 'h'], ['transfer-encoding', 'chunked']] },
  'framing invalid': { method: 'POST', url: '/u', query: undefined, fields: [['host', 'h'], ['content-length', '5'], ['transfer-encoding', 'chunked']] },
  'length twice': { method: 'POST', url: '/u', query: undefined, fields: [['content-length', '5'], ['content-length', '5']] },
  trailer: { method: 'POST', url: '/u', query: undefined, fields: [['host', 'h'], ['transfer-encoding', 'chunked'], ['trailer', 'x']] },
  'two hosts': { method: 'HEAD', url: '/h', query: 'q', fields: [['host', 'a'], ['host', 'b']] },
  'odd method': { method: 'PROPFIND', url: '*', query: undefined, fields: [['host', 'h']] },
  trace: {
    method: 'GET',
    url: '/t',
    query: undefined,
    fields: [['host', 'h'], ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'], ['tracestate', 'a=1'], ['tracestate', 'b=2']],
  },
};

/**
 * The child: builds one EdgeRequest per case with stand-in uWS objects, and
 * more that then go through what the stages and the tunnel do to a request
 * (forwarded bodiless and answered; forwarded with a body; refused after the
 * head; failed; aborted), and prints their maps compared with the first
 * request's, and their own property names.
 */
const CHILD = String.raw`
const { EdgeRequest } = require(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
const scope = { pools: { replay: () => false, pick: () => null }, scheme: 'https', inflight: { n: 0 }, clients: new Map(), routes: new Map(), live: null, log: () => undefined };
function uwsReq(c) {
  return {
    getCaseSensitiveMethod: () => c.method,
    getMethod: () => c.method.toLowerCase(),
    getUrl: () => c.url,
    getQuery: () => c.query === null ? undefined : c.query,
    forEach: (cb) => { for (const [k, v] of c.fields) cb(k, v); },
  };
}
function uwsRes() {
  const res = {
    onDataCb: null,
    cork(cb) { cb(); return res; },
    writeStatus() { return res; },
    writeHeader() { return res; },
    getWriteOffset() { return 0; },
    tryEnd() { return [true, true]; },
    write() { return true; },
    end() { return res; },
    endWithoutBody() { return res; },
    close() { return res; },
    onAborted() { return res; },
    onWritable() { return res; },
    onData(cb) { res.onDataCb = cb; return res; },
    pause() {},
    resume() {},
    getRemoteAddress() { return new Uint8Array([127, 0, 0, 1]).buffer; },
  };
  return res;
}
const stream = { write: () => true, end() {}, abort() {}, pause() {}, resume() {}, onDrain() {} };
const conn = { id: 'c', pool: 'demo', outstanding: 0, ready: true, open(r) { r.conn = conn; r.stream = stream; return true; }, flush() {}, close() {} };
const mk = (c) => new EdgeRequest(uwsRes(), uwsReq(c), scope, 'req-1');
/** What route, session, authorize and identity write on an allowed request. */
function stages(r) {
  r.config = { trustedProxies: [] };
  r.project = { id: 'demo', upstream: 'demo' };
  r.target = '/x?y=1';
  r.policy = { auth: 'required', maxBody: 1 << 20 };
  r.principal = { type: 'user', id: 'usr_1', roles: [], permissions: [] };
  r.assertion = 'a.b.c';
  r.clientAddress = '127.0.0.1';
}
const out = { cases: {}, keys: {}, lifecycle: {} };
const names = Object.keys(cases);
const first = mk(cases[names[0]]);
for (const n of names) {
  const r = mk(cases[n]);
  out.cases[n] = %HaveSameMap(first, r);
  out.keys[n] = Object.keys(r);
}
// Forwarded bodiless, answered with a length, ended.
{
  const r = mk(cases.host);
  stages(r);
  r.forward(conn);
  r.onHead(200, ['content-type', 'text/plain', 'content-length', '2']);
  r.flushHead();
  r.onData(Buffer.from('ok'));
  r.onEnd();
  out.lifecycle['forwarded and answered'] = [%HaveSameMap(first, r), Object.keys(r)];
}
// Forwarded bodiless, answered chunked (no length), several chunks.
{
  const r = mk(cases.cookie);
  stages(r);
  r.forward(conn);
  r.onHead(200, ['content-type', 'text/plain']);
  r.onData(Buffer.from('a'));
  r.onData(Buffer.from('b'));
  r.onEnd();
  out.lifecycle['answered chunked'] = [%HaveSameMap(first, r), Object.keys(r)];
}
// A body: the stream opens on the first bytes, the upload ends, a 204 comes back.
{
  const r = mk(cases['content-length']);
  stages(r);
  r.forward(conn);
  r.res.onDataCb(new Uint8Array([1, 2, 3]).buffer, false);
  r.res.onDataCb(new Uint8Array([4, 5]).buffer, true);
  r.onHead(204, []);
  out.lifecycle['body uploaded'] = [%HaveSameMap(first, r), Object.keys(r)];
}
// The tunnel failed before any head; then the client went away.
{
  const r = mk(cases.credentials);
  stages(r);
  r.forward(conn);
  r.onError('MEZU_TUNNEL_FAILED');
  r.abort();
  out.lifecycle['failed and aborted'] = [%HaveSameMap(first, r), Object.keys(r)];
}
// Refused and lost with nowhere to replay.
{
  const r = mk(cases.many);
  stages(r);
  r.forward(conn);
  r.onRefused();
  const q = mk(cases.many);
  stages(q);
  q.forward(conn);
  q.onLost();
  out.lifecycle['refused, lost'] = [%HaveSameMap(first, r) && %HaveSameMap(first, q), Object.keys(q)];
}
// A body over the rule's limit: fail (the answer goes one turn later).
{
  const r = mk(cases.chunked);
  stages(r);
  r.policy = { auth: 'public', maxBody: 2 };
  r.forward(conn);
  r.res.onDataCb(new Uint8Array([1, 2, 3]).buffer, false);
  out.lifecycle['body too large'] = [%HaveSameMap(first, r), Object.keys(r)];
}
// Control: the check can fail — a property added after construction changes the map.
{
  const r = mk(cases.none);
  r.extra = 1;
  out.control = %HaveSameMap(first, r);
}
setImmediate(() => process.stdout.write(JSON.stringify(out)));
`;

interface ChildResult {
  cases: Record<string, boolean>;
  keys: Record<string, string[]>;
  lifecycle: Record<string, [boolean, string[]]>;
  control: boolean;
}

let childOnce: ChildResult | null = null;
function child(): ChildResult {
  if (childOnce !== null) return childOnce;
  const modulePath = resolve(__dirname, '../../../src/front/request.js');
  const serial = JSON.stringify(CASES, (_k, v: unknown) => (v === undefined ? null : v));
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', CHILD, modulePath, serial], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the map probe failed (${r.status}): ${r.stderr}`);
  childOnce = JSON.parse(r.stdout) as ChildResult;
  return childOnce;
}

test('every EdgeRequest has the same hidden class, whatever its header set (V8 %HaveSameMap)', (t) => {
  const r = child();
  t.false(r.control, 'control: an object given a property after construction has another map (the check can fail)');
  t.deepEqual(Object.keys(r.cases), Object.keys(CASES));
  for (const [name, same] of Object.entries(r.cases)) t.true(same, name);
});

test('the hidden class stays the same through the stages, the tunnel and the response (no property added later)', (t) => {
  const r = child();
  const fresh = r.keys.none!;
  t.true(Object.keys(r.lifecycle).length >= 6);
  for (const [name, [same, keys]] of Object.entries(r.lifecycle)) {
    t.true(same, name);
    t.deepEqual(keys, fresh, name);
  }
});

test('the fields are own properties assigned in the constructor: the same keys, in the same order, for every request', (t) => {
  const r = child();
  const fresh = r.keys.none!;
  for (const [name, keys] of Object.entries(r.keys)) t.deepEqual(keys, fresh, name);
  // In process too, without the child.
  const a = build(CASES.none!);
  const b = build(CASES.many!);
  t.deepEqual(Object.keys(a), Object.keys(b));
  t.deepEqual(Object.getOwnPropertyNames(a), Object.keys(a), 'no non-enumerable own property either');
  // Every one is an own data property (no accessor hides a lazily added field), and the methods are the prototype's.
  for (const k of Object.keys(a)) {
    const d = Object.getOwnPropertyDescriptor(a, k)!;
    t.true('value' in d, k);
  }
  for (const m of ['forward', 'onHead', 'onData', 'onEnd', 'onError', 'onRefused', 'onLost', 'encodeHead', 'fail', 'abort']) {
    t.false(Object.prototype.hasOwnProperty.call(a, m), m);
    t.is(typeof (a as unknown as Record<string, unknown>)[m], 'function', m);
  }
  for (const k of ['res', 'scope', 'id', 'method', 'fields', 'host', 'cookie', 'body', 'config', 'project', 'principal', 'assertion', 'conn', 'stream', 'replayed', 'headFields', 'pending']) {
    t.true(Object.prototype.hasOwnProperty.call(a, k), k);
  }
});

// ── what the single pass collects ──

const scope: RequestScope = { pools: null as never, scheme: 'https', inflight: { n: 0 }, clients: new Map(), routes: new Map(), live: null, log: () => undefined };
function build(c: { method: string; url: string; query: string | undefined; fields: Pair[] }): EdgeRequest {
  const req = {
    getCaseSensitiveMethod: () => c.method,
    getUrl: () => c.url,
    getQuery: () => c.query,
    forEach: (cb: (k: string, v: string) => void) => {
      for (const [k, v] of c.fields) cb(k, v);
    },
  } as unknown as HttpRequest;
  return new EdgeRequest({} as HttpResponse, req, scope, 'req-1');
}

test('the body framing collected while copying the fields is what inspectFraming says, for every case', (t) => {
  const extra: Array<Pair[]> = [
    [['content-length', '']],
    [['content-length', '+3']],
    [['transfer-encoding', 'gzip, chunked']],
    [['transfer-encoding', 'chunked'], ['transfer-encoding', 'chunked']],
    [['transfer-encoding', ' Chunked ']],
    [['trailer', 'x'], ['content-length', '3']],
    [['content-length', '3'], ['trailer', 'x']],
  ];
  const all = [...Object.values(CASES).map((c) => c.fields), ...extra];
  for (const fields of all) {
    const r = build({ method: 'POST', url: '/', query: undefined, fields });
    t.is(r.body, inspectFraming(fields.map((p) => p[0]), fields.map((p) => p[1])), JSON.stringify(fields));
    t.is(r.hasBody, r.body !== BODY_NONE);
  }
  t.is(build(CASES.chunked!).body, BODY_CHUNKED);
  t.is(build(CASES['framing invalid']!).body, FRAMING_INVALID);
  t.is(build(CASES['content-length large']!).body, 123456789012345);
});

test('the single pass copies the fields in order and collects Host, cookies, Authorization, Accept, X-Forwarded-For, Connection and the trace context', (t) => {
  const many = build(CASES.many!);
  t.deepEqual(many.fields, CASES.many!.fields.flat());
  t.is(many.hostCount, 1);
  t.is(many.host, 'app.example.com');
  t.true(many.acceptsHtml);
  t.is(many.query, 'page=2&sort=name');
  t.is(many.url, '/api/v1/items');
  t.false(many.isHead);

  const none = build(CASES.none!);
  t.deepEqual(none.fields, []);
  t.is(none.hostCount, 0);
  t.is(none.query, '', 'no query from uWS reads as an empty one');
  t.is(none.cookie, '');
  t.is(none.authorization, '');

  t.is(build(CASES.cookies!).cookie, 'a=1; mezu_session=tok; b=2', 'every Cookie field, joined with "; "');
  const cred = build(CASES.credentials!);
  t.is(cred.authorization, 'Bearer mzk_x');
  t.is(cred.forwardedFor, '10.0.0.1,10.0.0.2');
  t.is(cred.connection, 'keep-alive, x-foo,x-bar');
  t.false(cred.acceptsHtml);

  const two = build(CASES['two hosts']!);
  t.is(two.hostCount, 2, 'two Host fields are counted (the front end refuses them)');
  t.is(two.host, 'a');
  t.true(two.isHead);

  const trace = build(CASES.trace!);
  t.is(trace.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  t.is(trace.tracestate, 'a=1,b=2', 'every Tracestate field, joined with ","');
  t.is(trace.trace, '', 'the forwarded traceparent is made with the head, not before');
  t.is(none.traceparent, '');

  // The head size counts the request line and every field.
  const small = build({ method: 'GET', url: '/', query: undefined, fields: [['host', 'h']] });
  const bigger = build({ method: 'GET', url: '/', query: undefined, fields: [['host', 'h'], ['x-pad', 'a'.repeat(1000)]] });
  t.is(bigger.headBytes - small.headBytes, 'x-pad'.length + 1000 + 4);
  t.is(bigger.fields.length, 4);
});
