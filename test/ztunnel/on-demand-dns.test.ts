// On-demand DNS for endpoints known by hostname only: the family preference, the reading of an answer, the TTL
// cache, and the resolver against a real UDP server on loopback (its sockets made through PodNetns, as in a pod).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { PodNetns } from '../../src/inpod/netns.js';
import { DnsLookupError, OnDemandResolver, ResolvedAddressCache, answerAddresses, pickResolvedAddress } from '../../src/ztunnel/on-demand-dns.js';

const DAY = 86_400;

function reply(rcode: number, answers: dnsPacket.Answer[]): dnsPacket.DecodedPacket {
  return dnsPacket.decode(dnsPacket.encode({ type: 'response', id: 1, flags: dnsPacket.RECURSION_AVAILABLE | rcode, questions: [{ type: 'A', name: 'h.test' }], answers }));
}

describe('pickResolvedAddress', () => {
  const both = { v4: ['192.0.2.1', '192.0.2.2'], v6: ['2001:db8::1'] };

  it('picks among the addresses of the family of the address dialed', () => {
    assert.equal(pickResolvedAddress(both, false, () => 0), '192.0.2.1');
    assert.equal(pickResolvedAddress(both, false, () => 0.99), '192.0.2.2');
    assert.equal(pickResolvedAddress(both, true, () => 0.99), '2001:db8::1');
  });

  it('falls back to the other family, and gives nothing when there is no address at all', () => {
    assert.equal(pickResolvedAddress({ v4: [], v6: ['2001:db8::1'] }, false), '2001:db8::1');
    assert.equal(pickResolvedAddress({ v4: ['192.0.2.1'], v6: [] }, true), '192.0.2.1');
    assert.equal(pickResolvedAddress({ v4: [], v6: [] }, false), undefined);
  });
});

describe('answerAddresses', () => {
  it('takes the records of the asked type, with the smallest TTL, past a CNAME chain', () => {
    const r = reply(0, [
      { name: 'h.test', type: 'CNAME', class: 'IN', ttl: 5, data: 'real.test' },
      { name: 'real.test', type: 'A', class: 'IN', ttl: 60, data: '192.0.2.1' },
      { name: 'real.test', type: 'A', class: 'IN', ttl: 30, data: '192.0.2.2' },
    ]);
    assert.deepEqual(answerAddresses(r, 'A'), { addresses: ['192.0.2.1', '192.0.2.2'], ttlSeconds: 30 });
    assert.deepEqual(answerAddresses(r, 'AAAA'), { addresses: [], ttlSeconds: DAY });
  });

  it('a NOERROR answer without records is valid; any other rcode is a failed lookup', () => {
    assert.deepEqual(answerAddresses(reply(0, []), 'A'), { addresses: [], ttlSeconds: DAY });
    assert.throws(() => answerAddresses(reply(3, []), 'A'), (e: Error) => e instanceof DnsLookupError && e.message === 'A lookup answered NXDOMAIN');
    assert.throws(() => answerAddresses(reply(2, []), 'AAAA'), /AAAA lookup answered SERVFAIL/);
  });
});

describe('ResolvedAddressCache', () => {
  const r = { v4: ['192.0.2.1'], v6: [] };

  it('keeps an answer for its TTL, and never one whose TTL is 0', () => {
    const c = new ResolvedAddressCache(4);
    c.set('a.test', r, 30, 1000);
    assert.equal(c.get('a.test', 1000 + 29_999), r);
    assert.equal(c.get('a.test', 1000 + 30_000), undefined);
    assert.equal(c.size, 0, 'an expired entry is dropped when found');
    c.set('b.test', r, 0, 1000);
    assert.equal(c.get('b.test', 1000), undefined);
  });

  it('keeps nothing longer than a day', () => {
    const c = new ResolvedAddressCache(4);
    c.set('a.test', r, 2 ** 31, 0);
    assert.equal(c.get('a.test', DAY * 1000 - 1), r);
    assert.equal(c.get('a.test', DAY * 1000), undefined);
  });

  it('beyond its size, drops the entry stored first', () => {
    const c = new ResolvedAddressCache(2);
    c.set('a.test', r, 60, 0);
    c.set('b.test', r, 60, 0);
    c.set('a.test', r, 60, 0); // stored again: now the newest
    c.set('c.test', r, 60, 0);
    assert.equal(c.size, 2);
    assert.equal(c.get('b.test', 0), undefined);
    assert.equal(c.get('a.test', 0), r);
    assert.equal(c.get('c.test', 0), r);
  });
});

describe('OnDemandResolver against a real DNS server', () => {
  const server = dgram.createSocket('udp4');
  /** `<type> <name>` of each question the server got. */
  const asked: string[] = [];
  let netns: PodNetns;
  let port: number;
  let clock = 0;

  before(async () => {
    server.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const question = q.questions![0]!;
      asked.push(`${question.type} ${question.name}`);
      if (question.name === 'silent.test') return;
      const answers: dnsPacket.Answer[] =
        question.name === 'web.test' ? [{ name: question.name, type: 'A', class: 'IN', ttl: 10, data: '192.0.2.7' }] : [];
      // v6only.test has no A records but an IPv6 answer; broken.test's AAAA lookup fails.
      if (question.name === 'v6only.test' && question.type === 'AAAA') answers.push({ name: question.name, type: 'AAAA', class: 'IN', ttl: 10, data: '2001:db8::7' });
      const rcode = question.name === 'broken.test' && question.type === 'AAAA' ? 2 : 0;
      server.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | rcode, questions: q.questions, answers }), rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    port = server.address().port;
    netns = PodNetns.open('/proc/self/ns/net');
  });

  after(() => {
    server.close();
    netns.close();
  });

  const resolver = (timeoutMs = 2000) => new OnDemandResolver({ netns, host: '127.0.0.1', port, mark: 0, timeoutMs }, () => clock);

  it('asks A and AAAA once for concurrent connections, then answers from the cache until the TTL runs out', async () => {
    const res = resolver();
    const before = asked.length;
    const [first, second] = await Promise.all([res.resolve('web.test'), res.resolve('web.test')]);
    assert.deepEqual(first, { v4: ['192.0.2.7'], v6: [] });
    assert.equal(second, first);
    assert.deepEqual(asked.slice(before).sort(), ['A web.test', 'AAAA web.test']);
    clock += 9_999;
    assert.deepEqual(res.resolve('web.test'), first, 'synchronous from the cache');
    assert.equal(asked.length, before + 2);
    clock += 1;
    assert.deepEqual(await res.resolve('web.test'), first);
    assert.equal(asked.length, before + 4, 'asked again once the TTL ran out');
  });

  it('one family failing leaves the other; answers without any address are not cached', async () => {
    const res = resolver();
    assert.deepEqual(await res.resolve('broken.test'), { v4: [], v6: [] });
    assert.deepEqual(await res.resolve('v6only.test'), { v4: [], v6: ['2001:db8::7'] });
    const before = asked.length;
    await res.resolve('broken.test');
    assert.equal(asked.length, before + 2);
  });

  it('fails with DnsLookupError when no answer comes within the timeout', async () => {
    await assert.rejects(Promise.resolve(resolver(200).resolve('silent.test')), (e: Error) => e instanceof DnsLookupError && /no answer within 200 ms/.test(e.message));
  });
});
