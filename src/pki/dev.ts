/**
 * The development PKI on disk (`mezusphere pki init`, `npm start`, tests): a
 * CA, the edge's tunnel-listener certificate and one Warpgate client
 * certificate per pool, kept in a directory and re-issued only when missing,
 * mismatched or near expiry. Production Warpgates enroll instead.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { systemClock } from '../runtime/index.js';
import { createCA, issueClientCert, issueServerCert, keyMatchesCert, loadCA, POOL_NAME_RE, type CertKeyPem } from './issue.js';
import { poolFromPeerCertificate } from './peer.js';

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

/** Names the dev tunnel-listener certificate always covers. */
export const DEV_SERVER_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1'];

/** `ensureDevPki` re-issues a leaf certificate that expires within this window. */
const RENEW_BEFORE_MS = 7 * 86_400_000;

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
  const deadline = systemClock.now() + 30_000;
  for (;;) {
    try {
      const fh = await fsp.open(lock, 'wx', 0o600);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fsp.stat(lock).catch(() => null);
      if (st && systemClock.now() - st.mtimeMs > 60_000) {
        await fsp.rm(lock, { force: true }); // stale: its holder died
        continue;
      }
      if (systemClock.now() > deadline) throw new Error(`pki: timed out waiting for lock ${lock}`);
      await new Promise<void>((r) => systemClock.setTimeout(r, 25 + systemClock.random() * 50));
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
    if (notAfter - systemClock.now() < RENEW_BEFORE_MS) return false;
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
