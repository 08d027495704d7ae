/**
 * The store on disk: file modes and owners on every open, and the private
 * keys and secrets sealed at rest under the store key (src/store/seal.ts),
 * with the migration of a store written before sealing and key rotation.
 * Real LMDB environments in temporary directories; the CLI as a real process.
 *
 * Regression: when `store/` already existed with mode 0755 (an older version,
 * a restore, an operator's mkdir), `data.mdb` and `lock.mdb` were created
 * 0644, and the store kept the assertion signing key, every project's tunnel
 * CA key, the CSRF secrets and the outbox's live links in clear: any local
 * user could read them, and a copied data.mdb alone could sign assertions.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openStore, type Store } from '../../../src/store/index.js';
import { openEnv, openDb } from '../../../native/lmdb.js';
import { generateSigningKeyPem } from '../../../wire/jwt.js';
import { createCA } from '../../../src/pki/index.js';

const CLI = join(resolve(__dirname, '../../../..'), 'dist/src/cli/main.js');

function dataDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-store-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const mode = (p: string) => statSync(p).mode & 0o777;

function storeBytes(dir: string): Buffer {
  return readFileSync(join(dir, 'store', 'data.mdb'));
}

/** Raw records as the store holds them (no opening of sealed values). */
async function raw<T>(dir: string, fn: (db: (name: string) => ReturnType<typeof openDb>) => T | Promise<T>): Promise<T> {
  const root = openEnv({ path: join(dir, 'store') });
  try {
    return await fn((name) => openDb(root, name));
  } finally {
    await root.close();
  }
}

async function withStore<T>(dir: string, fn: (s: Store) => Promise<T> | T): Promise<T> {
  const s = openStore(dir);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return String((err as { code?: unknown }).code);
  }
  return 'no error';
}

test.serial('a pre-existing 0755 store gets 0700 directories and 0600 files on every open', async (t) => {
  const dir = dataDir(t);
  mkdirSync(join(dir, 'store'), { recursive: true });
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'store'), 0o755);
  await withStore(dir, () => undefined);
  for (const [p, m] of [[dir, 0o700], [join(dir, 'store'), 0o700], [join(dir, 'store', 'data.mdb'), 0o600], [join(dir, 'store', 'lock.mdb'), 0o600]] as const) {
    t.is(mode(p).toString(8), m.toString(8), `${p} after the first open`);
  }
  // Loosened again (a restore from a backup, an operator's chmod): the next open tightens them.
  for (const p of [dir, join(dir, 'store')]) chmodSync(p, 0o755);
  for (const p of ['data.mdb', 'lock.mdb']) chmodSync(join(dir, 'store', p), 0o644);
  await withStore(dir, () => undefined);
  t.is(mode(join(dir, 'store', 'data.mdb')).toString(8), '600');
  t.is(mode(join(dir, 'store', 'lock.mdb')).toString(8), '600');
  t.is(mode(join(dir, 'store')).toString(8), '700');
  t.is(mode(dir).toString(8), '700');
});

test.serial('a data directory owned by another user is refused with MEZU_STORE_NOT_OWNED', async (t) => {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    t.log('needs root to give files to another user; skipped here');
    t.pass();
    return;
  }
  const dir = dataDir(t);
  await withStore(dir, () => undefined);
  for (const p of [join(dir, 'store', 'data.mdb'), join(dir, 'store'), join(dir, 'store.key'), dir]) {
    chownSync(p, 65534, 65534);
    const err = (() => {
      try {
        openStore(dir);
        return null;
      } catch (e) {
        return e as { code: string; message: string };
      }
    })();
    t.is(err?.code, 'MEZU_STORE_NOT_OWNED', p);
    t.true(err?.message.includes(p), err?.message);
    chownSync(p, 0, 0);
  }
  await withStore(dir, () => undefined);
});

test.serial('private keys, CA keys, CSRF secrets and outbox mail are sealed at rest; a copied data.mdb alone holds none of them', async (t) => {
  const dir = dataDir(t);
  const sk = generateSigningKeyPem();
  const ca = await createCA('Test tunnel CA');
  await withStore(dir, async (s) => {
    await s.signingKeys.add({ kid: sk.kid, privateKeyPem: sk.privateKeyPem, publicX: sk.publicX, createdAt: 1, retiredAt: null }, false);
    await s.tunnelCas.putIfAbsent({ projectId: 'demo', cert: ca.cert, key: ca.key, fingerprint256: 'fp', createdAt: 1 });
    await s.secrets.getOrCreate('csrf');
    await s.outbox.add({ id: 'm1', at: 1, projectId: 'demo', to: 'a@example.com', subject: 'Reset', text: 'http://localhost/_mezu/reset?token=LIVE-LINK-TOKEN' });
  });
  t.is(mode(join(dir, 'store.key')).toString(8), '600', 'the key file');
  const bytes = storeBytes(dir);
  const body = (pem: string) => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  t.is(bytes.indexOf(body(sk.privateKeyPem).slice(0, 40)), -1, 'signing key');
  t.is(bytes.indexOf(body(ca.key).slice(0, 40)), -1, 'tunnel CA key');
  t.is(bytes.indexOf('LIVE-LINK-TOKEN'), -1, 'outbox link');
  t.not(bytes.indexOf(body(ca.cert).slice(0, 40)), -1, 'the CA certificate (public) is kept as it is');
  await withStore(dir, async (s) => {
    t.is(s.signingKeys.active()!.privateKeyPem, sk.privateKeyPem);
    t.is(s.tunnelCas.get('demo')!.key, ca.key);
    t.false('key' in s.tunnelCas.all()[0]!, 'the edge\'s CA list never opens the private key');
    t.is(bytes.indexOf((await s.secrets.getOrCreate('csrf')).toString('base64url')), -1, 'CSRF secret');
    t.is(s.outbox.list(null)[0]!.text, 'http://localhost/_mezu/reset?token=LIVE-LINK-TOKEN');
  });
});

test.serial('a store written before sealing: every plain secret is sealed on open, nothing lost', async (t) => {
  const dir = dataDir(t);
  mkdirSync(join(dir, 'store'), { recursive: true });
  const sk = generateSigningKeyPem();
  const ca = await createCA('Old tunnel CA');
  // What an older version left: plain values in the same databases and record shapes.
  await raw(dir, async (db) => {
    await db('signingKeys').put(sk.kid, { kid: sk.kid, privateKeyPem: sk.privateKeyPem, publicX: sk.publicX, createdAt: 1, retiredAt: null });
    await db('tunnelCas').put('demo', { projectId: 'demo', cert: ca.cert, key: ca.key, fingerprint256: 'fp', createdAt: 1 });
    await db('secrets').put('csrf', 'c'.repeat(43));
    await db('outbox').put('000000000000001m1', { id: 'm1', at: 1, projectId: 'demo', to: 'a@example.com', subject: 'Reset', text: 'reset: OLD-LINK-TOKEN' });
  });
  t.false(existsSync(join(dir, 'store.key')));
  await withStore(dir, (s) => {
    t.is(s.signingKeys.active()!.privateKeyPem, sk.privateKeyPem);
    t.is(s.tunnelCas.get('demo')!.key, ca.key);
    t.is(s.outbox.list(null)[0]!.text, 'reset: OLD-LINK-TOKEN');
  });
  await withStore(dir, async (s) => t.is((await s.secrets.getOrCreate('csrf')).toString('base64url'), 'c'.repeat(43), 'the same CSRF secret: pages issued before still verify'));
  const sealed = await raw(dir, (db) => [
    (db('signingKeys').get(sk.kid) as { privateKeyPem: string }).privateKeyPem,
    (db('tunnelCas').get('demo') as { key: string }).key,
    db('secrets').get('csrf') as string,
    (db('outbox').get('000000000000001m1') as { text: string }).text,
  ]);
  for (const v of sealed) t.regex(v, /^mzs1\.[0-9a-f]{16}\./);
  // LMDB keeps replaced pages until it reuses them: the old bytes are gone only after a compaction.
  const r = spawnSync(process.execPath, [CLI, 'store', 'compact', '--data', dir, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(storeBytes(dir).indexOf('OLD-LINK-TOKEN'), -1);
  t.is(storeBytes(dir).indexOf(sk.privateKeyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '').slice(0, 40)), -1);
  t.is(mode(join(dir, 'store', 'data.mdb')).toString(8), '600');
  await withStore(dir, (s) => t.is(s.tunnelCas.get('demo')!.key, ca.key, 'nothing lost in the compaction'));
  // Refused while another process has the store open (it would go on writing to the old file).
  const other = openStore(dir);
  try {
    other.signingKeys.all();
    const busy = spawnSync(process.execPath, [CLI, 'store', 'compact', '--data', dir], { encoding: 'utf8' });
    t.is(busy.status, 1);
    t.regex(busy.stderr, /have .* open; stop the edge/);
  } finally {
    await other.close();
  }
});

test.serial('the store key: a missing file, a wrong key or an altered value refuse to open (MEZU_STORE_KEY_INVALID); MEZU_STORE_KEY works in its place', async (t) => {
  const dir = dataDir(t);
  await withStore(dir, async (s) => void (await s.secrets.getOrCreate('csrf')));
  const keyText = readFileSync(join(dir, 'store.key'), 'utf8').split('\n').find((l) => /^[A-Za-z0-9_-]{43}$/.test(l))!;
  renameSync(join(dir, 'store.key'), join(dir, 'store.key.away'));
  t.is(codeOf(() => openStore(dir)), 'MEZU_STORE_KEY_INVALID', 'missing file, sealed values');
  t.false(existsSync(join(dir, 'store.key')), 'no new key is made up for a store that has sealed values');
  const env = process.env.MEZU_STORE_KEY;
  try {
    process.env.MEZU_STORE_KEY = 'A'.repeat(43);
    t.is(codeOf(() => openStore(dir)), 'MEZU_STORE_KEY_INVALID', 'a key that sealed nothing here');
    process.env.MEZU_STORE_KEY = 'not a key';
    t.is(codeOf(() => openStore(dir)), 'MEZU_STORE_KEY_INVALID', 'not a key at all');
    process.env.MEZU_STORE_KEY = keyText;
    await withStore(dir, async (s) => t.is((await s.secrets.getOrCreate('csrf')).length, 32));
  } finally {
    if (env === undefined) delete process.env.MEZU_STORE_KEY;
    else process.env.MEZU_STORE_KEY = env;
  }
  renameSync(join(dir, 'store.key.away'), join(dir, 'store.key'));
  // One flipped byte in a sealed value: refused, never read as something else.
  await raw(dir, async (db) => {
    const v = db('secrets').get('csrf') as string;
    const i = v.length - 5;
    await db('secrets').put('csrf', v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1));
  });
  await withStore(dir, async (s) => {
    const err = await t.throwsAsync(s.secrets.getOrCreate('csrf'));
    t.is((err as unknown as { code: string }).code, 'MEZU_STORE_KEY_INVALID', 'an altered value is refused when read, never read as something else');
  });
});

test.serial('store-key rotate: a new key, every value re-sealed under it, the old key gone; a process already running keeps reading', async (t) => {
  const dir = dataDir(t);
  const sk = generateSigningKeyPem();
  const running = openStore(dir);
  t.teardown(() => running.close());
  await running.signingKeys.add({ kid: sk.kid, privateKeyPem: sk.privateKeyPem, publicX: sk.publicX, createdAt: 1, retiredAt: null }, false);
  const csrf = await running.secrets.getOrCreate('csrf');
  const before = running.sealer.currentId;
  const r = spawnSync(process.execPath, [CLI, 'store-key', 'rotate', '--data', dir, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { id: string; previous: string[]; resealed: number };
  t.not(out.id, before);
  t.deepEqual(out.previous, [before]);
  t.true(out.resealed >= 2, String(out.resealed));
  const lines = readFileSync(join(dir, 'store.key'), 'utf8').split('\n').filter((l) => /^[A-Za-z0-9_-]{43}$/.test(l));
  t.is(lines.length, 1, 'only the new key is left');
  t.is(mode(join(dir, 'store.key')).toString(8), '600');
  const rawKey = await (async () => {
    await running.close();
    const v = await raw(dir, (db) => (db('signingKeys').get(sk.kid) as { privateKeyPem: string }).privateKeyPem);
    return v;
  })();
  t.true(rawKey.startsWith(`mzs1.${out.id}.`), rawKey.slice(0, 30));
  await withStore(dir, async (s) => {
    t.is(s.signingKeys.active()!.privateKeyPem, sk.privateKeyPem);
    t.deepEqual(await s.secrets.getOrCreate('csrf'), csrf);
  });
  const audit = await withStore(dir, (s) => s.audit.page(null, 10, () => true).entries.map((a) => a.action));
  t.true(audit.includes('store_key.rotate'));
});

test.serial('a process opened before a rotation reads values sealed under the new key and seals under it', async (t) => {
  const dir = dataDir(t);
  const early = openStore(dir);
  t.teardown(() => early.close());
  await early.secrets.getOrCreate('a');
  const r = spawnSync(process.execPath, [CLI, 'store-key', 'rotate', '--data', dir, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const id = (JSON.parse(r.stdout) as { id: string }).id;
  t.is((await early.secrets.getOrCreate('a')).length, 32, 'opens a value re-sealed under the new key');
  await early.secrets.getOrCreate('b');
  t.is(early.sealer.currentId, id, 'and seals new values under it');
});

test.serial('MEZU_STORE_KEY="NEW,OLD": every value is re-sealed under NEW on open (rotation with the key in the environment)', async (t) => {
  const dir = dataDir(t);
  const env = process.env.MEZU_STORE_KEY;
  const OLD = Buffer.alloc(32, 1).toString('base64url');
  const NEW = Buffer.alloc(32, 2).toString('base64url');
  try {
    process.env.MEZU_STORE_KEY = OLD;
    await withStore(dir, async (s) => void (await s.secrets.getOrCreate('csrf')));
    t.false(existsSync(join(dir, 'store.key')), 'no key file when the key comes from the environment');
    const r = spawnSync(process.execPath, [CLI, 'store-key', 'rotate', '--data', dir], { encoding: 'utf8', env: { ...process.env } });
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /MEZU_STORE_KEY/);
    process.env.MEZU_STORE_KEY = `${NEW},${OLD}`;
    const first = await withStore(dir, async (s) => ({ id: s.sealer.currentId, v: await s.secrets.getOrCreate('csrf') }));
    process.env.MEZU_STORE_KEY = NEW;
    await withStore(dir, async (s) => {
      t.is(s.sealer.currentId, first.id);
      t.deepEqual(await s.secrets.getOrCreate('csrf'), first.v, 'readable with NEW alone');
    });
  } finally {
    if (env === undefined) delete process.env.MEZU_STORE_KEY;
    else process.env.MEZU_STORE_KEY = env;
  }
});
