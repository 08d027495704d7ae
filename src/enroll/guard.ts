/**
 * Warpgate enrollment, edge side. The tunnel listener accepts client
 * certificates from the static CAs (`--tunnel-ca`, the dev PKI) and from every
 * project's tunnel CA in the store. A certificate issued by enrollment names
 * its API key; the guard admits it only while that key is live (not revoked,
 * not expired, its service account active), only when it was signed by the
 * key's own project CA, and only for the pool that project is served by. The
 * worker re-checks every enrolled tunnel on each store poll and closes those
 * whose key died: a revocation closes the Warpgate's tunnels within one poll
 * interval (500 ms by default).
 */
import type { TLSSocket } from 'node:tls';
import type { Store, TunnelCaPublic } from '../store/index.js';
import type { CompiledConfig } from '../config/index.js';
import { credentialFromPeerCertificate } from '../pki/index.js';
import { systemClock, type Clock } from '../runtime/index.js';

export type Admission = { credential: string | null } | { refuse: string };

export class TunnelGuard {
  private cas: TunnelCaPublic[] = [];
  private casKey = '';

  constructor(
    private readonly store: Store,
    private readonly config: () => CompiledConfig | null,
    private readonly clock: Clock = systemClock,
  ) {
    this.reloadCas();
  }

  /** Re-reads the project CAs; true when the set changed (the listener then takes the new list). */
  reloadCas(): boolean {
    const all = this.store.tunnelCas.all();
    const key = all.map((c) => c.fingerprint256).sort().join(',');
    if (key === this.casKey) return false;
    this.cas = all;
    this.casKey = key;
    return true;
  }

  /** PEMs of the project tunnel CAs. */
  projectCas(): string[] {
    return this.cas.map((c) => c.cert);
  }

  /** Is the key a tunnel was admitted with still live? */
  live(keyId: string): boolean {
    const k = this.store.serviceAccounts.getKey(keyId);
    if (k === undefined || k.revokedAt !== null) return false;
    if (k.expiresAt !== null && this.clock.now() >= k.expiresAt) return false;
    const sa = this.store.serviceAccounts.get(k.serviceAccountId);
    return sa !== undefined && sa.status === 'active' && sa.projectId === k.projectId;
  }

  /** Decides on a TLS connection whose certificate chains to an accepted CA and names `pool`. */
  admit(socket: TLSSocket, pool: string): Admission {
    const leaf = socket.getPeerCertificate(true);
    const cred = credentialFromPeerCertificate(leaf);
    const issuerFp = leaf.issuerCertificate?.fingerprint256 ?? '';
    const projectCa = this.cas.find((c) => c.fingerprint256 === issuerFp) ?? this.store.tunnelCas.all().find((c) => c.fingerprint256 === issuerFp);
    if (cred === 'ambiguous') return { refuse: 'the certificate names two different keys' };
    if (cred === null) {
      // Statically provisioned certificates come from the static CAs only; a project CA issues enrolled ones.
      return projectCa === undefined ? { credential: null } : { refuse: 'a certificate from a project tunnel CA without a key' };
    }
    const k = this.store.serviceAccounts.getKey(cred.keyId);
    if (k === undefined) return { refuse: `unknown key ${cred.keyId}` };
    if (projectCa === undefined || projectCa.projectId !== k.projectId) return { refuse: `key ${k.id}: the certificate is not signed by the tunnel CA of project ${k.projectId}` };
    if (cred.serviceAccountId !== k.serviceAccountId) return { refuse: `key ${k.id}: the certificate names another service account` };
    if (!this.live(k.id)) return { refuse: `key ${k.id} is revoked or expired, or its service account is disabled` };
    const project = this.config()?.projects.get(k.projectId);
    if (project === undefined || project.upstream !== pool) return { refuse: `key ${k.id}: project ${k.projectId} is not served by pool ${pool}` };
    return { credential: k.id };
  }
}
