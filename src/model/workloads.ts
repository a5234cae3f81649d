// Pods (and Deployment replicas that have no Pod yet) → istio.workload.Workload, following istiod's
// podWorkloadBuilder (pilot/pkg/serviceregistry/ambient/workloads.go).
import type { Deployment, Namespace, Node, Pod, PodSpec } from '../api/types.js';
import { LABEL_DATAPLANE_MODE } from '../api/types.js';
import type { PortList, Workload } from '../xds/types.js';
import { ipToBytes } from '../common/ip.js';
import type { MeshOptions } from './services.js';

/** What a workload is built from: a real Pod, or one replica of a Deployment standing in for a Pod not created yet. */
export interface WorkloadSource {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: PodSpec;
  /** Raw IPs (status.podIPs / podIP); empty for a replica without a Pod. */
  ips: string[];
  healthy: boolean;
  workloadName: string;
}

/** Everything around the source that the workload depends on, resolved by the index. */
export interface WorkloadContext {
  namespace: Namespace | undefined;
  services: Record<string, PortList>;
  authorizationPolicies: string[];
  /** The locality of the workload's node, if it has any. */
  locality: Workload['locality'];
}

/**
 * A node's locality as istiod reads it (ambient nodeLocality): the `topology.kubernetes.io/region` and `/zone` labels
 * and `topology.istio.io/subzone`; none when all three are missing or empty.
 */
export function nodeLocality(node: Node | undefined): Workload['locality'] {
  const labels = node?.metadata.labels ?? {};
  const region = labels['topology.kubernetes.io/region'] ?? '';
  const zone = labels['topology.kubernetes.io/zone'] ?? '';
  const subzone = labels['topology.istio.io/subzone'] ?? '';
  return region !== '' || zone !== '' || subzone !== '' ? { region, zone, subzone } : undefined;
}

export function podUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}//Pod/${namespace}/${name}`;
}

export function serviceAccountOf(spec: PodSpec | undefined): string {
  return spec?.serviceAccountName || spec?.serviceAccount || 'default';
}

/** A finished Pod (Succeeded/Failed) is gone for the mesh (kubeutil.CheckPodTerminal). */
function isTerminal(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

// A Job a CronJob created is named `<cronjob>-<scheduled time in minutes>` (8 to 10 digits).
const CRONJOB_JOB_NAME = /^(.+)-\d{8,10}$/;

/**
 * The workload name istiod gives a pod (kubeutil.GetWorkloadMetaFromPod): the `service.istio.io/workload-name` label,
 * else, for a pod with a generated name, its controller's name — a ReplicaSet's with the `-<pod-template-hash>` a
 * Deployment added stripped, a Job's with a CronJob's `-<timestamp>` stripped, any other controller's (bare
 * ReplicaSet, StatefulSet, DaemonSet…) as is — else the pod's own name.
 */
export function podWorkloadName(pod: Pod): string {
  const labels = pod.metadata.labels ?? {};
  const explicit = labels['service.istio.io/workload-name'];
  if (explicit !== undefined) return explicit;
  if (!pod.metadata.generateName) return pod.metadata.name;
  const controller = pod.metadata.ownerReferences?.find((r) => r.controller === true);
  if (controller === undefined || controller.name === '') return pod.metadata.name;
  if (controller.kind === 'ReplicaSet') {
    for (const hashLabel of ['pod-template-hash', 'rollouts-pod-template-hash']) {
      const hash = labels[hashLabel];
      if (!hash || !controller.name.endsWith(hash)) continue;
      const suffix = `-${hash}`;
      return (controller.name.endsWith(suffix) ? controller.name.slice(0, -suffix.length) : controller.name) || pod.metadata.name;
    }
  } else if (controller.kind === 'ReplicationController' && labels.deploymentconfig) {
    return labels.deploymentconfig;
  } else if (controller.kind === 'Job') {
    const m = CRONJOB_JOB_NAME.exec(controller.name);
    if (m) return m[1]!;
  }
  return controller.name;
}

/**
 * The workload source of a Pod, as istiod's podWorkloadBuilder: none for a finished Pod, a Pod without an IP yet (not
 * started), or one with an unparsable IP. Unhealthy when being deleted or Ready=False; istiod also counts a pod that
 * has no Ready condition at all as unhealthy, Ambit lists it healthy so that pods written by hand (no status
 * conditions) serve traffic.
 */
export function podSource(pod: Pod): WorkloadSource | undefined {
  if (isTerminal(pod)) return undefined;
  const ips = pod.status?.podIPs?.length ? pod.status.podIPs.map((p) => p.ip) : pod.status?.podIP ? [pod.status.podIP] : [];
  if (ips.length === 0 || ips.some((ip) => ipToBytes(ip) === undefined)) return undefined;
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const deleting = (pod.metadata as { deletionTimestamp?: string }).deletionTimestamp !== undefined;
  return {
    name: pod.metadata.name,
    namespace: pod.metadata.namespace ?? '',
    labels: pod.metadata.labels ?? {},
    annotations: pod.metadata.annotations ?? {},
    spec: pod.spec,
    ips,
    healthy: ready?.status !== 'False' && !deleting,
    workloadName: podWorkloadName(pod),
  };
}

/** Whether the CNI captures a live Pod (whatever its IP): the node agent's view of isCaptured. */
export function podWantsCapture(pod: Pod, ns: Namespace | undefined): boolean {
  return !isTerminal(pod) && isCaptured({ labels: pod.metadata.labels ?? {}, annotations: pod.metadata.annotations ?? {}, spec: pod.spec }, ns);
}

// Kubernetes' "safe" alphabet for generated name parts (no vowels, no confusable characters).
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function fnv1a32(text: string, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function safeEncode(n: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out += SAFE_ALPHABET[n % SAFE_ALPHABET.length];
    n = Math.floor(n / SAFE_ALPHABET.length);
  }
  return out;
}

/** JSON with object keys sorted, so the same template hashes the same however its source ordered the fields. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * Names the replicas of a Deployment like the ReplicaSet controller would (`<deploy>-<template hash>-<suffix>`),
 * deterministically so that the same Deployment always yields the same workload uids.
 */
export function replicaNames(d: Deployment, count: number): string[] {
  // Five safe characters use 27^5 < 2^32 values, so two differently seeded hashes give ten varied characters.
  const template = canonicalJson(d.spec.template);
  const templateHash = safeEncode(fnv1a32(template), 5) + safeEncode(fnv1a32(template, 0x01000193), 5);
  const names: string[] = [];
  for (let i = 0; i < count; i++) names.push(`${d.metadata.name}-${templateHash}-${safeEncode(fnv1a32(`${templateHash}/${i}`), 5)}`);
  return names;
}

export function replicaSource(d: Deployment, name: string): WorkloadSource {
  return {
    name,
    namespace: d.metadata.namespace ?? '',
    labels: d.spec.template.metadata?.labels ?? {},
    annotations: d.spec.template.metadata?.annotations ?? {},
    spec: d.spec.template.spec,
    ips: [],
    // Not running yet, so not ready.
    healthy: false,
    workloadName: d.metadata.name,
  };
}

/**
 * Whether ztunnel captures the pod (istio-cni's default selection): never a host-network pod (its network namespace
 * is the node's), else pod label `istio.io/dataplane-mode=ambient`, or
 * namespace label `ambient` unless the pod opts out with `none`. The CNI's `ambient.istio.io/redirection: enabled`
 * annotation (set once captured) counts too, as istiod keys off it.
 */
export function isCaptured(src: Pick<WorkloadSource, 'labels' | 'annotations' | 'spec'>, ns: Namespace | undefined): boolean {
  if (src.spec?.hostNetwork === true) return false;
  if (src.annotations['ambient.istio.io/redirection'] === 'enabled') return true;
  // Pods with an injected sidecar are never captured.
  if (src.annotations['sidecar.istio.io/status'] !== undefined) return false;
  const podMode = src.labels[LABEL_DATAPLANE_MODE];
  if (podMode === 'ambient') return true;
  if (podMode === 'none') return false;
  return ns?.metadata.labels?.[LABEL_DATAPLANE_MODE] === 'ambient';
}

function firstLabel(labels: Record<string, string>, keys: string[]): string | undefined {
  for (const k of keys) if (k in labels) return labels[k];
  return undefined;
}

export function buildWorkload(src: WorkloadSource, ctx: WorkloadContext, opts: MeshOptions): Workload {
  const w: Workload = {
    uid: podUid(opts.clusterId, src.namespace, src.name),
    name: src.name,
    namespace: src.namespace,
    addresses: src.ips.map((ip) => ipToBytes(ip)!),
    network: '',
    tunnelProtocol: isCaptured(src, ctx.namespace) ? 'HBONE' : 'NONE',
    trustDomain: opts.trustDomain,
    serviceAccount: serviceAccountOf(src.spec),
    node: src.spec?.nodeName ?? '',
    canonicalName:
      firstLabel(src.labels, ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app']) ?? src.workloadName,
    canonicalRevision:
      firstLabel(src.labels, ['service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version']) ?? 'latest',
    // istiod sends POD for every pod, whatever owns it ("backwards compatibility").
    workloadType: 'POD',
    workloadName: src.workloadName,
    services: ctx.services,
    authorizationPolicies: ctx.authorizationPolicies,
    status: src.healthy ? 'HEALTHY' : 'UNHEALTHY',
    clusterId: opts.clusterId,
  };
  if (ctx.locality) w.locality = ctx.locality;
  if (src.spec?.hostNetwork === true) w.networkMode = 'HOST_NETWORK';
  // `networking.istio.io/tunnel: http` marks workloads that terminate HBONE themselves.
  if (src.labels['networking.istio.io/tunnel'] === 'http') {
    w.tunnelProtocol = 'HBONE';
    w.nativeTunnel = true;
  }
  return w;
}
