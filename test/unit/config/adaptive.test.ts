/**
 * `login.adaptive` risk signals: new_network and failure_burst are validated
 * (every problem at once, with its location), compiled with their defaults,
 * and off when absent.
 */
import test from 'ava';
import { compileConfig, validateConfig, type ValidationResult } from '../../../src/config/index.js';

const cfg = (adaptive: unknown) => ({ projects: [{ id: 'demo', hosts: ['demo.example'], upstream: 'demo', routes: [], login: adaptive === undefined ? {} : { adaptive } }] });
function compiled(adaptive: unknown) {
  const r = validateConfig(cfg(adaptive));
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return compileConfig(r.config, 1).projects.get('demo')!.login.adaptive;
}
function problems(r: ValidationResult): Array<{ at: string; message: string }> {
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

test('absent: every signal off', (t) => {
  t.deepEqual(compiled(undefined), { newDevice: 'none', newNetwork: 'none', failureBurst: null });
  t.deepEqual(compiled({ new_device: 'totp' }), { newDevice: 'totp', newNetwork: 'none', failureBurst: null });
  t.true(Object.isFrozen(compiled({ failure_burst: {} }).failureBurst));
});

test('new_network: totp, webauthn or none', (t) => {
  for (const v of ['totp', 'webauthn', 'none'] as const) t.is(compiled({ new_network: v }).newNetwork, v);
});

test('failure_burst: written keys kept, the rest defaulted (5 in 15m, totp)', (t) => {
  t.deepEqual(compiled({ failure_burst: {} }).failureBurst, { after: 5, withinMs: 900_000, require: 'totp' });
  t.deepEqual(compiled({ failure_burst: { after: 3, within: '1h', require: 'webauthn' } }).failureBurst, { after: 3, withinMs: 3_600_000, require: 'webauthn' });
  t.deepEqual(compiled({ failure_burst: { require: 'none' } }).failureBurst, { after: 5, withinMs: 900_000, require: 'none' });
});

test('bad values: each named with its location and what is allowed', (t) => {
  const bad = problems(validateConfig(cfg({ new_network: 'sms', failure_burst: { after: 1, within: '2d', require: 'email', when: 'always' } })));
  const at = (k: string) => bad.find((x) => x.at === `projects[0].login.adaptive.${k}`)?.message ?? '';
  t.deepEqual(bad.map((x) => x.at).sort(), [
    'projects[0].login.adaptive.failure_burst.after',
    'projects[0].login.adaptive.failure_burst.require',
    'projects[0].login.adaptive.failure_burst.when',
    'projects[0].login.adaptive.failure_burst.within',
    'projects[0].login.adaptive.new_network',
  ]);
  t.regex(at('new_network'), /must be one of totp, webauthn, none/);
  t.regex(at('failure_burst.after'), /from 2 to 1000/);
  t.regex(at('failure_burst.within'), /from 1m to 24h.*got 2d/);
  t.regex(at('failure_burst.require'), /must be one of totp, webauthn, none/);
  const shapes = problems(validateConfig(cfg({ failure_burst: 5, new_network: ['totp'] })));
  t.deepEqual(shapes.map((x) => x.at).sort(), ['projects[0].login.adaptive.failure_burst', 'projects[0].login.adaptive.new_network']);
  t.regex(shapes.find((x) => x.at.endsWith('failure_burst'))!.message, /must be a mapping such as \{ after: 5, within: 15m, require: totp \}/);
  t.is(problems(validateConfig(cfg({ failure_burst: { within: '30s' } })))[0]!.at, 'projects[0].login.adaptive.failure_burst.within');
  t.is(problems(validateConfig(cfg('totp')))[0]!.at, 'projects[0].login.adaptive');
});
