// The cluster supervisor: the background process that owns one local cluster. `ambit up` starts it detached; every
// other command talks to it over its Unix socket (JSON over HTTP, endpoints under /v1). It survives bad manifests
// and crashing pods; on SIGTERM or POST /v1/shutdown it removes everything it created.
//
//   node dist/src/local/supervisor.js --cluster NAME --state-dir DIR --nodes N [--rootless]
import { chmodSync, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isNamespaced, type Kind, type Resource } from '../api/types.js';
import { LocalCluster } from './cluster.js';
import { lookupModelKind } from '../api/kinds.js';
import { StateLayout, validateClusterName } from './layout.js';
import { cleanUp } from './ledger.js';
import { supervisorNamespaces } from './sys.js';
import { RpcError, serveJson } from '../common/rpc.js';

export interface SupervisorStatus {
  cluster: string;
  pid: number;
  stateDir: string;
  startedAt: string;
  nodes: ReturnType<LocalCluster['nodeInfo']>;
  components: ReturnType<LocalCluster['componentStatus']>;
  notReady: string[];
  /** Running inside its own user namespace (started without root). */
  rootless: boolean;
}

function need(cond: unknown, message: string): asserts cond {
  if (!cond) throw new RpcError(400, message);
}

function objectsOf(body: unknown): Resource[] {
  const objects = (body as { objects?: unknown })?.objects;
  need(Array.isArray(objects), 'body must be {"objects": [...]}');
  return objects as Resource[];
}

export async function runSupervisor(args: { cluster: string; stateDir: string; nodes: number; rootless: boolean }): Promise<void> {
  validateClusterName(args.cluster);
  const layout = new StateLayout(args.stateDir);
  layout.checkSocketPaths();
  mkdirSync(layout.dir, { recursive: true });
  // The CA key, tokens and sockets below are for the cluster's components only (pods do not even see the directory).
  chmodSync(layout.dir, 0o700);
  const cluster = new LocalCluster({ name: args.cluster, stateDir: args.stateDir, nodes: args.nodes });
  cluster.ledger.processStarted(process.pid, 'supervisor');
  const startedAt = new Date().toISOString();
  let shuttingDown: Promise<void> | undefined;
  const shutdown = (code: number) => {
    shuttingDown ??= (async () => {
      try {
        await cluster.shutdown();
      } catch (err) {
        process.stderr.write(`shutdown: ${(err as Error).message}\n`);
      }
      const problems = await cleanUp(cluster.ledger);
      for (const p of problems) process.stderr.write(`clean-up: ${p}\n`);
      cluster.ledger.processExited(process.pid);
      process.exit(problems.length ? 1 : code);
    })();
    return shuttingDown;
  };
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  // One misbehaving request or pod must not take the whole cluster down: log and carry on.
  process.on('uncaughtException', (err) => process.stderr.write(`uncaught: ${err.stack ?? err}\n`));
  process.on('unhandledRejection', (err) => process.stderr.write(`unhandled rejection: ${(err as Error)?.stack ?? err}\n`));

  try {
    await cluster.start();
  } catch (err) {
    process.stderr.write(`cluster ${args.cluster} failed to start: ${(err as Error).message}\n`);
    await shutdown(1);
    return;
  }

  const target = (body: unknown) => {
    const b = body as { namespace?: string; name?: string; container?: string; node?: string } | undefined;
    need(typeof b?.name === 'string' && b.name, 'body needs "name"');
    return { namespace: b.namespace || 'default', name: b.name, container: b.container || undefined, node: b.node || undefined };
  };

  await serveJson(layout.socket, {
    'GET /v1/status': (): SupervisorStatus => ({
      cluster: args.cluster,
      pid: process.pid,
      stateDir: args.stateDir,
      startedAt,
      nodes: cluster.nodeInfo(),
      components: cluster.componentStatus(),
      notReady: cluster.notReady(),
      rootless: args.rootless,
    }),
    'POST /v1/apply': async (body) => ({ results: await cluster.apply(objectsOf(body)) }),
    'POST /v1/delete': async (body) => ({ results: await cluster.delete(objectsOf(body)) }),
    'GET /v1/resources': (_body, query) => {
      const kindWord = query.get('kind');
      let kind: Kind | undefined;
      if (kindWord) {
        const info = lookupModelKind(kindWord);
        need(info, `the server doesn't have a resource type "${kindWord}"`);
        kind = info.kind;
      }
      const namespace = query.get('namespace') ?? undefined;
      const items = (kind ? cluster.store.list(kind) : cluster.store.list()).filter((r) => namespace === undefined || !isNamespaced(r.kind) || r.metadata.namespace === namespace);
      return { items };
    },
    'POST /v1/wait': async (body) => {
      const timeoutMs = Number((body as { timeoutMs?: number })?.timeoutMs ?? 0);
      return { pending: await cluster.waitReady(Math.max(0, Math.min(timeoutMs, 3_600_000))) };
    },
    'POST /v1/exec': (body) => {
      const t = target(body);
      return { ...cluster.execTarget(t.namespace, t.name, t.container), enter: supervisorNamespaces(args.rootless, process.pid) };
    },
    'POST /v1/logs': (body) => {
      const t = target(body);
      // A bare name (no namespace given) may be a component: `ambit logs ztunnel --node node-1`.
      const b = body as { namespace?: string; previous?: unknown };
      if (!b.namespace) {
        const logs = cluster.componentLogs(t.name, t.node);
        need(!logs || b.previous !== true, `--previous is for pod containers: ${t.name} appends every run to one log`);
        if (logs) return { logs };
      }
      const log = cluster.podLog(t.namespace, t.name, t.container, b.previous === true);
      return { logs: [{ path: log.path }] };
    },
    'POST /v1/rollout/restart': async (body) => {
      const b = body as { name?: unknown; node?: unknown } | undefined;
      need(typeof b?.name === 'string' && b.name, 'body needs "name" (a component, e.g. ztunnel)');
      need(b.node === undefined || typeof b.node === 'string', '"node" must be a node name');
      return { restarted: await cluster.rolloutRestart(b.name, (b.node as string | undefined) || undefined) };
    },
    'GET /v1/component/admin': async (_body, query) => {
      // Read-only: a GET on a component's loopback admin port (ztunnel's /config_dump, the control plane's /debug/*).
      const name = query.get('name');
      const port = Number(query.get('port'));
      const path = query.get('path') ?? '';
      need(name, 'query needs "name" (a component, e.g. ztunnel)');
      need(Number.isInteger(port) && port > 0 && port < 65536, 'query needs "port" (the admin port)');
      need(path.startsWith('/'), 'query needs "path" starting with /');
      return { results: await cluster.componentAdminGet(name, port, path, query.get('node') || undefined) };
    },
    'POST /v1/shutdown': () => {
      setImmediate(() => void shutdown(0));
      return { ok: true };
    },
  });
  process.stdout.write(`supervisor listening on ${layout.socket}\n`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { values } = parseArgs({
    options: { cluster: { type: 'string' }, 'state-dir': { type: 'string' }, nodes: { type: 'string' }, rootless: { type: 'boolean' } },
  });
  if (!values.cluster || !values['state-dir'] || !values.nodes) {
    process.stderr.write('usage: supervisor --cluster NAME --state-dir DIR --nodes N\n');
    process.exit(2);
  }
  runSupervisor({ cluster: values.cluster, stateDir: values['state-dir'], nodes: Number(values.nodes), rootless: values.rootless ?? false }).catch((err: unknown) => {
    process.stderr.write(`supervisor failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
