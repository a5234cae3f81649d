// The Prometheus scrape configuration `ambit dashboard prometheus` prints for a running local cluster. It follows the
// `kubernetes-pods` job of Istio's sample Prometheus (samples/addons/prometheus.yaml) with the cluster's targets
// written out, as that job's relabelling would produce them from Kubernetes service discovery: the pod's labels
// (names sanitised as Prometheus does), `namespace`, `pod` and `node`, and the path and port of the
// prometheus.io/* annotations. The ztunnels and the control plane are not pods here, so they get the labels their
// pods carry in Istio (app=ztunnel, app=istiod, namespace istio-system): Istio's dashboards select them by those.
import { stringify } from 'yaml';
import type { Pod } from '../api/types.js';
import { CONTROL_PLANE_ID } from '../controlplane/server.js';

/** Istio's sample Prometheus scrapes every 15 s. */
export const DEFAULT_SCRAPE_INTERVAL = '15s';
/** Istio's control-plane namespace, where its ztunnel and istiod pods run. */
const ISTIO_NAMESPACE = 'istio-system';

export interface ClusterTargets {
  /** Each node's name and address: its ztunnel serves metrics there. */
  nodes: { name: string; ip: string }[];
  ztunnelMetricsPort: number;
  /** The control plane's debug port, on the loopback of the namespace Prometheus runs in. */
  controlPlaneMetrics: { host: string; port: number };
  pods: Pod[];
}

interface StaticConfig {
  targets: string[];
  labels: Record<string, string>;
}

/** A Kubernetes label name as a Prometheus label name: every character outside [a-zA-Z0-9_] becomes `_`. */
function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/**
 * Pods that ask to be scraped (`prometheus.io/scrape: "true"`, as waypoints do), with an address and running, as
 * Istio's job keeps them. A pod without a `prometheus.io/port` annotation is left out: Kubernetes service discovery
 * would try each declared container port, and the local cluster has no such list to guess from.
 */
function podTargets(pods: Pod[]): StaticConfig[] {
  const out: StaticConfig[] = [];
  for (const pod of pods) {
    const annotations = pod.metadata.annotations ?? {};
    const port = annotations['prometheus.io/port'];
    const ip = pod.status?.podIP;
    if (annotations['prometheus.io/scrape'] !== 'true' || !ip || !port || !/^\d+$/.test(port) || pod.status?.phase !== 'Running') continue;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(pod.metadata.labels ?? {})) labels[sanitizeLabelName(k)] = v;
    Object.assign(labels, { namespace: pod.metadata.namespace ?? 'default', pod: pod.metadata.name });
    if (pod.spec.nodeName) labels.node = pod.spec.nodeName;
    labels.__metrics_path__ = annotations['prometheus.io/path'] || '/metrics';
    out.push({ targets: [`${ip}:${port}`], labels });
  }
  return out.sort((a, b) => `${a.labels.namespace}/${a.labels.pod}`.localeCompare(`${b.labels.namespace}/${b.labels.pod}`));
}

/** The configuration as YAML, with a header saying where it works, and how many targets it lists. */
export function prometheusConfig(cluster: string, t: ClusterTargets, scrapeInterval: string): { yaml: string; targets: number } {
  const ztunnels: StaticConfig[] = t.nodes.map((n) => ({
    targets: [`${n.ip}:${t.ztunnelMetricsPort}`],
    labels: { app: 'ztunnel', namespace: ISTIO_NAMESPACE, pod: `ztunnel-${n.name}`, node: n.name, __metrics_path__: '/stats/prometheus' },
  }));
  const controlPlane: StaticConfig = {
    targets: [`${t.controlPlaneMetrics.host}:${t.controlPlaneMetrics.port}`],
    labels: { app: 'istiod', istio: 'pilot', namespace: ISTIO_NAMESPACE, pod: CONTROL_PLANE_ID, __metrics_path__: '/metrics' },
  };
  const groups = [controlPlane, ...ztunnels, ...podTargets(t.pods)];
  const config = {
    global: { scrape_interval: scrapeInterval },
    scrape_configs: [{ job_name: 'kubernetes-pods', honor_labels: true, static_configs: groups }],
  };
  const yaml =
    `# Prometheus scrape configuration for the Ambit local cluster "${cluster}" (ambit dashboard prometheus).\n` +
    '# Targets are addresses inside the cluster: run Prometheus in its fabric network namespace, as\n' +
    '# `ambit dashboard prometheus --start` does (it also follows pods as they come and go).\n' +
    stringify(config);
  return { yaml, targets: groups.length };
}
