/**
 * A replicated node's advertisement without processes: the record written at
 * start and refreshed every NODE_REFRESH_MS (so it never falls past
 * NODE_STALE_MS while the node lives), removed on drain, and the default
 * endpoint taken from the tunnel listener.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NodeAdvertiser, defaultAdvertise } from '../../../src/cluster/advertise.js';
import { openStore, NODE_REFRESH_MS, NODE_STALE_MS } from '../../../src/store/index.js';
import { ManualClock, noLog } from '../../../src/runtime/index.js';

test('defaultAdvertise: the listener\'s host and port; the host name for a wildcard listener; IPv6 in brackets', (t) => {
  t.is(defaultAdvertise('127.0.0.1', 7443), '127.0.0.1:7443');
  t.is(defaultAdvertise('edge-a.example', 7444), 'edge-a.example:7444');
  t.is(defaultAdvertise('0.0.0.0', 7443), `${os.hostname()}:7443`);
  t.is(defaultAdvertise('::1', 7443), '[::1]:7443');
});

/** LMDB commits resolve on their own time: wait (in real time, a second at most) for what the write makes true. */
async function written(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
}

test('NodeAdvertiser: written at start, refreshed before it goes stale, withdrawn on drain', async (t) => {
  t.true(NODE_REFRESH_MS * 3 <= NODE_STALE_MS, 'three refreshes fit in the staleness bound');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-advertise-'));
  const store = openStore(dir);
  t.teardown(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const clock = new ManualClock(1_700_000_000_000);
  const a = new NodeAdvertiser(store.nodes, { node: 'a', endpoint: '127.0.0.1:7443', edgeId: 'e1' }, noLog, clock);
  a.start();
  await written(() => store.nodes.get('a') !== undefined);
  t.deepEqual(store.nodes.live(clock.now()), [{ node: 'a', endpoint: '127.0.0.1:7443', edgeId: 'e1', updatedAt: clock.now() }]);
  for (let i = 0; i < 5; i++) {
    await clock.pass(NODE_REFRESH_MS);
    await written(() => store.nodes.get('a')?.updatedAt === clock.now());
    t.is(store.nodes.live(clock.now()).length, 1, `still live after ${i + 1} refreshes`);
    t.is(store.nodes.get('a')!.updatedAt, clock.now());
  }
  await a.stop();
  t.deepEqual(store.nodes.live(clock.now()), []);
  await clock.pass(NODE_REFRESH_MS * 2);
  t.is(store.nodes.get('a'), undefined, 'no refresh after the drain');
});
