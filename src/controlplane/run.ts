// Assembles a whole control plane: CA material, how callers are authenticated (TokenReviews with a cluster; node
// tokens and service account token keys without one), the config store and ambient index fed by a ConfigWatcher
// (files) and/or a cluster (a KubeSource reading the Kubernetes API), the waypoint controller (when there is a
// cluster to write to), and the gRPC/debug servers. `ambit controlplane` is this plus signal handling.
import { join } from 'node:path';
import { DEFAULT_CLUSTER_ID, DEFAULT_TRUST_DOMAIN } from '../api/types.js';
import { AmbientIndex } from '../model/ambient.js';
import { ConfigStore } from '../model/store.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT } from '../xds/types.js';
import { AnyAuthenticator, DEFAULT_TRUSTED_NODE_ACCOUNTS, ServiceAccountTokenAuthenticator, TokenFileAuthenticator, type NodeAuthenticator } from './auth.js';
import { MeshCa } from './ca.js';
import { ConfigWatcher, type ReloadReport } from './config-watch.js';
import { scopedLogger, type Logger } from './log.js';
import { ControlPlaneServer, DEFAULT_XDS_LISTEN } from './server.js';
import { noticeUnappliedConfig } from './unapplied-notices.js';
import { WaypointController, type ClusterWriter } from './waypoint-controller.js';
import { ADDRESS_ON_DEMAND } from './on-demand.js';
import { xdsTypesOf, type XdsAuthorizer, type XdsSource } from './xds.js';

export interface RunOptions {
  config: string[];
  /**
   * Read a Kubernetes API server (alongside or instead of `config`): the kubeconfig file, or
   * when it is absent client-node's default lookup ($KUBECONFIG, ~/.kube/config, then the in-cluster service account).
   */
  kubernetes?: { kubeconfig?: string };
  stateDir: string;
  /**
   * Without `kubernetes`: the node proxies' tokens, a JSON file of {token: node}; default `<stateDir>/node-tokens.json`.
   * With it, node proxies authenticate with their service account token instead (a TokenReview).
   */
  nodeTokens?: string;
  /**
   * Without `kubernetes`: JWKS of the service account token issuer whose tokens workloads (waypoints) show. With it,
   * the API server reviews them instead.
   */
  serviceAccountJwks?: string;
  /** With `kubernetes`: `<namespace>/<name>` of the node proxies' service accounts (CA_TRUSTED_NODE_ACCOUNTS). */
  trustedNodeAccounts?: readonly string[];
  /** `host:port` waypoint pods dial for xDS and certificates; default: `listen`. */
  advertiseAddress?: string;
  caCert?: string;
  caKey?: string;
  trustDomain?: string;
  listen?: string;
  debugListen?: string;
  debounceMs?: number;
  /** See ControlPlaneServerOptions. */
  defaultWorkloadCertTtlSeconds?: number;
  maxWorkloadCertTtlSeconds?: number;
  /** Log sink per scope; default stderr in istiod's format. */
  logger?: (scope: string) => Logger;
  onReload?: (r: ReloadReport) => void;
}

export interface RunningControlPlane {
  server: ControlPlaneServer;
  index: AmbientIndex;
  close(): Promise<void>;
}

/** The ambient index as an xDS source serving Address, Authorization and waypoint configuration. */
export function ambientXdsSource(index: AmbientIndex): XdsSource {
  return {
    typeUrls: () => [TYPE_ADDRESS, TYPE_AUTHORIZATION, TYPE_WAYPOINT],
    snapshot: (typeUrl) => index.snapshot(typeUrl),
    onChange: (listener) => index.onChange(listener),
  };
}

/**
 * Who may read what: node proxies (ztunnel) read Address and Authorization; a workload with its own service account
 * token reads Address and — when it is a waypoint's pod — exactly its waypoint's configuration collection.
 */
export function meshXdsAuthorizer(index: AmbientIndex): XdsAuthorizer {
  return (caller, typeUrl, names) => {
    if (caller.serviceAccount === undefined) {
      return typeUrl === TYPE_WAYPOINT ? 'waypoint configuration is served to waypoints, which authenticate with their own service account token' : undefined;
    }
    const sa = caller.serviceAccount;
    if (typeUrl === TYPE_ADDRESS) return undefined;
    if (typeUrl !== TYPE_WAYPOINT) return 'only node proxies read it';
    for (const name of names) {
      const [ns, gateway] = name.split('/');
      const w = ns && gateway ? index.waypoint(`${ns}/${gateway}`) : undefined;
      if (w === undefined || w.namespace !== sa.namespace || w.serviceAccount !== sa.name) {
        return `"${name}" is not the configuration of a waypoint that runs as ${sa.namespace}/${sa.name}`;
      }
    }
    return undefined;
  };
}

export async function runControlPlane(opts: RunOptions): Promise<RunningControlPlane> {
  const logger = opts.logger ?? scopedLogger;
  const log = logger('controlplane');
  // Loaded only when used: client-node (with its generated API models) costs about 1 s and 90 MB of memory to load,
  // which a control plane serving files should not pay. The kubeconfig is read first, so a missing one fails fast.
  const kube = opts.kubernetes
    ? await Promise.all([import('./kube-client.js'), import('./kube-source.js'), import('./kube-auth.js')]).then(([client, source, auth]) => ({
        kubeConfig: client.loadKubeConfig(opts.kubernetes!.kubeconfig),
        KubeClient: client.KubeClient,
        KubeSource: source.KubeSource,
        TokenReviewAuthenticator: auth.TokenReviewAuthenticator,
      }))
    : undefined;
  if (kube && (opts.nodeTokens !== undefined || opts.serviceAccountJwks !== undefined)) {
    throw new Error('--node-tokens and --service-account-jwks serve a control plane without a Kubernetes API: reading one, it authenticates every caller by a TokenReview of its service account token');
  }
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const ca = await MeshCa.load({ trustDomain, stateDir: opts.stateDir, certFile: opts.caCert, keyFile: opts.caKey });

  const store = new ConfigStore();
  const index = new AmbientIndex(store, { trustDomain });
  noticeUnappliedConfig(store, index.options.domainSuffix, logger('config'));
  let authenticator: NodeAuthenticator;
  let reviewClient: { close(): void } | undefined;
  if (kube) {
    // Its own client (and connections): TokenReviews on a proxy's connect do not queue behind a flood of status writes.
    const client = new kube.KubeClient(kube.kubeConfig);
    reviewClient = client;
    authenticator = new kube.TokenReviewAuthenticator({ client, trustedNodeAccounts: new Set(opts.trustedNodeAccounts ?? DEFAULT_TRUSTED_NODE_ACCOUNTS) });
  } else {
    const nodeTokens = new TokenFileAuthenticator(opts.nodeTokens ?? join(opts.stateDir, 'node-tokens.json'));
    if (nodeTokens.lastError) log.warn(`${nodeTokens.lastError}; every node is refused until it is fixed`);
    authenticator = nodeTokens;
    if (opts.serviceAccountJwks) {
      const sa = new ServiceAccountTokenAuthenticator(opts.serviceAccountJwks, (ns, name, uid) => index.hasPod(ns, name, uid));
      if (sa.lastError) log.warn(`${sa.lastError}; service account tokens are refused until it is fixed`);
      authenticator = new AnyAuthenticator([nodeTokens, sa]);
    }
  }
  const sources: { start(): Promise<unknown>; close(): void }[] = [];
  if (opts.config.length) sources.push(new ConfigWatcher(opts.config, store, logger('config'), opts.debounceMs, opts.onReload));
  let controller: WaypointController | undefined;
  let cluster: (ClusterWriter & { start(): Promise<unknown>; close(): void }) | undefined;
  if (kube) cluster = new kube.KubeSource({ kubeConfig: kube.kubeConfig, store, log: logger('cluster'), statuses: () => index.statuses() });
  if (cluster) {
    sources.push(cluster);
    controller = new WaypointController({
      store,
      writer: cluster,
      log: logger('gateway'),
      controlPlaneAddress: opts.advertiseAddress ?? opts.listen ?? DEFAULT_XDS_LISTEN,
      trustDomain,
      clusterId: DEFAULT_CLUSTER_ID,
    });
  }
  const closeSources = () => {
    controller?.close();
    for (const s of sources) s.close();
    reviewClient?.close();
  };
  try {
    // Load before serving, so the first ztunnel to connect gets the whole configuration rather than part of it.
    for (const s of sources) await s.start();
    controller?.start();
    const server = await ControlPlaneServer.start({
      ca,
      authenticator,
      authorize: meshXdsAuthorizer(index),
      xdsTypes: xdsTypesOf(ambientXdsSource(index)).map((t) => (t.typeUrl === TYPE_ADDRESS ? { ...t, onDemand: ADDRESS_ON_DEMAND } : t)),
      placement: index,
      status: { statuses: () => index.statuses() },
      listen: opts.listen,
      debugListen: opts.debugListen,
      defaultWorkloadCertTtlSeconds: opts.defaultWorkloadCertTtlSeconds,
      maxWorkloadCertTtlSeconds: opts.maxWorkloadCertTtlSeconds,
      log: logger('ads'),
    });
    return {
      server,
      index,
      close: async () => {
        closeSources();
        await server.close();
        index.close();
      },
    };
  } catch (e) {
    closeSources();
    index.close();
    throw e;
  }
}
