// Every ztunnel setting in one place. Defaults are ztunnel's (istio/ztunnel src/config.rs); each setting ztunnel
// reads from an environment variable is read from the same variable here, and a CLI flag, when given, wins over it.
// The data path (pool, HTTP/2, listeners) reads its tuning from ZtunnelConfig rather than from constants of its own.
import { networkInterfaces } from 'node:os';
import {
  DNS_CAPTURE_PORT,
  INPOD_MARK,
  ZTUNNEL_INBOUND_PLAINTEXT_PORT,
  ZTUNNEL_INBOUND_PORT,
  ZTUNNEL_OUTBOUND_PORT,
} from '../cni/capture.js';
import { parseHostPort } from '../common/ip.js';
import { SettingsReader, asInteger, asPort, asString, parseBool, parseDuration, parseInteger, type Env } from '../common/settings.js';
import { parseLogFormat, type LogFormat } from '../telemetry/log.js';
import { HBONE_SERVER_LIMITS } from '../hbone/limits.js';


export interface ZtunnelConfig {
  // ---- who and where
  /** NODE_NAME: the node this ztunnel serves; the CA only issues identities of pods on it. */
  nodeName: string;
  /** CLUSTER_ID (default `Kubernetes`). */
  clusterId: string;
  /** TRUST_DOMAIN, else CLUSTER_DOMAIN (default `cluster.local`): the mesh trust domain peers must share. */
  trustDomain: string;
  /** CLUSTER_DOMAIN: DNS suffix of Service names (`<svc>.<ns>.svc.<clusterDomain>`). */
  clusterDomain: string;
  /** NETWORK: this node's network name (empty = the default network). */
  network: string;
  /** POD_NAME / POD_NAMESPACE / INSTANCE_IP: ztunnel's own identity in its xDS node id. */
  podName: string;
  podNamespace: string;
  instanceIp: string;

  // ---- control plane
  /** XDS_ADDRESS: `host:port` (an `https://` prefix is accepted) of the Delta ADS server. */
  xdsAddress: string;
  /** CA_ADDRESS: `host:port` of IstioCertificateService; defaults to the xDS address. */
  caAddress: string;
  /** ALT_XDS_HOSTNAME / ALT_CA_HOSTNAME: name checked in the server certificate when the address is an IP. */
  xdsHostname: string;
  caHostname: string;
  /** Mesh root certificate(s), PEM: verifies the control plane and peers. */
  rootCertFile: string;
  /**
   * The bearer token that proves the node (its pod's service account token, or a node token without Kubernetes),
   * re-read on every (re)connect and certificate request so a refreshed token is picked up.
   */
  tokenFile: string;
  /** INPOD_UDS: the CNI agent's ZDS socket. */
  zdsSocket: string;
  /** SECRET_TTL: lifetime requested for workload certificates. */
  secretTtlSeconds: number;

  // ---- data path tuning
  /** POOL_MAX_STREAMS_PER_CONNECTION: CONNECT streams per pooled HBONE connection. */
  poolMaxStreamsPerConnection: number;
  /** POOL_UNUSED_RELEASE_TIMEOUT: idle pooled connections close after this. */
  poolUnusedReleaseTimeoutMs: number;
  /** HTTP2_STREAM_WINDOW_SIZE / HTTP2_CONNECTION_WINDOW_SIZE / HTTP2_FRAME_SIZE, bytes. */
  http2StreamWindowSize: number;
  http2ConnectionWindowSize: number;
  http2FrameSize: number;
  /** HTTP/2 PING period and the time without an answer after which a tunnel is dropped. */
  http2KeepaliveIntervalMs: number;
  http2KeepaliveTimeoutMs: number;
  /**
   * HBONE_IDLE_TIMEOUT / HBONE_MAX_CONNECTIONS / HBONE_MAX_CONNECTIONS_PER_PEER (Ambit only, ztunnel has no such
   * bounds): an inbound HBONE connection without streams this long gets GOAWAY (0: never); inbound HBONE connections
   * over the caps, in total or from one peer address, are refused at accept with a log line.
   */
  hboneIdleTimeoutMs: number;
  hboneMaxConnections: number;
  hboneMaxConnectionsPerPeer: number;
  /** Outbound connect timeout (HBONE dial and plain TCP). */
  connectTimeoutMs: number;
  /** How long a pod's proxy waits for its own workload to appear in xDS before failing a connection. */
  localWorkloadWaitMs: number;
  /**
   * CONNECTION_TERMINATION_DEADLINE: on shutdown, open connections get this long to finish before they are reset.
   * Unset, it follows TERMINATION_GRACE_PERIOD_SECONDS as ztunnel does (the grace period minus 5 s, or minus 1 s for
   * periods of 10 s or less, at least 1 s), so the forced close happens before the kubelet's SIGKILL; else 5 s.
   */
  connectionTerminationDeadlineMs: number;
  /** PACKET_MARK: SO_MARK on every socket ztunnel creates in a pod netns. */
  packetMark: number;
  /** ENABLE_RESPONSE_BAGGAGE: answer CONNECT with a baggage header describing the destination. */
  enableResponseBaggage: boolean;
  /** AUTHZ_POLICY_INFO_LOGGING: log authorization decisions at info instead of debug. */
  authzPolicyInfoLogging: boolean;
  /**
   * AMBIT_HEAP_GROWING_PERCENT (Ambit only, no ztunnel equivalent): V8's old-generation growing factor as a percent
   * (10–1000; 0 = leave V8's setting alone). See src/ztunnel/heap.ts for why the proxy fixes it.
   */
  heapGrowingPercent: number;

  // ---- listeners
  /** In each captured pod's netns. */
  outboundPort: number;
  inboundPlaintextPort: number;
  inboundPort: number;
  dnsPort: number;
  /** ISTIO_META_DNS_CAPTURE (default true): serve the DNS proxy on dnsPort. */
  dnsCapture: boolean;
  /** DNS_UPSTREAM: resolver for names that are not mesh Services (the local cluster's DNS by default). */
  dnsUpstream: string;
  /** In ztunnel's own (node) netns: admin on localhost, metrics and readiness on all addresses. */
  adminPort: number;
  metricsPort: number;
  readinessPort: number;

  // ---- logging
  /** LOG_FORMAT: text | json. */
  logFormat: LogFormat;
  /** RUST_LOG: log filter such as `info` or `info,access=debug` (checked by the LogSink). */
  logLevel: string;
}

/** Values given on the command line; undefined means "not given" (the environment or the default applies). */
export type ZtunnelFlags = Partial<ZtunnelConfig>;

/** A fixed 4× growing factor for V8's old generation; why: src/ztunnel/heap.ts. */
export const DEFAULT_HEAP_GROWING_PERCENT = 300;

/** ztunnel's drain period when neither CONNECTION_TERMINATION_DEADLINE nor TERMINATION_GRACE_PERIOD_SECONDS is set. */
export const DEFAULT_CONNECTION_TERMINATION_DEADLINE_MS = 5_000;

/** The address ztunnel dials for istiod when XDS_ADDRESS is unset. */
export const DEFAULT_XDS_ADDRESS = 'istiod.istio-system.svc:15012';
export const DEFAULT_ISTIOD_HOSTNAME = 'istiod.istio-system.svc';
/** The local cluster's resolver (served by each node agent on the node's loopback). */
export const DEFAULT_DNS_UPSTREAM = '10.96.0.10:53';



// Below 10 % V8 would collect the whole heap every few MB allocated (its own factors start at 1.1); above 1000 % the
// factor stops mattering, because V8 caps the limit halfway to the heap's maximum.
function parseGrowingPercent(value: string, name: string): number {
  const n = parseInteger(value, name, 0, 1000);
  if (n !== 0 && n < 10) throw new Error(`${name}: expected 0 (leave V8's setting) or an integer in [10, 1000], got "${value}"`);
  return n;
}




// The drain ends a few seconds before the kubelet would SIGKILL the pod, so ztunnel closes what is left itself
// (TLS close_notify, GOAWAY) rather than having it cut by the kill.
function deadlineFromGracePeriod(value: string, name: string): number {
  const secs = parseInteger(value, name, 0, 2 ** 31 - 1);
  return Math.max(secs > 10 ? secs - 5 : secs - 1, 1) * 1000;
}

/** The first non-loopback IPv4 address of this network namespace: the node's IP when INSTANCE_IP is unset. */
function firstNodeIp(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * Builds the configuration: flag, else environment variable, else ztunnel's default. Throws one error naming every
 * invalid or missing setting.
 */
export function loadConfig(flags: ZtunnelFlags, env: Env = process.env): ZtunnelConfig {
  const settings = new SettingsReader(env);
  const problems = settings.problems;
  const pick = settings.pick.bind(settings);
  const str = asString;
  const int = asInteger;
  const dur = parseDuration;
  const port = asPort;

  const nodeName = pick(flags.nodeName, 'NODE_NAME', str, '');
  const clusterDomain = pick(flags.clusterDomain, 'CLUSTER_DOMAIN', str, 'cluster.local');
  const xdsAddress = pick(flags.xdsAddress, 'XDS_ADDRESS', str, DEFAULT_XDS_ADDRESS);
  const cfg: ZtunnelConfig = {
    nodeName,
    clusterId: pick(flags.clusterId, 'CLUSTER_ID', str, 'Kubernetes'),
    trustDomain: pick(flags.trustDomain, 'TRUST_DOMAIN', str, clusterDomain),
    clusterDomain,
    network: pick(flags.network, 'NETWORK', str, ''),
    podName: pick(flags.podName, 'POD_NAME', str, `ztunnel-${nodeName}`),
    podNamespace: pick(flags.podNamespace, 'POD_NAMESPACE', str, 'istio-system'),
    instanceIp: pick(flags.instanceIp, 'INSTANCE_IP', str, firstNodeIp()),
    xdsAddress,
    caAddress: pick(flags.caAddress, 'CA_ADDRESS', str, xdsAddress),
    xdsHostname: pick(flags.xdsHostname, 'ALT_XDS_HOSTNAME', str, DEFAULT_ISTIOD_HOSTNAME),
    caHostname: pick(flags.caHostname, 'ALT_CA_HOSTNAME', str, DEFAULT_ISTIOD_HOSTNAME),
    rootCertFile: pick(flags.rootCertFile, 'ROOT_CERT', str, ''),
    tokenFile: pick(flags.tokenFile, 'TOKEN_FILE', str, ''),
    zdsSocket: pick(flags.zdsSocket, 'INPOD_UDS', str, ''),
    secretTtlSeconds: pick(flags.secretTtlSeconds, 'SECRET_TTL', (v, n) => Math.round(parseDuration(v, n) / 1000), 24 * 3600),
    poolMaxStreamsPerConnection: pick(flags.poolMaxStreamsPerConnection, 'POOL_MAX_STREAMS_PER_CONNECTION', int(1, 2 ** 31 - 1), 100),
    poolUnusedReleaseTimeoutMs: pick(flags.poolUnusedReleaseTimeoutMs, 'POOL_UNUSED_RELEASE_TIMEOUT', dur, 5 * 60_000),
    http2StreamWindowSize: pick(flags.http2StreamWindowSize, 'HTTP2_STREAM_WINDOW_SIZE', int(65_535, 2 ** 31 - 1), 4 * 1024 * 1024),
    http2ConnectionWindowSize: pick(flags.http2ConnectionWindowSize, 'HTTP2_CONNECTION_WINDOW_SIZE', int(65_535, 2 ** 31 - 1), 16 * 1024 * 1024),
    http2FrameSize: pick(flags.http2FrameSize, 'HTTP2_FRAME_SIZE', int(16_384, 16_777_215), 1024 * 1024),
    http2KeepaliveIntervalMs: pick(flags.http2KeepaliveIntervalMs, 'HTTP2_KEEPALIVE_INTERVAL', dur, 10_000),
    http2KeepaliveTimeoutMs: pick(flags.http2KeepaliveTimeoutMs, 'HTTP2_KEEPALIVE_TIMEOUT', dur, 20_000),
    hboneIdleTimeoutMs: pick(flags.hboneIdleTimeoutMs, 'HBONE_IDLE_TIMEOUT', dur, HBONE_SERVER_LIMITS.idleTimeoutMs),
    hboneMaxConnections: pick(flags.hboneMaxConnections, 'HBONE_MAX_CONNECTIONS', int(1, 2 ** 31 - 1), HBONE_SERVER_LIMITS.maxConnections),
    hboneMaxConnectionsPerPeer: pick(flags.hboneMaxConnectionsPerPeer, 'HBONE_MAX_CONNECTIONS_PER_PEER', int(1, 2 ** 31 - 1), HBONE_SERVER_LIMITS.maxConnectionsPerPeer),
    connectTimeoutMs: pick(flags.connectTimeoutMs, 'CONNECT_TIMEOUT', dur, 10_000),
    localWorkloadWaitMs: pick(flags.localWorkloadWaitMs, 'LOCAL_WORKLOAD_WAIT', dur, 5_000),
    connectionTerminationDeadlineMs: pick(
      flags.connectionTerminationDeadlineMs,
      'CONNECTION_TERMINATION_DEADLINE',
      dur,
      pick(undefined, 'TERMINATION_GRACE_PERIOD_SECONDS', deadlineFromGracePeriod, DEFAULT_CONNECTION_TERMINATION_DEADLINE_MS),
    ),
    packetMark: pick(flags.packetMark, 'PACKET_MARK', int(1, 0xffffffff), INPOD_MARK),
    enableResponseBaggage: pick(flags.enableResponseBaggage, 'ENABLE_RESPONSE_BAGGAGE', parseBool, true),
    authzPolicyInfoLogging: pick(flags.authzPolicyInfoLogging, 'AUTHZ_POLICY_INFO_LOGGING', parseBool, false),
    heapGrowingPercent: pick(flags.heapGrowingPercent, 'AMBIT_HEAP_GROWING_PERCENT', parseGrowingPercent, DEFAULT_HEAP_GROWING_PERCENT),
    outboundPort: ZTUNNEL_OUTBOUND_PORT,
    inboundPlaintextPort: ZTUNNEL_INBOUND_PLAINTEXT_PORT,
    inboundPort: ZTUNNEL_INBOUND_PORT,
    dnsPort: DNS_CAPTURE_PORT,
    dnsCapture: pick(flags.dnsCapture, 'ISTIO_META_DNS_CAPTURE', parseBool, true),
    dnsUpstream: pick(flags.dnsUpstream, 'DNS_UPSTREAM', str, DEFAULT_DNS_UPSTREAM),
    adminPort: pick(flags.adminPort, 'ADMIN_PORT', port, 15000),
    metricsPort: pick(flags.metricsPort, 'METRICS_PORT', port, 15020),
    readinessPort: pick(flags.readinessPort, 'READINESS_PORT', port, 15021),
    logFormat: pick(flags.logFormat, 'LOG_FORMAT', parseLogFormat, 'text'),
    logLevel: pick(flags.logLevel, 'RUST_LOG', str, 'info'),
  };

  if (!cfg.nodeName) problems.push('node name missing: pass --node NAME or set NODE_NAME');
  for (const [what, value] of [
    ['--root-cert (ROOT_CERT)', cfg.rootCertFile],
    ['--token-file (TOKEN_FILE)', cfg.tokenFile],
    ['--zds-socket (INPOD_UDS)', cfg.zdsSocket],
  ] as const) {
    if (!value) problems.push(`${what} is required`);
  }
  for (const [name, value] of [
    ['XDS_ADDRESS', cfg.xdsAddress],
    ['CA_ADDRESS', cfg.caAddress],
    ['DNS_UPSTREAM', cfg.dnsUpstream],
  ] as const) {
    try {
      parseHostPort(value, name);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (cfg.http2ConnectionWindowSize < cfg.http2StreamWindowSize) {
    problems.push(
      `HTTP2_CONNECTION_WINDOW_SIZE (${cfg.http2ConnectionWindowSize}) must be at least HTTP2_STREAM_WINDOW_SIZE (${cfg.http2StreamWindowSize}), or one stream can starve the others`,
    );
  }
  if (problems.length > 0) throw new Error(`invalid ztunnel configuration:\n  ${problems.join('\n  ')}`);
  return cfg;
}
