// Pods (and Deployment replicas that have no Pod yet) → istio.workload.Workload, following istiod's
// podWorkloadBuilder (pilot/pkg/serviceregistry/ambient/workloads.go).
import type { Deployment, Namespace, Pod, PodSpec } from '../api/types.js';
import { LABEL_DATAPLANE_MODE } from '../api/types.js';
import type { PortList, Workload, WorkloadType } from '../xds/types.js';
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
  workloadType: WorkloadType;
}

/** Everything around the source that the workload depends on, resolved by the index. */
export interface WorkloadContext {
  namespace: Namespace | undefined;
  services: Record<string, PortList>;
  authorizationPolicies: string[];
}

export function podUid(clusterId: string, namespace: string, name: string): string {
  return `${clusterId}//Pod/${namespace}/${name}`;
}

export function serviceAccountOf(spec: PodSpec | undefined): string {
  return spec?.serviceAccountName || spec?.serviceAccount || 'default';
}

/**
 * A Pod that has finished (Succeeded/Failed) or carries an unparsable IP produces no workload, as in istiod. A Pod
 * without an IP yet (not started) is listed without address and unhealthy, like a Deployment replica.
 */
export function podSource(pod: Pod, owner: Deployment | undefined): WorkloadSource | undefined {
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return undefined;
  const ips = pod.status?.podIPs?.length ? pod.status.podIPs.map((p) => p.ip) : pod.status?.podIP ? [pod.status.podIP] : [];
  if (ips.some((ip) => ipToBytes(ip) === undefined)) return undefined;
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const deleting = (pod.metadata as { deletionTimestamp?: string }).deletionTimestamp !== undefined;
  return {
    name: pod.metadata.name,
    namespace: pod.metadata.namespace ?? '',
    labels: pod.metadata.labels ?? {},
    annotations: pod.metadata.annotations ?? {},
    spec: pod.spec,
    ips,
    healthy: ips.length > 0 && ready?.status !== 'False' && !deleting,
    workloadName: owner?.metadata.name ?? pod.metadata.name,
    workloadType: owner ? 'DEPLOYMENT' : 'POD',
  };
}

// Kubernetes' "safe" alphabet for generated name parts (no vowels, no confusable characters).
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function fnv1a32(text: string, seed = 0x811c9dc5): number {
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
    workloadType: 'DEPLOYMENT',
  };
}

/**
 * Whether ztunnel captures the pod (istio-cni's default selection): pod label `istio.io/dataplane-mode=ambient`, or
 * namespace label `ambient` unless the pod opts out with `none`. The CNI's `ambient.istio.io/redirection: enabled`
 * annotation (set once captured) counts too, as istiod keys off it.
 */
export function isCaptured(src: WorkloadSource, ns: Namespace | undefined): boolean {
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
    workloadType: src.workloadType,
    workloadName: src.workloadName,
    services: ctx.services,
    authorizationPolicies: ctx.authorizationPolicies,
    status: src.healthy ? 'HEALTHY' : 'UNHEALTHY',
    clusterId: opts.clusterId,
  };
  // `networking.istio.io/tunnel: http` marks workloads that terminate HBONE themselves.
  if (src.labels['networking.istio.io/tunnel'] === 'http') {
    w.tunnelProtocol = 'HBONE';
    w.nativeTunnel = true;
  }
  return w;
}
