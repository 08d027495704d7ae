/**
 * Identity from a peer certificate, on the tunnel's accept path: the pool a
 * Warpgate's client certificate names, and the enrollment credential (key,
 * service account, Warpgate) an enrolled one carries, read from its URI SANs.
 */
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { POOL_URI_PREFIX, KEY_URI_PREFIX, SERVICE_ACCOUNT_URI_PREFIX, WARPGATE_URI_PREFIX } from '../../wire/index.js';
import { POOL_NAME_RE } from './issue.js';

/**
 * Splits node's subjectAltName string (`URI:a, DNS:b, IP Address:c`) into
 * [type, value] pairs. Since Node 17.3.1 / 16.13.2 a value holding a
 * separator or quote is JSON-quoted (`URI:"x, DNS:y"`), so a comma inside a
 * name cannot forge another entry. Returns null on anything malformed.
 */
function parseSubjectAltName(san: string): Array<[string, string]> | null {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) return null;
    const type = san.slice(i, colon);
    if (!/^[A-Za-z][A-Za-z ]*$/.test(type)) return null;
    let j = colon + 1;
    let value: string;
    if (san[j] === '"') {
      // JSON string: find the closing quote, skipping escapes.
      let k = j + 1;
      while (k < san.length && san[k] !== '"') k += san[k] === '\\' ? 2 : 1;
      if (k >= san.length) return null;
      try {
        value = JSON.parse(san.slice(j, k + 1)) as string;
      } catch {
        return null;
      }
      j = k + 1;
    } else {
      const sep = san.indexOf(', ', j);
      const end = sep < 0 ? san.length : sep;
      value = san.slice(j, end);
      j = end;
    }
    out.push([type, value]);
    if (j === san.length) break;
    if (!san.startsWith(', ', j)) return null;
    i = j + 2;
    if (i === san.length) return null;
  }
  return out;
}

/** The certificate's subjectAltName entries: null when it has none, 'malformed' when they cannot be parsed. */
function sanEntries(cert: PeerCertificate | NodeX509Certificate): Array<[string, string]> | 'malformed' | null {
  if (cert === null || typeof cert !== 'object') return null;
  const san = cert instanceof NodeX509Certificate ? cert.subjectAltName : (cert as PeerCertificate).subjectaltname;
  if (typeof san !== 'string' || san.length === 0) return null;
  return parseSubjectAltName(san) ?? 'malformed';
}

/**
 * The pool a Warpgate client certificate names: the pool of its
 * `urn:mezusphere:pool:<pool>` URI SAN(s). Null when there is none, when the
 * SANs name two different pools, when a pool name is invalid, or when the
 * subjectAltName string cannot be parsed.
 */
export function poolFromPeerCertificate(cert: PeerCertificate | NodeX509Certificate): string | null {
  const entries = sanEntries(cert);
  if (entries === null || entries === 'malformed') return null;
  let pool: string | null = null;
  for (const [type, value] of entries) {
    if (type !== 'URI' || !value.startsWith(POOL_URI_PREFIX)) continue;
    const p = value.slice(POOL_URI_PREFIX.length);
    if (!POOL_NAME_RE.test(p)) return null;
    if (pool !== null && pool !== p) return null;
    pool = p;
  }
  return pool;
}

/**
 * The enrollment identity a client certificate carries (key, service account,
 * Warpgate URI SANs), or null for a certificate without a key SAN (a
 * statically provisioned one). Two different values for one kind → null too
 * (the caller then refuses: an enrolled certificate is never ambiguous).
 */
export function credentialFromPeerCertificate(cert: PeerCertificate | NodeX509Certificate): { keyId: string; serviceAccountId: string | null; warpgateId: string | null } | 'ambiguous' | null {
  const entries = sanEntries(cert);
  if (entries === null) return null;
  if (entries === 'malformed') return 'ambiguous';
  const found: Record<string, string | null> = { key: null, sa: null, wg: null };
  for (const [type, value] of entries) {
    if (type !== 'URI') continue;
    const kind = value.startsWith(KEY_URI_PREFIX) ? 'key' : value.startsWith(SERVICE_ACCOUNT_URI_PREFIX) ? 'sa' : value.startsWith(WARPGATE_URI_PREFIX) ? 'wg' : null;
    if (kind === null) continue;
    const v = value.slice(value.lastIndexOf(':') + 1);
    if (found[kind] !== null && found[kind] !== v) return 'ambiguous';
    found[kind] = v;
  }
  if (found.key === null) return null;
  return { keyId: found.key, serviceAccountId: found.sa ?? null, warpgateId: found.wg ?? null };
}
