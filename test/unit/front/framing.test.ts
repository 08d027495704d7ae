import test from 'ava';
import { inspectFraming, BODY_NONE, BODY_CHUNKED, FRAMING_INVALID } from '../../../src/front/index.js';
import { isClientRoutingHeader } from '../../../src/identity/index.js';

const f = (...pairs: [string, string][]) => inspectFraming(pairs.map((p) => p[0]), pairs.map((p) => p[1]));

test('no framing fields: no body', (t) => {
  t.is(f(), BODY_NONE);
  t.is(f(['host', 'a'], ['accept', '*/*']), BODY_NONE);
});

test('Content-Length: plain digits, leading zeros allowed, 0 is no body', (t) => {
  t.is(f(['content-length', '3']), 3);
  t.is(f(['content-length', '003']), 3);
  t.is(f(['content-length', '0']), BODY_NONE);
  t.is(f(['content-length', '123456789012345']), 123456789012345);
});

test('Content-Length that is not 1–15 plain digits is invalid', (t) => {
  for (const v of ['', ' ', '+3', '-1', '0x3', '1 0', '3, 3', '3,3', '3.0', '1e3', '١', '1234567890123456', 'abc']) {
    t.is(f(['content-length', v]), FRAMING_INVALID, JSON.stringify(v));
  }
});

test('two Content-Length fields are invalid, equal or not', (t) => {
  t.is(f(['content-length', '3'], ['content-length', '3']), FRAMING_INVALID);
  t.is(f(['content-length', '3'], ['content-length', '10']), FRAMING_INVALID);
});

test('Transfer-Encoding: exactly chunked in any case; anything else is invalid', (t) => {
  for (const v of ['chunked', 'Chunked', 'CHUNKED', ' chunked ']) t.is(f(['transfer-encoding', v]), BODY_CHUNKED, v);
  for (const v of ['xchunked', 'chunked, identity', 'gzip, chunked', 'identity', 'chunked;q=1', '', 'chunked\u0000', 'chunke']) {
    t.is(f(['transfer-encoding', v]), FRAMING_INVALID, JSON.stringify(v));
  }
  t.is(f(['transfer-encoding', 'chunked'], ['transfer-encoding', 'chunked']), FRAMING_INVALID);
});

test('Content-Length with Transfer-Encoding is invalid, in either order', (t) => {
  t.is(f(['content-length', '3'], ['transfer-encoding', 'chunked']), FRAMING_INVALID);
  t.is(f(['transfer-encoding', 'chunked'], ['content-length', '0']), FRAMING_INVALID);
});

test('a Trailer field is invalid: request trailers are never honoured', (t) => {
  t.is(f(['trailer', 'x-mezu-user-id']), FRAMING_INVALID);
  t.is(f(['transfer-encoding', 'chunked'], ['trailer', 'cookie']), FRAMING_INVALID);
});

test('client routing and address headers, in every spelling', (t) => {
  for (const n of [
    'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-uri',
    'x-forwarded-method', 'x-forwarded-server', 'x-forwarded-ssl', 'forwarded', 'x-real-ip', 'true-client-ip', 'x-client-ip',
    'client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-cluster-client-ip', 'x-original-url', 'x-original-uri', 'x-rewrite-url',
    'x-original-method', 'x-original-host', 'x-host', 'x-http-method-override', 'x-http-method', 'x-method-override',
    'x-envoy-original-path', 'x_forwarded_for', 'x_original_url', 'x_http_method_override',
  ]) t.true(isClientRoutingHeader(n), n);
  for (const n of ['host', 'cookie', 'authorization', 'accept', 'x-forwarded', 'x-request-id', 'content-type', 'user-agent', 'x-mezu-user-id', 'forwarded-for', 'connection']) {
    t.false(isClientRoutingHeader(n), n);
  }
});
