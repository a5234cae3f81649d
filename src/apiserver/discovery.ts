// What the API server serves: the registry's resource types plus those of the CustomResourceDefinitions users
// create, and the discovery documents kubectl and client-node read to map kinds and short names to URLs (legacy
// `/api`, `/apis`, `/apis/<g>/<v>`, and the aggregated `APIGroupDiscoveryList` of kubectl ≥1.27).
import { RESOURCE_TYPES, STORED_VERBS, discoveryOrder, groupVersion, type PrinterColumn, type ResourceType } from '../api/kinds.js';
import type { KubeObject } from './store.js';

/** Subresources every stored type may have, with the kind a request on them returns. */
interface Subresource {
  name: string;
  kind: { group: string; version: string; kind: string };
  verbs: readonly string[];
}

function subresourcesOf(t: ResourceType, version: string): Subresource[] {
  const self = { group: t.group, version, kind: t.kind };
  const out: Subresource[] = [];
  if (t.status) out.push({ name: 'status', kind: self, verbs: ['get', 'patch', 'update'] });
  if (t.scale) out.push({ name: 'scale', kind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] });
  if (t.group === '' && t.kind === 'Pod') {
    out.push({ name: 'log', kind: self, verbs: ['get'] });
    out.push({ name: 'exec', kind: { group: '', version: 'v1', kind: 'PodExecOptions' }, verbs: ['create', 'get'] });
  }
  if (t.group === '' && t.kind === 'ServiceAccount') out.push({ name: 'token', kind: { group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest' }, verbs: ['create'] });
  return out;
}

export class ServedTypes {
  private custom: ResourceType[] = [];
  private all: ResourceType[];

  /** `builtIn`: the types served without a CRD (a cluster without Istio's or the Gateway API's CRDs has fewer). */
  constructor(private readonly builtIn: readonly ResourceType[] = RESOURCE_TYPES) {
    this.all = discoveryOrder(builtIn);
  }

  /** Every served type, in discovery order. */
  get types(): readonly ResourceType[] {
    return this.all;
  }

  /** The type served at `/api(s)/<group>/<version>/…/<plural>`. */
  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.all.find((t) => t.group === group && t.plural === plural && t.versions.includes(version));
  }

  /** The type of an object's apiVersion and kind. */
  byKind(group: string, version: string, kind: string): ResourceType | undefined {
    return this.all.find((t) => t.group === group && t.kind === kind && t.versions.includes(version));
  }

  /**
   * Serves the custom resources of the given CRDs. A CRD for a type the registry already serves (the Gateway API's
   * and Istio's CRDs, which users apply as part of an install) changes nothing: the built-in serving stays.
   */
  setCustomResourceDefinitions(crds: KubeObject[]): void {
    const custom: ResourceType[] = [];
    for (const crd of crds) {
      const t = customType(crd);
      if (!t || this.builtIn.some((b) => b.group === t.group && b.plural === t.plural)) continue;
      custom.push(t);
    }
    this.custom = custom;
    this.all = discoveryOrder([...this.builtIn, ...custom]);
  }

  /** Whether a type comes from a user's CRD (deleting the CRD deletes its objects). */
  isCustom(t: ResourceType): boolean {
    return this.custom.includes(t);
  }

  // ---- legacy discovery ---------------------------------------------------------------------------------------------

  apiVersions(serverAddress: string): unknown {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
  }

  apiGroupList(): unknown {
    return { kind: 'APIGroupList', apiVersion: 'v1', groups: this.groups().map((g) => this.apiGroup(g)!) };
  }

  apiGroup(group: string): Record<string, unknown> | undefined {
    const versions = this.versionsOf(group);
    if (!group || versions.length === 0) return undefined;
    const gvs = versions.map((version) => ({ groupVersion: groupVersion(group, version), version }));
    return { name: group, versions: gvs, preferredVersion: gvs[0] };
  }

  apiResourceList(group: string, version: string): unknown | undefined {
    const types = this.all.filter((t) => t.group === group && t.versions.includes(version));
    if (types.length === 0) return undefined;
    const resources: Record<string, unknown>[] = [];
    for (const t of types) {
      resources.push({
        name: t.plural,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: t.verbs ?? STORED_VERBS,
        ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
        ...(t.categories.length ? { categories: t.categories } : {}),
      });
      for (const s of subresourcesOf(t, version)) {
        resources.push({
          name: `${t.plural}/${s.name}`,
          singularName: '',
          namespaced: t.namespaced,
          ...(s.kind.group !== t.group ? { group: s.kind.group } : {}),
          ...(s.kind.version !== version ? { version: s.kind.version } : {}),
          kind: s.kind.kind,
          verbs: s.verbs,
        });
      }
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion(group, version), resources };
  }

  // ---- aggregated discovery (apidiscovery.k8s.io) -------------------------------------------------------------------

  /** `/api` (core: true) or `/apis` as an APIGroupDiscoveryList of the given apiVersion (v2 or v2beta1). */
  aggregated(core: boolean, apiVersion: string): unknown {
    const groups = core ? [''] : this.groups();
    return {
      kind: 'APIGroupDiscoveryList',
      apiVersion,
      metadata: {},
      items: groups.map((group) => ({
        metadata: { name: group },
        versions: this.versionsOf(group).map((version) => ({
          version,
          freshness: 'Current',
          resources: this.all
            .filter((t) => t.group === group && t.versions.includes(version))
            .map((t) => ({
              resource: t.plural,
              responseKind: { group: t.group, version, kind: t.kind },
              scope: t.namespaced ? 'Namespaced' : 'Cluster',
              singularResource: t.singular,
              verbs: t.verbs ?? STORED_VERBS,
              ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
              ...(t.categories.length ? { categories: t.categories } : {}),
              ...(() => {
                const subs = subresourcesOf(t, version);
                return subs.length ? { subresources: subs.map((s) => ({ subresource: s.name, responseKind: s.kind, verbs: s.verbs })) } : {};
              })(),
            })),
        })),
      })),
    };
  }

  /** Non-core groups in discovery order. */
  private groups(): string[] {
    const out: string[] = [];
    for (const t of this.all) if (t.group && !out.includes(t.group)) out.push(t.group);
    return out;
  }

  /** A group's versions, by kube's version priority (v1 > v1beta1 > v1alpha3 > v1alpha1). */
  private versionsOf(group: string): string[] {
    const versions = new Set<string>();
    for (const t of this.all) if (t.group === group) for (const v of t.versions) versions.add(v);
    return [...versions].sort(compareVersions);
  }
}

/** kube-aware version order: GA before beta before alpha, higher numbers first; others last, by name. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [3, 0, 0, v] as const;
    return [m[2] === undefined ? 0 : m[2] === 'beta' ? 1 : 2, -Number(m[1]), -Number(m[3] ?? 0), v] as const;
  };
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return a.localeCompare(b);
}

/** The served type a CRD defines (undefined when it is too malformed to serve; validation reports why). */
function customType(crd: KubeObject): ResourceType | undefined {
  const spec = crd.spec as
    | {
        group?: string;
        scope?: string;
        names?: { kind?: string; plural?: string; singular?: string; shortNames?: string[]; categories?: string[] };
        versions?: { name?: string; served?: boolean; storage?: boolean; subresources?: { status?: unknown; scale?: unknown }; additionalPrinterColumns?: PrinterColumn[] }[];
      }
    | undefined;
  const names = spec?.names;
  if (!spec?.group || !names?.kind || !names.plural || !Array.isArray(spec.versions)) return undefined;
  const served = spec.versions.filter((v) => v.served !== false && v.name);
  if (served.length === 0) return undefined;
  const ordered = [...served].sort((a, b) => compareVersions(a.name!, b.name!));
  const first = ordered[0]!;
  return {
    group: spec.group,
    versions: ordered.map((v) => v.name!),
    kind: names.kind,
    plural: names.plural,
    singular: names.singular ?? names.kind.toLowerCase(),
    namespaced: spec.scope !== 'Cluster',
    shortNames: names.shortNames ?? [],
    categories: names.categories ?? [],
    status: first.subresources?.status !== undefined,
    ...(first.subresources?.scale !== undefined ? { scale: true } : {}),
    printerColumns: first.additionalPrinterColumns?.length ? first.additionalPrinterColumns : [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
  };
}
