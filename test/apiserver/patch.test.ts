// PATCH semantics and errors against what kube-apiserver does: merge patch, JSON patch (evanphx/json-patch v4's
// behaviour and wording), strategic merge patch with the bodies kubectl apply / rollout restart send, and the
// simplified server-side apply with managedFields and conflicts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  APPLY_PATCH,
  JSON_PATCH,
  MERGE_PATCH,
  PatchError,
  STRATEGIC_MERGE_PATCH,
  applyJsonPatch,
  applyMergePatch,
  applyPatch,
  applyServerSideApply,
  applyStrategicMergePatch,
  updateManagedFields,
  type Json,
  type JsonObject,
} from '../../src/apiserver/patch.js';

const NOW = new Date('2025-01-02T03:04:05.678Z');
const LATER = new Date('2025-01-02T04:00:00Z');
const REJECTED = 'the server rejected our request due to an error in our request';

/** Asserts `action` throws a PatchError with these fields (and returns it for further checks). */
function throwsPatchError(action: () => unknown, expected: Partial<Pick<PatchError, 'code' | 'reason' | 'message' | 'detail' | 'causes'>>): PatchError {
  let caught: unknown;
  try {
    action();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PatchError, `expected a PatchError, got ${String(caught)}`);
  for (const [key, value] of Object.entries(expected)) assert.deepEqual(caught[key as keyof PatchError], value, key);
  return caught;
}

function deployment(): JsonObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', labels: { app: 'web' }, annotations: { 'deployment.kubernetes.io/revision': '1' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'nginx:1.26',
              args: ['-g', 'daemon off;'],
              ports: [{ containerPort: 80, protocol: 'TCP' }, { containerPort: 8080, protocol: 'TCP' }],
              env: [{ name: 'A', value: '1' }, { name: 'C', value: '3' }],
            },
          ],
          tolerations: [{ key: 'a', operator: 'Exists' }],
        },
      },
    },
    status: { replicas: 2, conditions: [{ type: 'Available', status: 'True' }] },
  };
}

function containerOf(object: JsonObject, index = 0): JsonObject {
  return ((((object.spec as JsonObject).template as JsonObject).spec as JsonObject).containers as JsonObject[])[index]!;
}

describe('applyMergePatch (RFC 7386)', () => {
  it('merges objects, deletes on null and replaces arrays and scalars', () => {
    const target = { a: { b: 1, c: 2 }, list: [1, 2, 3], keep: 'x' };
    const result = applyMergePatch(target, { a: { b: null, d: { e: 1 } }, list: [4], keep: 'y', added: true });
    assert.deepEqual(result, { a: { c: 2, d: { e: 1 } }, list: [4], keep: 'y', added: true });
    assert.deepEqual(target, { a: { b: 1, c: 2 }, list: [1, 2, 3], keep: 'x' }, 'the target is not mutated');
  });

  it('drops null members of values it adds, keeps null array elements, and replaces with a non-object patch', () => {
    assert.deepEqual(applyMergePatch({ a: 'x' }, { a: { b: null, c: 1 }, n: [null, { d: null }] }), { a: { c: 1 }, n: [null, {}] });
    assert.deepEqual(applyMergePatch({ a: 1 }, ['x']), ['x']);
    assert.deepEqual(applyMergePatch({ a: 1 }, 'text'), 'text');
  });

  it('keeps a __proto__ key as data', () => {
    const result = applyMergePatch({}, JSON.parse('{"__proto__":{"polluted":true}}') as Json) as JsonObject;
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.ok(Object.hasOwn(result, '__proto__'));
    assert.deepEqual(result['__proto__'], { polluted: true });
  });
});

describe('applyJsonPatch (RFC 6902, evanphx/json-patch v4)', () => {
  it('applies add, remove, replace, move, copy and test with escaped tokens and array positions', () => {
    const target = { metadata: { labels: { 'a/b': 'x', 'c~d': 'y' } }, list: [1, 2, 3] };
    const result = applyJsonPatch(target, [
      { op: 'test', path: '/metadata/labels/a~1b', value: 'x' },
      { op: 'replace', path: '/metadata/labels/c~0d', value: 'z' },
      { op: 'add', path: '/list/-', value: 4 },
      { op: 'add', path: '/list/0', value: 0 },
      { op: 'remove', path: '/list/-1' },
      { op: 'copy', from: '/list/1', path: '/first' },
      { op: 'move', from: '/metadata/labels/a~1b', path: '/moved' },
      { op: 'add', path: '/obj', value: { nested: [1] } },
    ]);
    assert.deepEqual(result, { metadata: { labels: { 'c~d': 'z' } }, list: [0, 1, 2, 3], first: 1, moved: 'x', obj: { nested: [1] } });
    assert.deepEqual(target, { metadata: { labels: { 'a/b': 'x', 'c~d': 'y' } }, list: [1, 2, 3] }, 'the target is not mutated');
  });

  it('follows v4 where it departs from the RFC', () => {
    // replace of a missing member adds it; test of a missing member passes for null; copy from a missing member copies null.
    assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'replace', path: '/b', value: 2 }]), { a: 1, b: 2 });
    assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'test', path: '/missing', value: null }]), { a: 1 });
    assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'copy', from: '/missing', path: '/b' }]), { a: 1, b: null });
  });

  it('answers an operation that does not apply with the generic 422, keeping the library wording as the detail', () => {
    const target = { metadata: { labels: { app: 'web' } }, list: [1] };
    const cases: [Json, string][] = [
      [[{ op: 'test', path: '/metadata/labels/app', value: 'db' }], 'testing value /metadata/labels/app failed: test failed'],
      [[{ op: 'remove', path: '/metadata/labels/x' }], "error in remove for path: '/metadata/labels/x': Unable to remove nonexistent key: x: missing value"],
      [[{ op: 'replace', path: '/spec/nope/x', value: 1 }], 'replace operation does not apply: doc is missing path: /spec/nope/x: missing value'],
      [[{ op: 'replace', path: '/list/5', value: 1 }], 'replace operation does not apply: doc is missing key: /list/5: missing value'],
      [[{ op: 'add', path: '/a/b', value: 1 }], 'add operation does not apply: doc is missing path: "/a/b": missing value'],
      [[{ op: 'add', path: '/list/3', value: 1 }], "error in add for path: '/list/3': Unable to access invalid index: 3: invalid index referenced"],
      [[{ op: 'move', from: '/nope/x', path: '/y' }], 'move operation does not apply: doc is missing from path: /nope/x: missing value'],
      [[{ op: 'test', path: '/list/x', value: 1 }], `error in test for path: '/list/x': strconv.Atoi: parsing "x": invalid syntax`],
      [[{ op: 'frobnicate', path: '/a' }], 'Unexpected kind: frobnicate'],
      [[{ path: '/a' }], 'Unexpected kind: unknown'],
      [[{ op: 'add', value: 1 }], 'add operation failed to decode path: operation missing path field: missing value'],
    ];
    for (const [operations, detail] of cases) {
      throwsPatchError(() => applyJsonPatch(target, operations), { code: 422, reason: 'Invalid', message: REJECTED, detail });
    }
  });

  it("bounds what copy operations add in all, as kube-apiserver's JSONPatchMaxCopyBytes does (3 MiB of JSON)", () => {
    // Each copy of /d into itself doubles it: 40 of them would ask for a trillion strings.
    const doubling: Json = Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '/d', path: `/d/c${i}` }));
    const patched = throwsPatchError(() => applyJsonPatch({ d: { s: 'x'.repeat(64 * 1024) } }, doubling), { code: 422, reason: 'Invalid', message: REJECTED });
    assert.match(patched.detail!, /^Unable to complete the copy, the accumulated size increase of copy is \d+, exceeding the limit 3145728$/);
    // Copies that stay under the bound still apply.
    const small = applyJsonPatch({ d: { s: 'x'.repeat(1024) } }, [{ op: 'copy', from: '/d', path: '/e' }, { op: 'copy', from: '/e', path: '/f' }]);
    assert.deepEqual(Object.keys(small), ['d', 'e', 'f']);
  });

  it('is atomic: a later failure leaves the target untouched', () => {
    const target = { a: 1 };
    throwsPatchError(() => applyJsonPatch(target, [{ op: 'replace', path: '/a', value: 2 }, { op: 'test', path: '/a', value: 1 }]), { code: 422 });
    assert.deepEqual(target, { a: 1 });
  });

  it('rejects bodies that do not decode as kube-apiserver does', () => {
    throwsPatchError(() => applyJsonPatch({}, { op: 'add' }), {
      code: 400,
      reason: 'BadRequest',
      message: 'error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp',
    });
    throwsPatchError(() => applyJsonPatch({}, ['add']), {
      code: 400,
      message: 'error decoding patch: json: cannot unmarshal string into Go value of type handlers.jsonPatchOp',
    });
    throwsPatchError(() => applyJsonPatch({}, [{ op: 'add', path: 7 }]), {
      code: 400,
      message: 'error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.path of type string',
    });
    const tooMany = Array.from({ length: 10001 }, () => ({ op: 'test', path: '/a', value: 1 }));
    throwsPatchError(() => applyJsonPatch({ a: 1 }, tooMany), {
      code: 413,
      reason: 'RequestEntityTooLarge',
      message: 'Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001',
    });
    assert.deepEqual(applyJsonPatch({ a: 1 }, null), { a: 1 }, 'a null body is an empty patch');
  });
});

describe('applyStrategicMergePatch', () => {
  const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

  it('changes a container image as kubectl apply sends it, keeping the rest of the container', () => {
    const live = deployment();
    const result = applyStrategicMergePatch(
      live,
      {
        metadata: { annotations: { [LAST_APPLIED]: '{"kind":"Deployment"}\n' } },
        spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'web' }], containers: [{ image: 'nginx:1.27', name: 'web' }] } } },
      },
      'Deployment',
    );
    const web = containerOf(result);
    assert.equal(web.image, 'nginx:1.27');
    assert.deepEqual(web.env, [{ name: 'A', value: '1' }, { name: 'C', value: '3' }]);
    assert.deepEqual(web.ports, [{ containerPort: 80, protocol: 'TCP' }, { containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual((result.metadata as JsonObject).annotations, { 'deployment.kubernetes.io/revision': '1', [LAST_APPLIED]: '{"kind":"Deployment"}\n' });
    assert.equal(containerOf(live).image, 'nginx:1.26', 'the target is not mutated');
  });

  it('adds an env var where $setElementOrder puts it', () => {
    const result = applyStrategicMergePatch(
      deployment(),
      {
        spec: {
          template: {
            spec: {
              '$setElementOrder/containers': [{ name: 'web' }],
              containers: [{ '$setElementOrder/env': [{ name: 'A' }, { name: 'B' }, { name: 'C' }], env: [{ name: 'B', value: '2' }], name: 'web' }],
            },
          },
        },
      },
      'Deployment',
    );
    assert.deepEqual(containerOf(result).env, [{ name: 'A', value: '1' }, { name: 'B', value: '2' }, { name: 'C', value: '3' }]);
  });

  it('removes an env var and a container port with $patch: delete', () => {
    const result = applyStrategicMergePatch(
      deployment(),
      {
        spec: {
          template: {
            spec: {
              '$setElementOrder/containers': [{ name: 'web' }],
              containers: [
                {
                  '$setElementOrder/env': [{ name: 'A' }],
                  '$setElementOrder/ports': [{ containerPort: 80 }],
                  env: [{ $patch: 'delete', name: 'C' }],
                  name: 'web',
                  ports: [{ $patch: 'delete', containerPort: 8080 }],
                },
              ],
            },
          },
        },
      },
      'Deployment',
    );
    assert.deepEqual(containerOf(result).env, [{ name: 'A', value: '1' }]);
    assert.deepEqual(containerOf(result).ports, [{ containerPort: 80, protocol: 'TCP' }]);
  });

  it('adds a label, and a restartedAt annotation on the pod template as kubectl rollout restart does', () => {
    const labelled = applyStrategicMergePatch(deployment(), { metadata: { labels: { tier: 'front' } } }, 'Deployment');
    assert.deepEqual((labelled.metadata as JsonObject).labels, { app: 'web', tier: 'front' });
    const restarted = applyStrategicMergePatch(
      deployment(),
      { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': '2025-01-02T03:04:05Z' } } } } },
      'Deployment',
    );
    const template = (restarted.spec as JsonObject).template as JsonObject;
    assert.deepEqual(template.metadata, { labels: { app: 'web' }, annotations: { 'kubectl.kubernetes.io/restartedAt': '2025-01-02T03:04:05Z' } });
    assert.equal(containerOf(restarted).image, 'nginx:1.26');
  });

  it('keeps server-only items among the patched ones by their live order', () => {
    const live = deployment();
    const spec = (live.spec as JsonObject).template as JsonObject;
    (spec.spec as JsonObject).containers = [{ name: 'a' }, { name: 'sidecar' }, { name: 'b' }];
    const result = applyStrategicMergePatch(
      live,
      { spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'a' }, { name: 'b' }, { name: 'c' }], containers: [{ name: 'c', image: 'c' }] } } } },
      'Deployment',
    );
    assert.deepEqual(
      ((((result.spec as JsonObject).template as JsonObject).spec as JsonObject).containers as JsonObject[]).map((c) => c.name),
      ['a', 'sidecar', 'b', 'c'],
    );
  });

  it('replaces lists without a merge strategy and deletes fields set to null', () => {
    const result = applyStrategicMergePatch(
      deployment(),
      {
        spec: {
          replicas: null,
          template: {
            spec: {
              tolerations: [{ key: 'b', operator: 'Exists', effect: null }],
              containers: [{ name: 'web', args: ['-v'] }],
            },
          },
        },
      },
      'Deployment',
    );
    assert.equal(Object.hasOwn(result.spec as JsonObject, 'replicas'), false);
    assert.deepEqual((((result.spec as JsonObject).template as JsonObject).spec as JsonObject).tolerations, [{ key: 'b', operator: 'Exists' }]);
    assert.deepEqual(containerOf(result).args, ['-v']);
  });

  it('obeys $retainKeys, $deleteFromPrimitiveList and $patch: replace|delete', () => {
    const recreate = applyStrategicMergePatch(deployment(), { spec: { strategy: { $retainKeys: ['type'], rollingUpdate: null, type: 'Recreate' } } }, 'Deployment');
    assert.deepEqual((recreate.spec as JsonObject).strategy, { type: 'Recreate' });

    const pod: JsonObject = { kind: 'Pod', metadata: { name: 'p', finalizers: ['a', 'b', 'c'] }, spec: { containers: [{ name: 'x' }, { name: 'y' }] } };
    const finalizers = applyStrategicMergePatch(pod, { metadata: { '$deleteFromPrimitiveList/finalizers': ['b'], '$setElementOrder/finalizers': ['a', 'c', 'd'], finalizers: ['d'] } }, 'Pod');
    assert.deepEqual((finalizers.metadata as JsonObject).finalizers, ['a', 'c', 'd']);

    const replacedList = applyStrategicMergePatch(pod, { spec: { containers: [{ name: 'z' }, { $patch: 'replace' }] } }, 'Pod');
    assert.deepEqual((replacedList.spec as JsonObject).containers, [{ name: 'z' }]);
    const replacedMap = applyStrategicMergePatch(pod, { metadata: { $patch: 'replace', name: 'p' } }, 'Pod');
    assert.deepEqual(replacedMap.metadata, { name: 'p' });
    const deletedMap = applyStrategicMergePatch(pod, { spec: { $patch: 'delete' } }, 'Pod');
    assert.deepEqual(deletedMap.spec, {});
    const merged = applyStrategicMergePatch(pod, { metadata: { finalizers: ['c', 'e'] } }, 'Pod');
    assert.deepEqual((merged.metadata as JsonObject).finalizers, ['a', 'b', 'c', 'e']);
  });

  it('merges Service ports by port and ownerReferences by uid', () => {
    const service: JsonObject = {
      kind: 'Service',
      metadata: { name: 's', ownerReferences: [{ uid: 'u1', name: 'o1' }] },
      spec: { ports: [{ port: 80, targetPort: 8080 }, { port: 443 }] },
    };
    const result = applyStrategicMergePatch(service, { metadata: { ownerReferences: [{ uid: 'u2', name: 'o2' }] }, spec: { ports: [{ port: 80, targetPort: 9090 }] } }, 'Service');
    assert.deepEqual((result.spec as JsonObject).ports, [{ port: 80, targetPort: 9090 }, { port: 443 }]);
    // Without $setElementOrder, strategicpatch puts items new to the list first (kubectl apply always sends one).
    assert.deepEqual((result.metadata as JsonObject).ownerReferences, [{ uid: 'u2', name: 'o2' }, { uid: 'u1', name: 'o1' }]);
  });

  it("answers malformed patches with kube-apiserver's codes and apimachinery's messages", () => {
    const pod: JsonObject = { kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'x' }] } };
    throwsPatchError(() => applyStrategicMergePatch(pod, { spec: { containers: [{ image: 'i' }] } }, 'Pod'), {
      code: 500,
      reason: '',
      message: 'map: map[image:i] does not contain declared merge key: name',
    });
    throwsPatchError(() => applyStrategicMergePatch(pod, { spec: { containers: [{ name: 'x', $patch: 'merge' }] } }, 'Pod'), {
      code: 500,
      message: 'merging lists cannot yet be specified in the patch',
    });
    throwsPatchError(() => applyStrategicMergePatch(pod, { spec: { $setElementOrder: [] } }, 'Pod'), {
      code: 400,
      reason: 'BadRequest',
      message: 'invalid patch format of setElementOrder list',
    });
    throwsPatchError(() => applyStrategicMergePatch(pod, { metadata: { $retainKeys: ['name'], labels: { a: 'b' } } }, 'Pod'), {
      code: 400,
      message: 'invalid patch format of retainKeys',
    });
    throwsPatchError(() => applyStrategicMergePatch(pod, { metadata: { $deleteFromPrimitiveList: ['a'] } }, 'Pod'), {
      code: 400,
      message: 'invalid patch format of primitive list',
    });
    const withFinalizers: JsonObject = { ...pod, metadata: { name: 'p', finalizers: [] } };
    throwsPatchError(() => applyStrategicMergePatch(withFinalizers, { metadata: { finalizers: [['a']] } }, 'Pod'), {
      code: 422,
      reason: 'Invalid',
      message: REJECTED,
      detail: 'lists of lists are not supported',
    });
    throwsPatchError(() => applyStrategicMergePatch(pod, { spec: { containers: [[1]] } }, 'Pod'), {
      code: 500,
      message: 'list element types are not identical: [[map[name:x]] [[1]]]',
    });
    throwsPatchError(
      () => applyStrategicMergePatch(pod, { spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'b' }] } }, 'Pod'),
      { code: 500, message: "The order in patch list:\n[map[name:b]]\n doesn't match $setElementOrder list:\n[map[name:a]]\n" },
    );
    throwsPatchError(() => applyStrategicMergePatch(pod, ['x'], 'Pod'), {
      code: 400,
      message: 'json: cannot unmarshal array into Go value of type map[string]interface {}',
    });
  });

  it('refuses custom resources with 415', () => {
    throwsPatchError(() => applyStrategicMergePatch({ kind: 'HTTPRoute' }, {}, 'HTTPRoute'), {
      code: 415,
      reason: 'UnsupportedMediaType',
      message:
        'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
    });
  });
});

describe('updateManagedFields', () => {
  it('gives a creating manager every field it set, leaving out identity, server-set fields and status', () => {
    const created = deployment();
    const managedFields = updateManagedFields(undefined, created, 'kubectl-client-side-apply', 'Update', 'apps/v1', NOW);
    assert.equal(managedFields.length, 1);
    const [entry] = managedFields;
    assert.deepEqual({ ...entry, fieldsV1: undefined }, {
      manager: 'kubectl-client-side-apply',
      operation: 'Update',
      apiVersion: 'apps/v1',
      time: '2025-01-02T03:04:05Z',
      fieldsType: 'FieldsV1',
      fieldsV1: undefined,
    });
    const fields = entry!.fieldsV1;
    assert.deepEqual(Object.keys(fields), ['f:metadata', 'f:spec']);
    assert.deepEqual(fields['f:metadata'], { 'f:annotations': { 'f:deployment.kubernetes.io/revision': {} }, 'f:labels': { 'f:app': {} } });
    const podSpec = ((fields['f:spec'] as JsonObject)['f:template'] as JsonObject)['f:spec'] as JsonObject;
    assert.deepEqual((podSpec['f:containers'] as JsonObject)['k:{"name":"web"}'], {
      '.': {},
      'f:args': {},
      'f:env': { 'k:{"name":"A"}': { '.': {}, 'f:name': {}, 'f:value': {} }, 'k:{"name":"C"}': { '.': {}, 'f:name': {}, 'f:value': {} } },
      'f:image': {},
      'f:name': {},
      'f:ports': { 'k:{"containerPort":80}': { '.': {}, 'f:containerPort': {}, 'f:protocol': {} }, 'k:{"containerPort":8080}': { '.': {}, 'f:containerPort': {}, 'f:protocol': {} } },
    });
    assert.deepEqual(podSpec['f:tolerations'], {});
  });

  it('moves changed fields to the updating manager and drops managers left with nothing', () => {
    const created = deployment();
    created.metadata = { ...(created.metadata as JsonObject), managedFields: updateManagedFields(undefined, created, 'creator', 'Update', 'apps/v1', NOW) as unknown as Json };
    const scaled = structuredClone(created);
    (scaled.spec as JsonObject).replicas = 5;
    const after = updateManagedFields(created, scaled, 'scaler', 'Update', 'apps/v1', LATER);
    assert.deepEqual(after.map((e) => e.manager), ['creator', 'scaler']);
    assert.deepEqual(after[1]!.fieldsV1, { 'f:spec': { 'f:replicas': {} } });
    assert.equal(after[1]!.time, '2025-01-02T04:00:00Z');
    assert.equal(((after[0]!.fieldsV1['f:spec'] as JsonObject)['f:replicas']), undefined, 'the creator lost spec.replicas');
    assert.deepEqual(updateManagedFields(created, structuredClone(created), 'noop', 'Update', 'apps/v1', LATER).map((e) => e.manager), ['creator']);
  });

  it('counts only status for the status subresource', () => {
    const before = deployment();
    const after = structuredClone(before);
    (after.status as JsonObject).replicas = 3;
    (after.spec as JsonObject).replicas = 9;
    const [entry] = updateManagedFields(before, after, 'controller', 'Update', 'apps/v1', NOW, 'status');
    assert.equal(entry!.subresource, 'status');
    assert.deepEqual(entry!.fieldsV1, { 'f:status': { 'f:replicas': {} } });
  });
});

describe('applyServerSideApply', () => {
  const applied = (replicas: number, labels: JsonObject = { app: 'web' }, containers: Json[] = [{ name: 'web', image: 'nginx:1.27' }]): JsonObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels },
    spec: { replicas, template: { spec: { containers } } },
  });

  it('creates from the applied configuration and records the fields it applied', () => {
    const { object, managedFields } = applyServerSideApply(undefined, applied(3), 'kubectl', { force: false, apiVersion: 'apps/v1', now: NOW });
    assert.equal((object.spec as JsonObject).replicas, 3);
    assert.deepEqual(managedFields, [
      {
        manager: 'kubectl',
        operation: 'Apply',
        apiVersion: 'apps/v1',
        time: '2025-01-02T03:04:05Z',
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:metadata': { 'f:labels': { 'f:app': {} } },
          'f:spec': {
            'f:replicas': {},
            'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } } } },
          },
        },
      },
    ]);
    assert.equal(
      JSON.stringify(managedFields[0]!.fieldsV1),
      '{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":{"f:containers":{"k:{\\"name\\":\\"web\\"}":{".":{},"f:image":{},"f:name":{}}}}}}}',
      'FieldsV1 is written in structured-merge-diff\'s order, "." first',
    );
    assert.deepEqual((object.metadata as JsonObject).managedFields, managedFields);
  });

  /** A Deployment created by client-side apply (an Update by kubectl-client-side-apply). */
  function createdByClientSideApply(): JsonObject {
    const live = deployment();
    (live.metadata as JsonObject).managedFields = updateManagedFields(undefined, live, 'kubectl-client-side-apply', 'Update', 'apps/v1', NOW) as unknown as Json;
    return live;
  }

  it("conflicts on a field another manager set to a different value, in kube-apiserver's words", () => {
    const live = createdByClientSideApply();
    throwsPatchError(() => applyServerSideApply(live, applied(5, { app: 'web' }, [{ name: 'web', image: 'nginx:1.26' }]), 'kubectl', { force: false, apiVersion: 'apps/v1', now: LATER }), {
      code: 409,
      reason: 'Conflict',
      message: 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas',
      causes: [{ reason: 'FieldManagerConflict', message: 'conflict with "kubectl-client-side-apply" using apps/v1', field: '.spec.replicas' }],
    });
  });

  it('lists several conflicts by manager', () => {
    const live = createdByClientSideApply();
    const other = applyServerSideApply(live, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', labels: { tier: 'a' } } }, 'other-applier', {
      force: false,
      apiVersion: 'apps/v1',
      now: LATER,
    }).object;
    const err = throwsPatchError(() => applyServerSideApply(other, applied(5, { app: 'web', tier: 'b' }, [{ name: 'web', image: 'nginx:1.27' }]), 'kubectl', { force: false, apiVersion: 'apps/v1', now: LATER }), {
      code: 409,
      message:
        'Apply failed with 3 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n' +
        '- .spec.replicas\n' +
        '- .spec.template.spec.containers[name="web"].image\n' +
        'conflicts with "other-applier":\n' +
        '- .metadata.labels.tier',
    });
    assert.deepEqual(err.causes!.map((c) => c.field), ['.spec.replicas', '.spec.template.spec.containers[name="web"].image', '.metadata.labels.tier']);
  });

  it('shares fields applied with the value they have, and takes them over with force', () => {
    const live = createdByClientSideApply();
    const shared = applyServerSideApply(live, applied(2, { app: 'web' }, [{ name: 'web', image: 'nginx:1.26' }]), 'kubectl', { force: false, apiVersion: 'apps/v1', now: LATER });
    const csa = shared.managedFields.find((e) => e.manager === 'kubectl-client-side-apply')!;
    assert.deepEqual((csa.fieldsV1['f:spec'] as JsonObject)['f:replicas'], {}, 'both own spec.replicas');

    const forced = applyServerSideApply(live, applied(5, { app: 'web' }, [{ name: 'web', image: 'nginx:1.26' }]), 'kubectl', { force: true, apiVersion: 'apps/v1', now: LATER });
    assert.equal((forced.object.spec as JsonObject).replicas, 5);
    const csaAfter = forced.managedFields.find((e) => e.manager === 'kubectl-client-side-apply')!;
    assert.equal((csaAfter.fieldsV1['f:spec'] as JsonObject)['f:replicas'], undefined, 'the forced field changed owner');
    assert.deepEqual(forced.managedFields.map((e) => e.operation), ['Apply', 'Update']);
    assert.equal(containerOf(forced.object).image, 'nginx:1.26');
    assert.deepEqual(containerOf(forced.object).env, [{ name: 'A', value: '1' }, { name: 'C', value: '3' }], 'fields nobody applied stay');
  });

  it('removes what the manager stopped applying unless someone else owns it', () => {
    const first = applyServerSideApply(
      undefined,
      applied(1, { app: 'web', tier: 'a' }, [{ name: 'web', image: 'w' }, { name: 'sidecar', image: 's' }]),
      'kubectl',
      { force: false, apiVersion: 'apps/v1', now: NOW },
    ).object;
    const labelled = structuredClone(first);
    ((labelled.metadata as JsonObject).labels as JsonObject).team = 'x';
    (labelled.metadata as JsonObject).managedFields = updateManagedFields(first, labelled, 'kubectl-label', 'Update', 'v1', NOW) as unknown as Json;

    const second = applyServerSideApply(labelled, applied(1, {}, [{ name: 'web', image: 'w' }]), 'kubectl', { force: false, apiVersion: 'apps/v1', now: LATER }).object;
    assert.deepEqual((second.metadata as JsonObject).labels, { team: 'x' }, "app and tier go, kubectl-label's team stays");
    assert.deepEqual(((((second.spec as JsonObject).template as JsonObject).spec as JsonObject).containers as JsonObject[]).map((c) => c.name), ['web']);

    const third = applyServerSideApply(second, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' } }, 'kubectl', { force: false, apiVersion: 'apps/v1', now: LATER }).object;
    assert.equal(Object.hasOwn(third, 'spec'), false, 'the emptied spec goes too');
  });

  it('refuses a configuration of another apiVersion or with managedFields', () => {
    throwsPatchError(() => applyServerSideApply(undefined, { ...applied(1), apiVersion: 'apps/v1beta1' }, 'kubectl', { force: false, apiVersion: 'apps/v1', now: NOW }), {
      code: 400,
      message: 'Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1',
    });
    throwsPatchError(() => applyServerSideApply(undefined, { ...applied(1), metadata: { name: 'web', managedFields: [] } }, 'kubectl', { force: false, apiVersion: 'apps/v1', now: NOW }), {
      code: 400,
      message: 'metadata.managedFields must be nil',
    });
  });
});

describe('applyPatch', () => {
  const context = { kind: 'Deployment', apiVersion: 'apps/v1', now: NOW };

  it('dispatches on the Content-Type, ignoring its parameters, and records the Update of the manager', () => {
    const merged = applyPatch(`${MERGE_PATCH}; charset=utf-8`, deployment(), { spec: { replicas: 4 } }, { ...context, manager: 'kubectl-scale' });
    assert.equal((merged.spec as JsonObject).replicas, 4);
    assert.deepEqual((merged.metadata as JsonObject).managedFields, [
      { manager: 'kubectl-scale', operation: 'Update', apiVersion: 'apps/v1', time: '2025-01-02T03:04:05Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:replicas': {} } } },
    ]);
    const patched = applyPatch(JSON_PATCH, deployment(), [{ op: 'replace', path: '/spec/replicas', value: 7 }], context);
    assert.equal((patched.spec as JsonObject).replicas, 7);
    const strategic = applyPatch(STRATEGIC_MERGE_PATCH, deployment(), { spec: { template: { spec: { containers: [{ name: 'web', image: 'x' }] } } } }, context);
    assert.equal(containerOf(strategic).image, 'x');
    const created = applyPatch(APPLY_PATCH, undefined, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { replicas: 1 } }, { ...context, manager: 'kubectl' });
    assert.equal((created.spec as JsonObject).replicas, 1);
    const custom = applyPatch(MERGE_PATCH, { kind: 'HTTPRoute', spec: { hostnames: ['a'] } }, { spec: { hostnames: ['b'] } }, { ...context, kind: 'HTTPRoute' });
    assert.deepEqual(custom.spec, { hostnames: ['b'] });
  });

  it('refuses unknown types, a strategic patch of a custom resource, and invalid PatchOptions', () => {
    throwsPatchError(() => applyPatch('application/json', deployment(), {}, context), {
      code: 415,
      message:
        'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml',
    });
    throwsPatchError(() => applyPatch(STRATEGIC_MERGE_PATCH, { kind: 'Gateway' }, {}, { ...context, kind: 'Gateway' }), { code: 415, reason: 'UnsupportedMediaType' });
    throwsPatchError(() => applyPatch(APPLY_PATCH, undefined, {}, context), {
      code: 422,
      reason: 'Invalid',
      message: 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
      causes: [{ reason: 'FieldValueRequired', message: 'Required value: is required for apply patch', field: 'fieldManager' }],
    });
    throwsPatchError(() => applyPatch(MERGE_PATCH, deployment(), {}, { ...context, force: false }), {
      code: 422,
      message: 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
    });
    throwsPatchError(() => applyPatch(MERGE_PATCH, deployment(), null, context), { code: 400, message: 'Invalid JSON Patch' });
    throwsPatchError(() => applyPatch(MERGE_PATCH, deployment(), [1], context), {
      code: 400,
      message: 'error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}',
    });
  });
});
