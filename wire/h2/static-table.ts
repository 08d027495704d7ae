/**
 * HPACK static table, RFC 7541 Appendix A, plus the lookups the encoder
 * needs, built once at module load.
 *
 * Index 0 of the arrays is unused so that `STATIC_NAMES[i]` is wire index `i`
 * (RFC 7541 §2.3.3: indices start at 1; index 0 is a decoding error).
 */

/** Entries of the static table (61). Dynamic indices start after it. */
export const STATIC_TABLE_LENGTH = 61;

const ENTRIES: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** `STATIC_NAMES[i]` is the name at wire index i (1..61); [0] is unused. */
export const STATIC_NAMES: readonly string[] = ['', ...ENTRIES.map((e) => e[0])];
/** `STATIC_VALUES[i]` is the value at wire index i (1..61); [0] is unused. */
export const STATIC_VALUES: readonly string[] = ['', ...ENTRIES.map((e) => e[1])];

/** What the encoder needs to know about a name present in the static table. */
export interface StaticName {
  /** Lowest wire index with this name (for a literal with indexed name). */
  readonly index: number;
  /** Value → wire index, for exact matches. */
  readonly values: ReadonlyMap<string, number>;
}

/**
 * Name → its static entries. One lookup answers both "exact match?" and
 * "name match?", and keying by name then value (rather than by one
 * `name\0value` string) means a lookup never builds a concatenated string.
 */
export const STATIC_BY_NAME: ReadonlyMap<string, StaticName> = (() => {
  const m = new Map<string, { index: number; values: Map<string, number> }>();
  for (let i = 1; i <= STATIC_TABLE_LENGTH; i++) {
    const name = STATIC_NAMES[i]!;
    let entry = m.get(name);
    if (entry === undefined) m.set(name, (entry = { index: i, values: new Map() }));
    entry.values.set(STATIC_VALUES[i]!, i);
  }
  return m;
})();
