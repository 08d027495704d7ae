/**
 * HPACK Huffman code, RFC 7541 Appendix B (and §5.2 for the padding rules).
 *
 * The decoder is a byte-wide state machine generated at module load from the
 * code table: states are the 256 internal nodes of the code tree and each
 * state has 256 transitions, one per input byte. The shortest code is 5 bits,
 * so one byte completes at most two symbols; decoding is one table read per
 * input byte instead of eight branchy tree steps.
 *
 * Measured on the 2-core dev machine (Node 20), decoding a 75-byte Huffman
 * string (a 98-char user-agent), including building the JS string (~60 ns):
 * nibble (4-bit, 16 KiB table) 415–445 ns, byte-wide (256 KiB table)
 * 255–260 ns. The byte table costs 256 KiB per process and ~5 ms at load;
 * header strings are on every request, so it is worth it.
 */

/** Code of each symbol 0..256 (256 = EOS), right-aligned. RFC 7541 Appendix B. */
export const HUFFMAN_CODES: readonly number[] = [
  // 0..31: control bytes
  0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
  0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
  0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
  0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
  // 32..63: ' ' .. '?'
  0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
  0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
  0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
  0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
  // 64..95: '@' .. '_'
  0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
  0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
  0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
  0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
  // 96..127: '`' .. DEL
  0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
  0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
  0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
  0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
  // 128..159
  0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
  0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
  0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
  0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
  // 160..191
  0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
  0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
  0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
  0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
  // 192..223
  0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
  0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
  0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
  0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
  // 224..255
  0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
  0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
  0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
  0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
  // 256: EOS
  0x3fffffff,
];

/** Code length in bits of each symbol 0..256. RFC 7541 Appendix B. */
export const HUFFMAN_LENGTHS: readonly number[] = [
  // 0..31
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  // 32..63
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  // 64..95
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  // 96..127
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  // 128..159
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  // 160..191
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  // 192..223
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  // 224..255
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  // 256: EOS
  30,
];

// Typed copies for the hot loops (no holes, no bounds-check deopts).
const CODES = Uint32Array.from(HUFFMAN_CODES);
const LENGTHS = Uint8Array.from(HUFFMAN_LENGTHS);

/**
 * Bytes `str` takes Huffman-encoded (each char taken as one latin1 octet, as
 * `Buffer.from(str, 'latin1')` does).
 */
export function huffmanEncodedLength(str: string): number {
  let bits = 0;
  for (let i = 0; i < str.length; i++) bits += LENGTHS[str.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/**
 * Writes `str` Huffman-encoded into `out` at `offset`, padded with the EOS
 * prefix (all ones, RFC 7541 §5.2). The caller guarantees
 * `huffmanEncodedLength(str)` bytes of room. Returns the offset just past the
 * last byte written.
 */
export function huffmanEncode(str: string, out: Buffer, offset: number): number {
  // `acc` holds `n` < 32 pending bits, right-aligned. A code that would fill
  // it tops it up to 32 bits, which go out as one 4-byte store, and leaves
  // its remaining low bits pending. Whole words rather than a flush loop per
  // symbol: 280 ns instead of 400 ns for a 98-char user-agent (dev machine).
  let acc = 0;
  let n = 0;
  let pos = offset;
  for (let i = 0; i < str.length; i++) {
    const sym = str.charCodeAt(i) & 0xff;
    const code = CODES[sym]!;
    const len = LENGTHS[sym]!;
    const free = 32 - n;
    if (len < free) {
      acc = (acc << len) | code;
      n += len;
    } else {
      // 1 <= free <= len <= 30, so both shifts are in range.
      const rest = len - free;
      const word = (acc << free) | (code >>> rest);
      out[pos] = word >>> 24;
      out[pos + 1] = word >>> 16;
      out[pos + 2] = word >>> 8;
      out[pos + 3] = word;
      pos += 4;
      acc = code & ((1 << rest) - 1);
      n = rest;
    }
  }
  while (n >= 8) {
    n -= 8;
    out[pos++] = acc >>> n;
  }
  if (n > 0) out[pos++] = (acc << (8 - n)) | (0xff >>> n);
  return pos;
}

// ---------------------------------------------------------------------------
// Decoder tables.
//
// DECODE[(state << 8) | byte] packs:
//   bits 0..7    next state (internal node id; 0 is the root)
//   bits 8..15   first symbol completed within this byte
//   bits 16..23  second symbol completed within this byte
//   bits 24..25  how many symbols completed (0, 1 or 2)
//   bit  26      FAIL: the EOS code completed within this byte (§5.2: error);
//                set alone, so `entry >= FAIL` tests it
// ACCEPT[state] is 1 when the bits consumed since the last symbol are a valid
// padding: all ones and at most 7 of them (§5.2). The root accepts.

const FAIL = 1 << 26;

const DECODE = new Uint32Array(256 * 256);
const ACCEPT = new Uint8Array(256);

(function buildDecoder(): void {
  // Code tree: internal nodes 0..255; child >= 0 is an internal node,
  // child < 0 is leaf -(sym + 1).
  const left = new Int32Array(256).fill(0x7fffffff);
  const right = new Int32Array(256).fill(0x7fffffff);
  let nodes = 1;
  for (let sym = 0; sym <= 256; sym++) {
    const code = CODES[sym]!;
    const len = LENGTHS[sym]!;
    let node = 0;
    for (let b = len - 1; b >= 0; b--) {
      const children = ((code >>> b) & 1) === 0 ? left : right;
      if (b === 0) {
        children[node] = -(sym + 1);
      } else {
        let next = children[node]!;
        if (next === 0x7fffffff) {
          next = nodes++;
          children[node] = next;
        }
        node = next;
      }
    }
  }
  if (nodes !== 256) throw new Error(`hpack: Huffman table is not a complete code (${nodes} internal nodes)`);

  // Nodes reached from the root by 0..7 one-bits: valid places to stop.
  let node = 0;
  for (let k = 0; k <= 7; k++) {
    ACCEPT[node] = 1;
    node = right[node]!;
  }

  for (let state = 0; state < 256; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let cur = state;
      let count = 0;
      let entry = 0;
      for (let b = 7; b >= 0; b--) {
        const child = ((byte >>> b) & 1) === 0 ? left[cur]! : right[cur]!;
        if (child >= 0) {
          cur = child;
          continue;
        }
        const sym = -child - 1;
        if (sym === 256) {
          entry = FAIL;
          break;
        }
        entry |= sym << (8 + 8 * count);
        count++;
        cur = 0;
      }
      DECODE[(state << 8) | byte] = entry === FAIL ? FAIL : entry | (count << 24) | cur;
    }
  }
})();

/** Reused output scratch; grows to the largest string seen. */
let scratch = Buffer.allocUnsafeSlow(256);

/**
 * Decodes `buf[start, end)` as a Huffman-coded string (latin1). Returns null
 * when the input is invalid per RFC 7541 §5.2: it contains the EOS symbol, or
 * its padding is longer than 7 bits or not all ones.
 */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string | null {
  // The shortest code is 5 bits, so n bytes decode to at most 8n/5 symbols.
  const max = (((end - start) * 8) / 5) | 0;
  if (max > scratch.length) scratch = Buffer.allocUnsafeSlow(Math.max(max, scratch.length * 2));
  const out = scratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const e = DECODE[(state << 8) | buf[i]!]!;
    if (e >= FAIL) return null;
    const count = e >>> 24;
    if (count !== 0) {
      // Uint8 stores keep the low 8 bits: the symbol.
      out[n++] = e >>> 8;
      if (count === 2) out[n++] = e >>> 16;
    }
    state = e & 0xff;
  }
  if (ACCEPT[state] === 0) return null;
  return out.toString('latin1', 0, n);
}
