/**
 * Config validation: the only way from unvalidated input (`unknown`, as YAML
 * or the Console hands it over) to a `ValidConfig`. It never throws and never
 * stops at the first mistake: every problem is reported with its location
 * (`projects[0].routes[2].path`) and a message that says how to fix it, so an
 * operator fixes a config in one round trip (oauth2-proxy's validators).
 */
import { LineCounter, parseDocument } from 'yaml';
import { JWKS_PATH, RESERVED_PATH_PREFIX, type PrincipalType } from '../../wire/index.js';
import { normalizePath, routeKey } from '../route/index.js';
import { MAX_MAX_BODY_BYTES, parseSize } from './limits.js';
import { parseDuration } from '../runtime/index.js';
import { normalizeHost } from './host.js';
import { isIP, BlockList } from 'node:net';
import {
  DEFAULT_BRAND_COLOR,
  DEFAULT_HASH_QUEUE,
  DEFAULT_PASSWORD_ITERATIONS,
  DEFAULT_PASSWORD_MEMORY_BYTES,
  DEFAULT_RESET_TTL_MS,
  MAX_LOCK_MS,
  defaultAccountThrottle,
  defaultIpThrottle,
} from './defaults.js';
import { DEFAULT_ORGANIZATION } from './defaults.js';
import type {
  AuthMode,
  ConfigProblem,
  DirectoryScope,
  OrganizationConfig,
  LoginConfig,
  PasswordConfig,
  SignupMode,
  ThrottleLimits,
  ProjectConfig,
  RouteConfig,
  ValidationResult,
} from './types.js';

const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ID_HINT =
  'lower-case letters, digits and "-", starting with a letter or digit, at most 63 characters';
/** RFC 9110 §5.6.2 token. */
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Roles and permissions travel comma-separated in X-Mezu-Roles / X-Mezu-Permissions. */
// eslint-disable-next-line no-control-regex
const NAME_RE = /^[^\s,\u0000-\u001f\u007f]+$/;
const HOST_LABEL_RE = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV6_LITERAL_RE = /^\[[0-9a-f:.]{2,45}\]$/;
const MAX_HOST_LENGTH = 253;
const MAX_NAME_LENGTH = 200;

const AUTH_MODES: readonly AuthMode[] = ['required', 'public', 'deny'];
const PRINCIPAL_TYPES: readonly PrincipalType[] = ['user', 'service_account'];
/** TRACE reflects the request (credentials included); CONNECT would open a raw tunnel. */
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(['TRACE', 'CONNECT']);

const ROOT_KEYS = ['organizations', 'projects', 'passwords', 'trusted_proxies'];
const PROJECT_KEYS = ['id', 'name', 'organization', 'directory', 'hosts', 'upstream', 'session', 'default', 'routes', 'login', 'max_body'];
const ORGANIZATION_KEYS = ['id', 'name'];
const DIRECTORY_SCOPES: readonly DirectoryScope[] = ['project', 'organization'];
const PASSWORD_KEYS = ['memory', 'iterations', 'queue'];
const LOGIN_KEYS = ['signup', 'public_url', 'branding', 'reset_ttl', 'throttle'];
const BRANDING_KEYS = ['name', 'color', 'logo_url'];
const THROTTLE_KEYS = ['account', 'ip'];
const THROTTLE_LIMIT_KEYS = ['delay_after', 'lock_after', 'lock', 'window'];
const SIGNUP_MODES: readonly SignupMode[] = ['open', 'invite', 'disabled'];
/** Same bounds as native/sodium.ts (not imported: config must not load the native addon). */
const MIN_MEMORY = DEFAULT_PASSWORD_MEMORY_BYTES;
const MAX_MEMORY = 4 * 1024 * 1024 * 1024;
const MIN_ITERATIONS = DEFAULT_PASSWORD_ITERATIONS;
const MAX_ITERATIONS = 1000;
const SESSION_KEYS = ['absolute', 'idle'];
const ROUTE_KEYS = ['path', 'auth', 'methods', 'principals', 'roles', 'permissions', 'max_body'];

const DEFAULT_ABSOLUTE = '24h';
const DEFAULT_IDLE = '30m';
const DURATION_HINT =
  'must be a duration such as 30s, 30m, 24h, 7d or 1h30m (a bare number means seconds)';

/** `at` for problems with the document as a whole. */
const ROOT = '(root)';
/** Reserved prefix without its trailing slash: `/_mezu` itself is reserved too. */
const RESERVED_BASE = RESERVED_PATH_PREFIX.slice(0, -1);

type Problems = ConfigProblem[];
type Mapping = Record<string, unknown>;

/**
 * Validate an unvalidated config (the value parsed from YAML or JSON).
 * Returns every problem at once; never throws, whatever the input.
 */
export function validateConfig(input: unknown): ValidationResult {
  const problems: Problems = [];
  try {
    const root = validateRoot(input, problems);
    if (problems.length === 0 && root !== null) {
      const config: ValidationResult & { ok: true } = { ok: true, config: { projects: root.projects } };
      // Optional sections appear in the validated config only when written (their defaults apply at compile).
      const m = input as Mapping;
      if (own(m, 'organizations') !== undefined && own(m, 'organizations') !== null) config.config.organizations = root.organizations;
      const pw = own(m, 'passwords');
      if (pw !== undefined && pw !== null) config.config.passwords = validatePasswords(pw, 'passwords', problems) ?? undefined;
      const tp = own(m, 'trusted_proxies');
      if (tp !== undefined && tp !== null) config.config.trustedProxies = validateTrustedProxies(tp, 'trusted_proxies', problems) ?? undefined;
      if (problems.length === 0) return config;
    } else if (isMapping(input)) {
      // Still report the optional sections' problems alongside the projects'.
      const pw = own(input, 'passwords');
      if (pw !== undefined && pw !== null) validatePasswords(pw, 'passwords', problems);
      const tp = own(input, 'trusted_proxies');
      if (tp !== undefined && tp !== null) validateTrustedProxies(tp, 'trusted_proxies', problems);
    }
  } catch (err) {
    // Input from a caller other than YAML (getters, proxies) could still throw; fail closed.
    problems.push({
      at: ROOT,
      message: `config: validation failed on an unexpected value (${errorMessage(err)}); pass plain data`,
    });
  }
  if (problems.length === 0) problems.push({ at: ROOT, message: 'config: invalid config' });
  return { ok: false, problems };
}

/**
 * Parse YAML text and validate it. YAML syntax errors are reported as
 * problems with `at: 'yaml'` and the line and column in the message.
 */
export function parseConfigYaml(text: string): ValidationResult {
  if (typeof text !== 'string') {
    return { ok: false, problems: [{ at: 'yaml', message: 'config text must be a string' }] };
  }
  let value: unknown;
  try {
    const lineCounter = new LineCounter();
    // uniqueKeys: a key written twice (a pasted `id:`) is a mistake, not "last one wins".
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      return {
        ok: false,
        problems: doc.errors.map((e) => {
          const { line, col } = lineCounter.linePos(e.pos[0]);
          return { at: 'yaml', message: `line ${line}, column ${col}: ${firstLine(e.message)}` };
        }),
      };
    }
    // maxAliasCount bounds alias expansion ("billion laughs").
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, problems: [{ at: 'yaml', message: errorMessage(err) }] };
  }
  return validateConfig(value);
}

// ---------------------------------------------------------------------------
// Document structure

function validateRoot(input: unknown, problems: Problems): { projects: ProjectConfig[]; organizations: OrganizationConfig[] } | null {
  if (input === null || input === undefined) {
    problems.push({
      at: ROOT,
      message: 'the config is empty; write "projects: []" for a config with no projects',
    });
    return null;
  }
  if (!isMapping(input)) {
    problems.push({
      at: ROOT,
      message: `must be a mapping with a "projects" list (e.g. "projects: []"); got ${describe(input)}`,
    });
    return null;
  }
  checkKeys(input, ROOT_KEYS, '', problems);
  const raw = own(input, 'projects');
  if (raw === undefined) {
    problems.push({
      at: 'projects',
      message: 'is required; write "projects: []" for a config with no projects',
    });
    return null;
  }
  if (!Array.isArray(raw)) {
    problems.push({
      at: 'projects',
      message: `must be a list of projects (write "projects: []" for none); got ${describe(raw)}`,
    });
    return null;
  }

  const projects: ProjectConfig[] = [];
  const ids = new Map<string, string>(); // id → where first defined
  const hostOwners = new Map<string, { id: string; at: string }>();
  const rawOrgs = own(input, 'organizations');
  const orgs = rawOrgs === undefined || rawOrgs === null ? [] : validateOrganizations(rawOrgs, problems) ?? [];
  const orgIds = new Set([DEFAULT_ORGANIZATION, ...orgs.map((o) => o.id)]);
  for (let i = 0; i < raw.length; i++) {
    const project = validateProject(raw[i], `projects[${i}]`, ids, hostOwners, problems);
    if (project === null) continue;
    if (project.organization !== undefined && !orgIds.has(project.organization)) {
      problems.push({
        at: `projects[${i}].organization`,
        message: `names no organization; add { id: ${project.organization} } under "organizations", or remove it (projects belong to "${DEFAULT_ORGANIZATION}" by default)`,
      });
      continue;
    }
    projects.push(project);
  }
  return { projects, organizations: orgs };
}

/** `organizations: [{ id, name }]`: ids unique. */
function validateOrganizations(v: unknown, problems: Problems): OrganizationConfig[] | null {
  const sink = problems;
  if (!Array.isArray(v)) {
    sink.push({ at: 'organizations', message: `must be a list such as [{ id: acme, name: Acme Inc }]; got ${describe(v)}` });
    return null;
  }
  const out: OrganizationConfig[] = [];
  const seen = new Map<string, string>();
  const before = sink.length;
  for (let i = 0; i < v.length; i++) {
    const at = `organizations[${i}]`;
    const o = v[i];
    if (!isMapping(o)) {
      sink.push({ at, message: `must be a mapping such as { id: acme, name: Acme Inc }; got ${describe(o)}` });
      continue;
    }
    checkKeys(o, ORGANIZATION_KEYS, at, sink);
    const id = validateId(own(o, 'id'), `${at}.id`, 'organization id, e.g. "acme"', sink);
    const name = validateName(own(o, 'name'), `${at}.name`, sink);
    if (id === null) continue;
    const first = seen.get(id);
    if (first !== undefined) {
      sink.push({ at: `${at}.id`, message: `duplicates the id of ${first}; every organization needs its own id` });
      continue;
    }
    seen.set(id, at);
    out.push({ id, name: name ?? id });
  }
  return sink.length === before ? out : null;
}

function validateProject(
  input: unknown,
  at: string,
  ids: Map<string, string>,
  hostOwners: Map<string, { id: string; at: string }>,
  problems: Problems,
): ProjectConfig | null {
  if (!isMapping(input)) {
    problems.push({
      at,
      message: `must be a mapping with at least id, hosts and upstream; got ${describe(input)}`,
    });
    return null;
  }
  const before = problems.length;
  checkKeys(input, PROJECT_KEYS, at, problems);

  const id = validateId(own(input, 'id'), `${at}.id`, 'project id, e.g. "demo"', problems);
  if (id !== null) {
    const first = ids.get(id);
    if (first !== undefined) {
      problems.push({
        at: `${at}.id`,
        message: `duplicates the id of ${first}; every project needs its own id`,
      });
    } else {
      ids.set(id, at);
    }
  }
  const label = id ?? at;

  const name = validateName(own(input, 'name'), `${at}.name`, problems);
  const rawOrg = own(input, 'organization');
  const organization = rawOrg === undefined || rawOrg === null ? undefined : validateId(rawOrg, `${at}.organization`, 'organization id, e.g. "acme"', problems);
  const rawDir = own(input, 'directory');
  let directory: DirectoryScope | undefined;
  if (rawDir !== undefined && rawDir !== null) {
    if (typeof rawDir === 'string' && (DIRECTORY_SCOPES as readonly string[]).includes(rawDir)) directory = rawDir as DirectoryScope;
    else problems.push({ at: `${at}.directory`, message: `must be one of ${DIRECTORY_SCOPES.join(', ')} (whose user directory the project signs users in with); got ${describe(rawDir)}` });
  }
  const hosts = validateHosts(own(input, 'hosts'), `${at}.hosts`, label, hostOwners, problems);
  const upstream = validateId(
    own(input, 'upstream'),
    `${at}.upstream`,
    'Warpgate pool name, e.g. "demo"',
    problems,
  );
  const session = validateSession(own(input, 'session'), `${at}.session`, problems);
  const defaultMode = validateAuthMode(own(input, 'default'), `${at}.default`, problems);
  const routes = validateRoutes(own(input, 'routes'), `${at}.routes`, problems);
  const maxBody = validateMaxBody(own(input, 'max_body'), `${at}.max_body`, problems);
  const rawLogin = own(input, 'login');
  const login = rawLogin === undefined || rawLogin === null ? undefined : validateLogin(rawLogin, `${at}.login`, problems);

  if (
    problems.length !== before ||
    id === null ||
    hosts === null ||
    upstream === null ||
    session === null ||
    defaultMode === null ||
    routes === null
  ) {
    return null;
  }
  const project: ProjectConfig = {
    id,
    name: name ?? id,
    hosts,
    upstream,
    session,
    default: defaultMode,
    routes,
  };
  if (login !== undefined && login !== null) project.login = login;
  if (maxBody !== undefined) project.maxBody = maxBody;
  if (organization !== undefined && organization !== null) project.organization = organization;
  if (directory !== undefined) project.directory = directory;
  return project;
}

// ---------------------------------------------------------------------------
// Hosted login (per project) and password hashing (edge-wide)

function validateLogin(v: unknown, at: string, problems: Problems): LoginConfig | null {
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { signup: open, public_url: https://app.example.com }; got ${describe(v)}` });
    return null;
  }
  const before = problems.length;
  checkKeys(v, LOGIN_KEYS, at, problems);
  let signup: SignupMode = 'disabled';
  const rawSignup = own(v, 'signup');
  if (rawSignup !== undefined && rawSignup !== null) {
    if (typeof rawSignup === 'string' && (SIGNUP_MODES as readonly string[]).includes(rawSignup)) signup = rawSignup as SignupMode;
    else problems.push({ at: `${at}.signup`, message: `must be one of ${SIGNUP_MODES.join(', ')} (default disabled); got ${describe(rawSignup)}` });
  }
  const publicUrl = validatePublicUrl(own(v, 'public_url'), `${at}.public_url`, problems);
  const branding = validateBranding(own(v, 'branding'), `${at}.branding`, problems);
  const resetTtlMs = validateDuration(own(v, 'reset_ttl'), `${at}.reset_ttl`, `${DEFAULT_RESET_TTL_MS / 1000}s`, problems);
  if (resetTtlMs !== null && resetTtlMs > 86_400_000) {
    problems.push({ at: `${at}.reset_ttl`, message: `must be at most 24h: an emailed link should not stay usable for days; got ${formatMs(resetTtlMs)}` });
  }
  const throttle = validateThrottle(own(v, 'throttle'), `${at}.throttle`, problems);
  if (problems.length !== before || branding === null || resetTtlMs === null || throttle === null) return null;
  return { signup, publicUrl, branding, resetTtlMs, throttle };
}

/** An origin for links in mail; the Host header is never used for them. */
function validatePublicUrl(v: unknown, at: string, problems: Problems): string | null {
  if (v === undefined || v === null) return null;
  const hint = 'must be an http(s) origin such as https://app.example.com (no path, query or credentials)';
  if (typeof v !== 'string') {
    problems.push({ at, message: `${hint}; got ${describe(v)}` });
    return null;
  }
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    problems.push({ at, message: `${hint}; got ${describe(v)}` });
    return null;
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || (u.pathname !== '/' && u.pathname !== '')) {
    problems.push({ at, message: `${hint}; got ${describe(v)}` });
    return null;
  }
  return u.origin;
}

function validateBranding(v: unknown, at: string, problems: Problems): LoginConfig['branding'] | null {
  const out: LoginConfig['branding'] = { name: null, color: DEFAULT_BRAND_COLOR, logoUrl: null };
  if (v === undefined || v === null) return out;
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { name: Acme, color: "#2563eb", logo_url: https://… }; got ${describe(v)}` });
    return null;
  }
  const before = problems.length;
  checkKeys(v, BRANDING_KEYS, at, problems);
  out.name = validateName(own(v, 'name'), `${at}.name`, problems);
  const color = own(v, 'color');
  if (color !== undefined && color !== null) {
    if (typeof color === 'string' && /^#[0-9a-fA-F]{6}$/.test(color)) out.color = color.toLowerCase();
    else problems.push({ at: `${at}.color`, message: `must be a colour written #rrggbb, e.g. "#2563eb" (quote it in YAML); got ${describe(color)}` });
  }
  const logo = own(v, 'logo_url');
  if (logo !== undefined && logo !== null) {
    let ok = false;
    if (typeof logo === 'string' && logo.length <= 2048) {
      try {
        const u = new URL(logo);
        ok = (u.protocol === 'https:' || u.protocol === 'http:') && u.username === '' && u.password === '' && !/["'<>\s]/.test(logo);
      } catch {
        ok = false;
      }
    }
    if (ok) out.logoUrl = logo as string;
    else problems.push({ at: `${at}.logo_url`, message: `must be an http(s) URL of an image without quotes, spaces or < >; got ${describe(logo)}` });
  }
  return problems.length === before ? out : null;
}

function validateThrottle(v: unknown, at: string, problems: Problems): LoginConfig['throttle'] | null {
  if (v === undefined || v === null) return { account: defaultAccountThrottle(), ip: defaultIpThrottle() };
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping with account and/or ip, e.g. { account: { lock_after: 10 } }; got ${describe(v)}` });
    return null;
  }
  checkKeys(v, THROTTLE_KEYS, at, problems);
  const account = validateThrottleLimits(own(v, 'account'), `${at}.account`, defaultAccountThrottle(), problems);
  const ip = validateThrottleLimits(own(v, 'ip'), `${at}.ip`, defaultIpThrottle(), problems);
  return account === null || ip === null ? null : { account, ip };
}

function validateThrottleLimits(v: unknown, at: string, dflt: ThrottleLimits, problems: Problems): ThrottleLimits | null {
  if (v === undefined || v === null) return dflt;
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { delay_after: 3, lock_after: 10, lock: 15m, window: 15m }; got ${describe(v)}` });
    return null;
  }
  const before = problems.length;
  checkKeys(v, THROTTLE_LIMIT_KEYS, at, problems);
  const delayAfter = validateInt(own(v, 'delay_after'), `${at}.delay_after`, dflt.delayAfter, 0, 10_000, problems);
  const lockAfter = validateInt(own(v, 'lock_after'), `${at}.lock_after`, dflt.lockAfter, 1, 10_000, problems);
  const lockMs = validateDuration(own(v, 'lock'), `${at}.lock`, `${dflt.lockMs / 1000}s`, problems);
  const windowMs = validateDuration(own(v, 'window'), `${at}.window`, `${dflt.windowMs / 1000}s`, problems);
  if (lockMs !== null && lockMs > MAX_LOCK_MS) {
    problems.push({ at: `${at}.lock`, message: `must be at most 1h: a lock anyone can trigger with a guessed email must not shut its owner out for long; got ${formatMs(lockMs)}` });
  }
  if (windowMs !== null && windowMs > 86_400_000) {
    problems.push({ at: `${at}.window`, message: `must be at most 24h; got ${formatMs(windowMs)}` });
  }
  if (delayAfter !== null && lockAfter !== null && delayAfter > lockAfter) {
    problems.push({ at: `${at}.delay_after`, message: `must not be larger than lock_after (${delayAfter} > ${lockAfter}); delays come before the lock` });
  }
  if (problems.length !== before || delayAfter === null || lockAfter === null || lockMs === null || windowMs === null) return null;
  return { delayAfter, lockAfter, lockMs, windowMs };
}

function validateInt(v: unknown, at: string, dflt: number, min: number, max: number, problems: Problems): number | null {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    problems.push({ at, message: `must be a whole number from ${min} to ${max}; got ${describe(v)}` });
    return null;
  }
  return v;
}

function validatePasswords(v: unknown, at: string, problems: Problems): PasswordConfig | null {
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { memory: 19MiB, iterations: 2, queue: 32 }; got ${describe(v)}` });
    return null;
  }
  const before = problems.length;
  checkKeys(v, PASSWORD_KEYS, at, problems);
  const memoryBytes = validateSize(own(v, 'memory'), `${at}.memory`, problems);
  // Below 2 is under OWASP's minimum for argon2id with m=19 MiB.
  const iterations = validateInt(own(v, 'iterations'), `${at}.iterations`, DEFAULT_PASSWORD_ITERATIONS, MIN_ITERATIONS, MAX_ITERATIONS, problems);
  const queue = validateInt(own(v, 'queue'), `${at}.queue`, DEFAULT_HASH_QUEUE, 1, 100_000, problems);
  if (problems.length !== before || memoryBytes === null || iterations === null || queue === null) return null;
  return { memoryBytes, iterations, queue };
}

/** `19MiB`, `64 MiB`, `1GiB`, or a number of bytes. Bounds: OWASP's 19 MiB minimum to 4 GiB. */
function validateSize(v: unknown, at: string, problems: Problems): number | null {
  if (v === undefined || v === null) return DEFAULT_PASSWORD_MEMORY_BYTES;
  let bytes: number | null = null;
  if (typeof v === 'number' && Number.isInteger(v)) bytes = v;
  else if (typeof v === 'string') {
    const m = /^(\d+)\s*(KiB|MiB|GiB)$/.exec(v.trim());
    if (m !== null) bytes = Number(m[1]) * (m[2] === 'KiB' ? 1024 : m[2] === 'MiB' ? 1024 * 1024 : 1024 * 1024 * 1024);
  }
  if (bytes === null) {
    problems.push({ at, message: `must be a size such as 19MiB, 64MiB or 1GiB (or a number of bytes); got ${describe(v)}` });
    return null;
  }
  if (bytes < MIN_MEMORY) {
    problems.push({ at, message: `is below OWASP's minimum for argon2id (19MiB); got ${describe(v)}` });
    return null;
  }
  if (bytes > MAX_MEMORY) {
    problems.push({ at, message: `must be at most 4GiB; got ${describe(v)}` });
    return null;
  }
  return bytes;
}

/** IPv4/IPv6 addresses or CIDR blocks (`10.0.0.0/8`, `::1`). */
function validateTrustedProxies(v: unknown, at: string, problems: Problems): string[] | null {
  if (!Array.isArray(v)) {
    problems.push({ at, message: `must be a list of IP addresses or CIDR blocks, e.g. [10.0.0.0/8]; got ${describe(v)}` });
    return null;
  }
  const out: string[] = [];
  let ok = true;
  for (let i = 0; i < v.length; i++) {
    const item = v[i];
    const itemAt = `${at}[${i}]`;
    if (typeof item !== 'string' || !isAddressOrCidr(item)) {
      problems.push({ at: itemAt, message: `must be an IP address or CIDR block such as 10.0.0.0/8 or ::1; got ${describe(item)}` });
      ok = false;
      continue;
    }
    out.push(item);
  }
  return ok ? out : null;
}

function isAddressOrCidr(s: string): boolean {
  const slash = s.indexOf('/');
  const addr = slash === -1 ? s : s.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return false;
  if (slash === -1) return true;
  const bits = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return false;
  try {
    new BlockList().addSubnet(addr, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
    return true;
  } catch {
    return false;
  }
}

function validateId(v: unknown, at: string, what: string, problems: Problems): string | null {
  if (v === undefined || v === null) {
    problems.push({ at, message: `is required: a ${what} (${ID_HINT})` });
    return null;
  }
  if (typeof v !== 'string' || !ID_RE.test(v)) {
    problems.push({ at, message: `must be ${ID_HINT}; got ${describe(v)}` });
    return null;
  }
  return v;
}

/** Returns the name, null when absent (default: the id), or undefined-as-null on a problem. */
function validateName(v: unknown, at: string, problems: Problems): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > MAX_NAME_LENGTH) {
    problems.push({
      at,
      message: `must be a non-empty display name of at most ${MAX_NAME_LENGTH} characters, or be removed (it defaults to the id); got ${describe(v)}`,
    });
    return null;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) {
    problems.push({ at, message: 'must not contain control characters (newlines, tabs, …)' });
    return null;
  }
  return v;
}

// ---------------------------------------------------------------------------
// Hosts

function validateHosts(
  v: unknown,
  at: string,
  projectLabel: string,
  owners: Map<string, { id: string; at: string }>,
  problems: Problems,
): string[] | null {
  if (v === undefined || v === null) {
    problems.push({ at, message: 'is required: a list of host names, e.g. [app.example.com]' });
    return null;
  }
  if (!Array.isArray(v)) {
    problems.push({
      at,
      message: `must be a list of host names, e.g. [app.example.com]; got ${describe(v)}`,
    });
    return null;
  }
  if (v.length === 0) {
    problems.push({ at, message: 'must list at least one host name' });
    return null;
  }
  const hosts: string[] = [];
  let ok = true;
  for (let i = 0; i < v.length; i++) {
    const hostAt = `${at}[${i}]`;
    const host = validateHost(v[i], hostAt, problems);
    if (host === null) {
      ok = false;
      continue;
    }
    const owner = owners.get(host);
    if (owner !== undefined) {
      ok = false;
      problems.push({
        at: hostAt,
        message:
          owner.id === projectLabel
            ? `"${host}" is listed twice (first at ${owner.at}); remove one`
            : `"${host}" already belongs to project "${owner.id}" (${owner.at}); a host may belong to only one project`,
      });
      continue;
    }
    owners.set(host, { id: projectLabel, at: hostAt });
    hosts.push(host);
  }
  return ok ? hosts : null;
}

/** The stored form of a config host, equal to `normalizeHost` of a matching Host header. */
function validateHost(v: unknown, at: string, problems: Problems): string | null {
  const bad = (message: string): null => {
    problems.push({ at, message });
    return null;
  };
  if (typeof v !== 'string') {
    return bad(`must be a host name such as app.example.com; got ${describe(v)}`);
  }
  let h = v.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.length === 0) return bad('must not be empty; write a host name such as app.example.com');
  const got = JSON.stringify(v);
  if (h.includes('://')) {
    return bad(`must be a host name, not a URL: drop the scheme (and any path); got ${got}`);
  }
  if (/\s/.test(h)) return bad(`must not contain whitespace; got ${got}`);
  if (h.includes('*')) {
    return bad(`wildcards are not supported; list each host name separately; got ${got}`);
  }
  if (h.includes('/')) return bad(`must not contain a path: write the host name only; got ${got}`);
  if (h.startsWith('[')) {
    if (/\]:/.test(h)) {
      return bad(`must not contain a port: hosts are matched without their port; got ${got}`);
    }
    if (!IPV6_LITERAL_RE.test(h) || normalizeHost(h) !== h) {
      return bad(`is not a valid IPv6 literal such as [::1]; got ${got}`);
    }
    return h;
  }
  if (h.includes(':')) {
    return bad(`must not contain a port: hosts are matched without their port; got ${got}`);
  }
  if (
    h.length > MAX_HOST_LENGTH ||
    normalizeHost(h) !== h ||
    !h.split('.').every((label) => HOST_LABEL_RE.test(label))
  ) {
    return bad(
      `is not a valid host name (dot-separated labels of letters, digits, "-" and "_", each at most 63 characters); got ${got}`,
    );
  }
  return h;
}

// ---------------------------------------------------------------------------
// Session and modes

function validateSession(
  v: unknown,
  at: string,
  problems: Problems,
): ProjectConfig['session'] | null {
  if (v === undefined || v === null) {
    return {
      absoluteMs: parseDuration(DEFAULT_ABSOLUTE) as number,
      idleMs: parseDuration(DEFAULT_IDLE) as number,
    };
  }
  if (!isMapping(v)) {
    problems.push({
      at,
      message: `must be a mapping such as { absolute: 24h, idle: 30m }, or be removed for those defaults; got ${describe(v)}`,
    });
    return null;
  }
  checkKeys(v, SESSION_KEYS, at, problems);
  const absoluteMs = validateDuration(own(v, 'absolute'), `${at}.absolute`, DEFAULT_ABSOLUTE, problems);
  const idleMs = validateDuration(own(v, 'idle'), `${at}.idle`, DEFAULT_IDLE, problems);
  if (absoluteMs === null || idleMs === null) return null;
  if (idleMs > absoluteMs) {
    problems.push({
      at: `${at}.idle`,
      message: `must not be longer than session.absolute (${formatMs(idleMs)} > ${formatMs(absoluteMs)}${
        own(v, 'absolute') === undefined ? ', the default' : ''
      }); lower idle or raise absolute`,
    });
    return null;
  }
  return { absoluteMs, idleMs };
}

function validateDuration(
  v: unknown,
  at: string,
  fallback: string,
  problems: Problems,
): number | null {
  if (v === undefined || v === null) return parseDuration(fallback);
  const ms = typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : null;
  if (ms === null) {
    problems.push({ at, message: `${DURATION_HINT}; got ${describe(v)}` });
    return null;
  }
  if (ms <= 0) {
    problems.push({ at, message: `must be longer than 0; got ${describe(v)}` });
    return null;
  }
  return ms;
}

function validateAuthMode(v: unknown, at: string, problems: Problems): AuthMode | null {
  if (v === undefined || v === null) return 'required';
  if (typeof v === 'string' && (AUTH_MODES as readonly string[]).includes(v)) return v as AuthMode;
  problems.push({ at, message: `must be one of ${AUTH_MODES.join(', ')}; got ${describe(v)}` });
  return null;
}

// ---------------------------------------------------------------------------
// Routes

function validateRoutes(v: unknown, at: string, problems: Problems): RouteConfig[] | null {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    problems.push({
      at,
      message: `must be a list of rules such as { path: /api/*, auth: required }; got ${describe(v)}`,
    });
    return null;
  }
  const routes: RouteConfig[] = [];
  const seen: { route: RouteConfig; at: string }[] = [];
  let ok = true;
  for (let i = 0; i < v.length; i++) {
    const routeAt = `${at}[${i}]`;
    const route = validateRoute(v[i], routeAt, problems);
    if (route === null) {
      ok = false;
      continue;
    }
    for (const other of seen) {
      // Rules are matched ignoring ASCII case and a trailing slash (src/route/normalize.ts).
      if (routeKey(other.route.path) !== routeKey(route.path)) continue;
      const overlap = methodOverlap(other.route.methods, route.methods);
      if (overlap === null) continue;
      ok = false;
      const same = other.route.path === route.path ? `same path "${route.path}"` : `"${route.path}" and "${other.route.path}" are one path (matching ignores case and a trailing slash)`;
      problems.push({
        at: `${routeAt}.path`,
        message: `duplicates ${other.at}: ${same} for ${overlap}; merge the two rules or give them methods that do not overlap`,
      });
      break;
    }
    seen.push({ route, at: routeAt });
    routes.push(route);
  }
  return ok ? routes : null;
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
    ];
    for (const [key, value] of fields) {
      if (value === undefined || value === null) continue;
      problems.push({
        at: `${at}.${key}`,
        message: `would be ignored on a "${auth}" route (only "required" routes check it); remove it or set auth: required`,
      });
    }
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
  return route;
}

/** `max_body`: a byte size (`1048576`, `512KiB`, `10MiB`, `0` for no body); undefined when absent or wrong. */
function validateMaxBody(v: unknown, at: string, problems: Problems): number | undefined {
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
  if (!Array.isArray(v)) {
    problems.push({ at, message: `must be a list of HTTP methods such as [GET, HEAD]; got ${describe(v)}` });
    return undefined;
  }
  if (v.length === 0) {
    problems.push({ at, message: 'must list at least one method; remove "methods" to cover every method' });
    return undefined;
  }
  const methods: string[] = [];
  let ok = true;
  for (let i = 0; i < v.length; i++) {
    const item = v[i];
    const itemAt = `${at}[${i}]`;
    if (typeof item !== 'string' || !TOKEN_RE.test(item)) {
      problems.push({ at: itemAt, message: `must be an HTTP method such as GET or POST; got ${describe(item)}` });
      ok = false;
      continue;
    }
    const m = item.toUpperCase();
    if (FORBIDDEN_METHODS.has(m)) {
      problems.push({
        at: itemAt,
        message: `${m} is never forwarded (TRACE reflects credentials, CONNECT opens a raw tunnel); remove it`,
      });
      ok = false;
      continue;
    }
    if (methods.includes(m)) {
      problems.push({ at: itemAt, message: `${m} is listed twice; remove one` });
      ok = false;
      continue;
    }
    methods.push(m);
  }
  return ok ? methods : undefined;
}

function validatePrincipals(v: unknown, at: string, problems: Problems): PrincipalType[] | null {
  const choices = PRINCIPAL_TYPES.join(', ');
  if (!Array.isArray(v)) {
    problems.push({ at, message: `must be a list drawn from ${choices}, e.g. [user]; got ${describe(v)}` });
    return null;
  }
  if (v.length === 0) {
    problems.push({ at, message: `must not be empty; list one or both of ${choices}, or remove it for [user]` });
    return null;
  }
  const out: PrincipalType[] = [];
  let ok = true;
  for (let i = 0; i < v.length; i++) {
    const item = v[i];
    if (typeof item !== 'string' || !(PRINCIPAL_TYPES as readonly string[]).includes(item)) {
      problems.push({ at: `${at}[${i}]`, message: `must be one of ${choices}; got ${describe(item)}` });
      ok = false;
    } else if (out.includes(item as PrincipalType)) {
      problems.push({ at: `${at}[${i}]`, message: `"${item}" is listed twice; remove one` });
      ok = false;
    } else {
      out.push(item as PrincipalType);
    }
  }
  return ok ? out : null;
}

/** Roles or permissions: [] when absent. */
function validateNames(v: unknown, at: string, what: string, problems: Problems): string[] | null {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    problems.push({ at, message: `must be a list of ${what} names, e.g. [admin]; got ${describe(v)}` });
    return null;
  }
  const out: string[] = [];
  let ok = true;
  for (let i = 0; i < v.length; i++) {
    const item = v[i];
    const itemAt = `${at}[${i}]`;
    if (typeof item !== 'string' || !NAME_RE.test(item)) {
      problems.push({
        at: itemAt,
        message: `must be a non-empty ${what} name without whitespace or commas (names travel comma-separated in headers); got ${describe(item)}`,
      });
      ok = false;
    } else if (out.includes(item)) {
      problems.push({ at: itemAt, message: `"${item}" is listed twice; remove one` });
      ok = false;
    } else {
      out.push(item);
    }
  }
  return ok ? out : null;
}

// ---------------------------------------------------------------------------
// Helpers

function isMapping(v: unknown): v is Mapping {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Own property only: `constructor` or `__proto__` never read through the prototype. */
function own(obj: Mapping, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

function checkKeys(obj: Mapping, allowed: readonly string[], at: string, problems: Problems): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue;
    const keyAt = at === '' ? formatKey(key, true) : `${at}${formatKey(key, false)}`;
    const guess = closest(key, allowed);
    problems.push({
      at: keyAt,
      message:
        `unknown key${guess === null ? '' : `; did you mean "${guess}"?`}` +
        ` (allowed here: ${allowed.join(', ')})`,
    });
  }
}

function formatKey(key: string, first: boolean): string {
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return first ? key : `.${key}`;
  return `[${JSON.stringify(key)}]`;
}

/** The allowed key within edit distance 2 of `key`, if any (catches `rolse`, `hots`). */
function closest(key: string, allowed: readonly string[]): string | null {
  const lower = key.toLowerCase();
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(lower, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Damerau–Levenshtein (optimal string alignment): a swapped pair counts as one edit. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64) return 3;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push(new Array<number>(b.length + 1).fill(0));
    rows[i]![0] = i;
  }
  for (let j = 0; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') {
    return v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}…` : JSON.stringify(v);
  }
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (isMapping(v)) return 'a mapping';
  return `a value of type ${typeof v === 'object' ? 'object' : typeof v}`;
}

function formatMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  return nl === -1 ? s : s.slice(0, nl);
}

function errorMessage(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unknown error';
  }
}
