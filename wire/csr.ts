/**
 * The tunnel's keys, as both ends make and exchange them: ECDSA P-256 keys
 * signing with SHA-256, PEM-encoded (keys as PKCS#8 `PRIVATE KEY`). A
 * Warpgate that enrolls creates its key pair and a PKCS#10 request for it
 * here (the private key never leaves the Warpgate); the Console signs only a
 * request for such a key and no larger than `MAX_CSR_PEM`
 * (src/pki/issue.ts `signCsr`), and the edge's certificates use the same
 * algorithms. @peculiar/x509 is loaded only when a CSR is made: everything
 * that imports the wire (the request path, the Warpgate's forwarding) does
 * not load it for that.
 */
import type * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

export const TUNNEL_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const TUNNEL_SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Largest CSR the Console accepts (a P-256 CSR is ~400 bytes of PEM). */
export const MAX_CSR_PEM = 8 * 1024;

/** Passed explicitly to @peculiar/x509 so its global provider is left alone. */
const cryptoProvider = webcrypto;

/** A fresh, exportable tunnel key pair. */
export function newTunnelKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(TUNNEL_KEY_ALGORITHM, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;
}

/** PEM of DER bytes under `label`, 64 characters a line. */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** PKCS#8 PEM of a private key. */
export async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A certificate or request subject: one common name of 1 to 64 characters (X.520's upper bound). */
export function subjectName(commonName: string): x509.JsonName {
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > 64) {
    throw new RangeError('pki: commonName must be 1..64 characters');
  }
  return [{ CN: [commonName] }];
}

/** A key pair and a PKCS#10 request for it (the Warpgate's side of enrollment). */
export async function createCsr(commonName: string): Promise<{ csr: string; key: string }> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const keys = await newTunnelKeyPair();
  const req = await x509.Pkcs10CertificateRequestGenerator.create({ name: subjectName(commonName), keys, signingAlgorithm: TUNNEL_SIGNING_ALGORITHM }, cryptoProvider);
  return { csr: req.toString('pem'), key: await privateKeyPem(keys.privateKey) };
}
