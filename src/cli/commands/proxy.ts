// `ambit proxy waypoint`: the waypoint (the process in a waypoint pod; Istio starts its proxy image with the same
// arguments). Its settings come from the pod's environment as the waypoint Deployment sets it (GATEWAY_NAME,
// POD_NAMESPACE, SERVICE_ACCOUNT, XDS_ADDRESS, …; see docs/waypoint.md); flags win over them.
import type { Command } from 'commander';
import { logFormatOption as logFormat, portOption as port } from '../options.js';
import { LogSink } from '../../telemetry/log.js';
import { loadWaypointConfig, type WaypointFlags } from '../../waypoint/config.js';
import { Waypoint } from '../../waypoint/waypoint.js';

interface Options {
  gateway?: string;
  namespace?: string;
  serviceAccount?: string;
  xdsAddress?: string;
  caAddress?: string;
  rootCert?: string;
  tokenFile?: string;
  hbonePort?: number;
  adminPort?: number;
  metricsPort?: number;
  statusPort?: number;
  logLevel?: string;
  logFormat?: 'text' | 'json';
  accessLog?: boolean;
}

export function register(program: Command): void {
  const proxy = program.command('proxy').description('Run a proxy of the mesh in a pod (as Istio runs its proxy image: `proxy waypoint`)');
  proxy
    .command('waypoint')
    .description("Run a waypoint (L7 proxy for the Services and workloads bound to a Gateway of class istio-waypoint)")
    .option('--gateway <name>', 'the waypoint Gateway this pod serves (GATEWAY_NAME)')
    .option('--namespace <ns>', 'the pod and Gateway namespace (POD_NAMESPACE)')
    .option('--service-account <name>', "the pod's service account: the waypoint's identity (SERVICE_ACCOUNT)")
    .option('--xds-address <host:port>', 'control plane Delta ADS address (XDS_ADDRESS)')
    .option('--ca-address <host:port>', 'certificate authority address (CA_ADDRESS; default: the xDS address)')
    .option('--root-cert <file>', 'mesh root certificate, PEM (AMBIT_ROOT_CERT; default /var/run/secrets/istio/root-cert.pem)')
    .option('--token-file <file>', "the pod's istio-ca service account token (AMBIT_TOKEN_FILE; default /var/run/secrets/tokens/istio-token)")
    .option('--hbone-port <port>', 'HBONE listener (default 15008)', port)
    .option('--admin-port <port>', 'admin port on 127.0.0.1: /config_dump, /logging (default 15000)', port)
    .option('--metrics-port <port>', 'Prometheus /stats/prometheus (default 15020)', port)
    .option('--status-port <port>', '/healthz/ready (default 15021)', port)
    .option('--log-level <filter>', 'log filter, e.g. info or info,access=debug (LOG_LEVEL)')
    .option('--log-format <format>', 'text or json (LOG_FORMAT)', logFormat)
    .option('--no-access-log', 'no access-log line per request (ACCESS_LOG=false)')
    .action(async (opts: Options) => {
      const flags: WaypointFlags = {
        gatewayName: opts.gateway,
        podNamespace: opts.namespace,
        serviceAccount: opts.serviceAccount,
        xdsAddress: opts.xdsAddress,
        caAddress: opts.caAddress,
        rootCertFile: opts.rootCert,
        tokenFile: opts.tokenFile,
        hbonePort: opts.hbonePort,
        adminPort: opts.adminPort,
        metricsPort: opts.metricsPort,
        statusPort: opts.statusPort,
        logLevel: opts.logLevel,
        logFormat: opts.logFormat,
        // Commander sets accessLog to true unless --no-access-log: only the "no" is a flag given.
        accessLog: opts.accessLog === false ? false : undefined,
      };
      const config = loadWaypointConfig(flags);
      const sink = new LogSink({ format: config.logFormat, level: config.logLevel });
      const log = sink.logger('waypoint');
      // A bad peer, request or resource must never take the waypoint down: log it and keep serving the others.
      process.on('uncaughtException', (e) => log.error(`unexpected error, continuing: ${e.stack ?? e}`));
      process.on('unhandledRejection', (e) => log.error(`unexpected error, continuing: ${(e as Error)?.stack ?? e}`));
      let quit!: (why: string) => void;
      const stopped = new Promise<string>((resolve) => (quit = resolve));
      const w = await Waypoint.start({ config, sink, onQuit: () => quit('/quitquitquit') });
      process.once('SIGINT', () => quit('SIGINT'));
      process.once('SIGTERM', () => quit('SIGTERM'));
      const why = await stopped;
      log.info(`${why} received, draining connections for up to ${config.drainDurationMs}ms`);
      await w.close();
      process.exit(0);
    });
}
