/**
 * `mezusphere` in-process (src/cli/main.ts `main`): what an operator types
 * and what comes back — exit codes, the one-line reason and usage on bad
 * arguments (nothing changed, no edge started), every problem of an invalid
 * config, a stale apply refused, and control commands acting on the store
 * the next request reads. test/integration/cli.test.ts runs the same binary
 * as a process.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { openStore } from '../../../src/store/index.js';
import { hashToken } from '../../../src/session/index.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with stdout and stderr captured (serial tests: the streams are the process's). */
async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const so = process.stdout.write.bind(process.stdout);
  const se = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => out.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => err.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = so;
    process.stderr.write = se;
    // apply sets process.exitCode on an invalid config; the test process is not the CLI.
    process.exitCode = undefined;
  }
}

function data(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-cli-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const CONFIG = `projects:
  - id: demo
    hosts: [localhost]
    upstream: demo
    routes:
      - { path: /admin/*, auth: required, roles: [admin] }
`;

test.serial('bad arguments: exit 2, a one-line reason, then the usage; no edge starts', async (t) => {
  const dir = data(t);
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /^mezusphere: unknown command "frobnicate"\n/],
    [['edge', '--data', dir, '--drain-grace', '10x'], /^mezusphere: --drain-grace must be a duration like 30s, 10m, 24h; got "10x"\n/],
    [['edge', '--data', dir, '--port', '70000'], /^mezusphere: --port must be an integer from 0 to 65535; got "70000"\n/],
    [['edge', '--data', dir, '--max-head-size', '512'], /^mezusphere: --max-head-size must be a size from 1024 to 1048576 bytes, like 16KiB or 32768; got "512"\n/],
    [['edge', '--data', dir, '--scheme', 'ftp'], /^mezusphere: --scheme must be http or https; got "ftp"\n/],
    [['edge', '--data', dir, '--smtp', 'http://mail'], /^mezusphere: --smtp must be an smtp:\/\/ or smtps:\/\/ URL; got "http:"\n/],
    [['edge', '--data', dir, '--no-such-flag'], /^mezusphere: Unknown option '--no-such-flag'/],
    [['edge', '--data', dir], /^mezusphere: cannot read .*edge-tunnel\.pem; run `mezusphere pki init --pool NAME`/],
    [['apply', '--data', dir], /^mezusphere: --file is required\n/],
    [['config', 'put', '--data', dir], /^mezusphere: unknown config command "put"\n/],
  ];
  for (const [argv, reason] of cases) {
    const r = await cli(...argv);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.stderr, reason, argv.join(' '));
    t.true(r.stderr.split('\n')[1]!.startsWith('usage: mezusphere <command>'), 'the usage follows the reason');
    t.is(r.stdout, '');
  }
  t.is((await cli('--help')).code, 0);
  t.is((await cli()).code, 2, 'no command at all: the usage, exit 2');
});

test.serial('apply: an invalid config lists every problem at its location and applies nothing; a stale expectation is refused', async (t) => {
  const dir = data(t);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'projects:\n  - id: Demo\n    hosts: [localhost]\n    upstream: demo\n    routes: [{ path: api/*, auth: maybe }]\n');
  const r = await cli('apply', '-f', bad, '--data', dir);
  t.is(r.code, 1);
  t.regex(r.stderr, /is invalid \(3 problems\); nothing was applied \(MEZU_CONFIG_INVALID\)/);
  t.regex(r.stderr, /^ {2}projects\[0\]\.id: /m);
  t.regex(r.stderr, /^ {2}projects\[0\]\.routes\[0\]\.path: must start with "\/"/m);
  t.regex(r.stderr, /^ {2}projects\[0\]\.routes\[0\]\.auth: must be one of required, public, deny/m);
  t.regex((await cli('config', 'get', '--data', dir)).stderr, /nothing applied yet/);

  const good = join(dir, 'good.yaml');
  writeFileSync(good, CONFIG);
  const ok = await cli('apply', '-f', good, '--data', dir, '--json');
  t.deepEqual([ok.code, JSON.parse(ok.stdout)], [0, { ok: true, version: 1 }]);
  const stale = await cli('apply', '-f', good, '--data', dir, '--expect-version', '0');
  t.is(stale.code, 1);
  t.regex(stale.stderr, /\(MEZU_CONFIG_STALE\)/);
  const got = await cli('config', 'get', '--data', dir, '--json');
  t.like(JSON.parse(got.stdout), { version: 1, source: CONFIG });
});

test.serial('users and sessions: the token printed is a live session; suspending the user ends it', async (t) => {
  const dir = data(t);
  writeFileSync(join(dir, 'c.yaml'), CONFIG);
  t.is((await cli('apply', '-f', join(dir, 'c.yaml'), '--data', dir)).code, 0);
  const add = await cli('users', 'add', '--project', 'demo', '--email', 'Ada@Example.com', '--roles', 'admin', '--data', dir, '--json');
  t.is(add.code, 0);
  t.like(JSON.parse(add.stdout), { email: 'Ada@Example.com', roles: ['admin'], status: 'active' });
  t.regex((await cli('users', 'add', '--project', 'demo', '--email', 'ada@example.com', '--data', dir)).stderr, /\(MEZU_USER_EXISTS\)/, 'emails are unique in a directory, any case');

  const s = await cli('sessions', 'create', '--project', 'demo', '--email', 'ada@example.com', '--data', dir);
  t.is(s.code, 0);
  const token = s.stdout.trim();
  t.regex(token, /^[A-Za-z0-9_-]{43}$/);
  const readSession = () => {
    const store = openStore(dir);
    try {
      return store.sessions.get(hashToken(token));
    } finally {
      void store.close();
    }
  };
  t.like(readSession(), { projectId: 'demo', amr: ['cli'] }, 'stored by its hash, never by the token');

  const set = await cli('users', 'set', '--project', 'demo', '--email', 'ada@example.com', '--status', 'suspended', '--data', dir);
  t.is(set.code, 0);
  t.regex(set.stdout, /is suspended/);
  t.is(readSession(), undefined, 'leaving active ended every session');
  t.regex((await cli('sessions', 'create', '--project', 'demo', '--email', 'ada@example.com', '--data', dir)).stderr, /is suspended \(MEZU_STATUS_TRANSITION\)/);
  t.is((await cli('users', 'set', '--project', 'demo', '--email', 'ada@example.com', '--status', 'gone', '--data', dir)).code, 2);
});
