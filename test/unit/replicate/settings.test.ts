/**
 * Where a node's replication settings come from: `--nats` parsed into
 * server URLs (a bad one is a one-line reason), DATA/replication.json read
 * by every process of the node, `MEZU_NATS` (a CLI command's `--nats`)
 * overriding it, and no settings at all meaning the embedded single node.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_STALENESS_MS, ENV_NATS, ENV_NODE, REPLICATION_FILE, makeSettings, parseServers, readSettings, writeSettings } from '../../../src/replicate/index.js';

test('parseServers: a list of nats:// or tls:// URLs with ports; anything else is a one-line reason', (t) => {
  t.deepEqual(parseServers('nats://127.0.0.1:4222, nats://127.0.0.1:4223'), ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223']);
  t.deepEqual(parseServers('tls://user:pw@nats.example:4222'), ['tls://user:pw@nats.example:4222']);
  t.regex(parseServers('') as string, /at least one/);
  t.regex(parseServers('127.0.0.1:4222') as string, /nats:\/\/|not a URL/);
  t.regex(parseServers('http://127.0.0.1:4222') as string, /must start with nats:\/\/ or tls:\/\//);
  t.regex(parseServers('nats://127.0.0.1') as string, /needs a port/);
});

test('makeSettings: three stream replicas at most, one per server below three; 60 s staleness by default', (t) => {
  t.is(makeSettings(['nats://a:1'], 'n', undefined).replicas, 1);
  t.is(makeSettings(['nats://a:1', 'nats://b:1', 'nats://c:1', 'nats://d:1'], 'n', undefined).replicas, 3);
  t.is(makeSettings(['nats://a:1'], 'n', undefined).stalenessMs, DEFAULT_STALENESS_MS);
});

test('readSettings: none → the embedded node; the file edge --nats writes; MEZU_NATS overrides it, keeping the node name', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-replica-settings-'));
  const env = { nats: process.env[ENV_NATS], node: process.env[ENV_NODE] };
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
    if (env.nats === undefined) delete process.env[ENV_NATS];
    else process.env[ENV_NATS] = env.nats;
    if (env.node === undefined) delete process.env[ENV_NODE];
    else process.env[ENV_NODE] = env.node;
  });
  delete process.env[ENV_NATS];
  delete process.env[ENV_NODE];
  t.is(readSettings(dir), null);
  writeSettings(dir, makeSettings(['nats://127.0.0.1:4222'], 'a', 5_000));
  t.like(readSettings(dir), { servers: ['nats://127.0.0.1:4222'], node: 'a', stalenessMs: 5_000 });
  process.env[ENV_NATS] = 'nats://127.0.0.1:5222';
  t.like(readSettings(dir), { servers: ['nats://127.0.0.1:5222'], node: 'a' });
  process.env[ENV_NATS] = 'bogus';
  t.is(t.throws(() => readSettings(dir))?.message.startsWith('replica: '), true);
  delete process.env[ENV_NATS];
  writeFileSync(join(dir, REPLICATION_FILE), '{not json');
  t.is((t.throws(() => readSettings(dir)) as { code?: string }).code, 'MEZU_REPLICA_UNAVAILABLE');
});
