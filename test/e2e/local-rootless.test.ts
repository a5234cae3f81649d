// The local cluster started without root: the supervisor runs as root of its own user namespace, and pods, DNS,
// Services and exec work the same.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { FETCH, echoManifest, TestCluster, hostSnapshot } from './local-harness.js';

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
});
