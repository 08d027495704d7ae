import test from 'ava';
import { PARSE_ERROR, PARSE_OK, ResponseParser, type ResponseListener } from '../../../../warpgate/origin/parser.js';

/** Records what the parser reports, in order. */
class Rec implements ResponseListener {
  status = -1;
  headers: string[] | null = null;
  body: Buffer[] = [];
  ends = 0;
  events: string[] = [];
  onResponseHead(status: number, headers: string[]): void {
    this.status = status;
    this.headers = headers;
    this.events.push('head');
  }
  onResponseData(buf: Buffer, start: number, end: number): void {
    // Copy: the parser's buffer may be reused, as the connection's is.
    this.body.push(Buffer.from(buf.subarray(start, end)));
    if (this.events[this.events.length - 1] !== 'data') this.events.push('data');
  }
  onResponseEnd(): void {
    this.ends++;
    this.events.push('end');
  }
  get text(): string {
    return Buffer.concat(this.body).toString('latin1');
  }
}

const LIMITS = { maxHeaderBytes: 16 * 1024, maxHeaderCount: 100 };

function parser(noBody = false, limits = LIMITS): { p: ResponseParser; r: Rec } {
  const r = new Rec();
  const p = new ResponseParser(r, limits);
  p.reset(noBody);
  return { p, r };
}

/** Feeds `parts` one by one, each in a buffer with garbage after `length` (as a reused read buffer has). */
function feed(p: ResponseParser, parts: string[]): number {
  for (const s of parts) {
    const b = Buffer.alloc(s.length + 7, 0x5a);
    b.write(s, 0, 'latin1');
    const rc = p.execute(b, s.length);
    if (rc !== PARSE_OK) return rc;
  }
  return PARSE_OK;
}

function whole(raw: string, noBody = false): { rc: number; p: ResponseParser; r: Rec } {
  const { p, r } = parser(noBody);
  return { rc: feed(p, [raw]), p, r };
}

/** Every split of `raw` into two reads, plus one byte per read, must give the same result as one read. */
function splits(raw: string): string[][] {
  const out: string[][] = [raw.split('')];
  for (let i = 1; i < raw.length; i++) out.push([raw.slice(0, i), raw.slice(i)]);
  return out;
}

const VALID: Array<{ name: string; raw: string; noBody?: boolean; status: number; headers: string[]; body: string; keepAlive: boolean }> = [
  {
    name: 'content-length',
    raw: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello',
    status: 200,
    headers: ['content-type', 'text/plain', 'content-length', '5'],
    body: 'hello',
    keepAlive: true,
  },
  {
    name: 'chunked with extensions and trailers',
    raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=1;b="x y"\r\nhello\r\n6 ; q\r\n world\r\nA\r\n0123456789\r\n0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n',
    status: 200,
    headers: [],
    body: 'hello world0123456789',
    keepAlive: true,
  },
  {
    name: 'interim 100 and 103 skipped',
    raw: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok',
    status: 201,
    headers: ['content-length', '2'],
    body: 'ok',
    keepAlive: true,
  },
  {
    name: 'HEAD ignores the declared length',
    raw: 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n',
    noBody: true,
    status: 200,
    headers: ['content-length', '1000'],
    body: '',
    // A body may follow anyway (uWS does that): the connection is not reused.
    keepAlive: false,
  },
  { name: 'HEAD without a length keeps the connection', raw: 'HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n', noBody: true, status: 200, headers: ['x-a', 'b'], body: '', keepAlive: true },
  { name: '204', raw: 'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n', status: 204, headers: ['content-length', '0'], body: '', keepAlive: true },
  { name: '204 announcing a body', raw: 'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n', status: 204, headers: ['content-length', '7'], body: '', keepAlive: false },
  { name: '304', raw: 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', status: 304, headers: ['etag', '"x"'], body: '', keepAlive: true },
  {
    name: 'connection: close and nominated fields dropped',
    raw: 'HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n',
    status: 200,
    headers: ['content-length', '0'],
    body: '',
    keepAlive: false,
  },
  { name: 'HTTP/1.0 without keep-alive', raw: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi', status: 200, headers: ['content-length', '2'], body: 'hi', keepAlive: false },
  {
    name: 'HTTP/1.0 with keep-alive',
    raw: 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi',
    status: 200,
    headers: ['content-length', '2'],
    body: 'hi',
    keepAlive: true,
  },
  { name: 'no reason phrase, OWS trimmed, empty value', raw: 'HTTP/1.1 404\r\nX-A:  v \t\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n', status: 404, headers: ['x-a', 'v', 'x-empty', '', 'content-length', '0'], body: '', keepAlive: true },
  { name: 'identical Content-Length twice', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc', status: 200, headers: ['content-length', '3'], body: 'abc', keepAlive: true },
  { name: 'a Content-Length list, passed on as one value', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 3 , 3\r\n\r\nabc', status: 200, headers: ['content-length', '3'], body: 'abc', keepAlive: true },
  { name: 'obs-text in a value kept as latin1', raw: 'HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 0\r\n\r\n', status: 200, headers: ['x-name', 'caf\xe9', 'content-length', '0'], body: '', keepAlive: true },
];

for (const v of VALID) {
  test(`parses ${v.name}, in one read and split at every byte`, (t) => {
    for (const parts of splits(v.raw)) {
      const { p, r } = parser(v.noBody ?? false);
      const rc = feed(p, parts);
      const where = `split ${parts.length === v.raw.length ? 'per byte' : `at ${parts[0]!.length}`}`;
      t.is(rc, PARSE_OK, `${where}: ${p.reason}`);
      t.is(r.status, v.status, where);
      t.deepEqual(r.headers, v.headers, where);
      t.is(r.text, v.body, where);
      t.is(r.ends, 1, where);
      t.is(p.keepAlive, v.keepAlive, where);
      t.false(p.active, where);
    }
  });
}

test('close-delimited body ends at EOF and never keeps the connection', (t) => {
  const { rc, p, r } = whole('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome bytes');
  t.is(rc, PARSE_OK);
  t.true(p.closeDelimited);
  t.is(r.ends, 0);
  t.is(feed(p, [' and more']), PARSE_OK);
  t.is(p.finish(), PARSE_OK);
  t.is(r.ends, 1);
  t.is(r.text, 'some bytes and more');
  t.false(p.keepAlive);
});

test('EOF inside a framed body or head is an error', (t) => {
  for (const raw of ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab', 'HTTP/1.1 200 OK\r\nX-A: b', '']) {
    const { p } = parser();
    t.is(feed(p, [raw]), PARSE_OK);
    t.is(p.finish(), PARSE_ERROR, JSON.stringify(raw));
    t.is(p.started, raw.length > 0);
  }
});

test('events come in order: head, data, end', (t) => {
  const { r } = whole('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc');
  t.deepEqual(r.events, ['head', 'data', 'end']);
});

test('Keep-Alive timeout hint is read', (t) => {
  const { p } = whole('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n');
  t.is(p.keepAliveHintMs, 5000);
});

// Each of these would let an origin (or whoever controls part of its output)
// make us read the rest of its bytes as a second response, i.e. as someone
// else's answer on a shared keep-alive connection (RFC 9112 §6.3, §11.2).
const MALFORMED: Array<[string, string, RegExp]> = [
  ['two different Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', /conflicting Content-Length/],
  ['a Content-Length list with different values', 'HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd', /conflicting Content-Length/],
  ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', /both Content-Length and Transfer-Encoding/],
  ['Transfer-Encoding then Content-Length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', /both Content-Length and Transfer-Encoding/],
  ['non-numeric Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 3a\r\n\r\nabc', /invalid Content-Length/],
  ['negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length/],
  ['huge Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n', /invalid Content-Length/],
  ['Transfer-Encoding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /unsupported Transfer-Encoding/],
  ['Transfer-Encoding twice', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', /unsupported Transfer-Encoding/],
  ['Transfer-Encoding on HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /HTTP\/1\.0/],
  ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', /malformed chunk size/],
  ['chunk size with a sign', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n', /malformed chunk size/],
  ['chunk size too large', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n', /chunk size too large/],
  ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n', /chunk data not followed by CRLF/],
  ['chunk-size line with bare LF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n', /malformed chunk size/],
  ['bare LF ending a header line', 'HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 0\r\n\r\n', /bare CR\/LF/],
  ['bare LF ending the status line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', /malformed status line/],
  ['bare CR inside a value', 'HTTP/1.1 200 OK\r\nX-A: b\rc\r\nContent-Length: 0\r\n\r\n', /bare CR\/LF/],
  ['bare LF ending the head', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n', /bare CR\/LF or missing colon|malformed field name/],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: b\r\n  folded\r\nContent-Length: 0\r\n\r\n', /obs-fold/],
  ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello', /malformed field name/],
  ['empty field name', 'HTTP/1.1 200 OK\r\n: x\r\n\r\n', /malformed field name/],
  ['NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: b\x00c\r\n\r\n', /control character/],
  ['not HTTP', 'SSH-2.0-OpenSSH\r\n', /not an HTTP\/1\.x response|malformed status line/],
  ['HTTP/2 status line', 'HTTP/2 200\r\n\r\n', /not an HTTP\/1\.x response|malformed status line/],
  ['status code out of range', 'HTTP/1.1 600 Nope\r\n\r\n', /malformed status code/],
  ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', /malformed status/],
  ['101 never asked for', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', /101/],
  ['bytes after the response', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n', /after the end of the response/],
  ['obs-fold in trailers', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n', /obs-fold in trailers/],
];

for (const [name, raw, reason] of MALFORMED) {
  test(`rejects ${name}`, (t) => {
    for (const parts of [[raw], raw.split('')]) {
      const { p } = parser();
      t.is(feed(p, parts), PARSE_ERROR, `${parts.length === 1 ? 'one read' : 'byte by byte'}: no error`);
      t.regex(p.reason, reason);
      t.false(p.active);
    }
  });
}

test('rejects a head larger than the limit, even when it never ends', (t) => {
  const limits = { maxHeaderBytes: 1024, maxHeaderCount: 100 };
  const { p } = parser(false, limits);
  t.is(feed(p, ['HTTP/1.1 200 OK\r\nX-Big: ' + 'a'.repeat(2000)]), PARSE_ERROR);
  t.regex(p.reason, /head too large/);
  const q = parser(false, limits).p;
  const many = 'HTTP/1.1 200 OK\r\n' + 'X-A: 0123456789\r\n'.repeat(100) + '\r\n';
  t.is(feed(q, many.match(/[\s\S]{1,50}/g)!), PARSE_ERROR);
  t.regex(q.reason, /head too large/);
});

test('rejects too many header fields', (t) => {
  const { p } = parser(false, { maxHeaderBytes: 64 * 1024, maxHeaderCount: 10 });
  t.is(feed(p, ['HTTP/1.1 200 OK\r\n' + 'X-A: b\r\n'.repeat(11) + '\r\n']), PARSE_ERROR);
  t.regex(p.reason, /too many response header fields/);
});

test('bounds chunk extensions and trailers', (t) => {
  const a = parser().p;
  t.is(feed(a, ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;' + 'e'.repeat(5000) + '\r\n']), PARSE_ERROR);
  t.regex(a.reason, /chunk-size line too long/);
  const b = parser(false, { maxHeaderBytes: 1024, maxHeaderCount: 100 }).p;
  t.is(feed(b, ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n', ...Array<string>(100).fill('X-T: 0123456789\r\n')]), PARSE_ERROR);
  t.regex(b.reason, /trailers too large/);
});

test('too many interim responses is an error', (t) => {
  const { p } = parser();
  t.is(feed(p, ['HTTP/1.1 103 Early Hints\r\n\r\n'.repeat(17)]), PARSE_ERROR);
  t.regex(p.reason, /too many 1xx/);
});

test('reset makes the parser ready for the next response on the same connection', (t) => {
  const { p, r } = parser();
  t.is(feed(p, ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na']), PARSE_OK);
  p.reset(false);
  t.true(p.awaitingHead);
  t.false(p.started);
  t.is(feed(p, ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n']), PARSE_OK);
  t.is(r.text, 'ab');
  t.is(r.ends, 2);
});

test('stop() ignores the rest of the buffer', (t) => {
  const r = new Rec();
  let p: ResponseParser | null = null;
  r.onResponseHead = function (this: Rec) {
    p!.stop();
  };
  p = new ResponseParser(r, LIMITS);
  p.reset(false);
  t.is(feed(p, ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP garbage']), PARSE_OK);
  t.is(r.body.length, 0);
  t.false(p.active);
});
