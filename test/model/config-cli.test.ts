// `ambit config ztunnel` as a user runs it: the real CLI process, real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { FIXTURES } from './helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(name, FIXTURES));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test('prints the translation of valid files as JSON, exit 0', async () => {
  const r = await run(['config', 'ztunnel', '-f', fixture('workloads.yaml')]);
  // Warnings may appear as validation evolves; errors may not.
  assert.doesNotMatch(r.stderr, /: error: /);
  assert.equal(r.code, 0);
  const golden = JSON.parse(readFileSync(fixture('workloads.golden.json'), 'utf8'));
  assert.deepEqual(JSON.parse(r.stdout), golden);
});

test('EndpointSlices are read and translated: the golden of Istio’s EndpointSlice cases, no kind skipped', async () => {
  const r = await run(['config', 'ztunnel', '-f', fixture('endpointslices-istiod.yaml')]);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.stdout), JSON.parse(readFileSync(fixture('endpointslices-istiod.golden.json'), 'utf8')));
});

test('ServiceEntries and WorkloadEntries are read and translated: the golden of Istio’s cases, no kind skipped', async () => {
  const r = await run(['config', 'ztunnel', '-f', fixture('serviceentries-istiod.yaml')]);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.stdout), JSON.parse(readFileSync(fixture('serviceentries-istiod.golden.json'), 'utf8')));
});

test('-o yaml prints the same content as YAML', async () => {
  const [json, yaml] = await Promise.all([
    run(['config', 'ztunnel', '-f', fixture('peerauth-namespace.yaml')]),
    run(['config', 'ztunnel', '-f', fixture('peerauth-namespace.yaml'), '-o', 'yaml']),
  ]);
  assert.equal(yaml.code, 0);
  assert.deepEqual(parse(yaml.stdout), JSON.parse(json.stdout));
  assert.match(yaml.stdout, /name: converted_peer_authentication_per-port/);
});

test('bad documents are reported with file:line:col on stderr, the rest is still printed, exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ambit-model-cli-'));
  try {
    const file = join(dir, 'mixed.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: security.istio.io/v1',
        'kind: AuthorizationPolicy',
        'metadata: {name: bad-action, namespace: shop}',
        'spec:',
        '  action: PERMIT',
        '---',
        'apiVersion: security.istio.io/v1',
        'kind: AuthorizationPolicy',
        'metadata: {name: good, namespace: shop}',
        'spec: {action: DENY, rules: [{from: [{source: {namespaces: ["evil"]}}]}]}',
        '',
      ].join('\n'),
    );
    const r = await run(['config', 'ztunnel', '-f', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: error: AuthorizationPolicy shop/bad-action: `, 'm'));
    const dump = JSON.parse(r.stdout);
    assert.deepEqual(
      dump.policies.map((p: { name: string }) => p.name),
      ['good'],
    );
    assert.equal(dump.policyStatus[0].conditions[0].message, 'attached to ztunnel');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown output format is refused with a clear error', async () => {
  const r = await run(['config', 'ztunnel', '-f', fixture('workloads.yaml'), '-o', 'xml']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown output format "xml" for -o\/--output \(expected one of: json, yaml\)/);
  assert.equal(r.stdout, '');
});

test('a missing path is an error naming it', async () => {
  const r = await run(['config', 'ztunnel', '-f', '/nonexistent/ambit-model-cli.yaml']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\/nonexistent\/ambit-model-cli\.yaml/);
});

test('a Deployment asking for more replicas than Ambit holds is refused at once, naming the field and the limit', async () => {
  // 100,000,000 replicas used to be translated one workload at a time: over 60 s and 2.65 GB before any output.
  const dir = mkdtempSync(join(tmpdir(), 'ambit-config-cli-'));
  try {
    const file = join(dir, 'huge.yaml');
    writeFileSync(
      file,
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: huge, namespace: shop}\nspec:\n  replicas: 100000000\n' +
        '  selector: {matchLabels: {app: huge}}\n  template:\n    metadata: {labels: {app: huge}}\n    spec: {containers: [{name: c, image: x}]}\n',
    );
    const r = await run(['config', 'ztunnel', '-f', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `${file}:5:13: error: Deployment shop/huge: spec.replicas: Invalid value: 100000000: must be less than or equal to 10000\n`);
    assert.deepEqual(JSON.parse(r.stdout).workloads, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
