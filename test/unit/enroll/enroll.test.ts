/**
 * Enrollment pieces without processes: CSR signing (only the CSR's key is
 * used, after its signature proves possession), the edge's TunnelGuard
 * (admits a certificate only for a live key, from that key's project CA, for
 * that project's pool). The Warpgate's side: test/unit/warpgate/enroll.test.ts.
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { createCA, issueClientCert, fingerprint256 } from '../../../src/pki/index.js';
import { createCsr } from '../../../wire/index.js';
import { openStore, type Store } from '../../../src/store/index.js';
import { parseConfigYaml, compileConfig, type CompiledConfig } from '../../../src/config/index.js';
import { Control, type Actor } from '../../../src/control/index.js';
import { Enroller, TunnelGuard, enrollEndpoints } from '../../../src/enroll/index.js';
import type { NodeRecord } from '../../../src/store/index.js';

const ACTOR: Actor = { type: 'cli', id: 't', name: 't', ip: '' };
const YAML = `projects:
  - { id: demo, hosts: [localhost], upstream: pool-a }
  - { id: other, hosts: [other.localhost], upstream: pool-b }
`;

interface Env {
  store: Store;
  control: Control;
  enroller: Enroller;
  guard: TunnelGuard;
  cfg: CompiledConfig;
}

async function env(t: ExecutionContext): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-enroll-'));
  const store = openStore(dir);
  t.teardown(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const v = parseConfigYaml(YAML);
  if (!v.ok) throw new Error('config');
  await store.config.apply(YAML, v.config, null);
  const cfg = compileConfig(v.config, 1);
  const control = new Control(store);
  const serverCa = await createCA('server CA');
  const enroller = new Enroller(store, control, { endpoints: ['127.0.0.1:7443'], servername: 'localhost', serverCa: serverCa.cert, certTtlMs: 60_000 });
  return { store, control, enroller, guard: new TunnelGuard(store, () => cfg), cfg };
}

/** What the guard reads from a TLS socket: the peer chain as node reports it. */
function socketFor(certPem: string, issuerPem: string): TLSSocket {
  const c = new X509Certificate(certPem);
  return { getPeerCertificate: () => ({ subjectaltname: c.subjectAltName, issuerCertificate: { fingerprint256: fingerprint256(issuerPem) } }) } as unknown as TLSSocket;
}

async function enroll(e: Env, project: string, wg: string) {
  const sa = await e.control.createServiceAccount(ACTOR, project, { name: `sa-${wg}`, permissions: ['warpgates:enroll'] });
  const k = await e.control.createKey(ACTOR, sa.id, {});
  const { csr } = await createCsr('x');
  const r = await e.enroller.enroll(ACTOR, sa, k.rec, { csr, warpgate_id: wg, hostname: 'h', version: '1' });
  return { sa, k, r };
}

test('TunnelGuard: admits a live key\'s certificate from its project CA for its pool; refuses once revoked or disabled', async (t) => {
  const e = await env(t);
  const { sa, k, r } = await enroll(e, 'demo', 'wg0001');
  t.is(r.pool, 'pool-a');
  t.true(e.guard.reloadCas());
  t.is(e.guard.projectCas().length, 1);
  const ca = e.store.tunnelCas.get('demo')!.cert;
  t.deepEqual(e.guard.admit(socketFor(r.certificate, ca), 'pool-a'), { credential: k.rec.id });
  t.regex((e.guard.admit(socketFor(r.certificate, ca), 'pool-b') as { refuse: string }).refuse, /not served by pool pool-b/);
  await e.control.updateServiceAccount(ACTOR, sa.id, { status: 'disabled' });
  t.false(e.guard.live(k.rec.id));
  t.true('refuse' in e.guard.admit(socketFor(r.certificate, ca), 'pool-a'));
  await e.control.updateServiceAccount(ACTOR, sa.id, { status: 'active' });
  t.true(e.guard.live(k.rec.id));
  await e.control.revokeKey(ACTOR, sa.id, k.rec.id);
  t.false(e.guard.live(k.rec.id));
  t.regex((e.guard.admit(socketFor(r.certificate, ca), 'pool-a') as { refuse: string }).refuse, /revoked or expired/);
  t.truthy(e.store.warpgates.get('wg0001')!.refusedAt, 'the Warpgate record says its key was refused');
});

test('TunnelGuard: a key that expires, or whose rotation overlap ends, stops being live at that instant (its tunnels close on the next poll)', async (t) => {
  const e = await env(t);
  let now = Date.now();
  const guard = new TunnelGuard(e.store, () => e.cfg, { now: () => now });
  const sa = await e.control.createServiceAccount(ACTOR, 'demo', { name: 'sa-exp', permissions: ['warpgates:enroll'] });
  const k = await e.control.createKey(ACTOR, sa.id, { expires_in: '1h' });
  const expiresAt = e.store.serviceAccounts.getKey(k.rec.id)!.expiresAt!;
  t.true(expiresAt > now);
  now = expiresAt - 1;
  t.true(guard.live(k.rec.id), 'live up to its expiry');
  now = expiresAt;
  t.false(guard.live(k.rec.id), 'not live from its expiry on');
  // Rotation: the old key lives through the overlap, then stops; the new one goes on.
  now = Date.now();
  const old = await e.control.createKey(ACTOR, sa.id, {});
  const rot = await e.control.rotateKey(ACTOR, sa.id, old.rec.id, { overlap: '10m' });
  const oldEnd = e.store.serviceAccounts.getKey(old.rec.id)!.expiresAt!;
  now = oldEnd - 1;
  t.true(guard.live(old.rec.id), 'the old key is live during the overlap');
  now = oldEnd;
  t.false(guard.live(old.rec.id), 'and not after it');
  t.true(guard.live(rot.rec.id), 'the new key is live');
});

test('TunnelGuard: another project\'s CA, a project CA without a key, and static certificates', async (t) => {
  const e = await env(t);
  const a = await enroll(e, 'demo', 'wg0002');
  const b = await enroll(e, 'other', 'wg0003');
  e.guard.reloadCas();
  const caA = e.store.tunnelCas.get('demo')!;
  const caB = e.store.tunnelCas.get('other')!;
  t.not(caA.fingerprint256, caB.fingerprint256, 'one CA per project');
  // A certificate naming demo's key but presented as if issued by other's CA.
  t.regex((e.guard.admit(socketFor(a.r.certificate, caB.cert), 'pool-a') as { refuse: string }).refuse, /not signed by the tunnel CA of project demo/);
  t.deepEqual(e.guard.admit(socketFor(b.r.certificate, caB.cert), 'pool-b'), { credential: b.k.rec.id });
  // The project CA never issues a certificate without a key: one would be refused.
  const rogue = await issueClientCert({ cert: caA.cert, key: caA.key }, { commonName: 'x', pool: 'pool-a' });
  t.regex((e.guard.admit(socketFor(rogue.cert, caA.cert), 'pool-a') as { refuse: string }).refuse, /without a key/);
  // A statically provisioned certificate (dev PKI CA): admitted with no credential to re-check.
  const dev = await createCA('dev CA');
  const stat = await issueClientCert(dev, { commonName: 'w', pool: 'pool-a' });
  t.deepEqual(e.guard.admit(socketFor(stat.cert, dev.cert), 'pool-a'), { credential: null });
});

test('Enroller: a Warpgate id stays with its project; renewals update the record without a new audit entry', async (t) => {
  const e = await env(t);
  const a = await enroll(e, 'demo', 'wg0004');
  const { csr } = await createCsr('x');
  await e.enroller.enroll(ACTOR, a.sa, a.k.rec, { csr, warpgate_id: 'wg0004', hostname: 'h', version: '2' });
  t.is(e.store.warpgates.get('wg0004')!.version, '2');
  t.is(e.store.audit.page(null, 100, (x) => x.action === 'warpgate.enroll').entries.length, 1);
  const other = await e.control.createServiceAccount(ACTOR, 'other', { name: 'o' });
  const ok = await e.control.createKey(ACTOR, other.id, {});
  await t.throwsAsync(e.enroller.enroll(ACTOR, other, ok.rec, { csr, warpgate_id: 'wg0004' }), { code: 'MEZU_REQUEST_INVALID' } as never);
  await t.throwsAsync(e.enroller.enroll(ACTOR, a.sa, a.k.rec, { csr: 'x', warpgate_id: 'wg0005' }), { code: 'MEZU_CSR_INVALID' } as never);
});

const node = (id: string, endpoint: string): NodeRecord => ({ node: id, endpoint, edgeId: `e-${id}`, updatedAt: 0 });

test('enrollEndpoints: configured endpoints first in their order, then the live nodes\' in node order, each once', (t) => {
  t.deepEqual(enrollEndpoints(['10.0.0.1:7443'], []), ['10.0.0.1:7443'], 'a single node: what is configured');
  t.deepEqual(enrollEndpoints(['127.0.0.1:7443'], [node('a', '127.0.0.1:7443'), node('b', '127.0.0.1:7444')]), ['127.0.0.1:7443', '127.0.0.1:7444'], 'the node\'s own endpoint once');
  t.deepEqual(enrollEndpoints(['lb.example:7443', 'Edge-A.example:7443'], [node('a', 'edge-a.example:7443'), node('c', 'edge-c.example:7443'), node('b', 'edge-b.example:7443')].sort((x, y) => x.node.localeCompare(y.node))), ['lb.example:7443', 'Edge-A.example:7443', 'edge-b.example:7443', 'edge-c.example:7443'], 'host names compared without case; the first spelling kept');
  t.deepEqual(enrollEndpoints([], [node('b', 'b:1'), node('b2', 'b:1')]), ['b:1'], 'two nodes advertising one endpoint');
});

test('Enroller: without replication the answer is the configured endpoints, whatever node records a store holds', async (t) => {
  const e = await env(t);
  await e.store.nodes.put({ node: 'x', endpoint: '10.9.9.9:7443', edgeId: 'e', updatedAt: Date.now() });
  const { r } = await enroll(e, 'demo', 'wg0006');
  t.deepEqual(r.tunnel.endpoints, ['127.0.0.1:7443']);
});
