/**
 * The assertion forwarded with an allowed request: minted per session (or
 * API key), never per request — an Ed25519 signature costs tens of µs. Only
 * called once authorization has allowed the request, so a refused request
 * costs no signature and no store write.
 *
 * The assertion cached on the session or key record is reused while it was
 * minted for the principal's current version (any change of roles,
 * permissions, status or profile re-mints), with the active signing key, and
 * has more than ASSERTION_REFRESH_BEFORE_S of life left, under this node's
 * issuer. A per-worker memo bridges the moment between minting and the
 * record's write-back, and keeps the nodes of a replicated cluster that run
 * under different issuers from re-minting and rewriting the shared record
 * in turn: each holds its own in the memo and writes the record only when it mints.
 */
import { ACR_PWD, ASSERTION_REFRESH_BEFORE_S } from '../../wire/index.js';
import type { Store } from '../store/index.js';
import type { Principal } from '../session/index.js';
import type { Signer } from './signer.js';


const REFRESH_BEFORE_MS = ASSERTION_REFRESH_BEFORE_S * 1000;
/** Memo entries; past it, it starts over (clearing costs a re-mint at worst). */
const MEMO_ENTRIES = 10_000;

interface Minted {
  token: string;
  exp: number;
  version: number;
  kid: string;
  /** The session's last second-factor time it was minted with: a step-up re-mints. */
  otpAt: number;
}

export class Assertions {
  private readonly minted = new Map<string, Minted>();

  constructor(
    private readonly store: Store,
    private readonly signer: Signer,
  ) {}

  /** The assertion for `p` on `projectId` at `now`; throws MEZU_SIGNING_KEY_MISSING when there is no key (the caller denies). */
  for(p: Principal, projectId: string, now: number): string {
    const kid = this.signer.activeKid;
    const iss = this.signer.issuer;
    const s = p.session;
    if (s !== null) {
      const version = p.user!.version;
      // A step-up drops the record's cached assertion (SessionStore.stepUp); the memo is checked against its time.
      if (s.assertion !== null && s.assertionUserVersion === version && s.assertionKid === kid && s.assertionExp - now > REFRESH_BEFORE_MS && (s.assertionIss === undefined || s.assertionIss === iss)) return s.assertion;
      // The last second-factor use (code or passkey): the `step_up_time` claim.
      const ft = s.factorTimes;
      const otpAt = ft === undefined ? 0 : Math.max(ft.otp ?? 0, ft.hwk ?? 0);
      const m = this.minted.get(s.id);
      if (m !== undefined && m.version === version && m.kid === kid && m.otpAt === otpAt && m.exp - now > REFRESH_BEFORE_MS) return m.token;
      const r = this.signer.mint(projectId, { type: 'user', id: p.id, email: p.email, name: p.name, roles: [...p.roles], permissions: [...p.permissions], amr: [...s.amr], authTime: s.authTime, acr: s.acr ?? ACR_PWD, ...(otpAt !== 0 ? { stepUpTime: otpAt } : {}), sid: s.id }, now);
      this.remember(s.id, { token: r.token, exp: r.exp, version, kid: r.kid, otpAt });
      this.store.sessions.refresh(p.credential, { assertion: r.token, assertionExp: r.exp, assertionUserVersion: version, assertionKid: r.kid, assertionIss: iss }).catch(noop);
      return r.token;
    }
    const k = p.key!;
    const version = p.account!.version;
    if (k.assertion !== null && k.assertionUserVersion === version && k.assertionKid === kid && k.assertionExp - now > REFRESH_BEFORE_MS && (k.assertionIss === undefined || k.assertionIss === iss)) return k.assertion;
    const m = this.minted.get(k.id);
    if (m !== undefined && m.version === version && m.kid === kid && m.exp - now > REFRESH_BEFORE_MS) return m.token;
    const r = this.signer.mint(projectId, { type: 'service_account', id: p.id, email: '', name: p.name, roles: [...p.roles], permissions: [...p.permissions], amr: ['key'], authTime: k.createdAt, sid: k.id }, now);
    this.remember(k.id, { token: r.token, exp: r.exp, version, kid: r.kid, otpAt: 0 });
    this.store.serviceAccounts.refreshKey(k.id, { assertion: r.token, assertionExp: r.exp, assertionUserVersion: version, assertionKid: r.kid, assertionIss: iss, lastUsedAt: now }).catch(noop);
    return r.token;
  }

  private remember(id: string, m: Minted): void {
    if (this.minted.size >= MEMO_ENTRIES) this.minted.clear();
    this.minted.set(id, m);
  }
}

function noop(): void {}
