// The shape of the code, checked: each folder under src/ has one job and may import only the folders listed for it
// below, so dependencies point one way. The proxies (ztunnel, waypoint) never reach into the control plane, the model
// or the local cluster; what both sides need lives in common/, xds/, identity/, hbone/ or telemetry/. And the node
// proxy's module graph stays free of the CA's certificate library and zod: it runs on every node, so what it loads is
// memory paid per node (@peculiar/x509 with reflect-metadata, tsyringe and ASN.1 schemas, and zod once cost ~15 MB).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = resolve(fileURLToPath(import.meta.url), '../..');
const ROOT = resolve(DIST, '..');
const SRC = join(ROOT, 'src');

/** Folder → the folders its files may import (besides itself). `cli` wires everything and may import anything. */
const ALLOWED: Record<string, readonly string[]> = {
  common: [],
  api: ['common'],
  identity: ['common'],
  telemetry: ['common'],
  inpod: ['common'],
  cni: ['common', 'inpod'],
  hbone: ['common', 'identity'],
  xds: ['common', 'identity', 'telemetry'],
  config: ['common', 'api'],
  model: ['common', 'api', 'xds'],
  analysis: ['common', 'api', 'model', 'xds'],
  controlplane: ['common', 'api', 'config', 'identity', 'model', 'telemetry', 'xds'],
  ztunnel: ['common', 'xds', 'hbone', 'identity', 'inpod', 'cni', 'telemetry'],
  waypoint: ['common', 'xds', 'hbone', 'identity', 'telemetry'],
  apiserver: ['common', 'api', 'identity'],
  local: ['common', 'api', 'apiserver', 'cni', 'config', 'controlplane', 'identity', 'inpod', 'model', 'xds'],
};

// Static `import … from '…'`, `import '…'`, `import type …` and `export … from '…'`, in TypeScript or emitted JS.
const STATIC_IMPORT = /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]/g;

function filesUnder(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, suffix));
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}

test('every folder under src/ imports only the folders it is allowed to', () => {
  const folders = readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isDirectory());
  const unknown = folders.filter((f) => f !== 'cli' && !(f in ALLOWED));
  assert.deepEqual(unknown, [], `folders without a rule in ALLOWED: ${unknown.join(', ')}`);
  const violations: string[] = [];
  let checked = 0;
  for (const folder of folders) {
    if (folder === 'cli') continue;
    for (const file of filesUnder(join(SRC, folder), '.ts')) {
      for (const [, specifier] of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
        if (!specifier!.startsWith('.')) continue;
        checked++;
        const target = relative(SRC, resolve(dirname(file), specifier!)).split('/')[0]!;
        if (target !== folder && !ALLOWED[folder]!.includes(target)) violations.push(`${relative(ROOT, file)} imports ${specifier} (${folder} → ${target})`);
      }
    }
  }
  assert.ok(checked > 100, `the walk found only ${checked} relative imports`);
  assert.deepEqual(violations, []);
});

/** Packages reached by the static imports of the compiled module at `entry`, each with the files importing it. */
function packagesImported(entry: string): Map<string, string[]> {
  const packages = new Map<string, string[]>();
  const seen = new Set<string>();
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      if (specifier!.startsWith('.')) pending.push(resolve(dirname(file), specifier!));
      else if (!specifier!.startsWith('node:')) {
        const name = specifier!.split('/').slice(0, specifier!.startsWith('@') ? 2 : 1).join('/');
        packages.set(name, [...(packages.get(name) ?? []), file]);
      }
    }
  }
  return packages;
}

test('the ztunnel command does not load the CA certificate library or zod', () => {
  const packages = packagesImported(join(DIST, 'src/cli/commands/ztunnel.js'));
  assert.ok(packages.has('@grpc/grpc-js') && packages.has('commander'), `the walk found ${[...packages.keys()].join(', ')}`);
  for (const heavy of ['@peculiar/x509', 'reflect-metadata', 'tsyringe', 'zod']) {
    assert.equal(packages.get(heavy), undefined, `${heavy} is imported by ${packages.get(heavy)?.join(', ')}`);
  }
});
