// The README's command blocks, run as a reader pastes them: the quick start (its start command is `npm start`'s
// script; the set-up script has its own test and CI runs it as written), every line of "The demo" and of the L7
// section in order against the cluster that start made, and the configuration error example with the output it
// shows. `ambit` is a shell function for the built CLI, as `npm link` would provide; the cluster is chosen through
// AMBIT_CLUSTER, so the lines run unchanged. A line whose comment promises an outcome is retried until it holds
// (policies take effect within a second or so), then fails with what it printed.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { eventually, hostSnapshot, runCollecting, TestCluster, type CliResult } from './local-harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The ```sh blocks under a heading, up to the next heading of the same or a higher level. */
function blocksUnder(heading: string): string[] {
  const lines = README.split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `README has no heading "${heading}"`);
  const level = heading.split(' ')[0]!.length;
  const out: string[] = [];
  let block: string[] | undefined;
  for (const line of lines.slice(start + 1)) {
    if (block === undefined && /^#+ /.test(line) && line.split(' ')[0]!.length <= level) break;
    if (line.startsWith('```')) {
      if (block !== undefined) {
        out.push(block.join('\n'));
        block = undefined;
      } else if (line === '```sh') {
        block = [];
      }
      continue;
    }
    block?.push(line);
  }
  return out;
}

/** A command line and the comment after it (a `#` after two spaces, as the README writes them). */
function commands(block: string): Array<{ command: string; comment: string }> {
  return block
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'))
    .map((l) => {
      const at = l.search(/\s{2,}#\s/);
      return at < 0 ? { command: l.trim(), comment: '' } : { command: l.slice(0, at).trim(), comment: l.slice(at).replace(/^\s+#\s*/, '') };
    });
}

/** What a line's comment promises, checked against what it printed; undefined when it holds. */
function broken(comment: string, r: CliResult): string | undefined {
  if (/refused by policy/.test(comment)) return r.code !== 0 && /1 failed/.test(r.stdout) ? undefined : 'expected the request to fail';
  if (r.code !== 0) return `exited ${r.code}`;
  if (/^allowed: 200|^200/.test(comment) && !/results +200: \d+\n/.test(r.stdout)) return 'expected 200 answers only';
  if (comment.startsWith('✅') && !r.stdout.includes(comment)) return `expected "${comment}"`;
  if (/^[A-Z]+( [A-Z]+)+$/.test(comment) && r.stdout.split('\n')[0]!.split(/\s+/).join(' ') !== comment) return `expected the columns ${comment}`;
  if (/RBAC: access denied/.test(comment) && !r.stdout.includes('RBAC: access denied')) return 'expected RBAC: access denied';
  return undefined;
}

describe('the README, as written', { timeout: 300_000 }, () => {
  const c = new TestCluster();
  const env = { ...c.env, AMBIT_CLUSTER: c.name, AMBIT_CLI: CLI };
  let hostBefore: ReturnType<typeof hostSnapshot> | undefined;

  function sh(script: string, timeoutMs = 120_000): Promise<CliResult> {
    return runCollecting('sh', ['-c', `ambit() { node "$AMBIT_CLI" "$@"; }\n${script}`], { cwd: ROOT, env, timeoutMs });
  }

  async function runLine(command: string, comment: string): Promise<void> {
    let last: CliResult | undefined;
    let problem: string | undefined;
    try {
      await eventually(`${command}  # ${comment}`, async () => {
        last = await sh(command);
        problem = broken(comment, last);
        return problem === undefined ? true : undefined;
      }, 20_000);
    } catch {
      assert.fail(`README line failed (${problem}): ${command}\nstdout:\n${last?.stdout}\nstderr:\n${last?.stderr}`);
    }
  }

  before(() => {
    hostBefore = hostSnapshot();
  });
  after(async () => {
    await c.destroy();
    if (hostBefore) assert.deepEqual(hostSnapshot(), hostBefore);
  });

  it('quick start: the set-up script and npm scripts it names exist, and the start command brings the demo up', async () => {
    const [quick] = blocksUnder('## Quick start');
    const lines = commands(quick!);
    assert.deepEqual(lines.map((l) => l.command), ['sh scripts/setup.sh && npm start', 'sh scripts/setup.sh && npm test']);
    assert.ok(existsSync(join(ROOT, 'scripts/setup.sh')));
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.ok(scripts.test);
    const r = await sh(scripts.start!, 240_000);
    assert.equal(r.code, 0, `${scripts.start}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    // What it suggests next runs as printed (no `npm link` here, so with node and the script's path).
    const suggested = r.stdout.split('\n').filter((l) => l.startsWith('  node dist/src/cli/main.js '));
    assert.ok(suggested.length >= 3, r.stdout);
    for (const line of suggested.filter((l) => !l.includes('logs ztunnel'))) {
      const s = await sh(line.trim());
      assert.equal(s.code, 0, `${line}\n${s.stdout}${s.stderr}`);
    }
  });

  it('the demo, line by line', async () => {
    for (const block of blocksUnder('## The demo')) for (const { command, comment } of commands(block)) await runLine(command, comment);
  });

  it('L7: a waypoint for orders, line by line', async () => {
    const blocks = blocksUnder('### L7: a waypoint for `orders`');
    assert.ok(blocks.length > 0);
    for (const block of blocks) for (const { command, comment } of commands(block)) await runLine(command, comment);
  });

  it('the configuration error example prints the error it shows', async () => {
    const example = blocksUnder('## Usage').find((b) => b.includes("<<'EOF'"));
    assert.ok(example, 'README lost its error example');
    const shown = example.split('\n').filter((l) => l.startsWith('# ')).map((l) => l.slice(2));
    const r = await sh(example.split('\n').filter((l) => !l.startsWith('# ')).join('\n'));
    assert.equal(r.code, 1);
    assert.deepEqual(r.stderr.trimEnd().split('\n'), shown);
  });
});
