import test from 'ava';
import { clientIp, canonicalIp } from '../../../src/config/index.js';
import { compileConfig } from '../../../src/config/index.js';

const none = compileConfig({ projects: [] }, 1);
const trusted = compileConfig({ projects: [], trustedProxies: ['10.0.0.0/8', '::1'] }, 1);

test('without trusted proxies the socket address is the client, whatever X-Forwarded-For says', (t) => {
  t.is(clientIp(none, '203.0.113.7', '1.2.3.4'), '203.0.113.7');
  t.is(clientIp(none, '::ffff:203.0.113.7', ''), '203.0.113.7');
});

test('through a trusted proxy: the right-most untrusted hop', (t) => {
  t.is(clientIp(trusted, '10.1.2.3', '198.51.100.1'), '198.51.100.1');
  t.is(clientIp(trusted, '10.1.2.3', '6.6.6.6, 198.51.100.1, 10.9.9.9'), '198.51.100.1', 'the client-written left part is not believed');
  t.is(clientIp(trusted, '::1', '198.51.100.2'), '198.51.100.2');
  t.is(clientIp(trusted, '203.0.113.9', '198.51.100.1'), '203.0.113.9', 'an untrusted peer cannot claim another address');
  t.is(clientIp(trusted, '10.1.2.3', 'garbage'), '10.1.2.3');
  t.is(clientIp(trusted, '10.1.2.3', ''), '10.1.2.3');
});

test('canonicalIp', (t) => {
  t.is(canonicalIp('::FFFF:127.0.0.1'), '127.0.0.1');
  t.is(canonicalIp('2001:DB8::1'), '2001:db8::1');
});
