import type { ConsoleOptions } from '../console/index.js';
import type { ScrapeReply, ScrapeRequest, TrafficReply, TrafficRequest } from './metrics.js';
import type { ReplicaSettings } from '../replicate/index.js';

/** Options of `mezusphere edge`, shared by the primary and its workers. */
export interface EdgeOptions {
  dataDir: string;
  /** Front end (clients). */
  host: string;
  port: number;
  workers: number;
  /** Tunnel listener (Warpgates dial it). */
  tunnelHost: string;
  tunnelPort: number;
  tunnelCertFile: string;
  tunnelKeyFile: string;
  tunnelCaFiles: string[];
  /** Assertion issuer (`iss`). */
  issuer: string;
  /** Scheme clients reach the edge over; decides the cookie name. */
  scheme: 'http' | 'https';
  /** Tunnel liveness: PING interval and how long an ACK may take before the connection is declared dead. */
  tunnelPingMs: number;
  tunnelPingTimeoutMs: number;
  /** No response head from the Warpgate within this long → 504. */
  responseTimeoutMs: number;
  /** SIGTERM: in-flight requests get this long to finish. */
  drainGraceMs: number;
  /** How often workers look for a new config or key set. */
  configPollMs: number;
  /** Password-hashing threads per worker (hosted login). */
  hashThreads: number;
  /** SMTP URL for hosted-login mail, or null for the development outbox in the store. */
  smtpUrl: string | null;
  /** From address of hosted-login mail. */
  mailFrom: string;
  /** Longest request head (request line + header fields) in bytes; longer → 431 (`--max-head-size`). */
  maxHeadBytes: number;
  /** Forwarded requests one client address may have in flight per worker; more → 429 (`--client-inflight`). */
  clientInflight: number;
  /**
   * The metrics listener (`--metrics-host`, `--metrics-port`, default 127.0.0.1:9464), served by the
   * primary with every worker's figures merged; port null: no metrics, nothing counted (`--metrics-port off`).
   */
  metricsHost: string;
  metricsPort: number | null;
  /** Fraction of requests each worker writes an `access` log line for (`--access-log`); 0: off (src/front/access-log.ts). */
  accessLogRate: number;
  /**
   * OTLP/HTTP collector URL for the workers' spans (`--otlp-endpoint`; src/front/spans.ts), null: no
   * spans. `otlpSample`: probability that a trace the edge starts is sampled (`--otlp-sample`, default
   * 0.01); a client's sampled flag is followed whatever it is.
   */
  otlpEndpoint: string | null;
  otlpSample: number;
  /** Random id of this edge instance, set by the primary. */
  edgeId: string;
  /**
   * The Console (`--console-port`): the primary forks it once the workers are
   * ready (its tunnel endpoint defaults to the tunnel port they listen on) and
   * respawns it if it dies. Null: no Console (run `mezusphere console` apart).
   */
  console: ConsoleOptions | null;
  /**
   * `--nats URL[,URL…] --node ID [--nats-staleness 60s]`: this node joins a
   * cluster whose state is replicated through NATS JetStream. Null: the
   * embedded single node (or the settings a previous `--nats` left in the
   * data directory).
   */
  nats: ReplicaSettings | null;
  /**
   * `--tunnel-advertise HOST:PORT` (with `--nats`): where Warpgates dial this
   * node's tunnel listener, advertised to every node's Console
   * (src/cluster/advertise.ts). Null: the listener's own host and port.
   */
  tunnelAdvertise: string | null;
}

export const ENV_OPTIONS = 'MEZU_EDGE_OPTIONS';
export const ENV_CONSOLE_OPTIONS = 'MEZU_CONSOLE_OPTIONS';
export const ENV_WORKER_INDEX = 'MEZU_WORKER_INDEX';

/** Messages between the primary and workers. */
export type WorkerMessage =
  | { type: 'ready'; worker: number; port: number; tunnelPort: number }
  | { type: 'fatal'; worker: number; code: string; message: string }
  | ScrapeReply
  | TrafficReply;
export type PrimaryMessage = { type: 'drain'; graceMs: number } | { type: 'replica'; stale: boolean } | ScrapeRequest | TrafficRequest;
