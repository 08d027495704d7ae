/**
 * HTTP/1.1 message framing checks the edge makes itself, before anything is
 * forwarded. The pinned uWebSockets.js build (20.30) parses framing leniently
 * in places (measured with raw sockets, test/security/framing.test.ts): it
 * takes the first of two differing Content-Length fields and parses the rest
 * as a second request, reads any Transfer-Encoding value (`xchunked`,
 * `gzip, chunked`) as chunked, reads an empty Content-Length as no body, and
 * calls the handler before it notices a Content-Length that is not digits.
 * Where two parsers could disagree about where a request ends, the edge
 * answers 400 and closes the connection (RFC 9112 §6.3, §11.2) instead of
 * picking an interpretation.
 *
 * Cost: one pass over the already-copied header names, comparing lengths
 * first; values are looked at only for the framing fields themselves.
 */

/** No request body (no Content-Length, or Content-Length: 0, and no Transfer-Encoding). */
export const BODY_NONE = -1;
/** `Transfer-Encoding: chunked`: length unknown until the last chunk. */
export const BODY_CHUNKED = -2;
/** Ambiguous or malformed framing: answer 400 and close the connection. */
export const FRAMING_INVALID = -3;

/** Content-Length with more digits than this is refused (2^53 has 16; uWS closes above 2^32 anyway). */
const MAX_LENGTH_DIGITS = 15;

/**
 * The body framing of a request head, from its lower-cased header names and
 * values: a Content-Length (≥ 0; 0 means no body), BODY_NONE, BODY_CHUNKED or
 * FRAMING_INVALID. Invalid:
 * - Content-Length and Transfer-Encoding together (RFC 9112 §6.1: a smuggling
 *   vector; uWS closes these itself, this is the belt to its braces);
 * - more than one Content-Length field, even with equal values (RFC 9112 §6.3
 *   allows refusing; llhttp does), or one that is not 1–15 plain digits (no
 *   sign, space, comma list, hex or empty value);
 * - more than one Transfer-Encoding field, or any value but `chunked` (any
 *   case): the edge decodes no other coding and must not guess at obfuscated
 *   ones (`xchunked`, `chunked, identity`, `gzip, chunked`);
 * - a `Trailer` field: the edge never honours request trailers (uWS discards
 *   trailer fields after the last chunk; a request announcing some expects
 *   semantics the edge will not provide).
 */
export function inspectFraming(names: readonly string[], values: readonly string[]): number {
  let body = BODY_NONE;
  let seenLength = false;
  let seenEncoding = false;
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    const len = n.length;
    if (len === 14 && n === 'content-length') {
      body = withContentLength(body, seenLength, values[i]!);
      seenLength = true;
    } else if (len === 17 && n === 'transfer-encoding') {
      body = withTransferEncoding(body, seenEncoding, seenLength, values[i]!);
      seenEncoding = true;
    } else if (len === 7 && n === 'trailer') {
      body = FRAMING_INVALID;
    }
  }
  return body;
}

/**
 * The framing after one more Content-Length field `v`, given the framing so
 * far and whether a Content-Length was seen before. FRAMING_INVALID is
 * sticky. The front end calls this (and withTransferEncoding) while it copies
 * the fields, so the framing costs no second pass.
 */
export function withContentLength(body: number, seenLength: boolean, v: string): number {
  if (seenLength || body === FRAMING_INVALID || body === BODY_CHUNKED) return FRAMING_INVALID;
  const n = parseLength(v);
  return n < 0 ? FRAMING_INVALID : n === 0 ? BODY_NONE : n;
}

/** The framing after one more Transfer-Encoding field `v` (see withContentLength). */
export function withTransferEncoding(body: number, seenEncoding: boolean, seenLength: boolean, v: string): number {
  if (seenEncoding || seenLength || body === FRAMING_INVALID) return FRAMING_INVALID;
  const t = v.trim();
  return t.length === 7 && t.toLowerCase() === 'chunked' ? BODY_CHUNKED : FRAMING_INVALID;
}

/** 1–15 ASCII digits → their value; anything else → -1. */
function parseLength(v: string): number {
  const len = v.length;
  if (len === 0 || len > MAX_LENGTH_DIGITS) return -1;
  let n = 0;
  for (let i = 0; i < len; i++) {
    const d = v.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
