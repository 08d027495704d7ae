/**
 * Risk signals at a password sign-in (`login.adaptive`): a device the user
 * has not signed in with (`new_device`), a client network none of the user's
 * recent sign-ins came from (`new_network`, network.ts), and a burst of failed
 * sign-ins on the account since its last success (`failure_burst`). Each
 * signal a project turns on names the second factor such a sign-in must use.
 * Decided once, at the password step (flows/login.ts); the request path never
 * sees any of it.
 *
 * When signals that fire name different factors, the passkey wins: it is the
 * one a phished password and code cannot stand in for (recovery codes count
 * as `totp`, SECURITY.md), so the stronger demand is the one kept.
 */
import type { AdaptiveConfig } from '../config/index.js';

export type RiskSignal = 'new_device' | 'new_network' | 'failure_burst';

/** Which signals fired for this sign-in (only those the project turned on are looked up). */
export interface RiskFacts {
  newDevice: boolean;
  newNetwork: boolean;
  failureBurst: boolean;
}

export interface RiskDecision {
  /** Every signal that fired and demands a factor, in a fixed order: recorded in the history and the audit log. */
  signals: RiskSignal[];
  /** The factor the sign-in must use; null when no signal demands one. */
  factor: 'totp' | 'webauthn' | null;
  /** The signals that named `factor` (the page tells the user why). */
  because: RiskSignal[];
}

/** Pure: the demand of the signals that fired under the project's `adaptive` settings. */
export function decideRisk(a: Readonly<AdaptiveConfig>, f: RiskFacts): RiskDecision {
  const fired: Array<[RiskSignal, 'totp' | 'webauthn']> = [];
  if (f.newDevice && a.newDevice !== 'none') fired.push(['new_device', a.newDevice]);
  if (f.newNetwork && a.newNetwork !== 'none') fired.push(['new_network', a.newNetwork]);
  if (f.failureBurst && a.failureBurst !== null && a.failureBurst.require !== 'none') fired.push(['failure_burst', a.failureBurst.require]);
  const factor = fired.length === 0 ? null : fired.some(([, d]) => d === 'webauthn') ? 'webauthn' : 'totp';
  return { signals: fired.map(([s]) => s), factor, because: fired.filter(([, d]) => d === factor).map(([s]) => s) };
}
