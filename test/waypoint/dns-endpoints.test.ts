// ServiceEntry hosts at the waypoint: a Service whose endpoint has only a DNS name (what the control plane sends for a
// ServiceEntry with `resolution: DNS`) is reached at the address the waypoint's resolver gives for that name when it
// connects, with the Service's L7 policy applied first; a name that does not resolve fails that request as a
// connection failure; a wildcard host (DYNAMIC_DNS) sends each request to its own host under the wildcard. The names
// are `localhost` (the machine's hosts file) and a numeric one, so nothing leaves loopback.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TYPE_ADDRESS, TYPE_WAYPOINT, type Address, type WaypointResource } from '../../src/xds/types.js';
import { APPS, Harness, MeshClient, TD, WP_HOSTNAME, WP_NS, policy, waypointResourceName } from './harness.js';

const EXTERNAL = 'api.example.test';
const UNRESOLVABLE = 'nowhere.invalid';
/** A wildcard host whose names the machine resolves without a resolver: `127.0.0.1` is under it (a numeric name). */
const WILDCARD = '*.0.0.1';

describe('ServiceEntry hosts with DNS endpoints at the waypoint', () => {
  let h: Harness;
  let client: MeshClient;
  let server: http.Server;
  const seen: string[] = [];

  /** Octets of the two entries' VIPs in the harness's range (its own Services use 100–109). */
  const vip = { external: 120, unresolvable: 121, wildcard: 122 };

  function entry(hostname: string, endpoint: string, octet: number, port: number): Record<string, Address> {
    const key = `${APPS}/${hostname}`;
    return {
      [key]: {
        service: {
          name: hostname.split('.')[0]!,
          namespace: APPS,
          hostname,
          addresses: [{ network: '', address: new Uint8Array(h.ip(octet).split('.').map(Number)) }],
          ports: [{ servicePort: 80, targetPort: port }],
          subjectAltNames: [],
          waypoint: { hostname: { namespace: WP_NS, hostname: WP_HOSTNAME }, hboneMtlsPort: 15008 },
        },
      },
      [`Kubernetes/networking.istio.io/ServiceEntry/${APPS}/${hostname}/${endpoint}`]: {
        workload: {
          uid: `Kubernetes/networking.istio.io/ServiceEntry/${APPS}/${hostname}/${endpoint}`,
          name: hostname.split('.')[0]!,
          namespace: APPS,
          addresses: [],
          hostname: endpoint,
          network: '',
          tunnelProtocol: 'NONE',
          trustDomain: TD,
          serviceAccount: 'default',
          node: '',
          canonicalName: hostname.split('.')[0]!,
          canonicalRevision: 'latest',
          workloadType: 'POD',
          workloadName: hostname.split('.')[0]!,
          services: { [key]: { ports: [{ servicePort: 80, targetPort: port }] } },
          authorizationPolicies: [],
          status: 'HEALTHY',
          clusterId: 'Kubernetes',
        },
      },
    };
  }

  function bound(hostname: string, policies: string[]): Record<string, WaypointResource> {
    return {
      [waypointResourceName('service', APPS, hostname)]: {
        service: { name: hostname.split('.')[0]!, namespace: APPS, hostname, ports: [{ port: 80, name: 'http', protocol: 'HTTP' }], policies, routes: [] },
      },
    };
  }

  before(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.host}`);
      res.end('external');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    h = await Harness.start();
    client = await MeshClient.dial(h);
    h.source.set(TYPE_ADDRESS, {
      ...entry(EXTERNAL, 'localhost', vip.external, port),
      ...entry(UNRESOLVABLE, UNRESOLVABLE, vip.unresolvable, port),
      // A DYNAMIC_DNS entry's implicit endpoint is its wildcard host.
      ...entry(WILDCARD, WILDCARD, vip.wildcard, port),
    });
    h.source.set(TYPE_WAYPOINT, {
      ...bound(EXTERNAL, [`${APPS}/external-admin`]),
      ...bound(UNRESOLVABLE, []),
      ...bound(WILDCARD, []),
      ...policy(APPS, 'external-admin', 'DENY', [{ to: [{ operation: { paths: ['/admin'] } }] }]),
    });
    await h.waitForConfig('the ServiceEntry hosts', (dump) => (dump.boundServices as { hostname: string }[]).filter((s) => [EXTERNAL, UNRESOLVABLE, WILDCARD].includes(s.hostname)).length === 3);
  });

  after(async () => {
    client?.close();
    await h?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('a request to the entry reaches the address its endpoint name resolves to', async () => {
    const r = await client.http1(`${h.ip(vip.external)}:80`, { path: '/v1/items', headers: { host: EXTERNAL } });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'external');
    assert.deepEqual(seen.splice(0), [`GET /v1/items ${EXTERNAL}`]);
  });

  it("the entry's policy applies before the endpoint is resolved", async () => {
    const r = await client.http1(`${h.ip(vip.external)}:80`, { path: '/admin', headers: { host: EXTERNAL } });
    assert.equal(r.status, 403);
    assert.equal(r.body.toString(), 'RBAC: access denied');
    assert.deepEqual(seen.splice(0), []);
  });

  it('an endpoint name that does not resolve fails the request as a connection failure (503, UF, retried), naming the name', async () => {
    const r = await client.http1(`${h.ip(vip.unresolvable)}:80`, { path: '/', headers: { host: UNRESOLVABLE } });
    assert.equal(r.status, 503);
    assert.match(r.body.toString(), new RegExp(`^upstream connect error or disconnect/reset before headers\\. .*reset reason: remote connection failure, transport failure reason: dns resolution failure: ${UNRESOLVABLE.replace('.', '\\.')}: `));
    const line = h.accessLog.find((l) => l.includes(UNRESOLVABLE));
    assert.ok(line, 'an access-log line for the request');
    // Retried as any connection failure (the default policy's reset-before-request).
    assert.match(line!, / 503 UF,URX /);
  });

  it("a wildcard host's endpoint is the request's host under it (Envoy's dynamic forward proxy); another host fails", async () => {
    const r = await client.http1(`${h.ip(vip.wildcard)}:80`, { path: '/any', headers: { host: '127.0.0.1' } });
    assert.equal(r.status, 200);
    assert.deepEqual(seen.splice(0), ['GET /any 127.0.0.1']);
    const other = await client.http1(`${h.ip(vip.wildcard)}:80`, { path: '/', headers: { host: 'example.org' } });
    assert.equal(other.status, 503);
    assert.match(other.body.toString(), /transport failure reason: dns resolution failure: host example\.org is not under \*\.0\.0\.1$/);
    assert.deepEqual(seen.splice(0), []);
  });
});
