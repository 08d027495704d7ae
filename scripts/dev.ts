#!/usr/bin/env node
/**
 * `npm start`: the local development stack. Creates `.mezu-dev/` (store, dev
 * CA and certificates), applies the demo config on first start, creates demo
 * users and fresh sessions, starts the demo origin, the edge and a Warpgate,
 * and prints what to try. Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureDevPki } from '../src/pki/index.js';
import { openStore } from '../src/store/index.js';
import { parseConfigYaml } from '../src/config/index.js';
import { Signer } from '../src/identity/index.js';
import { hashToken, newId, newSessionToken } from '../src/session/index.js';

const ROOT = resolve(__dirname, '../..');
const DATA = resolve(process.env.MEZU_DATA ?? join(ROOT, '.mezu-dev'));
const PORT = Number(process.env.MEZU_PORT ?? 8080);
const TUNNEL_PORT = Number(process.env.MEZU_TUNNEL_PORT ?? 7443);
const ORIGIN_PORT = Number(process.env.MEZU_ORIGIN_PORT ?? 3000);

const DEMO_USERS = [
  { email: 'ada@example.com', name: 'Ada Admin', roles: ['admin'], permissions: ['admin:write'] },
  { email: 'val@example.com', name: 'Val Viewer', roles: ['viewer'], permissions: [] },
];

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

function waitReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('{"event":"ready"')) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', () => reject(new Error(`${what} did not start`)));
  });
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const pki = await ensureDevPki(join(DATA, 'pki'), { pools: ['demo'] });
  const store = openStore(DATA);
  const tokens: Array<{ email: string; token: string; roles: string[] }> = [];
  try {
    await Signer.ensureKey(store.signingKeys);
    if (store.config.current() === undefined) {
      const text = readFileSync(join(ROOT, 'examples/demo.yaml'), 'utf8');
      const r = parseConfigYaml(text);
      if (!r.ok) throw new Error(`examples/demo.yaml is invalid: ${r.problems.map((p) => `${p.at}: ${p.message}`).join('; ')}`);
      const v = await store.config.apply(text, r.config, 0);
      process.stdout.write(`dev      | applied examples/demo.yaml as config version ${v}\n`);
    }
    const now = Date.now();
    for (const u of DEMO_USERS) {
      let rec = store.users.getByEmail('demo', u.email);
      if (rec === undefined) {
        rec = { id: newId('usr_'), directory: 'demo', email: u.email, name: u.name, displayName: u.name, status: 'active', roles: u.roles, permissions: u.permissions, version: 1, createdAt: now, updatedAt: now, lastLoginAt: null };
        await store.users.create(rec);
      }
      const token = newSessionToken();
      await store.sessions.create(hashToken(token), { id: newId('ses_'), principalType: 'user', userId: rec.id, projectId: 'demo', createdAt: now, lastSeenAt: now, authTime: now, amr: ['dev'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
      tokens.push({ email: u.email, token, roles: rec.roles });
    }
  } finally {
    await store.close();
  }

  const origin = start('origin', [join(ROOT, 'dist/scripts/demo-origin.js'), '--port', String(ORIGIN_PORT)]);
  await waitReady(origin, 'the demo origin');
  const edge = start('edge', [join(ROOT, 'dist/src/cli/main.js'), 'edge', '--data', DATA, '--port', String(PORT), '--tunnel-port', String(TUNNEL_PORT), '--issuer', `http://localhost:${PORT}`]);
  await waitReady(edge, 'the edge');
  start('warpgate', [join(ROOT, 'dist/warpgate/main.js'), '--edge', `127.0.0.1:${TUNNEL_PORT}`, '--origin', `http://127.0.0.1:${ORIGIN_PORT}`, '--pki-dir', pki.dir, '--pool', 'demo']);
  await new Promise((r) => setTimeout(r, 800));

  const base = `http://localhost:${PORT}`;
  const [ada, val] = tokens as [(typeof tokens)[0], (typeof tokens)[0]];
  process.stdout.write(`
Mezusphere dev stack is up. Data in ${DATA}${existsSync(join(DATA, 'store')) ? '' : ''}

  Demo project:   ${base}   (config: examples/demo.yaml; the origin echoes the method, path and x-mezu-* headers it received)

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

Operator commands (in another terminal):
  node dist/src/cli/main.js users list --data ${DATA}
  node dist/src/cli/main.js sessions create --project demo --email ${ada.email} --data ${DATA}
  node dist/src/cli/main.js apply -f examples/demo.yaml --data ${DATA}     # edit, apply, served without restart

These sessions are fresh on every start. Ctrl-C stops everything.
`);
}

main().catch((err: Error) => {
  process.stderr.write(`dev: ${err.message}\n`);
  void stopAll(1);
});
