// The L4 benchmark tool runs end to end (`--quick --tiny`: a real local cluster, real iperf3, HAProxy and, when the
// cluster's ztunnels work, the ambient path) and produces the promised table and JSON; it leaves nothing behind.
// Figures are not asserted: tests never judge wall-clock speed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SCENARIOS, formatReport, targetChecks, type L4Report, type ScenarioMetrics } from '../../bench/l4/report.js';

const L4 = fileURLToPath(new URL('../../bench/l4.js', import.meta.url));
const isRoot = process.getuid?.() === 0;

function run(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [L4, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

function assertMetrics(name: string, m: ScenarioMetrics, proxied: boolean): void {
  assert.ok(m.throughput_gbps > 0, `${name}: throughput ${m.throughput_gbps}`);
  for (const p of ['p50', 'p90', 'p99'] as const) assert.ok(m.latency_ms[p] > 0, `${name}: latency ${p} ${m.latency_ms[p]}`);
  assert.ok(m.latency_ms.p50 <= m.latency_ms.p90 && m.latency_ms.p90 <= m.latency_ms.p99, `${name}: percentiles out of order`);
  assert.ok(m.new_conn_per_s > 0, `${name}: new connections/s ${m.new_conn_per_s}`);
  assert.equal(m.latency_failed, 0, `${name}: failed round trips`);
  if (proxied) {
    assert.ok(m.cpu_vcpu_per_1k_rps! > 0, `${name}: proxy CPU ${m.cpu_vcpu_per_1k_rps}`);
    assert.ok(m.rss_mb_idle! > 1 && m.rss_mb_load! > 1, `${name}: proxy RSS ${m.rss_mb_idle} / ${m.rss_mb_load}`);
    assert.equal(m.proxies?.length, 2, `${name}: two proxies measured`);
  } else {
    assert.equal(m.cpu_vcpu_per_1k_rps, undefined, `${name}: no proxy, no proxy CPU`);
  }
}

test('l4 --quick --tiny measures every available scenario and writes the table and JSON', { skip: !isRoot && 'needs root (local cluster)', timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-l4-test-'));
  try {
    const jsonFile = join(dir, 'l4.json');
    const r = await run(['--quick', '--tiny', '--json', jsonFile], 280_000);
    assert.equal(r.code, 0, `l4 exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);

    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as L4Report;
    assert.deepEqual(Object.keys(report), ['l4']);
    assert.deepEqual(Object.keys(report.l4).sort(), [...SCENARIOS].sort());
    assert.ok(!('unavailable' in report.l4.direct), `direct must always run: ${JSON.stringify(report.l4.direct)}`);
    assertMetrics('direct', report.l4.direct, false);
    for (const s of ['ambit', 'haproxy'] as const) {
      const m = report.l4[s];
      if ('unavailable' in m) assert.match(m.unavailable, /\S/, `${s}: an unavailable scenario says why`);
      else assertMetrics(s, m, true);
    }

    // The markdown table: a header, one row per scenario, and the ratio and target tables.
    assert.match(r.stdout, /^\| scenario \| throughput Gbit\/s \| p50 ms \| p90 ms \| p99 ms \| new conn\/s \|/m);
    for (const s of SCENARIOS) assert.match(r.stdout, new RegExp(`^\\| ${s} \\| `, 'm'));
    assert.match(r.stdout, /^\| ratio \| ambit \/ direct \| ambit \/ haproxy \| haproxy \/ direct \|$/m);
    assert.match(r.stdout, /^\| ambit target \| value \| met \|$/m);

    // The cluster and its temp dir are gone.
    const state = /state in (\S+)\)/.exec(r.stderr)?.[1];
    assert.ok(state, `the tool names its state dir:\n${r.stderr}`);
    assert.equal(existsSync(state), false, `${state} was left behind`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the report computes ratios, added latency and the targets from the figures', () => {
  const m = (gbps: number, p99: number, conns: number, cpu?: number, rss?: number): ScenarioMetrics => ({
    throughput_gbps: gbps, latency_ms: { p50: p99 / 4, p90: p99 / 2, p99 }, new_conn_per_s: conns,
    ...(cpu === undefined ? {} : { cpu_vcpu_per_1k_rps: cpu, rss_mb_idle: rss! / 2, rss_mb_load: rss }),
    throughput_runs_gbps: [gbps], latency_requests: 1000, latency_failed: 0, new_conn_failed: 0,
  });
  const report: L4Report = { l4: { direct: m(10, 1, 2000), ambit: m(2, 2.5, 900, 0.1, 90), haproxy: m(4, 1.5, 500, 0.05, 20) } };
  const out = formatReport(report, ['# title']);
  assert.match(out, /^\| throughput \| 0\.20× \| 0\.50× \| 0\.40× \|$/m);
  assert.match(out, /^\| ambit \| \+0\.375 ms \| \+0\.750 ms \| \+1\.500 ms \|$/m);
  const met = Object.fromEntries(targetChecks(report).map((t) => [t.target, t.met]));
  assert.deepEqual(met, {
    'throughput ≥ 0.8 × haproxy': false,
    'throughput ≥ 2.5 Gbit/s': false,
    'added p99 over direct ≤ 1 ms': false,
    '≤ 0.12 vCPU per 1000 rps per ztunnel': true,
    'RSS ≤ 80 MB under load': false,
    '≥ 800 new connections/s': true,
  });
  report.l4.ambit = { unavailable: 'ztunnel is not running' };
  assert.match(formatReport(report, []), /^\| ambit \| unavailable: ztunnel is not running \|/m);
  assert.ok(targetChecks(report).every((t) => t.met === undefined), 'no verdicts without ambit figures');
});
