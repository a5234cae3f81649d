// Results of the L7 benchmark: the JSON shape written by `--json` and the markdown tables printed on stdout
// (figures per path, each proxy process, ratios within the run, and the waypoint's targets).

export const PATHS = ['direct', 'waypoint', 'routes', 'nginx'] as const;
export type PathName = (typeof PATHS)[number];

export interface LatencyMs {
  p50: number;
  p90: number;
  p99: number;
}

/** One process of the path: a ztunnel, the waypoint, or nginx (master and worker counted together). */
export interface ProcessFigures {
  role: string;
  /** CPU seconds per 1000 requests during the fixed-rate phase: vCPU at 1000 req/s. */
  cpu_vcpu_per_1k_rps: number;
  /** CPUs kept busy during the max-throughput phase (CPU seconds per second). */
  cpu_vcpu_at_max: number;
  /** CPU seconds per 1000 requests during the max-throughput phase (busy processes handle several requests per wake-up). */
  cpu_vcpu_per_1k_req_at_max: number;
  rss_mb_idle: number;
  /** Peak VmRSS during the fixed-rate phase (Istio's "memory at 1000 rps"). */
  rss_mb_load: number;
  /** Private memory (Private_Clean + Private_Dirty) at the end of the fixed-rate phase; VmRSS also counts the program's shared code pages. */
  rss_mb_private: number;
  /** Peak VmRSS over every phase of the path. */
  rss_mb_peak: number;
}

export interface PathMetrics {
  /** Requests/s at max throughput (fixed concurrency, as fast as the path answers). */
  max_rps: number;
  max_latency_ms: LatencyMs;
  /** At the fixed rate, measured from each request's scheduled time. */
  latency_ms: LatencyMs;
  /** Over `direct` in the same run (undefined for direct itself or when direct did not run). */
  added_latency_ms?: { p50: number; p99: number };
  /** The L7 proxy (waypoint process; nginx master + worker). Undefined for `direct`. */
  proxy_vcpu_per_1k_rps?: number;
  proxy_rss_mb_load?: number;
  /** Every proxy process of the path together (ztunnels and the L7 proxy), per 1000 requests. */
  path_vcpu_per_1k_rps: number;
  /**
   * nginx only: nginx plus the ztunnel of its node, which does the two mTLS legs the waypoint does itself; undefined
   * when that ztunnel also carries the client's or the server's traffic (nginx on their node).
   */
  hop_vcpu_per_1k_rps?: number;
  // Details behind the headline figures.
  request_bytes: number;
  /** Body of one response as the client received it (headers the proxy adds are echoed in it). */
  response_bytes: number;
  rate_rps: number;
  rate_requests: number;
  rate_failed: number;
  max_requests: number;
  max_failed: number;
  /**
   * How busy each CPU of the machine was (0–1, CPU 0 first) during the fixed-rate and the max-throughput phase: the
   * path's proxies, the load generator, the echo server, and anything else running (which skews the figures).
   */
  cpu_busy_at_rate: number[];
  cpu_busy_at_max: number[];
  processes: ProcessFigures[];
}

export type PathResult = PathMetrics | { unavailable: string };
export interface L7Report {
  l7: Record<PathName, PathResult>;
}

export function isMeasured(r: PathResult | undefined): r is PathMetrics {
  return r !== undefined && !('unavailable' in r);
}

/** Istio 1.24's published figures for an Envoy waypoint at 1000 HTTP rps with 1 KB, and the latency budget. */
export const TARGETS = {
  vcpuPer1kRps: 0.25,
  rssMb: 60,
  addedP99Ms: 2,
};

const fixed = (v: number | undefined, digits: number): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const signed = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '—' : `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(3)}`);
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !Number.isFinite(a) || !(b > 0) ? '—' : `${(a / b).toFixed(2)}×`;

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

const ROUTE_COUNT_LABEL = '100 HTTPRoutes, the last matching';

/**
 * What matching the route table costs the waypoint per request: its CPU per request on the routes path minus on the
 * plain waypoint path, in µs (vCPU per 1000 req/s is CPU seconds per 1000 requests, i.e. ms per request).
 */
export function routeMatchingMicros(report: L7Report): number | undefined {
  const w = report.l7.waypoint;
  const rt = report.l7.routes;
  if (!isMeasured(w) || !isMeasured(rt) || w.proxy_vcpu_per_1k_rps === undefined || rt.proxy_vcpu_per_1k_rps === undefined) return undefined;
  return (rt.proxy_vcpu_per_1k_rps - w.proxy_vcpu_per_1k_rps) * 1000;
}

/** Fills in each proxied path's latency over `direct`. */
export function addLatencyOverDirect(report: L7Report): void {
  const d = report.l7.direct;
  for (const p of PATHS) {
    const m = report.l7[p];
    if (p === 'direct' || !isMeasured(m) || !isMeasured(d)) continue;
    m.added_latency_ms = { p50: m.latency_ms.p50 - d.latency_ms.p50, p99: m.latency_ms.p99 - d.latency_ms.p99 };
  }
}

/** Markdown: the figures per path, per process, then ratios and the targets. */
export function formatReport(report: L7Report, meta: string[]): string {
  const r = report.l7;
  const lines: string[] = [...meta.map((m) => `${m}  `), ''];
  lines.push(row(['path', 'max req/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms', 'proxy vCPU per 1k rps', 'proxy RSS MB', 'all proxies vCPU per 1k rps']));
  lines.push(row(Array(9).fill('---')));
  for (const p of PATHS) {
    const m = r[p];
    if (!isMeasured(m)) {
      lines.push(row([p, `unavailable: ${m.unavailable.replaceAll('|', '/').replaceAll('\n', ' ')}`, '', '', '', '', '', '', '']));
      continue;
    }
    lines.push(row([p, fixed(m.max_rps, 0), fixed(m.latency_ms.p50, 3), fixed(m.latency_ms.p99, 3), signed(m.added_latency_ms?.p50),
      signed(m.added_latency_ms?.p99), fixed(m.proxy_vcpu_per_1k_rps, 3), fixed(m.proxy_rss_mb_load, 1), fixed(m.path_vcpu_per_1k_rps, 3)]));
  }

  const processRows = PATHS.flatMap((p) => {
    const m = r[p];
    return isMeasured(m) ? m.processes.map((x) => row([p, x.role, fixed(x.cpu_vcpu_per_1k_rps, 3), fixed(x.cpu_vcpu_at_max, 2), fixed(x.cpu_vcpu_per_1k_req_at_max, 3),
      fixed(x.rss_mb_idle, 1), fixed(x.rss_mb_load, 1), fixed(x.rss_mb_private, 1), fixed(x.rss_mb_peak, 1)])) : [];
  });
  if (processRows.length) {
    lines.push('', row(['path', 'process', 'vCPU per 1k rps', 'vCPU at max', 'CPU s per 1k req at max', 'RSS idle MB', 'RSS load MB', 'private MB', 'RSS peak MB']),
      row(Array(9).fill('---')), ...processRows);
  }

  const detailRows = PATHS.flatMap((p) => {
    const m = r[p];
    return isMeasured(m) ? [row([p, `${m.request_bytes} / ${m.response_bytes}`, fixed(m.rate_rps, 0), `${m.rate_failed} of ${m.rate_requests}`,
      fixed(m.max_latency_ms.p50, 2), fixed(m.max_latency_ms.p99, 2), `${m.max_failed} of ${m.max_requests}`,
      m.cpu_busy_at_rate.map((x) => fixed(x, 2)).join(' + '), m.cpu_busy_at_max.map((x) => fixed(x, 2)).join(' + ')])] : [];
  });
  if (detailRows.length) {
    lines.push('', row(['path', 'request / response body B', 'achieved rate req/s', 'failed at rate', 'p50 ms at max', 'p99 ms at max', 'failed at max',
      'CPUs busy at rate', 'CPUs busy at max']), row(Array(9).fill('---')), ...detailRows);
  }

  const w = isMeasured(r.waypoint) ? r.waypoint : undefined;
  const n = isMeasured(r.nginx) ? r.nginx : undefined;
  const d = isMeasured(r.direct) ? r.direct : undefined;
  lines.push('', row(['ratio', 'value']), row(['---', '---']));
  lines.push(row(['waypoint / nginx: vCPU per 1k rps', ratio(w?.proxy_vcpu_per_1k_rps, n?.proxy_vcpu_per_1k_rps)]));
  lines.push(row(['waypoint / nginx: RSS under load', ratio(w?.proxy_rss_mb_load, n?.proxy_rss_mb_load)]));
  lines.push(row(['waypoint / (nginx + the ztunnel of its node): vCPU per 1k rps', ratio(w?.proxy_vcpu_per_1k_rps, n?.hop_vcpu_per_1k_rps)]));
  lines.push(row(['waypoint / nginx: all proxies vCPU per 1k rps', ratio(w?.path_vcpu_per_1k_rps, n?.path_vcpu_per_1k_rps)]));
  lines.push(row(['waypoint / nginx: max req/s', ratio(w?.max_rps, n?.max_rps)]));
  lines.push(row(['waypoint / direct: max req/s', ratio(w?.max_rps, d?.max_rps)]));
  lines.push(row(['nginx / direct: max req/s', ratio(n?.max_rps, d?.max_rps)]));
  const rt = isMeasured(r.routes) ? r.routes : undefined;
  lines.push(row([`routes (${ROUTE_COUNT_LABEL}) / waypoint: waypoint vCPU per 1k rps`, ratio(rt?.proxy_vcpu_per_1k_rps, w?.proxy_vcpu_per_1k_rps)]));
  const matchingUs = routeMatchingMicros(report);
  lines.push(row([`route matching: waypoint CPU per request (routes − waypoint)`, matchingUs === undefined ? '—' : `${signed(matchingUs)} µs`]));
  const addedP99 = w?.added_latency_ms?.p99;
  lines.push(row([`waypoint added p99 / ${TARGETS.addedP99Ms} ms target`, addedP99 === undefined ? '—' : `${signed(addedP99)} ms / ${TARGETS.addedP99Ms} ms = ${(addedP99 / TARGETS.addedP99Ms).toFixed(2)}`]));

  lines.push('', row(['waypoint target', 'value', 'met']), row(Array(3).fill('---')));
  for (const t of targetChecks(report)) lines.push(row([t.target, t.value, verdict(t)]));
  return lines.join('\n') + '\n';
}

type TargetCheck = { target: string; value: string; met?: boolean };

/** A figure with no verdict is either missing or, for added latency, below zero: the direct path was the disturbed one. */
export function verdict(t: TargetCheck): string {
  if (t.met !== undefined) return t.met ? 'yes' : 'NO';
  return t.value === '—' ? '—' : 'unclear: the direct path measured the slower (noise); run again';
}

export function targetChecks(report: L7Report): TargetCheck[] {
  const w = isMeasured(report.l7.waypoint) ? report.l7.waypoint : undefined;
  const check = (target: string, value: number | undefined, ok: (v: number) => boolean | undefined, unit: string): TargetCheck =>
    value === undefined || !Number.isFinite(value) ? { target, value: '—' } : { target, value: `${value.toFixed(3)}${unit}`, met: ok(value) };
  return [
    check(`≤ ${TARGETS.vcpuPer1kRps} vCPU per 1000 rps (Istio's Envoy waypoint)`, w?.proxy_vcpu_per_1k_rps, (v) => v <= TARGETS.vcpuPer1kRps, ' vCPU'),
    check(`≤ ${TARGETS.rssMb} MB at 1000 rps (Istio's Envoy waypoint)`, w?.proxy_rss_mb_load, (v) => v <= TARGETS.rssMb, ' MB'),
    check(`added p99 over direct ≤ ${TARGETS.addedP99Ms} ms at 1000 rps`, w?.added_latency_ms?.p99, (v) => (v < 0 ? undefined : v <= TARGETS.addedP99Ms), ' ms'),
  ];
}
