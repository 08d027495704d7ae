import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { codeOf, errorBody, Errors, MezuError, type ErrorCode } from '../../../src/errors/index.js';

// In the style of fastify's errors test: the catalogue, its documentation and
// its uses must agree, so a code cannot be added without a doc row, cannot rot
// unused, and no code string can be emitted that a client cannot look up.

// dist/test/unit/errors → repository root.
const ROOT = path.resolve(__dirname, '../../../..');
const SOURCE_DIRS = ['src', 'wire', 'native', 'warpgate', 'scripts'];

/**
 * Catalogue codes no code path emits yet (see docs/ERRORS.md, "reserved").
 * Their "is used" test is `test.failing`: when one starts being used (or is
 * deleted), that test fails and this list must be updated.
 */
const KNOWN_UNUSED = new Set<string>([]);

const codes = Object.keys(Errors) as ErrorCode[];

function walk(dir: string, out: string[]): string[] {
  if (!fs.existsSync(dir)) return out;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) walk(p, out);
    else if (ent.isFile() && p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Drops block comments and `//` line comments (a `//` preceded by `:` as in a URL is kept). */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

const sources = SOURCE_DIRS.flatMap((d) => walk(path.join(ROOT, d), [])).map((file) => {
  const raw = fs.readFileSync(file, 'utf8');
  return { file: path.relative(ROOT, file), raw, text: stripComments(raw) };
});
/**
 * Every source but the catalogue itself (src/errors/index.ts). The prebuilt
 * HTTP answers (src/errors/http.ts, formerly src/accept/responses.ts) use
 * codes like any other module.
 */
const CATALOGUE = path.join('src', 'errors', 'index.ts');
const outsideCatalogue = sources.filter((s) => s.file !== CATALOGUE);

/**
 * `MEZU_*` names used as environment variables, not error codes: read through
 * `process.env.NAME` / `process.env['NAME']`, or named by an `ENV_*` constant
 * (`export const ENV_OPTIONS = 'MEZU_EDGE_OPTIONS'`). Found from the source so a
 * new variable needs no edit here.
 */
const envVars = new Set<string>();
for (const s of sources) {
  for (const m of s.raw.matchAll(/process\.env(?:\.|\[\s*['"`])(MEZU_[A-Z0-9_]+)/g)) envVars.add(m[1]!);
  for (const m of s.raw.matchAll(/\bENV_[A-Z0-9_]+\s*=\s*['"`](MEZU_[A-Z0-9_]+)['"`]/g)) envVars.add(m[1]!);
}

const docText = fs.readFileSync(path.join(ROOT, 'docs', 'ERRORS.md'), 'utf8');
interface DocRow {
  status: string;
  message: string;
  when: string;
  todo: string;
}
const docRows = new Map<string, DocRow>();
const duplicateDocRows: string[] = [];
for (const line of docText.split('\n')) {
  const m = /^\|\s*`(MEZU_[A-Z_]+)`\s*\|(.*)\|\s*$/.exec(line);
  if (m === null) continue;
  const cells = m[2]!.split('|').map((c) => c.trim());
  if (docRows.has(m[1]!)) duplicateDocRows.push(m[1]!);
  docRows.set(m[1]!, { status: cells[0] ?? '', message: cells[1] ?? '', when: cells[2] ?? '', todo: cells[3] ?? '' });
}

test('the scan sees the source tree', (t) => {
  t.true(sources.length > 10, `found ${sources.length} source files under ${ROOT}`);
  t.true(sources.some((s) => s.file === path.join('src', 'errors', 'index.ts')));
  t.true(sources.some((s) => s.file.startsWith('warpgate' + path.sep)));
  t.true(sources.some((s) => s.file.startsWith('native' + path.sep)));
});

test('catalogue shape: code names, statuses, messages with a component prefix', (t) => {
  t.true(codes.length > 0);
  for (const code of codes) {
    const e = Errors[code];
    t.regex(code, /^MEZU_[A-Z0-9]+(_[A-Z0-9]+)*$/);
    t.true(Number.isInteger(e.status) && e.status >= 400 && e.status <= 599, `${code} status ${e.status}`);
    t.regex(e.message, /^(edge|tunnel|warpgate|config|store|native|identity|cli|login|mail|console|replica): \S/, code);
    t.false(e.message.endsWith('.'), `${code}: messages do not end with a period`);
  }
});

test('docs/ERRORS.md has no duplicate rows and no rows for codes outside the catalogue', (t) => {
  t.deepEqual(duplicateDocRows, []);
  const extra = [...docRows.keys()].filter((c) => !(c in Errors));
  t.deepEqual(extra, []);
});

for (const code of codes) {
  test(`documented: ${code}`, (t) => {
    const row = docRows.get(code);
    t.truthy(row, `${code} has no row in docs/ERRORS.md`);
    if (row === undefined) return;
    t.is(row.status, String(Errors[code].status), `${code} status in docs`);
    t.is(row.message, Errors[code].message, `${code} message in docs`);
    t.true(row.when.length >= 20, `${code}: say when it happens`);
    t.true(row.todo.length >= 10, `${code}: say what to do`);
  });

  const usedTest = KNOWN_UNUSED.has(code) ? test.failing : test;
  usedTest(`used outside the catalogue: ${code}${KNOWN_UNUSED.has(code) ? ' (known unused)' : ''}`, (t) => {
    const quoted = new RegExp(`(['"\`])${code}\\1`);
    const users = outsideCatalogue.filter((s) => quoted.test(s.text)).map((s) => s.file);
    t.true(users.length > 0, `${code} is in the catalogue but no source outside it uses it`);
  });
}

test('every MEZU_* code string in the source is in the catalogue', (t) => {
  const unknown = new Map<string, string[]>();
  for (const s of sources) {
    // Comments included: a doc comment must not name a code that does not exist either.
    for (const m of s.raw.matchAll(/\bMEZU_[A-Z0-9_]*[A-Z0-9]\b/g)) {
      const name = m[0];
      if (name in Errors || envVars.has(name)) continue;
      unknown.set(name, [...(unknown.get(name) ?? []), s.file]);
    }
  }
  t.deepEqual(Object.fromEntries(unknown), {});
});

test('MEZU_* environment variables are recognised as such, and none is an error code', (t) => {
  t.true(envVars.has('MEZU_DATA'), 'the detection finds process.env.MEZU_DATA');
  t.true(envVars.has('MEZU_EDGE_OPTIONS'), 'the detection finds ENV_OPTIONS = "MEZU_EDGE_OPTIONS"');
  for (const name of envVars) t.false(name in Errors, `${name} is both an environment variable and an error code`);
});

test('KNOWN_UNUSED lists only catalogue codes', (t) => {
  for (const c of KNOWN_UNUSED) t.true(c in Errors, c);
  t.pass();
});

test('MezuError carries code, status and the catalogue message (or an override) and a cause', (t) => {
  for (const code of codes) {
    const e = new MezuError(code);
    t.is(e.code, code);
    t.is(e.status, Errors[code].status);
    t.is(e.message, Errors[code].message);
    t.is(e.name, 'MezuError');
    t.true(e instanceof Error);
  }
  const cause = new Error('inner');
  const e = new MezuError('MEZU_STORE_UNAVAILABLE', 'store: cannot open /x: EACCES', { cause });
  t.is(e.message, 'store: cannot open /x: EACCES');
  t.is(e.code, 'MEZU_STORE_UNAVAILABLE');
  t.is(e.status, 503);
  t.is(e.cause, cause);
});

test('errorBody: {"error":{code,message}} plus extra fields', (t) => {
  for (const code of codes) {
    t.deepEqual(JSON.parse(errorBody(code)), { error: { code, message: Errors[code].message } });
  }
  t.deepEqual(JSON.parse(errorBody('MEZU_LOGIN_REQUIRED', { login_url: '/_mezu/login?rd=%2F' })), {
    error: { code: 'MEZU_LOGIN_REQUIRED', message: Errors.MEZU_LOGIN_REQUIRED.message, login_url: '/_mezu/login?rd=%2F' },
  });
});

test('codeOf: the code of anything that has one, MEZU_INTERNAL otherwise (across realms: no instanceof)', (t) => {
  t.is(codeOf(new MezuError('MEZU_CONFIG_STALE')), 'MEZU_CONFIG_STALE');
  t.is(codeOf({ code: 'MEZU_NATIVE_UWS', message: 'from another thread' }), 'MEZU_NATIVE_UWS');
  t.is(codeOf(Object.assign(new Error('x'), { code: 'ECONNRESET' })), 'ECONNRESET');
  t.is(codeOf(new Error('plain')), 'MEZU_INTERNAL');
  t.is(codeOf({ code: 42 }), 'MEZU_INTERNAL');
  t.is(codeOf(null), 'MEZU_INTERNAL');
  t.is(codeOf(undefined), 'MEZU_INTERNAL');
  t.is(codeOf('MEZU_USAGE'), 'MEZU_INTERNAL');
});
