/**
 * The request head the Warpgate sends to the origin: validated and serialized
 * once, as one latin1 string written in one socket write.
 *
 * Validation is the last line against request smuggling on the origin leg: a
 * CR or LF in a value, or a name that is not a token (a leading space would
 * make the line an obs-fold continuation of the previous field), would let
 * whoever controls a header write a second request onto a connection shared
 * with other users. RFC 9113 §8.2.1 makes the tunnel's HTTP/2 codec refuse
 * such fields too; this check does not rely on it.
 */

/** How the request body is framed on the origin connection. */
export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;

/** The part of a request the serializer reads. */
export interface RequestHeadInput {
  method: string;
  /** origin-form (`/path?query`) or `*` for OPTIONS. */
  path: string;
  /** Flat `name, value, name, value, ...`. */
  headers: readonly string[];
  /** True when a body follows (it is then framed by the caller's Content-Length if given, else chunked). */
  hasBody: boolean;
  /**
   * The names and values in `headers` were already checked by the caller as
   * strictly as here: the Warpgate's fields come out of the tunnel's HPACK
   * decoder, which refuses (RFC 9113 §8.2.1) every name that is not a
   * lower-case token and every value with NUL, CR or LF, and yields one char
   * per octet (never above U+00FF). Then they are not scanned again.
   */
  checked?: boolean;
  /** Field lines already serialized and safe (`name: value\r\n`…), written after `headers`: the verified identity. */
  lines?: string;
}

/** Result of serializing a head; one per request, reused on a retry. */
export class SerializedHead {
  text: string;
  bodyMode: number;
  /** Declared body length for BODY_LENGTH, else -1. */
  contentLength: number;
  constructor(text: string, bodyMode: number, contentLength: number) {
    this.text = text;
    this.bodyMode = bodyMode;
    this.contentLength = contentLength;
  }
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * A char above U+00FF would be truncated to its low byte by the latin1 write:
 * U+010D U+010A would arrive as CR LF. V8 answers this in constant time for
 * one-byte strings (what the HPACK decoder produces).
 */
const WIDE_RE = /[\u0100-\uffff]/;
/** request-target: visible ASCII only (RFC 9112 §3.2; a space would end it, non-ASCII must be percent-encoded). */
const TARGET_RE = /^[\x21-\x7e]+$/;
const DIGITS_RE = /^\d{1,15}$/;

/**
 * RFC 9110 §9.2.2: methods whose repetition has the same intended effect.
 * Only these are replayed after a stale keep-alive connection failed.
 */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Methods that carry content by definition; without a body they get `content-length: 0` (RFC 9110 §8.6 SHOULD). */
const EXPECTS_CONTENT = new Set(['POST', 'PUT', 'PATCH']);

export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/**
 * Serializes a request head, or returns why it cannot be sent.
 *
 * The client owns connection management and body framing, so the caller's
 * `connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`,
 * `upgrade`, `te` and `expect` fields are dropped (hop-by-hop, RFC 9110
 * §7.6.1; `expect: 100-continue` is not implemented, bodies are sent at once
 * and interim responses skipped). `host` is added from `defaultHost` when the
 * caller gave none (RFC 9112 §3.2 requires one).
 */
export function serializeHead(head: RequestHeadInput, defaultHost: string): SerializedHead | string {
  const method = head.method;
  if (!TOKEN_RE.test(method)) return 'invalid method';
  if (method === 'CONNECT') return 'CONNECT is not supported on the origin leg';
  const path = head.path;
  if (!TARGET_RE.test(path) || (path.charCodeAt(0) !== 0x2f && !(path === '*' && method === 'OPTIONS'))) return 'invalid request target';
  let text = method + ' ' + path + ' HTTP/1.1\r\n';
  let sawHost = false;
  let contentLength = -1;
  const h = head.headers;
  const n = h.length;
  if ((n & 1) !== 0) return 'headers must be flat name/value pairs';
  const checked = head.checked === true;
  for (let i = 0; i < n; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    if (!checked) {
      if (!validName(name)) return 'invalid header name';
      if (!validValue(value)) return `invalid value for header ${name}`;
    }
    // Length first: one integer compare rejects almost every name before a string compare.
    switch (name.length) {
      case 2:
        if (lowerEquals(name, 'te')) continue;
        break;
      case 4:
        if (lowerEquals(name, 'host')) {
          if (sawHost) return 'more than one host header';
          sawHost = true;
        }
        break;
      case 6:
        if (lowerEquals(name, 'expect')) continue;
        break;
      case 7:
        if (lowerEquals(name, 'upgrade')) continue;
        break;
      case 10:
        if (lowerEquals(name, 'connection') || lowerEquals(name, 'keep-alive')) continue;
        break;
      case 14:
        if (lowerEquals(name, 'content-length')) {
          if (!DIGITS_RE.test(value)) return 'invalid content-length';
          const v = Number(value);
          if (contentLength !== -1 && contentLength !== v) return 'conflicting content-length';
          contentLength = v;
          continue; // written below, once
        }
        break;
      case 16:
        if (lowerEquals(name, 'proxy-connection')) continue;
        break;
      case 17:
        if (lowerEquals(name, 'transfer-encoding')) continue;
        break;
    }
    text += name + ': ' + value + '\r\n';
  }
  if (head.lines !== undefined) text += head.lines;
  if (!sawHost) text += 'host: ' + defaultHost + '\r\n';
  let bodyMode = BODY_NONE;
  if (head.hasBody) {
    if (contentLength >= 0) {
      bodyMode = BODY_LENGTH;
      text += 'content-length: ' + contentLength + '\r\n';
    } else {
      bodyMode = BODY_CHUNKED;
      text += 'transfer-encoding: chunked\r\n';
    }
  } else {
    contentLength = -1;
    if (EXPECTS_CONTENT.has(method)) text += 'content-length: 0\r\n';
  }
  return new SerializedHead(text + '\r\n', bodyMode, contentLength);
}

/**
 * Names repeat from request to request (HPACK's tables), so a name once found
 * to be a token is remembered: a Set lookup costs a tenth of the regex.
 * Bounded, so a stream of distinct names cannot grow it.
 */
const knownNames = new Set<string>();
const KNOWN_NAMES_MAX = 1024;

function validName(name: string): boolean {
  if (knownNames.has(name)) return true;
  if (!TOKEN_RE.test(name)) return false;
  if (knownNames.size < KNOWN_NAMES_MAX) knownNames.add(name);
  return true;
}

/**
 * RFC 9110 §5.5: CR, LF and NUL in a value MUST be rejected (or replaced);
 * they are what splits a request. Other controls are "invalid" but may be
 * retained; the origin's own parser judges those. Measured: three indexOf
 * scans plus WIDE_RE cost ~0.6 µs for the Warpgate's ~1 KiB head, a full
 * field-value regex ~1.5 µs.
 */
function validValue(v: string): boolean {
  return v.indexOf('\r') === -1 && v.indexOf('\n') === -1 && v.indexOf('\0') === -1 && !WIDE_RE.test(v);
}

/** `name` equals the lower-case `lower`, ignoring ASCII case, without allocating. */
function lowerEquals(name: string, lower: string): boolean {
  if (name === lower) return true;
  for (let i = 0; i < lower.length; i++) {
    if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}
