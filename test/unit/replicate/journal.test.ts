/**
 * The journal over an in-memory stream (memory-stream.ts): the store
 * contract passes on a replicated store, and two nodes (two data
 * directories, one stream) converge, with concurrent read-modify-writes
 * decided by the stream's expected sequence.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openStore, type SessionRecord, type Store } from '../../../src/store/index.js';
import { makeSettings } from '../../../src/replicate/index.js';
import { ManualClock } from '../../../src/runtime/index.js';
import { storeContract, T0, user } from '../store/contract.js';
import { MemoryStream } from './memory-stream.js';

const settings = (node: string) => makeSettings(['nats://127.0.0.1:1'], node, 60_000);

function openNode(dir: string, node: string, stream: MemoryStream, clock: ManualClock): Store {
  const s = openStore(dir, clock, settings(node));
  s.replica!.journal.attach(stream.link());
  return s;
}

storeContract('replicated (in-memory stream)', async (t, clock) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-replica-contract-'));
  const stream = new MemoryStream();
  const opened: Store[] = [];
  const open = () => {
    const s = openNode(dir, 'a', stream, clock);
    opened.push(s);
    return s;
  };
  t.teardown(async () => {
    for (const s of opened.reverse()) await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { store: open(), peer: open };
});

function session(id: string, userId: string, over: Partial<SessionRecord> = {}): SessionRecord {
  return { id, principalType: 'user', userId, projectId: 'demo', createdAt: T0, lastSeenAt: T0, authTime: T0, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null, ...over };
}

async function twoNodes(t: { teardown(fn: () => Promise<void>): void }) {
  const stream = new MemoryStream();
  const clock = new ManualClock(T0);
  const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-replica-nodes-')));
  const a = openNode(dirs[0]!, 'a', stream, clock);
  const b = openNode(dirs[1]!, 'b', stream, clock);
  t.teardown(async () => {
    await a.close();
    await b.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  return { stream, a, b };
}

test('a session created on A is on B once B applies the stream, with the same change-feed numbering', async (t) => {
  const { stream, a, b } = await twoNodes(t);
  await a.sessions.create('h1', session('s1', 'u1'));
  t.is(stream.last, 1);
  t.is(b.sessions.get('h1'), undefined);
  await b.replica!.catchUp();
  t.is(b.sessions.get('h1')?.id, 's1');
  t.is(b.replica!.applied(), 1);
  t.true(await b.sessions.revoke('h1'));
  await a.replica!.catchUp();
  t.is(a.sessions.get('h1'), undefined);
  t.is(a.changes.last(), b.changes.last());
  t.deepEqual([...(a.changes.since(0).changed as Set<string>)], [...(b.changes.since(0).changed as Set<string>)]);
});

test('a refresh computed on a stale copy never resurrects a session revoked on another node (expected sequence)', async (t) => {
  const { stream, a, b } = await twoNodes(t);
  await a.sessions.create('h1', session('s1', 'u1'));
  await b.replica!.catchUp();
  // B revokes; A's refresh was computed against the state before it: JetStream refuses A's append,
  // A applies the revocation and runs the refresh again, which now finds nothing to refresh.
  await b.sessions.revoke('h1');
  t.false(await a.sessions.refresh('h1', { lastSeenAt: T0 + 1 }));
  t.is(a.sessions.get('h1'), undefined);
  t.is(stream.last, 2);
  await b.replica!.catchUp();
  t.is(b.sessions.get('h1'), undefined);
});

test('two nodes racing on one compare-and-swap: exactly one wins, both end with the same state', async (t) => {
  const { a, b } = await twoNodes(t);
  await a.users.create(user('u1'));
  await b.replica!.catchUp();
  const wasActive = (u: { status: string }) => u.status === 'active';
  const [ra, rb] = await Promise.allSettled([a.users.update('u1', { status: 'suspended' }, wasActive), b.users.update('u1', { status: 'deactivated' }, wasActive)]);
  t.is([ra, rb].filter((r) => r.status === 'fulfilled').length, 1);
  const lost = [ra, rb].find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.is((lost.reason as { code?: string }).code, 'MEZU_STATUS_TRANSITION');
  await a.replica!.catchUp();
  await b.replica!.catchUp();
  t.is(a.users.get('u1')?.status, b.users.get('u1')?.status);
  t.is(a.users.get('u1')?.version, 2);
});

test('an append whose acknowledgement was lost is retried with the same id: stored once', async (t) => {
  const { stream, a } = await twoNodes(t);
  const link = stream.link();
  let first = true;
  a.replica!.journal.attach({
    append: async (data, id, expect) => {
      const seq = await link.append(data, id, expect);
      if (first) {
        first = false;
        // The entry is in the stream, but the writer never hears so: it sends the same id again.
        return link.append(data, id, expect);
      }
      return seq;
    },
    readFrom: link.readFrom,
  });
  await a.sessions.create('h1', session('s1', 'u1'));
  t.is(stream.last, 1);
  t.is(a.replica!.applied(), 1);
});

test('cut off: a write is refused with MEZU_REPLICA_OFFLINE and nothing changes; local-only databases never reach the stream', async (t) => {
  const { stream, a } = await twoNodes(t);
  stream.offline = true;
  const err = await t.throwsAsync(a.sessions.create('h1', session('s1', 'u1')));
  t.is((err as { code?: string }).code, 'MEZU_REPLICA_OFFLINE');
  t.is(a.sessions.get('h1'), undefined);
  stream.offline = false;
  await a.throttle.update('k', () => ({ count: 1, windowStart: T0, lockedUntil: 0 }) as never);
  t.is(stream.last, 0);
  t.truthy(a.throttle.get('k'));
});

test('a callback run again after a lost race reports what its last run saw, not its first (users.update; FactorStore.useRecovery keeps the same rule)', async (t) => {
  const { stream, a, b } = await twoNodes(t);
  await a.users.create(user('u1'));
  await a.users.update('u1', { status: 'suspended' });
  await b.replica!.catchUp();
  // Another node's write lands just before A's append: A's append is refused, A applies it and runs its
  // callback again; the refusal it reports is that of the run that counted.
  stream.beforeAppend = () => void stream.appendNow(stream.entries[stream.entries.length - 1]!.data, 'b-first', stream.last);
  const err = await t.throwsAsync(a.users.update('u1', { status: 'deactivated' }, (u) => u.status === 'active'));
  t.is((err as { code?: string }).code, 'MEZU_STATUS_TRANSITION');
  t.is(a.users.get('u1')?.status, 'suspended');
});
