// The local cluster's isolation and clean-up: two clusters side by side, and `ambit down` after a supervisor crash.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { FETCH, echoManifest, TestCluster, eventually } from './local-harness.js';

const ECHO = echoManifest('tcpSocket');

describe('two clusters side by side', () => {
  const a = new TestCluster();
  const b = new TestCluster();
  after(async () => {
    // Both clusters are removed even when the first destroy() fails its leak assertion.
    for (const r of await Promise.allSettled([a.destroy(), b.destroy()])) if (r.status === 'rejected') throw r.reason;
  });

  it('run the same manifest with the same addresses without seeing each other', async () => {
    await Promise.all([a.ok(['up', '--nodes', '1', '-f', a.manifest('echo.yaml', ECHO)]), b.ok(['up', '--nodes', '2', '-f', b.manifest('echo.yaml', ECHO)])]);
    assert.match(await a.ok(['get', 'nodes']), /^node-1 .*\n$/m);
    assert.equal((await b.ok(['get', 'nodes'])).trim().split('\n').length, 3);
    const podsA = (await a.pods('default')).map((p) => p.name);
    const podsB = (await b.pods('default')).map((p) => p.name);
    assert.equal(podsA.length, 2);
    for (const [cluster, own] of [[a, podsA], [b, podsB]] as const) {
      for (let i = 0; i < 4; i++) {
        const who = (await cluster.ok(['exec', 'echo', '--', 'node', '-e', FETCH, 'http://echo.default.svc.cluster.local/'])).trim();
        assert.ok(own.includes(who), `cluster ${cluster.name} was answered by ${who}, not one of its pods ${own}`);
      }
    }
  });
});

describe('clean-up after a supervisor crash', () => {
  const c = new TestCluster();
  after(() => c.destroy());

  it('restarts a killed component, which gets its state (DNS records) back', async () => {
    await c.ok(['up', '-f', c.manifest('echo.yaml', ECHO)]);
    c.recordNetns();
    const before = JSON.parse(await c.ok(['status', '-o', 'json'])) as { components: { name: string; node: string; pid: number }[] };
    const agent = before.components.find((x) => x.name === 'node-agent' && x.node === 'node-1')!;
    process.kill(agent.pid, 'SIGKILL');
    await eventually('the node agent to be back', async () => {
      const now = JSON.parse(await c.ok(['status', '-o', 'json'])) as { components: { name: string; node: string; pid: number; healthy: boolean; restarts: number }[] };
      const a = now.components.find((x) => x.name === 'node-agent' && x.node === 'node-1')!;
      return a.healthy && a.restarts === 1 && a.pid !== agent.pid ? a : undefined;
    });
    const pods = await c.pods('default');
    const onNode1 = pods.find((p) => p.node === 'node-1')!;
    // The pod's resolver is its node's agent: the name resolves again only if the records were pushed again.
    const who = await eventually('DNS on node-1', async () => (await c.ok(['exec', `default/${onNode1.name}`, '--', 'node', '-e', FETCH, 'http://echo/'])).trim());
    assert.ok(pods.some((p) => p.name === who));
    assert.match(await c.ok(['logs', 'node-agent', '--node', 'node-1']), /node agent ready/);
    // Without --node, every node's instance, each line saying which node it came from.
    const all = (await c.ok(['logs', 'node-agent'])).split('\n').filter(Boolean);
    assert.ok(all.every((l) => /^\[node-[12]\] /.test(l)), all.slice(0, 5).join('\n'));
    for (const node of ['node-1', 'node-2']) assert.ok(all.some((l) => l.startsWith(`[${node}] `) && l.includes('node agent ready')), node);
  });

  it('ambit down removes pods, components and namespaces a killed supervisor left', async () => {
    const status = JSON.parse(await c.ok(['status', '-o', 'json'])) as { pid: number; components: { pid: number }[] };
    process.kill(status.pid, 'SIGKILL');
    await eventually('the supervisor to die', async () => {
      let state: string;
      try {
        state = readFileSync(`/proc/${status.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0]!;
      } catch {
        return true; // Gone and reaped.
      }
      return state === 'Z' ? true : undefined;
    });
    const st = await c.cli(['status']);
    assert.equal(st.code, 3, st.stdout + st.stderr);
    assert.match(st.stdout, /is not running/);
    // The orphans are still there: pods and node agents keep running without the supervisor.
    assert.ok(c.leftovers().some((l) => l.includes('cluster netns')), 'expected orphaned pod processes before down');
    const down = await c.ok(['down']);
    assert.match(down, /Deleted cluster/);
    assert.deepEqual(c.leftovers(), []);
  });
});
