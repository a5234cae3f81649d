// `npm run bench`: every benchmark suite, one after the other (they would skew each other's figures if run
// together), each in its own process with its own flags. `--quick` is passed to each suite; `--json FILE` merges
// the suites' JSON into one object ({"controlplane": …, "hbone": …, "l4": …, "l7": …}). Exits 1 if any suite failed.
//
//   node dist/bench/run-all.js [--quick] [--json FILE]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface Suite {
  name: string;
  script: string;
  nodeFlags: string[];
}

const SUITES: Suite[] = [
  // --expose-gc: the control-plane suite forces collections to measure retained memory.
  { name: 'controlplane', script: 'controlplane.js', nodeFlags: ['--expose-gc'] },
  { name: 'hbone', script: 'hbone.js', nodeFlags: [] },
  { name: 'l4', script: 'l4.js', nodeFlags: [] },
  { name: 'l7', script: 'l7.js', nodeFlags: [] },
  { name: 'kube-api', script: 'kube-api.js', nodeFlags: [] },
];

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'string' } } });
const dir = mkdtempSync(join(tmpdir(), 'ambit-bench-all-'));
const merged: Record<string, unknown> = {};
const failed: string[] = [];
try {
  for (const suite of SUITES) {
    const jsonFile = join(dir, `${suite.name}.json`);
    const args = [...suite.nodeFlags, fileURLToPath(new URL(suite.script, import.meta.url)), ...(values.quick ? ['--quick'] : []), '--json', jsonFile];
    process.stderr.write(`== ${suite.name}: node ${args.join(' ')}\n`);
    const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (r.status !== 0) failed.push(`${suite.name} (exit ${r.status ?? r.signal})`);
    if (existsSync(jsonFile)) {
      const result = JSON.parse(readFileSync(jsonFile, 'utf8')) as Record<string, unknown>;
      // A suite that already keys its result by its own name (as l4 and l7 do) is merged as is.
      Object.assign(merged, Object.keys(result).length === 1 && suite.name in result ? result : { [suite.name]: result });
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (values.json) writeFileSync(values.json, JSON.stringify(merged, null, 2) + '\n');
if (failed.length) process.stderr.write(`failed suites: ${failed.join(', ')}\n`);
process.exit(failed.length ? 1 : 0);
