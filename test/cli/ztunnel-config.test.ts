// istioctl ztunnel-config's tables from ztunnel /config_dumps: columns, sort orders and cell formats of istioctl's Go
// writer (istioctl/pkg/writer/ztunnel/configdump), including Ambit's hostname-object waypoint form and node merging.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { certificateSummary, connectionsSummary, fullSummary, mergeDumps, parseDump, policySummary, serviceSummary, workloadSummary } from '../../src/cli/ztunnel-config.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const wl = (name: string, ns: string, ip: string, node: string, extra: Record<string, unknown> = {}) => ({
  uid: `Kubernetes//Pod/${ns}/${name}`,
  workloadIps: [ip],
  protocol: 'HBONE',
  name,
  namespace: ns,
  node,
  status: 'Healthy',
  ...extra,
});
const svc = (name: string, ns: string, vip: string, endpoints: string[], extra: Record<string, unknown> = {}) => ({
  name,
  namespace: ns,
  hostname: `${name}.${ns}.svc.cluster.local`,
  vips: [`/${vip}`],
  ports: { '80': 8080 },
  endpoints: Object.fromEntries(endpoints.map((uid) => [uid, { workloadUid: uid, port: { '80': 8080 }, status: 'Healthy' }])),
  ...extra,
});

const node1 = {
  workloads: [
    wl('server', 'mesh', '10.10.2.5', 'node-2', { waypoint: { destination: { namespace: 'mesh', hostname: 'waypoint.mesh.svc.cluster.local' }, hboneMtlsPort: 15008 } }),
    wl('client', 'mesh', '10.10.1.4', 'node-1'),
    wl('waypoint-7f9c', 'mesh', '10.10.1.9', 'node-1', { status: 'Unhealthy' }),
    wl('legacy', 'plain', '10.10.1.6', 'node-1', { protocol: 'TCP', waypoint: { destination: '/10.96.0.99', hboneMtlsPort: 15008 } }),
  ],
  services: [
    svc('server', 'mesh', '10.96.0.20', ['Kubernetes//Pod/mesh/server'], { waypoint: { destination: '/10.96.0.30', hboneMtlsPort: 15008 } }),
    svc('waypoint', 'mesh', '10.96.0.30', ['Kubernetes//Pod/mesh/waypoint-7f9c']),
  ],
  policies: [
    { name: 'deny-other', namespace: 'mesh', scope: 'Namespace', action: 'Deny', rules: [], dryRun: false },
    { name: 'allow-client', namespace: 'mesh', scope: 'WorkloadSelector', action: 'Allow', rules: [], dryRun: false },
    { name: 'mesh-wide', namespace: 'istio-system', scope: 'Global', action: 'Allow', rules: [], dryRun: false },
  ],
  certificates: [
    {
      identity: 'spiffe://cluster.local/ns/mesh/sa/client',
      state: 'Available',
      certChain: [{ pem: '', serialNumber: '255', validFrom: '2025-12-31T12:00:00Z', expirationTime: '2026-01-01T12:00:00Z' }],
      rootCerts: [{ pem: '', serialNumber: '4096', validFrom: '2025-01-01T00:00:00Z', expirationTime: '2035-01-01T00:00:00Z' }],
    },
    { identity: 'spiffe://cluster.local/ns/mesh/sa/late', state: 'Initializing', certChain: [], rootCerts: [] },
  ],
  workloadState: {
    'Kubernetes//Pod/mesh/client': {
      state: 'Up',
      info: { name: 'client', namespace: 'mesh', serviceAccount: 'default' },
      connections: {
        inbound: [],
        outbound: [{ src: '10.10.1.4:40000', originalDst: '10.96.0.20:80', actualDst: '10.10.2.5:15008', protocol: 'HBONE' }],
      },
    },
  },
};
const node2 = {
  ...node1,
  certificates: [{ identity: 'spiffe://cluster.local/ns/mesh/sa/server', state: 'Unavailable: no CA', certChain: [], rootCerts: [] }],
  workloadState: {
    'Kubernetes//Pod/mesh/server': {
      state: 'Up',
      info: { name: 'server', namespace: 'mesh', serviceAccount: 'server' },
      connections: { inbound: [{ src: '10.10.1.4:40000', originalDst: null, actualDst: '10.10.2.5:8080', protocol: 'HBONE' }], outbound: [] },
    },
  },
};
const d1 = parseDump(JSON.stringify(node1));
const merged = mergeDumps([d1, parseDump(JSON.stringify(node2))]);

describe('ztunnel-config tables (istioctl writer formats)', () => {
  it('workload: sorted by namespace.name, waypoint by Service name (hostname or VIP), None without one, NA when unknown', () => {
    assert.equal(
      workloadSummary(d1),
      [
        'NAMESPACE POD NAME      ADDRESS   NODE   WAYPOINT PROTOCOL',
        'mesh      client        10.10.1.4 node-1 None     HBONE',
        'mesh      server        10.10.2.5 node-2 waypoint HBONE',
        'mesh      waypoint-7f9c 10.10.1.9 node-1 None     HBONE',
        'plain     legacy        10.10.1.6 node-1 NA       TCP',
        '',
      ].join('\n'),
    );
    assert.equal(workloadSummary(d1, { node: 'NODE-2' }).split('\n')[1], 'mesh      server   10.10.2.5 node-2 waypoint HBONE');
  });

  it('service: VIPs without the network, healthy/total endpoints', () => {
    assert.equal(
      serviceSummary(d1),
      ['NAMESPACE SERVICE NAME SERVICE VIP WAYPOINT ENDPOINTS', 'mesh      server       10.96.0.20  waypoint 1/1', 'mesh      waypoint     10.96.0.30  None     0/1', ''].join('\n'),
    );
  });

  it('policy: namespace then name', () => {
    assert.equal(
      policySummary(d1),
      [
        'NAMESPACE    POLICY NAME  ACTION SCOPE',
        'istio-system mesh-wide    Allow  Global',
        'mesh         allow-client Allow  WorkloadSelector',
        'mesh         deny-other   Deny   Namespace',
        '',
      ].join('\n'),
    );
  });

  it('certificate: Leaf and Root rows, hex serials, NA rows for certificates not issued, 5-space padding', () => {
    assert.equal(
      certificateSummary(merged, NOW),
      [
        'CERTIFICATE NAME                             TYPE     STATUS           VALID CERT     SERIAL NUMBER     NOT AFTER                NOT BEFORE',
        'spiffe://cluster.local/ns/mesh/sa/client     Leaf     Available        true           ff                2026-01-01T12:00:00Z     2025-12-31T12:00:00Z',
        'spiffe://cluster.local/ns/mesh/sa/client     Root     Available        true           1000              2035-01-01T00:00:00Z     2025-01-01T00:00:00Z',
        'spiffe://cluster.local/ns/mesh/sa/late       NA       Initializing     false          NA                NA                       NA',
        'spiffe://cluster.local/ns/mesh/sa/server     NA       Unavailable      false          NA                NA                       NA',
        '',
      ].join('\n'),
    );
    assert.match(certificateSummary(d1, Date.parse('2026-02-01T00:00:00Z')).split('\n')[1]!, / Leaf +Available +false /);
  });

  it('connections: every node merged, addresses named after services and workloads unless --raw', () => {
    assert.equal(
      connectionsSummary(merged),
      [
        'WORKLOAD    DIRECTION LOCAL             REMOTE            REMOTE TARGET                    PROTOCOL',
        'client.mesh Outbound  client.mesh:40000 server.mesh:15008 server.mesh.svc.cluster.local:80 HBONE',
        'server.mesh Inbound   server.mesh:8080  client.mesh:40000                                  HBONE',
        '',
      ].join('\n'),
    );
    assert.equal(connectionsSummary(merged, { raw: true, direction: 'inbound' }).split('\n')[1], 'server.mesh Inbound   10.10.2.5:8080 10.10.1.4:40000               HBONE');
  });

  it('merging keeps shared objects once and every node\'s own certificates and workload states', () => {
    assert.equal(merged.workloads.length, 4);
    assert.equal(merged.services.length, 2);
    assert.equal(merged.policies.length, 3);
    assert.equal(merged.certificates.length, 3);
    assert.deepEqual(Object.keys(merged.workloadState).sort(), ['Kubernetes//Pod/mesh/client', 'Kubernetes//Pod/mesh/server']);
  });

  it('all: each table after a blank line, with istioctl headings on request', () => {
    const all = fullSummary(d1, true, NOW);
    assert.ok(all.startsWith('\n------ WORKLOAD INFO ------\n\nNAMESPACE POD NAME'));
    for (const h of ['SERVICE INFO', 'POLICY INFO', 'SECRET INFO', 'CONNECTIONS INFO']) assert.ok(all.includes(`\n\n------ ${h} ------\n\n`), h);
    assert.ok(fullSummary(d1, false, NOW).startsWith('\nNAMESPACE POD NAME'));
  });
});
