// The proxies' three HTTP endpoints, on Istio's ports and with its paths and bodies so istioctl-style tooling, kubelet
// probes and Prometheus scrape configs written for ztunnel and Istio's proxies work unchanged:
//   127.0.0.1:15000 admin      /config_dump, /logging (POST), /quitquitquit, /debug/pprof/profile, /
//   0.0.0.0:15020   metrics    /metrics, /stats/prometheus, /healthz
//   0.0.0.0:15021   readiness  /healthz/ready
// The admin port exposes certificates and can stop the process, so it never listens beyond loopback.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { ProfileBusyError, captureCpuProfile } from './cpu-profile.js';
import { LogLevelError, type LogSink, type Logger } from './log.js';

export const ADMIN_PORT = 15000;
export const METRICS_PORT = 15020;
export const READINESS_PORT = 15021;
export const ADMIN_HOST = '127.0.0.1';

export interface Readiness {
  ready: boolean;
  /** Tasks still starting, e.g. `state manager`, `proxy`, `dns proxy`, `cni connection`. */
  pending: string[];
}

export interface AdminOptions {
  /** Which proxy this is, on the admin index page (`ztunnel`, `waypoint`). */
  title: string;
  /** Port on 127.0.0.1 (0 = any, for tests). */
  adminPort?: number;
  metricsPort?: number;
  readinessPort?: number;
  /** Bind address of the metrics and readiness listeners; ztunnel uses the wildcard. */
  publicHost?: string;
  /** ztunnel `/config_dump` shape: workloads, services, policies, certificates[{identity,state,certChain,rootCerts}]. */
  configDump: () => object | Promise<object>;
  registry: Registry;
  ready: () => Readiness;
  /** The filter `/logging?level=` changes. */
  logSink: LogSink;
  /** Where the admin server reports its own problems. */
  log: Logger;
  /** Called after `/quitquitquit` has been answered. */
  onQuit?: () => void;
  /**
   * Makes the listening socket (an fd, bound and listening) instead of Node's own bind: ztunnel binds with
   * SO_REUSEPORT so a replacement process in the same network namespace can start before the old one stops.
   */
  bindListener?: (host: string, port: number) => number;
}

export interface AdminServer {
  /** Where each listener is bound (actual ports when 0 was asked for). */
  admin: AddressInfo;
  metrics: AddressInfo;
  readiness: AddressInfo;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, url: URL) => Promise<Reply> | Reply;
interface Reply {
  status: number;
  body: string;
  type?: string;
  after?: () => void;
}

/** ztunnel's `/logging` usage text (src/admin.rs), sent with every refusal. */
const LOGGING_HELP = `
usage: POST /logging\t\t\t\t\t\t(To list current level)
usage: POST /logging?level=<level>\t\t\t\t(To change global levels)
usage: POST /logging?level={mod1}:{level1},{mod2}:{level2}\t(To change specific mods' logging level)

hint: loglevel:\terror|warn|info|debug|trace|off
hint: mod_name:\tthe module name, i.e. ztunnel::proxy
`;

const text = (status: number, body: string): Reply => ({ status, body, type: 'text/plain; charset=utf-8' });

function serve(routes: Record<string, Handler>, log: Logger, name: string): http.Server {
  const server = http.createServer((req, res) => {
    void (async () => {
      let reply: Reply;
      try {
        const url = new URL(req.url ?? '/', 'http://admin');
        const route = routes[url.pathname];
        reply = route ? await route(req, url) : text(404, `${url.pathname} not found on the ${name} port\n`);
      } catch (err) {
        log.error(`${name} request ${req.method} ${req.url} failed`, { error: (err as Error).message });
        reply = text(500, `${(err as Error).message}\n`);
      }
      res.writeHead(reply.status, { 'content-type': reply.type ?? 'text/plain; charset=utf-8' });
      res.end(reply.body, reply.after);
    })();
  });
  // A client that sends garbage or hangs up must not reach the process's unhandled-error path.
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}

function listen(server: http.Server, port: number, host: string, what: string, bind: AdminOptions['bindListener']): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new Error(`${what} listener on ${host}:${port}: ${err.message}`));
    let fd: number | undefined;
    try {
      fd = bind?.(host, port);
    } catch (err) {
      return onError(err as NodeJS.ErrnoException);
    }
    server.once('error', onError);
    const target = fd === undefined ? { port, host } : { fd };
    server.listen(target, () => {
      server.off('error', onError);
      server.on('error', () => undefined);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const publicHost = opts.publicHost ?? '0.0.0.0';
  const metrics: Handler = async () => ({ status: 200, body: await opts.registry.metrics(), type: opts.registry.contentType });

  const admin = serve(
    {
      '/': () => ({
        status: 200,
        type: 'text/html; charset=utf-8',
        body:
          `<html><body><h1>${opts.title} admin</h1><ul>` +
          '<li><a href="/config_dump">/config_dump</a>: workloads, services, policies, certificates</li>' +
          '<li>/logging?level=LEVEL[&amp;reset] (POST): show or change the log filter</li>' +
          '<li>/debug/pprof/profile?seconds=N: CPU profile of the next N seconds (default 10), V8 .cpuprofile JSON</li>' +
          '<li>/quitquitquit (POST): shut down</li></ul></body></html>\n',
      }),
      '/config_dump': async () => ({ status: 200, type: 'application/json', body: `${JSON.stringify(await opts.configDump(), null, 2)}\n` }),
      // As ztunnel's (and Envoy's): POST only; without `level` or `reset` it lists the filter.
      '/logging': (req, url) => {
        if (req.method !== 'POST') return text(405, `Invalid HTTP method\n ${LOGGING_HELP}`);
        const level = url.searchParams.get('level') ?? '';
        const reset = url.searchParams.has('reset');
        if (level !== '' || reset) {
          try {
            opts.log.info(`new log filter is ${opts.logSink.changeLevel(level, reset)}`);
          } catch (err) {
            if (!(err instanceof LogLevelError)) throw err;
            return text(400, `Invalid level provided: ${level}\n${LOGGING_HELP}`);
          }
        }
        return text(200, `current log level is ${opts.logSink.level}\n`);
      },
      '/debug/pprof/profile': async (_req, url) => {
        const seconds = Number(url.searchParams.get('seconds') ?? 10);
        try {
          return { status: 200, type: 'application/json', body: await captureCpuProfile(seconds) };
        } catch (err) {
          if (err instanceof RangeError) return text(400, `${err.message}\n`);
          if (err instanceof ProfileBusyError) return text(409, `${err.message}\n`);
          throw err;
        }
      },
      '/quitquitquit': (req) => {
        if (req.method !== 'POST') return text(405, 'shutting down requires POST\n');
        opts.log.info('shutdown requested via /quitquitquit');
        return { ...text(200, 'OK\n'), after: opts.onQuit };
      },
    },
    opts.log,
    'admin',
  );
  const metricsServer = serve({ '/metrics': metrics, '/stats/prometheus': metrics, '/healthz': () => text(200, 'ok\n') }, opts.log, 'metrics');
  const readiness = serve(
    {
      '/healthz/ready': () => {
        const r = opts.ready();
        return r.ready ? text(200, 'ready\n') : text(500, `not ready, pending: ${[...r.pending].sort().join(', ')}\n`);
      },
    },
    opts.log,
    'readiness',
  );

  const servers = [admin, metricsServer, readiness];
  try {
    return {
      admin: await listen(admin, opts.adminPort ?? ADMIN_PORT, ADMIN_HOST, 'admin', opts.bindListener),
      metrics: await listen(metricsServer, opts.metricsPort ?? METRICS_PORT, publicHost, 'metrics', opts.bindListener),
      readiness: await listen(readiness, opts.readinessPort ?? READINESS_PORT, publicHost, 'readiness', opts.bindListener),
      close: async () => {
        await Promise.all(servers.map(closeServer));
      },
    };
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    throw err;
  }
}
