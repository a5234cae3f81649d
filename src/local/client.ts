// The CLI side of the local cluster: finding a cluster's supervisor, starting it when needed, calling its API.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { DEFAULT_CLUSTER, StateLayout, stateDirFor, validateClusterName } from './layout.js';
import { Ledger, cleanUp } from './ledger.js';
import { call, type CallOptions } from './rpc.js';
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

  /** Starts the supervisor unless it is running; returns false when it was already running. */
  async ensureRunning(nodes: number, log: (line: string) => void): Promise<boolean> {
    if (await this.status()) return false;
    await checkPrivileges();
    this.layout.checkSocketPaths();
    if (existsSync(this.layout.ledger)) {
      log(`cluster "${this.name}": its supervisor is gone but left state behind; cleaning up first`);
      const problems = await cleanUp(new Ledger(this.layout.ledger), { removeDir: this.layout.dir });
      if (problems.length) throw new Error(`cannot clean up the previous cluster "${this.name}": ${problems.join('; ')}`);
    }
    mkdirSync(this.layout.dir, { recursive: true });
    const logFd = openSync(this.layout.supervisorLog, 'a');
    const child = spawn(process.execPath, [SUPERVISOR_SCRIPT, '--cluster', this.name, '--state-dir', this.layout.dir, '--nodes', String(nodes)], {
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

/**
 * The local cluster needs to create network namespaces, veths and nftables rules: root (CAP_NET_ADMIN and
 * CAP_SYS_ADMIN). Say exactly what is missing instead of failing halfway.
 */
async function checkPrivileges(): Promise<void> {
  if (process.getuid?.() === 0) return;
  let userns = 'unknown';
  try {
    await run(['unshare', '--user', '--map-root-user', '--net', '--mount', 'true']);
    userns = 'available';
  } catch (err) {
    userns = `not available (${(err as Error).message.split('\n')[0]})`;
  }
  throw new Error(
    'the local cluster needs root: it creates network namespaces, veth links and nftables rules. ' +
      `Run ambit as root (e.g. sudo -E ambit up). Unprivileged user namespaces are ${userns}, but running the ` +
      'cluster inside one is not supported yet.',
  );
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
