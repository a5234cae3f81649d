#!/usr/bin/env node
// Runs the compiled test files with node's test runner. Unit tests run in parallel; tests under
// dist/test/e2e (real network namespaces, nftables, processes) run one file at a time because they
// share the machine's kernel state and two cores.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  let out = [];
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries.sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
const pick = (files) => filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
const all = pick(find('dist/test'));
const serial = all.filter((f) => f.includes('/e2e/'));
const parallel = all.filter((f) => !f.includes('/e2e/'));

let failed = false;
for (const [files, concurrency] of [[parallel, 2], [serial, 1]]) {
  if (files.length === 0) continue;
  // A test that hangs fails after 10 minutes, and a file whose tests are done exits even if something it started
  // still holds its event loop (a leaked child's pipe), so one defect can never stall the whole run.
  // (--test-force-exit exists from Node 20.14; older Nodes run without it.)
  const [major, minor] = process.versions.node.split('.').map(Number);
  const forceExit = major > 20 || (major === 20 && minor >= 14) ? ['--test-force-exit'] : [];
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...forceExit, ...files], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
