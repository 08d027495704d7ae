/**
 * Route rules (`projects[].routes`): path (exact, or a `/prefix/*`, in
 * normalized form, outside the reserved prefixes), auth mode, methods,
 * principals, roles, permissions, max_body, max_inflight, and the WebSocket
 * settings (websocket, max_message, idle_timeout, max_sockets); two rules on one path (as
 * matching sees it) must not cover the same method.
 */
import { JWKS_PATH, RESERVED_PATH_PREFIX, type PrincipalType } from '../../../wire/index.js';
import { normalizePath, routeKey } from '../../route/index.js';
import { MAX_MAX_BODY_BYTES, MAX_MAX_MESSAGE_BYTES, MAX_MAX_SOCKETS, parseSize } from '../limits.js';
import type { AuthMode, FactorName, RouteConfig, StepUpConfig } from '../types.js';
import { checkKeys, describe, isMapping, own, validateDuration, validateList, type Problems } from './fields.js';

/** RFC 9110 §5.6.2 token. */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Roles and permissions travel comma-separated in X-Mezu-Roles / X-Mezu-Permissions. */
// eslint-disable-next-line no-control-regex
const NAME_RE = /^[^\s,\u0000-\u001f\u007f]+$/;
const AUTH_MODES: readonly AuthMode[] = ['required', 'public', 'deny'];
const PRINCIPAL_TYPES: readonly PrincipalType[] = ['user', 'service_account'];
/** TRACE reflects the request (credentials included); CONNECT would open a raw tunnel. */
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(['TRACE', 'CONNECT']);
const ROUTE_KEYS = ['path', 'auth', 'methods', 'principals', 'roles', 'permissions', 'max_body', 'max_inflight', 'websocket', 'max_message', 'idle_timeout', 'max_sockets', 'step_up'];
/** Reserved prefix without its trailing slash: `/_mezu` itself is reserved too. */
const RESERVED_BASE = RESERVED_PATH_PREFIX.slice(0, -1);

export function validateRoutes(v: unknown, at: string, problems: Problems): RouteConfig[] | null {
  if (v === undefined || v === null) return [];
  const where = new Map<RouteConfig, string>();
  return validateList<RouteConfig>(v, at, problems, { what: 'must be a list of rules such as { path: /api/*, auth: required }' }, (x, routeAt, seen) => {
    const route = validateRoute(x, routeAt, problems);
    if (route === null) return null;
    for (const other of seen) {
      // Rules are matched ignoring ASCII case and a trailing slash (src/route/normalize.ts).
      if (routeKey(other.path) !== routeKey(route.path)) continue;
      const overlap = methodOverlap(other.methods, route.methods);
      if (overlap === null) continue;
      const same = other.path === route.path ? `same path "${route.path}"` : `"${route.path}" and "${other.path}" are one path (matching ignores case and a trailing slash)`;
      problems.push({
        at: `${routeAt}.path`,
        message: `duplicates ${where.get(other)}: ${same} for ${overlap}; merge the two rules or give them methods that do not overlap`,
      });
      break;
    }
    // A duplicate is kept for the comparisons that follow (its problem already fails the list).
    where.set(route, routeAt);
    return route;
  });
}

/** Description of the methods two rules on one path both cover, or null when they are disjoint. */
function methodOverlap(a: string[] | null, b: string[] | null): string | null {
  if (a === null && b === null) return 'every method';
  // A narrowed rule beside an unnarrowed one is the documented precedence, not a duplicate.
  if (a === null || b === null) return null;
  const common = a.filter((m) => b.includes(m));
  return common.length === 0 ? null : `method${common.length > 1 ? 's' : ''} ${common.join(', ')}`;
}

function validateRoute(input: unknown, at: string, problems: Problems): RouteConfig | null {
  if (!isMapping(input)) {
    problems.push({
      at,
      message: `must be a mapping such as { path: /api/*, auth: required }; got ${describe(input)}`,
    });
    return null;
  }
  const before = problems.length;
  checkKeys(input, ROUTE_KEYS, at, problems);
  const path = validateRoutePath(own(input, 'path'), `${at}.path`, problems);
  const auth = validateAuthMode(own(input, 'auth'), `${at}.auth`, problems);
  const methods = validateMethods(own(input, 'methods'), `${at}.methods`, problems);
  const maxBody = validateMaxBody(own(input, 'max_body'), `${at}.max_body`, problems);
  const maxInflight = validateMaxInflight(own(input, 'max_inflight'), `${at}.max_inflight`, problems);
  const ws = validateWebSocket(input, at, problems);
  const rawStepUp = own(input, 'step_up');
  const stepUp = validateStepUp(rawStepUp, `${at}.step_up`, problems);

  const rawPrincipals = own(input, 'principals');
  const rawRoles = own(input, 'roles');
  const rawPermissions = own(input, 'permissions');
  const principals =
    rawPrincipals === undefined || rawPrincipals === null
      ? (['user'] as PrincipalType[])
      : validatePrincipals(rawPrincipals, `${at}.principals`, problems);
  const roles = validateNames(rawRoles, `${at}.roles`, 'role', problems);
  const permissions = validateNames(rawPermissions, `${at}.permissions`, 'permission', problems);

  if (auth === 'public' || auth === 'deny') {
    // Conditions on a route that never checks them read as protection that is not there.
    const fields: [string, unknown][] = [
      ['principals', rawPrincipals],
      ['roles', rawRoles],
      ['permissions', rawPermissions],
      ['step_up', rawStepUp],
    ];
    for (const [key, value] of fields) {
      if (value === undefined || value === null) continue;
      problems.push({
        at: `${at}.${key}`,
        message: `would be ignored on a "${auth}" route (only "required" routes check it); remove it or set auth: required`,
      });
    }
  }

  if (stepUp !== undefined && principals !== null && principals.includes('service_account')) {
    // A key cannot present a second factor: the rule would refuse every service account it admits.
    problems.push({ at: `${at}.step_up`, message: 'applies to users only (a service-account key cannot present a second factor); remove service_account from principals, or put the step-up on a rule of its own' });
  }

  if (
    problems.length !== before ||
    path === null ||
    auth === null ||
    methods === undefined ||
    principals === null ||
    roles === null ||
    permissions === null
  ) {
    return null;
  }
  const route: RouteConfig = { path, methods, auth, principals, roles, permissions };
  if (maxBody !== undefined) route.maxBody = maxBody;
  if (maxInflight !== undefined) route.maxInflight = maxInflight;
  Object.assign(route, ws);
  if (stepUp !== undefined) route.stepUp = stepUp;
  return route;
}

/** Factor names a `step_up` rule may list. */
const FACTOR_NAMES: readonly FactorName[] = ['totp', 'webauthn'];
const STEP_UP_KEYS = ['max_age', 'factors', 'device'];
/** Longest `max_age`: a step-up older than a month is no step-up. */
const MAX_STEP_UP_AGE_MS = 30 * 24 * 3600_000;

/** `step_up: { max_age: 10m, factors: [webauthn, totp], device: known }` (factors or device, or both); undefined when absent or wrong. */
export function validateStepUp(v: unknown, at: string, problems: Problems): StepUpConfig | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { max_age: 10m, factors: [totp] }; got ${describe(v)}` });
    return undefined;
  }
  const before = problems.length;
  checkKeys(v, STEP_UP_KEYS, at, problems);
  const rawAge = own(v, 'max_age');
  let maxAgeMs: number | null = null;
  if (rawAge !== undefined && rawAge !== null) {
    const ms = validateDuration(rawAge, `${at}.max_age`, '10m', problems);
    if (ms !== null && ms > MAX_STEP_UP_AGE_MS) problems.push({ at: `${at}.max_age`, message: `must be at most 30d; got ${describe(rawAge)}` });
    else if (ms !== null && ms < 1000) problems.push({ at: `${at}.max_age`, message: `must be at least 1s (the challenge states it in seconds); got ${describe(rawAge)}` });
    else maxAgeMs = ms;
  }
  const rawDevice = own(v, 'device');
  let device: 'known' | undefined;
  if (rawDevice !== undefined && rawDevice !== null) {
    if (rawDevice === 'known') device = 'known';
    else problems.push({ at: `${at}.device`, message: `must be known (a device the user has signed in with before, or has used a second factor on); got ${describe(rawDevice)}` });
  }
  const rawFactors = own(v, 'factors');
  const choices = FACTOR_NAMES.join(', ');
  let factors: FactorName[] | null = null;
  if (rawFactors === undefined || rawFactors === null) {
    if (device === undefined) problems.push({ at: `${at}.factors`, message: `is required (or device: known): the second factors that satisfy the rule, drawn from ${choices}, e.g. [totp]` });
    else factors = [];
  } else {
    factors = validateChoices(rawFactors, `${at}.factors`, problems, FACTOR_NAMES, { what: `must be a list drawn from ${choices}, e.g. [totp]`, empty: `must list at least one factor, e.g. [totp]` });
  }
  if (problems.length !== before || factors === null) return undefined;
  return device === undefined ? { maxAgeMs, factors } : { maxAgeMs, factors, device };
}

/** `websocket`, `max_message`, `idle_timeout`, `max_sockets`: only the keys present. */
function validateWebSocket(input: Record<string, unknown>, at: string, problems: Problems): Pick<RouteConfig, 'websocket' | 'maxMessage' | 'idleTimeoutMs' | 'maxSockets'> {
  const out: Pick<RouteConfig, 'websocket' | 'maxMessage' | 'idleTimeoutMs' | 'maxSockets'> = {};
  const websocket = own(input, 'websocket');
  if (websocket !== undefined && websocket !== null) {
    if (typeof websocket !== 'boolean') problems.push({ at: `${at}.websocket`, message: `must be true or false; got ${describe(websocket)}` });
    else out.websocket = websocket;
  }
  const maxMessage = own(input, 'max_message');
  if (maxMessage !== undefined && maxMessage !== null) {
    const n = parseSize(maxMessage);
    if (n === null || n < 1 || n > MAX_MAX_MESSAGE_BYTES) {
      problems.push({ at: `${at}.max_message`, message: `must be a size from 1 byte to 16MiB (the WebSocket server's ceiling), such as 64KiB or 1MiB; got ${describe(maxMessage)}` });
    } else out.maxMessage = n;
  }
  const idle = own(input, 'idle_timeout');
  if (idle !== undefined && idle !== null) {
    const ms = validateDuration(idle, `${at}.idle_timeout`, '5m', problems);
    if (ms !== null) out.idleTimeoutMs = ms;
  }
  const maxSockets = own(input, 'max_sockets');
  if (maxSockets !== undefined && maxSockets !== null) {
    if (typeof maxSockets !== 'number' || !Number.isInteger(maxSockets) || maxSockets < 1 || maxSockets > MAX_MAX_SOCKETS) {
      problems.push({ at: `${at}.max_sockets`, message: `must be a whole number of sockets from 1 to ${MAX_MAX_SOCKETS}; got ${describe(maxSockets)}` });
    } else out.maxSockets = maxSockets;
  }
  return out;
}

/** Most `max_inflight` accepted: far above what one edge forwards at once, so only a typo is refused. */
export const MAX_MAX_INFLIGHT = 1_000_000;

/**
 * `max_inflight`: how many requests this rule may have forwarded at once,
 * edge-wide (each worker takes an equal share, at least one), so one slow
 * path cannot take every origin connection; undefined when absent or wrong.
 */
export function validateMaxInflight(v: unknown, at: string, problems: Problems): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_MAX_INFLIGHT) {
    problems.push({ at, message: `must be a whole number of requests from 1 to ${MAX_MAX_INFLIGHT}; got ${describe(v)}` });
    return undefined;
  }
  return v;
}

export function validateAuthMode(v: unknown, at: string, problems: Problems): AuthMode | null {
  if (v === undefined || v === null) return 'required';
  if (typeof v === 'string' && (AUTH_MODES as readonly string[]).includes(v)) return v as AuthMode;
  problems.push({ at, message: `must be one of ${AUTH_MODES.join(', ')}; got ${describe(v)}` });
  return null;
}

/** `max_body`: a byte size (`1048576`, `512KiB`, `10MiB`, `0` for no body); undefined when absent or wrong. */
export function validateMaxBody(v: unknown, at: string, problems: Problems): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = parseSize(v);
  if (n === null) {
    problems.push({ at, message: `must be a size such as 1048576, 512KiB, 10MiB or 1GB (0: no body at all); got ${describe(v)}` });
    return undefined;
  }
  if (n > MAX_MAX_BODY_BYTES) {
    problems.push({ at, message: `must be at most 1TiB; got ${describe(v)}` });
    return undefined;
  }
  return n;
}

function validateRoutePath(v: unknown, at: string, problems: Problems): string | null {
  const bad = (message: string): null => {
    problems.push({ at, message });
    return null;
  };
  if (v === undefined || v === null) {
    return bad('is required: an exact path such as /health or a prefix such as /api/*');
  }
  if (typeof v !== 'string') {
    return bad(`must be a path such as /health or /api/*; got ${describe(v)}`);
  }
  const got = JSON.stringify(v);
  if (v.length === 0) return bad('must not be empty; write / for the root or /* for every path');
  if (v.charCodeAt(0) !== 0x2f) return bad(`must start with "/"; write "/${v}" instead of ${got}`);
  if (v.includes('?') || v.includes('#')) {
    return bad(`must not contain "?" or "#": rules match the path only; got ${got}`);
  }
  const star = v.indexOf('*');
  const prefix = star !== -1;
  if (prefix && (star !== v.length - 1 || !v.endsWith('/*'))) {
    return bad(`"*" is allowed only as a final "/*" segment, as in /api/*; got ${got}`);
  }
  const base = prefix ? v.slice(0, -2) || '/' : v;
  if (prefix && v !== '/*' && base.endsWith('/')) {
    return bad(`must not end with "//*"; write "${base.replace(/\/+$/, '')}/*"`);
  }
  const normalized = normalizePath(base);
  if (!normalized.ok) return bad(`is not a valid request path (${normalized.reason}); got ${got}`);
  if (normalized.path !== base) {
    const n = normalized.path;
    const suggestion = prefix ? (n === '/' ? '/*' : `${n.replace(/\/$/, '')}/*`) : n;
    return bad(
      `must be in normalized form (requests are matched after normalization); write "${suggestion}" instead of ${got}`,
    );
  }
  // Rules match ignoring ASCII case: `/_MEZU/x` would be the reserved `/_mezu/x`.
  const lower = base.toLowerCase();
  if (lower === RESERVED_BASE || lower.startsWith(RESERVED_PATH_PREFIX)) {
    return bad(
      `is reserved for the hosted login pages (${RESERVED_PATH_PREFIX}); choose a path outside it`,
    );
  }
  if (routeKey(base) === JWKS_PATH) {
    return bad(`is reserved for the assertion verification keys (${JWKS_PATH}); choose another path`);
  }
  return v;
}

/** Upper-case methods, null for "every method", or undefined on a problem. */
function validateMethods(v: unknown, at: string, problems: Problems): string[] | null | undefined {
  if (v === undefined || v === null) return null;
  const shape = { what: 'must be a list of HTTP methods such as [GET, HEAD]', empty: 'must list at least one method; remove "methods" to cover every method' };
  const methods = validateList<string>(v, at, problems, shape, (item, itemAt, seen) => {
    if (typeof item !== 'string' || !TOKEN_RE.test(item)) {
      problems.push({ at: itemAt, message: `must be an HTTP method such as GET or POST; got ${describe(item)}` });
      return null;
    }
    const m = item.toUpperCase();
    if (FORBIDDEN_METHODS.has(m)) {
      problems.push({
        at: itemAt,
        message: `${m} is never forwarded (TRACE reflects credentials, CONNECT opens a raw tunnel); remove it`,
      });
      return null;
    }
    if (seen.includes(m)) {
      problems.push({ at: itemAt, message: `${m} is listed twice; remove one` });
      return null;
    }
    return m;
  });
  return methods ?? undefined;
}

function validatePrincipals(v: unknown, at: string, problems: Problems): PrincipalType[] | null {
  const choices = PRINCIPAL_TYPES.join(', ');
  const shape = { what: `must be a list drawn from ${choices}, e.g. [user]`, empty: `must not be empty; list one or both of ${choices}, or remove it for [user]` };
  return validateChoices(v, at, problems, PRINCIPAL_TYPES, shape);
}

/** A list drawn from `names`, each at most once (`step_up.factors`, `principals`). */
function validateChoices<T extends string>(v: unknown, at: string, problems: Problems, names: readonly T[], shape: Parameters<typeof validateList>[3]): T[] | null {
  const choices = names.join(', ');
  return validateList<T>(v, at, problems, shape, (item, itemAt, seen) => {
    if (typeof item !== 'string' || !(names as readonly string[]).includes(item)) {
      problems.push({ at: itemAt, message: `must be one of ${choices}; got ${describe(item)}` });
      return null;
    }
    if (seen.includes(item as T)) {
      problems.push({ at: itemAt, message: `"${item}" is listed twice; remove one` });
      return null;
    }
    return item as T;
  });
}

/** Roles or permissions: [] when absent. */
function validateNames(v: unknown, at: string, what: string, problems: Problems): string[] | null {
  if (v === undefined || v === null) return [];
  return validateList<string>(v, at, problems, { what: `must be a list of ${what} names, e.g. [admin]` }, (item, itemAt, seen) => {
    if (typeof item !== 'string' || !NAME_RE.test(item)) {
      problems.push({
        at: itemAt,
        message: `must be a non-empty ${what} name without whitespace or commas (names travel comma-separated in headers); got ${describe(item)}`,
      });
      return null;
    }
    if (seen.includes(item)) {
      problems.push({ at: itemAt, message: `"${item}" is listed twice; remove one` });
      return null;
    }
    return item;
  });
}
