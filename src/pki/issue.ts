/**
 * Issuing: the tunnel CA, the edge's tunnel-listener server certificate, the
 * Warpgate client certificates of the development PKI, and the short-lived
 * client certificates enrollment signs from a Warpgate's CSR. Generated
 * in-process with WebCrypto (the tunnel's ECDSA P-256 / SHA-256, wire/csr.ts)
 * so the dev stack and the tests need no openssl.
 *
 * A Warpgate client certificate names its upstream pool in exactly one URI
 * SAN, `POOL_URI_PREFIX + pool` (read back by peer.ts).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import {
  POOL_URI_PREFIX,
  KEY_URI_PREFIX,
  SERVICE_ACCOUNT_URI_PREFIX,
  WARPGATE_URI_PREFIX,
  MAX_CSR_PEM,
  TUNNEL_KEY_ALGORITHM,
  TUNNEL_SIGNING_ALGORITHM,
  newTunnelKeyPair,
  privateKeyPem,
  subjectName,
  toPem,
} from '../../wire/index.js';

/** A certificate and its private key, both PEM (the key as PKCS#8 `PRIVATE KEY`). */
export interface CertKeyPem {
  cert: string;
  key: string;
}

/** Valid upstream pool name. */
export const POOL_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

const DAY_MS = 86_400_000;
/** Default notBefore backdating, to tolerate clock skew between the two ends. */
const SKEW_MS = 60_000;
const CA_DEFAULT_DAYS = 3650;
const LEAF_DEFAULT_DAYS = 365;

/** Passed explicitly to @peculiar/x509 so its global provider is left alone. */
const cryptoProvider = webcrypto;
type CryptoKey = webcrypto.CryptoKey;

function certPem(cert: x509.X509Certificate): string {
  return toPem(new Uint8Array(cert.rawData), 'CERTIFICATE');
}

/** Parses a P-256 private key (any PEM node understands) into a signing CryptoKey. */
async function importSigningKey(pem: string): Promise<CryptoKey> {
  const keyObject = createPrivateKey(pem);
  const details = keyObject.asymmetricKeyDetails;
  if (keyObject.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') {
    throw new Error('pki: CA key must be an ECDSA P-256 private key');
  }
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, TUNNEL_KEY_ALGORITHM, false, ['sign']);
}

/** True when `keyPem` is the private key of `certPemText`. */
export function keyMatchesCert(keyPem: string, certPemText: string): boolean {
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  const fromCert = new NodeX509Certificate(certPemText).publicKey.export({ type: 'spki', format: 'der' });
  return fromKey.equals(fromCert);
}

interface Validity {
  notBefore: Date;
  notAfter: Date;
}

function validity(days: number | undefined, defaultDays: number, notBefore?: Date): Validity {
  const d = days ?? defaultDays;
  if (!Number.isFinite(d) || d <= 0) throw new RangeError(`pki: days must be a positive number, got ${d}`);
  if (notBefore !== undefined && Number.isNaN(notBefore.getTime())) throw new RangeError('pki: invalid notBefore');
  const now = Date.now();
  const start = notBefore ? notBefore.getTime() : now - SKEW_MS;
  const end = (notBefore ? notBefore.getTime() : now) + d * DAY_MS;
  return { notBefore: new Date(start), notAfter: new Date(end) };
}

/** 16 random bytes, top bit cleared (a positive INTEGER) and never all-zero leading byte. */
function randomSerialHex(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

/** Creates a self-signed CA (CA:true, pathLen 0, keyCertSign+cRLSign); 10 years by default. */
export async function createCA(commonName: string, opts: { days?: number } = {}): Promise<CertKeyPem> {
  const keys = await newTunnelKeyPair();
  const { notBefore, notAfter } = validity(opts.days, CA_DEFAULT_DAYS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialHex(),
      name: subjectName(commonName),
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: TUNNEL_SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, cryptoProvider),
      ],
    },
    cryptoProvider,
  );
  return { cert: certPem(cert), key: await privateKeyPem(keys.privateKey) };
}

interface LoadedCA {
  cert: x509.X509Certificate;
  signingKey: CryptoKey;
}

/** The CA's certificate and signing key, after checking it is a CA and the key is its own. */
export async function loadCA(ca: CertKeyPem): Promise<LoadedCA> {
  const cert = new x509.X509Certificate(ca.cert);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new Error('pki: issuer certificate is not a CA');
  if (!keyMatchesCert(ca.key, ca.cert)) throw new Error('pki: CA key does not match CA certificate');
  return { cert, signingKey: await importSigningKey(ca.key) };
}

/**
 * Signs an end-entity certificate for `publicKey` with the CA: not a CA
 * itself, digitalSignature only, `extensions` (EKU and SANs), then its own
 * and the issuer's key identifiers.
 */
async function signLeaf(
  issuer: LoadedCA,
  leaf: { serial: string; commonName: string; publicKey: x509.PublicKeyType; validity: Validity; extensions: x509.Extension[] },
): Promise<string> {
  const caSki = issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId, false)
    : await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey, false, cryptoProvider);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: leaf.serial,
      subject: subjectName(leaf.commonName),
      issuer: issuer.cert.subjectName,
      notBefore: leaf.validity.notBefore,
      notAfter: leaf.validity.notAfter,
      publicKey: leaf.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: TUNNEL_SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        ...leaf.extensions,
        await x509.SubjectKeyIdentifierExtension.create(leaf.publicKey, false, cryptoProvider),
        aki,
      ],
    },
    cryptoProvider,
  );
  return certPem(cert);
}

/** A fresh key pair and a certificate for it, signed by `ca`. */
async function issueLeaf(ca: CertKeyPem, commonName: string, v: Validity, extensions: x509.Extension[]): Promise<CertKeyPem> {
  const issuer = await loadCA(ca);
  const keys = await newTunnelKeyPair();
  const cert = await signLeaf(issuer, { serial: randomSerialHex(), commonName, publicKey: keys.publicKey, validity: v, extensions });
  return { cert, key: await privateKeyPem(keys.privateKey) };
}

/** Issues a TLS server certificate (EKU serverAuth) for the given DNS names and IP addresses. */
export async function issueServerCert(
  ca: CertKeyPem,
  opts: { commonName: string; dnsNames: string[]; ips: string[]; days?: number },
): Promise<CertKeyPem> {
  const names: x509.JsonGeneralName[] = [];
  for (const dns of opts.dnsNames) {
    if (typeof dns !== 'string' || !/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/.test(dns) || dns.length > 253) {
      throw new RangeError(`pki: invalid DNS name ${JSON.stringify(dns)}`);
    }
    names.push({ type: 'dns', value: dns });
  }
  for (const ip of opts.ips) {
    if (isIP(ip) === 0) throw new RangeError(`pki: invalid IP address ${JSON.stringify(ip)}`);
    names.push({ type: 'ip', value: ip });
  }
  if (names.length === 0) throw new RangeError('pki: a server certificate needs at least one DNS name or IP');
  return issueLeaf(ca, opts.commonName, validity(opts.days, LEAF_DEFAULT_DAYS), [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
    new x509.SubjectAlternativeNameExtension(names, false),
  ]);
}

/** Issues a Warpgate client certificate (EKU clientAuth) naming `pool` in a URI SAN. */
export async function issueClientCert(
  ca: CertKeyPem,
  opts: { commonName: string; pool: string; days?: number; notBefore?: Date },
): Promise<CertKeyPem> {
  if (!POOL_NAME_RE.test(opts.pool)) throw new RangeError(`pki: invalid pool name ${JSON.stringify(opts.pool)}`);
  return issueLeaf(ca, opts.commonName, validity(opts.days, LEAF_DEFAULT_DAYS, opts.notBefore), [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: POOL_URI_PREFIX + opts.pool }], false),
  ]);
}

export interface EnrolledIdentity {
  pool: string;
  keyId: string;
  serviceAccountId: string;
  warpgateId: string;
}

/**
 * Signs a Warpgate's CSR with a project's tunnel CA. Only the CSR's public
 * key is used, after its signature proves the requester holds the private
 * key; subject and SANs come from the enrollment (the requester cannot ask
 * for another pool). ECDSA P-256 keys only. Throws RangeError on a bad CSR.
 */
export async function signCsr(ca: CertKeyPem, csrPem: string, id: EnrolledIdentity, lifetimeMs: number): Promise<{ cert: string; serial: string; notAfter: Date }> {
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_PEM || !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw new RangeError('pki: csr must be a PEM certificate request');
  }
  let req: x509.Pkcs10CertificateRequest;
  try {
    req = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new RangeError(`pki: the CSR does not parse: ${(err as Error).message}`);
  }
  const alg = req.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') throw new RangeError('pki: the CSR key must be ECDSA P-256');
  if (!(await req.verify(cryptoProvider))) throw new RangeError('pki: the CSR signature does not verify');
  for (const [what, v] of [['pool', id.pool], ['key', id.keyId], ['service account', id.serviceAccountId], ['warpgate', id.warpgateId]] as const) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(v)) throw new RangeError(`pki: invalid ${what} id ${JSON.stringify(v)}`);
  }
  if (!POOL_NAME_RE.test(id.pool)) throw new RangeError(`pki: invalid pool name ${JSON.stringify(id.pool)}`);
  const issuer = await loadCA(ca);
  const now = Date.now();
  const notAfter = new Date(now + lifetimeMs);
  const serial = randomSerialHex();
  const cert = await signLeaf(issuer, {
    serial,
    commonName: `warpgate-${id.warpgateId}`,
    publicKey: req.publicKey,
    validity: { notBefore: new Date(now - SKEW_MS), notAfter },
    extensions: [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: 'url', value: POOL_URI_PREFIX + id.pool },
          { type: 'url', value: KEY_URI_PREFIX + id.keyId },
          { type: 'url', value: SERVICE_ACCOUNT_URI_PREFIX + id.serviceAccountId },
          { type: 'url', value: WARPGATE_URI_PREFIX + id.warpgateId },
        ],
        false,
      ),
    ],
  });
  return { cert, serial, notAfter };
}

/** SHA-256 fingerprint of a PEM certificate, formatted as node's `fingerprint256` (`AB:CD:…`). */
export function fingerprint256(certPemText: string): string {
  return new NodeX509Certificate(certPemText).fingerprint256;
}
