import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSpiffeId, parseSpiffeId, spiffeId } from '../../src/identity/spiffe.js';

test('spiffeId builds the Istio workload identity and round-trips through parseSpiffeId', () => {
  const id = spiffeId('cluster.local', 'default', 'bookinfo-productpage');
  assert.equal(id, 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage');
  const parsed = parseSpiffeId(id);
  assert.deepEqual(parsed, { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'bookinfo-productpage' });
  assert.equal(formatSpiffeId(parsed!), id);
});

test('spiffeId refuses parts that would not parse back', () => {
  assert.throws(() => spiffeId('Cluster.Local', 'a', 'b'), /invalid SPIFFE trust domain "Cluster.Local"/);
  assert.throws(() => spiffeId('td', 'a/b', 'c'), /invalid namespace "a\/b"/);
  assert.throws(() => spiffeId('td', 'a', '..'), /invalid service account ".."/);
  assert.throws(() => spiffeId('td', '', 'x'), /invalid namespace ""/);
});

test('parseSpiffeId is strict about the shape', () => {
  const bad = [
    'spiffe://td/ns/a/sa',
    'spiffe://td/ns/a/sa/b/extra',
    'spiffe://td/ns//sa/b',
    'spiffe://td/sa/a/ns/b',
    'spiffe:///ns/a/sa/b',
    'SPIFFE://td/ns/a/sa/b',
    'https://td/ns/a/sa/b',
    'spiffe://td/ns/a/sa/b/',
    'spiffe://td/ns/./sa/b',
    'spiffe://td/ns/a/sa/b c',
    'spiffe://TD/ns/a/sa/b',
    'spiffe://td:8080/ns/a/sa/b',
    '',
  ];
  for (const uri of bad) assert.equal(parseSpiffeId(uri), undefined, uri);
  assert.deepEqual(parseSpiffeId('spiffe://example.org/ns/My_NS-1/sa/sa.v2'), {
    trustDomain: 'example.org',
    namespace: 'My_NS-1',
    serviceAccount: 'sa.v2',
  });
});
