// The kubectl side of the CLI against a stand-in supervisor: `ambit kubeconfig` prints the cluster's own kubeconfig
// (or says why it cannot), `ambit up --kubeconfig` merges it and says how to use it, `ambit down` takes the context
// out of every kubeconfig file and clears kubectl's discovery cache of its server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { serveJson } from '../../src/common/rpc.js';
import { StateLayout } from '../../src/local/layout.js';
import { discoveryCacheDir } from '../../src/local/kubeconfig.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const base = mkdtempSync(join(tmpdir(), 'ambit-kcli-'));
const home = join(base, 'home');
const states = join(base, 'state');
mkdirSync(home);
after(() => rmSync(base, { recursive: true, force: true }));

function ambit(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH, HOME: home, AMBIT_STATE_DIR: states, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
  });
}

function clusterKubeconfig(cluster: string, port: number): string {
  const name = `ambit-${cluster}`;
  return `apiVersion: v1
kind: Config
clusters:
- name: ${name}
  cluster:
    server: https://127.0.0.1:${port}
    certificate-authority-data: Q0E=
users:
- name: ${name}
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
contexts:
- name: ${name}
  context:
    cluster: ${name}
    user: ${name}
current-context: ${name}
`;
}

type Config = { 'current-context'?: string; contexts?: { name: string }[] };
const contexts = (file: string) => ((parse(readFileSync(file, 'utf8')) as Config).contexts ?? []).map((c) => c.name);

describe('ambit kubeconfig and up against a running cluster', () => {
  const layout = new StateLayout(join(states, 'kc'));
  let supervisor: Server;
  before(async () => {
    mkdirSync(layout.dir, { recursive: true });
    supervisor = await serveJson(layout.socket, {
      'GET /v1/status': () => ({ cluster: 'kc', pid: process.pid, stateDir: layout.dir, startedAt: new Date().toISOString(), nodes: [], components: [], notReady: [], rootless: false }),
      'POST /v1/wait': () => ({ pending: [] }),
      'GET /v1/resources': () => ({ items: [] }),
    });
  });
  after(() => supervisor.close());

  it('says when a cluster is not running', async () => {
    const r = await ambit(['kubeconfig', '--cluster', 'gone']);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `error: cluster "gone" is not running (no supervisor answers on ${join(states, 'gone', 'supervisor.sock')}); start it with: ambit up --cluster gone\n`,
    );
    assert.equal(r.stdout, '');
  });

  it('says when the running cluster has not written its kubeconfig yet', async () => {
    const r = await ambit(['kubeconfig', '--cluster', 'kc']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: cluster "kc" has no kubeconfig yet: its API server has not written ${layout.kubeconfig};`));
  });

  it("prints the cluster's kubeconfig as written", async () => {
    writeFileSync(layout.kubeconfig, clusterKubeconfig('kc', 6443));
    const r = await ambit(['kubeconfig', '--cluster', 'kc']);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, clusterKubeconfig('kc', 6443));
  });

  it('up leaves the context alone on a running cluster, and merges it when given --kubeconfig', async () => {
    writeFileSync(layout.kubeconfig, clusterKubeconfig('kc', 6443));
    const plain = await ambit(['up', '--cluster', 'kc']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.doesNotMatch(plain.stdout, /kubectl/);
    assert.equal(existsSync(join(home, '.kube')), false);

    const file = join(base, 'my kubeconfig');
    const r = await ambit(['up', '--cluster', 'kc', '--kubeconfig', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Set kubectl context to "ambit-kc"\n/m);
    assert.ok(r.stdout.endsWith(`\nYou can now use your cluster with:\n\nkubectl cluster-info --context ambit-kc --kubeconfig '${file}'\n`), r.stdout);
    assert.deepEqual(contexts(file), ['ambit-kc']);
    assert.equal((parse(readFileSync(file, 'utf8')) as Config)['current-context'], 'ambit-kc');
  });

  it('up reports a kubeconfig it cannot edit and exits 1, the cluster still up', async () => {
    const file = join(base, 'broken');
    writeFileSync(file, 'clusters: [\n');
    const r = await ambit(['up', '--cluster', 'kc', '--kubeconfig', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: could not set the kubectl context: ${file}:2:1: not valid YAML`));
    assert.match(r.stdout, /Cluster "kc" is ready/);
    assert.doesNotMatch(r.stdout, /kubectl cluster-info/);
    assert.equal(readFileSync(file, 'utf8'), 'clusters: [\n');
  });
});

describe('ambit down', () => {
  it('removes the context from every $KUBECONFIG file and the discovery cache of its server', async () => {
    const layout = new StateLayout(join(states, 'dn'));
    mkdirSync(layout.dir, { recursive: true });
    // The cluster's own kubeconfig is on 7443; the user's files still have it on 6443 from an earlier run.
    writeFileSync(layout.kubeconfig, clusterKubeconfig('dn', 7443));
    const [a, b] = [join(base, 'dn-a'), join(base, 'dn-b')];
    writeFileSync(a, clusterKubeconfig('dn', 6443).replace('current-context: ambit-dn', 'current-context: other'));
    writeFileSync(b, clusterKubeconfig('dn', 6443));
    for (const port of [6443, 7443, 8443]) mkdirSync(discoveryCacheDir(`https://127.0.0.1:${port}`, { HOME: home }), { recursive: true });

    const r = await ambit(['down', '--cluster', 'dn'], { KUBECONFIG: `${a}:${b}` });
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `Removed kubectl context "ambit-dn" from ${a}\nRemoved kubectl context "ambit-dn" from ${b}\nDeleted cluster "dn".\n`);
    assert.deepEqual([contexts(a), contexts(b)], [[], []]);
    assert.equal((parse(readFileSync(a, 'utf8')) as Config)['current-context'], 'other');
    assert.equal((parse(readFileSync(b, 'utf8')) as Config)['current-context'], '');
    assert.deepEqual(
      [6443, 7443, 8443].map((port) => existsSync(discoveryCacheDir(`https://127.0.0.1:${port}`, { HOME: home }))),
      [false, false, true],
    );
    assert.equal(existsSync(layout.dir), false);

    // Nothing left to remove: nothing extra is said.
    const again = await ambit(['down', '--cluster', 'dn'], { KUBECONFIG: `${a}:${b}` });
    assert.equal(again.stdout, 'Cluster "dn" does not exist.\n');
  });

  it('takes --kubeconfig instead, and still removes the cluster when that file cannot be edited', async () => {
    const layout = new StateLayout(join(states, 'dk'));
    mkdirSync(layout.dir, { recursive: true });
    const file = join(base, 'dk-broken');
    writeFileSync(file, 'users: {\n');
    const r = await ambit(['down', '--cluster', 'dk', '--kubeconfig', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: could not remove the kubectl context "ambit-dk": ${file}:2:1: not valid YAML`));
    assert.equal(r.stdout, 'Deleted cluster "dk".\n');
    assert.equal(existsSync(layout.dir), false);
  });
});
