import test from 'ava';
import { randomBytes } from 'node:crypto';
import { Csrf, sameOrigin } from '../../../src/login/index.js';

const csrf = new Csrf(randomBytes(32));

test('a token checks only against the cookie it was made for, and only under the same secret', (t) => {
  const a = Csrf.newCookieValue();
  const b = Csrf.newCookieValue();
  t.true(Csrf.isCookieSyntax(a));
  t.true(csrf.check(a, csrf.tokenFor(a)));
  t.false(csrf.check(b, csrf.tokenFor(a)));
  t.false(new Csrf(randomBytes(32)).check(a, csrf.tokenFor(a)), 'another edge secret');
  t.false(csrf.check(a, ''));
  t.false(csrf.check('', csrf.tokenFor('')));
  t.false(csrf.check('short', csrf.tokenFor('short')), 'cookie values we did not issue are refused');
  t.false(csrf.check(a, csrf.tokenFor(a).slice(0, -1) + 'A') && csrf.tokenFor(a).slice(-1) !== 'A');
});

test('sameOrigin: Sec-Fetch-Site and Origin', (t) => {
  const allowed = ['http://localhost:8080', 'https://app.example.com'];
  t.true(sameOrigin('', '', allowed), 'no headers (old browser, curl): the token decides');
  t.true(sameOrigin('http://localhost:8080', 'same-origin', allowed));
  t.true(sameOrigin('HTTPS://APP.EXAMPLE.COM', '', allowed));
  t.true(sameOrigin('', 'none', allowed));
  t.false(sameOrigin('', 'cross-site', allowed));
  t.false(sameOrigin('', 'same-site', allowed), 'a sibling subdomain is another site for our forms');
  t.false(sameOrigin('https://evil.example', '', allowed));
  t.false(sameOrigin('null', '', allowed), 'opaque origins (sandboxed frames, data: URLs) without fetch metadata');
  t.true(sameOrigin('null', 'same-origin', allowed), 'a form on a no-referrer page posts Origin: null; fetch metadata vouches for it');
  t.false(sameOrigin('null', 'cross-site', allowed));
  t.false(sameOrigin('https://evil.example', 'same-origin', allowed), 'a contradiction is refused');
});
