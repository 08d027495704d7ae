/**
 * Client-sent headers that carry routing or client-address claims: an
 * application or framework behind the edge may act on them (Symfony and IIS
 * rewrite the path from `X-Original-URL`/`X-Rewrite-URL`; method-override
 * middleware turns a POST into a DELETE; Authelia-style authorizers read
 * `X-Forwarded-Uri`/`-Method`; rate limiters and audit logs read the client
 * address from `X-Real-IP` or `True-Client-IP`). The edge authorized the
 * method and path it saw, so none of these may reach the application from a
 * client: they are dropped before the edge adds its own `X-Forwarded-For`,
 * `-Proto` and `-Host`. None of them is read for routing or authorization.
 */
const ROUTING_HEADERS: ReadonlySet<string> = new Set([
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-original-url',
  'x-original-uri',
  'x-rewrite-url',
  'x-original-method',
  'x-original-host',
  'x-host',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-envoy-original-path',
]);

/**
 * True for a header the client must not pass to the application: every
 * `x-forwarded-*` (For, Host, Proto, Port, Prefix, Uri, Method, Server, Ssl…)
 * and the names in ROUTING_HEADERS. `name` is lower-case (uWS lower-cases
 * names); `_` is read as `-` as for reserved names, since CGI-style stacks
 * fold the two (this uWS build never delivers a name with `_`, a newer one may).
 */
export function isClientRoutingHeader(name: string): boolean {
  // Every listed name starts with x-/x_, fo, fa, tr, cf or cl; most request headers do not
  // (accept*, cookie, content-*, cache-control, sec-*, user-agent…): two character tests reject them.
  const c0 = name.charCodeAt(0);
  const c1 = name.charCodeAt(1);
  if (c0 === 0x78 /* x */) {
    if (c1 !== 0x2d && c1 !== 0x5f) return false;
  } else if (c0 === 0x66 /* f */) {
    if (c1 !== 0x6f && c1 !== 0x61) return false;
  } else if (c0 === 0x74 /* t */) {
    if (c1 !== 0x72) return false;
  } else if (c0 === 0x63 /* c */) {
    if (c1 !== 0x66 && c1 !== 0x6c) return false;
  } else {
    return false;
  }
  const n = name.indexOf('_') === -1 ? name : name.replace(/_/g, '-');
  return n.startsWith('x-forwarded-') || ROUTING_HEADERS.has(n);
}
