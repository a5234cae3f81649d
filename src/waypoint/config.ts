// Every waypoint setting in one place. Istio's waypoint is Envoy started by pilot-agent from the Deployment istiod
// renders; the settings it reads from that Deployment's environment (POD_NAME, POD_NAMESPACE, INSTANCE_IP,
// SERVICE_ACCOUNT, CA_ADDRESS, ISTIO_META_CLUSTER_ID, …) are read from the same variables here, a CLI flag wins over
// them, and the defaults are Istio's. The data path reads its tuning from WaypointConfig rather than constants.
import { parseHostPort } from '../common/ip.js';
import { SettingsReader, asInteger, asPort, asString, parseBool, parseDuration, type Env } from '../common/settings.js';
import { HBONE_SERVER_LIMITS } from '../hbone/limits.js';
import { parseLogFormat, type LogFormat } from '../telemetry/log.js';

export interface WaypointConfig {
  // ---- who and where
  /** GATEWAY_NAME: the Gateway this waypoint was deployed for (its pods' `gateway.networking.k8s.io/gateway-name`). */
  gatewayName: string;
  /** POD_NAME / POD_NAMESPACE / INSTANCE_IP / NODE_NAME: this pod, for the xDS node id and logs. */
  podName: string;
  podNamespace: string;
  instanceIp: string;
  nodeName: string;
  /** SERVICE_ACCOUNT: the pod's service account; with the trust domain it is the waypoint's SPIFFE identity. */
  serviceAccount: string;
  /** TRUST_DOMAIN (default cluster.local). */
  trustDomain: string;
  /** ISTIO_META_CLUSTER_ID (default Kubernetes). */
  clusterId: string;
  /** CLUSTER_DOMAIN: DNS suffix of Service names. */
  clusterDomain: string;

  // ---- control plane
  /** XDS_ADDRESS (pilot-agent's discoveryAddress): `host:port` of the Delta ADS server. */
  xdsAddress: string;
  /** CA_ADDRESS (pilot-agent's CA_ADDR): IstioCertificateService; defaults to the xDS address. */
  caAddress: string;
  /** Name checked in the control plane's certificate when the address is an IP. */
  xdsHostname: string;
  /** The mesh root (Istio mounts the istio-ca-root-cert ConfigMap; the local cluster names it in AMBIT_ROOT_CERT). */
  rootCertFile: string;
  /** The pod's istio-ca service account token (Istio's projected istio-token; the local cluster: AMBIT_TOKEN_FILE). */
  tokenFile: string;
  /** SECRET_TTL: lifetime requested for the waypoint's certificate. */
  secretTtlSeconds: number;

  // ---- data path
  /** The HBONE listener (Istio: 15008 on every address of the pod). */
  hbonePort: number;
  /** Per-connection CONNECT streams toward one destination before another HBONE connection is opened. */
  poolMaxStreamsPerConnection: number;
  poolUnusedReleaseTimeoutMs: number;
  /** Upstream connect timeout (Envoy's cluster connect_timeout, Istio's default 10 s). */
  connectTimeoutMs: number;
  /**
   * HBONE_IDLE_TIMEOUT / HBONE_MAX_CONNECTIONS / HBONE_MAX_CONNECTIONS_PER_PEER, as ztunnel's (Envoy's counterparts:
   * the HTTP connection manager's idle_timeout, listener connection limits): an HBONE connection without streams this
   * long gets GOAWAY (0: never); HBONE connections over the caps, in total or from one peer address, are refused at
   * accept with a log line.
   */
  hboneIdleTimeoutMs: number;
  hboneMaxConnections: number;
  hboneMaxConnectionsPerPeer: number;
  /** On SIGTERM, open connections get this long to finish (Envoy's drain, TERMINATION_DRAIN_DURATION 5 s). */
  drainDurationMs: number;

  // ---- admin
  /** 15000 on localhost: /config_dump, /logging. */
  adminPort: number;
  /** 15020: /stats/prometheus (and /metrics). */
  metricsPort: number;
  /** 15021: /healthz/ready. */
  statusPort: number;

  // ---- logging
  logFormat: LogFormat;
  /** Log filter such as `info` or `info,access=debug`. */
  logLevel: string;
  /**
   * One access-log line per request on stdout in Istio's TEXT format. On by default, as Istio's demo profile sets
   * `meshConfig.accessLogFile: /dev/stdout` (its default profile leaves the log off); `ACCESS_LOG=false` or
   * `--no-access-log` turns it off.
   */
  accessLog: boolean;
}

export type WaypointFlags = Partial<WaypointConfig>;

export const DEFAULT_XDS_ADDRESS = 'istiod.istio-system.svc:15012';
export const DEFAULT_ISTIOD_HOSTNAME = 'istiod.istio-system.svc';
/** Where Istio's waypoint pods find the token and the root certificate. */
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/tokens/istio-token';
export const DEFAULT_ROOT_CERT = '/var/run/secrets/istio/root-cert.pem';

/**
 * Builds the configuration: flag, else environment variable, else Istio's default. Throws one error naming every
 * invalid or missing setting.
 */
export function loadWaypointConfig(flags: WaypointFlags, env: Env = process.env): WaypointConfig {
  const s = new SettingsReader(env);
  const pick = s.pick.bind(s);
  const dur = parseDuration;
  const clusterDomain = pick(flags.clusterDomain, 'CLUSTER_DOMAIN', asString, 'cluster.local');
  const xdsAddress = pick(flags.xdsAddress, 'XDS_ADDRESS', asString, DEFAULT_XDS_ADDRESS);
  const cfg: WaypointConfig = {
    gatewayName: pick(flags.gatewayName, 'GATEWAY_NAME', asString, ''),
    podName: pick(flags.podName, 'POD_NAME', asString, ''),
    podNamespace: pick(flags.podNamespace, 'POD_NAMESPACE', asString, ''),
    instanceIp: pick(flags.instanceIp, 'INSTANCE_IP', asString, ''),
    nodeName: pick(flags.nodeName, 'NODE_NAME', asString, ''),
    serviceAccount: pick(flags.serviceAccount, 'SERVICE_ACCOUNT', asString, ''),
    trustDomain: pick(flags.trustDomain, 'TRUST_DOMAIN', asString, clusterDomain),
    clusterId: pick(flags.clusterId, 'ISTIO_META_CLUSTER_ID', asString, 'Kubernetes'),
    clusterDomain,
    xdsAddress,
    caAddress: pick(flags.caAddress, 'CA_ADDRESS', asString, xdsAddress),
    xdsHostname: pick(flags.xdsHostname, 'ALT_XDS_HOSTNAME', asString, DEFAULT_ISTIOD_HOSTNAME),
    rootCertFile: pick(flags.rootCertFile, 'AMBIT_ROOT_CERT', asString, DEFAULT_ROOT_CERT),
    tokenFile: pick(flags.tokenFile, 'AMBIT_TOKEN_FILE', asString, DEFAULT_TOKEN_FILE),
    secretTtlSeconds: pick(flags.secretTtlSeconds, 'SECRET_TTL', (v, n) => Math.round(parseDuration(v, n) / 1000), 24 * 3600),
    hbonePort: pick(flags.hbonePort, 'HBONE_PORT', asPort, 15008),
    poolMaxStreamsPerConnection: pick(flags.poolMaxStreamsPerConnection, 'POOL_MAX_STREAMS_PER_CONNECTION', asInteger(1, 2 ** 31 - 1), 100),
    poolUnusedReleaseTimeoutMs: pick(flags.poolUnusedReleaseTimeoutMs, 'POOL_UNUSED_RELEASE_TIMEOUT', dur, 5 * 60_000),
    connectTimeoutMs: pick(flags.connectTimeoutMs, 'CONNECT_TIMEOUT', dur, 10_000),
    hboneIdleTimeoutMs: pick(flags.hboneIdleTimeoutMs, 'HBONE_IDLE_TIMEOUT', dur, HBONE_SERVER_LIMITS.idleTimeoutMs),
    hboneMaxConnections: pick(flags.hboneMaxConnections, 'HBONE_MAX_CONNECTIONS', asInteger(1, 2 ** 31 - 1), HBONE_SERVER_LIMITS.maxConnections),
    hboneMaxConnectionsPerPeer: pick(flags.hboneMaxConnectionsPerPeer, 'HBONE_MAX_CONNECTIONS_PER_PEER', asInteger(1, 2 ** 31 - 1), HBONE_SERVER_LIMITS.maxConnectionsPerPeer),
    drainDurationMs: pick(flags.drainDurationMs, 'TERMINATION_DRAIN_DURATION', dur, 5_000),
    adminPort: pick(flags.adminPort, 'ADMIN_PORT', asPort, 15000),
    metricsPort: pick(flags.metricsPort, 'METRICS_PORT', asPort, 15020),
    statusPort: pick(flags.statusPort, 'STATUS_PORT', asPort, 15021),
    logFormat: pick(flags.logFormat, 'LOG_FORMAT', parseLogFormat, 'text'),
    logLevel: pick(flags.logLevel, 'LOG_LEVEL', asString, 'info'),
    accessLog: pick(flags.accessLog, 'ACCESS_LOG', parseBool, true),
  };
  const problems = s.problems;
  for (const [what, value] of [
    ['--gateway (GATEWAY_NAME)', cfg.gatewayName],
    ['--pod-namespace (POD_NAMESPACE)', cfg.podNamespace],
    ['--service-account (SERVICE_ACCOUNT)', cfg.serviceAccount],
  ] as const) {
    if (!value) problems.push(`${what} is required`);
  }
  for (const [name, value] of [
    ['XDS_ADDRESS', cfg.xdsAddress],
    ['CA_ADDRESS', cfg.caAddress],
  ] as const) {
    try {
      parseHostPort(value, name);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length > 0) throw new Error(`invalid waypoint configuration:\n  ${problems.join('\n  ')}`);
  cfg.podName ||= `${cfg.gatewayName}-${process.pid}`;
  return cfg;
}

/** The waypoint's SPIFFE identity. */
export function waypointIdentity(c: Pick<WaypointConfig, 'trustDomain' | 'podNamespace' | 'serviceAccount'>): string {
  return `spiffe://${c.trustDomain}/ns/${c.podNamespace}/sa/${c.serviceAccount}`;
}
