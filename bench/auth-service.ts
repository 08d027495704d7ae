#!/usr/bin/env node
/**
 * The minimal session-checking service behind nginx `auth_request` in the
 * comparison run (a child process): one uWS app, one thread. For every
 * subrequest it takes the `mezu_session` cookie and looks it up in an
 * in-memory Set of valid tokens read once at start from --tokens FILE (one per
 * line): 204 with `x-user-id` and `x-user-email` when it is there, 401 when
 * not.
 *
 * Deliberately less work than the edge does per request (no SHA-256 of the
 * token, no store read, no user or policy check, no assertion): the
 * comparison gives nginx the cheapest auth service a deployment could have,
 * so "≥ 1.5× nginx auth_request" is measured against its best case.
 *
 *   node dist/bench/auth-service.js --tokens FILE [--host 127.0.0.1] [--port 0]
 * prints {"event":"ready","port":N} on stdout.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadUws } from '../native/uws.js';

const COOKIE = 'mezu_session';

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieValue(header: string, name: string): string | null {
  let i = 0;
  while (i < header.length) {
    while (header.charCodeAt(i) === 32) i++;
    const semi = header.indexOf(';', i);
    const end = semi < 0 ? header.length : semi;
    const eq = header.indexOf('=', i);
    if (eq > i && eq < end && header.slice(i, eq) === name) return header.slice(eq + 1, end);
    i = end + 1;
  }
  return null;
}

export function startAuthService(host: string, port: number, tokens: ReadonlySet<string>, userId: string, email: string): Promise<number> {
  const uws = loadUws();
  const app = uws.App();
  app.any('/*', (res, req) => {
    const token = cookieValue(req.getHeader('cookie'), COOKIE);
    if (token !== null && tokens.has(token)) {
      res.writeStatus('204 No Content').writeHeader('x-user-id', userId).writeHeader('x-user-email', email).end();
    } else {
      res.writeStatus('401 Unauthorized').end();
    }
  });
  return new Promise((resolve, reject) => {
    app.listen(host, port, (s) => {
      if (!s) return reject(new Error(`auth-service: cannot listen on ${host}:${port}`));
      resolve(uws.us_socket_local_port(s));
    });
  });
}

if (require.main === module) {
  let v: { host?: string; port?: string; tokens?: string; 'user-id'?: string; email?: string };
  try {
    v = parseArgs({
      options: { host: { type: 'string' }, port: { type: 'string' }, tokens: { type: 'string' }, 'user-id': { type: 'string' }, email: { type: 'string' } },
      strict: true,
    }).values;
    if (v.tokens === undefined) throw new Error('--tokens FILE is required');
  } catch (err) {
    process.stderr.write(`auth-service: ${(err as Error).message}\nusage: auth-service --tokens FILE [--host 127.0.0.1] [--port 0] [--user-id ID] [--email ADDR]\n`);
    process.exit(2);
  }
  const tokens = new Set(readFileSync(v.tokens, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== ''));
  startAuthService(v.host ?? '127.0.0.1', Number(v.port ?? '0'), tokens, v['user-id'] ?? 'usr_bench', v.email ?? 'bench@example.com').then(
    (port) => process.stdout.write(JSON.stringify({ event: 'ready', port, tokens: tokens.size }) + '\n'),
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
