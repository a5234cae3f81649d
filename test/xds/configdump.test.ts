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

describe("services sharing a VIP or hostname (ztunnel's get_best_by_vip, get_best_by_host)", () => {
  const svc = (namespace: string, host: string, address: { ip: string; length?: number }, canonical = false): Service =>
    ({
      name: host.split('.')[0], namespace, hostname: host, ports: [{ servicePort: 443, targetPort: 443 }], subjectAltNames: [], ...(canonical ? { canonical } : {}),
      addresses: [{ network: '', address: ipToBytes(address.ip)!, ...(address.length !== undefined ? { length: address.length } : {}) }],
    }) as unknown as Service;

  it("the client's namespace first, else the canonical one, else the first to arrive; removing one leaves the others", () => {
    const state = new AddressState(undefined);
    state.applyAddresses(
      new Map([
        ['a/api.example.com', { service: svc('a', 'api.example.com', { ip: '240.1.0.1' }) }],
        ['b/api.example.com', { service: svc('b', 'api.example.com', { ip: '240.1.0.1' }, true) }],
        ['c/api.example.com', { service: svc('c', 'api.example.com', { ip: '240.1.0.1' }) }],
      ]),
      [],
    );
    for (const [client, want] of [['a', 'a'], ['c', 'c'], ['z', 'b'], [undefined, 'b']] as const) {
      assert.equal(state.serviceByVip('240.1.0.1', client)?.namespace, want, `VIP from ${client}`);
      assert.equal(state.serviceByHostname('api.example.com', client)?.namespace, want, `hostname from ${client}`);
    }
    state.applyAddresses(new Map(), ['b/api.example.com']);
    assert.equal(state.serviceByVip('240.1.0.1', 'z')?.namespace, 'a');
    assert.equal(state.serviceByVip('240.1.0.1', 'c')?.namespace, 'c');
  });

  it("CIDR VIPs: one in the client's namespace beats a longer prefix elsewhere; then the longest prefix; then the canonical one", () => {
    const state = new AddressState(undefined);
    state.applyAddresses(
      new Map([
        ['a/wide.example.com', { service: svc('a', 'wide.example.com', { ip: '10.60.0.0', length: 16 }) }],
        ['b/narrow.example.com', { service: svc('b', 'narrow.example.com', { ip: '10.60.1.0', length: 24 }) }],
        ['c/same.example.com', { service: svc('c', 'same.example.com', { ip: '10.60.1.0', length: 24 }, true) }],
      ]),
      [],
    );
    assert.equal(state.serviceByVip('10.60.1.5', 'a')?.hostname, 'wide.example.com');
    assert.equal(state.serviceByVip('10.60.1.5', 'z')?.hostname, 'same.example.com');
    assert.equal(state.serviceByVip('10.60.1.5', 'b')?.hostname, 'narrow.example.com');
    assert.equal(state.serviceByVip('10.60.9.5', 'b')?.hostname, 'wide.example.com');
  });
});
