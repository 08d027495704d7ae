import test from 'ava';
import { compileConfig, parseConfigYaml } from '../../../src/config/index.js';
import { renderPage, cspOf, cspWithScript, esc, SCRIPT_PATH } from '../../../src/login/pages.js';
import { createHash } from 'node:crypto';

const v = parseConfigYaml(`
projects:
  - id: p
    hosts: [p.example]
    upstream: u
    login: { branding: { name: "A <b>&", color: "#AABBCC", logo_url: "https://cdn.example/logo.png" } }
`);
if (!v.ok) throw new Error(JSON.stringify(v.problems));
const project = compileConfig(v.config, 1).projects.get('p')!;

test('everything from input is escaped', (t) => {
  t.is(esc(`<a href="x">'&`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;');
  const html = renderPage(project, { title: 'T', error: '<script>', form: { action: '/_mezu/login', submit: 'Go', csrf: 'c"', fields: [{ name: 'email', label: 'Email', type: 'email', value: '"><script>alert(1)</script>' }] } });
  t.false(html.includes('<script'));
  t.true(html.includes('A &lt;b&gt;&amp;'));
});

test('accessible form: labels, error tied to the field, alert region, autofocus on the field in error', (t) => {
  const html = renderPage(project, {
    title: 'Sign in',
    error: 'Bad',
    form: { action: '/x', submit: 'Go', csrf: 'c', fields: [{ name: 'email', label: 'Email', type: 'email', value: 'a@b.c' }, { name: 'password', label: 'Password', type: 'password', error: 'Too short', hint: 'Hint' }] },
  });
  t.regex(html, /<html lang="en">/);
  t.regex(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  t.regex(html, /role="alert" id="form-error"/);
  t.regex(html, /<label for="f-email">Email<\/label>/);
  t.regex(html, /<input id="f-password" name="password" type="password"[^>]* aria-invalid="true" aria-describedby="f-password-hint f-password-error" autofocus>/);
  t.regex(html, /<p class="field-error" id="f-password-error">Too short<\/p>/);
  t.notRegex(html, /type="password" value=/, 'passwords are never echoed back');
});

test('CSP: the inline stylesheet by hash, images only from the logo origin, forms only to self', (t) => {
  const csp = cspOf(project);
  const html = renderPage(project, { title: 'x' });
  const css = /<style>([^<]*)<\/style>/.exec(html)![1]!;
  t.true(csp.includes(`'sha256-${createHash('sha256').update(css).digest('base64')}'`));
  t.regex(csp, /img-src https:\/\/cdn\.example;/);
  t.regex(csp, /default-src 'none'/);
  t.regex(css, /--brand:#aabbcc/);
});

test('a passkey form: options as an escaped attribute, the one script with the nonce, script-src by that nonce only', (t) => {
  const options = { challenge: 'abc', rp: { id: 'p.example', name: '"><script>alert(1)</script>' } };
  const spec = { title: 'Security', passkeys: [{ id: 'passkey-add', action: '/_mezu/account/passkey', csrf: 'tok', ceremony: 'register' as const, options, submit: 'Add a passkey', fields: [{ name: 'password', label: 'Password', type: 'password' as const }] }] };
  const html = renderPage(project, spec, 'Tm9uY2U=');
  t.is([...html.matchAll(/<script/g)].length, 1, 'only the script tag: the options cannot open another');
  t.regex(html, new RegExp(`<script src="${SCRIPT_PATH.replace(/\//g, '\\/')}" nonce="Tm9uY2U="></script></body>`));
  const attr = /data-options="([^"]*)"/.exec(html)![1]!;
  t.deepEqual(JSON.parse(attr.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&')), options);
  t.regex(html, /<input type="hidden" name="credential" value="">/);
  t.regex(html, /data-webauthn="register"/);
  t.is(cspWithScript(project, 'Tm9uY2U='), `${cspOf(project)}; script-src 'nonce-Tm9uY2U='`);
  // Without a nonce (or without a passkey form) there is no script at all.
  t.false(renderPage(project, spec).includes('<script'));
  t.false(renderPage(project, { title: 'x' }, 'Tm9uY2U=').includes('<script'));
});
