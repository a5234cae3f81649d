// The control-plane benchmark runs end to end in its --quick size: real store, index, TLS gRPC server and ADS client
// process. Only completion and the report's shape are checked; benchmarks, not tests, judge the numbers.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const BENCH = fileURLToPath(new URL('../../bench/controlplane.js', import.meta.url));

test('bench:controlplane --quick completes and prints the results table and JSON', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-bench-test-'));
  try {
    const jsonFile = join(dir, 'result.json');
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', BENCH, '--quick', '--json', jsonFile], {
      timeout: 120_000,
    });
    assert.match(stdout, /^\| Measurement \| Result \| Target \| Status \|$/m);
    for (const row of [
      'Full translation (store + ambient index), wall',
      'Initial sync of 10 clients, last client',
      'One pod change → all 10 clients, p99',
      'Peak RSS, control plane (maxRSS)',
    ]) {
      assert.match(stdout, new RegExp(`^\\| ${row.replace(/[()+]/g, '\\$&')} \\| [0-9.]+ (ms|MiB) \\|`, 'm'), `missing row "${row}"`);
    }
    const result = JSON.parse(readFileSync(jsonFile, 'utf8'));
    assert.equal(result.quick, true);
    assert.equal(result.scale.pods, 2000);
    // Every pod becomes an Address, and so does every service.
    assert.equal(result.translation.addresses, result.scale.pods + result.scale.services);
    assert.equal(result.podChange.rounds, result.scale.repeats);
    assert.equal(result.errorsLogged, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
