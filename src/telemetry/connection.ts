// Per-connection telemetry of the node proxy: ztunnel's TCP metrics (names, label set and label order as ztunnel
// exports them, so Kiali and Istio dashboards work unchanged) and its access log. The proxies call `open()` once a
// connection has enough context, feed byte counts to the tracker, and `close()` it exactly once.
//
// Cost on the data path: `sent()`/`received()` only add to two numbers on the tracker, and opening or closing a
// connection adds to plain numbers of its label set's `Series` (found by a key computed once per connection).
// The prom-client counters, whose every update validates and hashes all 23 labels, are only brought up to date
// when a scrape collects them, so a scrape still sees current totals, including those of long-lived connections.
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';
import { AMBIT_VERSION } from '../common/version.js';
import { ACCESS_TARGET, AccessLog } from './access-log.js';
import type { LogSink } from './log.js';

export interface PeerWorkload {
  name: string;
  namespace: string;
  workloadName: string;
  canonicalName: string;
  canonicalRevision: string;
  app?: string;
  version?: string;
  clusterId: string;
  identity?: string;
  /** Known only from the request's baggage, not xDS (ztunnel's `DerivedWorkload`): the access log names no workload. */
  fromBaggage?: boolean;
}

export interface ConnectionInfo {
  direction: 'inbound' | 'outbound'; // reporter = direction === 'outbound' ? 'source' : 'destination'
  srcAddr: string; // "ip:port"
  dstAddr: string; // next hop L4, e.g. "10.244.2.3:15008"
  hboneAddr?: string; // :authority when HBONE
  originalDstAddr?: string; // outbound: what the application dialed (a Service VIP:port, or a pod's ip:port)
  srcWorkload?: PeerWorkload;
  dstWorkload?: PeerWorkload;
  dstService?: { name: string; namespace: string; hostname: string };
  srcIdentity?: string; // "spiffe://…", only when mTLS
  dstIdentity?: string;
  mtls: boolean; // connection_security_policy mutual_tls | unknown
}

export type ResponseFlag = '-' | 'DENY' | 'CONNECT' | 'TLS_FAILURE' | 'H2_HANDSHAKE_FAILURE' | 'NETWORK_POLICY' | 'IDENTITY_ERROR';

export interface ConnectionTracker {
  /** Bytes from the source side toward the destination. */
  sent(n: number): void;
  /** Bytes from the destination back to the source. */
  received(n: number): void;
  /** Records the end of the connection; calls after the first are ignored. */
  close(error?: { message: string; flag: ResponseFlag }): void;
}

export interface ConnectionTelemetry {
  open(info: ConnectionInfo): ConnectionTracker;
  failed(info: Pick<ConnectionInfo, 'direction' | 'srcAddr' | 'dstAddr'>, error: { message: string; flag: ResponseFlag }): void;
}

/** The source workload's labels, in the order Istio's metrics (ztunnel's and Envoy's) encode them. */
export const SOURCE_LABELS = [
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
] as const;

/** ztunnel's `CommonTrafficLabels`, in its encoding order (locality labels, ztunnel ≥ 1.26, are not exported). */
export const TRAFFIC_LABELS = [
  'reporter',
  ...SOURCE_LABELS,
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

type TrafficLabel = (typeof TRAFFIC_LABELS)[number];
type TrafficLabels = Record<TrafficLabel, string>;

const UNKNOWN = 'unknown';
const known = (v: string | undefined): string => (v ? v : UNKNOWN);

function reporterOf(direction: ConnectionInfo['direction']): 'source' | 'destination' {
  return direction === 'outbound' ? 'source' : 'destination';
}

/** The label values of one connection, derived as istio/ztunnel derives its CommonTrafficLabels. */
export function trafficLabels(info: ConnectionInfo, flag: ResponseFlag = '-'): TrafficLabels {
  const src = info.srcWorkload;
  const dst = info.dstWorkload;
  const svc = info.dstService;
  return {
    reporter: reporterOf(info.direction),
    source_workload: known(src?.workloadName),
    source_canonical_service: known(src?.canonicalName),
    source_canonical_revision: known(src?.canonicalRevision),
    source_workload_namespace: known(src?.namespace),
    // Only a verified mTLS identity names the source: a source IP alone proves nothing.
    source_principal: known(info.mtls ? info.srcIdentity : undefined),
    source_app: known(src?.app ?? src?.canonicalName),
    source_version: known(src?.version ?? src?.canonicalRevision),
    source_cluster: known(src?.clusterId),
    destination_service: known(svc?.hostname),
    destination_service_namespace: known(svc?.namespace),
    destination_service_name: known(svc?.name),
    destination_workload: known(dst?.workloadName),
    destination_canonical_service: known(dst?.canonicalName),
    destination_canonical_revision: known(dst?.canonicalRevision),
    destination_workload_namespace: known(dst?.namespace),
    // ztunnel names the destination by the workload's xDS identity, with or without mTLS.
    destination_principal: known(dst?.identity ?? info.dstIdentity),
    destination_app: known(dst?.app ?? dst?.canonicalName),
    destination_version: known(dst?.version ?? dst?.canonicalRevision),
    destination_cluster: known(dst?.clusterId),
    request_protocol: 'tcp',
    response_flags: flag,
    connection_security_policy: info.mtls ? 'mutual_tls' : UNKNOWN,
  };
}

/** Help texts of the TCP metrics; the waypoint exports the same metrics and uses them too. */
export const TCP_METRIC_HELP = {
  opened: 'TCP connections opened.',
  closed: 'TCP connections closed.',
  sent: 'Bytes sent in the response direction of TCP connections.',
  received: 'Bytes received in the request direction of TCP connections.',
} as const;

export interface ZtunnelTelemetryOptions {
  /** Access-log output (target `access`). */
  log: LogSink;
  /** Own registry by default: several proxies may run in one test process. */
  registry?: Registry;
  /** `tag` of istio_build; defaults to Ambit's package version. */
  buildTag?: string;
}

/** Counts of one label set not yet moved into the prom-client counters. */
class Series {
  opened = 0;
  closed = 0;
  failed = 0;
  /** Request direction (istio_tcp_received_bytes_total). */
  requestBytes = 0;
  /** Response direction (istio_tcp_sent_bytes_total). */
  responseBytes = 0;
  /**
   * Set when a connection opens under this label set: its counters are exported (at 0 if need be) from the start, as
   * ztunnel's are. A series that only counts failures (under a response flag) exports just the counters that count.
   */
  exportAtZero = false;
  constructor(readonly labels: TrafficLabels) {}
}

function seriesKey(labels: TrafficLabels): string {
  let key = '';
  for (const name of TRAFFIC_LABELS) key += `${labels[name]}\n`;
  return key;
}

export class ZtunnelTelemetry implements ConnectionTelemetry {
  readonly registry: Registry;
  readonly accessLog: AccessLog;
  private readonly live = new Set<Tracker>();
  private readonly series = new Map<string, Series>();
  /** Series with counts not yet in the counters. */
  private readonly dirty = new Set<Series>();
  /** Open connections by direction: `istio_tcp_sockets_open` with reporter source (outbound) / destination (inbound). */
  private readonly openSockets = { outbound: 0, inbound: 0 };

  private readonly connectionsOpened: Counter<TrafficLabel>;
  private readonly connectionsClosed: Counter<TrafficLabel>;
  private readonly connectionsFailed: Counter<TrafficLabel>;
  private readonly sentBytes: Counter<TrafficLabel>;
  private readonly receivedBytes: Counter<TrafficLabel>;
  private readonly socketsOpen: Gauge<'reporter'>;

  constructor(opts: ZtunnelTelemetryOptions) {
    this.registry = opts.registry ?? new Registry();
    this.accessLog = new AccessLog(opts.log.logger(ACCESS_TARGET));
    const registers = [this.registry];
    const labelNames = TRAFFIC_LABELS;
    // Every counter pulls the pending counts in right before a scrape reads it.
    const collect = (): void => this.flush();
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers, collect });
    this.connectionsOpened = counter('istio_tcp_connections_opened_total', TCP_METRIC_HELP.opened);
    this.connectionsClosed = counter('istio_tcp_connections_closed_total', TCP_METRIC_HELP.closed);
    this.connectionsFailed = counter('istio_tcp_connections_failed_total', 'TCP connections that failed or were denied (unstable).');
    this.sentBytes = counter('istio_tcp_sent_bytes_total', TCP_METRIC_HELP.sent);
    this.receivedBytes = counter('istio_tcp_received_bytes_total', TCP_METRIC_HELP.received);
    this.socketsOpen = new Gauge({
      name: 'istio_tcp_sockets_open',
      help: 'Open TCP sockets (unstable).',
      labelNames: ['reporter'],
      registers,
      // Both reporters appear from the start, so a dashboard shows 0 rather than no data.
      collect: () => {
        this.socketsOpen.set({ reporter: reporterOf('outbound') }, this.openSockets.outbound);
        this.socketsOpen.set({ reporter: reporterOf('inbound') }, this.openSockets.inbound);
      },
    });
    const build = new Gauge({ name: 'istio_build', help: 'Istio component build info', labelNames: ['component', 'tag'], registers });
    build.set({ component: 'ztunnel', tag: opts.buildTag ?? AMBIT_VERSION }, 1);
  }

  open(info: ConnectionInfo): ConnectionTracker {
    const labels = trafficLabels(info);
    const tracker = new Tracker(this, info, this.seriesOf(labels));
    tracker.series.exportAtZero = true;
    tracker.series.opened++;
    this.openSockets[info.direction]++;
    this.live.add(tracker);
    this.accessLog.opened(info);
    return tracker;
  }

  failed(info: Pick<ConnectionInfo, 'direction' | 'srcAddr' | 'dstAddr'>, error: { message: string; flag: ResponseFlag }): void {
    this.seriesOf(trafficLabels({ ...info, mtls: false }, error.flag)).failed++;
    this.accessLog.failed(info, error.message);
  }

  /** Moves pending counts (byte counts of open connections included) into the counters; scrapes do this themselves. */
  flush(): void {
    for (const t of this.live) t.flushBytes();
    for (const s of this.dirty) {
      const { labels } = s;
      if (s.opened || s.exportAtZero) this.connectionsOpened.inc(labels, s.opened);
      if (s.closed) this.connectionsClosed.inc(labels, s.closed);
      if (s.failed) this.connectionsFailed.inc(labels, s.failed);
      // As in ztunnel, the byte series exist (at 0) from the moment the connection opens.
      if (s.requestBytes || s.exportAtZero) this.receivedBytes.inc(labels, s.requestBytes);
      if (s.responseBytes || s.exportAtZero) this.sentBytes.inc(labels, s.responseBytes);
      s.opened = s.closed = s.failed = s.requestBytes = s.responseBytes = 0;
      s.exportAtZero = false;
    }
    this.dirty.clear();
  }

  /** The series of a label set, marked as having pending counts. */
  private seriesOf(labels: TrafficLabels): Series {
    const key = seriesKey(labels);
    let s = this.series.get(key);
    if (!s) {
      s = new Series(labels);
      this.series.set(key, s);
    }
    this.dirty.add(s);
    return s;
  }

  /** @internal a tracker added counts to `series`. */
  touch(series: Series): void {
    this.dirty.add(series);
  }

  /** @internal called by Tracker.close */
  finish(tracker: Tracker, error: { message: string; flag: ResponseFlag } | undefined): void {
    this.live.delete(tracker);
    tracker.flushBytes();
    const { series } = tracker;
    this.openSockets[tracker.direction]--;
    // A failed connection is counted as closed, and as failed, under its response flag.
    const counted = error === undefined || error.flag === series.labels.response_flags
      ? series
      : this.seriesOf({ ...series.labels, response_flags: error.flag });
    counted.closed++;
    if (error !== undefined) counted.failed++;
    this.dirty.add(counted);
  }
}

class Tracker implements ConnectionTracker {
  private readonly started = performance.now();
  private sentTotal = 0;
  private receivedTotal = 0;
  private sentFlushed = 0;
  private receivedFlushed = 0;
  private done = false;

  constructor(
    private readonly owner: ZtunnelTelemetry,
    private readonly info: ConnectionInfo,
    readonly series: Series,
  ) {}

  get direction(): ConnectionInfo['direction'] {
    return this.info.direction;
  }

  sent(n: number): void {
    this.sentTotal += n;
  }

  received(n: number): void {
    this.receivedTotal += n;
  }

  /** Adds the bytes counted since the last call to the series. */
  flushBytes(): void {
    // Istio's convention: istio_tcp_sent_bytes counts the response direction and istio_tcp_received_bytes the
    // request direction, for both reporters (ztunnel copies upstream→downstream as "send").
    const request = this.sentTotal - this.sentFlushed;
    const response = this.receivedTotal - this.receivedFlushed;
    if (request === 0 && response === 0) return;
    this.series.requestBytes += request;
    this.series.responseBytes += response;
    this.sentFlushed = this.sentTotal;
    this.receivedFlushed = this.receivedTotal;
    this.owner.touch(this.series);
  }

  close(error?: { message: string; flag: ResponseFlag }): void {
    if (this.done) return;
    this.done = true;
    this.owner.finish(this, error);
    this.owner.accessLog.complete(this.info, this.sentTotal, this.receivedTotal, performance.now() - this.started, error?.message);
  }
}
