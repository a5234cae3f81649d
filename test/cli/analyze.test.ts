// `ambit analyze` as a real process on files (--use-kube=false): istioctl analyze's output, exit codes (79 for
// issues at the failure threshold, 65 for files that could not be parsed), flags and the statuses the control plane
// would write, computed from the files. The live cluster is covered by the istioctl-parity end-to-end test.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ResourceStore } from '../../src/apiserver/store.js';
import { clusterForeignObjects } from '../../src/cli/commands/analyze.js';
import { TestApiServer } from '../support/api-server.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function ambit(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'analyze', ...args], { encoding: 'utf8', env: { ...process.env, TERM: 'dumb' }, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const MESH = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {istio.io/dataplane-mode: ambient}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
`;

const TYPO_POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: typo, namespace: shop}
spec:
  selector:
    matchLabels: {app: webb}
`;

const L7_POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: shop}
spec:
  selector:
    matchLabels: {app: web}
  rules: [{to: [{operation: {methods: [GET]}}]}]
`;

const MIGRATION = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: shop}
spec:
  mtls: {mode: STRICTT}
`;

// A Service with two ports, and a VirtualService routing to it without saying which.
const TWO_PORTS = `apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}, {name: http-admin, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
  namespace: shop
spec:
  hosts: [api]
  http:
  - route:
    - destination:
        host: api
`;

// An Istio ingress Gateway from a file, and a VirtualService bound to it for a host it does not serve.
const INGRESS = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [shop.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [www.example.com]
  gateways:
  - ingress
  http:
  - route:
    - destination: {host: web}
`;

let dir: string;
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ambit-analyze-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ambit analyze on files', () => {
  it('reports clean files on stderr with a check mark and exits 0', () => {
    const r = ambit(['--use-kube=false', '-n', 'shop', file('mesh.yaml', MESH)]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '\n');
    assert.equal(r.stderr, `\u2714 No validation issues found when analyzing ${join(dir, 'mesh.yaml')}.\n`);
  });

  it('keeps to the default namespace unless told otherwise, as istioctl', () => {
    const r = ambit(['--use-kube=false', file('typo.yaml', MESH + '---\n' + TYPO_POLICY)]);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, '\n');
  });

  it('a selector that matches nothing is a warning: printed, exit 0 at the default Error threshold, 79 at Warning', () => {
    const f = file('typo.yaml', MESH + '---\n' + TYPO_POLICY);
    const r = ambit(['--use-kube=false', '-n', 'shop', f]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `Warning [IST0127] (AuthorizationPolicy shop/typo ${f}:23) No matching workloads for this resource with the following labels: app=webb\n`);
    const strict = ambit(['--use-kube=false', '-A', '--failure-threshold', 'warning', f]);
    assert.equal(strict.status, 79);
    assert.equal(strict.stderr, 'Error: Analyzers found issues when analyzing all namespaces.\nSee https://istio.io/latest/docs/reference/config/analysis for more information about causes and resolutions.\n');
    // The exit code follows every message, printed or not.
    const quiet = ambit(['--use-kube=false', '-A', '--failure-threshold', 'Warning', '--output-threshold', 'Error', f]);
    assert.equal(quiet.status, 79);
    assert.equal(quiet.stdout, '\n');
  });

  it("reports HTTP rules in a policy only ztunnel enforces, from the status the control plane would write", () => {
    const r = ambit(['--use-kube=false', '-A', file('l7.yaml', MESH + '---\n' + L7_POLICY)]);
    assert.match(r.stdout, /^Warning \[IST0171\] \(AuthorizationPolicy shop\/get-only \S+:23\) A condition with a negative status is present: type=ZtunnelAccepted, reason=UnsupportedValue, message=ztunnel does not support HTTP attributes \(found: methods\)\. In ambient mode you must use a waypoint proxy to enforce HTTP rules\./m);
  });

  it('an unknown field is a schema warning at its key, not a refusal: the object is still analyzed', () => {
    const typo = TYPO_POLICY.replace('  selector:', '  selectr:');
    const f = file('typo-field.yaml', MESH + '---\n' + typo);
    const r = ambit(['--use-kube=false', '-A', f]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `Warning [IST0133] (AuthorizationPolicy shop/typo ${f}:27) Schema validation warning: unknown field "spec.selectr"\n`);
  });

  it('migration leftovers: a Sidecar in an ambient namespace, and a schema error with its field, exit 79', () => {
    const f = file('migration.yaml', MESH + '---\n' + MIGRATION);
    const r = ambit(['--use-kube=false', '-A', f]);
    assert.equal(r.status, 79);
    assert.equal(
      r.stdout,
      `Error [IST0106] (PeerAuthentication shop/strict ${f}:32) Schema validation error: spec.mtls.mode: expected one of UNSET, DISABLE, PERMISSIVE, STRICT; found "STRICTT"\n` +
        `Warning [IST0167] (Sidecar shop/default ${f}:23) The policy has no impact: namespace is in ambient mode, the policy has no impact.\n`,
    );
    assert.doesNotMatch(r.stderr, /unknown kind/);
  });

  it('a message about a field points at its line, as istioctl does', () => {
    const f = file('two-ports.yaml', MESH + '---\n' + TWO_PORTS);
    const r = ambit(['--use-kube=false', '-n', 'shop', f]);
    assert.equal(r.status, 79, r.stderr);
    // The document starts on line 30; its destination's host is on line 40.
    assert.equal(r.stdout, `Error [IST0112] (VirtualService shop/api ${f}:40) This VirtualService routes to a service "api" that exposes multiple ports [80 8080]. Specifying a port in the destination is required to disambiguate.\n`);
  });

  it("reads Istio's Gateways from files: a VirtualService host the gateway does not serve, at the gateways entry", () => {
    const f = file('ingress.yaml', MESH + '---\n' + INGRESS);
    const r = ambit(['--use-kube=false', '-n', 'shop', f]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `Warning [IST0132] (VirtualService shop/web ${f}:38) one or more host [www.example.com] defined in VirtualService shop/web not found in Gateway shop/ingress.\n`);
    const broken = file('broken-ingress.yaml', MESH + '---\n' + INGRESS.replace('hosts: [shop.example.com]', 'hosts: shop.example.com'));
    const b = ambit(['--use-kube=false', '-n', 'shop', broken]);
    assert.equal(b.status, 79, b.stderr);
    assert.match(b.stdout, /^Error \[IST0101\] \(VirtualService shop\/web \S+:38\) Referenced gateway not found: "ingress"$/m);
    assert.match(b.stdout, /^Error \[IST0106\] \(Gateway shop\/ingress \S+:23\) Schema validation error: spec\.servers\[0\]\.hosts: expected a list of strings$/m);
  });

  it('a subset no DestinationRule defines is reported at its destination\'s host line, as istioctl', () => {
    const subsets = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web
  subsets: [{name: v1, labels: {app: web}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - route:
    - destination:
        host: web
        subset: v2
`;
    const f = file('subsets.yaml', MESH + '---\n' + subsets);
    const r = ambit(['--use-kube=false', '-n', 'shop', '--analyzer', 'virtualservice.DestinationRuleAnalyzer', f]);
    assert.equal(r.status, 79, r.stderr);
    // The VirtualService starts on line 30; its destination's host is on line 38.
    assert.equal(r.stdout, `Error [IST0101] (VirtualService shop/web ${f}:38) Referenced host+subset in destinationrule not found: "web+v2"\n`);
  });

  it('-o json and -o yaml print the messages and set no exit code', () => {
    const f = file('migration.yaml', MESH + '---\n' + MIGRATION);
    const json = ambit(['--use-kube=false', '-A', '-o', 'json', f]);
    assert.equal(json.status, 0);
    const messages = JSON.parse(json.stdout) as Array<Record<string, string>>;
    assert.deepEqual(messages.map((m) => [m.code, m.level, m.origin, m.reference]), [
      ['IST0106', 'Error', 'PeerAuthentication shop/strict', `${f}:32`],
      ['IST0167', 'Warning', 'Sidecar shop/default', `${f}:23`],
    ]);
    const yaml = ambit(['--use-kube=false', '-A', '-o', 'yaml', f]);
    assert.match(yaml.stdout, /^- code: IST0106\n  documentationUrl: https:\/\/istio\.io\/latest\/docs\/reference\/config\/analysis\/ist0106\/\?ref=istioctl-analyze\n/);
  });

  it('--suppress drops a code on matching resources and warns about an unknown code', () => {
    const f = file('migration.yaml', MESH + '---\n' + MIGRATION);
    const r = ambit(['--use-kube=false', '-A', '-S', 'IST0106=PeerAuthentication shop/*', '-S', 'IST9999=Pod x', f]);
    assert.equal(r.status, 0);
    assert.doesNotMatch(r.stdout, /IST0106/);
    assert.match(r.stdout, /IST0167/);
    assert.match(r.stderr, /^Warning: Supplied message code 'IST9999' is an unknown message code and will not have any effect\.$/m);
  });

  it('a file that cannot be parsed: the problem on stderr and exit 65 (0 with --ignore-unknown)', () => {
    const f = file('broken.yaml', 'kind: [unclosed\n');
    const r = ambit(['--use-kube=false', f]);
    assert.equal(r.status, 65);
    assert.match(r.stderr, /broken\.yaml:\d+:\d+: error: YAML syntax error/);
    assert.match(r.stderr, /No validation issues found when analyzing namespace: default \(but 1 file could not be parsed\)\.\nError: Some files couldn't be parsed\.\n$/);
    assert.equal(ambit(['--use-kube=false', '--ignore-unknown', f]).status, 0);
  });

  it('objects that name no namespace are in the one analyzed (-n), as istioctl sets them', () => {
    const policy = 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ap1}\nspec:\n  selector: {matchLabels: {app: nothing}}\n';
    const r = ambit(['--use-kube=false', '-n', 'shop', file('no-ns.yaml', MESH + '---\n' + policy)]);
    assert.match(r.stdout, /^Warning \[IST0127\] \(AuthorizationPolicy shop\/ap1 /);
  });

  it('an empty file is no parse error; a malformed Sidecar is a schema error, not a crash', () => {
    const empty = ambit(['--use-kube=false', file('empty.yaml', '# nothing yet\n')]);
    assert.equal(empty.status, 0, empty.stderr);
    const odd = file('odd.yaml', 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: odd\n  namespace: shop\n  annotations: {galley.istio.io/analyze-suppress: 5}\nspec: {workloadSelector: {labels: [1, 2]}}\n');
    const r = ambit(['--use-kube=false', '-A', odd]);
    assert.equal(r.status, 79, r.stderr);
    assert.equal(
      r.stdout,
      `Error [IST0106] (Sidecar shop/odd ${odd}:1) Schema validation error: metadata.annotations: expected a map of strings\n` +
        `Error [IST0106] (Sidecar shop/odd ${odd}:1) Schema validation error: spec.workloadSelector.labels: expected a map of strings\n`,
    );
  });

  it('bad flags are refused with the value named', () => {
    const r = ambit(['--use-kube=false', '-o', 'table', file('mesh.yaml', MESH)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /table not a valid option for format\. See ambit analyze --help/);
    assert.match(ambit(['--use-kube=false', '--failure-threshold', 'fatal', file('mesh.yaml', MESH)]).stderr, /invalid argument "fatal" for "--failure-threshold" flag/);
    assert.match(ambit(['--use-kube=false', '-S', 'IST0102', file('mesh.yaml', MESH)]).stderr, /IST0102 is not a valid suppression value/);
    assert.match(ambit(['--use-kube=false']).stderr, /no files to analyze/);
  });

  it('-L lists the analyzers', () => {
    const r = ambit(['-L']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^\* auth\.AuthorizationPoliciesAnalyzer:\n {4}Checks the validity of authorization policies\n/);
    assert.match(r.stdout, /^\* waypoint\.UseWaypointAnalyzer:$/m);
  });
});

describe('ambit analyze on a cluster', () => {
  it("reads the kinds the supervisor does not list (Istio's Gateway, Sidecar, EnvoyFilter) from the cluster's API server", async () => {
    const store = new ResourceStore();
    store.put({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'ingress', namespace: 'shop' }, spec: { servers: [{ hosts: ['shop.example.com'] }] } });
    store.put({ apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', metadata: { name: 'default', namespace: 'shop' }, spec: {} });
    store.put({ apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { name: 'lua', namespace: 'shop' }, spec: {} });
    store.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: 'shop' }, data: {} });
    const api = await TestApiServer.start({ store, dir });
    try {
      const got = await clusterForeignObjects(api.kubeconfigPath);
      assert.deepEqual(got.map((o) => `${o.type.kind} ${(o.raw.metadata as { name: string }).name}`).sort(), ['EnvoyFilter lua', 'Gateway ingress', 'Sidecar default']);
      assert.deepEqual(got.find((o) => o.type.kind === 'Gateway')!.raw.spec, { servers: [{ hosts: ['shop.example.com'] }] });
    } finally {
      await api.close();
    }
  });
});
