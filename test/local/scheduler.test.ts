// The scheduler's spreading, as kube-scheduler's default spreading places replicas: the node with the fewest pods of
// the same Deployment, then the fewest pods overall, then the first; a pod naming its node gets that node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod } from '../../src/api/types.js';
import { AddressPool } from '../../src/local/ipam.js';
import type { NodeRuntime } from '../../src/local/nodes.js';
import { pickNode, type PlacedPod } from '../../src/local/scheduler.js';

const nodes: NodeRuntime[] = [1, 2, 3].map((i) => ({
  name: `node-${i}`,
  index: i,
  ip: `172.18.0.${10 + i}`,
  podCIDR: `10.244.${i}.0/24`,
  netnsPath: `/nonexistent/node-${i}`,
  agentSocket: `/nonexistent/node-${i}.sock`,
  createdAt: '2026-01-01T00:00:00Z',
  pool: new AddressPool(`10.244.${i}.0/24`, [`10.244.${i}.1`]),
}));

function podOf(deployment: string | undefined, nodeName?: string): Pod {
  const hash = 'abc123';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${deployment ?? 'bare'}-x`,
      namespace: 'default',
      labels: deployment ? { 'pod-template-hash': hash } : {},
      ...(deployment ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${deployment}-${hash}`, uid: 'u', controller: true }] } : {}),
    } as Pod['metadata'],
    spec: { containers: [{ name: 'c', command: ['true'] }], ...(nodeName ? { nodeName } : {}) },
  };
}

const at = (i: number, owner: string | undefined, namespace = 'default'): PlacedPod => ({ node: nodes[i - 1]!, namespace, owner });

test('an empty cluster places on the first node', () => {
  assert.equal(pickNode(podOf('web'), nodes, [])?.name, 'node-1');
});

test("replicas spread over nodes by their Deployment's count before the total count", () => {
  // node-1 holds more pods overall but none of web's; node-2 and node-3 hold one of web's each.
  const placed = [at(1, 'db'), at(1, 'db'), at(1, 'db'), at(2, 'web'), at(3, 'web')];
  assert.equal(pickNode(podOf('web'), nodes, placed)?.name, 'node-1');
});

test('on equal counts of the same Deployment the node with fewer pods wins', () => {
  const placed = [at(1, 'web'), at(2, 'web'), at(3, 'web'), at(1, 'db'), at(3, 'db')];
  assert.equal(pickNode(podOf('web'), nodes, placed)?.name, 'node-2');
});

test("a Deployment of the same name in another namespace does not count as the pod's own", () => {
  const placed = [at(1, 'web', 'other'), at(1, 'web', 'other'), at(2, 'x'), at(2, 'x'), at(2, 'x'), at(3, 'x'), at(3, 'x'), at(3, 'x')];
  assert.equal(pickNode(podOf('web'), nodes, placed)?.name, 'node-1');
});

test('a bare pod goes to the node with the fewest pods', () => {
  const placed = [at(1, 'a'), at(2, 'a'), at(2, 'b'), at(3, 'a')];
  assert.equal(pickNode(podOf(undefined), nodes, placed)?.name, 'node-1');
});

test('a pod naming its node gets that node, or none when it does not exist', () => {
  assert.equal(pickNode(podOf('web', 'node-3'), nodes, [])?.name, 'node-3');
  assert.equal(pickNode(podOf('web', 'node-9'), nodes, []), undefined);
});
