// The pod sandbox for real (root): a scratch state directory outside /tmp (so only the mask hides it), a scratch pod
// directory inside it, and programs run through sandboxArgv as a root container with the default capabilities.
// Each case is an escape a pod must not have.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CAPABILITIES, PACKAGE_ROOT, sandboxArgv, type ContainerSandbox, type PodSandbox } from '../../src/local/sandbox.js';

describe('pod sandbox', () => {
  let state = '';
  let sandbox: PodSandbox;
  const root: ContainerSandbox = { mounts: [], security: { clearGroups: true, noNewPrivs: false, capabilities: [...DEFAULT_CAPABILITIES] } };
  const inPod = (script: string, container: ContainerSandbox = root) => {
    const argv = sandboxArgv(sandbox, container, ['sh', '-c', script]);
    return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: '/', timeout: 20_000 });
  };

  before(() => {
    state = mkdtempSync('/var/tmp/ambit-sandbox-test-');
    mkdirSync(join(state, 'controlplane'));
    writeFileSync(join(state, 'controlplane', 'root-key.pem'), 'secret key\n', { mode: 0o600 });
    const dir = join(state, 'pods', 'ns_pod', 'sandbox');
    for (const d of ['tmp', 'run', 'volumes/data']) mkdirSync(join(dir, d), { recursive: true });
    chmodSync(join(dir, 'tmp'), 0o1777);
    writeFileSync(join(dir, 'resolv.conf'), 'nameserver 10.96.0.10\n');
    // The package stays visible even under a mask (a checkout inside a masked directory): mask its parent.
    sandbox = { netnsPath: '/proc/self/ns/net', hostname: 'pod', dir, masked: [state, dirname(PACKAGE_ROOT.replace(/\/$/, ''))] };
  });
  after(() => rmSync(state, { recursive: true, force: true }));

  it("hides the state directory, also from a working directory inside it", () => {
    const r = inPod(`cat ${state}/controlplane/root-key.pem; cat controlplane/root-key.pem; pwd`, { ...root, workingDir: state });
    assert.doesNotMatch(r.stdout, /secret key/);
    assert.equal(r.stdout.trim(), state);
  });

  it('gives a /dev with only harmless nodes, its own ptys and shared memory', () => {
    const r = inPod('ls /dev | tr "\\n" " "; echo; echo x > /dev/null && head -c1 /dev/zero | od -An -c');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n')[0]!.trim(), 'fd full null ptmx pts random shm stderr stdin stdout tty urandom zero');
    assert.match(r.stdout, /\\0/);
    const nodes = inPod('mknod /tmp/loop c 7 0 && head -c1 /tmp/loop');
    assert.notEqual(nodes.status, 0, 'a device node made in /tmp is usable');
  });

  it('makes the machine read-only and runs PID 1 with the container capabilities only', () => {
    const write = inPod(`touch ${dirname(state)}/ambit-sandbox-escape`);
    assert.match(write.stderr, /Read-only file system/);
    const caps = inPod('grep CapEff /proc/1/status; grep CapEff /proc/self/status');
    assert.deepEqual(caps.stdout.trim().split('\n').map((l) => l.split(/\s+/)[1]), ['00000000a80425fb', '00000000a80425fb']);
  });

  it('keeps the package visible, read-only, and hides what sits beside it', () => {
    const r = inPod(`test -f ${PACKAGE_ROOT}package.json && echo kept; touch ${PACKAGE_ROOT}x 2>&1; ls ${dirname(PACKAGE_ROOT.replace(/\/$/, ''))}`);
    assert.match(r.stdout, /^kept\n.*Read-only file system/);
  });

  it('has its own IPC, PID and UTS namespaces, /tmp, /run and working directory', () => {
    const r = inPod('readlink /proc/self/ns/ipc; ls /proc | grep -c "^[0-9]"; hostname; pwd; echo hi > /tmp/t && echo hi > /run/r && cat /tmp/t /run/r', {
      ...root,
      workingDir: '/etc',
    });
    const [ipc, pids, host, cwd, ...rest] = r.stdout.trim().split('\n');
    assert.notEqual(ipc, readlinkSync('/proc/self/ns/ipc'));
    assert.ok(Number(pids) <= 5, `the pod sees ${pids} processes`);
    assert.deepEqual([host, cwd, ...rest], ['pod', '/etc', 'hi', 'hi']);
    const missing = inPod('pwd', { ...root, workingDir: '/no/such/dir' });
    assert.equal(missing.stdout.trim(), '/');
    assert.match(missing.stderr, /workingDir \/no\/such\/dir does not exist in the pod; starting in \//);
  });

  it('mounts volumes where they are asked for, read-only when asked', () => {
    const data: ContainerSandbox = { ...root, mounts: [{ source: 'volumes/data', target: '/var/run/data', readOnly: true }] };
    writeFileSync(join(sandbox.dir, 'volumes/data/f'), 'volume file\n');
    const r = inPod('cat /var/run/data/f; echo x > /var/run/data/g', data);
    assert.equal(r.stdout, 'volume file\n');
    assert.match(r.stderr, /Read-only file system/);
  });
});
