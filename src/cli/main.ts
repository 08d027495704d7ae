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
import { parseConfigYaml, parseSize } from '../config/index.js';
import { ENV_LOG_FORMAT, parseDuration, parseLogFormat, parseOtlpEndpoint } from '../runtime/index.js';
import { DEFAULT_CLIENT_INFLIGHT, DEFAULT_MAX_HEAD_BYTES, MIN_MAX_HEAD_BYTES, MAX_MAX_HEAD_BYTES, parseAccessLogRate } from '../front/index.js';
import { openStore, ENV_STORE_KEY, type Store } from '../store/index.js';
import { Signer } from '../identity/index.js';
import { ensureDevPki } from '../pki/index.js';
import { ENV_OPTIONS, ENV_WORKER_INDEX, ENV_CONSOLE_OPTIONS, runPrimary, runWorker, type EdgeOptions } from '../cluster/index.js';
import { codeOf, MezuError } from '../errors/index.js';
import { CONTROL_USAGE, runControlCommand, consoleOptions, cliActor } from './control.js';
import { Control } from '../control/index.js';
import { parseServers, makeSettings, ENV_NATS, ENV_NODE, type ReplicaSettings } from '../replicate/index.js';

/** The edge's metrics port by default (the Prometheus exporter range; the Warpgate's is 9465 when turned on). */
const DEFAULT_METRICS_PORT = 9464;

const USAGE = `usage: mezusphere <command> [options]   (every command takes --data DIR, default $MEZU_DATA or ./.mezu-dev,
  and --nats URL[,…] [--node ID] to replicate its writes; default: the settings \`edge --nats\` left in DATA)
  edge [--host 127.0.0.1] [--port 8080] [--workers N] [--tunnel-host 127.0.0.1] [--tunnel-port 7443]
       [--tunnel-cert F --tunnel-key F --tunnel-ca F] [--issuer URL] [--scheme http|https]
       [--response-timeout 60s] [--drain-grace 10s] [--hash-threads 1] [--smtp smtp://…] [--mail-from ADDR] [--tunnel-ping 2s] [--tunnel-ping-timeout 4s]
       [--nats nats://HOST:PORT[,…] --node ID [--nats-staleness 60s] [--tunnel-advertise HOST:PORT]]   join a cluster replicated through NATS JetStream;
                                      Warpgates enrolling at any node's Console are told to dial this node at --tunnel-advertise
                                      (default: the tunnel listener's host and port; its host name for 0.0.0.0)
       [--max-head-size 16KiB] [--client-inflight 256] [--metrics-port 9464|off] [--metrics-host 127.0.0.1] [--log-format json|text] [--access-log off|on|RATE] [--otlp-endpoint URL [--otlp-sample 0.01]] [--console-port 8081 [--console-host H] [--console-url URL] [--console-tls-cert F --console-tls-key F] [--warpgate-cert-ttl 1h]]
  apply -f FILE                       validate a YAML config and store it as the next version
  config get                          print the YAML of the current version
${CONTROL_USAGE}
  signing-keys rotate
  store-key rotate                    re-seal the store's private keys and secrets under a new store key (DATA/store.key)
  store compact                       rewrite data.mdb without free pages (old bytes of replaced values); the edge and Console stopped
  replica snapshot                    publish a snapshot of this node's replica to JetStream: new nodes start from it plus the stream tail
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
const dataDir = (v: Vals): string => resolve(str(v, 'data') ?? process.env.MEZU_DATA ?? '.mezu-dev');

function out(v: Vals, human: string, json: unknown): void {
  process.stdout.write((v.json ? JSON.stringify(json) : human) + '\n');
}

async function withStore<T>(v: Vals, fn: (s: Store) => Promise<T>): Promise<T> {
  const s = openStore(dataDir(v));
  try {
    // A replicated store answers and writes from the stream's tail, not from whenever this data directory last followed it.
    await s.replica?.catchUp();
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
    'tunnel-ping': { type: 'string' }, 'tunnel-ping-timeout': { type: 'string' },
    'max-head-size': { type: 'string' }, 'client-inflight': { type: 'string' },
    'metrics-port': { type: 'string' }, 'metrics-host': { type: 'string' }, 'log-format': { type: 'string' }, 'access-log': { type: 'string' },
    'otlp-endpoint': { type: 'string' }, 'otlp-sample': { type: 'string' },
    'console-port': { type: 'string' }, 'console-host': { type: 'string' }, 'console-url': { type: 'string' }, 'console-tls-cert': { type: 'string' }, 'console-tls-key': { type: 'string' }, 'warpgate-cert-ttl': { type: 'string' },
    nats: { type: 'string' }, node: { type: 'string' }, 'nats-staleness': { type: 'string' }, 'tunnel-advertise': { type: 'string' },
  });
  let nats: ReplicaSettings | null = null;
  const natsRaw = str(v, 'nats');
  if (natsRaw !== undefined) {
    const servers = parseServers(natsRaw);
    if (typeof servers === 'string') fail(servers);
    const node = str(v, 'node');
    if (node === undefined || !/^[A-Za-z0-9_-]{1,64}$/.test(node)) fail('--nats needs --node ID (letters, digits, - and _; at most 64): the name of this node in the cluster');
    nats = makeSettings(servers, node, durationOpt(v, 'nats-staleness', '60s'));
  } else if (str(v, 'node') !== undefined || str(v, 'nats-staleness') !== undefined || str(v, 'tunnel-advertise') !== undefined) fail('--node, --nats-staleness and --tunnel-advertise go with --nats');
  const advertise = str(v, 'tunnel-advertise') ?? null;
  if (advertise !== null && !/^(\[[^\]\s]+\]|[^:\s\[\]]+):\d{1,5}$/.test(advertise)) fail(`--tunnel-advertise must be HOST:PORT (an IPv6 address in brackets); got "${advertise}"`);
  const dir = dataDir(v);
  const scheme = str(v, 'scheme') ?? 'http';
  if (scheme !== 'http' && scheme !== 'https') fail(`--scheme must be http or https; got "${scheme}"`);
  const host = str(v, 'host') ?? '127.0.0.1';
  const port = intOpt(v, 'port', 8080, 0, 65535);
  // The log format travels in the environment: the workers and the Console are forked from here (src/runtime/log.ts).
  const logFormat = parseLogFormat(str(v, 'log-format') ?? process.env[ENV_LOG_FORMAT]);
  if (logFormat === null) fail(`--log-format must be json or text; got "${str(v, 'log-format') ?? process.env[ENV_LOG_FORMAT]}"`);
  process.env[ENV_LOG_FORMAT] = logFormat;
  const accessLog = parseAccessLogRate(str(v, 'access-log'));
  if (accessLog === null) fail(`--access-log must be off, on or a rate in (0, 1] like 0.01; got "${str(v, 'access-log')}"`);
  // OpenTelemetry spans over OTLP/HTTP (src/runtime/otlp.ts): off unless an endpoint is given.
  const otlpRaw = str(v, 'otlp-endpoint');
  if (otlpRaw !== undefined && parseOtlpEndpoint(otlpRaw) === null) fail(`--otlp-endpoint must be an http:// or https:// URL (the collector's OTLP/HTTP port, e.g. http://127.0.0.1:4318); got "${otlpRaw}"`);
  const sampleRaw = str(v, 'otlp-sample') ?? '0.01';
  const otlpSample = Number(sampleRaw);
  if (!/^\d*\.?\d+$/.test(sampleRaw) || !(otlpSample >= 0 && otlpSample <= 1)) fail(`--otlp-sample must be a probability from 0 to 1 like 0.01; got "${sampleRaw}"`);
  if (str(v, 'otlp-sample') !== undefined && otlpRaw === undefined) fail('--otlp-sample goes with --otlp-endpoint');
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
    tunnelPingMs: durationOpt(v, 'tunnel-ping', '2s'),
    tunnelPingTimeoutMs: durationOpt(v, 'tunnel-ping-timeout', '4s'),
    maxHeadBytes: sizeOpt(v, 'max-head-size', DEFAULT_MAX_HEAD_BYTES, MIN_MAX_HEAD_BYTES, MAX_MAX_HEAD_BYTES),
    clientInflight: intOpt(v, 'client-inflight', DEFAULT_CLIENT_INFLIGHT, 1, 1_000_000),
    hashThreads: intOpt(v, 'hash-threads', 1, 1, 64),
    smtpUrl: smtpOpt(str(v, 'smtp') ?? process.env.MEZU_SMTP_URL),
    mailFrom: str(v, 'mail-from') ?? 'Mezusphere <no-reply@localhost>',
    // Prometheus metrics, merged across the workers, on a listener of their own (src/cluster/metrics.ts).
    metricsHost: str(v, 'metrics-host') ?? '127.0.0.1',
    metricsPort: str(v, 'metrics-port') === 'off' ? null : intOpt(v, 'metrics-port', DEFAULT_METRICS_PORT, 0, 65535),
    accessLogRate: accessLog,
    otlpEndpoint: otlpRaw ?? null,
    otlpSample,
    edgeId: '',
    nats,
    tunnelAdvertise: advertise,
    // The Console (admin API + pages) as a supervised child of the primary, on a port of its own.
    console:
      str(v, 'console-port') === undefined
        ? null
        : consoleOptions({ port: str(v, 'console-port'), host: str(v, 'console-host'), 'public-url': str(v, 'console-url'), 'tls-cert': str(v, 'console-tls-cert'), 'tls-key': str(v, 'console-tls-key'), 'warpgate-cert-ttl': str(v, 'warpgate-cert-ttl'), smtp: str(v, 'smtp'), 'mail-from': str(v, 'mail-from') }, dir, { tunnelHost: str(v, 'tunnel-host') ?? '127.0.0.1' }),
  };
  for (const f of [opts.tunnelCertFile, opts.tunnelKeyFile, ...opts.tunnelCaFiles]) {
    try {
      readFileSync(f);
    } catch {
      fail(`cannot read ${f}; run \`mezusphere pki init --pool NAME\` for development certificates or pass --tunnel-cert/--tunnel-key/--tunnel-ca`);
    }
  }
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
  // Through the control plane, like the API's apply: the change is audited with the OS user as actor.
  const version = await withStore(v, (s) => new Control(s).applyConfig(cliActor(), text, expect === undefined ? null : Number(expect)));
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

async function cmdSigningKeys(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'rotate') fail(`unknown signing-keys command "${sub ?? ''}"`);
  const v = parse(args, {});
  const kid = await withStore(v, async (s) => {
    const k = await Signer.rotate(s.signingKeys);
    await new Control(s).record(cliActor(), 'signing_key.rotate', { type: 'signing_key', id: k }, null, {});
    return k;
  });
  out(v, `signing-keys: new active key ${kid}; the previous one stays published for the overlap`, { kid });
}

/**
 * `store-key rotate`: a new store key in DATA/store.key and every sealed value
 * re-sealed under it (src/store/seal.ts). Running edges and Consoles keep
 * working: they read the key file again before sealing and when they meet a
 * value sealed under a key they do not know. With the key in MEZU_STORE_KEY
 * the variable is the source of truth: this prints a new key and how to roll
 * it out (every process re-seals on open under the first key of the variable).
 */
async function cmdStoreKey(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'rotate') fail(`unknown store-key command "${sub ?? ''}"`);
  const v = parse(args, {});
  const r = await withStore(v, async (s) => {
    if (s.sealer.source.kind === 'env') {
      const { secretboxKey } = await import('../../native/sodium.js');
      return { env: true as const, key: secretboxKey().toString('base64url'), current: s.sealer.currentId };
    }
    const res = await s.sealer.rotate(async () => s.reseal());
    await new Control(s).record(cliActor(), 'store_key.rotate', { type: 'store_key', id: res.id }, null, { previous: res.previous, resealed: res.resealed });
    return { env: false as const, ...res, file: s.sealer.source.path };
  });
  if (r.env) {
    out(
      v,
      `store-key: the store key comes from ${ENV_STORE_KEY} (current key ${r.current}). A new key:\n  ${r.key}\n` +
        `Set ${ENV_STORE_KEY}="${r.key},<the current value>" for every edge, Console and CLI process and restart them (each re-seals on open under the first key), then drop the old key from the variable.`,
      { source: 'env', new_key: r.key, current: r.current },
    );
    return;
  }
  out(v, `store-key: new store key ${r.id} in ${r.file}; ${r.resealed} value${r.resealed === 1 ? '' : 's'} re-sealed; the previous key (${r.previous.join(', ')}) is gone. Back the file up apart from the store.`, { id: r.id, previous: r.previous, resealed: r.resealed, file: r.file });
}

/** `store compact`: data.mdb rewritten with its live pages only (after the first open of an upgraded store, say). */
async function cmdStore(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'compact') fail(`unknown store command "${sub ?? ''}"`);
  const v = parse(args, {});
  const r = await openStore(dataDir(v)).compactAndClose();
  out(v, `store: compacted data.mdb from ${r.before} to ${r.after} bytes`, r);
}

async function cmdReplica(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'snapshot') fail(`unknown replica command "${sub ?? ''}"`);
  const v = parse(args, {});
  const head = await withStore(v, async (s) => {
    if (s.replica === null) throw new MezuError('MEZU_REPLICA_UNAVAILABLE', 'replica: this data directory does not replicate; run the edge with --nats, or pass --nats here');
    return s.replica.publishSnapshot();
  });
  out(v, `replica: snapshot ${head.id} published (sequence ${head.seq}, ${head.size} bytes in ${head.chunks} chunks); new nodes start from it`, head);
}

async function cmdPki(sub: string | undefined, args: string[]): Promise<void> {
  if (sub !== 'init') fail(`unknown pki command "${sub ?? ''}"`);
  const v = parse(args, { pool: { type: 'string', multiple: true } });
  const pools = (v.pool as string[] | undefined) ?? fail('--pool is required');
  const dir = `${dataDir(v)}/pki`;
  const p = await ensureDevPki(dir, { pools });
  out(v, `pki: development CA and certificates in ${p.dir} (pools: ${pools.join(', ')})`, { dir: p.dir, pools });
}

/** Removes `--nats X` / `--node X` (or `=X`) from a command line, moving them into the environment. */
function takeReplicaArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--(nats|node)(?:=(.*))?$/.exec(a);
    if (m === null) {
      out.push(a);
      continue;
    }
    const val = m[2] ?? argv[++i];
    if (val === undefined) fail(`--${m[1]} needs a value`);
    if (m[1] === 'nats') {
      const servers = parseServers(val);
      if (typeof servers === 'string') fail(servers);
      process.env[ENV_NATS] = val;
    } else process.env[ENV_NODE] = val;
  }
  return out;
}

export async function main(argv: string[]): Promise<number> {
  // `--nats URL[,URL…]` and `--node ID` on any command but `edge`: this process's writes replicate
  // like the edge's (src/replicate/settings.ts); without them the data directory's settings apply.
  if (argv[0] !== 'edge') argv = takeReplicaArgs(argv);
  const [cmd, sub, ...rest] = argv;
  const withSub = (f: (s: string | undefined, a: string[]) => Promise<void>) => f(sub?.startsWith('-') ? undefined : sub, sub?.startsWith('-') ? [sub, ...rest] : rest);
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    if (cmd !== undefined && (await runControlCommand(cmd, sub, rest))) return typeof process.exitCode === 'number' ? process.exitCode : 0;
    switch (cmd) {
      case 'edge': await cmdEdge(argv.slice(1)); break;
      case 'apply': await cmdApply(argv.slice(1)); break;
      case 'config': await withSub(cmdConfig); break;
      case 'mail': await withSub(cmdMail); break;
      case 'signing-keys': await withSub(cmdSigningKeys); break;
      case 'store-key': await withSub(cmdStoreKey); break;
      case 'store': await withSub(cmdStore); break;
      case 'replica': await withSub(cmdReplica); break;
      case 'pki': await withSub(cmdPki); break;
      case 'loadtest': { const lt = await import('../loadtest/index.js'); const p = lt.parseLoadtestArgs(argv.slice(1)); if (!p.ok) fail(p.reason); return await lt.runLoadtest(p.plan); }
      case undefined: case 'help': case '--help': case '-h':
        process.stdout.write(USAGE + '\n');
        return cmd === undefined ? 2 : 0;
      default: fail(`unknown command "${cmd}"`);
    }
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof UsageError || codeOf(err) === 'MEZU_USAGE') {
      process.stderr.write(`mezusphere: ${(err as Error).message}\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`mezusphere: ${(err as Error).message} (${codeOf(err)})\n`);
    return 1;
  }
}

if (cluster.isWorker && process.env[ENV_CONSOLE_OPTIONS] !== undefined) {
  // The Console, forked by the edge primary (`edge --console-port`).
  void import('../console/index.js').then((m) => m.runConsole(JSON.parse(process.env[ENV_CONSOLE_OPTIONS]!) as import('../console/index.js').ConsoleOptions));
} else if (cluster.isWorker && process.env[ENV_OPTIONS] !== undefined) {
  // An edge worker forked by the primary (cluster re-runs this entry point).
  void runWorker(JSON.parse(process.env[ENV_OPTIONS]!) as EdgeOptions, Number(process.env[ENV_WORKER_INDEX]));
} else if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // A running edge or Console keeps the process alive; anything else exits with its code.
      const serving = process.argv[2] === 'edge' || (process.argv[2] === 'console' && (process.argv[3] === undefined || process.argv[3].startsWith('-')));
      if (!serving || code !== 0) process.exit(code);
    },
    (err) => {
      process.stderr.write(`mezusphere: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
