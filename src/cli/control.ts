/**
 * The control-plane commands of `mezusphere`: organizations, projects and
 * routes, users and sessions, service accounts and keys, Warpgates, the audit
 * log, and the Console itself. They run the same control-plane code as the
 * admin API (src/control/), against the store directly (the CLI runs on the
 * edge host, with access to its data directory), and every change is audited
 * with the CLI's OS user as actor.
 *
 * Output: one human line (or table) by default, `--json` for the same JSON
 * shapes as the API; errors: one line naming the code (exit 1), bad
 * arguments: the reason and the usage (exit 2).
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hostname, userInfo } from 'node:os';
import { randomBytes, X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { openStore, type Store, type UserRecord } from '../store/index.js';
import { hashToken, newId, newSessionToken } from '../session/index.js';
import { parseDuration } from '../runtime/index.js';
import {
  Control,
  CONSOLE_DIRECTORY,
  CONSOLE_PROJECT,
  CONSOLE_ROLES,
  userView,
  sessionView,
  loginEventView,
  serviceAccountView,
  keyView,
  factorsView,
  auditView,
  STATUS_REPORT_FRESH_MS,
  type Actor,
  type ConsoleRole,
} from '../control/index.js';
import { MezuError } from '../errors/index.js';

export const CONTROL_USAGE = `  console [--host 127.0.0.1] [--port 8081] [--public-url URL] [--tls-cert F --tls-key F] [--tunnel-endpoint HOST:PORT]… [--tunnel-servername NAME]
          [--tunnel-server-ca F] [--warpgate-cert-ttl 1h] [--hash-threads 1] [--smtp smtp://…]   run the Console (admin API + pages)
  console add-owner --email E [--password-stdin] [--console-url URL]   create a Console owner (prints a link to set the password)
  console add-user --email E --role owner|admin|viewer [--password-stdin] [--console-url URL]
  orgs list | orgs add --id ID [--name N]
  projects list | projects add --id ID --hosts h1,h2 --upstream POOL [--organization ORG] [--directory project|organization] [--name N]
  routes get --project P | routes set --project P -f RULES.yaml [--expect-version N]   (RULES.yaml: a list of rules)
  users add (--project P | --directory D) --email E [--name N] [--roles a,b] [--permissions x,y]
  users set (--project P | --directory D) --email E [--status active|suspended|deactivated] [--name N] [--display-name N] [--roles a,b] [--permissions x,y]
  users list [--project P | --directory D] [--search TEXT] [--status S]
  users history EMAIL [--project P | --directory D] [--limit N]   logins, failures, resets, locks, and the last login
  users factors (--project P | --directory D) --email E [list | reset]   second factors (TOTP, passkeys, recovery codes left); reset removes them all
  sessions list (--project P | --directory D) --email E
  sessions create --project P --email E        print a new session token (the cookie value)
  sessions revoke --token T | (--project P | --directory D) --email E (--all | --id SID)
  service-accounts add --project P --name N [--roles a,b] [--permissions x,y]
  service-accounts list [--project P] | service-accounts set --id SA [--status active|disabled] [--name N] [--roles …] [--permissions …]
  keys create --service-account SA [--expires 30d]     print a new API key once
  keys list --service-account SA | keys revoke --id KEY_ID | keys rotate --id KEY_ID [--overlap 1h]
  warpgates list
  audit [--limit 50] [--action user.suspend] [--project P]
  streams                             open WebSockets and streamed responses per edge worker, and how many
                                      continuous authorization ended, by reason (from the workers' reports, every 5 s)`;

class ControlUsageError extends Error {
  readonly code = 'MEZU_USAGE';
}
function fail(msg: string): never {
  throw new ControlUsageError(msg);
}

type Vals = Record<string, string | boolean | string[] | undefined>;
type Opt = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };

/**
 * `--opt VALUE` where VALUE starts with '-' is read as `--opt=VALUE` when
 * --opt takes a value and VALUE is not itself an option: a session token is
 * base64url and starts with '-' one time in 64, and parseArgs would refuse
 * it as ambiguous.
 */
function dashValues(args: string[], options: Record<string, Opt>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : '';
    if (name !== '' && options[name]?.type === 'string' && next !== undefined && next.startsWith('-') && options[next.replace(/^--?/, '').split('=')[0]!] === undefined) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function parse(args: string[], extra: Record<string, Opt>, positionals = 0): { v: Vals; pos: string[] } {
  try {
    const options: Record<string, Opt> = { data: { type: 'string' }, json: { type: 'boolean' }, ...extra };
    const r = parseArgs({ args: dashValues(args, options), options, strict: true, allowPositionals: positionals > 0 });
    if (r.positionals.length > positionals) fail(`unexpected argument "${r.positionals[positionals]}"`);
    return { v: r.values as Vals, pos: r.positionals };
  } catch (err) {
    if (err instanceof ControlUsageError) throw err;
    fail((err as Error).message);
  }
}

const str = (v: Vals, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
const need = (v: Vals, k: string): string => str(v, k) ?? fail(`--${k} is required`);
const csvList = (s: string | undefined): string[] | undefined => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter((x) => x !== ''));
const dataDir = (v: Vals): string => resolve(str(v, 'data') ?? process.env.MEZU_DATA ?? '.mezu-dev');

function out(v: Vals, human: string, json: unknown): void {
  process.stdout.write((v.json ? JSON.stringify(json) : human) + '\n');
}

async function withControl<T>(v: Vals, fn: (c: Control, s: Store, actor: Actor) => Promise<T>): Promise<T> {
  const s = openStore(dataDir(v));
  try {
    // A replicated store answers and writes from the stream's tail (src/replicate).
    await s.replica?.catchUp();
    return await fn(new Control(s), s, cliActor());
  } finally {
    await s.close();
  }
}

export function cliActor(): Actor {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (containers): keep "unknown".
  }
  return { type: 'cli', id: user, name: `${user}@${hostname()}`, ip: '' };
}

/** `--project P` (the directory P signs in with) or `--directory D`. */
function directoryOf(v: Vals, c: Control, required: boolean): string | null {
  const d = str(v, 'directory');
  const p = str(v, 'project');
  if (d !== undefined && p !== undefined) fail('give --project or --directory, not both');
  if (d !== undefined) return d;
  if (p !== undefined) return c.directoryOfProject(p);
  if (required) fail('--project or --directory is required');
  return null;
}

function userByEmail(c: Control, dir: string, email: string): UserRecord {
  const u = c.store.users.getByEmail(dir, email);
  if (u === undefined) throw new MezuError('MEZU_USER_NOT_FOUND', `store: no user ${email} in directory ${dir}`);
  return u;
}

const iso = (t: number | null) => (t === null ? 'never' : new Date(t).toISOString());
const DIR_OPTS: Record<string, Opt> = { project: { type: 'string' }, directory: { type: 'string' } };

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Runs a control-plane command; false when `cmd` is not one of them. */
export async function runControlCommand(cmd: string, sub: string | undefined, rest: string[]): Promise<boolean> {
  const args = sub !== undefined && sub.startsWith('-') ? [sub, ...rest] : rest;
  const s = sub !== undefined && sub.startsWith('-') ? undefined : sub;
  switch (cmd) {
    case 'console': await cmdConsole(s, args); return true;
    case 'orgs': await cmdOrgs(s, args); return true;
    case 'projects': await cmdProjects(s, args); return true;
    case 'routes': await cmdRoutes(s, args); return true;
    case 'users': await cmdUsers(s, args); return true;
    case 'sessions': await cmdSessions(s, args); return true;
    case 'service-accounts': await cmdServiceAccounts(s, args); return true;
    case 'keys': await cmdKeys(s, args); return true;
    case 'warpgates': await cmdWarpgates(s, args); return true;
    case 'audit': await cmdAudit(sub === undefined ? [] : [sub, ...rest]); return true;
    case 'streams': await cmdStreams(sub === undefined ? [] : [sub, ...rest]); return true;
    default: return false;
  }
}

// ── console ──────────────────────────────────────────────────────────────

async function cmdConsole(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'add-owner' || sub === 'add-user') {
    const { v } = parse(args, { email: { type: 'string' }, role: { type: 'string' }, 'password-stdin': { type: 'boolean' }, 'console-url': { type: 'string' } });
    const email = need(v, 'email');
    const role = (sub === 'add-owner' ? 'owner' : need(v, 'role')) as ConsoleRole;
    if (!(CONSOLE_ROLES as readonly string[]).includes(role)) fail(`--role must be one of ${CONSOLE_ROLES.join(', ')}; got "${role}"`);
    const password = v['password-stdin'] ? await readStdin() : null;
    const consoleUrl = (str(v, 'console-url') ?? process.env.MEZU_CONSOLE_URL ?? 'http://localhost:8081').replace(/\/$/, '');
    const r = await withControl(v, async (c, store, actor) => {
      const u = await c.createConsoleUser(actor, email, role);
      if (password !== null) {
        const { checkNewPassword, describeVerdict } = await import('../login/index.js');
        const verdict = checkNewPassword(password, email);
        if (verdict !== 'ok') throw new MezuError('MEZU_PASSWORD_REJECTED', `login: ${describeVerdict(verdict)}`);
        const { pwhashStr } = await import('../../native/sodium.js');
        const params = c.config()?.passwords ?? { memoryBytes: 19 * 1024 * 1024, iterations: 2 };
        await store.credentials.set(u.id, pwhashStr(Buffer.from(password, 'utf8'), { memoryBytes: params.memoryBytes, iterations: params.iterations }));
        return { user: u, link: null as string | null };
      }
      // No password on the command line: a single-use link (24 h) to choose one on the Console's reset page.
      const token = randomBytes(32).toString('base64url');
      const now = Date.now();
      await store.emailTokens.add(hashToken(token), { purpose: 'reset', projectId: CONSOLE_PROJECT, directory: CONSOLE_DIRECTORY, email: u.email, userId: u.id, rd: '/', createdAt: now, expiresAt: now + 24 * 3600_000 });
      return { user: u, link: `${consoleUrl}/_mezu/reset?token=${token}` };
    });
    out(
      v,
      r.link === null
        ? `console: ${email} is a Console ${role}; sign in at ${consoleUrl}/`
        : `console: ${email} is a Console ${role}. Open this link within 24 hours to choose the password (it works once):\n  ${r.link}`,
      { user: userView(r.user), password_link: r.link },
    );
    return;
  }
  if (sub !== undefined) fail(`unknown console command "${sub}"`);
  const { v } = parse(args, {
    host: { type: 'string' }, port: { type: 'string' }, 'public-url': { type: 'string' },
    'tunnel-endpoint': { type: 'string', multiple: true }, 'tunnel-servername': { type: 'string' }, 'tunnel-server-ca': { type: 'string' },
    'warpgate-cert-ttl': { type: 'string' }, 'hash-threads': { type: 'string' }, smtp: { type: 'string' }, 'mail-from': { type: 'string' },
    'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' },
  });
  const { runConsole } = await import('../console/index.js');
  await runConsole(consoleOptions(v, dataDir(v)));
}

/** Console options from `console` flags (also used by `edge --console-port`). */
export function consoleOptions(v: Vals, dir: string, dflt: { tunnelPort?: number; tunnelHost?: string } = {}): import('../console/index.js').ConsoleOptions {
  const host = str(v, 'host') ?? '127.0.0.1';
  const rawPort = str(v, 'port') ?? '8081';
  if (!/^\d{1,5}$/.test(rawPort) || Number(rawPort) > 65535) fail(`--port must be a port number; got "${rawPort}"`);
  const port = Number(rawPort);
  const tls = consoleTls(str(v, 'tls-cert'), str(v, 'tls-key'));
  const publicUrl = (str(v, 'public-url') ?? `${tls === null ? 'http' : 'https'}://${host === '127.0.0.1' || host === '0.0.0.0' ? 'localhost' : host}:${port}`).replace(/\/$/, '');
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    fail(`--public-url must be an http(s) URL like http://localhost:8081; got "${publicUrl}"`);
  }
  const endpoints = (v['tunnel-endpoint'] as string[] | undefined) ?? [`${dflt.tunnelHost ?? '127.0.0.1'}:${dflt.tunnelPort ?? 7443}`];
  for (const e of endpoints) if (!/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(e)) fail(`--tunnel-endpoint must be HOST:PORT; got "${e}"`);
  const ttlRaw = str(v, 'warpgate-cert-ttl') ?? '1h';
  const ttl = parseDuration(ttlRaw);
  if (ttl === null || ttl < 5_000 || ttl > 30 * 86_400_000) fail(`--warpgate-cert-ttl must be a duration from 5s to 30d; got "${ttlRaw}"`);
  const threads = Number(str(v, 'hash-threads') ?? '1');
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) fail('--hash-threads must be 1..64');
  const firstHost = endpoints[0]!.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return {
    dataDir: dir,
    host,
    port,
    publicUrl,
    tunnelEndpoints: endpoints,
    tunnelServername: str(v, 'tunnel-servername') ?? (firstHost === '127.0.0.1' || firstHost === '::1' ? 'localhost' : firstHost),
    tunnelServerCaFile: str(v, 'tunnel-server-ca') ?? `${dir}/pki/ca.pem`,
    warpgateCertTtlMs: ttl,
    hashThreads: threads,
    smtpUrl: str(v, 'smtp') ?? process.env.MEZU_SMTP_URL ?? null,
    mailFrom: str(v, 'mail-from') ?? 'Mezusphere <no-reply@localhost>',
    tls,
  };
}

/**
 * `--tls-cert` and `--tls-key`, both or neither, checked here so a bad file is
 * a one-line error at start (uWS would only fail to listen, without saying why).
 */
function consoleTls(certFile: string | undefined, keyFile: string | undefined): { certFile: string; keyFile: string } | null {
  if (certFile === undefined && keyFile === undefined) return null;
  if (certFile === undefined || keyFile === undefined) fail('--tls-cert and --tls-key go together');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certFile));
  } catch (err) {
    fail(`--tls-cert ${certFile}: not a readable PEM certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(keyFile));
  } catch (err) {
    fail(`--tls-key ${keyFile}: not a readable PEM private key (${(err as Error).message})`);
  }
  if (!cert.checkPrivateKey(key)) fail(`--tls-key ${keyFile} is not the key of the certificate in ${certFile}`);
  if (Date.parse(cert.validTo) <= Date.now()) fail(`--tls-cert ${certFile} expired on ${cert.validTo}`);
  return { certFile, keyFile };
}

// ── organizations, projects, routes ─────────────────────────────────────

async function cmdOrgs(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'list') {
    const { v } = parse(args, {});
    const items = await withControl(v, async (c) => {
      const cfg = c.config();
      return cfg === null ? [] : [...cfg.organizations.values()].map((o) => ({ id: o.id, name: o.name, projects: [...cfg.projects.values()].filter((p) => p.organization === o.id).map((p) => p.id) }));
    });
    out(v, items.map((o) => `${o.id}\t${o.name}\t${o.projects.join(',')}`).join('\n'), items);
    return;
  }
  if (sub === 'add') {
    const { v } = parse(args, { id: { type: 'string' }, name: { type: 'string' } });
    const version = await withControl(v, (c, _s, a) => c.createOrganization(a, { id: need(v, 'id'), name: str(v, 'name') }));
    out(v, `orgs: added ${str(v, 'id')}; config version ${version}`, { id: str(v, 'id'), config_version: version });
    return;
  }
  fail(`unknown orgs command "${sub ?? ''}"`);
}

async function cmdProjects(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'list') {
    const { v } = parse(args, {});
    const items = await withControl(v, async (c) => [...(c.config()?.projects.values() ?? [])].map((p) => ({ id: p.id, name: p.name, organization: p.organization, directory: p.directory, hosts: [...p.hosts], upstream: p.upstream })));
    out(v, items.map((p) => `${p.id}\t${p.organization}\t${p.directory}\t${p.upstream}\t${p.hosts.join(',')}`).join('\n'), items);
    return;
  }
  if (sub === 'add') {
    const { v } = parse(args, { id: { type: 'string' }, name: { type: 'string' }, hosts: { type: 'string' }, upstream: { type: 'string' }, organization: { type: 'string' }, directory: { type: 'string' }, default: { type: 'string' } });
    const body = { id: need(v, 'id'), name: str(v, 'name'), hosts: csvList(need(v, 'hosts')), upstream: need(v, 'upstream'), organization: str(v, 'organization'), directory: str(v, 'directory'), default: str(v, 'default') };
    const version = await withControl(v, (c, _s, a) => c.createProject(a, body));
    out(v, `projects: added ${body.id}; config version ${version}`, { id: body.id, config_version: version });
    return;
  }
  fail(`unknown projects command "${sub ?? ''}"`);
}

async function cmdRoutes(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'get') {
    const { v } = parse(args, { project: { type: 'string' } });
    const project = need(v, 'project');
    const r = await withControl(v, async (c) => {
      c.project(project);
      const cfg = c.store.config.current()?.config as { projects?: Array<{ id: string; routes: unknown[] }> } | undefined;
      return { version: c.source().version, routes: cfg?.projects?.find((p) => p.id === project)?.routes ?? [] };
    });
    const human = (r.routes as Array<Record<string, unknown>>).map((x) => `${String(x.path).padEnd(24)} ${String(x.auth).padEnd(9)} ${x.methods ? `methods=${(x.methods as string[]).join(',')} ` : ''}${x.auth === 'required' ? `principals=${(x.principals as string[]).join(',')} roles=${(x.roles as string[]).join(',')} permissions=${(x.permissions as string[]).join(',')}` : ''}`).join('\n');
    out(v, `# ${project}, config version ${r.version}\n${human}`, { project, config_version: r.version, routes: r.routes });
    return;
  }
  if (sub === 'set') {
    const { v } = parse(args, { project: { type: 'string' }, file: { type: 'string', short: 'f' }, 'expect-version': { type: 'string' } });
    const project = need(v, 'project');
    const file = need(v, 'file');
    let rules: unknown;
    try {
      rules = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new MezuError('MEZU_CONFIG_INVALID', `config: cannot read ${file}: ${(err as Error).message}`);
    }
    const ev = str(v, 'expect-version');
    const version = await withControl(v, (c, _s, a) => c.setRoutes(a, project, rules, ev === undefined ? null : Number(ev)));
    out(v, `routes: ${project} updated; config version ${version} (served within a second)`, { project, config_version: version });
    return;
  }
  fail(`unknown routes command "${sub ?? ''}"`);
}

// ── users and sessions ──────────────────────────────────────────────────

const STATUS_VERB: Record<string, string> = { active: 'activate', suspended: 'suspend', deactivated: 'deactivate' };

async function cmdUsers(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'add') {
    const { v } = parse(args, { ...DIR_OPTS, email: { type: 'string' }, name: { type: 'string' }, roles: { type: 'string' }, permissions: { type: 'string' } });
    const rec = await withControl(v, (c, _s, a) => c.createUser(a, directoryOf(v, c, true)!, { email: need(v, 'email').trim(), name: str(v, 'name'), roles: csvList(str(v, 'roles')), permissions: csvList(str(v, 'permissions')) }));
    out(v, `users: created ${rec.email} as ${rec.id} in ${rec.directory}`, userView(rec));
    return;
  }
  if (sub === 'set') {
    const { v } = parse(args, { ...DIR_OPTS, email: { type: 'string' }, status: { type: 'string' }, name: { type: 'string' }, 'display-name': { type: 'string' }, roles: { type: 'string' }, permissions: { type: 'string' } });
    const status = str(v, 'status');
    if (status !== undefined && STATUS_VERB[status] === undefined) fail(`--status must be one of active, suspended, deactivated; got "${status}"`);
    const patch: Record<string, unknown> = {};
    if (str(v, 'name') !== undefined) patch.name = str(v, 'name');
    if (str(v, 'display-name') !== undefined) patch.display_name = str(v, 'display-name');
    if (str(v, 'roles') !== undefined) patch.roles = csvList(str(v, 'roles'));
    if (str(v, 'permissions') !== undefined) patch.permissions = csvList(str(v, 'permissions'));
    if (status === undefined && Object.keys(patch).length === 0) fail('nothing to change: give --status, --name, --display-name, --roles or --permissions');
    const rec = await withControl(v, async (c, _s, a) => {
      const u = userByEmail(c, directoryOf(v, c, true)!, need(v, 'email'));
      let r = u;
      if (Object.keys(patch).length > 0) r = await c.updateUser(a, u.id, patch);
      if (status !== undefined) r = await c.setUserStatus(a, u.id, status as UserRecord['status']);
      return r;
    });
    out(v, `users: ${rec.email} is ${rec.status}; roles [${rec.roles.join(', ')}]; permissions [${rec.permissions.join(', ')}]`, userView(rec));
    return;
  }
  if (sub === 'list') {
    const { v } = parse(args, { ...DIR_OPTS, search: { type: 'string' }, status: { type: 'string' } });
    const q = (str(v, 'search') ?? '').toLowerCase();
    const st = str(v, 'status');
    const users = await withControl(v, async (c) => c.store.users.list(directoryOf(v, c, false)).filter((u) => (st === undefined || u.status === st) && (q === '' || u.email.toLowerCase().includes(q) || u.name.toLowerCase().includes(q))));
    out(v, users.map((u) => `${u.id}\t${u.directory}\t${u.email}\t${u.status}\t${u.roles.join(',')}\t${iso(u.lastLoginAt)}`).join('\n'), users.map(userView));
    return;
  }
  if (sub === 'history') {
    const { v, pos } = parse(args, { ...DIR_OPTS, limit: { type: 'string' } }, 1);
    if (pos.length !== 1) fail('users history takes exactly one EMAIL');
    const email = pos[0]!.trim();
    const limitRaw = str(v, 'limit') ?? '50';
    if (!/^\d{1,6}$/.test(limitRaw) || Number(limitRaw) < 1) fail(`--limit must be a positive integer; got "${limitRaw}"`);
    const r = await withControl(v, async (c, store) => {
      const only = directoryOf(v, c, false);
      // Without a directory: the email in every directory that has history or a user for it.
      const dirs = only !== null ? [only] : c.directories().map((d) => d.id);
      const found: Array<{ directory: string; user: { id: string; status: string; last_login_at: string | null } | null; events: unknown[]; raw: ReturnType<Store['loginHistory']['list']> }> = [];
      for (const d of dirs) {
        const u = store.users.getByEmail(d, email);
        const events = store.loginHistory.list(d, email, Number(limitRaw));
        if (u === undefined && events.length === 0) continue;
        found.push({ directory: d, user: u === undefined ? null : { id: u.id, status: u.status, last_login_at: u.lastLoginAt === null ? null : new Date(u.lastLoginAt).toISOString() }, events: events.map(loginEventView), raw: events });
      }
      return found;
    });
    if (r.length === 0) throw new MezuError('MEZU_USER_NOT_FOUND', `users: no user and no history for ${email}`);
    const lines: string[] = [];
    for (const d of r) {
      lines.push(`${email} in ${d.directory}: ${d.user === null ? 'no such user' : `${d.user.id}, ${d.user.status}, last login ${d.user.last_login_at ?? 'never'}`}`);
      for (const e of d.raw) lines.push(`  ${iso(e.at)}  ${e.type.padEnd(16)} ${(e.reason ?? '').padEnd(18)} ${e.ip.padEnd(15)} ${e.userAgent}`);
    }
    out(v, lines.join('\n'), r.map(({ directory, user, events }) => ({ directory, user, events })));
    return;
  }
  if (sub === 'factors') {
    const { v, pos } = parse(args, { ...DIR_OPTS, email: { type: 'string' } }, 1);
    const what = pos[0] ?? 'list';
    if (pos.length > 1 || (what !== 'list' && what !== 'reset')) fail('users factors takes list or reset');
    const r = await withControl(v, async (c, _store, actor) => {
      const u = userByEmail(c, directoryOf(v, c, true)!, need(v, 'email'));
      const reset = what === 'reset' ? (await c.resetFactors(actor, u.id)).reset : null;
      return { user: u, reset, factors: c.factors(u.id) };
    });
    const f = r.factors;
    const text =
      r.reset === null
        ? `${r.user.email}: TOTP ${f.totp ? `on since ${iso(f.enrolledAt)}, last used ${iso(f.lastUsedAt) ?? 'never'}` : f.pending ? 'enrolment begun, not confirmed' : 'off'}; ${f.passkeys.length} passkey(s)${f.passkeys.map((k) => `\n  passkey ${k.id.slice(0, 16)}… for ${k.rpId}, added ${iso(k.createdAt)}, last used ${iso(k.lastUsedAt) ?? 'never'}${k.backedUp ? ', synced' : ''}`).join('')}; ${f.recoveryLeft} recovery code(s) left`
        : r.reset
          ? `${r.user.email}: second factors removed; the next sign-in asks for the password only`
          : `${r.user.email}: had no second factor; nothing removed`;
    out(v, text, { user: r.user.id, email: r.user.email, ...(r.reset === null ? {} : { reset: r.reset }), factors: factorsView(f) });
    return;
  }
  fail(`unknown users command "${sub ?? ''}"`);
}

async function cmdSessions(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'create') {
    const { v } = parse(args, { project: { type: 'string' }, email: { type: 'string' } });
    const project = need(v, 'project');
    const email = need(v, 'email');
    const r = await withControl(v, async (c, store, actor) => {
      const u = userByEmail(c, c.directoryOfProject(project), email);
      if (u.status !== 'active') throw new MezuError('MEZU_STATUS_TRANSITION', `sessions: ${email} is ${u.status}`);
      const token = newSessionToken();
      const now = Date.now();
      const sid = newId('ses_');
      await store.sessions.create(hashToken(token), { id: sid, principalType: 'user', userId: u.id, projectId: project, createdAt: now, lastSeenAt: now, authTime: now, amr: ['cli'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
      // A session made without a password is a change like any other: audited (never the token).
      await c.record(actor, 'session.create', { type: 'session', id: sid }, project, { user: u.id, email: u.email, amr: ['cli'] });
      return { token, sessionId: sid, userId: u.id };
    });
    out(v, r.token, r);
    return;
  }
  if (sub === 'list') {
    const { v } = parse(args, { ...DIR_OPTS, email: { type: 'string' } });
    const list = await withControl(v, async (c) => c.sessions(userByEmail(c, directoryOf(v, c, true)!, need(v, 'email')).id));
    out(v, list.map((s) => `${s.id}\t${s.projectId}\t${iso(s.createdAt)}\t${iso(s.lastSeenAt)}\t${s.amr.join(',')}`).join('\n'), list.map(sessionView));
    return;
  }
  if (sub === 'revoke') {
    const { v } = parse(args, { token: { type: 'string' }, ...DIR_OPTS, email: { type: 'string' }, all: { type: 'boolean' }, id: { type: 'string' } });
    const token = str(v, 'token');
    if (token !== undefined) {
      const ok = await withControl(v, async (_c, store, a) => {
        const th = hashToken(token);
        const s = store.sessions.get(th);
        const done = await store.sessions.revoke(th);
        if (done && s !== undefined) await _c.record(a, 'session.revoke', { type: 'session', id: s.id }, s.projectId, { user: s.userId });
        return done;
      });
      out(v, ok ? 'sessions: revoked' : 'sessions: no such session', { revoked: ok ? 1 : 0 });
      return;
    }
    if (!v.all && str(v, 'id') === undefined) fail('give --token T, or (--project P | --directory D) --email E with --all or --id SID');
    const n = await withControl(v, async (c, _s, a) => {
      const u = userByEmail(c, directoryOf(v, c, true)!, need(v, 'email'));
      if (v.all) return c.revokeAllSessions(a, u.id);
      await c.revokeSession(a, u.id, str(v, 'id')!);
      return 1;
    });
    out(v, `sessions: revoked ${n}`, { revoked: n });
    return;
  }
  fail(`unknown sessions command "${sub ?? ''}"`);
}

// ── service accounts and keys ───────────────────────────────────────────

async function cmdServiceAccounts(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'add') {
    const { v } = parse(args, { project: { type: 'string' }, name: { type: 'string' }, roles: { type: 'string' }, permissions: { type: 'string' } });
    const rec = await withControl(v, (c, _s, a) => c.createServiceAccount(a, need(v, 'project'), { name: need(v, 'name'), roles: csvList(str(v, 'roles')), permissions: csvList(str(v, 'permissions')) }));
    out(v, `service-accounts: created ${rec.name} as ${rec.id}`, serviceAccountView(rec));
    return;
  }
  if (sub === 'list') {
    const { v } = parse(args, { project: { type: 'string' } });
    const list = await withControl(v, async (_c, s) => s.serviceAccounts.list(str(v, 'project') ?? null));
    out(v, list.map((x) => `${x.id}\t${x.projectId}\t${x.name}\t${x.status}\t${x.permissions.join(',')}`).join('\n'), list.map(serviceAccountView));
    return;
  }
  if (sub === 'set') {
    const { v } = parse(args, { id: { type: 'string' }, status: { type: 'string' }, name: { type: 'string' }, roles: { type: 'string' }, permissions: { type: 'string' } });
    const patch: Record<string, unknown> = {};
    for (const k of ['status', 'name'] as const) if (str(v, k) !== undefined) patch[k] = str(v, k);
    for (const k of ['roles', 'permissions'] as const) if (str(v, k) !== undefined) patch[k] = csvList(str(v, k));
    const rec = await withControl(v, (c, _s, a) => c.updateServiceAccount(a, need(v, 'id'), patch));
    out(v, `service-accounts: ${rec.name} (${rec.id}) is ${rec.status}; permissions [${rec.permissions.join(', ')}]`, serviceAccountView(rec));
    return;
  }
  fail(`unknown service-accounts command "${sub ?? ''}"`);
}

async function cmdKeys(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'create') {
    const { v } = parse(args, { 'service-account': { type: 'string' }, expires: { type: 'string' } });
    const exp = str(v, 'expires');
    const k = await withControl(v, (c, _s, a) => c.createKey(a, need(v, 'service-account'), exp === undefined ? {} : { expires_in: exp }));
    out(v, k.text, { id: k.rec.id, key: k.text, expiresAt: k.rec.expiresAt, ...keyView(k.rec, Date.now()) });
    return;
  }
  if (sub === 'list') {
    const { v } = parse(args, { 'service-account': { type: 'string' } });
    const keys = await withControl(v, async (c, s) => s.serviceAccounts.listKeys(c.serviceAccount(need(v, 'service-account')).id));
    const now = Date.now();
    out(v, keys.map((k) => `mzk_${k.id}\t${keyView(k, now).state}\tcreated ${iso(k.createdAt)}\texpires ${iso(k.expiresAt)}\tlast used ${iso(k.lastUsedAt)}`).join('\n'), keys.map((k) => keyView(k, now)));
    return;
  }
  if (sub === 'revoke') {
    const { v } = parse(args, { id: { type: 'string' } });
    const id = need(v, 'id').replace(/^mzk_/, '');
    const r = await withControl(v, async (c, s, a) => {
      const k = s.serviceAccounts.getKey(id);
      if (k === undefined) return null;
      const was = k.revokedAt;
      await c.revokeKey(a, k.serviceAccountId, id);
      return was === null;
    });
    out(v, r === null ? 'keys: no such key' : r ? 'keys: revoked' : 'keys: already revoked', { revoked: r === true });
    if (r === null) process.exitCode = 1;
    return;
  }
  if (sub === 'rotate') {
    const { v } = parse(args, { id: { type: 'string' }, overlap: { type: 'string' } });
    const id = need(v, 'id').replace(/^mzk_/, '');
    const r = await withControl(v, async (c, s, a) => {
      const k = s.serviceAccounts.getKey(id);
      if (k === undefined) throw new MezuError('MEZU_KEY_NOT_FOUND', `store: no key ${id}`);
      return c.rotateKey(a, k.serviceAccountId, id, str(v, 'overlap') === undefined ? {} : { overlap: str(v, 'overlap') });
    });
    out(v, `${r.text}\n# the previous key mzk_${r.old.id} keeps working until ${iso(r.old.expiresAt)}`, { id: r.rec.id, key: r.text, previous: keyView(r.old, Date.now()) });
    return;
  }
  fail(`unknown keys command "${sub ?? ''}"`);
}

// ── Warpgates, audit ────────────────────────────────────────────────────

async function cmdWarpgates(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'list') fail(`unknown warpgates command "${sub ?? ''}"`);
  const { v } = parse(args, {});
  const items = await withControl(v, async (c, s) => {
    const { listWarpgates } = await import('../console/index.js');
    return listWarpgates({ store: s, control: c, clock: c.clock });
  });
  out(v, items.map((w) => `${w.id}\t${w.project ?? ''}\t${w.pool}\t${w.connected ? `connected since ${w.connected_since}` : w.refused_at !== null ? `refused ${w.refused_at}` : 'disconnected'}\t${(w.tunnels as Array<{ worker: number }>).length} tunnels`).join('\n'), items);
}

async function cmdStreams(args: string[]): Promise<void> {
  const { v } = parse(args, {});
  const reports = await withControl(v, async (_c, s) => s.tunnelStatus.all());
  const fresh = Date.now() - STATUS_REPORT_FRESH_MS;
  const workers: Array<{ edge: string; worker: number; pid: number; open: number; websockets: number; ended: Record<string, number> }> = [];
  const total = { open: 0, websockets: 0, ended: {} as Record<string, number> };
  for (const r of reports) {
    if (r.updatedAt < fresh || r.live === undefined) continue;
    workers.push({ edge: r.edgeId, worker: r.worker, pid: r.pid, ...r.live });
    total.open += r.live.open;
    total.websockets += r.live.websockets;
    for (const [why, n] of Object.entries(r.live.ended)) total.ended[why] = (total.ended[why] ?? 0) + n;
  }
  const ended = (e: Record<string, number>) => (Object.keys(e).length === 0 ? 'none' : Object.entries(e).map(([k, n]) => `${k}: ${n}`).join(', '));
  const lines = workers.map((w) => `edge ${w.edge} worker ${w.worker} (pid ${w.pid}): ${w.open} open, ${w.websockets} WebSockets; ended: ${ended(w.ended)}`);
  lines.push(workers.length === 0 ? 'no edge worker has reported in the last 15 s' : `total: ${total.open} open, ${total.websockets} WebSockets; ended: ${ended(total.ended)}`);
  out(v, lines.join('\n'), { workers, total });
}

async function cmdAudit(args: string[]): Promise<void> {
  const { v } = parse(args, { limit: { type: 'string' }, action: { type: 'string' }, project: { type: 'string' } });
  const limitRaw = str(v, 'limit') ?? '50';
  if (!/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1) fail(`--limit must be 1..9999; got "${limitRaw}"`);
  const action = str(v, 'action');
  const project = str(v, 'project');
  const page = await withControl(v, async (_c, s) => s.audit.page(null, Number(limitRaw), (a) => (action === undefined || a.action === action || a.action.startsWith(`${action}.`)) && (project === undefined || a.projectId === project)));
  out(v, page.entries.map((a) => `${iso(a.at)}  ${a.actor.type}:${a.actor.name}  ${a.action.padEnd(24)} ${a.target.type} ${a.target.id}  ${JSON.stringify(a.details)}`).join('\n'), page.entries.map(auditView));
}
