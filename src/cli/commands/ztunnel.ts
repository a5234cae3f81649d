// `ambit ztunnel --node NAME …`: the per-node L4 proxy (ztunnel's role). Serves every captured pod the node's CNI
// agent hands over (ZDS), with configuration from the control plane (Delta ADS) and pod certificates from its CA.
// Flags win over ztunnel's environment variables (NODE_NAME, XDS_ADDRESS, CA_ADDRESS, LOG_FORMAT, …); see
// docs/ztunnel.md for every setting.
import type { Command } from 'commander';
import { logFormatOption as logFormat, portOption as port } from '../options.js';
import { loadConfig, type ZtunnelFlags } from '../../ztunnel/config.js';
import { applyHeapGrowingPercent } from '../../ztunnel/heap.js';
import { LogSink } from '../../ztunnel/log.js';
import { Ztunnel } from '../../ztunnel/ztunnel.js';

interface Options {
  node?: string;
  xdsAddress?: string;
  caAddress?: string;
  rootCert?: string;
  tokenFile?: string;
  zdsSocket?: string;
  logFormat?: 'text' | 'json';
  logLevel?: string;
  adminPort?: number;
  metricsPort?: number;
  readinessPort?: number;
  dnsUpstream?: string;
  trustDomain?: string;
  clusterId?: string;
  instanceIp?: string;
}

export function register(program: Command): void {
  program
    .command('ztunnel')
    .description("Run the per-node L4 proxy (ztunnel's role): mTLS/HBONE, identities and L4 policy for captured pods")
    .option('--node <name>', 'node this ztunnel serves (NODE_NAME)')
    .option('--xds-address <host:port>', 'control plane Delta ADS address (XDS_ADDRESS)')
    .option('--ca-address <host:port>', 'certificate authority address (CA_ADDRESS; default: the xDS address)')
    .option('--root-cert <file>', 'mesh root certificate, PEM (ROOT_CERT)')
    .option('--token-file <file>', "the bearer token shown to the control plane and CA, re-read on every connection and request: ztunnel's service account token, or a node token without Kubernetes (TOKEN_FILE)")
    .option('--zds-socket <file>', "the CNI agent's ZDS socket (INPOD_UDS)")
    .option('--log-format <format>', 'text or json (LOG_FORMAT)', logFormat)
    .option('--log-level <filter>', 'log filter, e.g. info or info,access=debug (RUST_LOG)')
    .option('--admin-port <port>', 'admin port on 127.0.0.1: /config_dump, /logging (default 15000)', port)
    .option('--metrics-port <port>', 'Prometheus /metrics and /healthz (default 15020)', port)
    .option('--readiness-port <port>', '/healthz/ready (default 15021)', port)
    .option('--dns-upstream <host:port>', 'resolver for names that are not mesh services (DNS_UPSTREAM; default 10.96.0.10:53)')
    .option('--trust-domain <domain>', 'mesh trust domain (TRUST_DOMAIN; default cluster.local)')
    .option('--cluster-id <id>', 'cluster name in telemetry (CLUSTER_ID; default Kubernetes)')
    .option('--instance-ip <ip>', "this node's IP for the xDS node id (INSTANCE_IP)")
    .action(async (opts: Options) => {
      const flags: ZtunnelFlags = {
        nodeName: opts.node,
        xdsAddress: opts.xdsAddress,
        caAddress: opts.caAddress,
        rootCertFile: opts.rootCert,
        tokenFile: opts.tokenFile,
        zdsSocket: opts.zdsSocket,
        logFormat: opts.logFormat,
        logLevel: opts.logLevel,
        adminPort: opts.adminPort,
        metricsPort: opts.metricsPort,
        readinessPort: opts.readinessPort,
        dnsUpstream: opts.dnsUpstream,
        trustDomain: opts.trustDomain,
        clusterId: opts.clusterId,
        instanceIp: opts.instanceIp,
      };
      const config = loadConfig(flags);
      const sink = new LogSink({ format: config.logFormat, level: config.logLevel });
      const log = sink.logger('ztunnel');
      applyHeapGrowingPercent(config.heapGrowingPercent);
      if (config.heapGrowingPercent !== 0) {
        log.info(`V8 old-generation growing factor fixed at ${1 + config.heapGrowingPercent / 100}x (AMBIT_HEAP_GROWING_PERCENT=${config.heapGrowingPercent})`);
      }
      // A bad peer, pod or resource must never take the node's proxy down: log it and keep serving the others.
      process.on('uncaughtException', (e) => log.error(`unexpected error, continuing: ${e.stack ?? e}`));
      process.on('unhandledRejection', (e) => log.error(`unexpected error, continuing: ${(e as Error)?.stack ?? e}`));
      let quit!: (why: string) => void;
      const stopped = new Promise<string>((resolve) => (quit = resolve));
      const z = await Ztunnel.start({ config, sink, onQuit: () => quit('/quitquitquit') });
      process.once('SIGINT', () => quit('SIGINT'));
      process.once('SIGTERM', () => quit('SIGTERM'));
      const why = await stopped;
      log.info(`${why} received, draining connections for up to ${config.connectionTerminationDeadlineMs}ms`);
      await z.close();
      process.exit(0);
    });
}
