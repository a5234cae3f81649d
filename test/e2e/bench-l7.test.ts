// The L7 benchmark tool runs end to end (`--quick --tiny`: a real 3-node local cluster, a real waypoint deployed by
// `ambit waypoint apply`, Debian's nginx when installed) and produces the promised tables and JSON; it leaves
// nothing behind. Figures are not asserted: tests never judge wall-clock speed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PATHS, addLatencyOverDirect, formatReport, targetChecks, verdict, type L7Report, type PathMetrics } from '../../bench/l7/report.js';

const L7 = fileURLToPath(new URL('../../bench/l7.js', import.meta.url));
const isRoot = process.getuid?.() === 0;
const hasNginx = existsSync('/usr/sbin/nginx');

function run(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [L7, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    // SIGTERM first: the tool then still removes its cluster.
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

const finite = (name: string, v: number | undefined, min = 0): void => assert.ok(Number.isFinite(v) && v! >= min, `${name}: ${v}`);

function assertMetrics(name: string, m: PathMetrics, processes: number): void {
  finite(`${name} max_rps`, m.max_rps, Number.MIN_VALUE);
  for (const l of [m.latency_ms, m.max_latency_ms]) {
    for (const p of ['p50', 'p90', 'p99'] as const) finite(`${name} latency ${p}`, l[p], Number.MIN_VALUE);
    assert.ok(l.p50 <= l.p90 && l.p90 <= l.p99, `${name}: percentiles out of order`);
  }
  finite(`${name} path_vcpu_per_1k_rps`, m.path_vcpu_per_1k_rps, Number.MIN_VALUE);
  assert.ok(m.response_bytes > m.request_bytes, `${name}: the echoed response (${m.response_bytes} B) holds the request body (${m.request_bytes} B)`);
  finite(`${name} rate_rps`, m.rate_rps, Number.MIN_VALUE);
  assert.ok(m.rate_requests > 0 && m.max_requests > 0, `${name}: requests made`);
  assert.equal(m.rate_failed, 0, `${name}: failed requests at the fixed rate`);
  assert.equal(m.max_failed, 0, `${name}: failed requests at max throughput`);
  for (const k of ['cpu_busy_at_rate', 'cpu_busy_at_max'] as const) {
    assert.ok(m[k].length >= 1 && m[k].every((x) => Number.isFinite(x) && x >= 0 && x <= 1), `${name} ${k}: ${JSON.stringify(m[k])}`);
  }
  assert.equal(m.processes.length, processes, `${name}: proxy processes on the path: ${m.processes.map((x) => x.role).join(', ')}`);
  for (const x of m.processes) {
    finite(`${name} ${x.role} cpu_vcpu_per_1k_rps`, x.cpu_vcpu_per_1k_rps, Number.MIN_VALUE);
    finite(`${name} ${x.role} cpu_vcpu_at_max`, x.cpu_vcpu_at_max);
    finite(`${name} ${x.role} cpu_vcpu_per_1k_req_at_max`, x.cpu_vcpu_per_1k_req_at_max);
    for (const k of ['rss_mb_idle', 'rss_mb_load', 'rss_mb_private', 'rss_mb_peak'] as const) finite(`${name} ${x.role} ${k}`, x[k], 1);
  }
  if (name === 'direct') {
    assert.equal(m.proxy_vcpu_per_1k_rps, undefined, 'direct: no L7 proxy');
    assert.equal(m.added_latency_ms, undefined, 'direct: nothing added over itself');
  } else {
    finite(`${name} proxy_vcpu_per_1k_rps`, m.proxy_vcpu_per_1k_rps, Number.MIN_VALUE);
    finite(`${name} proxy_rss_mb_load`, m.proxy_rss_mb_load, 1);
    assert.ok(Number.isFinite(m.added_latency_ms?.p50) && Number.isFinite(m.added_latency_ms?.p99), `${name}: added latency ${JSON.stringify(m.added_latency_ms)}`);
  }
}

test('l7 --quick --tiny measures the three paths and writes the tables and JSON', { skip: !isRoot && 'needs root (local cluster)', timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-l7-test-'));
  try {
    const jsonFile = join(dir, 'l7.json');
    const r = await run(['--quick', '--tiny', '--json', jsonFile], 110_000);
    assert.equal(r.code, 0, `l7 exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);

    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as L7Report;
    assert.deepEqual(Object.keys(report), ['l7']);
    assert.deepEqual(Object.keys(report.l7).sort(), [...PATHS].sort());
    const measured = (name: keyof L7Report['l7']): PathMetrics => {
      const m = report.l7[name];
      assert.ok(!('unavailable' in m), `${name} must run: ${JSON.stringify(m)}\nstderr:\n${r.stderr}`);
      return m;
    };
    assertMetrics('direct', measured('direct'), 2);
    assertMetrics('waypoint', measured('waypoint'), 3);
    if (hasNginx) {
      const n = measured('nginx');
      assertMetrics('nginx', n, 4);
      finite('nginx hop_vcpu_per_1k_rps', n.hop_vcpu_per_1k_rps, Number.MIN_VALUE);
    } else {
      const n = report.l7.nginx;
      assert.ok('unavailable' in n && /nginx/.test(n.unavailable), `without nginx the path says why: ${JSON.stringify(n)}`);
    }

    // The markdown: a row per path, a row per proxy process, the ratios and the targets with a verdict each.
    assert.match(r.stdout, /^\| path \| max req\/s \| p50 ms \| p99 ms \| added p50 ms \| added p99 ms \| proxy vCPU per 1k rps \| proxy RSS MB \|/m);
    for (const p of PATHS) assert.match(r.stdout, new RegExp(`^\\| ${p} \\| \\d+ \\| [\\d.]+ \\| [\\d.]+ \\| `, 'm'), `row of ${p}`);
    assert.match(r.stdout, /^\| waypoint \| waypoint \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$/m);
    if (hasNginx) assert.match(r.stdout, /^\| nginx \| nginx \(master \+ worker\) \| [\d.]+ \|/m);
    assert.match(r.stdout, /^\| waypoint \/ nginx: vCPU per 1k rps \| /m);
    for (const t of targetChecks(report)) {
      // Only a negative added latency (a disturbed direct run, likely in so short a run) leaves a figure undecided.
      assert.ok(t.met !== undefined || t.value.startsWith('-'), `a verdict for "${t.target}": ${t.value}`);
      assert.ok(r.stdout.includes(`| ${t.target} | ${t.value} | ${verdict(t)} |`), `target row "${t.target}"`);
    }

    // The cluster, its temp dir and every process started from it (nginx included) are gone.
    const state = /state in (\S+)\)/.exec(r.stderr)?.[1];
    assert.ok(state, `the tool names its state dir:\n${r.stderr}`);
    assert.equal(existsSync(state), false, `${state} was left behind`);
    const left = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(state);
      } catch {
        return false;
      }
    });
    assert.deepEqual(left, [], `processes started from ${state} still run`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the report computes added latency, ratios and the targets from the figures', () => {
  const m = (rps: number, p99: number, proxy?: { cpu: number; rss: number }): PathMetrics => ({
    max_rps: rps, max_latency_ms: { p50: 4, p90: 8, p99: 16 }, latency_ms: { p50: p99 / 4, p90: p99 / 2, p99 },
    ...(proxy ? { proxy_vcpu_per_1k_rps: proxy.cpu, proxy_rss_mb_load: proxy.rss } : {}),
    path_vcpu_per_1k_rps: (proxy?.cpu ?? 0) + 0.3, request_bytes: 768, response_bytes: 1024, rate_rps: 1000, rate_requests: 1000,
    rate_failed: 0, max_requests: 1000, max_failed: 0, cpu_busy_at_rate: [0.5, 0.5], cpu_busy_at_max: [1, 1], processes: [],
  });
  const report: L7Report = {
    l7: { direct: m(3000, 2), waypoint: m(1500, 5, { cpu: 0.3, rss: 80 }), routes: m(1400, 5.5, { cpu: 0.33, rss: 81 }), nginx: { ...m(2500, 2.5, { cpu: 0.1, rss: 10 }), hop_vcpu_per_1k_rps: 0.25 } },
  };
  addLatencyOverDirect(report);
  assert.deepEqual((report.l7.waypoint as PathMetrics).added_latency_ms, { p50: 0.75, p99: 3 });
  assert.equal((report.l7.direct as PathMetrics).added_latency_ms, undefined);
  const out = formatReport(report, ['# title']);
  assert.match(out, /^\| waypoint \| 1500 \| 1\.250 \| 5\.000 \| \+0\.750 \| \+3\.000 \| 0\.300 \| 80\.0 \| 0\.600 \|$/m);
  assert.match(out, /^\| waypoint \/ nginx: vCPU per 1k rps \| 3\.00× \|$/m);
  assert.match(out, /^\| waypoint \/ nginx: RSS under load \| 8\.00× \|$/m);
  assert.match(out, /^\| waypoint \/ \(nginx \+ the ztunnel of its node\): vCPU per 1k rps \| 1\.20× \|$/m);
  assert.match(out, /^\| waypoint \/ direct: max req\/s \| 0\.50× \|$/m);
  assert.match(out, /^\| routes \(100 HTTPRoutes, the last matching\) \/ waypoint: waypoint vCPU per 1k rps \| 1\.10× \|$/m);
  // 0.33 − 0.30 CPU seconds per 1000 requests: 30 µs per request.
  assert.match(out, /^\| route matching: waypoint CPU per request \(routes − waypoint\) \| \+30\.000 µs \|$/m);
  assert.deepEqual(Object.fromEntries(targetChecks(report).map((t) => [t.target, t.met])), {
    "≤ 0.25 vCPU per 1000 rps (Istio's Envoy waypoint)": false,
    "≤ 60 MB at 1000 rps (Istio's Envoy waypoint)": false,
    'added p99 over direct ≤ 2 ms at 1000 rps': false,
  });
  // A direct run slower than the waypoint's is noise, not a met target.
  const noisy: L7Report = { l7: { direct: m(3000, 9), waypoint: m(1500, 5, { cpu: 0.3, rss: 80 }), routes: { unavailable: 'not selected' }, nginx: { unavailable: 'not installed' } } };
  addLatencyOverDirect(noisy);
  const p99 = targetChecks(noisy).find((t) => t.target.startsWith('added p99'))!;
  assert.deepEqual([p99.value, p99.met], ['-4.000 ms', undefined]);
  assert.match(formatReport(noisy, []), /^\| added p99 over direct ≤ 2 ms at 1000 rps \| -4\.000 ms \| unclear: the direct path measured the slower \(noise\); run again \|$/m);
  report.l7.waypoint = { unavailable: 'the waypoint did not come up' };
  assert.match(formatReport(report, []), /^\| waypoint \| unavailable: the waypoint did not come up \|/m);
  assert.ok(targetChecks(report).every((t) => t.met === undefined), 'no verdicts without waypoint figures');
});
