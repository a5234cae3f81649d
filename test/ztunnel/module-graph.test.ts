// The node proxy runs on every node, so what its module graph loads is memory paid per node. The CA's certificate
// library (@peculiar/x509 with reflect-metadata, tsyringe and ASN.1 schemas) and zod once came in through incidental
// imports and cost it ~15 MB; this keeps them out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ZTUNNEL_COMMAND = resolve(fileURLToPath(import.meta.url), '../../../src/cli/commands/ztunnel.js');
// Static `import … from '…'`, `import '…'` and `export … from '…'` as tsc emits them (type-only imports are erased).
const STATIC_IMPORT = /(?:^|[\n;])\s*(?:import|export)\s+(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]/g;

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
  const packages = packagesImported(ZTUNNEL_COMMAND);
  assert.ok(packages.has('@grpc/grpc-js') && packages.has('commander'), `the walk found ${[...packages.keys()].join(', ')}`);
  for (const heavy of ['@peculiar/x509', 'reflect-metadata', 'tsyringe', 'zod']) {
    assert.equal(packages.get(heavy), undefined, `${heavy} is imported by ${packages.get(heavy)?.join(', ')}`);
  }
});
