// Which Service a DNS question names, as ztunnel's DNS server finds it (src/dns/server.rs find_server, get_aliases,
// to_kube_fqdns, get_wildcards, and its wildcard and search-domain cases): the name, its Kubernetes expansions, the
// name without a search domain, each then matched exactly or by wildcard hosts from the most specific; a wildcard
// host without a VIP is not an answer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceForName } from '../../src/ztunnel/dns.js';
import type { Service } from '../../src/xds/types.js';

const svc = (hostname: string, namespace = 'ns1', withVip = true): Service => ({
  name: hostname.split('.')[0]!,
  namespace,
  hostname,
  addresses: withVip ? [{ network: '', address: new Uint8Array([10, 10, 10, 10]) }] : [],
  ports: [],
  subjectAltNames: [],
});

const SERVICES = [
  svc('*.wildcard'),
  svc('*.b.wildcard'),
  svc('echo.ns1.svc.cluster.local'),
  svc('*.svc.mesh.company.net'),
  svc('*.novip.example', 'ns1', false),
];
const state = { serviceByHostname: (h: string) => SERVICES.find((s) => s.hostname === h) };
const find = (name: string) => serviceForName(state, 'ns1', 'cluster.local', name)?.hostname;

describe("the Service a DNS name stands for (ztunnel's find_server)", () => {
  const cases: [string, string, string | undefined][] = [
    ['a wildcard host answers a name under it', 'foo.wildcard.', '*.wildcard'],
    ['the most specific wildcard wins', 'a.b.wildcard.', '*.b.wildcard'],
    ['a deeper name falls back to a shorter wildcard', 'x.y.wildcard.', '*.wildcard'],
    ['a wildcard does not match its own domain', 'wildcard.', undefined],
    ['exact Service name', 'echo.ns1.svc.cluster.local.', 'echo.ns1.svc.cluster.local'],
    ['an FQDN the search path expanded again', 'echo.ns1.svc.cluster.local.ns1.svc.cluster.local.', 'echo.ns1.svc.cluster.local'],
    ['a bare name', 'echo.', 'echo.ns1.svc.cluster.local'],
    ['svc.ns.svc short name', 'echo.ns1.svc.', 'echo.ns1.svc.cluster.local'],
    ['svc.ns short name', 'echo.ns1.ns1.svc.cluster.local.', 'echo.ns1.svc.cluster.local'],
    ['wildcard with a domain', 'foo.svc.mesh.company.net.', '*.svc.mesh.company.net'],
    ['wildcard reached through the search path', 'foo.svc.mesh.company.net.ns1.svc.cluster.local.', '*.svc.mesh.company.net'],
    ['a wildcard host without a VIP is not an answer', 'a.novip.example.', undefined],
    ['case does not matter', 'FOO.Wildcard.', '*.wildcard'],
  ];
  for (const [name, query, want] of cases) it(name, () => assert.equal(find(query), want));
});
