// The waypoint's telemetry: Istio's standard metrics as Envoy's `istio.stats` filter exports them from a waypoint
// (`reporter="waypoint"`, same names, label names and label order, so Kiali and Istio dashboards work unchanged), and
// Istio's default Envoy access log (TEXT encoding).
//
// Cost on the data path: a request is a few map lookups keyed by the caller's reused label objects and one small
// integer, then additions to plain numbers of its label set's series. Nothing is built for a label set seen before
// unless the access log is on. The prom-client counters, whose every update validates and hashes all 25 labels, are
// brought up to date only when a scrape collects them; the histograms are rendered at scrape time from the buckets
// kept here.
import { Counter, Registry, type Metric } from 'prom-client';
import { SOURCE_LABELS, TCP_METRIC_HELP } from '../telemetry/connection.js';
import { writeStdout } from '../telemetry/log.js';

/**
 * One side of a request, resolved once per connection (source) or per endpoint (destination) and then reused: the
 * metrics find a request's series by the identity of these objects, so they must not be changed after first use.
 * An empty string exports as Istio's default: `latest` for the source's canonical revision, `unknown` for the rest.
 */
export interface PeerLabels {
  workload: string;
  namespace: string;
  /** SPIFFE identity; only a verified mTLS peer has one. */
  principal: string;
  app: string;
  version: string;
  canonicalService: string;
  canonicalRevision: string;
  cluster: string;
}

/**
 * The Service a request was routed to, from the chosen cluster (Envoy's waypoint disables the Host header fallback).
 * Empty `service` or `name` export as the destination's canonical service, as Envoy falls back; an empty namespace as
 * `unknown`.
 */
export interface DestinationServiceLabels {
  /** FQDN, e.g. `reviews.default.svc.cluster.local`. */
  service: string;
  name: string;
  namespace: string;
}

export type ConnectionSecurityPolicy = 'mutual_tls' | 'none' | 'unknown';

/**
 * Envoy's short response flags that a waypoint can set, in the fixed order older Envoy prints them in (newer Envoy
 * prints them in the order they were set; the fixed order keeps one label value per set of flags).
 */
const RESPONSE_FLAG_ORDER = [
  'UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'NR', 'DI', 'FI', 'RL', 'UAEX', 'DC', 'URX', 'SI', 'IH', 'DPE', 'UMSDR',
  'DT', 'UPE', 'NC',
] as const;
export type ResponseFlag = (typeof RESPONSE_FLAG_ORDER)[number];

export interface HttpRequestRecord {
  // Metric labels and values.
  source: PeerLabels;
  /** The chosen endpoint. */
  destination: PeerLabels;
  destinationService: DestinationServiceLabels;
  requestProtocol: 'http' | 'grpc';
  /** The final status sent downstream; 0 when no response was sent. */
  responseCode: number;
  /** Decimal `grpc-status` of a gRPC response; empty or absent otherwise. */
  grpcStatus?: string;
  /** Any order, duplicates ignored; none prints `-`. */
  responseFlags: readonly ResponseFlag[];
  connectionSecurityPolicy: ConnectionSecurityPolicy;
  /** From the first request byte to the last response byte; Envoy truncates it to whole milliseconds. */
  durationMs: number;
  /** Downstream wire bytes including headers (istio_request_bytes / istio_response_bytes). */
  requestBytes: number;
  responseBytes: number;
  /** gRPC messages in each direction (istio_request_messages_total / istio_response_messages_total); gRPC only. */
  grpcRequestMessages?: number;
  grpcResponseMessages?: number;

  // Access-log fields; absent or empty ones print `-`.
  /** Epoch milliseconds. */
  startTime: number;
  method: string;
  /** `x-envoy-original-path` if the request had one, else `:path`. */
  path: string;
  protocol: 'HTTP/1.1' | 'HTTP/2';
  /** `via_upstream`, `rbac_access_denied_matched_policy[none]`, `no_healthy_upstream`, …; whitespace prints as `_`. */
  responseCodeDetails: string;
  connectionTerminationDetails?: string;
  upstreamTransportFailureReason?: string;
  /** Body bytes only (the metrics take wire bytes). */
  bodyBytesReceived: number;
  bodyBytesSent: number;
  /** The `x-envoy-upstream-service-time` response header. */
  upstreamServiceTimeMs?: number;
  forwardedFor?: string;
  userAgent?: string;
  requestId?: string;
  authority?: string;
  upstreamHost?: string;
  upstreamCluster?: string;
  upstreamLocalAddress?: string;
  downstreamLocalAddress: string;
  downstreamRemoteAddress: string;
  requestedServerName?: string;
  routeName?: string;
}

/** What labels a TCP connection proxied by the waypoint; the objects follow PeerLabels' reuse rule. */
export interface TcpConnectionLabels {
  source: PeerLabels;
  destination: PeerLabels;
  destinationService: DestinationServiceLabels;
  connectionSecurityPolicy: ConnectionSecurityPolicy;
}

export interface TcpTracker {
  /** Bytes written to the downstream (response direction): istio_tcp_sent_bytes_total. */
  sent(n: number): void;
  /** Bytes read from the downstream (request direction): istio_tcp_received_bytes_total. */
  received(n: number): void;
  /**
   * Ends the connection; calls after the first are ignored. As in Envoy, a connection's label set (flags included) is
   * fixed when it is first reported, at a scrape while it is open or else here: `flags` (e.g. `UF` for a failed
   * upstream connect) label the connection only if no scrape has seen it open.
   */
  close(flags?: readonly ResponseFlag[]): void;
}

export interface WaypointTelemetryOptions {
  /** Where access-log lines (each ending in a newline) go; stdout by default. */
  log?: (line: string) => void;
  /**
   * Writes the access log. Off when unset, as Istio's `meshConfig.accessLogFile` is empty by default; the waypoint
   * process passes its config's `accessLog`, which is on unless turned off (see WaypointConfig.accessLog).
   */
  accessLog?: boolean;
}

// ---- Labels --------------------------------------------------------------------------------------------------

/** The labels the HTTP and TCP metrics share, in Envoy's order for `reporter: SERVER_GATEWAY`. */
const PEER_LABELS = [
  'reporter',
  ...SOURCE_LABELS,
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
] as const;
const HTTP_LABELS = [...PEER_LABELS, 'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy'] as const;
const TCP_LABELS = [...PEER_LABELS, 'request_protocol', 'response_flags', 'connection_security_policy'] as const;

type PeerLabelSet = Record<(typeof PEER_LABELS)[number], string>;
type HttpLabelSet = Record<(typeof HTTP_LABELS)[number], string>;
type TcpLabelSet = Record<(typeof TCP_LABELS)[number], string>;

const UNKNOWN = 'unknown';
const or = (value: string, fallback: string): string => (value === '' ? fallback : value);

function peerLabelSet(src: PeerLabels, dst: PeerLabels, svc: DestinationServiceLabels): PeerLabelSet {
  const dstCanonical = or(dst.canonicalService, UNKNOWN);
  // Key order is the exported label order (PEER_LABELS); prom-client prints labels in the order of the object.
  return {
    reporter: 'waypoint',
    source_workload: or(src.workload, UNKNOWN),
    source_canonical_service: or(src.canonicalService, UNKNOWN),
    source_canonical_revision: or(src.canonicalRevision, 'latest'),
    source_workload_namespace: or(src.namespace, UNKNOWN),
    source_principal: or(src.principal, UNKNOWN),
    source_app: or(src.app, UNKNOWN),
    source_version: or(src.version, UNKNOWN),
    source_cluster: or(src.cluster, UNKNOWN),
    destination_workload: or(dst.workload, UNKNOWN),
    destination_workload_namespace: or(dst.namespace, UNKNOWN),
    destination_principal: or(dst.principal, UNKNOWN),
    destination_app: or(dst.app, UNKNOWN),
    destination_version: or(dst.version, UNKNOWN),
    destination_service: or(svc.service, dstCanonical),
    destination_canonical_service: dstCanonical,
    destination_canonical_revision: or(dst.canonicalRevision, UNKNOWN),
    destination_service_name: or(svc.name, dstCanonical),
    destination_service_namespace: or(svc.namespace, UNKNOWN),
    destination_cluster: or(dst.cluster, UNKNOWN),
  };
}

/** A key that tells label sets apart by value, for series reached through label objects not seen before. */
const valueKey = (labels: object): string => JSON.stringify(Object.values(labels));

// ---- Response flags ------------------------------------------------------------------------------------------

interface FlagSet {
  /** The `response_flags` label and access-log field. */
  readonly text: string;
  /** Small number naming this set in series keys. */
  readonly index: number;
}

const FLAG_BIT = new Map<string, number>(RESPONSE_FLAG_ORDER.map((flag, i) => [flag, 1 << i]));
const NO_FLAGS: FlagSet = { text: '-', index: 0 };
/** Every set of flags seen, by bit mask: the text is joined once per set, not per request. */
const flagSets = new Map<number, FlagSet>([[0, NO_FLAGS]]);

function flagSet(flags: readonly ResponseFlag[]): FlagSet {
  if (flags.length === 0) return NO_FLAGS;
  let mask = 0;
  for (const flag of flags) mask |= FLAG_BIT.get(flag) ?? 0;
  let set = flagSets.get(mask);
  if (set === undefined) {
    const text = RESPONSE_FLAG_ORDER.filter((_, i) => mask & (1 << i)).join(',');
    set = { text, index: flagSets.size };
    flagSets.set(mask, set);
  }
  return set;
}

// ---- Series and their cache ----------------------------------------------------------------------------------

/**
 * Envoy's default histogram buckets (`sidecar.istio.io/statsHistogramBuckets` unset), for durations and sizes alike.
 * Envoy counts a value under `le="B"` only when it is below B: its histograms keep values in bins of two significant
 * digits, and a bucket counts the bins that lie wholly at or below its bound (libcircllhist's count_below), so the
 * bin [5, 5.1) holding a 5 ms request lands in `le="10"`. Durations and byte counts are whole numbers, so this
 * differs from Prometheus' `<=` on exactly the bounds; the sum here is exact where Envoy's is approximate.
 */
const BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
] as const;

class Distribution {
  /** Counts per bucket (not cumulative); the last counts values at or above the largest bound. */
  readonly counts = new Float64Array(BUCKETS.length + 1);
  sum = 0;

  observe(value: number): void {
    let i = 0;
    while (i < BUCKETS.length && value >= BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
  }
}

/** One HTTP label set: counts not yet handed to the counters, and its histograms. */
class HttpSeries {
  requests = 0;
  requestMessages = 0;
  responseMessages = 0;
  /** In the pending list. */
  pending = false;
  readonly duration = new Distribution();
  readonly requestSize = new Distribution();
  readonly responseSize = new Distribution();
  readonly grpc: boolean;
  constructor(readonly labels: HttpLabelSet) {
    this.grpc = labels.request_protocol === 'grpc';
  }
}

/** One TCP label set: counts not yet handed to the counters. */
class TcpSeries {
  opened = 0;
  closed = 0;
  sentBytes = 0;
  receivedBytes = 0;
  pending = false;
  constructor(readonly labels: TcpLabelSet) {}
}

/**
 * Series by the identity of the caller's label objects, then by a small integer packing the remaining label values.
 * The caller reuses its PeerLabels per connection or endpoint, so a request costs three WeakMap lookups and one Map
 * lookup and builds nothing: no key string, no label object. A label object seen for the first time misses here and
 * finds its series by value (so equal labels in a new object share the series); WeakMaps let entries of objects the
 * caller dropped go with them.
 */
class SeriesCache<S> {
  private readonly bySource = new WeakMap<PeerLabels, WeakMap<PeerLabels, WeakMap<DestinationServiceLabels, Map<number, S>>>>();

  /** The series of (source, destination, service) by their packed remaining labels. */
  byRest(src: PeerLabels, dst: PeerLabels, svc: DestinationServiceLabels): Map<number, S> {
    let byDestination = this.bySource.get(src);
    if (byDestination === undefined) this.bySource.set(src, (byDestination = new WeakMap()));
    let byService = byDestination.get(dst);
    if (byService === undefined) byDestination.set(dst, (byService = new WeakMap()));
    let byRest = byService.get(svc);
    if (byRest === undefined) byService.set(svc, (byRest = new Map()));
    return byRest;
  }
}

const SECURITY_SLOT: Record<ConnectionSecurityPolicy, number> = { mutual_tls: 0, none: 1, unknown: 2 };
/** '' (not gRPC) and the 17 gRPC status codes. */
const GRPC_STATUS_SLOT = new Map<string, number>([['', 0], ...Array.from({ length: 17 }, (_, i) => [String(i), i + 1] as const)]);
/** Flag sets beyond this many (21 flags allow more in theory) are found by value. */
const FLAG_SET_SLOTS = 1 << 12;

/**
 * The labels of an HTTP request beyond its peers, packed into 30 bits so the number stays a small integer for V8:
 * status (10 bits), gRPC (1), security policy (2), gRPC status (5), flag set (12). -1 when a value does not fit
 * (the request then finds its series by value).
 */
function httpRestKey(r: HttpRequestRecord, flags: FlagSet): number {
  const code = r.responseCode;
  const grpcStatus = GRPC_STATUS_SLOT.get(r.grpcStatus ?? '');
  if ((code & 0x3ff) !== code || grpcStatus === undefined || flags.index >= FLAG_SET_SLOTS) return -1;
  return code | (r.requestProtocol === 'grpc' ? 1 << 10 : 0) | (SECURITY_SLOT[r.connectionSecurityPolicy] << 11) | (grpcStatus << 13) | (flags.index << 18);
}

// ---- prom-client glue ----------------------------------------------------------------------------------------

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A histogram the Registry renders from Distributions kept here. prom-client's Histogram cannot take counts that are
 * already bucketed (each observe() hashes the labels), and a Registry needs only these members to serve a metric.
 * There is no reset(): counts live as long as the proxy, as Envoy's do, so Registry.resetMetrics() is not supported.
 */
class BucketedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly series: ReadonlyMap<string, HttpSeries>,
    private readonly pick: (s: HttpSeries) => Distribution,
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      const d = this.pick(s);
      let cumulative = 0;
      for (let i = 0; i < BUCKETS.length; i++) {
        cumulative += d.counts[i]!;
        values.push({ metricName: bucket, labels: { ...s.labels, le: BUCKETS[i]! }, value: cumulative });
      }
      cumulative += d.counts[BUCKETS.length]!;
      values.push({ metricName: bucket, labels: { ...s.labels, le: '+Inf' }, value: cumulative });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: d.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: cumulative });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

// ---- Telemetry -----------------------------------------------------------------------------------------------

export class WaypointTelemetry {
  /** Own registry: several waypoints may run in one process. */
  readonly registry = new Registry();
  private readonly writeLine: ((line: string) => void) | undefined;

  private readonly httpSeries = new Map<string, HttpSeries>();
  private readonly httpCache = new SeriesCache<HttpSeries>();
  private readonly pendingHttp: HttpSeries[] = [];
  private readonly tcpSeries = new Map<string, TcpSeries>();
  private readonly tcpCache = new SeriesCache<TcpSeries>();
  private readonly pendingTcp: TcpSeries[] = [];
  private readonly liveTcp = new Set<TcpConnection>();

  private readonly requestsTotal: Counter<(typeof HTTP_LABELS)[number]>;
  private readonly requestMessages: Counter<(typeof HTTP_LABELS)[number]>;
  private readonly responseMessages: Counter<(typeof HTTP_LABELS)[number]>;
  private readonly tcpOpened: Counter<(typeof TCP_LABELS)[number]>;
  private readonly tcpClosed: Counter<(typeof TCP_LABELS)[number]>;
  private readonly tcpSent: Counter<(typeof TCP_LABELS)[number]>;
  private readonly tcpReceived: Counter<(typeof TCP_LABELS)[number]>;

  constructor(opts: WaypointTelemetryOptions = {}) {
    this.writeLine = opts.accessLog ? (opts.log ?? writeStdout) : undefined;
    const registers = [this.registry];
    // Every counter pulls the pending counts in right before a scrape reads it.
    const collect = (): void => this.flush();
    const httpCounter = (name: string, help: string) => new Counter({ name, help, labelNames: HTTP_LABELS, registers, collect });
    const tcpCounter = (name: string, help: string) => new Counter({ name, help, labelNames: TCP_LABELS, registers, collect });
    const histogram = (name: string, help: string, pick: (s: HttpSeries) => Distribution): void =>
      // The cast: registerMetric() is typed for prom-client's own metric classes but serves any object of this shape.
      this.registry.registerMetric(new BucketedHistogram(name, help, this.httpSeries, pick) as unknown as Metric);

    this.requestsTotal = httpCounter('istio_requests_total', 'Requests handled by the proxy.');
    histogram('istio_request_duration_milliseconds', 'Duration of requests in milliseconds.', (s) => s.duration);
    histogram('istio_request_bytes', 'Size of requests in bytes, headers included.', (s) => s.requestSize);
    histogram('istio_response_bytes', 'Size of responses in bytes, headers included.', (s) => s.responseSize);
    this.requestMessages = httpCounter('istio_request_messages_total', 'gRPC messages sent by clients.');
    this.responseMessages = httpCounter('istio_response_messages_total', 'gRPC messages sent by servers.');
    this.tcpOpened = tcpCounter('istio_tcp_connections_opened_total', TCP_METRIC_HELP.opened);
    this.tcpClosed = tcpCounter('istio_tcp_connections_closed_total', TCP_METRIC_HELP.closed);
    this.tcpSent = tcpCounter('istio_tcp_sent_bytes_total', TCP_METRIC_HELP.sent);
    this.tcpReceived = tcpCounter('istio_tcp_received_bytes_total', TCP_METRIC_HELP.received);
  }

  /** Counts a finished HTTP request (a local reply included) and writes its access-log line if the log is on. */
  recordRequest(r: HttpRequestRecord): void {
    const flags = flagSet(r.responseFlags);
    const restKey = httpRestKey(r, flags);
    let series: HttpSeries | undefined;
    if (restKey < 0) series = this.httpSeriesByValue(r, flags);
    else {
      const byRest = this.httpCache.byRest(r.source, r.destination, r.destinationService);
      series = byRest.get(restKey);
      if (series === undefined) byRest.set(restKey, (series = this.httpSeriesByValue(r, flags)));
    }
    series.requests++;
    if (series.grpc) {
      series.requestMessages += r.grpcRequestMessages ?? 0;
      series.responseMessages += r.grpcResponseMessages ?? 0;
    }
    series.duration.observe(Math.floor(r.durationMs));
    series.requestSize.observe(r.requestBytes);
    series.responseSize.observe(r.responseBytes);
    if (!series.pending) {
      series.pending = true;
      this.pendingHttp.push(series);
    }
    if (this.writeLine !== undefined) {
      try {
        this.writeLine(formatAccessLog(r));
      } catch {
        // A failing log output must not fail the request it describes; the line is lost either way.
      }
    }
  }

  /** A TCP connection proxied by the waypoint; bytes count as they flow and show at every scrape. */
  openTcp(labels: TcpConnectionLabels): TcpTracker {
    const connection = new TcpConnection(this, labels);
    this.liveTcp.add(connection);
    return connection;
  }

  /**
   * @internal Envoy's `reportHelper`: the first report fixes the connection's series (with `flags`) and counts it
   * opened, every report adds the bytes since the last, the final one counts it closed.
   */
  reportTcp(c: TcpConnection, flags: FlagSet, end: boolean): void {
    let s = c.series;
    if (s === undefined) {
      s = c.series = this.tcpSeriesOf(c.labels, flags);
      s.opened++;
    }
    s.sentBytes += c.sentTotal - c.sentReported;
    s.receivedBytes += c.receivedTotal - c.receivedReported;
    c.sentReported = c.sentTotal;
    c.receivedReported = c.receivedTotal;
    if (end) {
      s.closed++;
      this.liveTcp.delete(c);
    }
    if (!s.pending) {
      s.pending = true;
      this.pendingTcp.push(s);
    }
  }

  /** Moves pending counts (those of open TCP connections included) into the counters. */
  private flush(): void {
    for (const c of this.liveTcp) this.reportTcp(c, NO_FLAGS, false);
    for (const s of this.pendingHttp) {
      this.requestsTotal.inc(s.labels, s.requests);
      if (s.grpc) {
        this.requestMessages.inc(s.labels, s.requestMessages);
        this.responseMessages.inc(s.labels, s.responseMessages);
      }
      s.requests = s.requestMessages = s.responseMessages = 0;
      s.pending = false;
    }
    this.pendingHttp.length = 0;
    for (const s of this.pendingTcp) {
      if (s.opened) this.tcpOpened.inc(s.labels, s.opened);
      if (s.closed) this.tcpClosed.inc(s.labels, s.closed);
      // Every report adds to both byte counters, so they exist (at 0 if need be) from the first one, as in Envoy.
      this.tcpSent.inc(s.labels, s.sentBytes);
      this.tcpReceived.inc(s.labels, s.receivedBytes);
      s.opened = s.closed = s.sentBytes = s.receivedBytes = 0;
      s.pending = false;
    }
    this.pendingTcp.length = 0;
  }

  private httpSeriesByValue(r: HttpRequestRecord, flags: FlagSet): HttpSeries {
    const labels: HttpLabelSet = {
      ...peerLabelSet(r.source, r.destination, r.destinationService),
      request_protocol: r.requestProtocol,
      response_code: String(r.responseCode),
      grpc_response_status: r.grpcStatus ?? '',
      response_flags: flags.text,
      connection_security_policy: r.connectionSecurityPolicy,
    };
    const key = valueKey(labels);
    let s = this.httpSeries.get(key);
    if (s === undefined) this.httpSeries.set(key, (s = new HttpSeries(labels)));
    return s;
  }

  private tcpSeriesOf(c: TcpConnectionLabels, flags: FlagSet): TcpSeries {
    // Security policy (2 bits) and flag set: the labels of a connection beyond its peers.
    const restKey = flags.index < FLAG_SET_SLOTS ? SECURITY_SLOT[c.connectionSecurityPolicy] | (flags.index << 2) : -1;
    const byRest = restKey < 0 ? undefined : this.tcpCache.byRest(c.source, c.destination, c.destinationService);
    let s = byRest?.get(restKey);
    if (s !== undefined) return s;
    const labels: TcpLabelSet = {
      ...peerLabelSet(c.source, c.destination, c.destinationService),
      request_protocol: 'tcp',
      response_flags: flags.text,
      connection_security_policy: c.connectionSecurityPolicy,
    };
    const key = valueKey(labels);
    s = this.tcpSeries.get(key);
    if (s === undefined) this.tcpSeries.set(key, (s = new TcpSeries(labels)));
    byRest?.set(restKey, s);
    return s;
  }
}

class TcpConnection implements TcpTracker {
  series: TcpSeries | undefined;
  sentTotal = 0;
  receivedTotal = 0;
  sentReported = 0;
  receivedReported = 0;
  private closed = false;

  constructor(
    private readonly owner: WaypointTelemetry,
    readonly labels: TcpConnectionLabels,
  ) {}

  sent(n: number): void {
    this.sentTotal += n;
  }

  received(n: number): void {
    this.receivedTotal += n;
  }

  close(flags: readonly ResponseFlag[] = []): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.reportTcp(this, flagSet(flags), true);
  }
}

// ---- Access log ----------------------------------------------------------------------------------------------

const dash = (value: string | undefined): string => (value === undefined || value === '' ? '-' : value);
/** Envoy stores details with whitespace replaced (StringUtil::replaceAllEmptySpace), keeping the fields splittable. */
const token = (value: string | undefined): string => dash(value).replace(/[ \t\f\v\n\r]/g, '_');

/** One line of Istio's default Envoy access log (`EnvoyTextLogFormat`), newline included. */
export function formatAccessLog(r: HttpRequestRecord): string {
  return (
    `[${new Date(r.startTime).toISOString()}] "${dash(r.method)} ${dash(r.path)} ${r.protocol}" ${r.responseCode} ` +
    `${flagSet(r.responseFlags).text} ${token(r.responseCodeDetails)} ${token(r.connectionTerminationDetails)} ` +
    `"${dash(r.upstreamTransportFailureReason)}" ${r.bodyBytesReceived} ${r.bodyBytesSent} ${Math.floor(r.durationMs)} ` +
    `${r.upstreamServiceTimeMs ?? '-'} "${dash(r.forwardedFor)}" "${dash(r.userAgent)}" "${dash(r.requestId)}" ` +
    `"${dash(r.authority)}" "${dash(r.upstreamHost)}" ${dash(r.upstreamCluster)} ${dash(r.upstreamLocalAddress)} ` +
    `${dash(r.downstreamLocalAddress)} ${dash(r.downstreamRemoteAddress)} ${dash(r.requestedServerName)} ${dash(r.routeName)}\n`
  );
}
