// Admission (the API server's checks and defaults beyond the schema): an object's namespace must exist, what
// kube-apiserver validates of pods and Deployments that the local cluster acts on, and the cluster IPs Services are
// given from the service range. Every write goes through here, from `ambit apply` and from the Kubernetes API alike.
import { posix } from 'node:path';
import { isNamespaced, type PodSpec, type Resource, type Service } from '../api/types.js';
import { InvalidObjectError } from '../api/errors.js';
import { typeOf, type ResourceType } from '../api/kinds.js';
import { dns1123SubdomainProblem } from '../api/schemas/common.js';
import { formatPath, validateResource } from '../api/validation.js';
import type { KubeObject, ResourceStore } from '../apiserver/store.js';
import { AddressPool } from './ipam.js';
import { CLUSTER_DNS_IP, POD_ADDRESSES_PER_NODE, SERVICE_CIDR } from './layout.js';
import type { NodeRuntime } from './nodes.js';
import { DEFAULT_TOKEN_EXPIRATION_SECONDS, MAX_TOKEN_EXPIRATION_SECONDS, MIN_TOKEN_EXPIRATION_SECONDS } from './tokens.js';

type Invalid = (field: string, message: string) => Error;

export class Admission {
  private readonly servicePool = new AddressPool(SERVICE_CIDR, [CLUSTER_DNS_IP, '10.96.0.1']);

  constructor(
    private readonly store: ResourceStore,
    private readonly nodes: readonly NodeRuntime[],
  ) {}

  /** Checks a mesh kind's object against the cluster and fills in what the cluster assigns (Service cluster IPs). */
  admit(input: Resource): Resource {
    if (!input || typeof input !== 'object' || !typeOf(input.apiVersion ?? '', input.kind)?.model) {
      throw new Error(`the server doesn't have a resource type "${(input as { kind?: string } | undefined)?.kind}"`);
    }
    const r = structuredClone(input);
    if (!r.metadata?.name) throw new Error('metadata.name: Required value');
    if (isNamespaced(r.kind)) {
      r.metadata.namespace ??= 'default';
      this.requireNamespace(r.metadata.namespace);
    } else delete r.metadata.namespace;
    const invalid: Invalid = (field, message) => new InvalidObjectError(r.kind, r.metadata.name, [{ field, message }]);
    // What kube-apiserver validates (names, labels, annotation size, replicas): the socket accepts objects from any
    // client, not only from the CLI's loader, which checks the same.
    const errors = validateResource(input).issues.filter((i) => i.severity === 'error').map((i) => ({ field: formatPath(i.path), message: i.message }));
    if (errors.length) throw new InvalidObjectError(r.kind, r.metadata.name, errors);
    if (r.kind === 'Pod' || r.kind === 'Deployment') {
      const spec = r.kind === 'Pod' ? r.spec : r.spec?.template?.spec;
      const field = r.kind === 'Pod' ? 'spec' : 'spec.template.spec';
      if (!spec?.containers?.length) throw invalid(`${field}.containers`, 'Required value');
      spec.containers.forEach((c, i) => {
        if (!c.name) throw invalid(`${field}.containers[${i}].name`, 'Required value');
        if (!c.command?.length) {
          throw invalid(
            `${field}.containers[${i}].command`,
            'Required value: images are not pulled in the local cluster; command must name the program to run on this machine',
          );
        }
      });
      if (r.kind === 'Deployment') {
        const capacity = this.nodes.length * POD_ADDRESSES_PER_NODE;
        if ((r.spec.replicas ?? 1) > capacity) {
          throw invalid(
            'spec.replicas',
            `Invalid value: ${r.spec.replicas}: must be less than or equal to ${capacity}, the pod addresses of this cluster's ${this.nodes.length} node(s)`,
          );
        }
        const labels = r.spec.template.metadata?.labels ?? {};
        const want = r.spec.selector?.matchLabels ?? {};
        if (Object.keys(want).length === 0) throw invalid('spec.selector', 'Required value');
        if (!Object.entries(want).every(([k, v]) => labels[k] === v)) {
          throw invalid('spec.template.metadata.labels', "Invalid value: `selector` does not match template `labels`");
        }
      }
      checkVolumes(spec, field, invalid);
      if (r.kind === 'Pod' && spec.nodeName && !this.nodes.some((n) => n.name === spec.nodeName)) {
        throw invalid('spec.nodeName', `Invalid value: "${spec.nodeName}": no such node (nodes: ${this.nodes.map((n) => n.name).join(', ')})`);
      }
    }
    if (r.kind === 'Service') this.assignClusterIP(r, invalid);
    // The namespace lifecycle controller's part: a namespace is Active until it is deleted.
    if (r.kind === 'Namespace') (r as Resource & { status?: unknown }).status = { phase: 'Active' };
    return r;
  }

  /** Admission of a kind the mesh does not read: a valid name, an existing namespace; CRDs go through the Kubernetes API. */
  admitOther(input: KubeObject, type: ResourceType): KubeObject {
    if (type.group === 'apiextensions.k8s.io') throw new Error('CustomResourceDefinitions are installed through the Kubernetes API: kubectl apply -f FILE');
    const r = structuredClone(input);
    if (!r.metadata?.name) throw new Error('metadata.name: Required value');
    // kube-apiserver's NameIsDNSSubdomain, the rule of every kind served here that the mesh does not read, and of
    // custom resources.
    const nameProblems = dns1123SubdomainProblem(r.metadata.name);
    if (nameProblems.length) throw new InvalidObjectError(type.kind, r.metadata.name, nameProblems.map((message) => ({ field: 'metadata.name', message })));
    if (type.namespaced) {
      r.metadata.namespace ??= 'default';
      this.requireNamespace(r.metadata.namespace);
    } else delete r.metadata.namespace;
    return r;
  }

  /** What a deleted object held goes back to its pool (a Service's cluster IP). */
  released(r: Resource): void {
    if (r.kind === 'Service' && r.spec.clusterIP && r.spec.clusterIP !== 'None') this.servicePool.release(r.spec.clusterIP);
  }

  private requireNamespace(namespace: string): void {
    if (!this.store.get('Namespace', undefined, namespace)) throw new Error(`namespaces "${namespace}" not found`);
  }

  private assignClusterIP(svc: Service, invalid: Invalid): void {
    const old = this.store.get('Service', svc.metadata.namespace, svc.metadata.name);
    const oldIP = old?.spec.clusterIP;
    const want = svc.spec.clusterIP;
    if (svc.spec.type && svc.spec.type !== 'ClusterIP') {
      throw invalid('spec.type', `Unsupported value: "${svc.spec.type}": supported values: "ClusterIP"`);
    }
    if (oldIP && want && want !== oldIP) throw invalid('spec.clusterIP', `Invalid value: "${want}": field is immutable`);
    if (oldIP) {
      svc.spec.clusterIP = oldIP;
    } else if (want === 'None') {
      // Headless: DNS returns the pods' addresses, no VIP.
    } else if (want) {
      if (!this.servicePool.contains(want)) {
        throw invalid('spec.clusterIP', `Invalid value: "${want}": provided IP is not in the valid range. The range of valid IPs is ${SERVICE_CIDR}`);
      }
      if (!this.servicePool.claim(want)) throw invalid('spec.clusterIP', `Invalid value: "${want}": provided IP is already allocated`);
    } else {
      svc.spec.clusterIP = this.servicePool.allocate();
    }
    svc.spec.clusterIPs = [svc.spec.clusterIP!];
    svc.spec.type = 'ClusterIP';
  }
}

/**
 * What kube-apiserver checks of the volumes the local cluster acts on: a projected service account token's lifetime
 * and path (a relative path inside the volume; Kubernetes reports it on the projected volume, not on the source), and
 * that every mounted volume exists.
 */
function checkVolumes(spec: PodSpec, field: string, invalid: Invalid): void {
  (spec.volumes ?? []).forEach((v, i) => {
    (v.projected?.sources ?? []).forEach((source, j) => {
      const token = source.serviceAccountToken;
      if (!token) return;
      const projected = `${field}.volumes[${i}].projected`;
      const seconds = token.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS;
      const expiration = `${projected}.sources[${j}].serviceAccountToken.expirationSeconds`;
      if (seconds < MIN_TOKEN_EXPIRATION_SECONDS) throw invalid(expiration, `Invalid value: ${seconds}: may not specify a duration less than 10 minutes`);
      if (seconds > MAX_TOKEN_EXPIRATION_SECONDS) throw invalid(expiration, `Invalid value: ${seconds}: may not specify a duration larger than 2^32 seconds`);
      if (!token.path) throw invalid(`${projected}.path`, 'Required value');
      const problem = localPathProblem(token.path);
      if (problem) throw invalid(`${projected}.path`, `Invalid value: ${JSON.stringify(token.path)}: ${problem}`);
    });
  });
  const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
  spec.containers.forEach((c, i) =>
    c.volumeMounts?.forEach((m, j) => {
      if (!volumes.has(m.name)) throw invalid(`${field}.containers[${i}].volumeMounts[${j}].name`, `Not found: ${JSON.stringify(m.name)}`);
    }),
  );
}

/** Kubernetes' ValidateLocalNonReservedPath: a path that stays inside its volume. */
function localPathProblem(path: string): string | undefined {
  if (posix.isAbsolute(path)) return 'must be a relative path';
  if (path.split('/').includes('..')) return "must not contain '..'";
  if (path.startsWith('..')) return "must not start with '..'";
  return undefined;
}
