// Helpers for the mesh end-to-end tests: a local cluster (TestCluster, named `tm…`) whose pods are driven with small
// node scripts through `ambit exec`, plus access to the node namespaces (ztunnel's metrics) and the mesh CA.
import { randomBytes } from 'node:crypto';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestCluster, eventually } from './local-harness.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));


/** Holds one TCP connection to argv[1]:argv[2], echoing a line every 200 ms: prints `pong N`, then `closed`. */
export const TCP_HOLD = `const s = require('net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
let n = 0, buf = '';
s.on('connect', () => { console.log('connected'); setInterval(() => s.write('x\\n'), 200); });
s.on('data', (d) => { buf += d; while (buf.includes('\\n')) { buf = buf.slice(buf.indexOf('\\n') + 1); console.log('pong ' + ++n); } });
s.on('error', (e) => console.log('error ' + (e.code || e.message)));
s.on('close', () => { console.log('closed'); process.exit(0); });`;

export class MeshCluster extends TestCluster {
  override readonly name: string = `tm${randomBytes(3).toString('hex')}`;
  override readonly stateDir = join(this.base, 'state', this.name);

  exec(pod: string, script: string, ...args: string[]) {
    return this.cli(['exec', pod, '--', 'node', '-e', script, ...args], undefined, 30_000);
  }

  /** A long-running `ambit exec`, with its output collected as it comes. */
  spawnExec(pod: string, script: string, ...args: string[]): { child: ChildProcessWithoutNullStreams; output: () => string } {
    return this.spawnCli(['exec', pod, '--', 'node', '-e', script, ...args]);
  }

  /** A long-running `ambit` command against this cluster, with its output (stdout and stderr) collected as it comes. */
  spawnCli(args: string[]): { child: ChildProcessWithoutNullStreams; output: () => string } {
    const child = spawn(process.execPath, [CLI, args[0]!, '--cluster', this.name, ...args.slice(1)], {
      env: this.env,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    return { child, output: () => out };
  }

  netns(name: string): string {
    return join(this.stateDir, 'netns', name);
  }

  /** Runs a node script inside a node's network namespace (where ztunnel's 15000/15020/15021 listen). */
  inNode(node: string, script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile('nsenter', [`--net=${this.netns(node)}`, '--', process.execPath, '-e', script, ...args], { timeout: 20_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  async metrics(node: string): Promise<string> {
    const r = await this.inNode(node, `fetch('http://127.0.0.1:15020/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`);
    if (r.code !== 0) throw new Error(`metrics of ${node}: ${r.stderr}`);
    return r.stdout;
  }

  ztunnelLog(node: string): Promise<string> {
    return this.ok(['logs', 'ztunnel', '--node', node]);
  }

  async component(name: string, node?: string): Promise<{ pid: number; restarts: number; healthy: boolean }> {
    const status = JSON.parse(await this.ok(['status', '-o', 'json'])) as { components: { name: string; node?: string; pid: number; restarts: number; healthy: boolean }[] };
    const c = status.components.find((x) => x.name === name && x.node === node);
    if (!c) throw new Error(`component ${name}${node ? ` on ${node}` : ''} not in status`);
    return c;
  }

  /**
   * The base leak check, minus processes of other clusters running at the same time: once this cluster's
   * namespaces are gone, the kernel may reuse their inode numbers for another cluster's namespaces.
   */
  override leftovers(): string[] {
    return super.leftovers().filter((l) => !(/\/state\/t[0-9a-z]+\//.test(l) && !l.includes(this.base)));
  }

  apply(name: string, yaml: string): Promise<string> {
    return this.ok(['apply', '-f', this.manifest(name, yaml)]);
  }

  private manifests = 0;

  /**
   * Applies `yaml`, waits until `applied()` holds, runs the test; then deletes it and waits until `removed()` holds,
   * failed test or not, so the next test starts from the same state (the test's own failure is the one reported).
   */
  async withManifest(yaml: string, what: string, until: { applied: () => Promise<boolean>; removed: () => Promise<boolean> }, test: () => Promise<void>): Promise<void> {
    const file = this.manifest(`config-${++this.manifests}.yaml`, yaml);
    await this.ok(['apply', '-f', file]);
    let failure: unknown;
    try {
      await eventually(`${what} at the waypoint`, async () => (await until.applied()) || undefined);
      await test();
    } catch (e) {
      failure = e;
    }
    try {
      await this.ok(['delete', '-f', file]);
      await eventually(`${what} gone from the waypoint`, async () => (await until.removed()) || undefined);
    } catch (e) {
      failure ??= e;
    }
    if (failure !== undefined) throw failure;
  }
}

/** A pod that only sleeps: where a test's requests are sent from (`ambit exec`). */
export function clientPod(namespace: string, name = 'client'): string {
  return `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  containers:
  - {name: main, command: [sleep, infinity]}
`;
}

/** The Prometheus samples of one metric whose labels include every given label=value. */
export function samples(text: string, metric: string, labels: Record<string, string>): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric + '{')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) out.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}
