// ztunnel's DNS proxy, on-demand DNS and workload manager metrics (src/dns/metrics.rs, src/proxy/metrics.rs,
// src/inpod/metrics.rs), with its names, labels and help texts, so Istio's ztunnel dashboard ("DNS Request",
// "Workload Manager") plots Ambit unchanged.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SOURCE_LABELS } from '../telemetry/connection.js';
import { identityOf } from '../xds/address-state.js';
import type { Workload } from '../xds/types.js';

const DNS_LABELS = ['request_query_type', 'request_protocol', 'source_canonical_service', 'source_canonical_revision'] as const;
type DnsLabel = (typeof DNS_LABELS)[number];

/** The counters of one (source, protocol, query type), resolved once. */
export interface DnsSeries {
  requests: Counter.Internal;
  upstreamRequests: Counter.Internal;
  upstreamFailures: Counter.Internal;
  upstreamDuration: Histogram.Internal<DnsLabel>;
}

/** Stands for "source workload not known (yet)" in the series cache. */
const UNKNOWN_SOURCE = {};

export class DnsMetrics {
  private readonly requests: Counter<DnsLabel>;
  private readonly upstreamRequests: Counter<DnsLabel>;
  private readonly upstreamFailures: Counter<DnsLabel>;
  private readonly upstreamDuration: Histogram<DnsLabel>;
  /** source workload → protocol → query type → series; a workload update brings a new object and new series. */
  private readonly cache = new WeakMap<object, Map<string, Map<string, DnsSeries>>>();

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = DNS_LABELS;
    this.requests = new Counter({ name: 'istio_dns_requests_total', help: 'Total number of DNS requests (unstable)', labelNames, registers });
    this.upstreamRequests = new Counter({
      name: 'istio_dns_upstream_requests_total',
      help: 'Total number of DNS requests forwarded to upstream (unstable)',
      labelNames,
      registers,
    });
    this.upstreamFailures = new Counter({
      name: 'istio_dns_upstream_failures_total',
      help: 'Total number of DNS requests that failed to forward upstream (unstable)',
      labelNames,
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: 'istio_dns_upstream_request_duration_seconds',
      help: 'Total time in seconds Istio takes to get DNS response from upstream (unstable)',
      labelNames,
      buckets: [0.0005, 0.001, 0.01, 0.1, 1, 5],
      registers,
    });
  }

  /** The series of a query: `queryType` as dns-packet names it (`A`, `AAAA`, …), lower-cased as ztunnel labels it. */
  series(source: Workload | undefined, protocol: 'udp' | 'tcp', queryType: string): DnsSeries {
    const key = source ?? UNKNOWN_SOURCE;
    let byProtocol = this.cache.get(key);
    if (!byProtocol) this.cache.set(key, (byProtocol = new Map()));
    let byType = byProtocol.get(protocol);
    if (!byType) byProtocol.set(protocol, (byType = new Map()));
    let s = byType.get(queryType);
    if (!s) {
      const labels: Record<DnsLabel, string> = {
        request_query_type: queryType.toLowerCase(),
        request_protocol: protocol,
        source_canonical_service: source?.canonicalName || 'unknown',
        source_canonical_revision: source?.canonicalRevision || 'unknown',
      };
      s = {
        requests: this.requests.labels(labels),
        upstreamRequests: this.upstreamRequests.labels(labels),
        upstreamFailures: this.upstreamFailures.labels(labels),
        upstreamDuration: this.upstreamDuration.labels(labels),
      };
      byType.set(queryType, s);
    }
    return s;
  }
}

/** ztunnel's OnDemandDnsLabels: the connecting workload, and the hostname that was resolved. */
const ON_DEMAND_DNS_LABELS = [...SOURCE_LABELS, 'hostname'] as const;
type OnDemandDnsLabel = (typeof ON_DEMAND_DNS_LABELS)[number];

/** `istio_on_demand_dns_total`: connections whose endpoint had a hostname and no IP, one per resolution asked for. */
export class OnDemandDnsMetrics {
  private readonly requests: Counter<OnDemandDnsLabel>;
  /** source workload → hostname → series; a workload update brings a new object and new series. */
  private readonly cache = new WeakMap<Workload, Map<string, Counter.Internal>>();

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'istio_on_demand_dns_total',
      help: 'The total number of requests that used on-demand DNS (unstable)',
      labelNames: ON_DEMAND_DNS_LABELS,
      registers: [registry],
    });
  }

  series(source: Workload, hostname: string): Counter.Internal {
    let byHostname = this.cache.get(source);
    if (!byHostname) this.cache.set(source, (byHostname = new Map()));
    let s = byHostname.get(hostname);
    if (!s) {
      const known = (v: string) => v || 'unknown';
      // As ztunnel: app and version are the canonical name and revision again.
      s = this.requests.labels({
        source_workload: known(source.workloadName),
        source_canonical_service: known(source.canonicalName),
        source_canonical_revision: known(source.canonicalRevision),
        source_workload_namespace: known(source.namespace),
        source_principal: identityOf(source),
        source_app: known(source.canonicalName),
        source_version: known(source.canonicalRevision),
        source_cluster: known(source.clusterId),
        hostname: known(hostname),
      });
      byHostname.set(hostname, s);
    }
    return s;
  }
}

/** The pods this ztunnel serves (`workload_manager_*`, outside the `istio_` prefix as in ztunnel). */
export class WorkloadManagerMetrics {
  private readonly started: Counter;
  private readonly stopped: Counter;

  /** `count()` is read at scrape time: the pods whose proxy is up, and those whose proxy is still starting. */
  constructor(registry: Registry, count: () => { active: number; pending: number }) {
    const registers = [registry];
    new Gauge({
      name: 'workload_manager_active_proxy_count',
      help: 'The total number current workloads with active proxies (unstable)',
      registers,
      collect(this: Gauge) {
        this.set(count().active);
      },
    });
    new Gauge({
      name: 'workload_manager_pending_proxy_count',
      help: 'The total number current workloads with pending proxies (unstable)',
      registers,
      collect(this: Gauge) {
        this.set(count().pending);
      },
    });
    this.started = new Counter({ name: 'workload_manager_proxies_started_total', help: 'The total number of proxies that were started (unstable)', registers });
    this.stopped = new Counter({ name: 'workload_manager_proxies_stopped_total', help: 'The total number of proxies that were stopped (unstable)', registers });
  }

  proxyStarted(): void {
    this.started.inc();
  }

  proxyStopped(): void {
    this.stopped.inc();
  }
}
