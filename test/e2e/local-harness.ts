// Test harness for the local cluster: runs the real `ambit` CLI against a cluster with a unique `t…` name and a
// state directory under a fresh temp dir, and checks that nothing is left behind afterwards.
import { eventually as poll } from '../support/eventually.js';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Ledger, cleanUp } from '../../src/local/ledger.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, collecting its output; killed after `timeoutMs`. */
export function runCollecting(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string | undefined; timeoutMs: number; uid?: number; gid?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const { input, timeoutMs, ...spawnOpts } = opts;
    const child = spawn(file, args, { ...spawnOpts, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** A tiny HTTP server that answers with the pod's name: which pod served a request is visible to the test. */
export const ECHO_SERVER = `require('http').createServer((q, s) => s.end(process.env.HOSTNAME)).listen(Number(process.env.PORT))`;
/** Prints the body of GET argv[1], or the error and exit code 1. */
export const FETCH = `fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => console.log(t), (e) => { console.error(String(e.cause ?? e)); process.exit(1); })`;
/** One TCP round trip to argv[1]:argv[2]: prints the echoed line; exit 1 with the reason when the proxy closes it. */
export const TCP_ROUND_TRIP = `const s = require('net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
let got = '';
s.setTimeout(5000, () => { console.error('timeout'); process.exit(1); });
s.on('connect', () => s.write('ping\\n'));
s.on('data', (d) => { got += d; if (got.includes('\\n')) { console.log(got.trim()); process.exit(0); } });
s.on('error', (e) => { console.error(e.code || e.message); process.exit(1); });
s.on('close', () => { console.error('closed'); process.exit(1); });`;
/** Prints the A records of argv[1] as JSON, or the error code and exit code 2. */
export const LOOKUP = `require('dns').lookup(process.argv[1], { all: true, family: 4 }, (e, a) => { if (e) { console.error(e.code); process.exit(2); } console.log(JSON.stringify(a.map((x) => x.address).sort())); })`;

export function hostSnapshot(): { links: string; nft: string } {
  return {
    links: execFileSync('ip', ['-o', 'link', 'show']).toString().replace(/\s+link\/.*$/gm, '').split('\n').map((l) => l.split(':')[1]?.trim()).sort().join(','),
    nft: execFileSync('nft', ['list', 'tables']).toString(),
  };
}

export class TestCluster {
  readonly name = `t${randomBytes(3).toString('hex')}`;
  readonly base = mkdtempSync(join(tmpdir(), 'ambit-local-'));
  readonly stateDir = join(this.base, 'state', this.name);
  // The kubeconfig `up` merges into stays the test's own, as does kubectl's discovery cache.
  readonly kubeconfig = join(this.base, 'kubeconfig');
  readonly env = { ...process.env, AMBIT_STATE_DIR: join(this.base, 'state'), KUBECONFIG: this.kubeconfig, KUBECACHEDIR: join(this.base, 'kube-cache') };

  /** `runAs`: run every CLI call as this unprivileged uid/gid (the rootless path). */
  constructor(private readonly runAs?: { uid: number; gid: number }) {
    if (runAs) chmodSync(this.base, 0o777);
  }

  cli(args: string[], input?: string, timeoutMs = 240_000): Promise<CliResult> {
    return runCollecting(process.execPath, [CLI, args[0]!, '--cluster', this.name, ...args.slice(1)], { env: this.env, input, timeoutMs, ...(this.runAs ?? {}) });
  }

  /** Runs the CLI and fails the test (showing its output) unless it exits 0. */
  async ok(args: string[], input?: string): Promise<string> {
    const r = await this.cli(args, input);
    assert.equal(r.code, 0, `ambit ${args.join(' ')} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    return r.stdout;
  }

  manifest(name: string, yaml: string): string {
    const path = join(this.base, name);
    writeFileSync(path, yaml);
    return path;
  }

  async pods(namespace: string): Promise<{ name: string; node: string; ip: string; ready: boolean; restarts: number; labels: Record<string, string> }[]> {
    const list = JSON.parse(await this.ok(['get', 'pods', '-n', namespace, '-o', 'json'])) as { items: Record<string, any>[] };
    return list.items.map((p) => ({
      name: p.metadata.name,
      node: p.spec.nodeName,
      ip: p.status?.podIP,
      ready: (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'),
      restarts: (p.status?.containerStatuses ?? []).reduce((n: number, c: { restartCount: number }) => n + c.restartCount, 0),
      labels: p.metadata.labels ?? {},
    }));
  }

  /** Everything this cluster could leave behind: its mounts, processes mentioning its state dir, the dir itself. */
  leftovers(): string[] {
    const out: string[] = [];
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    for (const line of mounts) if (line.includes(this.base)) out.push(`mount: ${line.split(' ')[4]}`);
    // Once `down` freed them, the kernel may give this cluster's namespace inodes to another cluster's new namespaces
    // (another test run on the machine): those are bind-mounted under that cluster's state dir, and their processes
    // are not this cluster's leaks.
    const foreign = new Set(mounts.map((l) => l.split(' ')).filter((f) => f[3]?.startsWith('net:[') && !f[4]?.startsWith(this.base)).map((f) => f[3]!));
    for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        if (cmd.includes(this.base) && Number(pid) !== process.pid) out.push(`process ${pid}: ${cmd}`);
        const net = readlinkSync(`/proc/${pid}/ns/net`);
        if (this.netnsInodes.has(net) && !foreign.has(net)) out.push(`process ${pid} in a cluster netns: ${cmd}`);
      } catch {
        // Exited while we looked.
      }
    }
    if (existsSync(this.stateDir)) out.push(`state dir ${this.stateDir} still exists`);
    return out;
  }

  /**
   * `net:[inode]` of every namespace the cluster has: processes in them after `down` are leaks. (A rootless
   * cluster's namespaces are mounted in the supervisor's mount namespace: there, processes are found by pid/cmdline.)
   */
  readonly netnsInodes = new Set<string>();
  recordNetns(): void {
    const dir = join(this.stateDir, 'netns');
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      try {
        const pid = spawnSyncNetnsInode(join(dir, f));
        if (pid) this.netnsInodes.add(pid);
      } catch {
        // Not a namespace (yet).
      }
    }
  }

  /** `ambit down`, then asserts nothing is left; removes the temp dir. Safe to call twice. */
  async destroy(): Promise<void> {
    this.recordNetns();
    const r = await this.cli(['down']);
    const left = this.leftovers();
    // A leaked process is killed before it is reported: one that holds a pipe of this test process would keep the
    // test file (and the whole run) from ever exiting.
    for (const l of left) {
      const pid = /^process (\d+)/.exec(l)?.[1];
      if (pid) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
    // Whatever `down` could not remove (e.g. the CLI itself is broken) is still removed, so a failing run never
    // leaves namespaces or processes on the machine; the assertions below still report the failure.
    if (existsSync(this.stateDir)) await cleanUp(new Ledger(join(this.stateDir, 'ledger.jsonl')), { removeDir: this.stateDir }).catch(() => undefined);
    rmSync(this.base, { recursive: true, force: true });
    assert.equal(r.code, 0, `ambit down failed: ${r.stderr}`);
    assert.deepEqual(left, [], `cluster ${this.name} left things behind`);
  }
}

function spawnSyncNetnsInode(path: string): string | undefined {
  const out = execFileSync('nsenter', [`--net=${path}`, 'readlink', '/proc/self/ns/net'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  return out.startsWith('net:[') ? out : undefined;
}

/** `eventually` paced for a cluster: polls every 250 ms, for 30 s unless told otherwise. */
export const eventually = <T>(what: string, check: () => Promise<T>, timeoutMs = 30_000) => poll(what, check, { timeoutMs, intervalMs: 250 });

/** A 2-replica echo Deployment (ECHO_SERVER on 8080) and its Service `echo` on port 80, with the given readiness probe. */
export function echoManifest(probe: 'httpGet' | 'tcpSocket'): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        command: [node, -e, "${ECHO_SERVER}"]
        env: [{name: PORT, value: "8080"}]
        readinessProbe: {${probe}: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
`;
}
