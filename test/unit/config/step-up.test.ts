/**
 * `step_up` on route rules: validation (known factors: totp and webauthn,
 * max_age bounds, users only, required routes only), the
 * compiled rule and its RFC 9470 challenge, and routes without one.
 */
import test from 'ava';
import { compileConfig, stepUpChallenge, validateConfig, type ValidationResult } from '../../../src/config/index.js';

function withRoutes(...routes: unknown[]): unknown {
  return { projects: [{ id: 'demo', hosts: ['demo.example'], upstream: 'demo', routes }] };
}
function problems(r: ValidationResult): Array<{ at: string; message: string }> {
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

test('step_up: { max_age, factors: [totp] } is accepted and compiled; other routes have none', (t) => {
  const r = validateConfig(withRoutes({ path: '/admin/*', step_up: { max_age: '10m', factors: ['totp'] } }, { path: '/api/*' }));
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  t.deepEqual(r.config.projects[0]!.routes[0]!.stepUp, { maxAgeMs: 600_000, factors: ['totp'] });
  const p = compileConfig(r.config, 1).projects.get('demo')!;
  const admin = p.match('GET', '/admin/users');
  t.is(admin.stepUp!.maxAgeMs, 600_000);
  t.true(admin.stepUp!.totp);
  t.is(admin.stepUp!.acr, 'mfa');
  t.is(p.match('GET', '/api/x').stepUp, null);
  t.is(p.match('GET', '/other').stepUp, null, 'the project default has none');
  // Without max_age: once in the session is enough.
  const r2 = validateConfig(withRoutes({ path: '/admin/*', step_up: { factors: ['totp'] } }));
  if (!r2.ok) throw new Error(JSON.stringify(r2.problems));
  t.is(compileConfig(r2.config, 1).projects.get('demo')!.match('GET', '/admin').stepUp!.maxAgeMs, Infinity);
});

test('webauthn (passkeys) and totp, alone or together: compiled into one test per factor; unknown names refused', (t) => {
  const r = validateConfig(withRoutes({ path: '/admin/*', step_up: { max_age: '10m', factors: ['webauthn', 'totp'] } }, { path: '/keys/*', step_up: { max_age: '5m', factors: ['webauthn'] } }));
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const p = compileConfig(r.config, 1).projects.get('demo')!;
  const both = p.match('GET', '/admin/x').stepUp!;
  t.true(both.webauthn);
  t.true(both.totp);
  t.deepEqual([...both.factors], ['webauthn', 'totp']);
  const pk = p.match('GET', '/keys/x').stepUp!;
  t.true(pk.webauthn);
  t.false(pk.totp);
  t.is(pk.challenge, stepUpChallenge(300_000, 'mfa'));
  const unknown = problems(validateConfig(withRoutes({ path: '/admin/*', step_up: { factors: ['sms'] } })));
  t.regex(unknown[0]!.message, /must be one of totp, webauthn; got "sms"/);
});

test('step_up problems: no factors, empty, duplicates, bad max_age, unknown keys, wrong routes', (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{ path: '/a/*', step_up: { max_age: '10m' } }, 'projects[0].routes[0].step_up.factors', /is required/],
    [{ path: '/a/*', step_up: { factors: [] } }, 'projects[0].routes[0].step_up.factors', /at least one factor/],
    [{ path: '/a/*', step_up: { factors: ['totp', 'totp'] } }, 'projects[0].routes[0].step_up.factors[1]', /listed twice/],
    [{ path: '/a/*', step_up: { max_age: 'soon', factors: ['totp'] } }, 'projects[0].routes[0].step_up.max_age', /.+/],
    [{ path: '/a/*', step_up: { max_age: '60d', factors: ['totp'] } }, 'projects[0].routes[0].step_up.max_age', /at most 30d/],
    [{ path: '/a/*', step_up: { factors: ['totp'], device: 'trusted' } }, 'projects[0].routes[0].step_up.device', /must be known/],
    [{ path: '/a/*', step_up: { max_age: '10m', color: 'red' } }, 'projects[0].routes[0].step_up.factors', /is required \(or device: known\)/],
    [{ path: '/a/*', step_up: 'totp' }, 'projects[0].routes[0].step_up', /must be a mapping/],
    [{ path: '/a/*', auth: 'public', step_up: { factors: ['totp'] } }, 'projects[0].routes[0].step_up', /would be ignored on a "public" route/],
    [{ path: '/a/*', principals: ['user', 'service_account'], step_up: { factors: ['totp'] } }, 'projects[0].routes[0].step_up', /users only/],
  ];
  for (const [route, at, message] of cases) {
    const p = problems(validateConfig(withRoutes(route)));
    const hit = p.find((x) => x.at === at);
    t.truthy(hit, `${JSON.stringify(route)} → a problem at ${at}; got ${JSON.stringify(p)}`);
    if (hit !== undefined) t.regex(hit.message, message);
  }
});

test('the RFC 9470 §3 challenge: Bearer, insufficient_user_authentication, max_age in seconds, acr_values', (t) => {
  t.is(
    stepUpChallenge(600_000, 'mfa'),
    'Bearer realm="mezusphere", error="insufficient_user_authentication", error_description="A second factor used more recently is required", max_age="600", acr_values="mfa"',
  );
  t.false(stepUpChallenge(null, 'mfa').includes('max_age'));
  const r = validateConfig(withRoutes({ path: '/admin/*', step_up: { max_age: '10m', factors: ['totp'] } }));
  if (!r.ok) throw new Error('invalid');
  t.is(compileConfig(r.config, 1).projects.get('demo')!.match('GET', '/admin').stepUp!.challenge, stepUpChallenge(600_000, 'mfa'));
});

test('device: known, alone or with factors; the challenge of a device-only rule names no acr; bad values refused', (t) => {
  const r = validateConfig(withRoutes({ path: '/a/*', step_up: { device: 'known' } }, { path: '/b/*', step_up: { max_age: '10m', factors: ['totp'], device: 'known' } }));
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const p = compileConfig(r.config, 1).projects.get('demo')!;
  const a = p.match('GET', '/a/x').stepUp!;
  t.true(a.device);
  t.false(a.totp || a.webauthn);
  t.is(a.challenge, 'Bearer realm="mezusphere", error="insufficient_user_authentication", error_description="A second factor used more recently is required"');
  const b = p.match('GET', '/b/x').stepUp!;
  t.true(b.device && b.totp);
  t.regex(b.challenge, /acr_values="mfa"$/);
  const bad = problems(validateConfig(withRoutes({ path: '/a/*', step_up: { device: 'trusted' } })));
  t.is(bad[0]!.at, 'projects[0].routes[0].step_up.device');
  t.regex(bad[0]!.message, /must be known/);
});

test('login.adaptive.new_device: totp, webauthn or none; anything else refused; absent: none', (t) => {
  const cfg = (adaptive: unknown) => ({ projects: [{ id: 'demo', hosts: ['demo.example'], upstream: 'demo', routes: [], login: { adaptive } }] });
  for (const v of ['totp', 'webauthn', 'none'] as const) {
    const r = validateConfig(cfg({ new_device: v }));
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    t.is(compileConfig(r.config, 1).projects.get('demo')!.login.adaptive.newDevice, v);
  }
  const none = validateConfig(withRoutes());
  if (!none.ok) throw new Error('valid');
  t.is(compileConfig(none.config, 1).projects.get('demo')!.login.adaptive.newDevice, 'none');
  const bad = problems(validateConfig(cfg({ new_device: 'sms', new_place: 'totp' })));
  t.deepEqual(bad.map((x) => x.at).sort(), ['projects[0].login.adaptive.new_device', 'projects[0].login.adaptive.new_place']);
  t.regex(bad.find((x) => x.at.endsWith('new_device'))!.message, /must be one of totp, webauthn, none/);
});
