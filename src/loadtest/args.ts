/**
 * `mezusphere loadtest` arguments → a validated plan, or the one-line reason
 * they are not one (the CLI prints it with the usage and exits 2). Pure apart
 * from reading a `--body @FILE` and drawing the random test email.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../runtime/index.js';
import { parseApiKey, SESSION_COOKIE_PLAIN, SESSION_COOKIE_SECURE } from '../session/index.js';

/** Every run is bounded: by its duration, and an `--amount` run also by `--duration` or this cap. */
export const MAX_DURATION_MS = 3600_000;
export const DEFAULT_DURATION_MS = 10_000;
export const DEFAULT_CONNECTIONS = 10;
/** Beyond this the load generator runs out of file descriptors or CPU before the edge does. */
export const MAX_CONNECTIONS = 10_000;
export const MAX_RATE = 10_000_000;
export const MAX_AMOUNT = 1_000_000_000;
/** autocannon's default: a request without a response for this long is a timeout. */
export const REQUEST_TIMEOUT_S = 10;
/** The edge accepts these (docs/ARCHITECTURE.md, request path step 1) minus HEAD (see autocannon.ts). */
export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type Method = (typeof METHODS)[number];

export type CredentialPlan =
  | { kind: 'none' }
  | { kind: 'cookie'; name: string; value: string }
  | { kind: 'key'; key: string; keyId: string }
  | { kind: 'provision'; project: string; email: string; roles: string[]; permissions: string[]; cookieName: string; keep: boolean };

export interface LoadtestPlan {
  url: URL;
  dataDir: string;
  method: Method;
  body: Buffer | null;
  /** Headers given with --header, in order, names as typed. */
  headers: Array<[string, string]>;
  connections: number;
  /** The run stops at this point whatever else happens. */
  durationMs: number;
  /** Responses to wait for, or null for a timed run. */
  amount: number | null;
  /** Requests per second across all connections, or null for as fast as they answer. */
  rate: number | null;
  credential: CredentialPlan;
  allowErrors: boolean;
  insecure: boolean;
  json: boolean;
}

export type ParseResult = { ok: true; plan: LoadtestPlan } | { ok: false; reason: string };

const OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  connections: { type: 'string', short: 'c' },
  duration: { type: 'string', short: 'd' },
  amount: { type: 'string', short: 'a' },
  rate: { type: 'string', short: 'R' },
  method: { type: 'string', short: 'm' },
  body: { type: 'string', short: 'b' },
  header: { type: 'string', short: 'H', multiple: true },
  cookie: { type: 'string' },
  key: { type: 'string' },
  project: { type: 'string' },
  email: { type: 'string' },
  roles: { type: 'string' },
  permissions: { type: 'string' },
  'https-cookie': { type: 'boolean' },
  keep: { type: 'boolean' },
  'allow-errors': { type: 'boolean' },
  insecure: { type: 'boolean' },
} as const;

/** RFC 9110 §5.6.2 token: header and cookie names. */
const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 6265 §4.1.1 cookie-octets. */
const COOKIE_VALUE_RE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;
/** Framing is autocannon's: a second Content-Length or Connection would make the requests malformed. */
const RESERVED_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection']);

class Bad {
  constructor(readonly reason: string) {}
}

function bad(reason: string): never {
  throw new Bad(reason);
}

const list = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(',').map((x) => x.trim()).filter((x) => x !== ''));

function intIn(v: string | undefined, name: string, min: number, max: number): number | null {
  if (v === undefined) return null;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) bad(`--${name} must be an integer from ${min} to ${max}; got "${v}"`);
  return n;
}

function durationIn(v: string): number {
  const ms = parseDuration(v);
  if (ms === null || ms < 1000 || ms > MAX_DURATION_MS) bad(`--duration must be from 1s to 3600s (seconds, or like 30s, 5m, 1h); got "${v}"`);
  return ms;
}

function targetUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    bad(`the target must be an http:// or https:// URL; got "${raw}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') bad(`the target must be an http:// or https:// URL; got "${u.protocol}"`);
  if (u.username !== '' || u.password !== '') bad('the target URL must not carry user:password; send credentials with --cookie, --key or --header');
  return u;
}

function headerIn(raw: string): [string, string] {
  const colon = raw.indexOf(':');
  const name = colon === -1 ? '' : raw.slice(0, colon).trim();
  if (!TOKEN_RE.test(name)) bad(`--header must look like "Name: value"; got "${raw}"`);
  const value = raw.slice(colon + 1).trim();
  if (/[\0\r\n]/.test(value)) bad(`--header ${name}: the value must not contain CR, LF or NUL`);
  if (RESERVED_HEADERS.has(name.toLowerCase())) bad(`--header ${name}: set by the load generator itself`);
  return [name, value];
}

function bodyIn(raw: string): Buffer {
  if (!raw.startsWith('@')) return Buffer.from(raw, 'utf8');
  try {
    return readFileSync(raw.slice(1));
  } catch (err) {
    bad(`--body ${raw}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function credentialIn(v: Record<string, string | boolean | string[] | undefined>, headers: Array<[string, string]>): CredentialPlan {
  const s = (k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const given = (['project', 'cookie', 'key'] as const).filter((k) => s(k) !== undefined);
  if (given.length > 1) bad(`give one credential: --${given.join(' and --')} exclude each other`);
  if (given[0] !== 'project') {
    const onlyWithProject = ['email', 'roles', 'permissions', 'https-cookie', 'keep'].filter((k) => v[k] !== undefined);
    if (onlyWithProject.length > 0) bad(`--${onlyWithProject[0]} applies only to a provisioned user (--project P)`);
  }
  const cookie = s('cookie');
  if (cookie !== undefined) {
    const eq = cookie.indexOf('=');
    const name = eq === -1 ? '' : cookie.slice(0, eq);
    const value = cookie.slice(eq + 1);
    if (!TOKEN_RE.test(name) || !COOKIE_VALUE_RE.test(value)) bad(`--cookie must look like NAME=VALUE (RFC 6265 characters); got "${cookie}"`);
    return { kind: 'cookie', name, value };
  }
  const key = s('key');
  if (key !== undefined) {
    const k = parseApiKey(key);
    if (k === null) bad('--key must be a service-account key mzk_… as printed by `mezusphere keys create`');
    if (headers.some(([n]) => n.toLowerCase() === 'authorization')) bad('--key and --header Authorization exclude each other');
    return { kind: 'key', key, keyId: k.id };
  }
  const project = s('project');
  if (project === undefined) return { kind: 'none' };
  if (project === '') bad('--project must name a project');
  const email = (s('email') ?? `loadtest+${randomBytes(6).toString('hex')}@example.invalid`).trim();
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) bad(`--email must be an email address; got "${email}"`);
  return {
    kind: 'provision',
    project,
    email,
    roles: list(s('roles')),
    permissions: list(s('permissions')),
    cookieName: v['https-cookie'] === true ? SESSION_COOKIE_SECURE : SESSION_COOKIE_PLAIN,
    keep: v.keep === true,
  };
}

/** `env` supplies MEZU_DATA (the default of --data, as for every command). */
export function parseLoadtestArgs(args: string[], env: NodeJS.ProcessEnv = process.env): ParseResult {
  try {
    return { ok: true, plan: build(args, env) };
  } catch (err) {
    if (err instanceof Bad) return { ok: false, reason: `loadtest: ${err.reason}` };
    throw err;
  }
}

function build(args: string[], env: NodeJS.ProcessEnv): LoadtestPlan {
  let parsed: { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    bad((err as Error).message);
  }
  const v = parsed.values;
  const s = (k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  if (parsed.positionals.length !== 1) bad(parsed.positionals.length === 0 ? 'give the target URL, e.g. http://127.0.0.1:8080/api/v1/items' : `give one target URL; got ${parsed.positionals.length}`);
  const url = targetUrl(parsed.positionals[0]!);

  const methodRaw = s('method') ?? 'GET';
  if (methodRaw === 'HEAD') bad('--method HEAD is not supported: autocannon cannot read bodiless HEAD responses; use GET');
  if (!(METHODS as readonly string[]).includes(methodRaw)) bad(`--method must be one of ${METHODS.join(', ')} (upper-case, as the edge requires); got "${methodRaw}"`);

  const headers = ((v.header as string[] | undefined) ?? []).map(headerIn);
  const seen = new Set<string>();
  for (const [n] of headers) {
    if (seen.has(n.toLowerCase())) bad(`--header ${n} is given twice`);
    seen.add(n.toLowerCase());
  }

  const durationRaw = s('duration');
  let durationMs = durationRaw === undefined ? DEFAULT_DURATION_MS : durationIn(durationRaw);
  const amount = intIn(s('amount'), 'amount', 1, MAX_AMOUNT);
  // An --amount run without --duration still ends: at the cap, in case the target stalls.
  if (amount !== null && durationRaw === undefined) durationMs = MAX_DURATION_MS;
  const rate = intIn(s('rate'), 'rate', 1, MAX_RATE);
  let connections = intIn(s('connections'), 'connections', 1, MAX_CONNECTIONS);
  // Each connection sends at least one request, and at least 1 req/s under --rate
  // (autocannon splits both across connections): fewer connections by default,
  // a reason when they were asked for.
  const cap = Math.min(amount ?? Infinity, rate ?? Infinity);
  if (connections === null) connections = Math.min(DEFAULT_CONNECTIONS, cap);
  else if (amount !== null && connections > amount) bad(`--connections (${connections}) must not exceed --amount (${amount}): each connection sends at least one request`);
  else if (rate !== null && connections > rate) bad(`--connections (${connections}) must not exceed --rate (${rate}): the rate is per second across all connections, at least 1 each`);

  return {
    url,
    dataDir: resolve(s('data') ?? env.MEZU_DATA ?? '.mezu-dev'),
    method: methodRaw as Method,
    body: s('body') === undefined ? null : bodyIn(s('body')!),
    headers,
    connections,
    durationMs,
    amount,
    rate,
    credential: credentialIn(v, headers),
    allowErrors: v['allow-errors'] === true,
    insecure: v.insecure === true,
    json: v.json === true,
  };
}
