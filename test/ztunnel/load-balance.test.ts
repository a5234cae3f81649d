// ztunnel's endpoint choice (ProxyState::load_balance), with the cases of its test_load_balance (istio/ztunnel
// src/state.rs): STRICT keeps only endpoints matching every routing preference, FAILOVER the closest ones (a NETWORK
// first preference ranking same-network endpoints above all), an endpoint without an address is never chosen; and the
// choice is weighted by capacity.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadBalance, sampleWeightedWaypoint } from '../../src/ztunnel/load-balance.js';
import { capacityOf, type GatewayAddress, type Service, type Workload } from '../../src/xds/types.js';

function workload(name: string, fields: Partial<Workload> = {}): Workload {
  return {
    uid: `cluster1//v1/Pod/default/${name}`,
    name,
    namespace: 'default',
    addresses: [new Uint8Array([192, 168, 0, 1])],
    network: '',
    tunnelProtocol: 'HBONE',
    trustDomain: 'cluster.local',
    serviceAccount: 'default',
    node: '',
    canonicalName: name,
    canonicalRevision: 'latest',
    workloadType: 'POD',
    workloadName: name,
    services: {},
    authorizationPolicies: [],
    status: 'HEALTHY',
    clusterId: 'Kubernetes',
    ...fields,
  };
}

const locality = (region: string, zone: string) => ({ region, zone, subzone: '' });
const ENDPOINTS = [
  workload('wl_match', { network: 'network', locality: locality('reg', 'zone') }),
  workload('wl_almost', { network: 'network', locality: locality('reg', 'not-zone') }),
  workload('wl_no_locality', { network: 'network' }),
  workload('wl_other', { network: 'other', locality: locality('reg', 'zone') }),
  workload('wl_empty_ip', { network: 'network', addresses: [], locality: locality('reg', 'zone') }),
].map((w) => ({ workload: w }));

const lb = (mode: string): Service['loadBalancing'] => ({ mode, routingPreference: ['NETWORK', 'REGION', 'ZONE'] });

/** Every endpoint chosen over enough draws (ztunnel's assert_endpoint tries 10 per expected endpoint). */
function chosen(src: Workload, loadBalancing: Service['loadBalancing'], candidates = ENDPOINTS): string[] {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const pick = loadBalance(src, loadBalancing, candidates);
    if (pick) seen.add(pick.workload.name);
  }
  return [...seen].sort();
}

describe("ztunnel's load balancing (test_load_balance)", () => {
  const cases: [string, Workload, Service['loadBalancing'], string[]][] = [
    ['strict no match should not select', workload('src'), lb('STRICT'), []],
    ['strict match', workload('src', { network: 'network', locality: locality('reg', 'zone') }), lb('STRICT'), ['wl_match']],
    ['failover no match can select any endpoint', workload('src', { network: 'no-match', locality: locality('no-match', 'no-match') }), lb('FAILOVER'), ['wl_almost', 'wl_match', 'wl_no_locality', 'wl_other']],
    ['failover matches network+region+zone', workload('src', { network: 'network', locality: locality('reg', 'zone') }), lb('FAILOVER'), ['wl_match']],
    ['failover matches network+region', workload('src', { network: 'network', locality: locality('reg', '') }), lb('FAILOVER'), ['wl_almost', 'wl_match']],
    ['failover matches network', workload('src', { network: 'network', locality: locality('no-match', 'no-match') }), lb('FAILOVER'), ['wl_almost', 'wl_match', 'wl_no_locality']],
    ['failover matches region+zone', workload('src', { network: 'no-match', locality: locality('reg', 'zone') }), lb('FAILOVER'), ['wl_match', 'wl_other']],
    ['no load balancer: any endpoint with an address', workload('src'), undefined, ['wl_almost', 'wl_match', 'wl_no_locality', 'wl_other']],
  ];
  for (const [name, src, loadBalancing, want] of cases) it(name, () => assert.deepEqual(chosen(src, loadBalancing), want));

  it('failover never selects an endpoint without an address; one known by hostname only may be chosen', () => {
    assert.ok(!chosen(workload('src'), lb('FAILOVER')).includes('wl_empty_ip'));
    const byName = { workload: workload('dns', { addresses: [], hostname: 'api.example.com' }) };
    assert.deepEqual(chosen(workload('src'), undefined, [byName]), ['dns']);
  });

  it('internalTrafficPolicy Local (STRICT on NODE) keeps the endpoints of the source node', () => {
    const local = { mode: 'STRICT', routingPreference: ['NODE'] };
    const candidates = [{ workload: workload('here', { node: 'node-1' }) }, { workload: workload('there', { node: 'node-2' }) }];
    assert.deepEqual(chosen(workload('src', { node: 'node-1' }), local, candidates), ['here']);
    assert.deepEqual(chosen(workload('src', { node: 'node-3' }), local, candidates), []);
  });

  it('draws in proportion to capacity (unset: 1)', () => {
    const heavy = { workload: workload('heavy', { capacity: { value: 3 } }) };
    const light = { workload: workload('light') };
    assert.equal(capacityOf(light.workload), 1);
    // random() values spread evenly over [0, 1): a quarter go to the light endpoint.
    const counts = { heavy: 0, light: 0 };
    for (let i = 0; i < 100; i++) counts[loadBalance(workload('src'), undefined, [light, heavy], () => i / 100)!.workload.name as 'heavy' | 'light']++;
    assert.deepEqual(counts, { heavy: 75, light: 25 });
  });
});

describe("ztunnel's canary waypoint choice (test_sample_weighted_waypoint)", () => {
  const gw = (host: string): GatewayAddress => ({ hostname: { namespace: 'ns', hostname: host }, hboneMtlsPort: 15008 });
  const [a, b] = [gw('primary'), gw('canary')];
  const svc = (weighted: { destination: GatewayAddress; weight: number }[]): Service => ({
    name: 's',
    namespace: 'ns',
    hostname: 's.ns.svc.cluster.local',
    addresses: [],
    ports: [],
    subjectAltNames: [],
    waypoint: a,
    weightedWaypoints: weighted,
  });
  const draws = (s: Service) => Array.from({ length: 100 }, (_, i) => sampleWeightedWaypoint(s, () => i / 100)?.hostname?.hostname ?? 'single');

  it('no weighted set, or every weight 0: none (the single waypoint applies)', () => {
    assert.equal(sampleWeightedWaypoint(svc([])), undefined);
    assert.equal(sampleWeightedWaypoint(svc([{ destination: a, weight: 0 }, { destination: b, weight: 0 }])), undefined);
  });

  it('a zero weight is never chosen; the split follows the weights', () => {
    assert.deepEqual(new Set(draws(svc([{ destination: a, weight: 100 }, { destination: b, weight: 0 }]))), new Set(['primary']));
    assert.deepEqual(new Set(draws(svc([{ destination: a, weight: 0 }, { destination: b, weight: 100 }]))), new Set(['canary']));
    const split = draws(svc([{ destination: a, weight: 80 }, { destination: b, weight: 20 }]));
    assert.deepEqual([split.filter((h) => h === 'primary').length, split.filter((h) => h === 'canary').length], [80, 20]);
  });
});
