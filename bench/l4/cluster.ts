// The local cluster the L4 benchmark runs in: a fresh cluster named `tb<hex>` with its state under a new temp dir,
// started and removed through the real `ambit` CLI, and read through the supervisor's API.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from '../../src/api/types.js';
import { StateLayout } from '../../src/local/layout.js';
import { Ledger, cleanUp } from '../../src/local/ledger.js';
import { call } from '../../src/common/rpc.js';
import type { SupervisorStatus } from '../../src/local/supervisor.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface PodInfo {
  name: string;
  namespace: string;
  node: string;
  ip: string;
  netnsPath: string;
}

export class BenchCluster {
  readonly name = `tb${randomBytes(3).toString('hex')}`;
  /** Temp dir for the cluster state and the benchmark's own files (certificates, HAProxy configs). */
  readonly base = mkdtempSync(join(tmpdir(), 'ambit-bench-'));
  private readonly layout = new StateLayout(join(this.base, 'state', this.name));
  private readonly env = { ...process.env, AMBIT_STATE_DIR: join(this.base, 'state') };

  /** `ambit up -f` with the given manifest; throws with the CLI's output unless every pod got ready. */
  async up(manifest: string, timeoutSeconds: number): Promise<void> {
    const file = join(this.base, 'bench.yaml');
    writeFileSync(file, manifest);
    const r = await this.cli(['up', '-f', file, '--timeout', String(timeoutSeconds)], (timeoutSeconds + 120) * 1000);
    if (r.code !== 0) throw new Error(`ambit up --cluster ${this.name} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  }

  status(): Promise<SupervisorStatus> {
    return call<SupervisorStatus>(this.layout.socket, 'GET', '/v1/status', undefined, { timeoutMs: 10_000 });
  }

  async pod(namespace: string, name: string): Promise<PodInfo> {
    const { items } = await call<{ items: Resource[] }>(this.layout.socket, 'GET', `/v1/resources?kind=Pod&namespace=${namespace}`);
    const pod = items.find((p) => p.metadata.name === name) as (Resource & { spec: { nodeName?: string }; status?: { podIP?: string; netnsPath?: string } }) | undefined;
    if (!pod?.status?.podIP || !pod.status.netnsPath || !pod.spec.nodeName) {
      throw new Error(`pod ${namespace}/${name} has no IP, node or network namespace in cluster ${this.name}`);
    }
    return { name, namespace, node: pod.spec.nodeName, ip: pod.status.podIP, netnsPath: pod.status.netnsPath };
  }

  /** Network namespace of a node (for reaching its components' ports). */
  async nodeNetns(node: string): Promise<string> {
    const n = (await this.status()).nodes.find((x) => x.name === node);
    if (!n) throw new Error(`cluster ${this.name} has no node ${node}`);
    return n.netnsPath;
  }

  /** `ambit down`, then whatever the ledger still lists, then the temp dir. Never throws: it runs in `finally`. */
  async destroy(): Promise<string[]> {
    const problems: string[] = [];
    const r = await this.cli(['down'], 120_000).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
    if (r.code !== 0) problems.push(`ambit down --cluster ${this.name} exited ${r.code}: ${r.stderr.trim()}`);
    if (existsSync(this.layout.ledger)) {
      problems.push(...(await cleanUp(new Ledger(this.layout.ledger), { removeDir: this.layout.dir }).catch((err: Error) => [err.message])));
    }
    rmSync(this.base, { recursive: true, force: true });
    return problems;
  }

  private cli(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, args[0]!, '--cluster', this.name, ...args.slice(1)], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    });
  }
}
