// OpenAPI v3 as kubectl reads it: an index of every served group-version, documents whose kinds carry their
// group-version-kind, patch operations that say the server validates fields (so kubectl does not validate against
// these schemas itself) and offer no strategic merge (so kubectl keeps its compiled-in patch logic), and schemas from
// the committed file for built-ins and from a stored CRD for custom resources.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OpenApiV3 } from '../../src/apiserver/openapi.js';
import { ServedTypes } from '../../src/apiserver/discovery.js';
import { ResourceStore, type KubeObject } from '../../src/apiserver/store.js';

type Doc = { paths: Record<string, { patch: Record<string, unknown> }>; components: { schemas: Record<string, Record<string, unknown>> } };

describe('OpenApiV3', () => {
  const store = new ResourceStore();
  const served = new ServedTypes();
  const openapi = new OpenApiV3(served, store);
  const doc = (key: string) => JSON.parse(openapi.document(key)!.body) as Doc;
  const kindSchema = (d: Doc, kind: string) =>
    Object.values(d.components.schemas).find((s) => (s['x-kubernetes-group-version-kind'] as { kind: string }[] | undefined)?.some((g) => g.kind === kind));

  it('indexes every served group-version, each pointing at its document by hash', () => {
    const index = openapi.index() as { paths: Record<string, { serverRelativeURL: string }> };
    for (const key of ['api/v1', 'apis/apps/v1', 'apis/security.istio.io/v1', 'apis/gateway.networking.k8s.io/v1']) {
      assert.equal(index.paths[key]?.serverRelativeURL, `/openapi/v3/${key}?hash=${openapi.document(key)!.hash}`, key);
    }
    assert.equal(openapi.document('apis/nothing.example.com/v1'), undefined);
  });

  it("gives a built-in kind its schema and everything it refers to, and every kind a validating patch without strategic merge", () => {
    const core = doc('api/v1');
    const pod = kindSchema(core, 'Pod')!;
    assert.deepEqual(pod['x-kubernetes-group-version-kind'], [{ group: '', version: 'v1', kind: 'Pod' }]);
    const refs = JSON.stringify(core.components.schemas).match(/#\/components\/schemas\/[^"]+/g) ?? [];
    for (const ref of new Set(refs)) assert.ok(ref.slice('#/components/schemas/'.length) in core.components.schemas, `dangling ${ref}`);
    const patch = core.paths['/api/v1/namespaces/{namespace}/pods/{name}']!.patch;
    assert.deepEqual(patch['x-kubernetes-group-version-kind'], { group: '', version: 'v1', kind: 'Pod' });
    assert.ok((patch.parameters as { name: string }[]).some((p) => p.name === 'fieldValidation'));
    assert.deepEqual(Object.keys((patch.requestBody as { content: object }).content).sort(), ['application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json']);
    assert.ok(core.paths['/api/v1/nodes/{name}'], 'a cluster-scoped kind has no namespace in its path');
  });

  it('takes a custom kind\'s schema from its stored CRD, and has none without one', () => {
    assert.equal(kindSchema(doc('apis/security.istio.io/v1'), 'AuthorizationPolicy'), undefined);
    store.put({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'authorizationpolicies.security.istio.io' },
      spec: {
        group: 'security.istio.io',
        names: { kind: 'AuthorizationPolicy', plural: 'authorizationpolicies' },
        scope: 'Namespaced',
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', description: 'the policy', properties: { action: { type: 'string' } } } } } } }],
      },
    } as unknown as KubeObject);
    const d = doc('apis/security.istio.io/v1');
    const ap = kindSchema(d, 'AuthorizationPolicy')!;
    assert.equal((ap.properties as Record<string, { description?: string }>).spec!.description, 'the policy');
    assert.deepEqual((ap.properties as Record<string, { allOf?: unknown }>).metadata!.allOf, [{ $ref: '#/components/schemas/V1.ObjectMeta' }]);
    assert.ok(d.components.schemas['V1.ObjectMeta'], 'with ObjectMeta');
    assert.ok('io.istio.security.v1.AuthorizationPolicy' in d.components.schemas, "named as apiextensions-apiserver names it");
  });

  it('the committed built-in schemas are those of the installed @kubernetes/client-node', async () => {
    const script = new URL('../../../scripts/gen-kube-openapi.mjs', import.meta.url);
    const { generate, OUTPUT } = (await import(script.href)) as { generate: () => Promise<string>; OUTPUT: string };
    assert.equal(await generate(), readFileSync(OUTPUT, 'utf8'), 'run: npm run build && node scripts/gen-kube-openapi.mjs');
  });
});
