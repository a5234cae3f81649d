// ztunnel's /config_dump shapes that tools parse (a waypoint's destination is a string in both its forms; CIDR VIPs in
// cidrVips) and the address state's lookups by VIP, CIDR ranges included.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dumpService, dumpWorkload } from '../../src/xds/configdump.js';
import type { Service, Workload } from '../../src/xds/types.js';
import { ipToBytes } from '../../src/common/ip.js';
import { AddressState } from '../../src/xds/address-state.js';

describe('config_dump waypoint destinations', () => {
  const workload = (waypoint: Workload['waypoint']): Workload =>
    ({ uid: 'Kubernetes//Pod/mesh/a', name: 'a', namespace: 'mesh', addresses: [ipToBytes('10.10.1.4')!], services: {}, workloadType: 'POD', authorizationPolicies: [], waypoint }) as unknown as Workload;

  it('writes a hostname waypoint as namespace/hostname, as ztunnel serializes NamespacedHostname', () => {
    const out = dumpWorkload(workload({ hostname: { namespace: 'mesh', hostname: 'waypoint.mesh.svc.cluster.local' }, hboneMtlsPort: 15008 } as Workload['waypoint']));
    assert.deepEqual(out.waypoint, { destination: 'mesh/waypoint.mesh.svc.cluster.local', hboneMtlsPort: 15008 });
  });

  it('writes an address waypoint as network/IP', () => {
    const svc = { name: 's', namespace: 'mesh', hostname: 's.mesh.svc.cluster.local', addresses: [], ports: [], subjectAltNames: [], waypoint: { address: { network: '', address: ipToBytes('10.96.0.9')! }, hboneMtlsPort: 15008 } } as unknown as Service;
    assert.deepEqual(dumpService(svc, []).waypoint, { destination: '/10.96.0.9', hboneMtlsPort: 15008 });
  });
});

describe('CIDR VIPs (a ServiceEntry address range)', () => {
  const svc = (name: string, addresses: { ip: string; length?: number }[]): Service =>
    ({
      name, namespace: 'ext', hostname: `${name}.example.com`, ports: [{ servicePort: 5432, targetPort: 5432 }], subjectAltNames: [],
      addresses: addresses.map((a) => ({ network: '', address: ipToBytes(a.ip)!, ...(a.length !== undefined ? { length: a.length } : {}) })),
    }) as unknown as Service;

  it('match any address in the range, the longest prefix winning, after exact VIPs; gone with their Service', () => {
    const state = new AddressState(undefined);
    state.applyAddresses(
      new Map([
        ['ext/wide', { service: svc('wide', [{ ip: '10.50.0.0', length: 16 }]) }],
        ['ext/narrow', { service: svc('narrow', [{ ip: '10.50.7.0', length: 24 }]) }],
        ['ext/exact', { service: svc('exact', [{ ip: '10.50.7.9', length: 32 }]) }],
      ]),
      [],
    );
    assert.equal(state.serviceByVip('10.50.7.9')?.name, 'exact');
    assert.equal(state.serviceByVip('10.50.7.10')?.name, 'narrow');
    assert.equal(state.serviceByVip('10.50.200.1')?.name, 'wide');
    assert.equal(state.serviceByVip('10.51.0.1'), undefined);
    assert.deepEqual(dumpService(state.serviceByKey('ext/narrow.example.com')!, []).cidrVips, ['/10.50.7.0/24']);
    assert.deepEqual(dumpService(state.serviceByKey('ext/narrow.example.com')!, []).vips, []);
    state.applyAddresses(new Map(), ['ext/narrow']);
    assert.equal(state.serviceByVip('10.50.7.10')?.name, 'wide');
  });
});
