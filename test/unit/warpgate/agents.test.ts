/**
 * The Warpgate's agents, one per edge endpoint, with fake agents: every
 * endpoint dialed, a renewal's credentials handed to each, a renewal's list
 * adding and draining agents, a hello's node list adding (never dropping),
 * stop reaching all, a dead endpoint not mistaken
 * for a dead key; and `--edge HOST:PORT,HOST:PORT` parsing.
 */
import test from 'ava';
import { AgentSet, parseEdgeList, type Credentials, type EndpointAgent } from '../../../warpgate/agents.js';

class FakeAgent implements EndpointAgent {
  started = 0;
  stopped = 0;
  creds: string[] = [];
  tunnels = 0;
  readonly counts = { dialsOk: 0, dialsFailed: 0, drops: 0, reconnects: 0 };
  constructor(readonly endpoint: string, c: Credentials, readonly fail: (why: string, n: number) => void, readonly hello: (endpoints: string[]) => void = () => undefined) {
    this.creds.push(c.cert);
  }
  start(): void {
    this.started++;
  }
  async stop(): Promise<void> {
    this.stopped++;
  }
  setCredentials(c: Credentials): void {
    this.creds.push(c.cert);
  }
}

function set(endpoints: string[], onDialFailure?: (why: string, n: number) => void) {
  const made: FakeAgent[] = [];
  const logs: string[] = [];
  const s = new AgentSet(endpoints, { cert: 'c1', key: 'k1', ca: 'ca' }, (e, c, fail, hello) => {
    const a = new FakeAgent(e, c, fail, hello);
    made.push(a);
    return a;
  }, (m) => logs.push(m), onDialFailure);
  const of = (e: string) => made.filter((a) => a.endpoint === e);
  return { s, made, logs, of };
}

test('AgentSet: an agent per endpoint, started together; a renewal\'s certificate reaches every one', (t) => {
  const { s, made } = set(['a:1', 'b:2']);
  t.deepEqual(made.map((a) => a.endpoint), ['a:1', 'b:2']);
  t.deepEqual(made.map((a) => a.started), [0, 0], 'nothing dials before start');
  s.start();
  s.start();
  t.deepEqual(made.map((a) => a.started), [1, 1]);
  s.setCredentials({ cert: 'c2', key: 'k2', ca: 'ca' });
  t.deepEqual(made.map((a) => a.creds), [['c1', 'c2'], ['c1', 'c2']]);
});

test('AgentSet: a renewal\'s endpoint list adds agents with the current certificate and drains one unlisted and tunnel-less at two renewals', (t) => {
  const { s, made, logs, of } = set(['a:1', 'b:2']);
  s.start();
  s.setCredentials({ cert: 'c2', key: 'k2', ca: 'ca' });
  s.setEndpoints(['b:2', 'c:3']);
  t.deepEqual(s.endpoints, ['a:1', 'b:2', 'c:3'], 'a, unlisted once (late or restarting), is kept');
  t.is(of('a:1')[0]!.stopped, 0);
  s.setEndpoints(['b:2', 'c:3']);
  t.deepEqual(s.endpoints, ['b:2', 'c:3']);
  t.is(of('a:1')[0]!.stopped, 1, 'a, unlisted and without a tunnel at two renewals, is drained');
  t.is(of('b:2').length, 1, 'b keeps its agent (and its tunnels)');
  t.is(of('b:2')[0]!.stopped, 0);
  t.deepEqual(of('c:3').map((a) => [a.started, a.creds]), [[1, ['c2']]], 'c dials with the renewed certificate');
  t.true(logs.some((l) => /no longer listed/.test(l)) && logs.some((l) => /new edge endpoint c:3/.test(l)));
  s.setEndpoints([]);
  t.deepEqual(s.endpoints, ['b:2', 'c:3'], 'an empty list is not a reason to drop every tunnel');
  t.is(made.length, 3);
});

test('AgentSet: an unlisted endpoint that holds tunnels is kept (a live node whose advertisement lapsed), and its count starts over', (t) => {
  const { s, of } = set(['a:1', 'b:2']);
  s.start();
  of('a:1')[0]!.tunnels = 2;
  s.setEndpoints(['b:2']);
  s.setEndpoints(['b:2']);
  t.deepEqual(s.endpoints, ['a:1', 'b:2'], 'serving: never drained for a missing advertisement');
  of('a:1')[0]!.tunnels = 0;
  s.setEndpoints(['b:2']);
  t.deepEqual(s.endpoints, ['a:1', 'b:2'], 'the first renewal without a tunnel only marks it');
  s.setEndpoints(['a:1', 'b:2']);
  s.setEndpoints(['b:2']);
  t.deepEqual(s.endpoints, ['a:1', 'b:2'], 'listed in between: the count starts over');
  s.setEndpoints(['b:2']);
  t.deepEqual(s.endpoints, ['b:2']);
  t.is(of('a:1')[0]!.stopped, 1);
});

test('AgentSet: stop drains every agent; nothing is added after it', async (t) => {
  const { s, made } = set(['a:1', 'b:2']);
  s.start();
  await s.stop();
  t.deepEqual(made.map((a) => a.stopped), [1, 1]);
  s.setEndpoints(['c:3']);
  t.is(made.length, 2);
});

test('AgentSet: failed dials reach enrollment\'s key check only while no endpoint holds a tunnel', (t) => {
  const seen: number[] = [];
  const { of } = set(['a:1', 'b:2'], (_why, n) => seen.push(n));
  const a = of('a:1')[0]!;
  const b = of('b:2')[0]!;
  b.tunnels = 2;
  a.fail('refused', 5);
  t.deepEqual(seen, [], 'one dead node among live ones');
  b.tunnels = 0;
  a.fail('refused', 6);
  b.fail('refused', 3);
  t.deepEqual(seen, [6, 3], 'every node refusing: maybe the key died');
});

test('AgentSet: tunnels and figures per endpoint', (t) => {
  const { s, of } = set(['a:1', 'b:2']);
  of('a:1')[0]!.tunnels = 2;
  of('b:2')[0]!.tunnels = 4;
  of('b:2')[0]!.counts.drops = 1;
  t.is(s.tunnels, 6);
  t.deepEqual(s.perEndpoint().map((e) => [e.edge, e.tunnels, e.counts.drops]), [['a:1', 2, 0], ['b:2', 4, 1]]);
});

test('parseEdgeList: HOST:PORT, comma-separated, each once in the order given; anything else is refused', (t) => {
  t.deepEqual(parseEdgeList('127.0.0.1:7443'), ['127.0.0.1:7443']);
  t.deepEqual(parseEdgeList('127.0.0.1:7443,127.0.0.1:7444'), ['127.0.0.1:7443', '127.0.0.1:7444']);
  t.deepEqual(parseEdgeList(' edge-b:7443 , [::1]:7443,edge-b:7443'), ['edge-b:7443', '[::1]:7443']);
  for (const bad of ['', 'edge', 'edge:', ':7443', 'a:1,', 'a:1,,b:2', 'a:1;b:2', '::1:7443']) {
    const r = parseEdgeList(bad);
    t.false(Array.isArray(r), `"${bad}"`);
    if (!Array.isArray(r)) t.regex(r.error, /must be HOST:PORT\[,HOST:PORT…\]/);
  }
});

test('AgentSet: the nodes an edge\'s hello lists are dialed at once (with the current certificate); none is dropped for missing; bounded; not after stop', (t) => {
  const { s, made, logs, of } = set(['a:1']);
  s.start();
  s.setCredentials({ cert: 'c2', key: 'k2', ca: 'ca' });
  of('a:1')[0]!.hello(['a:1', 'b:2', 'not an endpoint', 'c:3']);
  t.deepEqual(s.endpoints, ['a:1', 'b:2', 'c:3']);
  t.deepEqual(of('c:3').map((a) => [a.started, a.creds]), [[1, ['c2']]], 'a learned node dials with the renewed certificate');
  t.true(logs.some((l) => /told of a node at b:2/.test(l)));
  // Another node's hello, which does not list c (its view lags): nothing is dropped.
  of('b:2')[0]!.hello(['a:1', 'b:2']);
  t.deepEqual(s.endpoints, ['a:1', 'b:2', 'c:3']);
  t.is(made.filter((a) => a.stopped > 0).length, 0);
  // A listed node unlisted at one renewal, then learned again from a hello, starts its count over.
  s.setEndpoints(['a:1', 'b:2']);
  of('a:1')[0]!.hello(['c:3']);
  s.setEndpoints(['a:1', 'b:2']);
  t.deepEqual(s.endpoints, ['a:1', 'b:2', 'c:3'], 'told of again in between: kept');
  // Bounded: a hello cannot make the set grow past MAX_HELLO_ENDPOINTS agents.
  of('a:1')[0]!.hello(Array.from({ length: 200 }, (_, i) => `h${i}:1`));
  t.is(s.endpoints.length, 64);
  void s.stop();
  const n = made.length;
  of('a:1')[0]!.hello(['z:9']);
  t.is(made.length, n, 'nothing is added after stop');
});
