import test from 'ava';
import {
  HUFFMAN_CODES,
  HUFFMAN_LENGTHS,
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
} from '../../../../wire/h2/huffman.js';

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

function encode(s: string): Buffer {
  const out = Buffer.alloc(huffmanEncodedLength(s));
  const end = huffmanEncode(s, out, 0);
  if (end !== out.length) throw new Error(`encoded ${end} bytes, predicted ${out.length}`);
  return out;
}

const decodeAll = (b: Buffer): string | null => huffmanDecode(b, 0, b.length);

// The strings of RFC 7541 C.4 and C.6, with their Huffman codings.
const RFC_STRINGS: Array<[string, string]> = [
  ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
  ['no-cache', 'a8eb 1064 9cbf'],
  ['custom-key', '25a8 49e9 5ba9 7d7f'],
  ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
  ['302', '6402'],
  ['307', '640e ff'],
  ['private', 'aec3 771a 4b'],
  ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
  ['Mon, 21 Oct 2013 20:13:22 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff'],
  ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
  ['gzip', '9bd9 ab'],
  [
    'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
    '94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
  ],
];

test('code table: 257 codes, each fits its length, complete and prefix-free (Kraft sum is exactly 1)', (t) => {
  t.is(HUFFMAN_CODES.length, 257);
  t.is(HUFFMAN_LENGTHS.length, 257);
  let kraft = 0; // in units of 2^-30
  for (let s = 0; s <= 256; s++) {
    const len = HUFFMAN_LENGTHS[s]!;
    t.true(len >= 5 && len <= 30, `symbol ${s} length ${len}`);
    t.true(HUFFMAN_CODES[s]! < 2 ** len, `symbol ${s} code wider than ${len} bits`);
    kraft += 2 ** (30 - len);
  }
  t.is(kraft, 2 ** 30);
  const bits = HUFFMAN_CODES.map((c, s) => c.toString(2).padStart(HUFFMAN_LENGTHS[s]!, '0'));
  const sorted = [...bits].sort();
  for (let i = 1; i < sorted.length; i++) t.false(sorted[i]!.startsWith(sorted[i - 1]!), `${sorted[i - 1]} prefixes ${sorted[i]}`);
  t.is(bits[256], '1'.repeat(30), 'EOS is 30 ones');
});

test('code table is the canonical code of its lengths (catches a mistyped code or length)', (t) => {
  // RFC 7541's code is canonical: ordered by (length, symbol), each code is
  // the previous plus one, shifted left when the length grows.
  const order = [...Array(257).keys()].sort((a, b) => HUFFMAN_LENGTHS[a]! - HUFFMAN_LENGTHS[b]! || a - b);
  let code = 0;
  let len = HUFFMAN_LENGTHS[order[0]!]!;
  for (let i = 0; i < order.length; i++) {
    const s = order[i]!;
    if (i > 0) {
      code = (code + 1) * 2 ** (HUFFMAN_LENGTHS[s]! - len);
      len = HUFFMAN_LENGTHS[s]!;
    }
    if (HUFFMAN_CODES[s] !== code) {
      t.fail(`symbol ${s}: 0x${HUFFMAN_CODES[s]!.toString(16)} ≠ canonical 0x${code.toString(16)}`);
      return;
    }
  }
  t.pass();
});

test('RFC 7541 C.4 / C.6 strings encode and decode byte-for-byte', (t) => {
  for (const [s, h] of RFC_STRINGS) {
    t.deepEqual(encode(s), hex(h), s);
    t.is(huffmanEncodedLength(s), hex(h).length, s);
    t.is(decodeAll(hex(h)), s, s);
  }
});

test('every byte value alone and all 256 together round-trip', (t) => {
  for (let b = 0; b < 256; b++) {
    const s = String.fromCharCode(b);
    t.is(decodeAll(encode(s)), s, `byte ${b}`);
  }
  let all = '';
  for (let b = 0; b < 256; b++) all += String.fromCharCode(b);
  t.is(decodeAll(encode(all)), all);
  t.is(decodeAll(encode(all + all.split('').reverse().join(''))), all + all.split('').reverse().join(''));
});

test('empty input decodes to the empty string', (t) => {
  t.is(huffmanDecode(Buffer.alloc(0), 0, 0), '');
  t.is(huffmanEncodedLength(''), 0);
  t.is(huffmanEncode('', Buffer.alloc(0), 0), 0);
});

test('decodes a sub-range and encodes at an offset without touching neighbours', (t) => {
  const enc = hex(RFC_STRINGS[0]![1]);
  const buf = Buffer.concat([Buffer.from([0x00, 0x00, 0x00]), enc, Buffer.from([0x00])]);
  t.is(huffmanDecode(buf, 3, 3 + enc.length), 'www.example.com');
  const out = Buffer.alloc(enc.length + 4, 0xaa);
  t.is(huffmanEncode('www.example.com', out, 2), 2 + enc.length);
  t.deepEqual(out.subarray(2, 2 + enc.length), enc);
  t.is(out[0], 0xaa);
  t.is(out[1], 0xaa);
  t.is(out[out.length - 1], 0xaa);
  t.is(out[out.length - 2], 0xaa);
});

test('seeded random latin1 strings round-trip and the predicted length is exact', (t) => {
  const rnd = prng(7541);
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rnd() * (i % 10 === 0 ? 2000 : 60));
    let s = '';
    const ascii = rnd() < 0.5;
    for (let j = 0; j < len; j++) s += String.fromCharCode(Math.floor(rnd() * (ascii ? 95 : 256)) + (ascii ? 32 : 0));
    const enc = encode(s); // throws if the length prediction is wrong
    const got = decodeAll(enc);
    if (got !== s) {
      t.fail(`round trip ${i} failed for ${JSON.stringify(s)}`);
      return;
    }
  }
  t.pass();
});

test('invalid: EOS inside the string (RFC 7541 §5.2)', (t) => {
  t.is(decodeAll(hex('ffff ffff')), null, 'EOS alone (30 ones + 2 padding ones)');
  // 'a' (00011) then EOS (30 ones) then 5 padding ones: 35+5 = 40 bits.
  t.is(decodeAll(hex('1fff ffff ff')), null, "'a' then EOS");
  // EOS followed by a valid symbol.
  t.is(decodeAll(hex('ffff fffc 1f')), null, 'EOS then more');
});

test('invalid: padding longer than 7 bits', (t) => {
  t.is(decodeAll(hex('ff')), null, '8 padding bits alone');
  // 'a' = 00011 + 111 padding, then a whole byte of ones: 11 padding bits.
  t.is(decodeAll(hex('1f')), 'a');
  t.is(decodeAll(hex('1f ff')), null);
  // '&' is exactly 8 bits (11111000): no padding; adding 0xff is 8 padding bits.
  t.is(decodeAll(hex('f8')), '&');
  t.is(decodeAll(hex('f8 ff')), null);
});

test('invalid: padding not all ones (including zero-bit padding)', (t) => {
  t.is(decodeAll(hex('18')), null, "'a' padded with 000");
  t.is(decodeAll(hex('1e')), null, "'a' padded with 110");
  t.is(decodeAll(hex('00')), null, "'0' padded with 000");
  t.is(decodeAll(hex('07')), '0', "'0' padded with 111 is valid");
});

const byCode = new Map<string, number>();
HUFFMAN_CODES.forEach((c, s) => byCode.set(c.toString(2).padStart(HUFFMAN_LENGTHS[s]!, '0'), s));

/** Slow reference decoder straight from RFC 7541 §5.2, bit by bit. */
function referenceDecode(buf: Buffer): string | null {
  let bits = '';
  let out = '';
  for (const byte of buf) {
    for (let b = 7; b >= 0; b--) {
      bits += (byte >> b) & 1;
      const sym = byCode.get(bits);
      if (sym !== undefined) {
        if (sym === 256) return null;
        out += String.fromCharCode(sym);
        bits = '';
      }
    }
  }
  if (bits.length > 7 || /0/.test(bits)) return null;
  return out;
}

test('table decoder agrees with a bit-by-bit reference on every 1- and 2-byte input and random longer ones', (t) => {
  let mismatches = 0;
  const check = (b: Buffer): void => {
    const want = referenceDecode(b);
    const got = decodeAll(b);
    if (got !== want && mismatches++ < 5) t.fail(`${b.toString('hex')}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  for (let x = 0; x < 256; x++) check(Buffer.from([x]));
  for (let x = 0; x < 65536; x++) check(Buffer.from([x >> 8, x & 0xff]));
  const rnd = prng(42);
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.alloc(3 + Math.floor(rnd() * 6));
    // Bias towards ones so long codes, EOS and padding edges come up often.
    for (let j = 0; j < b.length; j++) b[j] = rnd() < 0.5 ? 0xff : Math.floor(rnd() * 256);
    check(b);
  }
  t.is(mismatches, 0);
});
