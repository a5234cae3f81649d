// The IP parsers against Go's netip.ParseAddr, the parser istiod reads addresses and policies' ipBlocks with (cases
// after net/netip's netip_test.go): what it accepts, what it refuses, and the bytes it produces.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToIp, ipToBytes, parseCidr, parseIpv4, parseIpv6Into } from '../../src/common/ip.js';

describe('ipToBytes', () => {
  const valid: readonly (readonly [string, string])[] = [
    ['0.0.0.0', '0.0.0.0'],
    ['192.168.140.255', '192.168.140.255'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['fd7a:115c:a1e0:ab12:4843:cd96:626b:430b', 'fd7a:115c:a1e0:ab12:4843:cd96:626b:430b'],
    ['FD7A:115C::626B:430B', 'fd7a:115c::626b:430b'],
    ['fd7a:115c::0:0:626b:430b', 'fd7a:115c::626b:430b'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['fe80::1cc0:3e8c:119f:c2e1%ens18', 'fe80::1cc0:3e8c:119f:c2e1'], // the zone is dropped
    ['::ffff:192.168.140.255', '::ffff:c0a8:8cff'], // IPv4-mapped stays 16 bytes
    ['::ffff:192.168.140.255%ens18', '::ffff:c0a8:8cff'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['::1.2.3.4', '::102:304'],
    ['1::1.2.3.4', '1::102:304'],
  ];
  for (const [text, canonical] of valid) {
    it(`reads ${text} as ${canonical}`, () => {
      const bytes = ipToBytes(text);
      assert.ok(bytes !== undefined);
      assert.equal(bytes.length, canonical.includes(':') ? 16 : 4);
      assert.equal(bytesToIp(bytes), canonical);
    });
  }

  const invalid = [
    '',
    'bad',
    '1234',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '010.0.0.1', // leading zero
    '1.2.3.00',
    '1..2.3',
    '1.2.3.4%eth0', // zones are IPv6 only
    '1a.2.3.4',
    ':',
    ':::',
    '1:::2',
    '1::2::3',
    ':1::',
    '1:',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::', // `::` must stand for at least one group
    '::1:2:3:4:5:6:7:8',
    '12345::',
    '::00001',
    'fe80::1%', // an empty zone
    '%eth0',
    '[::1]',
    '::ffff:01.2.3.4',
    '::ffff:1.2.3',
    '::ffff:1.2.3.4.5',
    '1:2:3:4:5:1.2.3.4', // an embedded IPv4 address must fill the last two groups
    '1:2:3:4:5:6:7:1.2.3.4',
    '::1:2:3:4:5:6:1.2.3.4',
    '1.2.3.4::',
    'fe80::x',
  ];
  for (const text of invalid) it(`refuses ${JSON.stringify(text)}`, () => assert.equal(ipToBytes(text), undefined));
});

describe('the parsers the data path calls per request', () => {
  it('parseIpv4 reads part of a string as an unsigned 32-bit number', () => {
    assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
    assert.equal(parseIpv4('10.1.2.3'), 0x0a010203);
    assert.equal(parseIpv4('x10.1.2.3:80', 1, 9), 0x0a010203);
    assert.equal(parseIpv4('10.1.2'), -1);
  });

  it('parseIpv6Into fills a reused buffer, all 16 bytes each time', () => {
    const out = new Uint8Array(16);
    assert.equal(parseIpv6Into('1:2:3:4:5:6:7:8', out), true);
    assert.equal(bytesToIp(out), '1:2:3:4:5:6:7:8');
    assert.equal(parseIpv6Into('fd00::1', out), true);
    assert.equal(bytesToIp(out), 'fd00::1', 'the gap is zeroed over the previous address');
    assert.equal(parseIpv6Into('10.0.0.1', out), false);
  });

  it('parseCidr takes a prefix length up to the family size', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: new Uint8Array([10, 0, 0, 0]), length: 8 });
    assert.equal(parseCidr('fd00::/64')?.length, 64);
    assert.equal(parseCidr('10.0.0.0/33'), undefined);
    assert.equal(parseCidr('fd00::/129'), undefined);
  });
});
