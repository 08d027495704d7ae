import test from 'ava';
import { compileConfig, parseConfigYaml } from '../../../src/config/index.js';
import { renderPage, cspOf, esc } from '../../../src/login/pages.js';
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
