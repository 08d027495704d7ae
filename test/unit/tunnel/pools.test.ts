/**
 * The pool registry's connection choice (src/tunnel/pools.ts): the edge sends
 * each request on the ready connection of the upstream pool with the fewest
 * outstanding streams (docs/ARCHITECTURE.md, "Tunnel"), and a replay goes to
 * another connection than the one that refused it (RFC 9113 §8.7). A wrong
 * pick is silent in every other test: requests still succeed, they just pile
 * onto one Warpgate, or land on a draining one and are refused. The replay
 * rule itself (PoolRegistry.replay) is at the end; connection.test.ts runs it
 * with the real codec.
 */
import test from 'ava';
import { PoolRegistry } from '../../../src/tunnel/pools.js';
import type { TunnelConnection, TunnelRequest } from '../../../src/tunnel/types.js';

/** A connection with nothing behind it: the registry reads only id, pool, ready and outstanding. */
function fake(id: string, outstanding: number, ready = true, pool = 'demo'): TunnelConnection & { outstanding: number; ready: boolean } {
  return {
    id,
    pool,
    extendedConnect: false,
    outstanding,
    ready,
    open() {
      throw new Error(`fake connection ${id}: open() is not part of the choice`);
    },
    flush() {},
    close() {
      throw new Error(`fake connection ${id}: close() is not part of the choice`);
    },
  };
}

function registry(...conns: TunnelConnection[]): PoolRegistry {
  const r = new PoolRegistry();
  for (const c of conns) r.add(c);
  return r;
}

test('pick: the ready connection with the fewest outstanding streams (3/1/2 and an idle one not ready → the 1)', (t) => {
  const notReady = fake('not-ready', 0, false);
  const c3 = fake('three', 3);
  const c1 = fake('one', 1);
  const c2 = fake('two', 2);
  // The not-ready one is first and has the fewest streams: a registry that ignored `ready` would pick it.
  const r = registry(notReady, c3, c1, c2);
  t.is(r.pick('demo'), c1);
  // The order of registration does not matter.
  t.is(registry(c2, c1, notReady, c3).pick('demo'), c1);
  t.is(registry(c1, c2, c3, notReady).pick('demo'), c1);
});

test('pick follows the live counts: a connection that fills up loses the choice, a draining one is skipped', (t) => {
  const a = fake('a', 0);
  const b = fake('b', 0);
  const r = registry(a, b);
  t.true(r.pick('demo') === a || r.pick('demo') === b);
  a.outstanding = 5;
  t.is(r.pick('demo'), b);
  b.outstanding = 6;
  t.is(r.pick('demo'), a);
  // GOAWAY from the Warpgate: TunnelConnection (src/tunnel/connection.ts) sets ready = false; new requests go elsewhere even though it has fewer streams.
  a.ready = false;
  t.is(r.pick('demo'), b);
});

test('pick: no connection, none ready, or another pool → null (the edge answers 502 at once)', (t) => {
  t.is(new PoolRegistry().pick('demo'), null);
  t.is(registry(fake('x', 0, false), fake('y', 2, false)).pick('demo'), null);
  t.is(registry(fake('other', 0, true, 'other-pool')).pick('demo'), null);
});

test('pools are separate: the choice is made among the request’s upstream pool only', (t) => {
  const busyDemo = fake('demo-busy', 9);
  const idleOther = fake('other-idle', 0, true, 'other');
  const r = registry(busyDemo, idleOther);
  t.is(r.pick('demo'), busyDemo);
  t.is(r.pick('other'), idleOther);
  t.is(r.count('demo'), 1);
  t.is(r.count('other'), 1);
});

test('pickOther: the best ready connection other than the one that refused (replays go elsewhere)', (t) => {
  const refused = fake('refused', 0);
  const c3 = fake('three', 3);
  const c1 = fake('one', 1);
  const notReady = fake('not-ready', 0, false);
  const r = registry(refused, c3, c1, notReady);
  t.is(r.pick('demo'), refused, 'the refusing one would win a plain pick');
  t.is(r.pickOther('demo', refused), c1);
  t.is(r.pickOther('demo', null), refused, 'no exclusion: same as pick');
  // Only the refusing connection is ready: nowhere to replay.
  t.is(registry(refused, notReady).pickOther('demo', refused), null);
});

test('remove: a closed connection is never picked again, and an emptied pool is forgotten', (t) => {
  const a = fake('a', 0);
  const b = fake('b', 4);
  const r = registry(a, b);
  r.remove(a);
  t.is(r.pick('demo'), b);
  t.is(r.count('demo'), 1);
  r.remove(b);
  t.is(r.pick('demo'), null);
  t.is(r.count('demo'), 0);
  t.deepEqual(r.all(), []);
  r.remove(b); // Removing twice is harmless (the close callback may run after an explicit remove).
  t.is(r.count('demo'), 0);
});

test('pickOther with avoidPeer: another Warpgate wins over an idler sibling of the one that was lost; siblings only as a last resort', (t) => {
  const lost = Object.assign(fake('lost', 1), { peer: 'wg-a' });
  const sibling = Object.assign(fake('sibling', 0), { peer: 'wg-a' });
  const other = Object.assign(fake('other', 5), { peer: 'wg-b' });
  const otherIdler = Object.assign(fake('other-idler', 2), { peer: 'wg-b' });
  t.is(registry(lost, sibling, other, otherIdler).pickOther('demo', lost, 'wg-a'), otherIdler);
  t.is(registry(lost, sibling, other).pickOther('demo', lost), sibling, 'without avoidPeer: fewest streams');
  t.is(registry(lost, sibling).pickOther('demo', lost, 'wg-a'), sibling, 'no other Warpgate: the sibling rather than nothing');
  t.is(registry(lost, sibling, other).pickOther('demo', lost, ''), sibling, 'an unknown peer avoids nothing');
  other.ready = false;
  t.is(registry(lost, sibling, other).pickOther('demo', lost, 'wg-a'), sibling, 'a draining other Warpgate is not picked');
});

// ── replay (PoolRegistry.replay, called from a request's onRefused / onLost) ──

/** A connection that records the requests opened on it (and takes them unless `takes` is false). */
function opener(id: string, outstanding: number, peer = '', takes = true): TunnelConnection & { opened: TunnelRequest[] } {
  const c = {
    id,
    pool: 'demo',
    outstanding,
    ready: true,
    peer,
    extendedConnect: false,
    opened: [] as TunnelRequest[],
    open(r: TunnelRequest): boolean {
      c.opened.push(r);
      r.conn = c;
      r.stream = takes ? ({} as TunnelRequest['stream']) : null;
      return takes;
    },
    flush() {},
    close() {},
  };
  return c;
}

/** A request already sent on `on` (what TunnelConnection.open leaves behind). */
function sent(method: string, on: TunnelConnection | null, hasBody = false): TunnelRequest {
  return { method, hasBody, conn: on, stream: null, replayed: false } as unknown as TunnelRequest;
}

test('replay: a refused bodiless request goes once to another connection (fewest streams), whatever its method', (t) => {
  for (const method of ['GET', 'POST', 'PATCH']) {
    const a = opener('a', 0);
    const b = opener('b', 3);
    const c = opener('c', 1);
    const r = registry(a, b, c);
    const req = sent(method, a);
    t.true(r.replay(req, false), method);
    t.true(req.replayed);
    t.is(req.conn, c);
    t.deepEqual(c.opened, [req]);
    t.is(a.opened.length + b.opened.length, 0);
    // At most once.
    t.false(r.replay(req, false), `${method}: a second replay is refused`);
    t.is(c.opened.length + a.opened.length + b.opened.length, 1);
  }
});

test('replay: never with a body; never without a connection to start from; nowhere else → false', (t) => {
  const a = opener('a', 0);
  const b = opener('b', 0);
  const r = registry(a, b);
  const body = sent('PUT', a, true);
  t.false(r.replay(body, false), 'a body already streamed is not buffered to make a replay possible');
  t.false(r.replay(body, true));
  t.false(body.replayed);
  t.false(r.replay(sent('GET', null), false));
  t.is(b.opened.length, 0);
  const alone = opener('alone', 0);
  t.false(registry(alone).replay(sent('GET', alone), false), 'not on the connection that refused it');
  t.is(alone.opened.length, 0);
});

test('replay of a lost request: idempotent methods only (RFC 9110 §9.2.2), preferring another Warpgate', (t) => {
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) {
    const lost = opener('lost', 1, 'wg-a');
    const sibling = opener('sibling', 0, 'wg-a');
    const other = opener('other', 4, 'wg-b');
    const req = sent(method, lost);
    t.true(registry(lost, sibling, other).replay(req, true), method);
    t.is(req.conn, other, `${method}: another Warpgate, not the idler sibling`);
  }
  for (const method of ['POST', 'PATCH', 'CONNECT']) {
    const lost = opener('lost', 1, 'wg-a');
    const other = opener('other', 0, 'wg-b');
    const req = sent(method, lost);
    t.false(registry(lost, other).replay(req, true), method);
    t.is(other.opened.length, 0);
  }
  // A refused one does not avoid the peer: it was not processed, the Warpgate may be fine.
  const refused = opener('refused', 1, 'wg-a');
  const sibling = opener('sibling', 0, 'wg-a');
  const other = opener('other', 4, 'wg-b');
  const req = sent('GET', refused);
  t.true(registry(refused, sibling, other).replay(req, false));
  t.is(req.conn, sibling);
});

test('replay: the other connection cannot take it either → false (the request fails), and it counts as the one replay', (t) => {
  const a = opener('a', 0);
  const full = opener('full', 0, '', false);
  const req = sent('GET', a);
  t.false(registry(a, full).replay(req, false));
  t.true(req.replayed);
  t.is(full.opened.length, 1);
});
