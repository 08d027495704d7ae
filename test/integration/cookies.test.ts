/**
 * The session cookie's name follows the edge's scheme: on
 * `--scheme https` only `__Host-mezu_session` authenticates, on plain-http
 * development hosts only `mezu_session`. Whichever name authenticates is
 * stripped before forwarding and every other cookie reaches the origin
 * untouched. Real processes: two stacks (one per scheme), each an edge with
 * one worker, a Warpgate and the recording origin.
 *
 * Story: the `__Host-` prefix (RFC 6265bis §4.1.3.2) is what stops a sibling
 * subdomain or a plain-http page from planting a session cookie: a browser
 * accepts it only with `Secure`, `Path=/` and no `Domain`. An https edge that
 * also read the unprefixed name would accept exactly the cookie the prefix is
 * there to exclude (session fixation by cookie tossing).
 */
import test from 'ava';
import { Stack } from './harness.js';

const https = new Stack(1, undefined, ['--scheme', 'https']);
const plain = new Stack(1);
let httpsToken = '';
let plainToken = '';

test.before(async () => {
  await Promise.all([https.start(), plain.start()]);
  https.addUser('tls@example.com');
  plain.addUser('dev@example.com');
  httpsToken = https.session('tls@example.com');
  plainToken = plain.session('dev@example.com');
});
test.after.always(async () => {
  await Promise.all([https.stop(), plain.stop()]);
});

const BROWSER = 'text/html,application/xhtml+xml';

test.serial('https edge: a valid session sent as the plain mezu_session cookie does not authenticate (401 for APIs, 302 for browsers); nothing forwarded', async (t) => {
  await https.clearOrigin();
  const api = await https.request('/api/v1/items', { headers: { cookie: `mezu_session=${httpsToken}` } });
  t.is(api.status, 401);
  t.is(JSON.parse(api.body).error.code, 'MEZU_LOGIN_REQUIRED');
  const browser = await https.request('/api/v1/items', { headers: { cookie: `mezu_session=${httpsToken}`, accept: BROWSER } });
  t.is(browser.status, 302);
  t.is(browser.headers.location, '/_mezu/login?rd=%2Fapi%2Fv1%2Fitems');
  // Other spellings of the name are other cookies (cookie names are case-sensitive, RFC 6265 §5.4).
  for (const name of ['__host-mezu_session', '__Host-Mezu_Session', '__Secure-mezu_session', 'x__Host-mezu_session']) {
    t.is((await https.request('/api/v1/items', { headers: { cookie: `${name}=${httpsToken}` } })).status, 401, name);
  }
  t.is((await https.originSeen()).length, 0);
});

test.serial('https edge: __Host-mezu_session authenticates; beside other cookies it is stripped and the origin gets exactly "a=1; b=2"', async (t) => {
  await https.clearOrigin();
  const alone = await https.request('/api/v1/items', { headers: { cookie: `__Host-mezu_session=${httpsToken}` } });
  t.is(alone.status, 200);
  const mixed = await https.request('/api/v1/items', { headers: { cookie: `a=1; __Host-mezu_session=${httpsToken}; b=2` } });
  t.is(mixed.status, 200);
  t.is(JSON.parse(mixed.body).identity['x-mezu-user-email'], 'tls@example.com');
  const seen = await https.originSeen();
  t.is(seen.length, 2);
  t.false('cookie' in seen[0]!.headers, 'a Cookie header holding only the session cookie is dropped whole');
  t.deepEqual(seen[1]!.headers['cookie'], ['a=1; b=2']);
  t.false(JSON.stringify(seen).includes(httpsToken), 'the session token never reaches the origin');
});

test.serial('https edge: the session cookie in one of several Cookie fields is stripped there, the rest arrive as one field; two different session cookies do not authenticate', async (t) => {
  await https.clearOrigin();
  const split = await https.request('/api/v1/items', { headers: { cookie: ['a=1', `__Host-mezu_session=${httpsToken}; b=2`, 'c=3'] } });
  t.is(split.status, 200);
  const seen = await https.originSeen();
  // HTTP/1.1 to the origin: one Cookie field (RFC 6265 §5.4), the others' pairs in order.
  t.deepEqual(seen[0]!.headers['cookie'], ['a=1; b=2; c=3']);
  t.false(JSON.stringify(seen).includes(httpsToken));
  // A second, different value (a cookie tossed from a sibling host) makes the session ambiguous: refused.
  const twice = await https.request('/api/v1/items', { headers: { cookie: `__Host-mezu_session=${httpsToken}; __Host-mezu_session=${'A'.repeat(43)}` } });
  t.is(twice.status, 401);
  t.is((await https.originSeen()).length, 1);
});

test.serial('plain-http edge: __Host-mezu_session does not authenticate; mezu_session does and is stripped, other cookies survive', async (t) => {
  await plain.clearOrigin();
  const api = await plain.request('/api/v1/items', { headers: { cookie: `__Host-mezu_session=${plainToken}` } });
  t.is(api.status, 401);
  const browser = await plain.request('/api/v1/items', { headers: { cookie: `__Host-mezu_session=${plainToken}`, accept: BROWSER } });
  t.is(browser.status, 302);
  t.is((await plain.originSeen()).length, 0);
  const mixed = await plain.request('/api/v1/items', { headers: { cookie: `a=1; mezu_session=${plainToken}; b=2` } });
  t.is(mixed.status, 200);
  t.is(JSON.parse(mixed.body).identity['x-mezu-user-email'], 'dev@example.com');
  const seen = await plain.originSeen();
  t.is(seen.length, 1);
  t.deepEqual(seen[0]!.headers['cookie'], ['a=1; b=2']);
  t.false(JSON.stringify(seen).includes(plainToken), 'the session token never reaches the origin');
});

// Regression: each edge stripped only its own spelling, so a session token sent under the other
// one (valid on an edge of the other scheme over the same store) reached the application.
test.serial('the other scheme\'s session cookie is stripped too: a token never reaches the origin under either name', async (t) => {
  await https.clearOrigin();
  const a = await https.request('/docs/x', { headers: { cookie: `a=1; mezu_session=${plainToken}; b=2` } });
  t.is(a.status, 200);
  await plain.clearOrigin();
  const b = await plain.request('/docs/x', { headers: { cookie: `a=1; __Host-mezu_session=${httpsToken}; b=2` } });
  t.is(b.status, 200);
  for (const seen of [await https.originSeen(), await plain.originSeen()]) {
    t.is(seen.length, 1);
    t.deepEqual(seen[0]!.headers['cookie'], ['a=1; b=2']);
  }
  t.false(JSON.stringify(await https.originSeen()).includes(plainToken));
  t.false(JSON.stringify(await plain.originSeen()).includes(httpsToken));
});

// Regression: the edge stripped only the session cookie, so a request to a project host carrying
// `mezu_console_session=<owner token>; mezu_console_csrf=x; mezu_csrf=y` reached the origin with all
// three. Cookies ignore ports: an operator signed in to the Console on the project's host name handed
// every proxied application their owner session. Every product cookie (`mezu_*`, `__Host-mezu_*`,
// in any case) is now removed before forwarding, on protected and public routes alike.
test.serial('no product cookie reaches the origin: Console session and CSRF cookies are stripped with the session', async (t) => {
  const owner = 'O'.repeat(43);
  const product = [
    `mezu_session=${plainToken}`, `mezu_console_session=${owner}`, 'mezu_console_csrf=x', 'mezu_csrf=y',
    `__Host-mezu_console_session=${owner}`, '__Host-mezu_console_csrf=x2', '__Host-mezu_csrf=y2', 'mezu_future_thing=z',
    `MEZU_Console_Session=${owner}`, `__host-mezu_console_session=${owner}`, `__Secure-mezu_console_session=${owner}`,
  ];
  const app = ['a=1', 'my_mezu_pref=2', 'mezu=3', 'xmezu_y=4'];
  for (const [path, status] of [['/api/v1/items', 200], ['/docs/x', 200]] as const) {
    await plain.clearOrigin();
    const r = await plain.request(path, { headers: { cookie: [...product.slice(0, 4), app[0], ...product.slice(4), ...app.slice(1)].join('; ') } });
    t.is(r.status, status, path);
    const seen = await plain.originSeen();
    t.is(seen.length, 1);
    t.deepEqual(seen[0]!.headers['cookie'], [app.join('; ')], `${path}: the application's own cookies only, in order`);
    t.false(JSON.stringify(seen).includes(owner), 'the Console session never reaches the origin');
    t.false(/mezu_/i.test((seen[0]!.headers['cookie'] ?? []).join(';').replace('my_mezu_pref', '').replace('xmezu_y', '')), 'no product cookie at all');
  }
  // A Cookie header of product cookies only is dropped whole.
  await plain.clearOrigin();
  t.is((await plain.request('/docs/x', { headers: { cookie: `mezu_console_session=${owner}; mezu_console_csrf=x` } })).status, 200);
  t.false('cookie' in (await plain.originSeen())[0]!.headers);
});
