// ztunnel's /config_dump shapes that tools parse: a waypoint's destination is a string in both of its forms.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dumpService, dumpWorkload } from '../../src/xds/configdump.js';
import type { Service, Workload } from '../../src/xds/types.js';
import { ipToBytes } from '../../src/common/ip.js';

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
