// The CLI side of the local cluster: finding a cluster's supervisor, starting it when needed, calling its API.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { DEFAULT_CLUSTER, StateLayout, stateDirFor, validateClusterName } from './layout.js';
import { Ledger, cleanUp } from './ledger.js';
import { call, type CallOptions } from '../common/rpc.js';
import type { SupervisorStatus } from './supervisor.js';
import { run } from './sys.js';

const SUPERVISOR_SCRIPT = fileURLToPath(new URL('./supervisor.js', import.meta.url));
const START_TIMEOUT_MS = 90_000;

/** Adds `--cluster NAME` (default: $AMBIT_CLUSTER, else "ambit") to a command. */
export function withClusterOption(cmd: Command): Command {
  return cmd.option('--cluster <name>', 'local cluster to use (default: $AMBIT_CLUSTER or "ambit")');
}

export class ClusterClient {
  readonly layout: StateLayout;
  constructor(readonly name: string) {
    this.layout = new StateLayout(stateDirFor(name));
  }

  static fromOptions(opts: { cluster?: string }): ClusterClient {
    return new ClusterClient(validateClusterName(opts.cluster ?? process.env.AMBIT_CLUSTER ?? DEFAULT_CLUSTER));
  }

  call<T>(method: string, path: string, body?: unknown, options?: CallOptions): Promise<T> {
    return call<T>(this.layout.socket, method, path, body, options).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        throw new Error(
          `cluster "${this.name}" is not running (no supervisor answers on ${this.layout.socket}); start it with: ambit up --cluster ${this.name}`,
        );
      }
      if (err.code === 'EACCES' || err.code === 'EPERM') {
        throw new Error(
          `cluster "${this.name}" belongs to another user: permission denied on ${this.layout.socket}; run ambit as the user who started it (for a cluster started as root: sudo -E ambit …)`,
        );
      }
      throw err;
    });
  }

  async status(): Promise<SupervisorStatus | undefined> {
    if (!existsSync(this.layout.socket)) return undefined;
    try {
      return await call<SupervisorStatus>(this.layout.socket, 'GET', '/v1/status', undefined, { timeoutMs: 10_000 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') return undefined;
      throw err;
    }
  }

  /** The cluster's own kubeconfig, which its supervisor writes once the API server serves; undefined until then. */
  kubeconfig(): string | undefined {
    try {
      return readFileSync(this.layout.kubeconfig, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Starts the supervisor unless it is running; returns false when it was already running. */
  async ensureRunning(nodes: number, log: (line: string) => void): Promise<boolean> {
    if (await this.status()) return false;
    const rootless = await checkPrivileges();
    this.layout.checkSocketPaths();
    if (existsSync(this.layout.ledger)) {
      log(`cluster "${this.name}": its supervisor is gone but left state behind; cleaning up first`);
      const problems = await cleanUp(new Ledger(this.layout.ledger), { removeDir: this.layout.dir });
      if (problems.length) throw new Error(`cannot clean up the previous cluster "${this.name}": ${problems.join('; ')}`);
    }
    mkdirSync(this.layout.dir, { recursive: true });
    const logFd = openSync(this.layout.supervisorLog, 'a');
    const supervisor = [process.execPath, SUPERVISOR_SCRIPT, '--cluster', this.name, '--state-dir', this.layout.dir, '--nodes', String(nodes)];
    // Without root, the supervisor runs as root of its own user namespace (with its own mount namespace, where it
    // binds the cluster's network namespaces) and everything it starts stays inside.
    const argv = rootless ? [...ROOTLESS_PREFIX, ...supervisor, '--rootless'] : supervisor;
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: process.env,
    });
    closeSync(logFd);
    let exited: number | null | undefined;
    child.on('exit', (code) => (exited = code));
    child.unref();
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited !== undefined) {
        throw new Error(`the supervisor of cluster "${this.name}" exited with code ${exited} while starting:\n${tail(this.layout.supervisorLog, 20)}`);
      }
      if (await this.status().catch(() => undefined)) return true;
      if (Date.now() > deadline) {
        throw new Error(`the supervisor of cluster "${this.name}" did not start within ${START_TIMEOUT_MS / 1000}s; see ${this.layout.supervisorLog}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const ROOTLESS_PREFIX = ['unshare', '--user', '--map-root-user', '--net', '--mount', '--propagation', 'private', '--'];

/**
 * The local cluster needs to create network namespaces, veth links and nftables rules: root, or else an
 * unprivileged user namespace to be root in. Returns true for the latter; says exactly what is missing otherwise.
 */
export async function checkPrivileges(): Promise<boolean> {
  if (process.getuid?.() === 0) return false;
  try {
    await run([...ROOTLESS_PREFIX, 'unshare', '--net', 'true']);
    return true;
  } catch (err) {
    throw new Error(
      'the local cluster needs root or unprivileged user namespaces: it creates network namespaces, veth links and ' +
        `nftables rules, and running "${ROOTLESS_PREFIX.slice(0, -1).join(' ')}" failed: ${(err as Error).message.split('\n')[0]}. ` +
        'Run ambit as root (sudo -E ambit up), or allow user namespaces (sysctl -w user.max_user_namespaces=10000; ' +
        'on Debian/Ubuntu also kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0).',
    );
  }
}

export function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch {
    return `(no log at ${path})`;
  }
}

/** `NS/NAME` or `NAME` (namespace from -n, else default). */
export function parseTarget(target: string, namespace?: string): { namespace: string; name: string } {
  const slash = target.indexOf('/');
  if (slash < 0) return { namespace: namespace ?? 'default', name: target };
  const ns = target.slice(0, slash);
  const name = target.slice(slash + 1);
  if (!ns || !name || name.includes('/')) throw new Error(`invalid target "${target}": use NAMESPACE/NAME or NAME`);
  return { namespace: ns, name };
}
