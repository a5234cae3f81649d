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
// A file whose tests are done but which something it started keeps alive (a leaked child's pipe, a timer) would hold
// the run forever; each phase has a deadline instead, after which the run fails naming the phase. Node's
// --test-force-exit is not used: it drops the verdicts of a file's last tests without a word (nodejs/node#64833), so
// a run could report fewer tests than ran.
const PHASE_DEADLINE_MS = { parallel: 20 * 60_000, serial: 40 * 60_000 };
for (const [files, concurrency, phase] of [[parallel, 2, 'parallel'], [serial, 1, 'serial']]) {
  if (files.length === 0) continue;
  // A test that hangs fails after 10 minutes.
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...files], {
    stdio: 'inherit',
    timeout: PHASE_DEADLINE_MS[phase],
    killSignal: 'SIGKILL',
  });
  if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGKILL') {
    console.error(`run-tests: the ${phase} phase did not finish within ${PHASE_DEADLINE_MS[phase] / 60_000} minutes (a test file left something running); failing the run`);
    failed = true;
  } else if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
