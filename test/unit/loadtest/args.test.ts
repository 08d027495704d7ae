import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseLoadtestArgs, requestHeaders, type LoadtestPlan } from '../../../src/loadtest/index.js';
import { MAX_DURATION_MS } from '../../../src/loadtest/args.js';
import { newApiKey } from '../../../src/session/index.js';

const URL_ = 'http://127.0.0.1:8080/api/v1/items';
const env = { MEZU_DATA: '/srv/mezu' };

function plan(...args: string[]): LoadtestPlan {
  const r = parseLoadtestArgs(args, env);
  if (!r.ok) throw new Error(`expected a plan, got: ${r.reason}`);
  return r.plan;
}

function reason(...args: string[]): string {
  const r = parseLoadtestArgs(args, env);
  if (r.ok) throw new Error(`expected a reason for ${args.join(' ')}`);
  return r.reason;
}

test('defaults: GET, 10 connections, 10 s, no credential, --data from MEZU_DATA', (t) => {
  const p = plan(URL_);
  t.is(p.url.href, URL_);
  t.is(p.method, 'GET');
  t.is(p.connections, 10);
  t.is(p.durationMs, 10_000);
  t.is(p.amount, null);
  t.is(p.rate, null);
  t.is(p.body, null);
  t.deepEqual(p.headers, []);
  t.deepEqual(p.credential, { kind: 'none' });
  t.is(p.dataDir, '/srv/mezu');
  t.false(p.json);
  t.false(p.allowErrors);
  t.false(p.insecure);
  t.is(parseLoadtestArgs([URL_], {}).ok && (parseLoadtestArgs([URL_], {}) as { plan: LoadtestPlan }).plan.dataDir, resolve('.mezu-dev'));
});

test('the documented example: provisioned user, short options, JSON', (t) => {
  const p = plan('--data', 'd', '--project', 'demo', URL_, '-d', '2', '-c', '4', '--json');
  t.is(p.dataDir, resolve('d'));
  t.is(p.durationMs, 2000);
  t.is(p.connections, 4);
  t.true(p.json);
  if (p.credential.kind !== 'provision') return t.fail();
  t.is(p.credential.project, 'demo');
  t.regex(p.credential.email, /^loadtest\+[0-9a-f]{12}@example\.invalid$/);
  t.is(p.credential.cookieName, 'mezu_session');
  t.deepEqual(p.credential.roles, []);
  t.false(p.credential.keep);
  // A fresh email each time: two runs never collide on a user.
  const q = plan('--project', 'demo', URL_);
  t.not(q.credential.kind === 'provision' && q.credential.email, p.credential.email);
});

test('provisioning options', (t) => {
  const p = plan(URL_, '--project', 'demo', '--email', 'lt@example.com', '--roles', 'admin, ops', '--permissions', 'admin:write', '--https-cookie', '--keep');
  t.deepEqual(p.credential, { kind: 'provision', project: 'demo', email: 'lt@example.com', roles: ['admin', 'ops'], permissions: ['admin:write'], cookieName: '__Host-mezu_session', keep: true });
  t.regex(reason(URL_, '--project', 'demo', '--email', 'not an email'), /--email must be an email address/);
  t.regex(reason(URL_, '--project', ''), /--project must name a project/);
});

test('duration: seconds or a duration, 1 s to 3600 s', (t) => {
  t.is(plan(URL_, '-d', '30').durationMs, 30_000);
  t.is(plan(URL_, '--duration', '5m').durationMs, 300_000);
  t.is(plan(URL_, '-d', '1h').durationMs, 3600_000);
  for (const bad of ['0', '0s', '3601', '1h1s', '2d', 'abc', '1.5', '-5']) t.regex(reason(URL_, `--duration=${bad}`), /--duration must be from 1s to 3600s/, bad);
});

test('amount: bounded by --duration when given, else by the 3600 s cap; fewer connections by default', (t) => {
  const a = plan(URL_, '--amount', '50');
  t.is(a.amount, 50);
  t.is(a.durationMs, MAX_DURATION_MS);
  t.is(a.connections, 10);
  t.is(plan(URL_, '-a', '50', '-d', '20s').durationMs, 20_000);
  t.is(plan(URL_, '-a', '3').connections, 3);
  t.regex(reason(URL_, '-a', '3', '-c', '4'), /--connections \(4\) must not exceed --amount \(3\)/);
  t.regex(reason(URL_, '-a', '0'), /--amount must be an integer from 1/);
  t.regex(reason(URL_, '-a', '1e3'), /--amount must be an integer/);
});

test('rate: overall req/s; at least 1 per connection', (t) => {
  t.is(plan(URL_, '--rate', '100').rate, 100);
  t.is(plan(URL_, '-R', '4').connections, 4);
  t.is(plan(URL_, '-R', '4', '-c', '2').connections, 2);
  t.regex(reason(URL_, '-R', '4', '-c', '8'), /--connections \(8\) must not exceed --rate \(4\)/);
  t.regex(reason(URL_, '-R', '0'), /--rate must be an integer from 1/);
});

test('connections: 1 to 10 000', (t) => {
  t.is(plan(URL_, '-c', '1').connections, 1);
  t.regex(reason(URL_, '-c', '0'), /--connections must be an integer from 1 to 10000/);
  t.regex(reason(URL_, '-c', '10001'), /--connections must be an integer/);
  t.regex(reason(URL_, '-c', 'many'), /--connections must be an integer/);
});

test('the target: exactly one http(s) URL without userinfo', (t) => {
  t.is(plan('https://edge.example/x?y=1').url.href, 'https://edge.example/x?y=1');
  t.regex(reason(), /give the target URL/);
  t.regex(reason(URL_, URL_), /give one target URL; got 2/);
  t.regex(reason('ftp://example.com/'), /must be an http:\/\/ or https:\/\/ URL; got "ftp:"/);
  t.regex(reason('file:///etc/passwd'), /must be an http:\/\/ or https:\/\/ URL/);
  t.regex(reason('127.0.0.1:8080/x'), /must be an http:\/\/ or https:\/\/ URL/);
  t.regex(reason('not a url'), /must be an http:\/\/ or https:\/\/ URL; got "not a url"/);
  t.regex(reason('http://u:p@127.0.0.1/'), /must not carry user:password/);
});

test('method: what the edge accepts, upper-case, not HEAD', (t) => {
  for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) t.is(plan(URL_, '-m', m).method as string, m);
  t.regex(reason(URL_, '-m', 'HEAD'), /HEAD is not supported/);
  t.regex(reason(URL_, '--method', 'get'), /--method must be one of/);
  t.regex(reason(URL_, '--method', 'TRACE'), /--method must be one of/);
});

test('body: text, or @FILE read once', (t) => {
  t.deepEqual(plan(URL_, '-m', 'POST', '-b', '{"a":1}').body, Buffer.from('{"a":1}'));
  const dir = mkdtempSync(join(tmpdir(), 'mezu-lt-'));
  writeFileSync(join(dir, 'b.bin'), Buffer.from([0, 1, 2]));
  t.deepEqual(plan(URL_, '--body', `@${join(dir, 'b.bin')}`).body, Buffer.from([0, 1, 2]));
  t.regex(reason(URL_, '--body', `@${join(dir, 'missing')}`), /cannot read the file \(ENOENT\)/);
});

test('headers: "Name: value", each once; framing headers belong to the load generator', (t) => {
  t.deepEqual(plan(URL_, '-H', 'Host: localhost', '--header', 'Content-Type:application/json', '-H', 'X-Empty:').headers, [['Host', 'localhost'], ['Content-Type', 'application/json'], ['X-Empty', '']]);
  t.regex(reason(URL_, '-H', 'no colon'), /--header must look like "Name: value"/);
  t.regex(reason(URL_, '-H', 'Bad Name: x'), /--header must look like/);
  t.regex(reason(URL_, '-H', 'X-A: 1\r\nX-B: 2'), /must not contain CR, LF or NUL/);
  t.regex(reason(URL_, '-H', 'Content-Length: 5'), /set by the load generator itself/);
  t.regex(reason(URL_, '-H', 'connection: close'), /set by the load generator itself/);
  t.regex(reason(URL_, '-H', 'X-A: 1', '-H', 'x-a: 2'), /--header x-a is given twice/);
});

test('credentials: one of --project, --cookie, --key; provisioning options need --project', (t) => {
  t.deepEqual(plan(URL_, '--cookie', 'mezu_session=abc_DEF-1').credential, { kind: 'cookie', name: 'mezu_session', value: 'abc_DEF-1' });
  const k = newApiKey();
  t.deepEqual(plan(URL_, '--key', k.text).credential, { kind: 'key', key: k.text, keyId: k.id });
  t.regex(reason(URL_, '--key', 'mzk_short'), /--key must be a service-account key/);
  t.regex(reason(URL_, '--key', k.text, '-H', 'authorization: Basic x'), /--key and --header Authorization exclude each other/);
  t.regex(reason(URL_, '--cookie', 'novalue'), /--cookie must look like NAME=VALUE/);
  t.regex(reason(URL_, '--cookie', 'a=b;c'), /--cookie must look like NAME=VALUE/);
  t.regex(reason(URL_, '--cookie', 'a=b c'), /--cookie must look like NAME=VALUE/);
  t.regex(reason(URL_, '--project', 'demo', '--cookie', 'a=b'), /give one credential: --project and --cookie exclude each other/);
  t.regex(reason(URL_, '--cookie', 'a=b', '--key', k.text), /--cookie and --key exclude each other/);
  t.regex(reason(URL_, '--email', 'a@b.c'), /--email applies only to a provisioned user/);
  t.regex(reason(URL_, '--cookie', 'a=b', '--keep'), /--keep applies only to a provisioned user/);
  t.regex(reason(URL_, '--https-cookie'), /--https-cookie applies only/);
});

test('every reason is one line naming the command; unknown options too', (t) => {
  for (const r of [reason(URL_, '--bogus'), reason(URL_, '-c'), reason('x'), reason(URL_, '-m', 'HEAD')]) {
    t.true(r.startsWith('loadtest: '), r);
    t.false(r.includes('\n'), r);
  }
});

test('request headers: the credential joins the given headers', (t) => {
  t.deepEqual(requestHeaders(plan(URL_, '-H', 'Host: localhost'), null), { Host: 'localhost' });
  t.deepEqual(requestHeaders(plan(URL_, '--cookie', 'mezu_session=T'), null), { Cookie: 'mezu_session=T' });
  // A Cookie given with --header is kept; the session cookie is appended.
  t.deepEqual(requestHeaders(plan(URL_, '-H', 'cookie: theme=dark', '--cookie', 'mezu_session=T'), null), { cookie: 'theme=dark; mezu_session=T' });
  const k = newApiKey();
  t.deepEqual(requestHeaders(plan(URL_, '--key', k.text), null), { Authorization: `Bearer ${k.text}` });
  t.deepEqual(requestHeaders(plan(URL_, '--project', 'demo'), 'TOKEN'), { Cookie: 'mezu_session=TOKEN' });
  t.deepEqual(requestHeaders(plan(URL_, '--project', 'demo', '--https-cookie'), 'TOKEN'), { Cookie: '__Host-mezu_session=TOKEN' });
});
