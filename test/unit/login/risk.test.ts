/** The demand of risk signals (login.adaptive): only signals turned on count; the passkey wins over a code. */
import test from 'ava';
import { decideRisk } from '../../../src/login/risk.js';

const off = { newDevice: 'none', newNetwork: 'none', failureBurst: null } as const;
const all = { newDevice: true, newNetwork: true, failureBurst: true };

test('nothing turned on: nothing demanded, whatever fired', (t) => {
  t.deepEqual(decideRisk(off, all), { signals: [], factor: null, because: [] });
  t.deepEqual(decideRisk({ ...off, failureBurst: { after: 5, withinMs: 900_000, require: 'none' } }, all), { signals: [], factor: null, because: [] });
});

test('one signal: its factor, and it is the reason', (t) => {
  t.deepEqual(decideRisk({ ...off, newNetwork: 'totp' }, all), { signals: ['new_network'], factor: 'totp', because: ['new_network'] });
  t.deepEqual(decideRisk({ ...off, newNetwork: 'totp' }, { ...all, newNetwork: false }), { signals: [], factor: null, because: [] });
  t.deepEqual(decideRisk({ ...off, failureBurst: { after: 5, withinMs: 900_000, require: 'webauthn' } }, all), { signals: ['failure_burst'], factor: 'webauthn', because: ['failure_burst'] });
});

test('signals that disagree: the passkey is demanded; every signal is recorded', (t) => {
  const a = { newDevice: 'totp', newNetwork: 'webauthn', failureBurst: { after: 5, withinMs: 900_000, require: 'totp' } } as const;
  t.deepEqual(decideRisk(a, all), { signals: ['new_device', 'new_network', 'failure_burst'], factor: 'webauthn', because: ['new_network'] });
  t.deepEqual(decideRisk(a, { ...all, newNetwork: false }), { signals: ['new_device', 'failure_burst'], factor: 'totp', because: ['new_device', 'failure_burst'] });
});
