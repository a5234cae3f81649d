import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildBaggage,
  buildForwarded,
  formatAuthority,
  newTraceparent,
  parseAuthority,
  parseBaggage,
  parseForwarded,
  parseTraceparent,
} from '../../src/hbone/headers.js';

test('authority formatting and parsing, IPv6 bracketed', () => {
  assert.equal(formatAuthority('10.0.0.2', 8080), '10.0.0.2:8080');
  assert.equal(formatAuthority('fd00::2', 8080), '[fd00::2]:8080');
  assert.deepEqual(parseAuthority('10.0.0.2:8080'), { host: '10.0.0.2', port: 8080 });
  assert.deepEqual(parseAuthority('[fd00::2]:8080'), { host: 'fd00::2', port: 8080 });
  assert.deepEqual(parseAuthority('echo.ns.svc.cluster.local:80'), { host: 'echo.ns.svc.cluster.local', port: 80 });
  for (const bad of [undefined, '', ':80', '10.0.0.2', '10.0.0.2:0', '10.0.0.2:65536', '10.0.0.2:08x', 'fd00::2:80', '[fd00::2]', '[10.0.0.1]:80', '[fd00::2]:', 'a..b:80', '-a:80', 'a/b:80']) {
    assert.equal(parseAuthority(bad), undefined, String(bad));
  }
});

test('forwarded is written like ztunnel and read back', () => {
  assert.equal(buildForwarded('10.1.2.3', 40000), 'for="10.1.2.3:40000"');
  assert.equal(buildForwarded('fd00::9', 1, 'a.b.svc.cluster.local'), 'for="[fd00::9]:1";host=a.b.svc.cluster.local');
  assert.deepEqual(parseForwarded('for="[fd00::9]:1";host=a.b.svc.cluster.local'), { for: '[fd00::9]:1', host: 'a.b.svc.cluster.local' });
  assert.deepEqual(parseForwarded('For=192.0.2.60;proto=http, for=198.51.100.17'), { for: '192.0.2.60' });
  assert.equal(parseForwarded('garbage'), undefined);
  assert.equal(parseForwarded(undefined), undefined);
});

test('baggage keeps only non-empty entries and parses leniently', () => {
  assert.equal(
    buildBaggage([['k8s.cluster.name', 'Kubernetes'], ['k8s.namespace.name', 'default'], ['service.version', ''], ['cloud.region', undefined]]),
    'k8s.cluster.name=Kubernetes,k8s.namespace.name=default',
  );
  const b = parseBaggage(' k8s.namespace.name = default ,service.name=a%20b;prop=1,broken,=x,bad=%E0%A4%A');
  assert.equal(b.get('k8s.namespace.name'), 'default');
  assert.equal(b.get('service.name'), 'a b');
  assert.equal(b.get('bad'), '%E0%A4%A');
  assert.equal(b.size, 3);
});

test('traceparent: fresh ones are valid and distinct; invalid ones are ignored', () => {
  const a = newTraceparent();
  const b = newTraceparent();
  assert.notEqual(a, b);
  assert.match(a, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  assert.deepEqual(parseTraceparent(a)?.flags, '00');
  assert.equal(parseTraceparent('00-00000000000000000000000000000000-0123456789abcdef-01'), undefined);
  assert.equal(parseTraceparent('01-0123456789abcdef0123456789abcdef-0123456789abcdef-01'), undefined);
  assert.equal(parseTraceparent('nonsense'), undefined);
});
