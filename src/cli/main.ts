#!/usr/bin/env node
/**
 * `mezusphere`: the edge and its operator commands. Bad arguments get a
 * one-line reason and the usage (exit 2); failures a one-line reason (exit 1).
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfigYaml, parseDuration, parseSize } from '../config/index.js';
import { DEFAULT_MAX_HEAD_BYTES, MIN_MAX_HEAD_BYTES, MAX_MAX_HEAD_BYTES } from '../hardening/index.js';
import { openStore, type Store, type UserStatus } from '../store/index.js';
import { Signer } from '../identity/index.js';
import { hashToken, newApiKey, newId, newSessionToken } from '../session/index.js';
import { ensureDevPki } from '../pki/index.js';
import { ENV_OPTIONS, ENV_WORKER_INDEX, type EdgeOptions } from '../cluster/options.js';
import { codeOf } from '../errors/index.js';

const USAGE = `usage: mezusphere <command> [options]   (every command takes --data DIR, default $MEZU_DATA or ./.mezu-dev)
  edge [--host 127.0.0.1] [--port 8080] [--workers N] [--tunnel-host 127.0.0.1] [--tunnel-port 7443]
       [--tunnel-cert F --tunnel-key F --tunnel-ca F] [--issuer URL] [--scheme http|https]
       [--response-timeout 60s] [--drain-grace 10s] [--hash-threads 1] [--smtp smtp://…] [--mail-from ADDR] [--tunnel-impl lean|node] [--tunnel-ping 2s] [--tunnel-ping-timeout 4s]
       [--max-head-size 16KiB]
  apply -f FILE                       validate a YAML config and store it as the next version
  config get                          print the YAML of the current version
  users add --project P --email E [--name N] [--roles a,b] [--permissions x,y]
  users set --project P --email E [--status active|suspended|deactivated] [--roles a,b] [--permissions x,y]
  users list [--project P]
  users history EMAIL [--project P] [--limit N]   authentication events (logins, failures, resets, locks) and last login
  sessions create --project P --email E        print a new session token (the cookie value)
  sessions revoke --token T | --project P --email E --all
  service-accounts add --project P --name N [--roles a,b] [--permissions x,y]
  keys create --service-account ID [--expires 30d]     print a new API key once
  keys revoke --id KEY_ID
  signing-keys rotate
  pki init --pool NAME [--pool NAME…]  create the dev tunnel CA and certificates under DATA/pki
  mail outbox [--to EMAIL] [--limit N]  mail kept by the development outbox (reset and signup links)
  loadtest URL [--project P [--email E] [--roles a,b] [--permissions x,y] [--https-cookie] [--keep] | --cookie NAME=VALUE | --key mzk_…]
           [-c 10] [-d 10s] [-a N] [-R REQ_PER_S] [-m GET] [-b TEXT|@FILE] [-H 'Name: value']… [--allow-errors] [--insecure]
                                      load a URL with autocannon (as a provisioned test user), print latency and throughput
Add --json for machine-readable output.`;

class UsageError extends Error {
  readonly code = 'MEZU_USAGE';
}

function fail(msg: string): never {
  throw new UsageError(msg);
}

type Vals = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], extra: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>): Vals {
  try {
    return parseArgs({
      args,
      options: { data: { type: 'string' }, json: { type: 'boolean' }, ...extra },
      strict: true,
      allowPositionals: false,
    }).values as Vals;
  } catch (err) {
    fail((err as Error).message);
  }
}

const str = (v: Vals, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
const need = (v: Vals, k: string): string => str(v, k) ?? fail(`--${k} is required`);
const list = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(',').map((x) => x.trim()).filter((x) => x !== ''));
const dataDir = (v: Vals): string => resolve(str(v, 'data') ?? process.env.MEZU_DATA ?? '.mezu-dev');

function out(v: Vals, human: string, json: unknown): void {
  process.stdout.write((v.json ? JSON.stringify(json) : human) + '\n');
}

async function withStore<T>(v: Vals, fn: (s: Store) => Promise<T>): Promise<T> {
  const s = openStore(dataDir(v));
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

function durationOpt(v: Vals, k: string, dflt: string): number {
  const raw = str(v, k) ?? dflt;
  const ms = parseDuration(raw);
  if (ms === null || ms <= 0) fail(`--${k} must be a duration like 30s, 10m, 24h; got "${raw}"`);
  return ms;
}

function intOpt(v: Vals, k: string, dflt: number, min: number, max: number): number {
  const raw = str(v, k);
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) fail(`--${k} must be an integer from ${min} to ${max}; got "${raw}"`);
  return n;
}

function sizeOpt(v: Vals, k: string, dflt: number, min: number, max: number): number {
  const raw = str(v, k);
  if (raw === undefined) return dflt;
  const n = parseSize(raw);
  if (n === null || n < min || n > max) fail(`--${k} must be a size from ${min} to ${max} bytes, like 16KiB or 32768; got "${raw}"`);
  return n;
}

function smtpOpt(raw: string | undefined): string | null {
  if (raw === undefined || raw === '') return null;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    fail(`--smtp must be a URL like smtp://user:pass@mail.example:587; got "${raw}"`);
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') fail(`--smtp must be an smtp:// or smtps:// URL; got "${u.protocol}"`);
  return raw;
}

async function cmdEdge(args: string[]): Promise<void> {
  const v = parse(args, {
    host: { type: 'string' }, port: { type: 'string' }, workers: { type: 'string' },
    'tunnel-host': { type: 'string' }, 'tunnel-port': { type: 'string' },
    'tunnel-cert': { type: 'string' }, 'tunnel-key': { type: 'string' }, 'tunnel-ca': { type: 'string', multiple: true },
    issuer: { type: 'string' }, scheme: { type: 'string' }, 'response-timeout': { type: 'string' }, 'drain-grace': { type: 'string' },
    'config-poll-ms': { type: 'string' },
    'hash-threads': { type: 'string' }, smtp: { type: 'string' }, 'mail-from': { type: 'string' },
    'tunnel-impl': { type: 'string' }, 'tunnel-ping': { type: 'string' }, 'tunnel-ping-timeout': { type: 'string' },
    'max-head-size': { type: 'string' },
  });
  const tunnelImpl = str(v, 'tunnel-impl') ?? 'lean';
  if (tunnelImpl !== 'lean' && tunnelImpl !== 'node') fail(`--tunnel-impl must be lean or node; got "${tunnelImpl}"`);
  const dir = dataDir(v);
  const scheme = str(v, 'scheme') ?? 'http';
  if (scheme !== 'http' && scheme !== 'https') fail(`--scheme must be http or https; got "${scheme}"`);
  const host = str(v, 'host') ?? '127.0.0.1';
  const port = intOpt(v, 'port', 8080, 0, 65535);
  const opts: EdgeOptions = {
    dataDir: dir,
    host,
    port,
    workers: intOpt(v, 'workers', availableParallelism(), 1, 256),
    tunnelHost: str(v, 'tunnel-host') ?? '127.0.0.1',
    tunnelPort: intOpt(v, 'tunnel-port', 7443, 0, 65535),
    tunnelCertFile: str(v, 'tunnel-cert') ?? `${dir}/pki/edge-tunnel.pem`,
    tunnelKeyFile: str(v, 'tunnel-key') ?? `${dir}/pki/edge-tunnel-key.pem`,
    tunnelCaFiles: (v['tunnel-ca'] as string[] | undefined) ?? [`${dir}/pki/ca.pem`],
    issuer: str(v, 'issuer') ?? `${scheme}://${host === '127.0.0.1' ? 'localhost' : host}:${port}`,
    scheme,
    responseTimeoutMs: durationOpt(v, 'response-timeout', '60s'),
    drainGraceMs: durationOpt(v, 'drain-grace', '10s'),
    configPollMs: intOpt(v, 'config-poll-ms', 500, 10, 60_000),
    tunnelImpl,
    tunnelPingMs: durationOpt(v, 'tunnel-ping', '2s'),
    tunnelPingTimeoutMs: durationOpt(v, 'tunnel-ping-timeout', '4s'),
    maxHeadBytes: sizeOpt(v, 'max-head-size', DEFAULT_MAX_HEAD_BYTES, MIN_MAX_HEAD_BYTES, MAX_MAX_HEAD_BYTES),
    hashThreads: intOpt(v, 'hash-threads', 1, 1, 64),
    smtpUrl: smtpOpt(str(v, 'smtp') ?? process.env.MEZU_SMTP_URL),
    mailFrom: str(v, 'mail-from') ?? 'Mezusphere <no-reply@localhost>',
    edgeId: '',
  };
  for (const f of [opts.tunnelCertFile, opts.tunnelKeyFile, ...opts.tunnelCaFiles]) {
    try {
      readFileSync(f);
    } catch {
      fail(`cannot read ${f}; run \`mezusphere pki init --pool NAME\` for development certificates or pass --tunnel-cert/--tunnel-key/--tunnel-ca`);
    }
  }
  const { runPrimary } = await import('../cluster/primary.js');
  await runPrimary(opts);
}

async function cmdApply(args: string[]): Promise<void> {
  const v = parse(args, { file: { type: 'string', short: 'f' }, 'expect-version': { type: 'string' } });
  const file = need(v, 'file');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`config: cannot read ${file}: ${(err as Error).message}`);
  }
  const r = parseConfigYaml(text);
  if (!r.ok) {
    if (v.json) out(v, '', { ok: false, code: 'MEZU_CONFIG_INVALID', problems: r.problems });
    else {
      process.stderr.write(`config: ${file} is invalid (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}); nothing was applied (MEZU_CONFIG_INVALID)\n`);
      for (const p of r.problems) process.stderr.write(`  ${p.at}: ${p.message}\n`);
    }
    process.exitCode = 1;
    return;
  }
  const expect = str(v, 'expect-version');
  const version = await withStore(v, (s) => s.config.apply(text, r.config, expect === undefined ? null : Number(expect)));
  out(v, `config: applied ${file} as version ${version} (${r.config.projects.length} project${r.config.projects.length === 1 ? '' : 's'})`, { ok: true, version });
}

async function cmdConfig(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'get') fail(`unknown config command "${sub ?? ''}"`);
  const v = parse(args, {});
  await withStore(v, async (s) => {
    const c = s.config.current();
    if (c === undefined) throw new Error('config: nothing applied yet');
    out(v, c.source.trimEnd(), { version: c.version, appliedAt: c.appliedAt, source: c.source });
  });
}

const STATUSES: UserStatus[] = ['active', 'suspended', 'deactivated'];

async function cmdUsers(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'add') {
    const v = parse(args, { project: { type: 'string' }, email: { type: 'string' }, name: { type: 'string' }, roles: { type: 'string' }, permissions: { type: 'string' } });
    const project = need(v, 'project');
    const email = need(v, 'email').trim();
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) fail(`--email must be an email address; got "${email}"`);
    const now = Date.now();
    const name = str(v, 'name') ?? email.split('@')[0]!;
    const rec = { id: newId('usr_'), directory: project, email, name, displayName: name, status: 'active' as const, roles: list(str(v, 'roles')), permissions: list(str(v, 'permissions')), version: 1, createdAt: now, updatedAt: now, lastLoginAt: null };
    await withStore(v, (s) => s.users.create(rec));
    out(v, `users: created ${email} as ${rec.id} in ${project}`, rec);
    return;
  }
  if (sub === 'set') {
    const v = parse(args, { project: { type: 'string' }, email: { type: 'string' }, status: { type: 'string' }, roles: { type: 'string' }, permissions: { type: 'string' } });
    const project = need(v, 'project');
    const email = need(v, 'email');
    const status = str(v, 'status');
    if (status !== undefined && !STATUSES.includes(status as UserStatus)) fail(`--status must be one of ${STATUSES.join(', ')}; got "${status}"`);
    const patch: { status?: UserStatus; roles?: string[]; permissions?: string[] } = {};
    if (status !== undefined) patch.status = status as UserStatus;
    if (str(v, 'roles') !== undefined) patch.roles = list(str(v, 'roles'));
    if (str(v, 'permissions') !== undefined) patch.permissions = list(str(v, 'permissions'));
    if (Object.keys(patch).length === 0) fail('nothing to change: give --status, --roles or --permissions');
    const rec = await withStore(v, async (s) => {
      const u = s.users.getByEmail(project, email);
      if (u === undefined) throw new Error(`users: no user ${email} in ${project}`);
      const r = await s.users.update(u.id, patch);
      // Suspension and deactivation end every session at once (the edge also checks status on every request).
      if (patch.status !== undefined && patch.status !== 'active') await s.sessions.revokeAllForUser(u.id);
      return r;
    });
    out(v, `users: ${email} is ${rec.status}; roles [${rec.roles.join(', ')}]; permissions [${rec.permissions.join(', ')}]`, rec);
    return;
  }
  if (sub === 'list') {
    const v = parse(args, { project: { type: 'string' } });
    const users = await withStore(v, async (s) => s.users.list(str(v, 'project') ?? null));
    out(v, users.map((u) => `${u.id}\t${u.directory}\t${u.email}\t${u.status}\t${u.roles.join(',')}`).join('\n'), users);
    return;
  }
  fail(`unknown users command "${sub ?? ''}"`);
}

/** `users history EMAIL`: positional email (the one command that takes one). */
async function cmdUsersHistory(args: string[]): Promise<void> {
  let parsed: { values: Vals; positionals: string[] };
  try {
    parsed = parseArgs({ args, options: { data: { type: 'string' }, json: { type: 'boolean' }, project: { type: 'string' }, limit: { type: 'string' } }, strict: true, allowPositionals: true }) as { values: Vals; positionals: string[] };
  } catch (err) {
    fail((err as Error).message);
  }
  const v = parsed.values;
  if (parsed.positionals.length !== 1) fail('users history takes exactly one EMAIL');
  const email = parsed.positionals[0]!.trim();
  const limit = intOpt(v, 'limit', 50, 1, 100_000);
  const r = await withStore(v, async (s) => {
    // Without --project: the email in every directory that has history or a user for it.
    const dirs = str(v, 'project') !== undefined ? [str(v, 'project')!] : [...new Set([...s.users.list(null).map((u) => u.directory), ...(s.config.current()?.config as { projects?: Array<{ id: string }> } | undefined)?.projects?.map((p) => p.id) ?? []])];
    const out: Array<{ directory: string; user: { id: string; status: string; lastLoginAt: number | null } | null; events: ReturnType<Store['loginHistory']['list']> }> = [];
    for (const d of dirs) {
      const u = s.users.getByEmail(d, email);
      const events = s.loginHistory.list(d, email, limit);
      if (u === undefined && events.length === 0) continue;
      out.push({ directory: d, user: u === undefined ? null : { id: u.id, status: u.status, lastLoginAt: u.lastLoginAt }, events });
    }
    return out;
  });
  if (r.length === 0) throw new Error(`users: no user and no history for ${email}`);
  const iso = (t: number | null) => (t === null ? 'never' : new Date(t).toISOString());
  const lines: string[] = [];
  for (const d of r) {
    lines.push(`${email} in ${d.directory}: ${d.user === null ? 'no such user' : `${d.user.id}, ${d.user.status}, last login ${iso(d.user.lastLoginAt)}`}`);
    for (const e of d.events) lines.push(`  ${iso(e.at)}  ${e.type.padEnd(16)} ${(e.reason ?? '').padEnd(18)} ${e.ip.padEnd(15)} ${e.userAgent}`);
  }
  out(v, lines.join('\n'), r);
}

async function cmdMail(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'outbox') fail(`unknown mail command "${sub ?? ''}"`);
  const v = parse(args, { to: { type: 'string' }, limit: { type: 'string' } });
  const limit = intOpt(v, 'limit', 20, 1, 10_000);
  const mails = await withStore(v, async (s) => s.outbox.list(str(v, 'to') ?? null, limit));
  const human = mails.length === 0
    ? 'mail: the outbox is empty (the edge writes here unless it runs with --smtp)'
    : mails.map((m) => `── ${new Date(m.at).toISOString()}  to ${m.to}  (${m.projectId})\nSubject: ${m.subject}\n\n${m.text.trimEnd()}\n`).join('\n');
  out(v, human, mails);
}

async function cmdSessions(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'create') {
    const v = parse(args, { project: { type: 'string' }, email: { type: 'string' } });
    const project = need(v, 'project');
    const email = need(v, 'email');
    const r = await withStore(v, async (s) => {
      const u = s.users.getByEmail(project, email);
      if (u === undefined) throw new Error(`sessions: no user ${email} in ${project}`);
      if (u.status !== 'active') throw new Error(`sessions: ${email} is ${u.status}`);
      const token = newSessionToken();
      const now = Date.now();
      const sid = newId('ses_');
      await s.sessions.create(hashToken(token), { id: sid, principalType: 'user', userId: u.id, projectId: project, createdAt: now, lastSeenAt: now, authTime: now, amr: ['cli'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
      return { token, sessionId: sid, userId: u.id };
    });
    out(v, r.token, r);
    return;
  }
  if (sub === 'revoke') {
    const v = parse(args, { token: { type: 'string' }, project: { type: 'string' }, email: { type: 'string' }, all: { type: 'boolean' } });
    const token = str(v, 'token');
    if (token !== undefined) {
      const ok = await withStore(v, (s) => s.sessions.revoke(hashToken(token)));
      out(v, ok ? 'sessions: revoked' : 'sessions: no such session', { revoked: ok ? 1 : 0 });
      return;
    }
    if (!v.all) fail('give --token T, or --project P --email E --all');
    const project = need(v, 'project');
    const email = need(v, 'email');
    const n = await withStore(v, async (s) => {
      const u = s.users.getByEmail(project, email);
      if (u === undefined) throw new Error(`sessions: no user ${email} in ${project}`);
      return s.sessions.revokeAllForUser(u.id);
    });
    out(v, `sessions: revoked ${n}`, { revoked: n });
    return;
  }
  fail(`unknown sessions command "${sub ?? ''}"`);
}

async function cmdServiceAccounts(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'add') fail(`unknown service-accounts command "${sub ?? ''}"`);
  const v = parse(args, { project: { type: 'string' }, name: { type: 'string' }, roles: { type: 'string' }, permissions: { type: 'string' } });
  const now = Date.now();
  const rec = { id: newId('sa_'), projectId: need(v, 'project'), name: need(v, 'name'), status: 'active' as const, roles: list(str(v, 'roles')), permissions: list(str(v, 'permissions')), version: 1, createdAt: now, updatedAt: now };
  await withStore(v, (s) => s.serviceAccounts.create(rec));
  out(v, `service-accounts: created ${rec.name} as ${rec.id}`, rec);
}

async function cmdKeys(sub: string | undefined, args: string[]): Promise<void> {
  if (sub === 'create') {
    const v = parse(args, { 'service-account': { type: 'string' }, expires: { type: 'string' } });
    const saId = need(v, 'service-account');
    const exp = str(v, 'expires') === undefined ? null : Date.now() + durationOpt(v, 'expires', '0');
    const k = newApiKey();
    await withStore(v, async (s) => {
      const sa = s.serviceAccounts.get(saId);
      if (sa === undefined) throw new Error(`keys: no service account ${saId}`);
      await s.serviceAccounts.addKey({ id: k.id, serviceAccountId: sa.id, projectId: sa.projectId, secretHash: hashToken(k.secret), createdAt: Date.now(), expiresAt: exp, revokedAt: null, lastUsedAt: null, assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
    });
    out(v, k.text, { id: k.id, key: k.text, expiresAt: exp });
    return;
  }
  if (sub === 'revoke') {
    const v = parse(args, { id: { type: 'string' } });
    const ok = await withStore(v, (s) => s.serviceAccounts.revokeKey(need(v, 'id')));
    out(v, ok ? 'keys: revoked' : 'keys: no such active key', { revoked: ok });
    return;
  }
  fail(`unknown keys command "${sub ?? ''}"`);
}

async function cmdSigningKeys(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'rotate') fail(`unknown signing-keys command "${sub ?? ''}"`);
  const v = parse(args, {});
  const kid = await withStore(v, (s) => Signer.rotate(s.signingKeys));
  out(v, `signing-keys: new active key ${kid}; the previous one stays published for the overlap`, { kid });
}

async function cmdPki(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'init') fail(`unknown pki command "${sub ?? ''}"`);
  const v = parse(args, { pool: { type: 'string', multiple: true } });
  const pools = (v.pool as string[] | undefined) ?? fail('--pool is required');
  const dir = `${dataDir(v)}/pki`;
  const p = await ensureDevPki(dir, { pools });
  out(v, `pki: development CA and certificates in ${p.dir} (pools: ${pools.join(', ')})`, { dir: p.dir, pools });
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, sub, ...rest] = argv;
  const withSub = (f: (s: string | undefined, a: string[]) => Promise<void>) => f(sub?.startsWith('-') ? undefined : sub, sub?.startsWith('-') ? [sub, ...rest] : rest);
  try {
    switch (cmd) {
      case 'edge': await cmdEdge(argv.slice(1)); break;
      case 'apply': await cmdApply(argv.slice(1)); break;
      case 'config': await withSub(cmdConfig); break;
      case 'users': if (sub === 'history') await cmdUsersHistory(rest); else await withSub(cmdUsers); break;
      case 'mail': await withSub(cmdMail); break;
      case 'sessions': await withSub(cmdSessions); break;
      case 'service-accounts': await withSub(cmdServiceAccounts); break;
      case 'keys': await withSub(cmdKeys); break;
      case 'signing-keys': await withSub(cmdSigningKeys); break;
      case 'pki': await withSub(cmdPki); break;
      case 'loadtest': { const lt = await import('../loadtest/index.js'); const p = lt.parseLoadtestArgs(argv.slice(1)); if (!p.ok) fail(p.reason); return await lt.runLoadtest(p.plan); }
      case undefined: case 'help': case '--help': case '-h':
        process.stdout.write(USAGE + '\n');
        return cmd === undefined ? 2 : 0;
      default: fail(`unknown command "${cmd}"`);
    }
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`mezusphere: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`mezusphere: ${(err as Error).message} (${codeOf(err)})\n`);
    return 1;
  }
}

if (cluster.isWorker && process.env[ENV_OPTIONS] !== undefined) {
  // An edge worker forked by the primary (cluster re-runs this entry point).
  void import('../cluster/worker.js').then((m) => m.runWorker(JSON.parse(process.env[ENV_OPTIONS]!) as EdgeOptions, Number(process.env[ENV_WORKER_INDEX])));
} else if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // A running edge keeps the process alive; anything else exits with its code.
      if (process.argv[2] !== 'edge' || code !== 0) process.exit(code);
    },
    (err) => {
      process.stderr.write(`mezusphere: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
