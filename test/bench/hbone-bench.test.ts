// The HBONE loopback benchmark runs end to end in a tiny size, every mode: real TLS, HTTP/2 and relay processes.
// Only completion and the report's shape are checked; benchmarks, not tests, judge the numbers.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const BENCH = fileURLToPath(new URL('../../bench/hbone.js', import.meta.url));
const MODES = ['direct', 'default', 'tuned', 'tls-relay', 'tcp-relay'];

test('bench:hbone runs every mode and reports throughput, latency, new connections and CPU per unit of work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-bench-test-'));
  try {
    const jsonFile = join(dir, 'result.json');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [BENCH, '--seconds', '0.3', '--rounds', '300', '--conn-seconds', '0.3', '--modes', MODES.join(','), '--json', jsonFile],
      { timeout: 120_000 },
    );
    for (const mode of MODES) {
      const cpu = '\\d+ \\(\\d+\\)';
      const client = mode === 'direct' ? '—' : cpu;
      const row = [mode, '[0-9.]+', '\\d+', '\\d+', '\\d+', client, cpu, '\\d+', client, cpu].join(' +\\| +');
      assert.match(stdout, new RegExp(`^${row}$`, 'm'), `row of ${mode}`);
    }
    const { hbone } = JSON.parse(readFileSync(jsonFile, 'utf8'));
    assert.deepEqual(Object.keys(hbone), MODES);
    for (const mode of MODES) {
      const r = hbone[mode];
      assert.ok(r.bulk_gbps > 0 && r.round_trips_per_s > 0 && r.p99_us >= r.p50_us, `${mode}: ${JSON.stringify(r)}`);
      assert.ok(r.server_cpu_us_per_round_trip > 0, `${mode}: server CPU`);
      assert.equal(r.client_cpu_us_per_round_trip === null, mode === 'direct', `${mode}: client CPU`);
      assert.ok(r.new_conn_per_s > 0 && r.server_cpu_us_per_new_conn > 0, `${mode}: new connections`);
      assert.equal(r.client_cpu_us_per_new_conn === null, mode === 'direct', `${mode}: client CPU per connection`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench:hbone names the valid modes when given an unknown one', async () => {
  await assert.rejects(promisify(execFile)(process.execPath, [BENCH, '--modes', 'tuned,quic'], { timeout: 30_000 }), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 1);
    assert.match(e.stderr, /unknown mode quic; modes are direct, default, tuned, tls-relay, tcp-relay/);
    return true;
  });
});
