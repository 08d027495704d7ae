/**
 * The networks store (login.adaptive.new_network): a user with no recorded
 * sign-in is `first` (not new), a recorded prefix is known, the list keeps the
 * 20 most recently used and drops the least recently used; the login
 * history's failure count stops at the window and at the last success.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, NETWORKS_KEPT } from '../../../src/store/index.js';

test('first, known, new; bounded to the most recently used', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-networks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = openStore(dir);
  try {
    const n = s.networks;
    t.is(n.standing('usr_1', '203.0.113.0/24'), 'first', 'no history: a first sign-in is not from a new network');
    await n.seen('usr_1', '203.0.113.0/24', 1000);
    t.is(n.standing('usr_1', '203.0.113.0/24'), 'known');
    t.is(n.standing('usr_1', '198.51.100.0/24'), 'new');
    t.is(n.standing('usr_1', null), 'new', 'an address that is no IP is never known');
    t.is(n.standing('usr_2', '203.0.113.0/24'), 'first', 'per user');
    for (let i = 0; i < NETWORKS_KEPT; i++) await n.seen('usr_1', `10.0.${i}.0/24`, 2000 + i);
    t.is(n.list('usr_1').length, NETWORKS_KEPT);
    t.is(n.standing('usr_1', '203.0.113.0/24'), 'new', 'the least recently used is dropped past the bound');
    // Using a network again moves it to the back: it outlives those used less recently.
    await n.seen('usr_1', '10.0.0.0/24', 5000);
    await n.seen('usr_1', '192.0.2.0/24', 5001);
    t.is(n.standing('usr_1', '10.0.0.0/24'), 'known');
    t.is(n.standing('usr_1', '10.0.1.0/24'), 'new');
    const first = n.list('usr_1').find((x) => x.prefix === '10.0.0.0/24')!;
    t.deepEqual(first, { prefix: '10.0.0.0/24', firstSeenAt: 2000, lastSeenAt: 5000 });
    t.true(n.list('usr_1').every((x) => x.prefix.endsWith('/24')), 'prefixes only');
  } finally {
    await s.close();
  }
});

test('failures since: within the window and after the last success, capped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mezu-burst-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = openStore(dir);
  try {
    const h = s.loginHistory;
    const ev = (at: number, type: 'login_failure' | 'login_success' | 'mfa_failure', email = 'a@example.com') =>
      h.add({ at, type, reason: null, userId: null, directory: 'demo', email, ip: '203.0.113.7', userAgent: '' });
    for (const at of [100, 200]) await ev(at, 'login_failure');
    await ev(300, 'login_success');
    for (const at of [400, 500, 600]) await ev(at, 'login_failure');
    await ev(650, 'mfa_failure');
    await ev(700, 'login_failure', 'B@example.com');
    t.is(h.failuresSince('demo', 'a@example.com', 0, 100), 3, 'the success at 300 ended the earlier burst; mfa failures are not sign-in failures');
    t.is(h.failuresSince('demo', 'A@Example.com', 450, 100), 2, 'the window; the email in any case');
    t.is(h.failuresSince('demo', 'a@example.com', 0, 2), 2, 'stops once the threshold is reached');
    t.is(h.failuresSince('other', 'a@example.com', 0, 100), 0, 'per directory');
  } finally {
    await s.close();
  }
});
