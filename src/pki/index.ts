/**
 * Tunnel PKI: the CA, the edge's tunnel-listener server certificate and the
 * Warpgate client certificates (mTLS), generated in-process with WebCrypto
 * (ECDSA P-256 / SHA-256) so the dev stack and the tests need no openssl.
 *
 * A Warpgate client certificate names its upstream pool in exactly one URI
 * SAN, `POOL_URI_PREFIX + pool` (see `poolFromPeerCertificate`).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { POOL_URI_PREFIX, KEY_URI_PREFIX, SERVICE_ACCOUNT_URI_PREFIX, WARPGATE_URI_PREFIX } from '../../wire/index.js';

/** A certificate and its private key, both PEM (the key as PKCS#8 `PRIVATE KEY`). */
export interface CertKeyPem {
  cert: string;
  key: string;
}

/** What `ensureDevPki` returns: PEM contents of every file it manages. */
export interface DevPki {
  /** Absolute path of the PKI directory. */
  dir: string;
  /** CA certificate PEM (the trust anchor for both sides of the tunnel). */
  ca: string;
  /** Edge tunnel-listener certificate and key. */
  server: CertKeyPem;
  /** Warpgate client certificate and key, by pool name. */
  clients: Record<string, CertKeyPem>;
}

/** Valid upstream pool name. */
export const POOL_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Names the dev tunnel-listener certificate always covers. */
export const DEV_SERVER_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1'];

const DAY_MS = 86_400_000;
/** Default notBefore backdating, to tolerate clock skew between the two ends. */
const SKEW_MS = 60_000;
const CA_DEFAULT_DAYS = 3650;
const LEAF_DEFAULT_DAYS = 365;
/** `ensureDevPki` re-issues a leaf certificate that expires within this window. */
const RENEW_BEFORE_MS = 7 * DAY_MS;

const subtle = webcrypto.subtle;
/** Passed explicitly to @peculiar/x509 so its global provider is left alone. */
const cryptoProvider = webcrypto;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;

// --- keys and PEM ---------------------------------------------------------

function generateKeyPair(): Promise<CryptoKeyPair> {
  return subtle.generateKey(EC_ALG, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function certPem(cert: x509.X509Certificate): string {
  return toPem(new Uint8Array(cert.rawData), 'CERTIFICATE');
}

/** Parses a P-256 private key (any PEM node understands) into a signing CryptoKey. */
async function importSigningKey(pem: string): Promise<{ key: CryptoKey; keyObject: KeyObject }> {
  const keyObject = createPrivateKey(pem);
  const details = keyObject.asymmetricKeyDetails;
  if (keyObject.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') {
    throw new Error('pki: CA key must be an ECDSA P-256 private key');
  }
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  const key = await subtle.importKey('pkcs8', der, EC_ALG, false, ['sign']);
  return { key, keyObject };
}

/** True when `keyPem` is the private key of `certPemText`. */
function keyMatchesCert(keyPem: string, certPemText: string): boolean {
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  const fromCert = new NodeX509Certificate(certPemText).publicKey.export({ type: 'spki', format: 'der' });
  return fromKey.equals(fromCert);
}

// --- issuing --------------------------------------------------------------

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

function subjectName(commonName: string): x509.JsonName {
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > 64) {
    throw new RangeError('pki: commonName must be 1..64 characters');
  }
  return [{ CN: [commonName] }];
}

/** Creates a self-signed CA (CA:true, pathLen 0, keyCertSign+cRLSign); 10 years by default. */
export async function createCA(commonName: string, opts: { days?: number } = {}): Promise<CertKeyPem> {
  const keys = await generateKeyPair();
  const { notBefore, notAfter } = validity(opts.days, CA_DEFAULT_DAYS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialHex(),
      name: subjectName(commonName),
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: SIGNING_ALG,
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

async function loadCA(ca: CertKeyPem): Promise<LoadedCA> {
  const cert = new x509.X509Certificate(ca.cert);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new Error('pki: issuer certificate is not a CA');
  if (!keyMatchesCert(ca.key, ca.cert)) throw new Error('pki: CA key does not match CA certificate');
  const { key } = await importSigningKey(ca.key);
  return { cert, signingKey: key };
}

async function issueLeaf(
  ca: CertKeyPem,
  commonName: string,
  v: Validity,
  leafExtensions: x509.Extension[],
): Promise<CertKeyPem> {
  const issuer = await loadCA(ca);
  const keys = await generateKeyPair();
  const caSki = issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId, false)
    : await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey, false, cryptoProvider);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialHex(),
      subject: subjectName(commonName),
      issuer: issuer.cert.subjectName,
      notBefore: v.notBefore,
      notAfter: v.notAfter,
      publicKey: keys.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: SIGNING_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        ...leafExtensions,
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, cryptoProvider),
        aki,
      ],
    },
    cryptoProvider,
  );
  return { cert: certPem(cert), key: await privateKeyPem(keys.privateKey) };
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

// --- enrollment: CSRs ------------------------------------------------------

/** A key pair and a PKCS#10 request for it (the Warpgate's side of enrollment). The private key never leaves the Warpgate. */
export async function createCsr(commonName: string): Promise<{ csr: string; key: string }> {
  const keys = await generateKeyPair();
  const req = await x509.Pkcs10CertificateRequestGenerator.create({ name: subjectName(commonName), keys, signingAlgorithm: SIGNING_ALG }, cryptoProvider);
  return { csr: req.toString('pem'), key: await privateKeyPem(keys.privateKey) };
}

/** Largest CSR accepted (a P-256 CSR is ~400 bytes of PEM). */
export const MAX_CSR_PEM = 8 * 1024;

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
  const caSki = issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId, false)
    : await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey, false, cryptoProvider);
  const serial = randomSerialHex();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial,
      subject: subjectName(`warpgate-${id.warpgateId}`),
      issuer: issuer.cert.subjectName,
      notBefore: new Date(now - SKEW_MS),
      notAfter,
      publicKey: req.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: SIGNING_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
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
        await x509.SubjectKeyIdentifierExtension.create(req.publicKey, false, cryptoProvider),
        aki,
      ],
    },
    cryptoProvider,
  );
  return { cert: certPem(cert), serial, notAfter };
}

/** SHA-256 fingerprint of a PEM certificate, formatted as node's `fingerprint256` (`AB:CD:…`). */
export function fingerprint256(certPemText: string): string {
  return new NodeX509Certificate(certPemText).fingerprint256;
}

// --- reading the pool back ------------------------------------------------

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

/**
 * The pool a Warpgate client certificate names: the pool of its
 * `urn:mezusphere:pool:<pool>` URI SAN(s). Null when there is none, when the
 * SANs name two different pools, when a pool name is invalid, or when the
 * subjectAltName string cannot be parsed.
 */
export function poolFromPeerCertificate(cert: PeerCertificate | NodeX509Certificate): string | null {
  if (cert === null || typeof cert !== 'object') return null;
  const san = cert instanceof NodeX509Certificate ? cert.subjectAltName : (cert as PeerCertificate).subjectaltname;
  if (typeof san !== 'string' || san.length === 0) return null;
  const entries = parseSubjectAltName(san);
  if (!entries) return null;
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
  if (cert === null || typeof cert !== 'object') return null;
  const san = cert instanceof NodeX509Certificate ? cert.subjectAltName : (cert as PeerCertificate).subjectaltname;
  if (typeof san !== 'string' || san.length === 0) return null;
  const entries = parseSubjectAltName(san);
  if (!entries) return 'ambiguous';
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

// --- dev PKI on disk ------------------------------------------------------

const FILES = {
  ca: 'ca.pem',
  caKey: 'ca-key.pem',
  server: 'edge-tunnel.pem',
  serverKey: 'edge-tunnel-key.pem',
  client: (pool: string) => `warpgate-${pool}.pem`,
  clientKey: (pool: string) => `warpgate-${pool}-key.pem`,
};

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes atomically (temp file + rename) with the given mode. */
async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.${Buffer.from(webcrypto.getRandomValues(new Uint8Array(6))).toString('hex')}.tmp`;
  try {
    await fsp.writeFile(tmp, data, { mode, flag: 'wx' });
    await fsp.chmod(tmp, mode); // writeFile's mode is filtered by the umask
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

async function writePair(dir: string, certFile: string, keyFile: string, pair: CertKeyPem): Promise<void> {
  // Key first: a crash in between leaves a key with no certificate, which is re-issued next time.
  await writeFileAtomic(path.join(dir, keyFile), pair.key, 0o600);
  await writeFileAtomic(path.join(dir, certFile), pair.cert, 0o644);
}

async function tightenKeyMode(file: string): Promise<void> {
  const st = await fsp.stat(file);
  if ((st.mode & 0o077) !== 0) await fsp.chmod(file, 0o600);
}

/** Per-directory lock so concurrent processes don't mint two CAs into one directory. */
async function withDirLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, '.lock');
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const fh = await fsp.open(lock, 'wx', 0o600);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fsp.stat(lock).catch(() => null);
      if (st && Date.now() - st.mtimeMs > 60_000) {
        await fsp.rm(lock, { force: true }); // stale: its holder died
        continue;
      }
      if (Date.now() > deadline) throw new Error(`pki: timed out waiting for lock ${lock}`);
      await new Promise((r) => setTimeout(r, 25 + Math.random() * 50));
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lock, { force: true });
  }
}

const inProcess = new Map<string, Promise<unknown>>();

/** True when an on-disk leaf is usable: key matches, issued by `ca`, not near expiry, and `accept` holds. */
function leafUsable(
  ca: NodeX509Certificate,
  pair: CertKeyPem,
  accept: (cert: NodeX509Certificate) => boolean,
): boolean {
  try {
    const cert = new NodeX509Certificate(pair.cert);
    if (!keyMatchesCert(pair.key, pair.cert)) return false;
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
    const notAfter = new x509.X509Certificate(pair.cert).notAfter.getTime();
    if (notAfter - Date.now() < RENEW_BEFORE_MS) return false;
    return accept(cert);
  } catch {
    return false;
  }
}

async function loadOrIssue(
  dir: string,
  certFile: string,
  keyFile: string,
  ca: NodeX509Certificate,
  accept: (cert: NodeX509Certificate) => boolean,
  issue: () => Promise<CertKeyPem>,
): Promise<CertKeyPem> {
  const cert = await readIfExists(path.join(dir, certFile));
  const key = await readIfExists(path.join(dir, keyFile));
  if (cert !== null && key !== null && leafUsable(ca, { cert, key }, accept)) {
    await tightenKeyMode(path.join(dir, keyFile));
    return { cert, key };
  }
  const pair = await issue();
  await writePair(dir, certFile, keyFile, pair);
  return pair;
}

/**
 * Idempotently provisions the dev tunnel PKI in `dir` (created 0700): the CA,
 * the edge tunnel-listener certificate (localhost, 127.0.0.1, ::1 plus
 * `serverNames`) and one Warpgate client certificate per pool. Existing files
 * are loaded; a missing, mismatched, foreign-CA, soon-expiring or
 * insufficient leaf is re-issued. A CA certificate without its key, or a CA
 * key that does not match, is an error (delete the directory to start over).
 * Private keys are written 0600.
 */
export async function ensureDevPki(dir: string, opts: { pools: string[]; serverNames?: string[] }): Promise<DevPki> {
  const abs = path.resolve(dir);
  const pools = [...new Set(opts.pools)];
  for (const p of pools) {
    if (!POOL_NAME_RE.test(p)) throw new RangeError(`pki: invalid pool name ${JSON.stringify(p)}`);
  }
  const serverNames = [...new Set([...DEV_SERVER_NAMES, ...(opts.serverNames ?? [])])];
  const dnsNames = serverNames.filter((n) => isIP(n) === 0);
  const ips = serverNames.filter((n) => isIP(n) !== 0);

  const prev = inProcess.get(abs) ?? Promise.resolve();
  const run = prev
    .catch(() => undefined)
    .then(async () => {
      const created = await fsp.mkdir(abs, { recursive: true, mode: 0o700 });
      if (created !== undefined) await fsp.chmod(abs, 0o700);
      return withDirLock(abs, () => provision(abs, pools, dnsNames, ips));
    });
  inProcess.set(abs, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(abs) === run) inProcess.delete(abs);
  }
}

async function provision(dir: string, pools: string[], dnsNames: string[], ips: string[]): Promise<DevPki> {
  const caCertPem = await readIfExists(path.join(dir, FILES.ca));
  const caKeyPem = await readIfExists(path.join(dir, FILES.caKey));
  let ca: CertKeyPem;
  if (caCertPem === null) {
    // No CA certificate: nothing can trust a stray key, so (re)create.
    ca = await createCA('Mezusphere Dev Tunnel CA');
    await writePair(dir, FILES.ca, FILES.caKey, ca);
  } else {
    if (caKeyPem === null) {
      throw new Error(`pki: ${path.join(dir, FILES.ca)} exists but ${FILES.caKey} is missing; delete ${dir} to start over`);
    }
    ca = { cert: caCertPem, key: caKeyPem };
    await loadCA(ca).catch((err: Error) => {
      throw new Error(`pki: unusable CA in ${dir}: ${err.message}; delete the directory to start over`);
    });
    await tightenKeyMode(path.join(dir, FILES.caKey));
  }
  const caNode = new NodeX509Certificate(ca.cert);

  const server = await loadOrIssue(
    dir,
    FILES.server,
    FILES.serverKey,
    caNode,
    (c) => dnsNames.every((n) => c.checkHost(n) !== undefined) && ips.every((ip) => c.checkIP(ip) !== undefined),
    () => issueServerCert(ca, { commonName: 'mezusphere-edge-tunnel', dnsNames, ips }),
  );

  const clients: Record<string, CertKeyPem> = {};
  for (const pool of pools) {
    clients[pool] = await loadOrIssue(
      dir,
      FILES.client(pool),
      FILES.clientKey(pool),
      caNode,
      (c) => poolFromPeerCertificate(c) === pool,
      () => issueClientCert(ca, { commonName: `warpgate-${pool}`, pool }),
    );
  }
  return { dir, ca: ca.cert, server, clients };
}
