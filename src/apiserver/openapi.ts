// OpenAPI v3, as kube-apiserver publishes it, for what kubectl reads from it: `kubectl explain` finds a kind's schema
// by its `x-kubernetes-group-version-kind` and walks its fields; `apply`/`create` read whether the server validates
// fields (a `patch` operation naming the kind and taking `fieldValidation`), so they leave validation to the server
// as before. The patch operations list no strategic-merge content type on purpose: kubectl then computes strategic
// merge patches from its compiled-in types, as it did when no OpenAPI was served, never from these schemas.
//
// Schemas come from two places. Built-in kinds: openapi/kube-schemas.json, generated from client-node's models
// (scripts/gen-kube-openapi.mjs), read on the first request. Custom resources, including Istio's and the Gateway
// API's kinds: the `openAPIV3Schema` of their stored CRD, as apiextensions-apiserver publishes it; a kind served
// without a stored CRD (Istio's, before its CRDs are applied) has no schema, and `kubectl explain` says so.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { groupVersion, type ResourceType } from '../api/kinds.js';
import type { ServedTypes } from './discovery.js';
import type { KubeObject, ResourceStore } from './store.js';

type Schema = Record<string, unknown>;

interface KubeSchemas {
  /** apiVersion → kind → schema name. */
  kinds: Record<string, Record<string, string>>;
  schemas: Record<string, Schema>;
}

const KUBE_SCHEMAS_FILE = new URL('../../../openapi/kube-schemas.json', import.meta.url);
const OBJECT_META = 'V1.ObjectMeta';
const REF_PREFIX = '#/components/schemas/';

let kubeSchemas: KubeSchemas | undefined;
function loadKubeSchemas(): KubeSchemas {
  kubeSchemas ??= JSON.parse(readFileSync(KUBE_SCHEMAS_FILE, 'utf8')) as KubeSchemas;
  return kubeSchemas;
}

/** `api/v1`, `apis/apps/v1`: a group-version's key in the index. */
function pathKey(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

export class OpenApiV3 {
  /** Documents by path key, with the CRDs' resourceVersions they were built from. */
  private readonly cache = new Map<string, { stamp: string; body: string; hash: string }>();

  constructor(
    private readonly served: ServedTypes,
    private readonly store: ResourceStore,
  ) {}

  /** `GET /openapi/v3`: every served group-version and where its document is. */
  index(): unknown {
    const paths: Record<string, { serverRelativeURL: string }> = {};
    for (const key of this.groupVersions().keys()) {
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${this.document(key)!.hash}` };
    }
    return { paths };
  }

  /** `GET /openapi/v3/<key>`: the document's JSON and its hash, or undefined for a group-version not served. */
  document(key: string): { body: string; hash: string } | undefined {
    const gv = this.groupVersions().get(key);
    if (!gv) return undefined;
    const crds = this.store.listObjects('apiextensions.k8s.io', 'CustomResourceDefinition');
    const stamp = crds.map((c) => c.metadata.resourceVersion).join(',');
    const cached = this.cache.get(key);
    if (cached?.stamp === stamp) return cached;
    const body = JSON.stringify(this.build(gv.group, gv.version, gv.types, crds));
    const built = { stamp, body, hash: createHash('sha512').update(body).digest('hex').toUpperCase() };
    this.cache.set(key, built);
    return built;
  }

  private groupVersions(): Map<string, { group: string; version: string; types: ResourceType[] }> {
    const out = new Map<string, { group: string; version: string; types: ResourceType[] }>();
    for (const t of this.served.types) {
      for (const v of t.versions) {
        const key = pathKey(t.group, v);
        const entry = out.get(key) ?? { group: t.group, version: v, types: [] };
        entry.types.push(t);
        out.set(key, entry);
      }
    }
    return out;
  }

  private build(group: string, version: string, types: ResourceType[], crds: KubeObject[]): unknown {
    const kube = loadKubeSchemas();
    const schemas: Record<string, Schema> = {};
    const paths: Record<string, unknown> = {};
    /** Adds a built-in schema and every one it refers to. */
    const include = (name: string) => {
      if (name in schemas) return;
      const schema = kube.schemas[name];
      if (!schema) return;
      schemas[name] = schema;
      for (const ref of refsIn(schema)) include(ref);
    };
    for (const t of types) {
      const gvk = { group, version, kind: t.kind };
      const builtin = kube.kinds[groupVersion(group, version)]?.[t.kind];
      let name: string | undefined;
      if (builtin) {
        include(builtin);
        name = builtin;
        schemas[name] = { ...schemas[name], 'x-kubernetes-group-version-kind': [gvk] };
      } else {
        const fromCrd = crdSchema(crds, t, version);
        if (fromCrd) {
          // apiextensions-apiserver's naming (the group reversed) and its metadata: the full ObjectMeta.
          name = `${group.split('.').reverse().join('.')}.${version}.${t.kind}`;
          include(OBJECT_META);
          const properties = { ...((fromCrd.properties as Schema | undefined) ?? {}), metadata: { description: 'Standard object\'s metadata.', allOf: [{ $ref: `${REF_PREFIX}${OBJECT_META}` }] } };
          schemas[name] = { ...fromCrd, type: 'object', properties, 'x-kubernetes-group-version-kind': [gvk] };
        }
      }
      paths[resourcePath(t, group, version)] = { patch: patchOperation(gvk, name) };
    }
    return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.33.0' }, paths, components: { schemas } };
  }
}

/** The `$ref` targets inside a schema. */
function refsIn(schema: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === '$ref' && typeof x === 'string' && x.startsWith(REF_PREFIX)) out.push(x.slice(REF_PREFIX.length));
        else walk(x);
      }
    }
  };
  walk(schema);
  return out;
}

/** The stored CRD's schema of a type's version, if its CRD is stored. */
function crdSchema(crds: KubeObject[], t: ResourceType, version: string): Schema | undefined {
  const crd = crds.find((c) => c.metadata.name === `${t.plural}.${t.group}`);
  const versions = (crd?.spec as { versions?: { name?: string; schema?: { openAPIV3Schema?: Schema } }[] } | undefined)?.versions;
  return versions?.find((v) => v.name === version)?.schema?.openAPIV3Schema;
}

function resourcePath(t: ResourceType, group: string, version: string): string {
  const base = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  return t.namespaced ? `${base}/namespaces/{namespace}/${t.plural}/{name}` : `${base}/${t.plural}/{name}`;
}

/** A patch operation as kube-apiserver describes it, less strategic merge (see the header). */
function patchOperation(gvk: { group: string; version: string; kind: string }, schemaName: string | undefined): unknown {
  const body = { schema: { type: 'object' } };
  return {
    operationId: `patch${gvk.kind}`,
    parameters: [
      { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'force', in: 'query', schema: { type: 'boolean', uniqueItems: true } },
    ],
    requestBody: { content: { 'application/apply-patch+yaml': body, 'application/json-patch+json': body, 'application/merge-patch+json': body }, required: true },
    responses: { '200': { description: 'OK', content: { 'application/json': { schema: schemaName ? { $ref: `${REF_PREFIX}${schemaName}` } : { type: 'object' } } } } },
    'x-kubernetes-action': 'patch',
    'x-kubernetes-group-version-kind': gvk,
  };
}
