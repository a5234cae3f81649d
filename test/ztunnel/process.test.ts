// `ambit ztunnel` as a real process against a real control plane (TLS xDS + CA) and a small CNI-agent ZDS server:
// readiness follows xDS sync and the ZDS snapshot, /config_dump shows the mesh, a pod that cannot be served is
// refused in the ack without harming the process, the control plane going away keeps readiness and config, and
// SIGTERM exits 0. (Serving a real pod needs network namespaces: test/e2e.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TokenFileAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { ControlPlaneServer } from '../../src/controlplane/server.js';
import { xdsTypesOf } from '../../src/controlplane/xds.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../../src/xds/types.js';
import { CapturedLog, FakeSource } from '../controlplane/helpers.js';
import { eventually, policy, service, workload } from './helpers.js';

const MAIN = resolve(fileURLToPath(import.meta.url), '../../../src/cli/main.js');

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('ambit ztunnel process', () => {
  let dir: string;
  let server: ControlPlaneServer | undefined;
  let zds: Server;
  let agent: Socket | undefined;
  let agentLines: string[] = [];
  let proc: ChildProcess;
  let output = '';
  let ports: { admin: number; metrics: number; readiness: number };

  const send = async (msg: object): Promise<any> => {
    const before = agentLines.length;
    agent!.write(`${JSON.stringify(msg)}\n`);
    await eventually('ack', () => agentLines.length > before);
    return JSON.parse(agentLines[before]!);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-zt-proc-'));
    writeFileSync(join(dir, 'node-tokens.json'), JSON.stringify({ 'token-node-1': 'node-1' }));
    writeFileSync(join(dir, 'token'), 'token-node-1\n');
    const ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
    writeFileSync(join(dir, 'root.pem'), ca.rootPem);
    const source = new FakeSource([TYPE_ADDRESS, TYPE_AUTHORIZATION]);
    source.set(TYPE_ADDRESS, {
      'Kubernetes//Pod/demo/echo-1': workload('echo-1', [10, 244, 1, 2], { ns: 'demo', sa: 'echo' }),
      'demo/echo.demo.svc.cluster.local': service('echo', 'demo', [10, 96, 0, 30]),
    });
    source.set(TYPE_AUTHORIZATION, { 'demo/allow': policy('allow', 'demo', 'ALLOW') });
    server = await ControlPlaneServer.start({
      ca,
      authenticator: new TokenFileAuthenticator(join(dir, 'node-tokens.json')),
      xdsTypes: xdsTypesOf(source),
      placement: { identitiesOnNode: () => new Set(['spiffe://cluster.local/ns/demo/sa/echo']) },
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      log: new CapturedLog(),
    });
    const zdsPath = join(dir, 'zds.sock');
    zds = createServer((s) => {
      agent = s;
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (c: string) => {
        buf += c;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          agentLines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    });
    await new Promise<void>((r) => zds.listen(zdsPath, r));
    proc = spawn(
      process.execPath,
      [
        MAIN, 'ztunnel', '--node', 'node-1',
        '--xds-address', `127.0.0.1:${server.port}`,
        '--root-cert', join(dir, 'root.pem'),
        '--token-file', join(dir, 'token'),
        '--zds-socket', zdsPath,
        '--admin-port', '0', '--metrics-port', '0', '--readiness-port', '0',
        '--log-format', 'json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONNECTION_TERMINATION_DEADLINE: '1s' } },
    );
    proc.stdout!.on('data', (c) => (output += c));
    proc.stderr!.on('data', (c) => (output += c));
    const m = await eventually('startup line', () => /admin 127\.0\.0\.1:(\d+), metrics :(\d+), readiness :(\d+)/.exec(output), 10_000);
    ports = { admin: Number(m[1]), metrics: Number(m[2]), readiness: Number(m[3]) };
  });

  after(async () => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
    agent?.destroy();
    await new Promise<void>((r) => zds.close(() => r()));
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is ready only after xDS sync and the ZDS snapshot', async () => {
    await eventually('hello', () => agentLines.length > 0);
    assert.deepEqual(JSON.parse(agentLines[0]!), { hello: { version: 'V1' } });
    const early = await get(ports.readiness, '/healthz/ready');
    assert.equal(early.status, 500);
    assert.match(early.body, /^not ready, pending: .*cni connection/);
    assert.deepEqual(await send({ snapshotSent: {} }), { ack: { error: '' } });
    await eventually('ready', async () => (await get(ports.readiness, '/healthz/ready')).status === 200);
    assert.equal((await get(ports.metrics, '/healthz')).status, 200);
  });

  it('refuses a pod whose netns cannot be entered, in the ack, and keeps serving', async () => {
    const ack = await send({
      add: { uid: 'uid-1', workloadInfo: { name: 'echo-1', namespace: 'demo', serviceAccount: 'echo' }, netns: join(dir, 'no-such-netns') },
    });
    assert.match(ack.ack.error, /failed to start the proxy for pod demo\/echo-1/);
    assert.equal(proc.exitCode, null);
    assert.equal((await get(ports.readiness, '/healthz/ready')).status, 200);
  });

  it('dumps workloads, services, policies, xDS status and settings', async () => {
    const dump = JSON.parse((await get(ports.admin, '/config_dump')).body);
    assert.deepEqual(dump.workloads.map((w: any) => w.name), ['echo-1']);
    assert.equal(dump.services[0].hostname, 'echo.demo.svc.cluster.local');
    assert.equal(dump.policies[0].name, 'allow');
    assert.equal(dump.xds.connected, true);
    assert.equal(dump.config.nodeName, 'node-1');
  });

  it('keeps readiness and config while the control plane is down', async () => {
    await server!.close();
    server = undefined;
    await eventually('xDS disconnect noticed', async () => JSON.parse((await get(ports.admin, '/config_dump')).body).xds.connected === false);
    assert.equal((await get(ports.readiness, '/healthz/ready')).status, 200);
    const dump = JSON.parse((await get(ports.admin, '/config_dump')).body);
    assert.deepEqual(dump.workloads.map((w: any) => w.name), ['echo-1']);
    assert.ok(output.split('\n').some((l) => l.includes('"XDS client connection error') || l.includes('XDS client connection error')));
  });

  it('exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    const lines = output.trim().split('\n').filter((l) => l.startsWith('{'));
    assert.ok(lines.length > 0 && lines.every((l) => typeof JSON.parse(l).message === 'string' && typeof JSON.parse(l).level === 'string'), '--log-format json writes JSON lines');
    assert.ok(output.includes('SIGTERM received'));
  });
});
