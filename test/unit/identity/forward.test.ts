/**
 * The forwarded request head (src/identity/forward.ts encodeForwarded),
 * written into a real HPACK encoder as the tunnel connection does and read
 * back with the Warpgate's decoder: what reaches the application, in order.
 * The plan: pseudo-headers first; the client's fields minus reserved
 * spellings, hop-by-hop and Connection-listed names, routing and
 * client-address claims, product cookies and a service-account key; then the
 * edge's own fields, last, which no client field can remove or stand in for.
 */
import test from 'ava';
import { encodeForwarded, type ForwardedRequest } from '../../../src/identity/index.js';
import { HpackDecoder, HpackEncoder } from '../../../wire/h2/hpack.js';
import { newApiKey } from '../../../src/session/index.js';

type Pair = [string, string];

const ASSERTION = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c3JfMSJ9.c2ln';

/** A request as the front end has it after an allow: the client's fields as uWS gave them (names lower-case). */
function request(pairs: Pair[], over: Partial<ForwardedRequest> = {}): ForwardedRequest {
  const fields: string[] = [];
  let connection = '';
  let traceparent = '';
  let tracestate = '';
  for (const [n, v] of pairs) {
    fields.push(n, v);
    // Every Connection (Traceparent, Tracestate) field joined with `,`, as EdgeRequest collects it.
    if (n === 'connection') connection = connection === '' ? v : `${connection},${v}`;
    if (n === 'traceparent') traceparent = traceparent === '' ? v : `${traceparent},${v}`;
    if (n === 'tracestate') tracestate = tracestate === '' ? v : `${tracestate},${v}`;
  }
  return {
    method: 'GET',
    host: 'app.example.com',
    target: '/api/items?page=2',
    fields,
    connection,
    clientAddress: '203.0.113.7',
    scheme: 'https',
    id: 'req-1',
    projectId: 'demo',
    assertion: ASSERTION,
    traceparent,
    tracestate,
    trace: '',
    ...over,
  };
}

/** Encodes `r` with a fresh encoder (or `enc`) and decodes the block with a fresh decoder (or `dec`). */
function encodeDecode(r: ForwardedRequest, enc = new HpackEncoder(), dec = new HpackDecoder()): Pair[] {
  enc.begin();
  encodeForwarded(enc, r);
  const d = dec.decode(Buffer.from(enc.view()));
  if (!d.ok) throw new Error(`the forwarded head does not decode: ${d.reason}`);
  const out: Pair[] = [];
  for (let i = 0; i < d.headers.length; i += 2) out.push([d.headers[i]!, d.headers[i + 1]!]);
  return out;
}

function pseudo(r: ForwardedRequest): Pair[] {
  return [
    [':method', r.method],
    [':scheme', 'https'],
    [':authority', r.host],
    [':path', r.target],
  ];
}
function edgeFields(r: ForwardedRequest): Pair[] {
  const out: Pair[] = [
    ['x-forwarded-for', r.clientAddress],
    ['x-forwarded-proto', r.scheme],
    ['x-forwarded-host', r.host],
    ['x-mezu-request-id', r.id],
    ['x-mezu-project', r.projectId],
    ['traceparent', r.trace],
  ];
  if (r.tracestate !== '') out.push(['tracestate', r.tracestate]);
  if (r.assertion !== null) out.push(['x-mezu-assertion', r.assertion]);
  return out;
}

/**
 * The client fields that were forwarded. Checks the frame of every head on
 * the way: the pseudo-headers first, exactly the edge's fields last, and no
 * `x-mezu-*` or `x-forwarded-*` field anywhere else.
 */
function kept(pairs: Pair[], over: Partial<ForwardedRequest> = {}): Pair[] {
  const r = request(pairs, over);
  const all = encodeDecode(r);
  const head = pseudo(r);
  const tail = edgeFields(r);
  const at = (n: number) => JSON.stringify(all.slice(n));
  if (JSON.stringify(all.slice(0, head.length)) !== JSON.stringify(head)) throw new Error(`pseudo-headers not first: ${JSON.stringify(all)}`);
  if (at(all.length - tail.length) !== JSON.stringify(tail)) throw new Error(`the edge's fields are not last and exact: ${JSON.stringify(all)}`);
  const client = all.slice(head.length, all.length - tail.length);
  for (const [n] of client) {
    if (/^x[-_]mezu[-_]/i.test(n) || /^x[-_]forwarded[-_]/i.test(n)) throw new Error(`a client field ${n} reached the application`);
  }
  return client;
}

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-authenticate',
  'host',
  'http2-settings',
  // uWS already answered `100 Continue`; the tunnel carries the body as it comes.
  'expect',
];

test('the pseudo-headers come first: the method, https, the client\'s Host as :authority, the authorized target as :path', (t) => {
  const r = request([['host', 'app.example.com'], ['accept', '*/*']], { method: 'DELETE', target: '/a/b?c=d' });
  const all = encodeDecode(r);
  t.deepEqual(all.slice(0, 4), [
    [':method', 'DELETE'],
    [':scheme', 'https'],
    [':authority', 'app.example.com'],
    [':path', '/a/b?c=d'],
  ]);
  t.deepEqual(all.slice(4, 5), [['accept', '*/*']], 'Host itself is not repeated as a field');
});

test('ordinary headers are forwarded as name, value pairs in order', (t) => {
  t.deepEqual(
    kept([
      ['accept', 'text/html'],
      ['user-agent', 'ava'],
      ['content-type', 'application/json'],
      ['authorization', 'Bearer abc'],
      ['cookie', 'a=1'],
    ]),
    [
      ['accept', 'text/html'],
      ['user-agent', 'ava'],
      ['content-type', 'application/json'],
      ['authorization', 'Bearer abc'],
      ['cookie', 'a=1'],
    ],
  );
});

test('no client fields: the pseudo-headers and the edge\'s fields only', (t) => {
  const r = request([]);
  t.deepEqual(encodeDecode(r), [...pseudo(r), ...edgeFields(r)]);
  t.deepEqual(kept([]), []);
});

test('duplicates of ordinary headers are all kept, in order', (t) => {
  t.deepEqual(
    kept([
      ['x-dup', 'one'],
      ['accept', '*/*'],
      ['x-dup', 'two'],
      ['cookie', 'a=1'],
      ['x-dup', 'three'],
      ['cookie', 'b=2'],
    ]),
    [
      ['x-dup', 'one'],
      ['accept', '*/*'],
      ['x-dup', 'two'],
      ['cookie', 'a=1'],
      ['x-dup', 'three'],
      ['cookie', 'b=2'],
    ],
  );
});

for (const name of HOP_BY_HOP) {
  test(`hop-by-hop / HTTP/2-forbidden header is dropped: ${name}`, (t) => {
    t.deepEqual(
      kept([
        ['accept', '*/*'],
        [name, name === 'connection' ? 'close' : 'v'],
        ['x-after', '1'],
      ]),
      [
        ['accept', '*/*'],
        ['x-after', '1'],
      ],
    );
  });
}

test('every reserved spelling is dropped; lookalikes are kept', (t) => {
  // uWS lower-cases names, but `_` survives: both separators must be caught.
  t.deepEqual(
    kept([
      ['x-mezu-user-id', 'forged'],
      ['x_mezu_user_id', 'forged'],
      ['x_mezu-roles', 'admin'],
      ['x-mezu_roles', 'admin'],
      ['x-mezu-assertion', 'forged.jwt.sig'],
      ['x-mezu-project', 'other'],
      ['x-mezu-request-id', 'r'],
      ['x-mezu-', 'empty-suffix'],
      ['x-mezux', 'keep1'],
      ['x-mez-user', 'keep2'],
      ['mezu-user-id', 'keep3'],
      ['xx-mezu-user-id', 'keep4'],
      ['x-mezu', 'keep5'],
    ]),
    [
      ['x-mezux', 'keep1'],
      ['x-mez-user', 'keep2'],
      ['mezu-user-id', 'keep3'],
      ['xx-mezu-user-id', 'keep4'],
      ['x-mezu', 'keep5'],
    ],
  );
});

test('a forged assertion, request id or project never stands in for the edge\'s: only the edge\'s values arrive', (t) => {
  const r = request([
    ['x-mezu-assertion', 'forged.jwt.sig'],
    ['x_mezu_assertion', 'forged.jwt.sig'],
    ['x-mezu-request-id', 'forged'],
    ['x-mezu-project', 'other'],
    ['x-forwarded-for', '10.0.0.1'],
    ['x-forwarded-host', 'evil.example'],
    ['x-forwarded-proto', 'http'],
  ]);
  const all = encodeDecode(r);
  const values = (n: string) => all.filter(([k]) => k === n).map(([, v]) => v);
  t.deepEqual(values('x-mezu-assertion'), [ASSERTION]);
  t.deepEqual(values('x-mezu-request-id'), ['req-1']);
  t.deepEqual(values('x-mezu-project'), ['demo']);
  t.deepEqual(values('x-forwarded-for'), ['203.0.113.7']);
  t.deepEqual(values('x-forwarded-host'), ['app.example.com']);
  t.deepEqual(values('x-forwarded-proto'), ['https']);
  t.false(all.some(([k]) => k === 'x_mezu_assertion'));
});

test('the edge\'s fields come last, in order; a public route (no assertion) carries no assertion field', (t) => {
  const r = request([['accept', '*/*']]);
  t.deepEqual(encodeDecode(r).slice(-7), edgeFields(r));
  const pub = request([['accept', '*/*'], ['x-mezu-assertion', 'forged']], { assertion: null });
  const all = encodeDecode(pub);
  t.deepEqual(all.slice(-6), edgeFields(pub));
  t.false(all.some(([k]) => k === 'x-mezu-assertion'), 'neither the edge\'s nor the client\'s');
});

test('client routing and address claims are dropped, in every spelling; the edge\'s X-Forwarded-* replace them', (t) => {
  const routing = [
    'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-uri',
    'x-forwarded-method', 'x-forwarded-server', 'x-forwarded-ssl', 'forwarded', 'x-real-ip', 'true-client-ip', 'x-client-ip',
    'client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-cluster-client-ip', 'x-original-url', 'x-original-uri', 'x-rewrite-url',
    'x-original-method', 'x-original-host', 'x-host', 'x-http-method-override', 'x-http-method', 'x-method-override',
    'x-envoy-original-path', 'x_forwarded_for', 'x_original_url', 'x_http_method_override',
  ];
  const pairs: Pair[] = [['accept', '*/*'], ...routing.map((n): Pair => [n, 'claim']), ['x-request-id', 'kept'], ['forwarded-for', 'kept']];
  t.deepEqual(kept(pairs), [
    ['accept', '*/*'],
    ['x-request-id', 'kept'],
    ['forwarded-for', 'kept'],
  ]);
});

test('a header named in Connection is dropped (Connection: x-foo, keep-alive)', (t) => {
  t.deepEqual(
    kept([
      ['connection', 'x-foo, keep-alive'],
      ['x-foo', 'secret'],
      ['keep-alive', 'timeout=5'],
      ['x-bar', 'kept'],
    ]),
    [['x-bar', 'kept']],
  );
});

test('Connection tokens are matched case-insensitively and with surrounding whitespace', (t) => {
  t.deepEqual(
    kept([
      ['x-foo', '1'],
      ['x-baz', '2'],
      ['x-qux', '3'],
      ['connection', '  X-Foo ,X-BAZ\t,, '],
    ]),
    [['x-qux', '3']],
  );
});

test('a header named in Connection is dropped even when it comes before Connection, and every copy of it', (t) => {
  t.deepEqual(
    kept([
      ['x-foo', 'a'],
      ['accept', '*/*'],
      ['x-foo', 'b'],
      ['connection', 'x-foo'],
    ]),
    [['accept', '*/*']],
  );
});

test('tokens from several Connection headers are all honoured', (t) => {
  t.deepEqual(
    kept([
      ['connection', 'x-one'],
      ['x-one', '1'],
      ['connection', 'x-two'],
      ['x-two', '2'],
      ['x-three', '3'],
    ]),
    [['x-three', '3']],
  );
});

test('Connection can name an ordinary end-to-end header, and it is dropped (RFC 9110 §7.6.1)', (t) => {
  t.deepEqual(
    kept([
      ['connection', 'cookie, authorization'],
      ['cookie', 'a=1'],
      ['authorization', 'Bearer x'],
      ['accept', '*/*'],
    ]),
    [['accept', '*/*']],
  );
});

test('a Connection token that names no present header changes nothing else', (t) => {
  t.deepEqual(
    kept([
      ['connection', 'close, x-absent'],
      ['accept', '*/*'],
      ['x-foo', '1'],
    ]),
    [
      ['accept', '*/*'],
      ['x-foo', '1'],
    ],
  );
});

test('an empty Connection value drops nothing besides itself', (t) => {
  t.deepEqual(
    kept([
      ['connection', ''],
      ['x-foo', '1'],
    ]),
    [['x-foo', '1']],
  );
});

test('Connection naming a reserved header cannot resurrect it, and a prefix of a name does not match', (t) => {
  t.deepEqual(
    kept([
      ['connection', 'x-fo'],
      ['x-foo', '1'],
      ['x-mezu-user-id', 'forged'],
    ]),
    [['x-foo', '1']],
  );
});

test('a client cannot remove the edge\'s fields by naming them in Connection', (t) => {
  const edgeNames = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-mezu-request-id', 'x-mezu-project', 'traceparent', 'x-mezu-assertion'];
  const r = request([
    ['connection', edgeNames.join(', ')],
    ['accept', '*/*'],
  ]);
  const all = encodeDecode(r);
  t.deepEqual(all.slice(-7), edgeFields(r), 'every edge field is there, with the edge\'s values');
  t.deepEqual(all.slice(4, -7), [['accept', '*/*']]);
  // Upper case and `_` spellings change nothing either.
  const r2 = request([['connection', 'X-MEZU-ASSERTION, x_mezu_assertion, X-Forwarded-For, Traceparent']]);
  t.deepEqual(encodeDecode(r2).slice(-7), edgeFields(r2));
});

test('values are copied verbatim (no trimming, no joining)', (t) => {
  t.deepEqual(
    kept([
      ['x-a', '  spaced  '],
      ['x-b', ''],
      ['x-c', 'a, b, c'],
    ]),
    [
      ['x-a', '  spaced  '],
      ['x-b', ''],
      ['x-c', 'a, b, c'],
    ],
  );
});

// ── cookies: every product cookie is stripped (wire/contract.ts isProductCookie) ──

test('every product cookie is stripped, in any case and behind __Host-/__Secure-; a field left empty is dropped whole', (t) => {
  const product = [
    'mezu_session', '__Host-mezu_session', '__Secure-mezu_session', 'mezu_console_session', '__Host-mezu_console_session',
    'mezu_csrf', '__Host-mezu_csrf', 'mezu_future_cookie', 'MEZU_SESSION', 'Mezu_Session', '__host-mezu_session',
    '__HOST-MEZU_SESSION', '__secure-Mezu_x', 'mezu_',
  ];
  for (const name of product) {
    t.deepEqual(kept([['cookie', `${name}=secret-token-value`], ['accept', '*/*']]), [['accept', '*/*']], name);
    t.deepEqual(kept([['cookie', `a=1; ${name}=secret-token-value; b=2`]]), [['cookie', 'a=1; b=2']], name);
  }
  // All of them at once, in one field and spread over several.
  const all = product.map((n, i) => `${n}=v${i}`).join('; ');
  t.deepEqual(kept([['cookie', all]]), []);
  t.deepEqual(kept([['cookie', `keep=1; ${all}`], ['cookie', product.map((n) => `${n}=x`).join(';')], ['cookie', 'last=2']]), [
    ['cookie', 'keep=1'],
    ['cookie', 'last=2'],
  ]);
  // No token value survives anywhere in the head.
  const r = request([['cookie', `a=1; mezu_session=TOKEN1; __Host-mezu_console_session=TOKEN2`]]);
  t.false(JSON.stringify(encodeDecode(r)).includes('TOKEN'));
});

test('other cookies survive byte for byte: a field without a product cookie is forwarded as it came; lookalike names are not product cookies', (t) => {
  const untouched = [
    'a=1',
    'a=1;b=2',
    'theme=dark;  lang=en ; x=',
    'q="a b=c"; empty=; =novalue; flag',
    'xmezu_a=1; mezu=2; mezu-session=3; _mezu_x=4; __Host-other=5; __Host-mezu=6; x__Host-mezu_session=7; __Secure-=8; smezu_=9',
    'json={"mezu":"value"}; path=/mezu_/x',
  ];
  for (const v of untouched) t.deepEqual(kept([['cookie', v]]), [['cookie', v]], v);
  // Around a stripped one, each remaining pair keeps its bytes (pairs re-joined with `; `).
  t.deepEqual(kept([['cookie', 'q="a b=c";mezu_session=tok;  w=x=y ;z']]), [['cookie', 'q="a b=c"; w=x=y; z']]);
  t.deepEqual(kept([['cookie', ' mezu_session =tok; a=1']]), [['cookie', 'a=1']], 'spaces around the name do not hide a product cookie');
});

// ── Authorization: a service-account key stays with the edge ──

test('a `Bearer mzk_…` key in Authorization is dropped, in any case of the scheme; any other Authorization is forwarded', (t) => {
  const key = newApiKey().text;
  for (const v of [`Bearer ${key}`, `bearer ${key}`, `BEARER ${key}`, `Bearer\t${key}`, `Bearer  ${key}`, `Bearer ${key} `, 'Bearer mzk_not-even-a-valid-key']) {
    t.deepEqual(kept([['authorization', v], ['accept', '*/*']]), [['accept', '*/*']], JSON.stringify(v));
  }
  for (const v of ['Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig', 'Basic dXNlcjpwYXNz', `Basic ${Buffer.from(`u:${key}`).toString('base64')}`, 'Bearer abc', `Bearerx ${key}`]) {
    t.deepEqual(kept([['authorization', v]]), [['authorization', v]], JSON.stringify(v));
  }
  // A key in one Authorization field does not take another with it.
  t.deepEqual(kept([['authorization', `Bearer ${key}`], ['authorization', 'Basic dXNlcjpwYXNz']]), [['authorization', 'Basic dXNlcjpwYXNz']]);
});

test('on a warm encoder (the connection\'s steady state) the same request decodes to the same head', (t) => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  const r = request([['accept', '*/*'], ['cookie', 'a=1; mezu_session=tok'], ['x-mezu-user-id', 'forged']]);
  const first = encodeDecode(r, enc, dec);
  const second = encodeDecode({ ...r, id: 'req-2' }, enc, dec);
  t.deepEqual(second, first.map(([n, v]): Pair => (n === 'x-mezu-request-id' ? [n, 'req-2'] : [n, v])));
});

// ── W3C Trace Context (src/identity/trace.ts) ──

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
function traceOf(all: Pair[]): { parent: string | undefined; state: string | undefined; count: number } {
  const p = all.filter(([n]) => n === 'traceparent');
  return { parent: p[0]?.[1], state: all.find(([n]) => n === 'tracestate')?.[1], count: p.length };
}

test('a request without a traceparent starts a trace: a new trace id and span id, not sampled, exactly one field', (t) => {
  const a = traceOf(encodeDecode(request([['accept', '*/*']])));
  const b = traceOf(encodeDecode(request([['accept', '*/*']])));
  t.is(a.count, 1);
  t.regex(a.parent!, TP);
  t.is(a.parent!.slice(-2), '00');
  t.not(TP.exec(a.parent!)![1], TP.exec(b.parent!)![1], 'each request a trace of its own');
  t.not(TP.exec(a.parent!)![2], TP.exec(b.parent!)![2]);
  t.is(a.state, undefined);
});

test('a valid traceparent is continued: the same trace id and sampled flag, the edge\'s own span id as the parent; tracestate passed on', (t) => {
  const client = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const pairs: Pair[] = [['traceparent', client], ['tracestate', 'rojo=00f067aa0ba902b7'], ['tracestate', 'congo=t61rcWkgMzE']];
  const r = request(pairs);
  const tr = traceOf(kept(pairs));
  const all = encodeDecode(r);
  const got = traceOf(all);
  t.is(got.count, 1, 'the client\'s field is replaced, not kept beside the edge\'s');
  const m = TP.exec(got.parent!)!;
  t.is(m[1], '4bf92f3577b34da6a3ce929d0e0e4736');
  t.not(m[2], '00f067aa0ba902b7', 'the edge is a hop: a span id of its own');
  t.is(m[3], '01');
  t.is(got.state, 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
  t.is(tr.count, 0, 'no client trace field among the forwarded client fields');
});

test('a replayed request keeps its trace: the head written twice carries the same traceparent', (t) => {
  const r = request([]);
  const first = traceOf(encodeDecode(r)).parent;
  t.is(traceOf(encodeDecode(r)).parent, first);
});

test('an invalid traceparent is replaced by a new trace, and its tracestate dropped', (t) => {
  const bad = [
    '',
    'garbage',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', // version 00 is exactly 55 characters
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff is invalid
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // all-zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // all-zero parent id
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01,00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // two fields
  ];
  for (const v of bad) {
    const got = traceOf(encodeDecode(request([['traceparent', v], ['tracestate', 'rojo=1']])));
    t.is(got.count, 1, v);
    t.regex(got.parent!, TP, v);
    t.false(got.parent!.includes('4bf92f3577b34da6a3ce929d0e0e4736'), v);
    t.is(got.state, undefined, v);
  }
});

test('a later version is continued from its first 55 characters, as version 00', (t) => {
  const got = traceOf(encodeDecode(request([['traceparent', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-comes-next']])));
  t.regex(got.parent!, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
});

test('with spans exported, a trace the edge starts follows its sampling decision; a client\u2019s valid traceparent keeps its own flag', async (t) => {
  const { forwardTraceparent } = await import('../../../src/identity/index.js');
  t.regex(forwardTraceparent('', true), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'new trace, sampled');
  t.regex(forwardTraceparent('', false), /-00$/, 'new trace, not sampled');
  t.regex(forwardTraceparent('00-zz-bad', true), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'an invalid one is replaced by a sampled new trace');
  const client = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
  t.regex(forwardTraceparent(client, true), /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-00$/, 'the client decided: not sampled');
});
