/**
 * Where a node's replication settings come from. `mezusphere edge --nats …`
 * writes them to `DATA/replication.json`, so every other process on that data
 * directory (the edge's workers, the Console, the CLI) replicates its writes
 * the same way without being told; `--nats` on a CLI command (the
 * `MEZU_NATS` variable) overrides the file for that process.
 */
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { MezuError } from '../errors/index.js';

export const REPLICATION_FILE = 'replication.json';
export const ENV_NATS = 'MEZU_NATS';
export const ENV_NODE = 'MEZU_NODE';

/** Default staleness bound: revocations made elsewhere may be missing for this long at most (issue contract). */
export const DEFAULT_STALENESS_MS = 60_000;
/** The JetStream stream holding the journal: one subject, so one total order. */
export const DEFAULT_STREAM = 'mezusphere-journal';

export interface ReplicaSettings {
  /** NATS URLs, `nats://host:port`. */
  servers: string[];
  /** This node's name: in message ids and log lines, never in the order of anything. */
  node: string;
  /** How long a node cut off from JetStream keeps serving protected routes from its replica. */
  stalenessMs: number;
  stream: string;
  /** Stream replicas: 3 on a cluster of three servers or more, else one per server given. */
  replicas: number;
}

/** `nats://a:4222,nats://b:4222` → the list; a one-line reason when malformed. */
export function parseServers(raw: string): string[] | string {
  const out: string[] = [];
  for (const part of raw.split(',')) {
    const s = part.trim();
    if (s === '') continue;
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return `--nats: "${s}" is not a URL like nats://127.0.0.1:4222`;
    }
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:') return `--nats: "${s}" must start with nats:// or tls://`;
    if (u.port === '') return `--nats: "${s}" needs a port`;
    out.push(s);
  }
  return out.length === 0 ? '--nats needs at least one server URL' : out;
}

export function makeSettings(servers: string[], node: string | undefined, stalenessMs: number | undefined): ReplicaSettings {
  return {
    servers,
    node: node ?? hostname(),
    stalenessMs: stalenessMs ?? DEFAULT_STALENESS_MS,
    stream: DEFAULT_STREAM,
    replicas: Math.min(3, servers.length),
  };
}

/** The settings this process replicates with, or null: the embedded single node (no NATS at all). */
export function readSettings(dataDir: string): ReplicaSettings | null {
  const env = process.env[ENV_NATS];
  let fromFile: Partial<ReplicaSettings> | null = null;
  try {
    fromFile = JSON.parse(readFileSync(join(dataDir, REPLICATION_FILE), 'utf8')) as Partial<ReplicaSettings>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new MezuError('MEZU_REPLICA_UNAVAILABLE', `replica: cannot read ${join(dataDir, REPLICATION_FILE)}: ${(err as Error).message}`, { cause: err });
  }
  if (env !== undefined && env !== '') {
    const servers = parseServers(env);
    if (typeof servers === 'string') throw new MezuError('MEZU_REPLICA_UNAVAILABLE', `replica: ${servers}`);
    return makeSettings(servers, process.env[ENV_NODE] ?? fromFile?.node, fromFile?.stalenessMs);
  }
  if (fromFile === null || !Array.isArray(fromFile.servers)) return null;
  return { ...makeSettings(fromFile.servers, fromFile.node, fromFile.stalenessMs), ...(fromFile.stream === undefined ? {} : { stream: fromFile.stream }), ...(fromFile.replicas === undefined ? {} : { replicas: fromFile.replicas }) };
}

/** Written by `edge --nats` before anything opens the store (atomically: a reader never sees half a file). */
export function writeSettings(dataDir: string, s: ReplicaSettings): void {
  const p = join(dataDir, REPLICATION_FILE);
  writeFileSync(`${p}.tmp`, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${p}.tmp`, p);
}
