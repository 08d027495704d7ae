/**
 * Warpgate enrollment, control-plane side. A Warpgate started with
 * `--edge URL --key mzk_…` generates a key pair, sends a CSR for it with the
 * key as bearer credential (the admin API has already checked the key and its
 * `warpgates:enroll` permission), and gets back a short-lived client
 * certificate signed by its project's tunnel CA — pool, key, service account
 * and Warpgate id in URI SANs — plus the CA to pin for the edge's tunnel
 * certificate and the tunnel endpoints (on a replicated cluster, every live
 * node's: `enrollEndpoints`). It enrolls again (a fresh key pair)
 * before the certificate expires. Revoking the key refuses the next renewal,
 * and the edge closes the Warpgate's tunnels (src/enroll/guard.ts).
 *
 * Why short-lived: a certificate is a bearer of the key's authority that the
 * edge cannot recall by itself once issued; a short lifetime (default 1 h)
 * bounds what a copied certificate is worth, and the edge re-checks the key
 * named inside it on every handshake and every poll anyway.
 */
import { hostname as osHostname } from 'node:os';
import { createCA, fingerprint256, signCsr } from '../pki/index.js';
import type { Store, ServiceAccountRecord, ApiKeyRecord, TunnelCaRecord, WarpgateRecord, NodeRecord } from '../store/index.js';
import type { EnrollResponse } from '../../wire/index.js';
import { MezuError } from '../errors/index.js';
import { InvalidRequest, type Control, type Actor } from '../control/index.js';
import { systemClock, type Timers } from '../runtime/index.js';

export interface EnrollerOptions {
  /** `host:port` of the edge's tunnel listener, as Warpgates should dial it (`--tunnel-endpoint`, or this node's listener). */
  endpoints: string[];
  /** TLS server name to verify the tunnel certificate against. */
  servername: string;
  /** PEM of the CA that signed the edge's tunnel certificate. */
  serverCa: string;
  /** Lifetime of issued client certificates. */
  certTtlMs: number;
}

/** Renew when this fraction of the certificate's life has passed. */
export const RENEW_AT_FRACTION = 2 / 3;
export const DEFAULT_CERT_TTL_MS = 60 * 60_000;
/** Shortest lifetime accepted: renewals must have room to happen. */
export const MIN_CERT_TTL_MS = 5_000;

const ID_RE = /^[A-Za-z0-9_-]{4,64}$/;
/** How long a new project CA waits before the first certificate it signs is handed out: two default edge polls. */
export const NEW_CA_SETTLE_MS = 1_000;

export class Enroller {
  constructor(
    private readonly store: Store,
    private readonly control: Control,
    private readonly opts: EnrollerOptions,
    private readonly clock: Timers = systemClock,
  ) {}

  /** The project's tunnel CA, created on its first enrollment (two racing enrollments get one CA). */
  async projectCa(projectId: string): Promise<TunnelCaRecord> {
    const cur = this.store.tunnelCas.get(projectId);
    if (cur !== undefined) return cur;
    const ca = await createCA(`Mezusphere tunnel CA ${projectId}`.slice(0, 64));
    return this.store.tunnelCas.putIfAbsent({ projectId, cert: ca.cert, key: ca.key, fingerprint256: fingerprint256(ca.cert), createdAt: this.clock.now() });
  }

  async enroll(actor: Actor, sa: ServiceAccountRecord, key: ApiKeyRecord, body: Record<string, unknown>): Promise<EnrollResponse> {
    const problems: Array<{ at: string; message: string }> = [];
    const csr = typeof body.csr === 'string' ? body.csr : (problems.push({ at: 'csr', message: 'is required: a PEM certificate request' }), '');
    const wgId = typeof body.warpgate_id === 'string' && ID_RE.test(body.warpgate_id) ? body.warpgate_id : (problems.push({ at: 'warpgate_id', message: 'must be 4 to 64 letters, digits, "-" or "_"' }), '');
    const text = (v: unknown, at: string) => {
      // eslint-disable-next-line no-control-regex
      if (v === undefined) return '';
      // eslint-disable-next-line no-control-regex
      if (typeof v !== 'string' || v.length > 200 || /[\u0000-\u001f\u007f]/.test(v)) {
        problems.push({ at, message: 'must be text of at most 200 characters' });
        return '';
      }
      return v;
    };
    const host = text(body.hostname, 'hostname');
    const version = text(body.version, 'version');
    if (problems.length > 0) throw new InvalidRequest(problems);
    const project = this.control.project(sa.projectId);
    const existing = this.store.warpgates.get(wgId);
    if (existing !== undefined && existing.projectId !== sa.projectId) {
      throw new InvalidRequest([{ at: 'warpgate_id', message: 'belongs to a Warpgate of another project; use a new id' }]);
    }
    const ca = await this.projectCa(project.id);
    // A project's first enrollment creates its CA; edge workers pick new CAs up on their next store poll
    // (500 ms by default). Answer once they have, so the Warpgate's first dial is not refused.
    const age = this.clock.now() - ca.createdAt;
    if (age < NEW_CA_SETTLE_MS) await new Promise<void>((r) => this.clock.setTimeout(r, NEW_CA_SETTLE_MS - age));
    let signed: { cert: string; serial: string; notAfter: Date };
    try {
      signed = await signCsr({ cert: ca.cert, key: ca.key }, csr, { pool: project.upstream, keyId: key.id, serviceAccountId: sa.id, warpgateId: wgId }, this.opts.certTtlMs);
    } catch (err) {
      throw new MezuError('MEZU_CSR_INVALID', `console: ${(err as Error).message}`);
    }
    const now = this.clock.now();
    const rec: WarpgateRecord = {
      id: wgId,
      projectId: project.id,
      pool: project.upstream,
      serviceAccountId: sa.id,
      keyId: key.id,
      hostname: host,
      version,
      enrolledAt: existing?.enrolledAt ?? now,
      renewedAt: now,
      certSerial: signed.serial,
      certExpiresAt: signed.notAfter.getTime(),
      refusedAt: null,
    };
    await this.store.warpgates.put(rec);
    // Read after the write: a Console on a replica that no edge follows has just caught up with the stream.
    const endpoints = this.store.replica === null ? this.opts.endpoints : enrollEndpoints(this.opts.endpoints, this.store.nodes.live(this.clock.now()));
    const renew = now + Math.floor(this.opts.certTtlMs * RENEW_AT_FRACTION);
    // Audited when a Warpgate first enrolls with a key; renewals (every ~40 min by default) only update its record.
    if (existing === undefined || existing.keyId !== key.id || existing.refusedAt !== null) await this.control.record(actor, 'warpgate.enroll', { type: 'warpgate', id: wgId }, project.id, {
      key: key.id,
      pool: project.upstream,
      hostname: host,
      version,
      certificate_serial: signed.serial,
      expires_at: signed.notAfter.toISOString(),
    });
    return {
      certificate: signed.cert,
      ca: this.opts.serverCa,
      tunnel: { endpoints, servername: this.opts.servername },
      project: project.id,
      pool: project.upstream,
      service_account: sa.id,
      key: key.id,
      expires_at: signed.notAfter.toISOString(),
      renew_after: new Date(Math.min(renew, signed.notAfter.getTime() - 1000)).toISOString(),
    };
  }
}

/**
 * The endpoints a Warpgate is told to dial: the configured ones first, in
 * their order, then those the live nodes of a replicated cluster advertise,
 * by node id; each once (host compared without case). A Warpgate keeps
 * tunnels to every one, so any node can forward to its origin, and a node
 * that dies takes only its own tunnels with it. The order is stable, so
 * renewals do not reshuffle what a Warpgate dials.
 */
export function enrollEndpoints(configured: readonly string[], live: readonly NodeRecord[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const e of [...configured, ...live.map((n) => n.endpoint)]) {
    const k = e.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(e);
  }
  return out;
}

/** Default tunnel server name for a listener host (the dev certificate covers localhost and loopback). */
export function defaultServername(host: string): string {
  return host === '127.0.0.1' || host === '::1' || host === '0.0.0.0' ? 'localhost' : host === '' ? osHostname() : host;
}
