/**
 * The client network of a sign-in (login.adaptive.new_network): IPv4 by /24,
 * IPv6 by /48, IPv4-mapped IPv6 as the IPv4 address it carries (a dual-stack
 * socket reports IPv4 peers that way: they must not read as a new network).
 */
import test from 'ava';
import { networkOf } from '../../../src/login/network.js';

test('IPv4: the /24', (t) => {
  t.is(networkOf('203.0.113.7'), '203.0.113.0/24');
  t.is(networkOf('203.0.113.255'), '203.0.113.0/24');
  t.is(networkOf(' 10.1.2.3 '), '10.1.2.0/24');
  t.not(networkOf('203.0.114.7'), networkOf('203.0.113.7'), 'the next /24 is another network');
});

test('IPv6: the /48, written compressed in lower case whatever the spelling', (t) => {
  t.is(networkOf('2001:db8:1:2::5'), '2001:db8:1::/48');
  t.is(networkOf('2001:0DB8:0001:ffff:0:0:0:1'), '2001:db8:1::/48');
  t.is(networkOf('2001:db8:1:2::5'), networkOf('2001:db8:1:ffff:aaaa::9'), 'same /48');
  t.not(networkOf('2001:db8:2::1'), networkOf('2001:db8:1::1'), 'the next /48 is another network');
  t.is(networkOf('2001:db8:abcd:12::1'), '2001:db8:abcd::/48');
  t.is(networkOf('::1'), '::/48');
  t.is(networkOf('fe80::1%eth0'), 'fe80::/48', 'a zone id is not part of the address');
  t.is(networkOf('1:2:3:4:5:6:7:8'), '1:2:3::/48');
  t.is(networkOf('64:ff9b::192.0.2.33'), '64:ff9b::/48', 'an embedded IPv4 tail that is not IPv4-mapped stays IPv6');
});

test('IPv4-mapped IPv6 is the IPv4 address, dotted or in hex', (t) => {
  t.is(networkOf('::ffff:203.0.113.7'), '203.0.113.0/24');
  t.is(networkOf('::FFFF:203.0.113.9'), '203.0.113.0/24');
  t.is(networkOf('::ffff:cb00:7107'), '203.0.113.0/24');
  t.is(networkOf('0:0:0:0:0:ffff:127.0.0.1'), '127.0.0.0/24');
});

test('not an address: null (nothing recorded; login.ts reads it as a new network)', (t) => {
  for (const bad of ['', 'localhost', '203.0.113', '203.0.113.7/24', '2001:db8::g', '::ffff:1.2.3.400', '1.2.3.4:80']) t.is(networkOf(bad), null, bad);
});
