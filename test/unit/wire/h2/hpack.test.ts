import test from 'ava';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_NO_INDEX,
  DEFAULT_SENSITIVE,
  HpackDecoder,
  HpackEncoder,
  type DecodeResult,
  type HpackEncoderOptions,
} from '../../../../wire/h2/hpack.js';
import { STATIC_NAMES, STATIC_VALUES } from '../../../../wire/h2/static-table.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Seeded PRNG (mulberry32): failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ok(headers: string[]): DecodeResult {
  return { ok: true, headers };
}

function errorOf(r: DecodeResult): string {
  return r.ok ? 'ok' : r.error;
}

/** Options that make our encoder take the RFC examples' choices (index everything, no sensitive list). */
const RFC_CHOICES: HpackEncoderOptions = { noIndex: [], sensitive: {} };

interface Step {
  block: string;
  /** Our encoder's bytes where its policy legitimately differs from the RFC's choice. */
  encoded?: string;
  headers: string[];
  table: Array<[string, string]>;
  size: number;
}

/**
 * Runs an RFC 7541 Appendix C sequence: the decoder must produce the listed
 * headers and dynamic tables; our encoder, making the same choices, must
 * produce the same bytes, and its table must match too.
 */
function rfcSequence(t: import('ava').ExecutionContext, tableSize: number, huffman: boolean, steps: Step[]): void {
  const dec = new HpackDecoder(tableSize);
  const enc = new HpackEncoder(tableSize, { ...RFC_CHOICES, huffman });
  steps.forEach((step, i) => {
    t.deepEqual(dec.decode(hex(step.block)), ok(step.headers), `decode step ${i + 1}`);
    t.deepEqual(dec.tableEntries(), step.table, `decoder table after step ${i + 1}`);
    t.is(dec.tableSize, step.size, `decoder table size after step ${i + 1}`);
    t.is(enc.encode(step.headers).toString('hex'), hex(step.encoded ?? step.block).toString('hex'), `encode step ${i + 1}`);
    t.deepEqual(enc.tableEntries(), step.table, `encoder table after step ${i + 1}`);
    t.is(enc.tableSize, step.size, `encoder table size after step ${i + 1}`);
  });
}

// ---------------------------------------------------------------------------
// RFC 7541 Appendix C

test('static table: 61 entries, spot checks from Appendix A', (t) => {
  t.is(STATIC_NAMES.length, 62);
  t.is(STATIC_NAMES[1], ':authority');
  t.is(STATIC_VALUES[2], 'GET');
  t.is(STATIC_VALUES[16], 'gzip, deflate');
  t.is(STATIC_NAMES[32], 'cookie');
  t.is(STATIC_NAMES[55], 'set-cookie');
  t.is(STATIC_NAMES[61], 'www-authenticate');
});

test('C.1 integers: 10 and 1337 with a 5-bit prefix (as table size updates), 42 on an octet boundary', (t) => {
  const enc = new HpackEncoder(4096);
  enc.setMaxTableSize(10);
  t.deepEqual(enc.encode([]), hex('2a'), 'C.1.1');
  enc.setMaxTableSize(1337);
  t.deepEqual(enc.encode([]), hex('3f9a0a'), 'C.1.2');

  const dec = new HpackDecoder(4096);
  t.deepEqual(dec.decode(hex('2a')), ok([]));
  t.is(dec.tableMaxSize, 10);
  t.deepEqual(dec.decode(hex('3f9a0a')), ok([]));
  t.is(dec.tableMaxSize, 1337);

  // C.1.3: 42 fits the 7-bit string-length prefix and is the octet 2a.
  const raw = new HpackEncoder(4096, { huffman: false, noIndex: ['x'] });
  const block = raw.encode(['x', 'v'.repeat(42)]);
  t.deepEqual(block.subarray(0, 4), hex('00 01 78 2a'));
  t.deepEqual(new HpackDecoder().decode(block), ok(['x', 'v'.repeat(42)]));
});

test('C.2.1 literal header field with indexing', (t) => {
  rfcSequence(t, 4096, false, [
    {
      block: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572',
      headers: ['custom-key', 'custom-header'],
      table: [['custom-key', 'custom-header']],
      size: 55,
    },
  ]);
});

test('C.2.2 literal header field without indexing', (t) => {
  const block = hex('040c 2f73 616d 706c 652f 7061 7468');
  const dec = new HpackDecoder();
  t.deepEqual(dec.decode(block), ok([':path', '/sample/path']));
  t.deepEqual(dec.tableEntries(), []);
  // :path is in DEFAULT_NO_INDEX, so our encoder makes the same choice.
  const enc = new HpackEncoder(4096, { huffman: false });
  t.deepEqual(enc.encode([':path', '/sample/path']), block);
  t.is(enc.tableSize, 0);
});

test('C.2.3 literal header field never indexed', (t) => {
  const block = hex('1008 7061 7373 776f 7264 0673 6563 7265 74');
  const dec = new HpackDecoder();
  t.deepEqual(dec.decode(block), ok(['password', 'secret']));
  t.deepEqual(dec.tableEntries(), []);
  const enc = new HpackEncoder(4096, { huffman: false, sensitive: { password: Infinity } });
  t.deepEqual(enc.encode(['password', 'secret']), block);
  t.is(enc.tableSize, 0);
});

test('C.2.4 indexed header field', (t) => {
  const dec = new HpackDecoder();
  t.deepEqual(dec.decode(hex('82')), ok([':method', 'GET']));
  t.deepEqual(dec.tableEntries(), []);
  t.deepEqual(new HpackEncoder().encode([':method', 'GET']), hex('82'));
});

const REQ1 = [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'];
const REQ2 = [...REQ1, 'cache-control', 'no-cache'];
const REQ3 = [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'];
const REQ_TABLES: Array<Array<[string, string]>> = [
  [[':authority', 'www.example.com']],
  [
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ],
  [
    ['custom-key', 'custom-value'],
    ['cache-control', 'no-cache'],
    [':authority', 'www.example.com'],
  ],
];

test('C.3 requests without Huffman', (t) => {
  rfcSequence(t, 4096, false, [
    { block: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', headers: REQ1, table: REQ_TABLES[0]!, size: 57 },
    { block: '8286 84be 5808 6e6f 2d63 6163 6865', headers: REQ2, table: REQ_TABLES[1]!, size: 110 },
    {
      block: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
      headers: REQ3,
      table: REQ_TABLES[2]!,
      size: 164,
    },
  ]);
});

test('C.4 requests with Huffman', (t) => {
  rfcSequence(t, 4096, true, [
    { block: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', headers: REQ1, table: REQ_TABLES[0]!, size: 57 },
    { block: '8286 84be 5886 a8eb 1064 9cbf', headers: REQ2, table: REQ_TABLES[1]!, size: 110 },
    {
      block: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
      headers: REQ3,
      table: REQ_TABLES[2]!,
      size: 164,
    },
  ]);
});

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOC = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESP1 = [':status', '302', 'cache-control', 'private', 'date', DATE1, 'location', LOC];
const RESP2 = [':status', '307', 'cache-control', 'private', 'date', DATE1, 'location', LOC];
const RESP3 = [':status', '200', 'cache-control', 'private', 'date', DATE2, 'location', LOC, 'content-encoding', 'gzip', 'set-cookie', COOKIE];
const RESP_TABLES: Array<Array<[string, string]>> = [
  [
    ['location', LOC],
    ['date', DATE1],
    ['cache-control', 'private'],
    [':status', '302'],
  ],
  [
    [':status', '307'],
    ['location', LOC],
    ['date', DATE1],
    ['cache-control', 'private'],
  ],
  [
    ['set-cookie', COOKIE],
    ['content-encoding', 'gzip'],
    ['date', DATE2],
  ],
];

test('C.5 responses without Huffman, table size 256, with eviction', (t) => {
  rfcSequence(t, 256, false, [
    {
      block: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
              2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
              6c65 2e63 6f6d`,
      headers: RESP1,
      table: RESP_TABLES[0]!,
      size: 222,
    },
    { block: '4803 3330 37c1 c0bf', headers: RESP2, table: RESP_TABLES[1]!, size: 222 },
    {
      block: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
              54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
              5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
              3d31`,
      headers: RESP3,
      table: RESP_TABLES[2]!,
      size: 215,
    },
  ]);
});

test('C.6 responses with Huffman, table size 256, with eviction', (t) => {
  rfcSequence(t, 256, true, [
    {
      block: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
              2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      headers: RESP1,
      table: RESP_TABLES[0]!,
      size: 222,
    },
    {
      block: '4883 640e ffc1 c0bf',
      // '307' is 3 octets either way; we Huffman-code only when strictly shorter.
      encoded: '4803 3330 37c1 c0bf',
      headers: RESP2,
      table: RESP_TABLES[1]!,
      size: 222,
    },
    {
      block: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
              77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
              9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      headers: RESP3,
      table: RESP_TABLES[2]!,
      size: 215,
    },
  ]);
});

test('C.3–C.6 with the default encoder: bytes differ where policy differs, but decode back', (t) => {
  for (const [size, lists] of [
    [4096, [REQ1, REQ2, REQ3]],
    [256, [RESP1, RESP2, RESP3]],
  ] as const) {
    const enc = new HpackEncoder(size);
    const dec = new HpackDecoder(size);
    for (const list of lists) {
      t.deepEqual(dec.decode(enc.encode(list)), ok([...list]));
      t.deepEqual(dec.tableEntries(), enc.tableEntries());
    }
  }
});

// ---------------------------------------------------------------------------
// Random round trips

const NAME_POOL = [
  ...STATIC_NAMES.slice(1),
  'x-mezu-assertion',
  'x-mezu-user-id',
  'x-mezu-request-id',
  'x-custom',
  'x-a',
  'password',
];
const VALUE_POOL = ['', 'GET', '/', 'gzip, deflate', 'no-cache', '200', 'same-value', 'x'.repeat(100)];

function randomString(rnd: () => number, maxLen: number, alphabet: number): string {
  const len = Math.floor(rnd() * (maxLen + 1));
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(Math.floor(rnd() * alphabet));
  return s;
}

function randomName(rnd: () => number): string {
  const r = rnd();
  if (r < 0.6) return NAME_POOL[Math.floor(rnd() * NAME_POOL.length)]!;
  if (r < 0.62) return '';
  let s = '';
  const len = 1 + Math.floor(rnd() * 20);
  for (let i = 0; i < len; i++) s += String.fromCharCode(97 + Math.floor(rnd() * 26));
  return s;
}

function randomValue(rnd: () => number): string {
  const r = rnd();
  if (r < 0.4) return VALUE_POOL[Math.floor(rnd() * VALUE_POOL.length)]!;
  if (r < 0.45) return '';
  if (r < 0.5) return randomString(rnd, 5000, 256); // long, often over 3/4 of the table
  if (r < 0.75) return randomString(rnd, 40, 256); // every byte value 0–255, as latin1
  return randomString(rnd, 40, 128);
}

function randomList(rnd: () => number, previous: string[]): string[] {
  const out: string[] = [];
  const n = Math.floor(rnd() * 16);
  for (let i = 0; i < n; i++) {
    if (previous.length > 0 && rnd() < 0.3) {
      // Repeat a field from the previous list: exercises dynamic exact matches.
      const j = Math.floor(rnd() * (previous.length / 2)) * 2;
      out.push(previous[j]!, previous[j + 1]!);
    } else {
      out.push(randomName(rnd), randomValue(rnd));
    }
  }
  return out;
}

const ENCODER_VARIANTS: Array<[string, HpackEncoderOptions]> = [
  ['defaults', {}],
  ['no huffman', { huffman: false }],
  ['index everything', { noIndex: [], sensitive: {} }],
  ['everything sensitive', { sensitive: Object.fromEntries(NAME_POOL.map((n) => [n, Infinity])) }],
];

for (const tableSize of [0, 64, 256, 4096]) {
  test(`fuzz round trip: encoder → decoder, table size ${tableSize}, with size changes`, (t) => {
    for (const [label, options] of ENCODER_VARIANTS) {
      const rnd = prng(tableSize * 31 + label.length);
      const enc = new HpackEncoder(tableSize, options);
      const dec = new HpackDecoder(tableSize, 1 << 30);
      let previous: string[] = [];
      for (let i = 0; i < 1500; i++) {
        if (rnd() < 0.02) {
          // The peer (our decoder's owner) changes SETTINGS_HEADER_TABLE_SIZE;
          // the ack reaches the decoder, the setting reaches the encoder.
          const n = [0, 32, 100, tableSize, 4096, 8192][Math.floor(rnd() * 6)]!;
          enc.setMaxTableSize(n);
          dec.setMaxTableSize(n);
        }
        const list = randomList(rnd, previous);
        previous = list;
        const block = enc.encode(list);
        const r = dec.decode(block);
        if (!r.ok || r.headers.length !== list.length || r.headers.some((h, k) => h !== list[k])) {
          t.fail(`${label} #${i}: ${JSON.stringify(r).slice(0, 300)} for ${JSON.stringify(list).slice(0, 300)}`);
          return;
        }
        if (enc.tableSize !== dec.tableSize || enc.tableMaxSize !== dec.tableMaxSize) {
          t.fail(`${label} #${i}: table sizes diverged: encoder ${enc.tableSize}/${enc.tableMaxSize}, decoder ${dec.tableSize}/${dec.tableMaxSize}`);
          return;
        }
      }
      t.deepEqual(dec.tableEntries(), enc.tableEntries(), label);
    }
  });
}

test('table size 256: encoder and decoder tables stay identical entry by entry over a long random sequence', (t) => {
  const rnd = prng(256);
  const enc = new HpackEncoder(256, { noIndex: [], sensitive: {} });
  const dec = new HpackDecoder(256, 1 << 30);
  let evictions = 0;
  let previous: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const list = randomList(rnd, previous).map((s) => (s.length > 60 ? s.slice(0, 60) : s));
    previous = list;
    const before = enc.tableEntries().length;
    t.deepEqual(dec.decode(enc.encode(list)), ok(list));
    const encTable = enc.tableEntries();
    if (encTable.length < before) evictions++;
    if (JSON.stringify(encTable) !== JSON.stringify(dec.tableEntries())) {
      t.fail(`tables diverged at #${i}`);
      return;
    }
    t.true(enc.tableSize <= 256);
  }
  t.true(evictions > 100, `only ${evictions} evictions`);
});

test('encodeView leaves headroom and matches encode byte for byte', (t) => {
  const rnd = prng(9);
  const a = new HpackEncoder();
  const b = new HpackEncoder();
  let previous: string[] = [];
  for (let i = 0; i < 300; i++) {
    const list = randomList(rnd, previous);
    previous = list;
    const owned = a.encode(list);
    const view = b.encodeView(list, 9);
    t.deepEqual(view.subarray(9), owned);
  }
});

// ---------------------------------------------------------------------------
// Encoder policy

const JWT = `eyJhbGciOiJFZERTQSJ9.${'a'.repeat(700)}.${'b'.repeat(86)}`;

test('x-mezu-assertion is indexed: sent once per connection, then one byte', (t) => {
  // The request id is unique per request: indexing it would push the
  // assertion out of the 4 KiB table every ~60 requests (the next test).
  const enc = new HpackEncoder(4096, { noIndex: [...DEFAULT_NO_INDEX, 'x-mezu-request-id'] });
  const dec = new HpackDecoder();
  const head = (path: string, id: string): string[] => [
    ':method', 'GET', ':scheme', 'https', ':authority', 'app.example', ':path', path,
    'x-mezu-assertion', JWT, 'x-mezu-user-id', 'u-1', 'x-mezu-request-id', id,
  ];
  const first = enc.encode(head('/a', 'r1'));
  t.true(first.length > 500);
  t.deepEqual(dec.decode(first), ok(head('/a', 'r1')));
  for (let i = 2; i < 200; i++) {
    const block = enc.encode(head(`/p/${i}`, `r${i}`));
    t.true(block.length < 40, `request ${i} took ${block.length} bytes`);
    t.deepEqual(dec.decode(block), ok(head(`/p/${i}`, `r${i}`)));
  }
  // :path stays out of the table (DEFAULT_NO_INDEX), so it never evicts the assertion.
  t.false(enc.tableEntries().some(([n]) => n === ':path'));
});

test('a unique-per-request header left indexable evicts the assertion periodically (why noIndex matters)', (t) => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  let resent = 0;
  for (let i = 0; i < 200; i++) {
    const list = [':method', 'GET', 'x-mezu-assertion', JWT, 'x-mezu-request-id', `req-${i}-0123456789`];
    const block = enc.encode(list);
    if (block.length > 500) resent++;
    t.deepEqual(dec.decode(block), ok(list));
  }
  t.true(resent > 1, `assertion sent ${resent} times`);
});

test('sensitive headers go out never-indexed and stay out of the table', (t) => {
  const enc = new HpackEncoder(4096, { huffman: false });
  const dec = new HpackDecoder();
  for (const [name, value] of [
    ['authorization', 'Bearer abc'],
    ['proxy-authorization', 'Basic xyz'],
    ['set-cookie', 'sid=1; Secure'],
    ['cookie', 'sid=short'],
  ] as const) {
    const block = enc.encode([name, value]);
    t.is(block[0]! & 0xf0, 0x10, `${name} never indexed`);
    t.deepEqual(dec.decode(block), ok([name, value]));
    // Twice: still a literal, never an index.
    t.is(enc.encode([name, value])[0]! & 0xf0, 0x10);
  }
  t.deepEqual(enc.tableEntries(), []);
  // A cookie of 20 bytes or more is not guessable (§7.1.3): indexed.
  const long = 'session=0123456789abcdef';
  t.is(enc.encode(['cookie', long])[0]! & 0xc0, 0x40);
  t.deepEqual(enc.encode(['cookie', long]), hex('be'));
  t.deepEqual(DEFAULT_SENSITIVE, { authorization: Infinity, 'proxy-authorization': Infinity, 'set-cookie': Infinity, cookie: 20 });
});

test('sensitive list is a constructor option', (t) => {
  const enc = new HpackEncoder(4096, { sensitive: { 'x-secret': Infinity } });
  t.is(enc.encode(['x-secret', 'hunter2'])[0], 0x10);
  // authorization is no longer on the list: indexed.
  enc.encode(['authorization', 'Bearer abc']);
  t.deepEqual(enc.encode(['authorization', 'Bearer abc']), hex('be'));
});

test('noIndex fields and entries over 3/4 of the table are literals without indexing', (t) => {
  const enc = new HpackEncoder(256);
  for (const name of DEFAULT_NO_INDEX) {
    const block = enc.encode([name, 'v1']);
    t.is(block[0]! & 0xf0, 0x00, name);
  }
  t.is(enc.tableSize, 0);
  const big = 'v'.repeat(200); // 1 + 200 + 32 > 192
  t.is(enc.encode(['x', big])[0], 0x00);
  t.is(enc.tableSize, 0);
  const fits = 'v'.repeat(150);
  t.is(enc.encode(['x', fits])[0], 0x40);
  t.is(enc.tableSize, 183);
});

test('encoder forgets names whose entries were all evicted (no growth with unique names)', (t) => {
  const enc = new HpackEncoder(256);
  const dec = new HpackDecoder(256);
  for (let i = 0; i < 5000; i++) {
    const list = [`x-unique-${i}`, 'v'];
    t.deepEqual(dec.decode(enc.encode(list)), ok(list));
  }
  // Private, read only here: the per-name records are the leak risk.
  const names = (enc as unknown as { names: Map<string, unknown> }).names;
  t.true(names.size <= 61 + Object.keys(DEFAULT_SENSITIVE).length + DEFAULT_NO_INDEX.length + enc.tableEntries().length, `${names.size} name records`);
});

test('table size 0: nothing is ever indexed, output still decodes', (t) => {
  const enc = new HpackEncoder(0);
  const dec = new HpackDecoder(0);
  const list = ['x-mezu-assertion', JWT, 'accept', 'text/html', ':method', 'POST'];
  for (let i = 0; i < 3; i++) t.deepEqual(dec.decode(enc.encode(list)), ok(list));
  t.deepEqual(enc.tableEntries(), []);
  t.deepEqual(dec.tableEntries(), []);
});

test('several table size changes between blocks signal the smallest, then the final (RFC 7541 §4.2)', (t) => {
  const enc = new HpackEncoder();
  const dec = new HpackDecoder();
  enc.encode(['x-a', 'one']);
  dec.decode(hex('40 03 782d61 03 6f6e65'));
  enc.setMaxTableSize(0);
  enc.setMaxTableSize(4096);
  t.deepEqual(enc.encode([]), hex('20 3fe11f'));
  t.deepEqual(enc.tableEntries(), []);
  t.deepEqual(dec.decode(hex('20 3fe11f')), ok([]));
  t.deepEqual(dec.tableEntries(), []);
  // Own cap below the peer's setting: announced in the first block.
  const capped = new HpackEncoder(65536, { maxDynamicTableSize: 1024 });
  t.deepEqual(capped.encode([':method', 'GET']), hex('3fe107 82'));
});

test('encoder refuses an odd-length list or non-string entries before touching its state', (t) => {
  const enc = new HpackEncoder();
  t.throws(() => enc.encode(['x-a']), { instanceOf: TypeError });
  // A JS caller passing a number (content-length: 12) must not half-encode a block.
  t.throws(() => enc.encode(['x-ok', 'fine', 'content-length', 12 as unknown as string]), { instanceOf: TypeError });
  t.deepEqual(enc.tableEntries(), []);
  t.deepEqual(new HpackDecoder().decode(enc.encode(['x-a', 'b'])), ok(['x-a', 'b']));
});

// ---------------------------------------------------------------------------
// Adversarial decoder inputs. Each is a connection error (RFC 9113 §4.3).

function compressionError(t: import('ava').ExecutionContext, block: string, why: string, dec = new HpackDecoder()): void {
  const r = dec.decode(hex(block));
  t.is(errorOf(r), 'COMPRESSION_ERROR', why);
  if (!r.ok) t.regex(r.reason, /^hpack: /, why);
}

test('rejects index 0 and indices past the dynamic table', (t) => {
  compressionError(t, '80', 'indexed field with index 0 (§6.1)');
  compressionError(t, 'be', 'index 62 with an empty dynamic table');
  compressionError(t, '7e 01 61', 'literal name index 62 with an empty dynamic table');
  compressionError(t, '0f 30 01 61', 'literal without indexing, name index 63');
  const dec = new HpackDecoder();
  t.deepEqual(dec.decode(hex('40 01 61 01 62')), ok(['a', 'b']));
  t.deepEqual(dec.decode(hex('be')), ok(['a', 'b']));
  compressionError(t, 'bf', 'index 63 with one dynamic entry', dec);
  compressionError(t, 'ff ff ff ff ff 07', 'index 2^31 - 1 (in range for an integer, not for the table)');
});

test('rejects table size updates above the SETTINGS limit or after a field', (t) => {
  t.deepEqual(new HpackDecoder(4096).decode(hex('3fe11f 82')), ok([':method', 'GET']), 'exactly the limit is fine');
  compressionError(t, '3fe21f', 'size update to 4097 with a 4096 limit');
  compressionError(t, '3fe11f', 'size update to 4096 with a 256 limit', new HpackDecoder(256));
  compressionError(t, '82 20', 'size update after a field (§4.2)');
  t.deepEqual(new HpackDecoder().decode(hex('20 3f11 82')), ok([':method', 'GET']), 'two updates at the start are fine');
});

test('after we lower SETTINGS_HEADER_TABLE_SIZE the next block must open with a size update', (t) => {
  const dec = new HpackDecoder(4096);
  t.deepEqual(dec.decode(hex('40 01 61 01 62')), ok(['a', 'b']));
  dec.setMaxTableSize(100);
  compressionError(t, '82', 'no size update after the limit dropped', dec);
  const dec2 = new HpackDecoder(4096);
  dec2.decode(hex('40 01 61 01 62'));
  dec2.setMaxTableSize(100);
  t.deepEqual(dec2.decode(hex('3f45 be')), ok(['a', 'b']), 'update to 100, then the entry is still there');
  t.deepEqual(dec2.decode(hex('82')), ok([':method', 'GET']), 'only the first block needs it');
  // Raising the limit needs no update.
  const dec3 = new HpackDecoder(4096);
  dec3.setMaxTableSize(8192);
  t.deepEqual(dec3.decode(hex('82')), ok([':method', 'GET']));
});

test('rejects truncated integers and strings', (t) => {
  compressionError(t, 'ff', 'indexed field, prefix full, no continuation');
  compressionError(t, 'ff 80', 'continuation bit set on the last octet');
  compressionError(t, '3f', 'size update, prefix full, nothing after');
  compressionError(t, '40', 'literal with new name, no name');
  compressionError(t, '40 05 61', 'name shorter than its length');
  compressionError(t, '40 01 61', 'name but no value');
  compressionError(t, '00 01 61 03 62', 'value shorter than its length');
  compressionError(t, '41', 'indexed name, no value');
  compressionError(t, '41 7f', 'value length prefix full, no continuation');
  compressionError(t, '41 85 ff', 'Huffman value shorter than its length');
});

test('rejects integer overflow and over-long integer encodings', (t) => {
  compressionError(t, '7f' + 'ff'.repeat(20), '0x7f followed by many 0xff');
  compressionError(t, 'ff ff ff ff ff 0f', 'index just over 2^31');
  compressionError(t, '3f ff ff ff ff ff ff ff ff 7f', 'size update of about 2^63');
  compressionError(t, 'ff 80 80 80 80 80 00', 'zero-padded integer of 7 octets');
  compressionError(t, '00 7f ff ff ff ff 07', 'string length 2^31 - 1 past the block end');
  // 5 continuation octets are allowed when the value fits (here a size update to 31).
  const dec = new HpackDecoder();
  t.deepEqual(dec.decode(hex('3f 80 80 80 80 00')), ok([]));
  t.is(dec.tableMaxSize, 31);
});

test('rejects invalid Huffman strings (RFC 7541 §5.2)', (t) => {
  compressionError(t, '00 84 ffffffff 00', 'name is EOS');
  compressionError(t, '00 81 1f 85 1fffffffff', "value 'a' then EOS");
  compressionError(t, '00 82 1fff 00', 'padding over 7 bits');
  compressionError(t, '00 81 18 00', 'zero-bit padding');
  compressionError(t, '41 81 1e', 'padding not all ones');
  t.deepEqual(new HpackDecoder().decode(hex('00 81 1f 81 1f')), ok(['a', 'a']), 'the valid forms');
});

test('a compression error poisons the decoder: the connection is gone', (t) => {
  const dec = new HpackDecoder();
  t.is(errorOf(dec.decode(hex('80'))), 'COMPRESSION_ERROR');
  t.is(errorOf(dec.decode(hex('82'))), 'COMPRESSION_ERROR');
});

test('header list over the limit: HEADER_LIST_TOO_LARGE, table kept in step, decoder still usable', (t) => {
  // Story: a peer sending a header list over our SETTINGS_MAX_HEADER_LIST_SIZE
  // costs one stream (431/RST_STREAM), not the connection; but the fields it
  // inserted must still land in our table or the next block's indices break.
  const enc = new HpackEncoder();
  const dec = new HpackDecoder(4096, 150);
  const big = ['x-a', 'a'.repeat(40), 'x-b', 'b'.repeat(40), 'x-c', 'c'.repeat(40)]; // 3 × 75 = 225
  const r = dec.decode(enc.encode(big));
  t.is(errorOf(r), 'HEADER_LIST_TOO_LARGE');
  if (!r.ok) t.regex(r.reason, /150/);
  t.deepEqual(dec.tableEntries(), enc.tableEntries());
  t.is(dec.tableEntries().length, 3);
  // Next block references the entries inserted past the limit.
  t.deepEqual(dec.decode(enc.encode(['x-c', 'c'.repeat(40), 'x-a', 'a'.repeat(40)])), ok(['x-c', 'c'.repeat(40), 'x-a', 'a'.repeat(40)]));
  // Exactly at the limit is allowed: 2 × 75 = 150.
  t.true(dec.decode(enc.encode(big.slice(0, 4))).ok);
  dec.setMaxHeaderListSize(149);
  t.is(errorOf(dec.decode(enc.encode(big.slice(0, 4)))), 'HEADER_LIST_TOO_LARGE');
});

test('decoder never throws on random or mutated input', (t) => {
  const rnd = prng(1234);
  const enc = new HpackEncoder();
  const valid: Buffer[] = [];
  let previous: string[] = [];
  for (let i = 0; i < 200; i++) {
    previous = randomList(rnd, previous);
    valid.push(enc.encode(previous));
  }
  let errors = 0;
  for (let i = 0; i < 20000; i++) {
    let block: Buffer;
    if (i % 2 === 0) {
      block = Buffer.alloc(Math.floor(rnd() * 40));
      for (let j = 0; j < block.length; j++) block[j] = Math.floor(rnd() * 256);
    } else {
      block = Buffer.from(valid[Math.floor(rnd() * valid.length)]!);
      const flips = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < flips && block.length > 0; k++) block[Math.floor(rnd() * block.length)] = Math.floor(rnd() * 256);
      if (rnd() < 0.3) block = block.subarray(0, Math.floor(rnd() * block.length));
    }
    const dec = new HpackDecoder(4096, 1 << 20);
    let r: DecodeResult;
    try {
      r = dec.decode(block);
    } catch (err) {
      t.fail(`threw on ${block.toString('hex')}: ${String(err)}`);
      return;
    }
    if (!r.ok) {
      errors++;
      if (r.reason.includes('internal error')) {
        t.fail(`internal error on ${block.toString('hex')}: ${r.reason}`);
        return;
      }
    }
  }
  t.true(errors > 1000);
});

// ---------------------------------------------------------------------------
// Interop with Node's HPACK (nghttp2): a node:http2 client talks to a
// hand-rolled HTTP/2 server that decodes requests with HpackDecoder and
// encodes responses with HpackEncoder.

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const FRAME_HEADERS = 0x1;
const FRAME_SETTINGS = 0x4;
const FRAME_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** A printable-or-latin1 value Node accepts: no CR/LF/NUL, no leading/trailing space. */
function interopValue(rnd: () => number): string {
  const len = 1 + Math.floor(rnd() * 30);
  let s = '';
  for (let i = 0; i < len; i++) {
    const r = rnd();
    const c = r < 0.7 ? 0x21 + Math.floor(rnd() * 94) : r < 0.8 ? 0x20 : 0x80 + Math.floor(rnd() * 128);
    s += String.fromCharCode(c);
  }
  return s.trim() === s && s.length > 0 ? s : `v${s.trim()}v`;
}

test('interop with node:http2 both ways: its requests decode, our responses decode in Node', async (t) => {
  const rnd = prng(2024);
  const ANNOUNCED_TABLE_SIZE = 256; // forces nghttp2's encoder to shrink and signal it
  const received = new Map<string, string[]>();
  const sent = new Map<string, string[]>();
  const failures: string[] = [];

  const server = net.createServer((socket) => {
    const dec = new HpackDecoder(4096, 1 << 20);
    const enc = new HpackEncoder();
    let buf = Buffer.alloc(0);
    let prefaceSeen = false;
    let block: Buffer[] = [];
    let blockStream = 0;
    // SETTINGS_HEADER_TABLE_SIZE (0x1) = 256.
    const settings = Buffer.alloc(6);
    settings.writeUInt16BE(0x1, 0);
    settings.writeUInt32BE(ANNOUNCED_TABLE_SIZE, 2);
    socket.write(frame(FRAME_SETTINGS, 0, 0, settings));

    const onBlock = (stream: number, data: Buffer): void => {
      const r = dec.decode(data);
      if (!r.ok) {
        failures.push(`decode: ${r.reason}`);
        socket.destroy();
        return;
      }
      const seq = r.headers[r.headers.indexOf('x-seq') + 1]!;
      received.set(seq, r.headers);
      const response = [':status', '200', 'x-seq', seq, 'x-mezu-assertion', JWT, 'server', 'mezu-test'];
      for (let i = 0; i < 4; i++) response.push(`x-resp-${i}`, interopValue(rnd));
      if (rnd() < 0.3) response.push('set-cookie', 'sid=abc; Secure');
      sent.set(seq, response);
      socket.write(frame(FRAME_HEADERS, FLAG_END_STREAM | FLAG_END_HEADERS, stream, enc.encode(response)));
    };

    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!prefaceSeen) {
        if (buf.length < PREFACE.length) return;
        if (buf.subarray(0, PREFACE.length).toString('latin1') !== PREFACE) {
          failures.push('bad preface');
          socket.destroy();
          return;
        }
        buf = buf.subarray(PREFACE.length);
        prefaceSeen = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        let payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === FRAME_SETTINGS) {
          if ((flags & FLAG_ACK) !== 0) {
            // Our SETTINGS are acknowledged: the peer's encoder is now bound by them.
            dec.setMaxTableSize(ANNOUNCED_TABLE_SIZE);
          } else {
            for (let o = 0; o + 6 <= payload.length; o += 6) {
              if (payload.readUInt16BE(o) === 0x1) enc.setMaxTableSize(payload.readUInt32BE(o + 2));
            }
            socket.write(frame(FRAME_SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
          }
        } else if (type === FRAME_HEADERS || type === FRAME_CONTINUATION) {
          if (type === FRAME_HEADERS) {
            let start = 0;
            let end = payload.length;
            if ((flags & FLAG_PADDED) !== 0) {
              end -= payload[0]!;
              start = 1;
            }
            if ((flags & FLAG_PRIORITY) !== 0) start += 5;
            payload = payload.subarray(start, end);
            block = [];
            blockStream = stream;
          }
          block.push(payload);
          if ((flags & FLAG_END_HEADERS) !== 0) onBlock(blockStream, Buffer.concat(block));
        }
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on('error', (err) => failures.push(`client: ${String(err)}`));

  const requests = new Map<string, Record<string, string>>();
  const responses = new Map<string, http2.IncomingHttpHeaders>();
  try {
    for (let i = 0; i < 150; i++) {
      const seq = String(i);
      const headers: Record<string, string> = {
        ':method': 'GET',
        ':path': `/items/${i}?q=${interopValue(rnd).replace(/[^a-z0-9]/gi, '')}`,
        'x-seq': seq,
        'x-mezu-assertion': JWT,
        'user-agent': 'interop-test',
      };
      for (let k = 0; k < 3; k++) headers[`x-req-${Math.floor(rnd() * 6)}`] = rnd() < 0.5 ? 'repeated-value' : interopValue(rnd);
      requests.set(seq, headers);
      const res = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = client.request(headers, { endStream: true });
        req.on('response', (h) => resolve(h));
        req.on('error', reject);
        req.resume();
      });
      responses.set(seq, res);
    }
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  t.deepEqual(failures, []);
  for (const [seq, headers] of requests) {
    const got = received.get(seq)!;
    const asMap = new Map<string, string>();
    for (let i = 0; i < got.length; i += 2) asMap.set(got[i]!, got[i + 1]!);
    for (const [name, value] of Object.entries(headers)) t.is(asMap.get(name), value, `request ${seq} ${name}`);
    t.is(asMap.get(':scheme'), 'http');
    t.is(asMap.get(':authority'), `127.0.0.1:${port}`);
  }
  for (const [seq, list] of sent) {
    const res = responses.get(seq)!;
    for (let i = 0; i < list.length; i += 2) {
      const want = list[i] === ':status' ? Number(list[i + 1]) : list[i] === 'set-cookie' ? [list[i + 1]] : list[i + 1];
      t.deepEqual(res[list[i]!], want, `response ${seq} ${list[i]}`);
    }
  }
});
