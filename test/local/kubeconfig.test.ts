// The local cluster in the user's kubeconfig, as kind does it: which file is chosen, merging the cluster's context
// beside the user's own (kept as written), replacing it, removing it from every file, the lock kubectl and kind share,
// refusing files that are not YAML, the 0600 mode, kubectl's discovery cache, and kubectl reading the result.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, lstatSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  contextName,
  discoveryCacheDir,
  kubeconfigPathForMerge,
  kubeconfigPaths,
  mergeContext,
  parseClusterKubeconfig,
  removeContext,
} from '../../src/local/kubeconfig.js';

const root = mkdtempSync(join(tmpdir(), 'ambit-kubeconfig-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
/** A fresh home directory per test, so no test sees another's files. */
const home = () => {
  const dir = join(root, `home-${++dirs}`);
  mkdirSync(dir);
  return dir;
};

/** A cluster's own kubeconfig, as the supervisor writes it. */
function clusterKubeconfig(cluster: string, port: number, key = 'S0VZ'): string {
  const name = contextName(cluster);
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    `  cluster: {server: "https://127.0.0.1:${port}", certificate-authority-data: Q0E=}`,
    'users:',
    `- name: ${name}`,
    `  user: {client-certificate-data: Q0VSVA==, client-key-data: ${key}}`,
    'contexts:',
    `- name: ${name}`,
    `  context: {cluster: ${name}, user: ${name}}`,
    `current-context: ${name}`,
    '',
  ].join('\n');
}
const cluster = (name: string, port: number, key?: string) => parseClusterKubeconfig(clusterKubeconfig(name, port, key), `${name}.kubeconfig`);

// A kubeconfig as kubectl writes one, with a comment and a field kubectl does not know.
const USERS_OWN = `# my clusters
apiVersion: v1
clusters:
- cluster:
    server: https://prod.example:443
  name: prod
- cluster:
    server: https://staging.example:443
  name: staging
contexts:
- context:
    cluster: prod
    user: me
  name: prod
- context:
    cluster: staging
    user: me
  name: staging
current-context: prod
kind: Config
preferences: {}
users:
- name: me
  user:
    token: abc
x-team: platform
`;

type Config = { 'current-context'?: string; clusters?: { name: string; cluster: { server: string } }[]; users?: { name: string; user: Record<string, string> }[]; contexts?: { name: string }[] };
const read = (file: string) => readFileSync(file, 'utf8');
const names = (list: { name: string }[] | undefined) => (list ?? []).map((e) => e.name);

// kubectl is a dispatcher here that needs a server for most commands, but `config` works on files alone.
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
function kubectlConfig(env: NodeJS.ProcessEnv, ...args: string[]): string {
  const r = spawnSync('kubectl', ['config', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('choosing the kubeconfig file', () => {
  it('takes --kubeconfig, else $KUBECONFIG, else ~/.kube/config', async () => {
    const env = { HOME: '/home/u', KUBECONFIG: '/a:/b' };
    assert.deepEqual(kubeconfigPaths('/x/config', env), ['/x/config']);
    assert.deepEqual(kubeconfigPaths(undefined, env), ['/a', '/b']);
    assert.deepEqual(kubeconfigPaths(undefined, { HOME: '/home/u' }), ['/home/u/.kube/config']);
    // Empty entries and repeats are dropped; a $KUBECONFIG of empty entries only is no list at all.
    assert.deepEqual(kubeconfigPaths(undefined, { HOME: '/h', KUBECONFIG: ':/a::/b:/a:' }), ['/a', '/b']);
    assert.deepEqual(kubeconfigPaths(undefined, { HOME: '/h', KUBECONFIG: '::' }), ['/h/.kube/config']);
    assert.equal(await kubeconfigPathForMerge('/x/config', env), '/x/config');
  });

  it('merges into the only $KUBECONFIG entry, else the first that exists, else the last', async () => {
    const dir = home();
    const [a, b, c] = ['a', 'b', 'c'].map((f) => join(dir, f)) as [string, string, string];
    assert.equal(await kubeconfigPathForMerge(undefined, { HOME: dir, KUBECONFIG: a }), a);
    assert.equal(await kubeconfigPathForMerge(undefined, { HOME: dir, KUBECONFIG: `${a}:${b}:${c}` }), c);
    writeFileSync(c, '');
    writeFileSync(b, '');
    assert.equal(await kubeconfigPathForMerge(undefined, { HOME: dir, KUBECONFIG: `${a}:${b}:${c}` }), b);
  });
});

describe('mergeContext', () => {
  it("creates ~/.kube/config (mode 0600, ~/.kube 0755) with the cluster's entries and makes its context current", async () => {
    const h = home();
    const file = await kubeconfigPathForMerge(undefined, { HOME: h });
    assert.equal(await mergeContext(file, cluster('dev', 6443), { env: { HOME: h } }), 'ambit-dev');
    assert.equal(file, join(h, '.kube', 'config'));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(h, '.kube')).mode & 0o777, 0o755);
    assert.equal(existsSync(`${file}.lock`), false);
    const config = parseClusterKubeconfig(read(file), file);
    assert.deepEqual(config, cluster('dev', 6443));
  });

  it("keeps the user's entries in their order, with comments and unknown fields, and appends the cluster's", async () => {
    const file = join(home(), 'config');
    writeFileSync(file, USERS_OWN, { mode: 0o644 });
    await mergeContext(file, cluster('dev', 6443), { env: { HOME: root } });
    const text = read(file);
    // What was there is still there, byte for byte, in front of what was added.
    assert.ok(text.startsWith('# my clusters\napiVersion: v1\nclusters:\n- cluster:\n    server: https://prod.example:443\n  name: prod\n'), text);
    assert.match(text, /^x-team: platform$/m);
    const config = parseYaml(text);
    assert.deepEqual(names(config.clusters), ['prod', 'staging', 'ambit-dev']);
    assert.deepEqual(names(config.contexts), ['prod', 'staging', 'ambit-dev']);
    assert.deepEqual(names(config.users), ['me', 'ambit-dev']);
    assert.deepEqual(config.users?.[0], { name: 'me', user: { token: 'abc' } });
    assert.equal(config['current-context'], 'ambit-dev');
    // The file holds a client key now: 0600 even though it was 0644.
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('writes mode 0600 whatever the umask', async () => {
    const file = join(home(), 'config');
    const umask = process.umask(0o277);
    try {
      await mergeContext(file, cluster('dev', 6443), { env: { HOME: root } });
    } finally {
      process.umask(umask);
    }
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('replaces its own entries in place on a second merge, leaving one of each', async () => {
    const file = join(home(), 'config');
    writeFileSync(file, USERS_OWN);
    await mergeContext(file, cluster('dev', 6443), { env: { HOME: root } });
    // The user adds a context after ours and switches to it; then the cluster comes back on another port.
    writeFileSync(file, read(file).replace('current-context: ambit-dev\n', '- name: later\n  context: {cluster: prod, user: me}\ncurrent-context: later\n'));
    await mergeContext(file, cluster('dev', 7443, 'TkVX'), { env: { HOME: root } });
    const config = parseYaml(read(file));
    assert.deepEqual(names(config.clusters), ['prod', 'staging', 'ambit-dev']);
    assert.deepEqual(names(config.contexts), ['prod', 'staging', 'ambit-dev', 'later']);
    assert.equal(config.clusters?.find((c) => c.name === 'ambit-dev')?.cluster.server, 'https://127.0.0.1:7443');
    assert.equal(config.users?.find((u) => u.name === 'ambit-dev')?.user['client-key-data'], 'TkVX');
    assert.equal(config['current-context'], 'ambit-dev');
  });

  it('collapses repeated entries of its name into one, where the first was', async () => {
    const file = join(home(), 'config');
    writeFileSync(file, 'clusters:\n- name: ambit-dev\n  cluster: {server: https://old:1}\n- name: other\n  cluster: {server: https://o:1}\n- name: ambit-dev\n  cluster: {server: https://old:2}\n');
    await mergeContext(file, cluster('dev', 6443), { env: { HOME: root } });
    const config = parseYaml(read(file));
    assert.deepEqual(config.clusters?.map((c) => [c.name, c.cluster.server]), [['ambit-dev', 'https://127.0.0.1:6443'], ['other', 'https://o:1']]);
  });

  it('reads an empty file, a null list and a JSON kubeconfig', async () => {
    const h = home();
    const empty = join(h, 'empty');
    writeFileSync(empty, '# nothing yet\n');
    await mergeContext(empty, cluster('dev', 6443), { env: { HOME: root } });
    assert.equal(parseYaml(read(empty))['current-context'], 'ambit-dev');
    const nulls = join(h, 'nulls');
    writeFileSync(nulls, 'apiVersion: v1\nclusters: null\ncontexts: null\nusers: null\nkind: Config\n');
    await mergeContext(nulls, cluster('dev', 6443), { env: { HOME: root } });
    assert.deepEqual(names(parseYaml(read(nulls)).users), ['ambit-dev']);
    const json = join(h, 'json');
    writeFileSync(json, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'a', cluster: { server: 'https://a:1' } }], users: [], contexts: [] }));
    await mergeContext(json, cluster('dev', 6443), { env: { HOME: root } });
    assert.deepEqual(names(parseYaml(read(json)).clusters), ['a', 'ambit-dev']);
  });

  it('replaces the target of a symlinked kubeconfig and keeps the link', async () => {
    const h = home();
    const target = join(h, 'dotfiles-kubeconfig');
    writeFileSync(target, USERS_OWN);
    const link = join(h, 'config');
    symlinkSync(target, link);
    await mergeContext(link, cluster('dev', 6443), { env: { HOME: root } });
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(parseYaml(read(target))['current-context'], 'ambit-dev');
  });

  it('refuses a file that is not valid YAML, naming the file and line, and leaves it as it was', async () => {
    const file = join(home(), 'config');
    const broken = 'apiVersion: v1\nclusters:\n- name: a\n  cluster: {server: https://a:1\nusers: []\n';
    writeFileSync(file, broken, { mode: 0o644 });
    await assert.rejects(mergeContext(file, cluster('dev', 6443), { env: { HOME: root } }), (err: Error) => {
      assert.match(err.message, new RegExp(`^${file}:5:1: not valid YAML \\(.+\\); fix the file`));
      return true;
    });
    assert.equal(read(file), broken);
    assert.equal(statSync(file).mode & 0o777, 0o644);
    assert.equal(existsSync(`${file}.lock`), false);
  });

  it('refuses a file whose top level or lists have the wrong shape', async () => {
    const file = join(home(), 'config');
    writeFileSync(file, '- just\n- a list\n');
    await assert.rejects(mergeContext(file, cluster('dev', 6443), { env: { HOME: root } }), new RegExp(`^Error: ${file}:1:1: not a kubeconfig`));
    writeFileSync(file, 'apiVersion: v1\nusers:\n  me: {token: abc}\n');
    await assert.rejects(mergeContext(file, cluster('dev', 6443), { env: { HOME: root } }), new RegExp(`^Error: ${file}:3:3: "users" is not a list`));
    assert.equal(read(file), 'apiVersion: v1\nusers:\n  me: {token: abc}\n');
  });

  it("waits for another writer's lock, then writes", async () => {
    const file = join(home(), 'config');
    writeFileSync(`${file}.lock`, '');
    const started = Date.now();
    setTimeout(() => rmSync(`${file}.lock`), 300);
    await mergeContext(file, cluster('dev', 6443), { env: { HOME: root }, lockTimeoutMs: 5000 });
    assert.ok(Date.now() - started >= 300);
    assert.equal(parseYaml(read(file))['current-context'], 'ambit-dev');
    assert.equal(existsSync(`${file}.lock`), false);
  });

  it('gives up on a lock that stays, saying which, and leaves file and lock alone', async () => {
    const file = join(home(), 'config');
    writeFileSync(file, USERS_OWN);
    writeFileSync(`${file}.lock`, '');
    const started = Date.now();
    await assert.rejects(mergeContext(file, cluster('dev', 6443), { env: { HOME: root }, lockTimeoutMs: 400 }), (err: Error) => {
      assert.equal(
        err.message,
        `cannot write ${file}: it is locked by ${file}.lock (another kubectl, kind or ambit writing it) and stayed locked for 0.4s; ` +
          `if no such command is running, remove ${file}.lock and try again`,
      );
      return true;
    });
    assert.ok(Date.now() - started >= 400);
    assert.equal(read(file), USERS_OWN);
    assert.ok(existsSync(`${file}.lock`));
  });

  it("deletes kubectl's discovery cache of the server, and only that one", async () => {
    const h = home();
    const cache = join(h, 'cache');
    const env = { HOME: h, KUBECACHEDIR: cache };
    assert.equal(discoveryCacheDir('https://127.0.0.1:6443', env), join(cache, 'discovery', '127.0.0.1_6443'));
    assert.equal(discoveryCacheDir('https://127.0.0.1:6443', { HOME: h }), join(h, '.kube', 'cache', 'discovery', '127.0.0.1_6443'));
    for (const port of [6443, 7443]) {
      mkdirSync(join(cache, 'discovery', `127.0.0.1_${port}`, 'apps', 'v1'), { recursive: true });
      writeFileSync(join(cache, 'discovery', `127.0.0.1_${port}`, 'servergroups.json'), '{}');
    }
    await mergeContext(join(h, 'config'), cluster('dev', 6443), { env });
    assert.equal(existsSync(join(cache, 'discovery', '127.0.0.1_6443')), false);
    assert.ok(existsSync(join(cache, 'discovery', '127.0.0.1_7443', 'servergroups.json')));
  });

  it('never deletes outside the discovery cache, whatever the server says', async () => {
    const h = home();
    const cache = join(h, 'cache');
    mkdirSync(join(cache, 'discovery'), { recursive: true });
    writeFileSync(join(cache, 'keep'), '');
    const escaping = parseClusterKubeconfig(clusterKubeconfig('dev', 1).replace('https://127.0.0.1:1', 'https://x/../..'), 'k');
    await mergeContext(join(h, 'config'), escaping, { env: { HOME: h, KUBECACHEDIR: cache } });
    assert.ok(existsSync(join(cache, 'keep')));
    assert.ok(existsSync(join(cache, 'discovery')));
  });

  it("is read by kubectl: current context, server and client certificate", { skip: !kubectl && 'kubectl is not on PATH' }, async () => {
    const h = home();
    const file = join(h, 'config');
    writeFileSync(file, USERS_OWN);
    await mergeContext(file, cluster('dev', 6443), { env: { HOME: h } });
    const config = JSON.parse(kubectlConfig({ HOME: h }, 'view', '--kubeconfig', file, '-o', 'json', '--raw')) as Config & { preferences: unknown };
    assert.equal(config['current-context'], 'ambit-dev');
    assert.equal(config.clusters?.find((c) => c.name === 'ambit-dev')?.cluster.server, 'https://127.0.0.1:6443');
    assert.deepEqual(config.users?.find((u) => u.name === 'ambit-dev')?.user, { 'client-certificate-data': 'Q0VSVA==', 'client-key-data': 'S0VZ' });
    assert.equal(config.users?.find((u) => u.name === 'me')?.user.token, 'abc');
    const contexts = kubectlConfig({ HOME: h, KUBECONFIG: file }, 'get-contexts').split('\n').map((l) => l.split(/\s+/).filter(Boolean));
    assert.deepEqual(contexts.find((l) => l.includes('ambit-dev')), ['*', 'ambit-dev', 'ambit-dev', 'ambit-dev']);
    assert.deepEqual(contexts.find((l) => l.includes('prod')), ['prod', 'prod', 'me']);
    assert.equal(kubectlConfig({ HOME: h, KUBECONFIG: file }, 'current-context'), 'ambit-dev\n');
  });
});

describe('removeContext', () => {
  it("removes the cluster's entries from every file, clearing current-context only where it named it", async () => {
    const h = home();
    const [a, b, c, missing] = ['a', 'b', 'c', 'missing'].map((f) => join(h, f)) as [string, string, string, string];
    writeFileSync(a, USERS_OWN);
    await mergeContext(a, cluster('dev', 6443), { env: { HOME: h } });
    writeFileSync(b, USERS_OWN);
    await mergeContext(b, cluster('dev', 6443), { env: { HOME: h } });
    await mergeContext(b, cluster('other', 7443), { env: { HOME: h } });
    writeFileSync(c, USERS_OWN);
    const env = { HOME: h, KUBECONFIG: [a, missing, b, c].join(':') };
    assert.deepEqual(await removeContext(kubeconfigPaths(undefined, env), 'dev', { env }), [a, b]);
    const [ca, cb] = [parseYaml(read(a)), parseYaml(read(b))];
    assert.deepEqual([names(ca.clusters), names(ca.users), names(ca.contexts)], [['prod', 'staging'], ['me'], ['prod', 'staging']]);
    assert.equal(ca['current-context'], '');
    assert.deepEqual([names(cb.clusters), names(cb.users), names(cb.contexts)], [['prod', 'staging', 'ambit-other'], ['me', 'ambit-other'], ['prod', 'staging', 'ambit-other']]);
    assert.equal(cb['current-context'], 'ambit-other');
    // A file without the context is not rewritten; a missing one is not created, nor is a lock left for it.
    assert.equal(read(c), USERS_OWN);
    assert.equal(existsSync(missing) || existsSync(`${missing}.lock`), false);
    // Removing again finds nothing.
    assert.deepEqual(await removeContext([a, b, c], 'dev', { env }), []);
  });

  it("deletes the discovery cache of each removed server and of the servers it is given", async () => {
    const h = home();
    const file = join(h, 'config');
    const env = { HOME: h };
    await mergeContext(file, cluster('dev', 6443), { env });
    for (const port of [6443, 7443, 8443]) mkdirSync(discoveryCacheDir(`https://127.0.0.1:${port}`, env), { recursive: true });
    await removeContext([file], 'dev', { env, servers: ['https://127.0.0.1:7443'] });
    assert.deepEqual(
      [6443, 7443, 8443].map((port) => existsSync(discoveryCacheDir(`https://127.0.0.1:${port}`, env))),
      [false, false, true],
    );
  });

  it('goes on past a file it cannot edit, then reports it', async () => {
    const h = home();
    const [bad, good] = [join(h, 'bad'), join(h, 'good')];
    writeFileSync(bad, 'clusters: [\n');
    await mergeContext(good, cluster('dev', 6443), { env: { HOME: h } });
    await assert.rejects(removeContext([bad, good], 'dev', { env: { HOME: h } }), new RegExp(`^Error: ${bad}:2:1: not valid YAML`));
    assert.deepEqual(names(parseYaml(read(good)).contexts), []);
    assert.equal(read(bad), 'clusters: [\n');
  });
});

describe('parseClusterKubeconfig', () => {
  it('wants one context whose cluster and user carry its name, and a server', () => {
    assert.throws(() => parseClusterKubeconfig('{', 'state/kubeconfig'), /^Error: state\/kubeconfig: not valid YAML: /);
    assert.throws(() => parseClusterKubeconfig(clusterKubeconfig('dev', 1).replace(/current-context: .*/, ''), 'k'), /^Error: k: not a usable cluster kubeconfig: no current-context$/);
    assert.throws(
      () => parseClusterKubeconfig(clusterKubeconfig('dev', 1).replace('user: ambit-dev}', 'user: admin}'), 'k'),
      /^Error: k: not a usable cluster kubeconfig: context "ambit-dev" must name cluster "ambit-dev" and user "ambit-dev"$/,
    );
    assert.throws(
      () => parseClusterKubeconfig(clusterKubeconfig('dev', 1).replace('users:\n- name: ambit-dev', 'users:\n- name: admin'), 'k'),
      /^Error: k: not a usable cluster kubeconfig: no entry "ambit-dev" in users/,
    );
    assert.throws(() => parseClusterKubeconfig(clusterKubeconfig('dev', 1).replace('server: "https://127.0.0.1:1", ', ''), 'k'), /cluster "ambit-dev" has no server$/);
  });
});

describe('as root', { skip: process.getuid?.() !== 0 && 'needs root to own files as another user' }, () => {
  it("keeps the user's ownership of a kubeconfig under their home (sudo -E), and gives new files and ~/.kube to the home's owner", async () => {
    const h = home();
    chownSync(h, 65534, 65534);
    const existing = join(h, 'existing');
    writeFileSync(existing, USERS_OWN);
    chownSync(existing, 65534, 65534);
    await mergeContext(existing, cluster('dev', 6443), { env: { HOME: h } });
    assert.deepEqual([statSync(existing).uid, statSync(existing).gid], [65534, 65534]);
    const fresh = join(h, '.kube', 'config');
    await mergeContext(fresh, cluster('dev', 6443), { env: { HOME: h } });
    for (const p of [fresh, join(h, '.kube')]) assert.deepEqual([statSync(p).uid, statSync(p).gid], [65534, 65534], p);
    // That user's kubectl reads it (mkdtemp made the test's directory 0700: let the user through).
    if (kubectl) {
      chmodSync(root, 0o755);
      const r = spawnSync('kubectl', ['config', 'current-context', '--kubeconfig', fresh], { encoding: 'utf8', uid: 65534, gid: 65534, env: { PATH: process.env.PATH, HOME: h } });
      assert.equal(r.stdout, 'ambit-dev\n', r.stderr);
    }
  });
});

function parseYaml(text: string): Config {
  return parse(text) as Config;
}
