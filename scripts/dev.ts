#!/usr/bin/env node
/**
 * `npm start`: the local development stack. Creates `.mezu-dev/` (store, dev
 * CA and certificates), applies the demo config on first start (and again when
 * examples/demo.yaml changed, unless someone applied another config since),
 * creates demo users with passwords and fresh sessions, starts the demo origin,
 * the edge with its Console, and a Warpgate that enrolls with a service-account
 * key (the same flow as production; the key is kept in .mezu-dev/), prints what
 * to try once that Warpgate holds a tunnel to every edge worker — the Console
 * URL and the command that creates its first owner among it — and prints every
 * mail the edge puts in the development outbox (signup and reset links).
 * Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureDevPki } from '../src/pki/index.js';
import { openStore } from '../src/store/index.js';
import { parseConfigYaml } from '../src/config/index.js';
import { Signer } from '../src/identity/index.js';
import { hashToken, newId, newSessionToken, parseApiKey, secretMatches } from '../src/session/index.js';
import { pwhashStr } from '../native/sodium.js';
import { Control, CONSOLE_DIRECTORY, type Actor } from '../src/control/index.js';
import type { Store } from '../src/store/index.js';

const ROOT = resolve(__dirname, '../..');
const DATA = resolve(process.env.MEZU_DATA ?? join(ROOT, '.mezu-dev'));
const PORT = Number(process.env.MEZU_PORT ?? 8080);
const TUNNEL_PORT = Number(process.env.MEZU_TUNNEL_PORT ?? 7443);
const ORIGIN_PORT = Number(process.env.MEZU_ORIGIN_PORT ?? 3000);
const CONSOLE_PORT = Number(process.env.MEZU_CONSOLE_PORT ?? 8081);
/** Prometheus metrics: the edge's (merged over its workers) and the demo Warpgate's. */
const METRICS_PORT = Number(process.env.MEZU_METRICS_PORT ?? 9464);
const WARPGATE_METRICS_PORT = Number(process.env.MEZU_WARPGATE_METRICS_PORT ?? 9465);
/** The demo Warpgate's API key (enrollment), created once and kept here (0600). */
const WARPGATE_KEY_FILE = 'warpgate-demo.key';
/** How long start-up waits for the Warpgate's tunnels before printing what to try anyway. */
const TUNNEL_WAIT_MS = 30_000;
const DEV_ACTOR: Actor = { type: 'system', id: 'dev', name: 'npm start', ip: '' };

const DEMO_USERS = [
  { email: 'ada@example.com', name: 'Ada Admin', roles: ['admin'], permissions: ['admin:write'], password: 'ada demo password' },
  { email: 'val@example.com', name: 'Val Viewer', roles: ['viewer'], permissions: [], password: 'val demo password' },
];
/** The demo config text last applied by this script (so a newer examples/demo.yaml is applied, but an operator's own config is not overwritten). */
const DEMO_MARK = 'dev-demo-applied.yaml';

const children: Array<{ name: string; child: ChildProcess }> = [];

function start(name: string, args: string[], onLine?: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const pipe = (stream: NodeJS.ReadableStream) => {
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        onLine?.(line);
        if (!line.startsWith('{"event":"ready"')) process.stdout.write(`${name.padEnd(8)} | ${line}\n`);
      }
    });
  };
  pipe(child.stdout!);
  pipe(child.stderr!);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stdout.write(`${name} exited (${signal ?? code}); stopping the stack\n`);
      void stopAll(1);
    }
  });
  children.push({ name, child });
  return child;
}

let stopping = false;
async function stopAll(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Warpgate first (it drains its tunnels), then the edge (drains clients), then the origin.
  for (const { child } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const done = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 12_000);
    await done;
    clearTimeout(t);
  }
  process.exit(code);
}

/** Resolves with the child's JSON ready line once it has printed it whole. */
function waitReady(child: ChildProcess, what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const at = out.indexOf('{"event":"ready"');
      const end = at === -1 ? -1 : out.indexOf('\n', at);
      if (end !== -1) {
        child.stdout!.off('data', onData);
        resolve(JSON.parse(out.slice(at, end)) as Record<string, unknown>);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', () => reject(new Error(`${what} did not start`)));
  });
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  // The tunnel listener's certificate and the CA Warpgates pin (and a static client certificate, for --pki-dir).
  await ensureDevPki(join(DATA, 'pki'), { pools: ['demo'] });
  const store = openStore(DATA);
  const tokens: Array<{ email: string; token: string; roles: string[]; password: string }> = [];
  try {
    await Signer.ensureKey(store.signingKeys);
    // Links in mail use the demo's public URL: follow MEZU_PORT.
    const text = readFileSync(join(ROOT, 'examples/demo.yaml'), 'utf8').replaceAll('http://localhost:8080', `http://localhost:${PORT}`);
    const cur = store.config.current();
    const mark = join(DATA, DEMO_MARK);
    const lastDemo = existsSync(mark) ? readFileSync(mark, 'utf8') : null;
    // Dev-managed: nothing applied yet, or what is applied is the demo text this script applied
    // (or, from before the marker existed, the demo file's own header comment).
    const devManaged = cur === undefined || cur.source === lastDemo || (lastDemo === null && cur.source.startsWith('# The demo project'));
    if (devManaged && cur?.source !== text) {
      const r = parseConfigYaml(text);
      if (!r.ok) throw new Error(`examples/demo.yaml is invalid: ${r.problems.map((p) => `${p.at}: ${p.message}`).join('; ')}`);
      const v = await store.config.apply(text, r.config, cur?.version ?? 0);
      writeFileSync(mark, text);
      process.stdout.write(`dev      | applied examples/demo.yaml as config version ${v}\n`);
    }
    const now = Date.now();
    for (const u of DEMO_USERS) {
      let rec = store.users.getByEmail('demo', u.email);
      if (rec === undefined) {
        rec = { id: newId('usr_'), directory: 'demo', email: u.email, name: u.name, displayName: u.name, status: 'active', roles: u.roles, permissions: u.permissions, version: 1, createdAt: now, updatedAt: now, lastLoginAt: null };
        await store.users.create(rec);
      }
      if (store.credentials.get(rec.id) === undefined) {
        // Dev only: hashed here directly (the edge hashes in its worker pool).
        await store.credentials.set(rec.id, pwhashStr(Buffer.from(u.password, 'utf8'), { memoryBytes: 19 * 1024 * 1024, iterations: 2 }));
      }
      const token = newSessionToken();
      await store.sessions.create(hashToken(token), { id: newId('ses_'), principalType: 'user', userId: rec.id, projectId: 'demo', createdAt: now, lastSeenAt: now, authTime: now, amr: ['dev'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
      tokens.push({ email: u.email, token, roles: rec.roles, password: u.password });
    }
    await warpgateKey(store);
  } finally {
    await store.close();
  }

  const origin = start('origin', [join(ROOT, 'dist/scripts/demo-origin.js'), '--port', String(ORIGIN_PORT)]);
  await waitReady(origin, 'the demo origin');
  const consoleUrl = `http://localhost:${CONSOLE_PORT}`;
  const edge = start('edge', [join(ROOT, 'dist/src/cli/main.js'), 'edge', '--data', DATA, '--port', String(PORT), '--tunnel-port', String(TUNNEL_PORT), '--issuer', `http://localhost:${PORT}`, '--console-port', String(CONSOLE_PORT), '--console-url', consoleUrl, '--metrics-port', String(METRICS_PORT), '--log-format', 'text']);
  const edgeReady = await waitReady(edge, 'the edge');
  // The Warpgate enrolls: key → CSR → short-lived certificate from the demo project's tunnel CA, renewed before expiry.
  start('warpgate', [join(ROOT, 'dist/warpgate/main.js'), '--edge', consoleUrl, '--key-file', join(DATA, WARPGATE_KEY_FILE), '--origin', `http://127.0.0.1:${ORIGIN_PORT}`, '--metrics-port', String(WARPGATE_METRICS_PORT), '--log-format', 'text']);
  if (!(await waitTunnels(edgeReady.workers as number[]))) {
    process.stdout.write(`dev      | the Warpgate has not connected to every edge worker after ${TUNNEL_WAIT_MS / 1000} s; requests get 502 until it does (see its lines above)\n`);
  }
  const owners = await withStore((s) => s.users.list(CONSOLE_DIRECTORY).filter((u) => u.roles.includes('owner') && u.status === 'active').map((u) => u.email));

  const base = `http://localhost:${PORT}`;
  const [ada, val] = tokens as [(typeof tokens)[0], (typeof tokens)[0]];
  process.stdout.write(`
Mezusphere dev stack is up. Data in ${DATA}${existsSync(join(DATA, 'store')) ? '' : ''}

  Demo project:   ${base}   (config: examples/demo.yaml; the origin echoes the method, path, x-mezu-* headers and traceparent it received)

In a browser:  ${base}/api/v1/hello
  → the hosted login page. Create an account (signup is open; the confirmation link is printed
    here as "mail |"), or sign in as ${ada.email} / "${ada.password}" or ${val.email} / "${val.password}".
  ${base}/_mezu/logout   ${base}/_mezu/password   ${base}/_mezu/forgot
  ${base}/api/v1/live   a WebSocket echo and a clock over Server-Sent Events, through the edge; revoke the
    session (node dist/src/cli/main.js sessions revoke --project demo --email … --all --data ${DATA})
    and the page shows the socket closed by the edge (1008)

Mail: the edge has no SMTP server here; mail goes to the development outbox in the store.
  Printed below as it arrives, and listed by:  node dist/src/cli/main.js mail outbox --data ${DATA}

Try:
  curl -i ${base}/health                                   # public route
  curl -i ${base}/api/v1/hello                             # protected: 401 JSON with login_url
  curl -i -H 'Accept: text/html' ${base}/api/v1/hello      # protected, as a browser: 302 to /_mezu/login
  curl -i -b 'mezu_session=${ada.token}' ${base}/api/v1/hello
                                                           # ${ada.email} (${ada.roles.join(',')}): 200 with identity headers
  curl -i -b 'mezu_session=${val.token}' ${base}/admin/panel
                                                           # ${val.email} (${val.roles.join(',')}): 403, needs role admin
  curl -i -H 'X-Mezu-User-Id: forged' -b 'mezu_session=${ada.token}' ${base}/api/v1/hello
                                                           # forged identity headers are stripped
  curl ${base}/.well-known/mezusphere/jwks.json            # assertion verification keys

Console (users, routes, service accounts and keys, Warpgates, audit log; admin API under /api/v1, docs/openapi.yaml):
  ${consoleUrl}
${owners.length === 0
    ? `  No Console owner yet (there is no default account). Create the first one, then open the link it prints:
    node dist/src/cli/main.js console add-owner --email you@example.com --data ${DATA} --console-url ${consoleUrl}`
    : `  Sign in as ${owners.join(', ')} (add more with: node dist/src/cli/main.js console add-user --email E --role admin --data ${DATA})`}

Metrics (Prometheus text format; the edge's summed over its workers):
  ${(edgeReady.metrics as { url?: string } | undefined)?.url ?? `(none: the edge could not listen on 127.0.0.1:${METRICS_PORT}, see its lines above)`}   edge
  http://127.0.0.1:${WARPGATE_METRICS_PORT}/metrics   Warpgate (origin pool and latency, tunnels)
  curl -s ${(edgeReady.metrics as { url?: string } | undefined)?.url ?? `http://127.0.0.1:${METRICS_PORT}/metrics`} | grep mezu_edge_requests_total

Operator commands (in another terminal):
  node dist/src/cli/main.js users list --data ${DATA}
  node dist/src/cli/main.js users history ${ada.email} --data ${DATA}     # logins, failures, resets, locks
  node dist/src/cli/main.js sessions create --project demo --email ${ada.email} --data ${DATA}
  node dist/src/cli/main.js apply -f examples/demo.yaml --data ${DATA}     # edit, apply, served without restart

These sessions are fresh on every start. Ctrl-C stops everything.
`);
  printOutbox();
}

/**
 * Waits until every edge worker holds a tunnel of the Warpgate (the reports the
 * workers write to the store on every change, which the Console reads too), so
 * the URLs printed next answer at once. A fixed pause was not enough: a
 * project's first enrollment alone waits 1 s for every worker to load its new
 * CA, and on a busy machine the printed curl commands got 502.
 */
async function waitTunnels(workerPids: number[]): Promise<boolean> {
  const store = openStore(DATA);
  try {
    for (const end = Date.now() + TUNNEL_WAIT_MS; Date.now() < end; ) {
      const reports = store.tunnelStatus.all();
      if (workerPids.every((pid) => reports.some((r) => r.pid === pid && r.tunnels.length > 0))) return true;
      if (stopping) return false;
      // lmdb-js renews its read snapshot on the next event-loop turn: a timer crosses one.
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  } finally {
    await store.close();
  }
}

async function withStore<T>(fn: (s: Store) => Promise<T> | T): Promise<T> {
  const s = openStore(DATA);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/**
 * The demo Warpgate's service account (permission `warpgates:enroll`) and a
 * live key for it in DATA/warpgate-demo.key: reused while it works, replaced
 * when it was revoked or expired (say, from the Console, to watch the
 * Warpgate lose its tunnels).
 */
async function warpgateKey(store: Store): Promise<void> {
  const control = new Control(store);
  const file = join(DATA, WARPGATE_KEY_FILE);
  const text = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  const parsed = parseApiKey(text);
  const k = parsed === null ? undefined : store.serviceAccounts.getKey(parsed.id);
  const now = Date.now();
  if (parsed !== null && k !== undefined && secretMatches(parsed.secret, k.secretHash) && k.revokedAt === null && (k.expiresAt === null || k.expiresAt > now + 60_000)) {
    const sa = store.serviceAccounts.get(k.serviceAccountId);
    if (sa !== undefined && sa.status === 'active') return;
  }
  let sa = store.serviceAccounts.list('demo').find((x) => x.name === 'demo-warpgate' && x.status === 'active');
  sa ??= await control.createServiceAccount(DEV_ACTOR, 'demo', { name: 'demo-warpgate', permissions: ['warpgates:enroll'] });
  const created = await control.createKey(DEV_ACTOR, sa.id, {});
  writeFileSync(file, created.text + '\n', { mode: 0o600 });
  process.stdout.write(`dev      | created key mzk_${created.rec.id} for the demo Warpgate (service account ${sa.name}); kept in ${file}\n`);
}

/** Prints each new outbox mail (the dev stack's stand-in for an inbox). */
function printOutbox(): void {
  const store = openStore(DATA);
  const seen = new Set(store.outbox.list(null, 1000).map((m) => `${m.at}${m.id}`));
  const t = setInterval(() => {
    try {
      for (const m of store.outbox.list(null, 50)) {
        const k = `${m.at}${m.id}`;
        if (seen.has(k)) continue;
        seen.add(k);
        const lines = [`to ${m.to}: ${m.subject}`, ...m.text.trimEnd().split('\n')];
        for (const l of lines) process.stdout.write(`mail     | ${l}\n`);
      }
    } catch (err) {
      process.stdout.write(`mail     | cannot read the outbox: ${(err as Error).message}\n`);
      clearInterval(t);
    }
  }, 500);
  t.unref();
}

main().catch((err: Error) => {
  process.stderr.write(`dev: ${err.message}\n`);
  void stopAll(1);
});
