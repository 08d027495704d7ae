/**
 * HPACK, RFC 7541: header compression for the tunnel's HTTP/2 codec.
 *
 * Headers are flat `[name, value, name, value, …]` string lists. Names are
 * lower-case ASCII; values are latin1, one char per octet (what
 * `Buffer#toString('latin1')` gives and `Buffer#write(s, 'latin1')` takes), so
 * a string's `length` is its size in octets for the RFC's size arithmetic.
 *
 * Error policy (decoder):
 * - Anything malformed is COMPRESSION_ERROR, a connection error (RFC 9113
 *   §4.3). The dynamic table may then be half-updated, so the decoder is
 *   poisoned: every later `decode` returns the same error.
 * - A header list over `maxHeaderListSize` (RFC 9113 §6.5.2) is
 *   HEADER_LIST_TOO_LARGE, a stream-level verdict: the block is still decoded
 *   to its end so the dynamic table stays in step with the peer's encoder
 *   (RFC 9113 §4.3: every header block must be processed), and the decoder
 *   stays usable. Fields past the limit are not collected, so memory stays
 *   bounded by the block size (which the frame layer bounds). The integrator
 *   answers 431 / RST_STREAM for that stream and keeps the connection.
 */
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';
import { STATIC_BY_NAME, STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES } from './static-table.js';

/** RFC 7541 §4.2 / RFC 9113 §6.5.2: SETTINGS_HEADER_TABLE_SIZE initial value. */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;
/** Our default for SETTINGS_MAX_HEADER_LIST_SIZE (matches the reference tunnel's CLIENT_SETTINGS). */
export const DEFAULT_MAX_HEADER_LIST_SIZE = 64 * 1024;
/** RFC 7541 §4.1: per-entry overhead; RFC 9113 §6.5.2 uses the same for list size. */
export const ENTRY_OVERHEAD = 32;

/**
 * Largest integer the decoder accepts (2^31 - 1). Every quantity HPACK
 * carries (index, string length, table size) is far below it; anything larger
 * is an attack or garbage.
 */
const MAX_INT = 0x7fffffff;
/**
 * Continuation octets allowed after a full prefix: 5 × 7 = 35 bits covers
 * MAX_INT. More octets can only be zero-padding (0x80 0x80 …), which costs the
 * decoder time for nothing, so they are rejected.
 */
const MAX_INT_CONTINUATION = 5;

export type HpackErrorCode = 'COMPRESSION_ERROR' | 'HEADER_LIST_TOO_LARGE';

export type DecodeResult =
  | { ok: true; headers: string[] }
  | { ok: false; error: HpackErrorCode; reason: string };

/**
 * The dynamic table (RFC 7541 §2.3.2, §4) as a ring of names and values.
 * Entries are identified by an absolute insertion number: the newest entry is
 * `inserted - 1`, the oldest `inserted - count`, and wire index
 * `62 + (inserted - 1 - abs)`.
 */
class HeaderTable {
  names: string[];
  values: string[];
  mask: number;
  /** Entries ever inserted; the next entry's absolute number. */
  inserted = 0;
  count = 0;
  /** Sum of entry sizes (name + value + 32), §4.1. */
  size = 0;
  maxSize: number;

  constructor(maxSize: number) {
    this.maxSize = maxSize;
    this.names = new Array<string>(16).fill('');
    this.values = new Array<string>(16).fill('');
    this.mask = 15;
  }

  /** Name of dynamic entry `rel` (1 = newest); caller checks `rel <= count`. */
  name(rel: number): string {
    return this.names[(this.inserted - rel) & this.mask]!;
  }

  value(rel: number): string {
    return this.values[(this.inserted - rel) & this.mask]!;
  }

  dropOldest(): void {
    const slot = (this.inserted - this.count) & this.mask;
    this.size -= this.names[slot]!.length + this.values[slot]!.length + ENTRY_OVERHEAD;
    // Release the strings to the GC.
    this.names[slot] = '';
    this.values[slot] = '';
    this.count--;
  }

  /** Appends an entry that fits (the caller has evicted for it). */
  push(name: string, value: string, entrySize: number): void {
    if (this.count === this.names.length) this.grow();
    const slot = this.inserted & this.mask;
    this.names[slot] = name;
    this.values[slot] = value;
    this.inserted++;
    this.count++;
    this.size += entrySize;
  }

  private grow(): void {
    const cap = this.names.length * 2;
    const names = new Array<string>(cap).fill('');
    const values = new Array<string>(cap).fill('');
    const mask = cap - 1;
    for (let abs = this.inserted - this.count; abs < this.inserted; abs++) {
      names[abs & mask] = this.names[abs & this.mask]!;
      values[abs & mask] = this.values[abs & this.mask]!;
    }
    this.names = names;
    this.values = values;
    this.mask = mask;
  }

  /** [name, value] pairs, newest first (wire index order). For tests and debugging. */
  entries(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (let rel = 1; rel <= this.count; rel++) out.push([this.name(rel), this.value(rel)]);
    return out;
  }
}

/** tchar of RFC 9110 §5.6.2, lower case only (RFC 9113 §8.2.1 forbids upper case in HTTP/2 names). */
const NAME_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHAR[c.charCodeAt(0)] = 1;

/**
 * A field name is a lower-case token (RFC 9110 §5.1, RFC 9113 §8.2.1: no
 * character in 0x00–0x20, 0x41–0x5a or 0x7f–0xff), or a pseudo-header name:
 * one colon, then a token. Stricter than §8.2.1 alone (which lets through,
 * say, `(` or `/`) so that a name the Warpgate writes into an HTTP/1.1 head
 * is always one an HTTP/1.1 parser reads as a name.
 */
export function validName(n: string): boolean {
  const len = n.length;
  let i = n.charCodeAt(0) === 0x3a ? 1 : 0;
  if (len <= i) return false;
  for (; i < len; i++) {
    const c = n.charCodeAt(i);
    if (c >= 128 || NAME_CHAR[c] === 0) return false;
  }
  return true;
}

/**
 * RFC 9113 §8.2.1: a field value holds no NUL, CR or LF — passed on, a CR or
 * LF would split the HTTP/1.1 request the Warpgate writes to the origin. Three
 * native searches beat a charCodeAt loop on long values (the assertion).
 */
export function validValue(v: string): boolean {
  return v.indexOf('\n') === -1 && v.indexOf('\r') === -1 && v.indexOf('\0') === -1;
}

function compressionError(reason: string): DecodeResult {
  return { ok: false, error: 'COMPRESSION_ERROR', reason };
}

/**
 * Decodes header blocks of one connection direction. One instance per
 * connection; blocks must be fed in the order they arrive (HEADERS plus its
 * CONTINUATIONs concatenated into one block).
 */
export class HpackDecoder {
  private readonly table: HeaderTable;
  /** SETTINGS_HEADER_TABLE_SIZE we announced and the peer acknowledged. */
  private limit: number;
  private maxHeaderListSize: number;
  /** The limit dropped below the table size: the next block must open with a size update (§4.2). */
  private updateRequired = false;
  /** Set on the first COMPRESSION_ERROR: the connection is dead and so is this decoder. */
  private failure: DecodeResult | null = null;
  // Cursor and error of the block being decoded (fields, not closures, to keep the hot path flat).
  private pos = 0;
  private reason = '';
  /**
   * The last block decoded held a field RFC 9113 §8.2.1 forbids (see
   * `validName`/`validValue`): the message is malformed and its stream must be
   * refused, but the table stays in step (the block decoded fine as HPACK).
   * Checked here, once per literal, so a field indexed in the dynamic table is
   * never checked again: a request's cached assertion (~550 chars) and client
   * fields cost nothing per request after their first appearance.
   */
  malformed = false;

  /**
   * @param maxTableSize our SETTINGS_HEADER_TABLE_SIZE: both the limit for
   *   size updates and the table's initial maximum size. On a real
   *   connection pass 4096 (the protocol's initial value) and call
   *   `setMaxTableSize` when the peer acknowledges a different setting.
   * @param maxHeaderListSize our SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2).
   */
  constructor(maxTableSize: number = DEFAULT_HEADER_TABLE_SIZE, maxHeaderListSize: number = DEFAULT_MAX_HEADER_LIST_SIZE) {
    this.limit = maxTableSize;
    this.maxHeaderListSize = maxHeaderListSize;
    this.table = new HeaderTable(maxTableSize);
  }

  /**
   * Applies our SETTINGS_HEADER_TABLE_SIZE once the peer has acknowledged it
   * (RFC 9113 §6.5.3: only then is its encoder bound by it). Size updates
   * above `n` are errors from then on. When `n` is below the table's current
   * maximum the peer must shrink its table, so the next block MUST open with
   * a size update (RFC 7541 §4.2); the table is shrunk now, which is safe
   * because entries the peer still holds beyond `n` are ones it may no longer
   * reference.
   */
  setMaxTableSize(n: number): void {
    this.limit = n;
    if (n < this.table.maxSize) {
      this.updateRequired = true;
      this.table.maxSize = n;
      while (this.table.size > n) this.table.dropOldest();
    }
  }

  setMaxHeaderListSize(n: number): void {
    this.maxHeaderListSize = n;
  }

  /** Current dynamic table size in octets (§4.1). */
  get tableSize(): number {
    return this.table.size;
  }

  /** Current dynamic table maximum size (the last size update applied). */
  get tableMaxSize(): number {
    return this.table.maxSize;
  }

  /** Dynamic table entries, newest first. For tests and debugging; allocates. */
  tableEntries(): Array<[string, string]> {
    return this.table.entries();
  }

  /** Decodes one complete header block. Never throws. */
  decode(block: Buffer): DecodeResult {
    if (this.failure !== null) return this.failure;
    let result: DecodeResult;
    try {
      result = this.decodeBlock(block);
    } catch (err) {
      // Not expected on any input (the fuzz tests check); fail closed.
      result = compressionError(`hpack: internal error: ${String(err)}`);
    }
    if (!result.ok && result.error === 'COMPRESSION_ERROR') this.failure = result;
    return result;
  }

  private decodeBlock(block: Buffer): DecodeResult {
    const table = this.table;
    const end = block.length;
    const headers: string[] = [];
    const maxList = this.maxHeaderListSize;
    let listSize = 0;
    let tooLarge = false;
    let fieldSeen = false;
    let malformed = false;
    this.pos = 0;
    this.malformed = false;

    while (this.pos < end) {
      const first = block[this.pos]!;

      if ((first & 0xe0) === 0x20) {
        // §6.3 dynamic table size update.
        if (fieldSeen) {
          return compressionError('hpack: dynamic table size update after a header field (RFC 7541 §4.2)');
        }
        const size = this.readInt(block, 5);
        if (size < 0) return compressionError(this.reason);
        if (size > this.limit) {
          return compressionError(`hpack: dynamic table size update to ${size} exceeds the limit ${this.limit} (RFC 7541 §6.3)`);
        }
        table.maxSize = size;
        while (table.size > size) table.dropOldest();
        this.updateRequired = false;
        continue;
      }

      if (this.updateRequired) {
        return compressionError('hpack: expected a dynamic table size update after SETTINGS_HEADER_TABLE_SIZE was lowered (RFC 7541 §4.2)');
      }
      fieldSeen = true;
      let name: string;
      let value: string;

      if ((first & 0x80) !== 0) {
        // §6.1 indexed header field.
        const index = this.readInt(block, 7);
        if (index < 0) return compressionError(this.reason);
        if (index <= STATIC_TABLE_LENGTH) {
          if (index === 0) return compressionError('hpack: index 0 (RFC 7541 §6.1)');
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
        } else {
          const rel = index - STATIC_TABLE_LENGTH;
          if (rel > table.count) return compressionError(`hpack: index ${index} past the dynamic table (RFC 7541 §2.3.3)`);
          name = table.name(rel);
          value = table.value(rel);
        }
      } else {
        // §6.2: literal; 01 = incremental indexing (6-bit prefix),
        // 0000 = without indexing, 0001 = never indexed (4-bit prefix).
        const indexing = (first & 0x40) !== 0;
        const index = this.readInt(block, indexing ? 6 : 4);
        if (index < 0) return compressionError(this.reason);
        if (index === 0) {
          const n = this.readString(block);
          if (n === null) return compressionError(this.reason);
          name = n;
          if (!validName(n)) malformed = true;
        } else if (index <= STATIC_TABLE_LENGTH) {
          name = STATIC_NAMES[index]!;
        } else {
          const rel = index - STATIC_TABLE_LENGTH;
          if (rel > table.count) return compressionError(`hpack: name index ${index} past the dynamic table (RFC 7541 §2.3.3)`);
          name = table.name(rel);
        }
        const v = this.readString(block);
        if (v === null) return compressionError(this.reason);
        value = v;
        if (!validValue(v)) malformed = true;

        if (indexing) {
          // §4.4: evict until it fits; an entry larger than the table empties it.
          const entrySize = name.length + value.length + ENTRY_OVERHEAD;
          if (entrySize > table.maxSize) {
            while (table.count > 0) table.dropOldest();
          } else {
            while (table.size + entrySize > table.maxSize) table.dropOldest();
            table.push(name, value, entrySize);
          }
        }
      }

      if (!tooLarge) {
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (listSize > maxList) {
          // Keep decoding for the table's sake but stop collecting.
          tooLarge = true;
          headers.length = 0;
        } else {
          headers.push(name, value);
        }
      }
    }

    if (this.updateRequired) {
      return compressionError('hpack: expected a dynamic table size update after SETTINGS_HEADER_TABLE_SIZE was lowered (RFC 7541 §4.2)');
    }
    this.malformed = malformed;
    if (tooLarge) {
      return {
        ok: false,
        error: 'HEADER_LIST_TOO_LARGE',
        reason: `hpack: header list exceeds ${maxList} octets (RFC 9113 §6.5.2)`,
      };
    }
    return { ok: true, headers };
  }

  /**
   * §5.1 integer with an N-bit prefix, starting at `this.pos` (the prefix
   * octet). Returns -1 with `this.reason` set on truncation, overflow or an
   * over-long encoding.
   */
  private readInt(block: Buffer, prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let value = block[this.pos++]! & mask;
    if (value < mask) return value;
    let multiplier = 1;
    for (let k = 0; k < MAX_INT_CONTINUATION; k++) {
      if (this.pos >= block.length) {
        this.reason = 'hpack: truncated integer (RFC 7541 §5.1)';
        return -1;
      }
      const b = block[this.pos++]!;
      value += (b & 0x7f) * multiplier;
      if (value > MAX_INT) {
        this.reason = 'hpack: integer overflow (RFC 7541 §5.1)';
        return -1;
      }
      if ((b & 0x80) === 0) return value;
      multiplier *= 128;
    }
    this.reason = 'hpack: integer encoding too long (RFC 7541 §5.1)';
    return -1;
  }

  /** §5.2 string literal at `this.pos`. Returns null with `this.reason` set when invalid. */
  private readString(block: Buffer): string | null {
    if (this.pos >= block.length) {
      this.reason = 'hpack: truncated header field (RFC 7541 §6.2)';
      return null;
    }
    const huffman = (block[this.pos]! & 0x80) !== 0;
    const length = this.readInt(block, 7);
    if (length < 0) return null;
    const start = this.pos;
    if (length > block.length - start) {
      this.reason = 'hpack: string literal past the end of the block (RFC 7541 §5.2)';
      return null;
    }
    this.pos = start + length;
    if (!huffman) return block.toString('latin1', start, this.pos);
    const s = huffmanDecode(block, start, this.pos);
    if (s === null) this.reason = 'hpack: invalid Huffman code: EOS, or padding over 7 bits or not all ones (RFC 7541 §5.2)';
    return s;
  }
}

// ---------------------------------------------------------------------------
// Encoder

export interface HpackEncoderOptions {
  /**
   * Header name → length threshold: values shorter than it are sent as
   * never-indexed literals (RFC 7541 §6.2.3, §7.1.3) so neither this encoder
   * nor any intermediary puts them in a compression context an attacker could
   * probe (CRIME-style guessing). `Infinity` = always. Replaces the default
   * (DEFAULT_SENSITIVE) entirely. Costs their full size on every message.
   * Leave `x-mezu-assertion` out: it is the same JWT for a whole session and
   * the point of HPACK here is to send it once per connection.
   */
  sensitive?: Readonly<Record<string, number>>;
  /**
   * Names whose values change on nearly every message: sent as literals
   * without indexing so they do not evict useful entries (the assertion!)
   * from the table. Replaces DEFAULT_NO_INDEX entirely. The tunnel should add
   * `x-mezu-request-id`: indexed, it pushes the assertion out of a 4 KiB
   * table every ~60 requests.
   */
  noIndex?: Iterable<string>;
  /**
   * Our own cap on the dynamic table, whatever the peer allows (default
   * 4096, as nghttp2): it bounds this encoder's memory per connection and
   * what the peer's decoder must hold. Raise it together with the peer's
   * SETTINGS_HEADER_TABLE_SIZE when many sessions (many assertions) share a
   * connection, at the cost of that much memory on both sides.
   */
  maxDynamicTableSize?: number;
  /** Huffman-code string literals when that is strictly shorter (default true). */
  huffman?: boolean;
}

/**
 * RFC 7541 §7.1.3: authorization and short cookies are guessable secrets.
 * set-cookie and proxy-authorization likewise carry credentials.
 */
export const DEFAULT_SENSITIVE: Readonly<Record<string, number>> = Object.freeze({
  authorization: Infinity,
  'proxy-authorization': Infinity,
  'set-cookie': Infinity,
  cookie: 20,
});

/** High-churn fields (nghttp2's choice): indexing them only evicts reusable entries. */
export const DEFAULT_NO_INDEX: readonly string[] = Object.freeze([
  ':path',
  'age',
  'content-length',
  'etag',
  'if-modified-since',
  'if-none-match',
  'location',
]);

/**
 * Everything the encoder knows about one header name, so a field costs one
 * name lookup (then one value lookup) however many tables and policies apply.
 * Records for static-table and policy names live as long as the encoder;
 * others only while the name has dynamic entries.
 */
class NameState {
  /** Lowest static wire index with this name, 0 if none. */
  readonly staticIndex: number;
  /** Static value → wire index, or null. */
  readonly staticValues: ReadonlyMap<string, number> | null;
  /** Values shorter than this go never-indexed; 0 = none do. */
  neverIndexBelow = 0;
  /** False: literals of this name are not added to the table. */
  index = true;
  readonly permanent: boolean;
  /** Absolute number of the newest dynamic entry with this name, -1 if none. */
  latest = -1;
  /** Dynamic value → absolute number of its newest entry; null until the first insert. */
  values: Map<string, number> | null = null;

  constructor(staticIndex: number, staticValues: ReadonlyMap<string, number> | null, permanent: boolean) {
    this.staticIndex = staticIndex;
    this.staticValues = staticValues;
    this.permanent = permanent;
  }
}

/** Worst-case bytes of one §5.1 integer (prefix octet + 5 continuation octets). */
const INT_MAX_BYTES = 6;
/**
 * Extra room per field for speculative Huffman coding of strings under 127
 * chars: at most 30 bits per char, so under 127 × 30 / 8 < 477 bytes where the
 * raw form needs 127.
 */
const SPECULATIVE_SLACK = 512;

/**
 * Encodes header blocks for one connection direction. Dynamic entries are
 * found through per-name records holding value → absolute insertion number
 * maps, so every lookup is O(1) and the wire index is computed from the
 * current insertion count. (Keyed by name, then value, rather than by one
 * `name\0value` string: a lookup never builds a concatenated string.)
 */
export class HpackEncoder {
  private readonly table: HeaderTable;
  private readonly names = new Map<string, NameState>();
  private readonly cap: number;
  private readonly huffman: boolean;
  /** Smallest and final table sizes to signal at the start of the next block (§4.2), or -1. */
  private pendingMin = -1;
  private pendingFinal = -1;
  private buf: Buffer;
  private pos = 0;

  /**
   * @param maxTableSize the peer's SETTINGS_HEADER_TABLE_SIZE (4096 until its
   *   SETTINGS arrive). The table used is min(this, maxDynamicTableSize); when
   *   that differs, the first block signals it.
   */
  constructor(maxTableSize: number = DEFAULT_HEADER_TABLE_SIZE, options: HpackEncoderOptions = {}) {
    this.cap = options.maxDynamicTableSize ?? DEFAULT_HEADER_TABLE_SIZE;
    this.huffman = options.huffman ?? true;
    for (const [name, st] of STATIC_BY_NAME) this.names.set(name, new NameState(st.index, st.values, true));
    const sensitive = options.sensitive ?? DEFAULT_SENSITIVE;
    for (const name of Object.keys(sensitive)) this.permanentState(name).neverIndexBelow = sensitive[name]!;
    for (const name of options.noIndex ?? DEFAULT_NO_INDEX) this.permanentState(name).index = false;
    const size = Math.min(maxTableSize, this.cap);
    this.table = new HeaderTable(size);
    if (size !== maxTableSize) this.pendingMin = this.pendingFinal = size;
    this.buf = Buffer.allocUnsafeSlow(1024);
  }

  private permanentState(name: string): NameState {
    let st = this.names.get(name);
    if (st === undefined) this.names.set(name, (st = new NameState(0, null, true)));
    return st;
  }

  /**
   * The peer's new SETTINGS_HEADER_TABLE_SIZE. The table is resized and the
   * change signalled at the start of the next block; several changes between
   * two blocks signal the smallest and then the final size (§4.2).
   */
  setMaxTableSize(n: number): void {
    const size = Math.min(n, this.cap);
    this.pendingMin = this.pendingMin < 0 ? size : Math.min(this.pendingMin, size);
    this.pendingFinal = size;
  }

  /** Current dynamic table size in octets (§4.1). */
  get tableSize(): number {
    return this.table.size;
  }

  get tableMaxSize(): number {
    return this.table.maxSize;
  }

  /** Dynamic table entries, newest first. For tests and debugging; allocates. */
  tableEntries(): Array<[string, string]> {
    return this.table.entries();
  }

  /**
   * Encodes `headers` (flat [name, value, …]) as one header block and returns
   * it in a Buffer of its own (one exact-size allocation, from Node's pool
   * when small). Throws TypeError, before touching any state, on an odd-length
   * list or a non-string entry (caller bugs). Chars above U+00FF are sent as
   * their low byte, as `Buffer#write(s, 'latin1')` does: validate values
   * upstream.
   */
  encode(headers: readonly string[]): Buffer {
    this.encodeFields(headers, 0);
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  /**
   * Like `encode` but returns a view of the encoder's reusable buffer, valid
   * only until the next call on this encoder: copy it or finish writing it
   * (note `socket.write` keeps a reference) before encoding again. The first
   * `headroom` bytes are left for the caller, e.g. 9 for the frame header, so
   * a HEADERS frame can be built without another copy.
   */
  encodeView(headers: readonly string[], headroom = 0): Buffer {
    this.encodeFields(headers, headroom);
    return this.buf.subarray(0, this.pos);
  }

  private encodeFields(headers: readonly string[], headroom: number): void {
    // Validate before touching any state: a throw half-way through would
    // leave our table out of step with the peer's decoder.
    if ((headers.length & 1) !== 0) {
      throw new TypeError('hpack: headers must be a flat [name, value, …] list of even length');
    }
    for (let i = 0; i < headers.length; i++) {
      if (typeof headers[i] !== 'string') throw new TypeError(`hpack: header ${i >> 1} has a non-string ${i & 1 ? 'value' : 'name'}`);
    }
    this.begin(headroom);
    for (let i = 0; i < headers.length; i += 2) this.field(headers[i]!, headers[i + 1]!);
  }

  /**
   * Streaming form, for a caller that produces its fields one at a time
   * (the edge writes a request's fields straight from the client's head,
   * without building a list): `begin`, then `field` per field, then `view`.
   * The caller must not throw between `begin` and `view`: fields already
   * encoded have changed the dynamic table, and a block that is never sent
   * leaves it out of step with the peer's (a connection whose encoder saw a
   * throw must be closed). `headroom` as in `encodeView`.
   */
  begin(headroom = 0): void {
    this.pos = 0;
    this.ensure(headroom + 2 * INT_MAX_BYTES);
    this.pos = headroom;
    if (this.pendingFinal >= 0) {
      if (this.pendingMin < this.pendingFinal) this.sizeUpdate(this.pendingMin);
      this.sizeUpdate(this.pendingFinal);
      this.pendingMin = this.pendingFinal = -1;
    }
  }

  /** The block written since `begin`, as a view of the reusable buffer (see `encodeView`). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** Encodes one field (lower-case name, latin1 value) into the block begun by `begin`. */
  field(name: string, value: string): void {
    const table = this.table;
    // Prefix + name length + value length integers, plus raw strings
    // (Huffman is kept only when shorter) and the speculative overrun.
    this.ensure(this.pos + 3 * INT_MAX_BYTES + name.length + value.length + SPECULATIVE_SLACK);

    const st = this.names.get(name);
    let nameIndex = 0;
    let index = true;
    if (st !== undefined) {
      if (st.staticValues !== null) {
        const exact = st.staticValues.get(value);
        if (exact !== undefined) {
          this.writeInt(0x80, 7, exact);
          return;
        }
      }
      if (st.staticIndex !== 0) nameIndex = st.staticIndex;
      else if (st.latest >= 0) nameIndex = STATIC_TABLE_LENGTH + table.inserted - st.latest;
      if (value.length < st.neverIndexBelow) {
        // §6.2.3 never indexed; an indexed name leaks nothing about the value.
        this.literal(0x10, 4, nameIndex, name, value);
        return;
      }
      if (st.values !== null) {
        const abs = st.values.get(value);
        if (abs !== undefined) {
          this.writeInt(0x80, 7, STATIC_TABLE_LENGTH + table.inserted - abs);
          return;
        }
      }
      index = st.index;
    }

    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    // Entries over 3/4 of the table would flush nearly everything for one
    // field (nghttp2 uses the same bound).
    if (index && entrySize * 4 <= table.maxSize * 3) {
      this.literal(0x40, 6, nameIndex, name, value);
      this.insert(st, name, value, entrySize);
    } else {
      this.literal(0x00, 4, nameIndex, name, value);
    }
  }

  private sizeUpdate(size: number): void {
    this.writeInt(0x20, 5, size);
    const table = this.table;
    table.maxSize = size;
    while (table.size > size) this.evictOldest();
  }

  /** §4.4; the caller guarantees entrySize <= maxSize. */
  private insert(st: NameState | undefined, name: string, value: string, entrySize: number): void {
    const table = this.table;
    while (table.size + entrySize > table.maxSize) this.evictOldest();
    // Eviction may have dropped a transient record: look it up again.
    if (st === undefined || (!st.permanent && st.latest < 0)) {
      st = this.names.get(name);
      if (st === undefined) this.names.set(name, (st = new NameState(0, null, false)));
    }
    const abs = table.inserted;
    table.push(name, value, entrySize);
    st.latest = abs;
    if (st.values === null) st.values = new Map();
    st.values.set(value, abs);
  }

  private evictOldest(): void {
    const table = this.table;
    const abs = table.inserted - table.count;
    const slot = abs & table.mask;
    const name = table.names[slot]!;
    const st = this.names.get(name);
    if (st !== undefined && st.values !== null) {
      const value = table.values[slot]!;
      // A newer entry with the same pair would have replaced the mapping.
      if (st.values.get(value) === abs) st.values.delete(value);
      if (st.values.size === 0) {
        // `latest` >= every remaining entry of this name, all newer than abs;
        // with none left the name has no dynamic entry.
        st.latest = -1;
        if (!st.permanent) this.names.delete(name);
      }
    }
    table.dropOldest();
  }

  private literal(pattern: number, prefixBits: number, nameIndex: number, name: string, value: string): void {
    this.writeInt(pattern, prefixBits, nameIndex);
    if (nameIndex === 0) this.writeString(name);
    this.writeString(value);
  }

  /** §5.1; the caller ensured INT_MAX_BYTES of room. */
  private writeInt(pattern: number, prefixBits: number, value: number): void {
    const buf = this.buf;
    const mask = (1 << prefixBits) - 1;
    if (value < mask) {
      buf[this.pos++] = pattern | value;
      return;
    }
    buf[this.pos++] = pattern | mask;
    value -= mask;
    while (value >= 128) {
      buf[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    buf[this.pos++] = value;
  }

  /** §5.2: Huffman when strictly shorter. The caller ensured room for the raw form plus SPECULATIVE_SLACK. */
  private writeString(s: string): void {
    const length = s.length;
    if (this.huffman && length > 0) {
      if (length < 0x7f) {
        // Both forms' lengths fit the 7-bit prefix in one octet, so encode
        // speculatively after it and measure, instead of a separate length
        // pass; if Huffman is not shorter the raw form overwrites it.
        const start = this.pos + 1;
        const end = huffmanEncode(s, this.buf, start);
        if (end - start < length) {
          this.buf[this.pos] = 0x80 | (end - start);
          this.pos = end;
          return;
        }
      } else {
        const h = huffmanEncodedLength(s);
        if (h < length) {
          this.writeInt(0x80, 7, h);
          this.pos = huffmanEncode(s, this.buf, this.pos);
          return;
        }
      }
    }
    this.writeInt(0x00, 7, length);
    const buf = this.buf;
    if (length < 16) {
      // Short strings: a loop beats the native call's fixed cost (dev
      // machine: 52 vs 81 ns at 8 chars, even at ~24, native ahead beyond).
      let p = this.pos;
      for (let i = 0; i < length; i++) buf[p++] = s.charCodeAt(i);
      this.pos = p;
    } else {
      this.pos += buf.write(s, this.pos, length, 'latin1');
    }
  }

  /** Grows the reusable buffer to at least `n` bytes, keeping what is written. */
  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(n, this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}
