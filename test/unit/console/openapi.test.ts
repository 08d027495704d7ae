/**
 * docs/openapi.yaml against the routes the Console actually exposes
 * (API_ROUTES, the table the server dispatches from): the same set of
 * (method, path) both ways, every $ref resolves, every operation documents
 * its success, 401 and 403 answers, every path parameter is declared.
 * test/integration/console.test.ts checks real responses against the schemas.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { API_ROUTES, matchRoute } from '../../../src/console/index.js';

const ROOT = resolve(__dirname, '../../../..');
const doc = parse(readFileSync(join(ROOT, 'docs/openapi.yaml'), 'utf8')) as Record<string, any>;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

function documented(): Array<{ method: string; path: string; op: any; params: any[] }> {
  const out: Array<{ method: string; path: string; op: any; params: any[] }> = [];
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    for (const m of METHODS) if (item[m] !== undefined) out.push({ method: m.toUpperCase(), path, op: item[m], params: [...(item.parameters ?? []), ...(item[m].parameters ?? [])] });
  }
  return out;
}

function resolveRef(ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let cur: any = doc;
  for (const part of ref.slice(2).split('/')) {
    if (cur === undefined || cur === null) return undefined;
    cur = cur[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

test('OpenAPI 3.1 document with info and paths', (t) => {
  t.is(doc.openapi, '3.1.0');
  t.truthy(doc.info?.title);
  t.true(Object.keys(doc.paths).length > 10);
});

test('every route the server exposes is documented, and every documented route is exposed', (t) => {
  const served = new Set(API_ROUTES.map((r) => `${r.method} ${r.path}`));
  const docs = new Set(documented().map((d) => `${d.method} ${d.path}`));
  t.deepEqual([...served].filter((x) => !docs.has(x)), [], 'served but not documented');
  t.deepEqual([...docs].filter((x) => !served.has(x)), [], 'documented but not served');
  t.is(served.size, API_ROUTES.length, 'no route is registered twice');
});

test('the dispatcher finds each documented route from a concrete path', (t) => {
  for (const d of documented()) {
    const concrete = d.path.replace(/\{[^}]+\}/g, 'x1');
    const m = matchRoute(d.method, concrete);
    t.false('methods' in m, `${d.method} ${concrete}`);
    if (!('methods' in m)) t.is(m.route.path, d.path);
  }
  const none = matchRoute('GET', '/api/v1/nothing-here');
  t.deepEqual(none, { methods: [] });
  const wrong = matchRoute('PATCH', '/api/v1/me');
  t.deepEqual(wrong, { methods: ['GET'] });
});

test('operation ids are unique; each operation documents success, 401 and 403', (t) => {
  const ids = new Set<string>();
  for (const d of documented()) {
    t.truthy(d.op.operationId, `${d.method} ${d.path} has an operationId`);
    t.false(ids.has(d.op.operationId), `duplicate operationId ${d.op.operationId}`);
    ids.add(d.op.operationId);
    const codes = Object.keys(d.op.responses ?? {});
    t.true(codes.some((c) => /^2\d\d$/.test(c)), `${d.method} ${d.path}: a 2xx answer`);
    t.true(codes.includes('401'), `${d.method} ${d.path}: 401`);
    if (d.path !== '/api/v1/me') t.true(codes.includes('403'), `${d.method} ${d.path}: 403`);
    const ok = d.op.responses[codes.find((c) => /^2\d\d$/.test(c))!];
    t.truthy(ok.content?.['application/json']?.schema, `${d.method} ${d.path}: the success answer has a JSON schema`);
  }
});

test('every path parameter is declared, and every declared path parameter is in the path', (t) => {
  for (const d of documented()) {
    const inPath = [...d.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    const declared = d.params.map((p: any) => (p.$ref !== undefined ? resolveRef(p.$ref) : p) as any).filter((p: any) => p.in === 'path').map((p: any) => p.name);
    t.deepEqual([...declared].sort(), [...inPath].sort(), `${d.method} ${d.path}`);
  }
});

test('every $ref resolves', (t) => {
  const bad: string[] = [];
  const walk = (v: unknown, at: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`));
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === '$ref' && (typeof x !== 'string' || resolveRef(x) === undefined)) bad.push(`${at}: ${String(x)}`);
        else walk(x, `${at}.${k}`);
      }
    }
  };
  walk(doc, '');
  t.deepEqual(bad, []);
});

test('the error codes the document names are in the catalogue', async (t) => {
  const { Errors } = await import('../../../src/errors/index.js');
  const text = readFileSync(join(ROOT, 'docs/openapi.yaml'), 'utf8');
  const named = new Set([...text.matchAll(/\bMEZU_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => m[0]));
  t.true(named.size > 10);
  for (const c of named) t.true(c in Errors, c);
});
