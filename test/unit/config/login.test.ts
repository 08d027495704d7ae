import test from 'ava';
import { compileConfig, parseConfigYaml, validateConfig } from '../../../src/config/index.js';

const base = (login: string, root = '') => `${root}
projects:
  - id: p
    hosts: [p.example]
    upstream: u
${login}`;

test('defaults: a project without login has signup disabled, OWASP hashing, https public URL from its first host', (t) => {
  const v = parseConfigYaml(base(''));
  if (!v.ok) return t.fail();
  t.is(v.config.passwords, undefined, 'absent sections stay absent in the validated config');
  const c = compileConfig(v.config, 1);
  const p = c.projects.get('p')!;
  t.is(p.login.signup, 'disabled');
  t.is(p.login.publicUrl, 'https://p.example');
  t.is(p.login.branding.name, 'p');
  t.deepEqual(p.login.throttle.account, { delayAfter: 3, lockAfter: 10, lockMs: 900_000, windowMs: 900_000 });
  t.deepEqual(c.passwords, { memoryBytes: 19 * 1024 * 1024, iterations: 2, queue: 32 });
  t.deepEqual(c.trustedProxies, []);
  t.true(Object.isFrozen(p.login));
});

test('a full login section and root sections', (t) => {
  const v = parseConfigYaml(base(`    login:
      signup: invite
      public_url: https://app.example.com/
      reset_ttl: 15m
      branding: { name: Acme, color: "#ABCDEF", logo_url: https://cdn.example/l.svg }
      throttle: { account: { delay_after: 1, lock_after: 5, lock: 10m, window: 1h }, ip: { lock_after: 50 } }`, 'passwords: { memory: 64MiB, iterations: 3, queue: 8 }\ntrusted_proxies: [10.0.0.0/8, "::1"]'));
  if (!v.ok) return t.fail(JSON.stringify(v.problems));
  const c = compileConfig(v.config, 1);
  const p = c.projects.get('p')!;
  t.is(p.login.signup, 'invite');
  t.is(p.login.publicUrl, 'https://app.example.com');
  t.is(p.login.resetTtlMs, 900_000);
  t.deepEqual(p.login.branding, { name: 'Acme', color: '#abcdef', logoUrl: 'https://cdn.example/l.svg' });
  t.deepEqual(p.login.throttle.account, { delayAfter: 1, lockAfter: 5, lockMs: 600_000, windowMs: 3_600_000 });
  t.is(p.login.throttle.ip.lockAfter, 50);
  t.is(p.login.throttle.ip.delayAfter, 20, 'defaults fill what is not written');
  t.deepEqual(c.passwords, { memoryBytes: 64 * 1024 * 1024, iterations: 3, queue: 8 });
  t.deepEqual(c.trustedProxies, ['10.0.0.0/8', '::1']);
});

test('every problem listed with its location; unknown keys rejected; weak hashing and long locks refused', (t) => {
  const v = parseConfigYaml(base(`    login:
      signup: sometimes
      public_url: https://app.example.com/path?x=1
      brandng: {}
      branding: { color: red, logo_url: "javascript:alert(1)" }
      reset_ttl: 3d
      throttle: { account: { lock: 1d, delay_after: 9, lock_after: 3 }, ipp: {} }`, 'passwords: { memory: 8MiB, iterations: 1, queue: 0, salt: x }\ntrusted_proxies: [10.0.0.0/33, nope]'));
  t.false(v.ok);
  if (v.ok) return;
  const at = v.problems.map((p) => p.at).sort();
  t.deepEqual(at, [
    'passwords.iterations',
    'passwords.memory',
    'passwords.queue',
    'passwords.salt',
    'projects[0].login.branding.color',
    'projects[0].login.branding.logo_url',
    'projects[0].login.brandng',
    'projects[0].login.public_url',
    'projects[0].login.reset_ttl',
    'projects[0].login.signup',
    'projects[0].login.throttle.account.delay_after',
    'projects[0].login.throttle.account.lock',
    'projects[0].login.throttle.ipp',
    'trusted_proxies[0]',
    'trusted_proxies[1]',
  ]);
  t.regex(v.problems.find((p) => p.at === 'passwords.memory')!.message, /OWASP/);
  t.regex(v.problems.find((p) => p.at === 'projects[0].login.brandng')!.message, /did you mean "branding"/);
  t.regex(v.problems.find((p) => p.at === 'projects[0].login.throttle.account.lock')!.message, /at most 1h/);
});

test('root-section problems are reported alongside project problems', (t) => {
  const r = validateConfig({ passwords: { memory: 1 }, projects: [{ id: 'BAD' }] });
  t.false(r.ok);
  if (r.ok) return;
  t.true(r.problems.some((p) => p.at === 'passwords.memory'));
  t.true(r.problems.some((p) => p.at === 'projects[0].id'));
});
