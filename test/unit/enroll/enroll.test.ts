/**
 * Enrollment pieces without processes: CSR signing (only the CSR's key is
 * used, after its signature proves possession), the edge's TunnelGuard
 * (admits a certificate only for a live key, from that key's project CA, for
 * that project's pool), and the Warpgate's enrollment loop driven with a fake
 * Console and a fake clock (renewal, a refused renewal stops the tunnels,
 * failures back off).
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { createCA, createCsr, signCsr, credentialFromPeerCertificate, poolFromPeerCertificate, issueClientCert, fingerprint256 } from '../../../src/pki/index.js';
import { openStore, type Store } from '../../../src/store/index.js';
import { parseConfigYaml, compileConfig, type CompiledConfig } from '../../../src/config/index.js';
import { Control, type Actor } from '../../../src/control/index.js';
import { Enroller, TunnelGuard } from '../../../src/enroll/index.js';
import { Enrollment, EnrollError, type Enrolled, type EnrollConfig, type TunnelAgent } from '../../../warpgate/enroll.js';

const ACTOR: Actor = { type: 'cli', id: 't', name: 't', ip: '' };
const YAML = `projects:
  - { id: demo, hosts: [localhost], upstream: pool-a }
  - { id: other, hosts: [other.localhost], upstream: pool-b }
`;

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
  const guard = new TunnelGuard(e.store, () => e.cfg, () => now);
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

// ── the Warpgate's enrollment loop ──────────────────────────────────────────

class FakeClock {
  t = 1_000_000;
  timers: Array<{ at: number; fn: () => void }> = [];
  now = () => this.t;
  timersApi = { setTimeout: (fn: () => void, ms: number) => this.timers.push({ at: this.t + ms, fn }), random: () => 0.5 };
  /** Runs every timer due by `t + ms` (and lets the loop's promises settle between them). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
    await new Promise((r) => setImmediate(r));
  }
}

function response(clock: FakeClock, n: number): Enrolled {
  const now = clock.now();
  return {
    key: `key-${n}`,
    response: {
      certificate: `cert-${n}`, ca: 'ca', tunnel: { endpoints: ['127.0.0.1:7443'], servername: 'localhost' },
      project: 'demo', pool: 'demo', service_account: 'sa', key: 'k',
      expires_at: new Date(now + 60_000).toISOString(), renew_after: new Date(now + 40_000).toISOString(),
    },
  };
}

class FakeAgent implements TunnelAgent {
  started = 0;
  stopped = 0;
  creds: string[] = [];
  start(): void {
    this.started++;
  }
  async stop(): Promise<void> {
    this.stopped++;
  }
  setCredentials(c: { cert: string }): void {
    this.creds.push(c.cert);
  }
}

const CFG: EnrollConfig = { url: 'http://console', key: 'k', consoleCa: null, warpgateId: 'wg', hostname: 'h', version: '1' };

test('Enrollment loop: enroll, renew at renew_after, stop the tunnels when a renewal is refused, back off while refused', async (t) => {
  const clock = new FakeClock();
  const agents: FakeAgent[] = [];
  let calls = 0;
  let mode: 'ok' | 'refused' | 'down' = 'ok';
  let lastOk = 0;
  const logs: string[] = [];
  const e = new Enrollment(CFG, () => {
    const a = new FakeAgent();
    agents.push(a);
    return a;
  }, (m) => logs.push(m), async () => {
    calls++;
    if (mode === 'refused') throw new EnrollError('MEZU_KEY_REVOKED', 'warpgate: enrollment refused (401 MEZU_KEY_REVOKED)', true);
    if (mode === 'down') throw new EnrollError('MEZU_ENROLL_FAILED', 'warpgate: cannot reach the Console', false);
    lastOk = clock.now();
    return response(clock, calls);
  }, clock.timersApi, clock.now);
  void e.run();
  await clock.advance(0);
  t.is(agents.length, 1);
  t.is(agents[0]!.started, 1);
  await clock.advance(39_000);
  t.is(calls, 1, 'no renewal before renew_after');
  await clock.advance(1_000);
  t.is(calls, 2);
  t.deepEqual(agents[0]!.creds, ['cert-2'], 'the renewed certificate is handed to the agent');
  // The Console is down at the next renewal: the tunnels stay, renewal is retried.
  mode = 'down';
  await clock.advance(40_000);
  t.is(agents[0]!.stopped, 0);
  t.true(logs.some((l) => /certificate holds until/.test(l)));
  // Back up: the next attempt renews, and the backoff starts over.
  mode = 'ok';
  const renewed = agents[0]!.creds.length;
  await clock.advance(61_000);
  t.true(agents[0]!.creds.length > renewed);
  // The key is revoked: the next renewal is refused and the tunnels stop; enrollment keeps retrying with backoff.
  mode = 'refused';
  const before = calls;
  await clock.advance(lastOk + 40_000 - clock.now() + 1);
  t.true(calls > before);
  t.is(agents[0]!.stopped, 1);
  t.true(logs.some((l) => /stopping the tunnels \(MEZU_KEY_REVOKED\)/.test(l)));
  const afterStop = calls;
  await clock.advance(10_000);
  t.true(calls - afterStop >= 2 && calls - afterStop <= 8, `retries with growing delays (${calls - afterStop} in 10 s)`);
  // Dial failures ask for an early check (a renewal) — but only after several in a row, and not more often than every 5 s.
  mode = 'ok';
  await clock.advance(60_000);
  t.is(agents.length, 2, 'a key that works again enrolls a new agent');
  const c0 = calls;
  e.onDialFailure(1);
  await clock.advance(0);
  t.is(calls, c0);
  e.onDialFailure(3);
  await clock.advance(0);
  t.is(calls, c0 + 1);
  e.onDialFailure(4);
  await clock.advance(0);
  t.is(calls, c0 + 1, 'rate-limited');
  await e.stop();
  t.is(agents[1]!.stopped, 1);
});
