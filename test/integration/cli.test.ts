/**
 * CLI smoke test on a real data directory (no edge needed: the operator
 * commands work on the store): `--json` output is one JSON document a script
 * can parse, `--help` after any top-level command prints the usage and exits
 * 0, and an unknown flag is refused with a one-line reason (then the usage,
 * as every bad argument gets) and a non-zero exit, before anything is changed.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEMO_CONFIG } from './harness.js';

const CLI = join(resolve(__dirname, '../../..'), 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'mezu-cli-'));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, MEZU_DATA: dir } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a `--json` command; its stdout must be exactly one JSON document on one line. */
function json(t: { fail(m: string): void }, ...args: string[]): unknown {
  const r = cli(...args, '--json');
  if (r.status !== 0) t.fail(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  if (lines.length !== 1) t.fail(`${args.join(' ')} --json printed ${lines.length} lines: ${r.stdout}`);
  return JSON.parse(lines[0]!) as unknown;
}

let keyId = '';
let saId = '';

test.before(() => {
  const f = join(dir, 'config.yaml');
  writeFileSync(f, DEMO_CONFIG);
  const a = cli('apply', '-f', f);
  if (a.status !== 0) throw new Error(`apply: ${a.stderr}`);
  const sa = cli('service-accounts', 'add', '--project', 'demo', '--name', 'ci', '--permissions', 'users:read', '--json');
  if (sa.status !== 0) throw new Error(`service-accounts add: ${sa.stderr}`);
  saId = (JSON.parse(sa.stdout) as { id: string }).id;
  const k = cli('keys', 'create', '--service-account', saId, '--json');
  if (k.status !== 0) throw new Error(`keys create: ${k.stderr}`);
  keyId = (JSON.parse(k.stdout) as { id: string }).id;
});

test.after.always(() => {
  rmSync(dir, { recursive: true, force: true });
});

test.serial('--json output parses: orgs, projects, routes, warpgates, audit, keys rotate', (t) => {
  const orgs = json(t, 'orgs', 'list') as Array<{ id: string; projects: string[] }>;
  t.true(Array.isArray(orgs));
  t.deepEqual(orgs.find((o) => o.projects.includes('demo'))?.projects.sort(), ['demo', 'other']);

  const projects = json(t, 'projects', 'list') as Array<{ id: string; hosts: string[]; upstream: string }>;
  t.deepEqual(projects.map((p) => p.id).sort(), ['demo', 'other']);
  t.deepEqual(projects.find((p) => p.id === 'demo')?.hosts, ['localhost', '127.0.0.1']);

  const routes = json(t, 'routes', 'get', '--project', 'demo') as { project: string; config_version: number; routes: Array<{ path: string; auth: string }> };
  t.is(routes.project, 'demo');
  t.is(routes.config_version, 1);
  t.deepEqual(routes.routes.map((r) => `${r.path} ${r.auth}`), ['/api/v1/* required', '/health public', '/webhooks/* required', '/docs/* public', '/admin/* required', '/closed/* deny']);

  t.deepEqual(json(t, 'warpgates', 'list'), [], 'no Warpgate enrolled yet');

  const rotated = json(t, 'keys', 'rotate', '--id', keyId, '--overlap', '10m') as { id: string; key: string; previous: { id: string; state: string; replaced_by: string | null } };
  t.regex(rotated.key, new RegExp(`^mzk_${rotated.id}_[A-Za-z0-9_-]{43}$`));
  t.not(rotated.id, keyId);
  t.is(rotated.previous.id, keyId);
  t.is(rotated.previous.state, 'rotating');
  t.is(rotated.previous.replaced_by, rotated.id);

  const audit = json(t, 'audit') as Array<{ action: string; actor: { type: string }; details: unknown }>;
  t.true(Array.isArray(audit));
  const actions = audit.map((a) => a.action);
  for (const a of ['service_account.create', 'key.create', 'key.rotate']) t.true(actions.includes(a), `audit has ${a}: ${actions.join(', ')}`);
  t.true(audit.every((a) => a.actor.type === 'cli'));
  t.false(JSON.stringify(audit).includes(rotated.key.slice(21)), 'the audit log never holds a key secret');
});

// Regression: `mezusphere apply` stored the config straight into the store, past the control
// plane, so the most consequential change an operator can make left no audit record, while
// the same change through the API did (docs/ARCHITECTURE.md, "Audit": every change through the
// API, the pages or the CLI writes one record).
test.serial('apply from the CLI is audited like the API apply (config.apply, the OS user as actor)', (t) => {
  const f = join(dir, 'config-2.yaml');
  writeFileSync(f, DEMO_CONFIG.replace('/docs/*,     auth: public', '/docs/*,     auth: required'));
  const applied = json(t, 'apply', '-f', f) as { ok: boolean; version: number };
  t.true(applied.ok);
  const entries = json(t, 'audit', '--action', 'config') as Array<{ action: string; actor: { type: string }; target: { id: string }; details: { version: number; from_version: number } }>;
  const mine = entries.find((a) => a.action === 'config.apply' && a.details.version === applied.version);
  t.truthy(mine, `an audit record for version ${applied.version}: ${JSON.stringify(entries)}`);
  t.is(mine?.actor.type, 'cli');
  t.is(mine?.details.from_version, applied.version - 1);
  // An invalid config is refused whole and audits nothing.
  writeFileSync(f, 'projects: [{ id: 1 }]\n');
  t.is(cli('apply', '-f', f).status, 1);
  t.is((json(t, 'audit', '--action', 'config') as unknown[]).length, entries.length);
});

test.serial('sessions create and signing-keys rotate from the CLI are audited (never the token)', (t) => {
  t.is(cli('users', 'add', '--project', 'demo', '--email', 'audited@example.com').status, 0);
  const s = json(t, 'sessions', 'create', '--project', 'demo', '--email', 'audited@example.com') as { token: string; sessionId: string; userId: string };
  const sessions = json(t, 'audit', '--action', 'session.create') as Array<{ action: string; actor: { type: string }; target: { id: string }; details: { email: string } }>;
  const mine = sessions.find((a) => a.target.id === s.sessionId);
  t.truthy(mine, JSON.stringify(sessions));
  t.is(mine?.actor.type, 'cli');
  t.is(mine?.details.email, 'audited@example.com');
  t.false(JSON.stringify(sessions).includes(s.token), 'the audit log never holds a session token');
  const r = json(t, 'signing-keys', 'rotate') as { kid: string };
  const keys = json(t, 'audit', '--action', 'signing_key.rotate') as Array<{ target: { id: string }; actor: { type: string } }>;
  t.truthy(keys.find((a) => a.target.id === r.kid && a.actor.type === 'cli'), JSON.stringify(keys));
});

const COMMANDS: string[][] = [
  ['edge'], ['apply'], ['config', 'get'], ['console'], ['console', 'add-owner'], ['orgs', 'list'], ['projects', 'list'], ['routes', 'get'],
  ['users', 'add'], ['sessions', 'create'], ['service-accounts', 'add'], ['keys', 'rotate'], ['warpgates', 'list'], ['audit'],
  ['signing-keys', 'rotate'], ['pki', 'init'], ['mail', 'outbox'], ['loadtest'],
];

test.serial('--help after every top-level command: the usage on stdout, exit 0, nothing changed', (t) => {
  const before = (json(t, 'audit', '--limit', '9999') as unknown[]).length;
  for (const cmd of COMMANDS) {
    const r = cli(...cmd, '--help');
    t.is(r.status, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
    t.regex(r.stdout, /^usage: mezusphere <command>/, cmd.join(' '));
    t.true(r.stdout.includes(`\n  ${cmd[0]} `), `the usage lists ${cmd[0]}`);
    t.is(r.stderr, '', cmd.join(' '));
  }
  t.is((json(t, 'audit', '--limit', '9999') as unknown[]).length, before, '--help ran no command');
});

test.serial('an unknown flag: non-zero exit, a one-line reason naming it, then the usage; nothing changed', (t) => {
  const before = (json(t, 'audit', '--limit', '9999') as unknown[]).length;
  const withArgs: string[][] = [
    ['edge', '--port', '0'], ['apply', '-f', 'x.yaml'], ['config', 'get'], ['console', '--port', '0'], ['console', 'add-owner', '--email', 'o@example.com'],
    ['orgs', 'list'], ['orgs', 'add', '--id', 'x'], ['projects', 'list'], ['routes', 'get', '--project', 'demo'],
    ['users', 'add', '--project', 'demo', '--email', 'u@example.com'], ['sessions', 'create', '--project', 'demo', '--email', 'u@example.com'],
    ['service-accounts', 'add', '--project', 'demo', '--name', 'x'], ['keys', 'rotate', '--id', keyId], ['keys', 'revoke', '--id', keyId],
    ['warpgates', 'list'], ['audit'], ['signing-keys', 'rotate'], ['pki', 'init', '--pool', 'x'], ['mail', 'outbox'], ['loadtest', 'http://127.0.0.1:9/'],
  ];
  for (const args of withArgs) {
    const r = cli(...args, '--bogus-flag');
    const what = args.slice(0, 2).join(' ');
    t.not(r.status, 0, `${what} --bogus-flag exited 0`);
    t.is(r.status, 2, `${what}: bad arguments exit 2`);
    t.is(r.stdout, '', `${what}: nothing on stdout`);
    const [first, ...restLines] = r.stderr.split('\n');
    t.regex(first!, /^mezusphere: .*--bogus-flag/, `${what}: the first stderr line names the flag`);
    t.regex(restLines.join('\n'), /^usage: mezusphere/, `${what}: the usage follows the one-line reason`);
  }
  t.is((json(t, 'audit', '--limit', '9999') as unknown[]).length, before, 'no command ran');
  t.false(cli('keys', 'list', '--service-account', saId, '--json').stdout.includes('"revoked_at":"20'), 'keys revoke --bogus-flag revoked nothing');
});

test.serial("a value that starts with '-' (one session token in 64 does) is read as the option's value, not refused as ambiguous", (t) => {
  t.is(cli('users', 'add', '--project', 'demo', '--email', 'dash@example.com').status, 0);
  // A token of the right shape that no session has: the command looks it up (and finds nothing).
  const r = cli('sessions', 'revoke', '--token', '-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  t.notRegex(r.stderr, /ambiguous/);
  t.regex(r.stderr + r.stdout, /session/i);
  // An option after an option that takes a value is still an option.
  const m = cli('sessions', 'revoke', '--token', '--json');
  t.not(m.status, 0);
});
