// The local cluster started without root: the supervisor runs as root of its own user namespace, and pods, DNS,
// Services and exec work the same.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FETCH, echoManifest, eventually, TestCluster, hostSnapshot } from './local-harness.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const NOBODY = { uid: 65534, gid: 65534 };

const ECHO = echoManifest('httpGet');

describe('rootless local cluster', () => {
  const c = new TestCluster(NOBODY);
  let hostBefore: ReturnType<typeof hostSnapshot>;
  let userns: string | undefined;
  before(() => {
    hostBefore = hostSnapshot();
  });
  after(async () => {
    await c.destroy();
    assert.deepEqual(hostSnapshot(), hostBefore);
    // Pod programs of a rootless cluster live in the supervisor's user namespace: none may outlive `down`.
    const inside = readdirSync('/proc').filter((pid) => {
      try {
        return /^\d+$/.test(pid) && readlinkSync(`/proc/${pid}/ns/user`) === userns;
      } catch {
        return false;
      }
    });
    assert.deepEqual(inside, []);
  });

  it('runs the supervisor unprivileged in its own user namespace, with working pods, Services and exec', async () => {
    await c.ok(['up', '-f', c.manifest('echo.yaml', ECHO)]);
    c.recordNetns();
    const status = JSON.parse(await c.ok(['status', '-o', 'json'])) as { pid: number; rootless: boolean };
    assert.equal(status.rootless, true);
    userns = readlinkSync(`/proc/${status.pid}/ns/user`);
    assert.notEqual(userns, readlinkSync('/proc/self/ns/user'));
    assert.match(readFileSync(`/proc/${status.pid}/status`, 'utf8'), /^Uid:\s+65534\s/m, 'the supervisor holds no host privileges');
    const pods = await c.pods('default');
    assert.deepEqual(pods.map((p) => p.node).sort(), ['node-1', 'node-2']);
    for (const p of pods) assert.equal((await c.ok(['exec', 'echo', '--', 'node', '-e', FETCH, `http://${p.ip}:8080/`])).trim(), p.name);
    const who = (await c.ok(['exec', 'echo', '--', 'node', '-e', FETCH, 'http://echo/'])).trim();
    assert.ok(pods.some((p) => p.name === who), who);
  });

  it('serves `ambit dashboard prometheus --start` unprivileged: every node\'s ztunnel and the control plane are scraped', async () => {
    const child = spawn(process.execPath, [CLI, 'dashboard', '--cluster', c.name, 'prometheus', '--start', '--port', '0', '--scrape-interval', '1s'], { env: c.env, ...NOBODY });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d));
    child.stderr.on('data', (d: Buffer) => (output += d));
    try {
      const url = await eventually('prometheus ready', async () => {
        if (child.exitCode !== null) throw new Error(`ambit dashboard prometheus --start exited ${child.exitCode}: ${output}`);
        return /is ready: (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
      }, 60_000);
      const up = await eventually('the ztunnels and the control plane up', async () => {
        const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent('up == 1')}`, { signal: AbortSignal.timeout(5_000) });
        const body = (await r.json()) as { data?: { result: { metric: Record<string, string> }[] } };
        const apps = (body.data?.result ?? []).map((s) => `${s.metric.app}/${s.metric.node ?? ''}`).sort();
        return apps.length >= 3 ? apps : undefined;
      }, 60_000);
      assert.deepEqual(up, ['istiod/', 'ztunnel/node-1', 'ztunnel/node-2']);
    } finally {
      child.kill('SIGINT');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('exit', resolve)));
    }
  });
});
