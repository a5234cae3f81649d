// The loader on real files, directories and streams: multi-document YAML, JSON, `kind: List`, stdin, unreadable
// paths, YAML syntax errors confined to their document, unknown kinds and duplicates.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';
import { formatIssue, loadPaths, parseText, type LoadResult } from '../../src/config/loader.js';
import { RFC1123_LABEL_RULE, RFC1123_SUBDOMAIN_RULE, invalid } from '../support/kube-messages.js';

// Tests run from dist/test/config; fixtures stay in the source tree.
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = join(REPO, 'test/fixtures/config');
const fx = (p: string) => join(FIXTURES, p);

/** File names relative to the fixtures folder, so expectations read like the files. */
const short = (file: string) => (file.startsWith(FIXTURES) ? relative(FIXTURES, file) : file);
const issuesOf = (r: LoadResult) => r.issues.map((i) => formatIssue({ ...i, location: { ...i.location, file: short(i.location.file) } }));
const summary = (r: LoadResult) =>
  r.objects.map((o) => `${o.resource.kind} ${o.resource.metadata.namespace ?? '-'}/${o.resource.metadata.name} @${short(o.location.file)}:${o.location.line}:${o.location.column}`);

describe('loadPaths', () => {
  it('loads one valid object of every supported kind with no issues', async () => {
    const r = await loadPaths([fx('ambient-demo.yaml')]);
    assert.deepEqual(issuesOf(r), []);
    assert.deepEqual(summary(r), [
      'Namespace -/bookinfo @ambient-demo.yaml:2:1',
      'ServiceAccount bookinfo/reviews @ambient-demo.yaml:10:1',
      'Deployment bookinfo/reviews-v1 @ambient-demo.yaml:16:1',
      'Service bookinfo/reviews @ambient-demo.yaml:39:1',
      'Pod bookinfo/sleep @ambient-demo.yaml:51:1',
      'Gateway bookinfo/waypoint @ambient-demo.yaml:63:1',
      'HTTPRoute bookinfo/reviews @ambient-demo.yaml:77:1',
      'GRPCRoute bookinfo/ratings-grpc @ambient-demo.yaml:98:1',
      'AuthorizationPolicy bookinfo/reviews-viewer @ambient-demo.yaml:110:1',
      'PeerAuthentication bookinfo/reviews-strict @ambient-demo.yaml:133:1',
      'RequestAuthentication bookinfo/jwt @ambient-demo.yaml:145:1',
      'DestinationRule bookinfo/reviews @ambient-demo.yaml:160:1',
      'VirtualService bookinfo/reviews @ambient-demo.yaml:173:1',
      'Telemetry bookinfo/waypoint-metrics @ambient-demo.yaml:188:1',
    ]);
    const pa = r.objects.find((o) => o.resource.kind === 'PeerAuthentication')!.resource;
    assert.equal(pa.kind, 'PeerAuthentication');
    // Integer YAML keys arrive as the strings the Kubernetes JSON would carry.
    if (pa.kind === 'PeerAuthentication') assert.deepEqual(pa.spec.portLevelMtls, { '9080': { mode: 'PERMISSIVE' } });
  });

  it('walks directories recursively in sorted order, reads only *.yaml/*.yml/*.json, last duplicate wins', async () => {
    const r = await loadPaths([fx('tree')]);
    assert.deepEqual(summary(r), [
      'Namespace -/demo @tree/10-namespace.yaml:1:1',
      'Deployment demo/server @tree/apps/deployment.yml:1:1',
      'Service demo/server @tree/apps/deployment.yml:14:1',
      'ServiceAccount demo/client @tree/z-other.yaml:6:1',
    ]);
    assert.deepEqual(issuesOf(r), [
      'tree/apps/policies/authz.json:8:48: error: AuthorizationPolicy demo/allow-client: spec.rules[0].from[0].source.serviceAccounts: Cannot set serviceAccounts with namespaces or principals',
      `tree/z-other.yaml:6:1: warning: ServiceAccount demo/client: duplicate object, also defined at ${fx('tree/10-namespace.yaml')}:8:1; the last definition wins`,
    ]);
    const sa = r.objects.find((o) => o.resource.kind === 'ServiceAccount')!;
    assert.deepEqual(sa.resource.metadata.labels, { copy: 'second' });
    // A kind the registry serves but the mesh does not read is kept aside, without an issue.
    assert.deepEqual(r.others.map((o) => `${o.type.kind} @${o.location.file.slice(FIXTURES.length + 1)}:${o.location.line}:${o.location.column}`), ['ConfigMap @tree/z-other.yaml:1:1']);
  });

  it('keeps loading the other documents of a file when one has a YAML syntax error', async () => {
    const r = await loadPaths([fx('broken.yaml')]);
    assert.deepEqual(summary(r), ['Namespace -/before @broken.yaml:1:1', 'Namespace -/after @broken.yaml:10:1']);
    assert.deepEqual(issuesOf(r), ['broken.yaml:9:1: error: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]']);
  });

  it('reports unreadable paths and empty directories as issues and still loads the rest', async () => {
    const missing = join(FIXTURES, 'does-not-exist.yaml');
    const r = await loadPaths([missing, fx('empty-dir'), fx('broken.yaml')]);
    assert.deepEqual(r.issues.slice(0, 2).map(formatIssue), [
      `${missing}: error: cannot read: no such file or directory`,
      `${fx('empty-dir')}: warning: no *.yaml, *.yml, *.json files found`,
    ]);
    assert.equal(r.objects.length, 2);
  });

  it('says a URL is not read (kubectl would fetch it), rather than that no such file exists', async () => {
    const url = 'https://raw.githubusercontent.com/istio/istio/master/samples/sleep/sleep.yaml';
    const r = await loadPaths([url, fx('broken.yaml')]);
    assert.equal(formatIssue(r.issues[0]!), `${url}: error: cannot read: URLs are not read; download the file and pass its path`);
    assert.equal(r.objects.length, 2);
  });

  it('says so when a file named on its own holds no object; an empty file in a directory is a warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ambit-loader-'));
    try {
      writeFileSync(join(dir, 'empty.yaml'), '');
      writeFileSync(join(dir, 'comments.yaml'), '# nothing here yet\n---\n# nor here\n');
      writeFileSync(join(dir, 'ns.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n');
      const r = await loadPaths([join(dir, 'empty.yaml'), join(dir, 'comments.yaml'), '-', dir], Readable.from([]));
      assert.deepEqual(r.issues.map(formatIssue), [
        `${join(dir, 'empty.yaml')}: error: no objects found: the file is empty or holds only comments`,
        `${join(dir, 'comments.yaml')}: error: no objects found: the file is empty or holds only comments`,
        `<stdin>: error: no objects found: the file is empty or holds only comments`,
        `${join(dir, 'comments.yaml')}: warning: no objects found: the file is empty or holds only comments`,
        `${join(dir, 'empty.yaml')}: warning: no objects found: the file is empty or holds only comments`,
      ]);
      assert.deepEqual(summary(r), [`Namespace -/ns @${join(dir, 'ns.yaml')}:1:1`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads '-' from the given stream, named <stdin>, together with files", async () => {
    const text = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: piped}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: svc}\nspec: {ports: [{port: 0}]}\n';
    const stdin = Readable.from([Buffer.from(text.slice(0, 20)), Buffer.from(text.slice(20))]);
    const r = await loadPaths(['-', fx('tree/10-namespace.yaml')], stdin);
    assert.deepEqual(summary(r), [
      'Namespace -/piped @<stdin>:1:1',
      'Namespace -/demo @tree/10-namespace.yaml:1:1',
      'ServiceAccount demo/client @tree/10-namespace.yaml:8:1',
    ]);
    assert.deepEqual(issuesOf(r), ['<stdin>:8:23: error: Service default/svc: spec.ports[0].port: must be a port number 1-65535, found number 0']);
  });
});

describe('parseText', () => {
  it('reads JSON, including tab indentation, with positions', () => {
    const json = '{\n\t"apiVersion": "v1",\n\t"kind": "Pod",\n\t"metadata": {"name": "p", "namespace": "apps"},\n\t"spec": {"containers": [{"name": "Main"}]}\n}\n';
    const r = parseText(json, 'pod.json');
    assert.deepEqual(r.issues.map(formatIssue), [
      `pod.json:5:35: error: Pod apps/p: spec.containers[0].name: ${invalid('Main', RFC1123_LABEL_RULE)}`,
    ]);
    assert.equal(r.objects.length, 0);
  });

  it('unwraps kind: List and points into its items', () => {
    const yaml = 'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: one}\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata: {name: Two}\n';
    const r = parseText(yaml, 'list.yaml');
    assert.deepEqual(summary(r), ['Namespace -/one @list.yaml:4:3']);
    assert.deepEqual(r.issues.map(formatIssue), [
      `list.yaml:9:20: error: ServiceAccount default/Two: metadata.name: ${invalid('Two', RFC1123_SUBDOMAIN_RULE)}`,
    ]);
  });

  it("locates an object's fields, inside a kind: List too; a field not written has no location", () => {
    const yaml = '---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: web}\n  spec:\n    ports:\n    - {name: http, port: 80}\n    - name: admin\n      port: 8080\n';
    const [svc] = parseText(yaml, 'list.yaml').objects;
    assert.deepEqual(svc!.fieldLocation(['spec', 'ports', 1, 'port']), { file: 'list.yaml', line: 12, column: 13 });
    assert.equal(svc!.fieldLocation(['metadata', 'name'])?.line, 7);
    assert.equal(svc!.fieldLocation(['spec', 'ports', 2]), undefined);
    assert.equal(svc!.fieldLocation(['spec', 'selector']), undefined);
  });

  it('defaults the namespace of namespaced kinds to "default" and drops it from cluster-scoped ones', () => {
    const r = parseText('apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: ignored}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b}\n', 'ns.yaml');
    assert.deepEqual(r.issues, []);
    assert.equal(r.objects[0]!.resource.metadata.namespace, undefined);
    assert.equal(r.objects[1]!.resource.metadata.namespace, 'default');
  });

  it('skips empty and comment-only documents without issues', () => {
    const r = parseText('# nothing here\n---\n---\n# still nothing\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n', 'sparse.yaml');
    assert.deepEqual(r.issues, []);
    assert.deepEqual(summary(r), ['Namespace -/x @sparse.yaml:6:1']);
    assert.deepEqual(parseText('', 'empty.yaml'), { objects: [], issues: [], others: [] });
  });

  it('rejects duplicate mapping keys as a syntax error of that document only', () => {
    const r = parseText('apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n', 'dup.yaml');
    assert.deepEqual(r.issues.map(formatIssue), ['dup.yaml:5:3: error: YAML syntax error: Map keys must be unique']);
    assert.deepEqual(summary(r), ['Namespace -/c @dup.yaml:7:1']);
  });

  it('treats "key:" with no value as absent and points a missing value at its key', () => {
    const r = parseText('apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name:\n  labels:\n', 'null.yaml');
    assert.deepEqual(r.issues.map(formatIssue), ['null.yaml:4:3: error: ServiceAccount default/<unnamed>: metadata.name: required']);
  });

  it('follows YAML aliases to the node in error', () => {
    const yaml = 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: n}\nspec:\n  rules:\n  - from: &src\n    - source: {ipBlocks: [bad]}\n  - from: *src\n';
    const r = parseText(yaml, 'alias.yaml');
    assert.deepEqual(r.issues.map(formatIssue), [
      'alias.yaml:7:27: warning: AuthorizationPolicy n/a: spec.rules[0].from[0].source.ipBlocks[0]: must be an IP address or CIDR, found "bad"',
      'alias.yaml:7:27: warning: AuthorizationPolicy n/a: spec.rules[1].from[0].source.ipBlocks[0]: must be an IP address or CIDR, found "bad"',
    ]);
  });

  it('caps alias expansion so a "billion laughs" document is an error, not an outage', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
    const r = parseText(`${lines.join('\n')}\n`, 'laughs.yaml');
    assert.equal(r.objects.length, 0);
    assert.equal(r.issues.length, 1);
    assert.match(formatIssue(r.issues[0]!), /^laughs\.yaml:1:1: error: YAML: .*alias/i);
  });
});

describe('parseText: unknown fields and kinds', () => {
  // A workload policy whose selector is misspelt: kube-apiserver refuses it; applied as written it would hold for the
  // whole namespace.
  const TYPO = 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ap, namespace: shop}\nspec:\n  selectr:\n    matchLabels: {app: web}\n  action: DENY\n  rules: [{}]\n';

  it('refuses an object with an unknown field by default (strict), one error per field at its key', () => {
    const r = parseText(TYPO, 'ap.yaml');
    assert.deepEqual(r.issues.map(formatIssue), ['ap.yaml:5:3: error: AuthorizationPolicy shop/ap: unknown field "spec.selectr"']);
    assert.equal(r.issues[0]!.unknownField, true);
    assert.deepEqual(r.objects, []);
  });

  it('warn loads the object and says so; ignore loads it silently', () => {
    const warned = parseText(TYPO, 'ap.yaml', { validate: 'warn' });
    assert.deepEqual(warned.issues.map(formatIssue), ['ap.yaml:5:3: warning: AuthorizationPolicy shop/ap: unknown field "spec.selectr"']);
    assert.deepEqual(summary(warned), ['AuthorizationPolicy shop/ap @ap.yaml:1:1']);
    const ignored = parseText(TYPO, 'ap.yaml', { validate: 'ignore' });
    assert.deepEqual(ignored.issues, []);
    assert.deepEqual(summary(ignored), ['AuthorizationPolicy shop/ap @ap.yaml:1:1']);
  });

  it('checks the registry\'s other kinds for unknown fields and keeps them aside', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: "1"}\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  servers:\n  - port: {number: 80, protocol: HTTP, nmae: http}\n    hosts: ["*"]\n';
    const r = parseText(text, 'other.yaml');
    assert.deepEqual(r.issues.map(formatIssue), ['other.yaml:11:40: error: Gateway default/gw: unknown field "spec.servers[0].port.nmae"']);
    assert.deepEqual(r.objects, []);
    assert.deepEqual(r.others.map((o) => `${o.type.group || 'core'}/${o.type.kind} ${String((o.raw.metadata as { name: string }).name)} @${o.location.line}`), ['core/ConfigMap ok @1']);
  });

  it('reports an unknown apiVersion/kind as kubectl (name and namespace as written), or as a warning when asked', () => {
    const text = 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: shop}\n---\napiVersion: apps/v1beta2\nkind: Deployment\nmetadata: {name: web}\n';
    assert.deepEqual(parseText(text, 'f.yaml').issues.map(formatIssue), [
      'f.yaml:1:1: error: resource mapping not found for name: "w" namespace: "shop" from "f.yaml": no matches for kind "Widget" in version "example.com/v1"\nensure CRDs are installed first',
      'f.yaml:5:1: error: resource mapping not found for name: "web" namespace: "" from "f.yaml": no matches for kind "Deployment" in version "apps/v1beta2"\nensure CRDs are installed first',
    ]);
    assert.deepEqual(parseText(text, 'f.yaml', { unknownKinds: 'warning' }).issues.map(formatIssue), [
      'f.yaml:1:1: warning: Widget shop/w: no matches for kind "Widget" in version "example.com/v1", skipped',
      'f.yaml:5:1: warning: Deployment web: no matches for kind "Deployment" in version "apps/v1beta2", skipped',
    ]);
  });
});

describe('formatIssue', () => {
  it('leaves out the parts that are unknown', () => {
    assert.equal(
      formatIssue({ severity: 'error', location: { file: 'a.yaml', line: 3, column: 7 }, object: 'AuthorizationPolicy foo/bar', path: 'spec.rules[0].when[1].key', message: 'required' }),
      'a.yaml:3:7: error: AuthorizationPolicy foo/bar: spec.rules[0].when[1].key: required',
    );
    assert.equal(formatIssue({ severity: 'warning', location: { file: 'a.yaml', line: 1, column: 1 }, message: 'm' }), 'a.yaml:1:1: warning: m');
    assert.equal(formatIssue({ severity: 'error', location: { file: 'dir', line: 0, column: 0 }, message: 'm' }), 'dir: error: m');
  });
});
