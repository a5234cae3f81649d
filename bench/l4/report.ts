// Results of the L4 benchmark: the JSON shape written by `--json` and the markdown tables printed on stdout
// (figures per scenario, ratios against `direct` and `haproxy`, and issue 5's targets for `ambit`).

export const SCENARIOS = ['direct', 'ambit', 'haproxy'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface LatencyMs {
  p50: number;
  p90: number;
  p99: number;
}

export interface ProxyFigures {
  role: string;
  cpu_vcpu_per_1k_rps: number;
  /** CPU milliseconds per connection during the new-connections phase (connect, 1 KB echoed, close). */
  cpu_ms_per_new_conn: number;
  rss_mb_idle: number;
  rss_mb_load: number;
  rss_mb_peak: number;
}

export interface ScenarioMetrics {
  /** Median of the single-stream runs. */
  throughput_gbps: number;
  latency_ms: LatencyMs;
  new_conn_per_s: number;
  /** Proxied scenarios: the worse of the two proxies (each must meet a per-proxy target). */
  cpu_vcpu_per_1k_rps?: number;
  rss_mb_idle?: number;
  /** Peak during the paced 1000 req/s run (Istio's "memory at 1000 rps"). */
  rss_mb_load?: number;
  // Details behind the headline figures.
  throughput_runs_gbps: number[];
  latency_requests: number;
  latency_failed: number;
  new_conn_failed: number;
  proxies?: ProxyFigures[];
}

export type ScenarioResult = ScenarioMetrics | { unavailable: string };
export interface L4Report {
  l4: Record<Scenario, ScenarioResult>;
}

export function isMeasured(r: ScenarioResult | undefined): r is ScenarioMetrics {
  return r !== undefined && !('unavailable' in r);
}

/** Issue 5's targets for `ambit` on a 2-core machine. */
export const TARGETS = {
  throughputVsHaproxy: 0.8,
  throughputGbps: 2.5,
  addedP99Ms: 1,
  vcpuPer1kRps: 0.12,
  rssMbLoad: 80,
  newConnPerS: 800,
};

const fixed = (v: number | undefined, digits: number): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !(b > 0) ? '—' : `${(a / b).toFixed(2)}×`;

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/** Markdown: the figures per scenario, then ratios, then the targets. */
export function formatReport(report: L4Report, meta: string[]): string {
  const r = report.l4;
  const lines: string[] = [...meta.map((m) => `${m}  `), ''];
  lines.push(row(['scenario', 'throughput Gbit/s', 'p50 ms', 'p90 ms', 'p99 ms', 'new conn/s', 'vCPU per 1k rps (per proxy)', 'RSS idle MB', 'RSS load MB']));
  lines.push(row(Array(9).fill('---')));
  for (const s of SCENARIOS) {
    const m = r[s];
    if (!isMeasured(m)) {
      lines.push(row([s, `unavailable: ${m.unavailable.replaceAll('|', '/').replaceAll('\n', ' ')}`, '', '', '', '', '', '', '']));
      continue;
    }
    lines.push(row([s, fixed(m.throughput_gbps, 2), fixed(m.latency_ms.p50, 3), fixed(m.latency_ms.p90, 3), fixed(m.latency_ms.p99, 3),
      fixed(m.new_conn_per_s, 0), fixed(m.cpu_vcpu_per_1k_rps, 3), fixed(m.rss_mb_idle, 1), fixed(m.rss_mb_load, 1)]));
  }

  const proxyRows = SCENARIOS.flatMap((s) => {
    const m = r[s];
    return isMeasured(m) ? (m.proxies ?? []).map((x) => row([s, x.role, fixed(x.cpu_vcpu_per_1k_rps, 3), fixed(x.cpu_ms_per_new_conn, 3),
      fixed(x.rss_mb_idle, 1), fixed(x.rss_mb_load, 1), fixed(x.rss_mb_peak, 1)])) : [];
  });
  if (proxyRows.length) {
    lines.push('', row(['scenario', 'proxy', 'vCPU per 1k rps', 'CPU ms per new conn', 'RSS idle MB', 'RSS load MB', 'RSS peak MB']), row(Array(7).fill('---')), ...proxyRows);
  }

  const d = isMeasured(r.direct) ? r.direct : undefined;
  const a = isMeasured(r.ambit) ? r.ambit : undefined;
  const h = isMeasured(r.haproxy) ? r.haproxy : undefined;
  lines.push('', row(['ratio', 'ambit / direct', 'ambit / haproxy', 'haproxy / direct']), row(Array(4).fill('---')));
  const ratios: [string, (m: ScenarioMetrics) => number | undefined][] = [
    ['throughput', (m) => m.throughput_gbps],
    ['p50 latency', (m) => m.latency_ms.p50],
    ['p90 latency', (m) => m.latency_ms.p90],
    ['p99 latency', (m) => m.latency_ms.p99],
    ['new conn/s', (m) => m.new_conn_per_s],
  ];
  for (const [name, get] of ratios) {
    lines.push(row([name, ratio(a && get(a), d && get(d)), ratio(a && get(a), h && get(h)), ratio(h && get(h), d && get(d))]));
  }
  lines.push(row(['vCPU per 1k rps', '—', ratio(a?.cpu_vcpu_per_1k_rps, h?.cpu_vcpu_per_1k_rps), '—']));
  lines.push(row(['RSS under load', '—', ratio(a?.rss_mb_load, h?.rss_mb_load), '—']));
  const added = (m: ScenarioMetrics | undefined, p: keyof LatencyMs): string => (m && d ? `+${(m.latency_ms[p] - d.latency_ms[p]).toFixed(3)} ms` : '—');
  lines.push('', row(['added over direct', 'p50', 'p90', 'p99']), row(Array(4).fill('---')));
  for (const [name, m] of [['ambit', a], ['haproxy', h]] as const) lines.push(row([name, added(m, 'p50'), added(m, 'p90'), added(m, 'p99')]));

  lines.push('', row(['ambit target', 'value', 'met']), row(Array(3).fill('---')));
  for (const t of targetChecks(report)) lines.push(row([t.target, t.value, t.met === undefined ? '—' : t.met ? 'yes' : 'NO']));
  return lines.join('\n') + '\n';
}

export function targetChecks(report: L4Report): { target: string; value: string; met?: boolean }[] {
  const a = isMeasured(report.l4.ambit) ? report.l4.ambit : undefined;
  const d = isMeasured(report.l4.direct) ? report.l4.direct : undefined;
  const h = isMeasured(report.l4.haproxy) ? report.l4.haproxy : undefined;
  const check = (target: string, value: number | undefined, ok: (v: number) => boolean, unit: string): { target: string; value: string; met?: boolean } =>
    value === undefined || !Number.isFinite(value) ? { target, value: '—' } : { target, value: `${value.toFixed(3)}${unit}`, met: ok(value) };
  return [
    check(`throughput ≥ ${TARGETS.throughputVsHaproxy} × haproxy`, a && h ? a.throughput_gbps / h.throughput_gbps : undefined, (v) => v >= TARGETS.throughputVsHaproxy, '×'),
    check(`throughput ≥ ${TARGETS.throughputGbps} Gbit/s`, a?.throughput_gbps, (v) => v >= TARGETS.throughputGbps, ' Gbit/s'),
    check(`added p99 over direct ≤ ${TARGETS.addedP99Ms} ms`, a && d ? a.latency_ms.p99 - d.latency_ms.p99 : undefined, (v) => v <= TARGETS.addedP99Ms, ' ms'),
    check(`≤ ${TARGETS.vcpuPer1kRps} vCPU per 1000 rps per ztunnel`, a?.cpu_vcpu_per_1k_rps, (v) => v <= TARGETS.vcpuPer1kRps, ' vCPU'),
    check(`RSS ≤ ${TARGETS.rssMbLoad} MB under load`, a?.rss_mb_load, (v) => v <= TARGETS.rssMbLoad, ' MB'),
    check(`≥ ${TARGETS.newConnPerS} new connections/s`, a?.new_conn_per_s, (v) => v >= TARGETS.newConnPerS, '/s'),
  ];
}

export function median(values: number[]): number {
  const s = [...values].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
