/**
 * Enrollment's certificate signing (src/pki/issue.ts `signCsr`) with a CSR
 * made the way a Warpgate makes it (wire/csr.ts): only the CSR's key is used,
 * after its signature proves possession; subject and SANs come from the
 * enrollment.
 */
import test from 'ava';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, webcrypto } from 'node:crypto';
import { createCA, signCsr, credentialFromPeerCertificate, poolFromPeerCertificate } from '../../../src/pki/index.js';
import { createCsr, MAX_CSR_PEM } from '../../../wire/index.js';

test('signCsr: the certificate carries pool, key, service account and Warpgate; subject and SANs come from the enrollment', async (t) => {
  const ca = await createCA('test CA');
  const { csr } = await createCsr('warpgate-asks-for-anything');
  const s = await signCsr(ca, csr, { pool: 'pool-a', keyId: 'key1234567890abc', serviceAccountId: 'sa_1', warpgateId: 'wg01' }, 60_000);
  const cert = new X509Certificate(s.cert);
  t.true(cert.checkIssued(new X509Certificate(ca.cert)));
  t.is(poolFromPeerCertificate(cert), 'pool-a');
  t.deepEqual(credentialFromPeerCertificate(cert), { keyId: 'key1234567890abc', serviceAccountId: 'sa_1', warpgateId: 'wg01' });
  t.regex(cert.subject, /CN=warpgate-wg01/);
  t.true(Date.parse(cert.validTo) <= Date.now() + 61_000, 'short-lived');
  t.is(cert.keyUsage?.includes('1.3.6.1.5.5.7.3.2') ?? true, true);
});

test('signCsr refuses a CSR that is not PEM, does not verify, or is not P-256', async (t) => {
  const ca = await createCA('test CA');
  const id = { pool: 'p', keyId: 'k', serviceAccountId: 's', warpgateId: 'w' };
  await t.throwsAsync(signCsr(ca, 'nope', id, 1000), { message: /PEM certificate request/ });
  const { csr } = await createCsr('x');
  // Flip a byte inside the signature: possession is no longer proven.
  const lines = csr.trim().split('\n');
  const body = Buffer.from(lines.slice(1, -1).join(''), 'base64');
  body[body.length - 5] ^= 0x55;
  const tampered = `${lines[0]}\n${body.toString('base64').match(/.{1,64}/g)!.join('\n')}\n${lines[lines.length - 1]}\n`;
  await t.throwsAsync(signCsr(ca, tampered, id, 1000), { message: /does not verify|does not parse/ });
  await t.throwsAsync(signCsr(ca, csr, { ...id, pool: 'Bad Pool' }, 1000), { message: /invalid pool/ });
});

test('signCsr refuses a CSR over the size limit and a CSR for another key type', async (t) => {
  const ca = await createCA('test CA');
  const id = { pool: 'p', keyId: 'k', serviceAccountId: 's', warpgateId: 'w' };
  const { csr } = await createCsr('x');
  await t.throwsAsync(signCsr(ca, csr + ' '.repeat(MAX_CSR_PEM), id, 1000), { message: /PEM certificate request/ });
  // A CSR for an Ed25519 key: it verifies, but the tunnel's keys are P-256.
  const keys = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ed = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=x', keys, signingAlgorithm: { name: 'Ed25519' } }, webcrypto);
  await t.throwsAsync(signCsr(ca, ed.toString('pem'), id, 1000), { message: /must be ECDSA P-256/ });
});
