/**
 * Enrollment, Warpgate side (`warpgate --edge URL --key mzk_… --origin …`).
 *
 * 1. Generate an ECDSA P-256 key pair here (the private key never leaves this
 *    process) and a CSR for it.
 * 2. POST it to the Console's enrollment endpoint with the key as bearer
 *    credential. The answer: a short-lived client certificate signed by the
 *    project's tunnel CA (pool, key, service account and this Warpgate's id
 *    inside), the CA that signed the edge's tunnel certificate (the only CA
 *    trusted for the tunnel: pinned), and the tunnel endpoints.
 * 3. Dial every endpoint with it (one agent each, warpgate/agents.ts), and
 *    enroll again with a fresh key pair at `renew_after` (two thirds into the
 *    certificate's life); new dials use the new certificate, and each agent
 *    replaces its live tunnels with tunnels dialed with it, one at a time,
 *    make-before-break (the edge would close each at the old certificate's
 *    notAfter). The renewal's endpoint list replaces the previous one: nodes
 *    that joined a replicated cluster are dialed, nodes gone are drained.
 *
 * Failures: an unreachable Console or a refused key (unknown, revoked,
 * expired, no `warpgates:enroll` permission) is logged with its code and
 * retried with full-jitter exponential backoff (1 s base, 60 s cap) — a
 * Warpgate started before its key exists, or while the Console restarts,
 * comes up on its own. When a renewal is refused because the key died, the
 * tunnels stop at once (the edge has closed them already) and enrollment
 * starts over. Repeated dial failures trigger an early renewal, so a revoked
 * key is noticed within seconds, not at the next scheduled renewal.
 */
import { createHash } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { ENROLL_PATH, createCsr, type EnrollResponse } from '../wire/index.js';
import { Backoff, systemClock, type Timers } from '../src/runtime/index.js';

export interface EnrollConfig {
  /** Console URL (`http://localhost:8081`). */
  url: string;
  /** The API key text (`mzk_<id>_<secret>`). */
  key: string;
  /** PEM to trust for an https Console (else the system CAs). */
  consoleCa: string | null;
  warpgateId: string;
  hostname: string;
  version: string;
}

/** What a refused or failed enrollment says: the error code of the Console (or MEZU_ENROLL_FAILED for the network). */
export class EnrollError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** True when the Console answered and refused the key (it will not succeed without an operator). */
    readonly refused: boolean,
  ) {
    super(message);
  }
}

export const ENROLL_BACKOFF_BASE_MS = 1_000;
export const ENROLL_BACKOFF_CAP_MS = 60_000;
/** Consecutive failed dials before the key is checked by renewing early, and how often at most. */
export const CHECK_AFTER_DIAL_FAILURES = 3;
export const CHECK_EVERY_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** A stable id for a Warpgate: the same host, origin and key give the same id across restarts. */
export function defaultWarpgateId(origin: string, keyText: string): string {
  const keyId = keyText.slice(4, 20);
  return createHash('sha256').update(`${osHostname()}\u0000${origin}\u0000${keyId}`).digest('hex').slice(0, 16);
}

export interface Enrolled {
  response: EnrollResponse;
  /** PKCS#8 PEM of the private key the certificate is for. */
  key: string;
}

/** One enrollment request. Throws EnrollError. */
export async function enrollOnce(cfg: EnrollConfig): Promise<Enrolled> {
  const { csr, key } = await createCsr(`warpgate-${cfg.warpgateId}`);
  const url = cfg.url.replace(/\/$/, '') + ENROLL_PATH;
  let dispatcher: unknown = undefined;
  if (cfg.consoleCa !== null) {
    const { Agent } = await import('undici');
    dispatcher = new Agent({ connect: { ca: cfg.consoleCa } });
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${cfg.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ csr, warpgate_id: cfg.warpgateId, hostname: cfg.hostname, version: cfg.version }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(dispatcher === undefined ? {} : { dispatcher }),
    } as RequestInit);
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new EnrollError('MEZU_ENROLL_FAILED', `warpgate: cannot reach the Console at ${cfg.url}: ${cause ?? (err as Error).message}`, false);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new EnrollError('MEZU_ENROLL_FAILED', `warpgate: ${url} answered ${res.status} without JSON; is --edge the Console URL?`, false);
  }
  if (res.status !== 201) {
    const e = (body as { error?: { code?: string; message?: string; problems?: Array<{ at: string; message: string }> } }).error;
    const code = e?.code ?? 'MEZU_ENROLL_FAILED';
    const detail = e?.problems?.map((p) => `${p.at}: ${p.message}`).join('; ');
    // 5xx and 404/405 are the Console's trouble (or the wrong URL); 4xx about the key are refusals.
    const refused = res.status === 401 || res.status === 403;
    throw new EnrollError(code, `warpgate: enrollment refused (${res.status} ${code}): ${e?.message ?? text.slice(0, 200)}${detail ? ` (${detail})` : ''}`, refused);
  }
  const r = body as EnrollResponse;
  if (typeof r.certificate !== 'string' || typeof r.ca !== 'string' || !Array.isArray(r.tunnel?.endpoints) || r.tunnel.endpoints.length === 0) {
    throw new EnrollError('MEZU_ENROLL_FAILED', 'warpgate: the enrollment answer lacks a certificate, a CA or tunnel endpoints', false);
  }
  const bad = r.tunnel.endpoints.find((e) => typeof e !== 'string' || splitEndpoint(e) === null);
  if (bad !== undefined) throw new EnrollError('MEZU_ENROLL_FAILED', `warpgate: the enrollment answer lists a tunnel endpoint that is not HOST:PORT: ${JSON.stringify(bad)}`, false);
  return { response: r, key };
}

/** Splits `host:port` (IPv6 in brackets). */
export function splitEndpoint(e: string): { host: string; port: number } | null {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(e);
  return m === null ? null : { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** What the enrollment loop drives: the tunnel agents (one per endpoint, ./agents.ts), created from the first certificate. */
export interface TunnelAgent {
  start(): void;
  stop(): Promise<void>;
  setCredentials(c: { cert: string; key: string; ca: string }): void;
  /** The endpoints a renewal listed: new ones are dialed, those gone drained. */
  setEndpoints(endpoints: readonly string[]): void;
}

export class Enrollment {
  private agent: TunnelAgent | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private lastCheck = 0;
  /** Failed enrollments in a row: never sooner than half the base again (a refused key is not hammered). */
  private readonly backoff: Backoff;

  constructor(
    private readonly cfg: EnrollConfig,
    private readonly makeAgent: (e: Enrolled) => TunnelAgent,
    private readonly log: (m: string) => void,
    private readonly enroll: (cfg: EnrollConfig) => Promise<Enrolled> = enrollOnce,
    private readonly clock: Timers = systemClock,
  ) {
    this.backoff = new Backoff({ baseMs: ENROLL_BACKOFF_BASE_MS, capMs: ENROLL_BACKOFF_CAP_MS, floorMs: ENROLL_BACKOFF_BASE_MS / 2 }, clock);
  }

  /** Runs until stop(): enroll (with backoff), tunnel, renew, start over when the key dies. */
  async run(): Promise<void> {
    let renewAt = 0;
    let expiresAt = 0;
    while (!this.stopped) {
      if (this.agent !== null && this.clock.now() < renewAt) {
        await this.sleep(renewAt - this.clock.now());
        if (this.stopped) break;
      }
      let got: Enrolled;
      try {
        got = await this.enroll(this.cfg);
      } catch (err) {
        const e = err instanceof EnrollError ? err : new EnrollError('MEZU_ENROLL_FAILED', `warpgate: ${(err as Error).message}`, false);
        if (e.refused && this.agent !== null) {
          // The key died (revoked, expired, disabled): the edge closed our tunnels; stop dialing with it.
          this.log(`${e.message}; stopping the tunnels (${e.code})`);
          const a = this.agent;
          this.agent = null;
          await a.stop();
        } else if (this.agent !== null && this.clock.now() < expiresAt) {
          // Console unreachable while the certificate still holds: keep the tunnels, retry the renewal.
          this.log(`${e.message}; the current certificate holds until ${new Date(expiresAt).toISOString()}, retrying (${e.code})`);
        } else {
          this.log(`${e.message}; retrying (${e.code})`);
        }
        const delay = this.backoff.next();
        renewAt = this.clock.now() + delay;
        if (this.agent === null) await this.sleep(delay);
        continue;
      }
      this.backoff.reset();
      const r = got.response;
      renewAt = Date.parse(r.renew_after);
      expiresAt = Date.parse(r.expires_at);
      if (this.agent === null) {
        this.agent = this.makeAgent(got);
        this.agent.start();
        this.log(`warpgate: enrolled as ${this.cfg.warpgateId} for project ${r.project} (pool ${r.pool}, key mzk_${r.key}); certificate until ${r.expires_at}; tunnel ${r.tunnel.endpoints.join(', ')}`);
      } else {
        this.agent.setCredentials({ cert: r.certificate, key: got.key, ca: r.ca });
        this.agent.setEndpoints(r.tunnel.endpoints);
        this.log(`warpgate: certificate renewed until ${r.expires_at}`);
      }
    }
  }

  /** The agent's dial failures: after a few in a row, renew now (a refused renewal means our key died). */
  onDialFailure(consecutive: number): void {
    if (this.stopped || consecutive < CHECK_AFTER_DIAL_FAILURES) return;
    const now = this.clock.now();
    if (now - this.lastCheck < CHECK_EVERY_MS) return;
    this.lastCheck = now;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    const a = this.agent;
    this.agent = null;
    await a?.stop();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        this.wake = null;
        resolve();
      };
      this.wake = finish;
      this.clock.setTimeout(finish, Math.max(0, ms));
    });
  }
}
