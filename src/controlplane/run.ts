// Assembles a whole control plane: CA material, node tokens, the config store and ambient index fed by a
// ConfigWatcher (files) and/or a ClusterSource (a local cluster's watch feed), and the gRPC/debug servers. `ambit controlplane` is this plus signal handling.
import { join } from 'node:path';
import { DEFAULT_TRUST_DOMAIN } from '../api/types.js';
import { AmbientIndex } from '../model/ambient.js';
import { ConfigStore } from '../model/store.js';
import { TYPE_ADDRESS, TYPE_AUTHORIZATION } from '../xds/types.js';
import { TokenFileAuthenticator } from './auth.js';
import { MeshCa } from './ca.js';
import { ClusterSource } from './cluster-source.js';
import { ConfigWatcher, type ReloadReport } from './config-watch.js';
import { scopedLogger, type Logger } from './log.js';
import { ControlPlaneServer } from './server.js';
import { xdsTypesOf, type XdsSource } from './xds.js';

export interface RunOptions {
  config: string[];
  /** A local cluster's supervisor socket to follow (`GET /v1/watch`), alongside or instead of `config`. */
  clusterWatch?: string;
  stateDir: string;
  /** Default: `<stateDir>/node-tokens.json`. */
  nodeTokens?: string;
  caCert?: string;
  caKey?: string;
  trustDomain?: string;
  listen?: string;
  debugListen?: string;
  debounceMs?: number;
  /** Log sink per scope; default stderr in istiod's format. */
  logger?: (scope: string) => Logger;
  onReload?: (r: ReloadReport) => void;
}

export interface RunningControlPlane {
  server: ControlPlaneServer;
  index: AmbientIndex;
  close(): Promise<void>;
}

/** The ambient index as an xDS source serving Address and Authorization. */
export function ambientXdsSource(index: AmbientIndex): XdsSource {
  return {
    typeUrls: () => [TYPE_ADDRESS, TYPE_AUTHORIZATION],
    snapshot: (typeUrl) => index.snapshot(typeUrl),
    onChange: (listener) => index.onChange(listener),
  };
}

export async function runControlPlane(opts: RunOptions): Promise<RunningControlPlane> {
  const logger = opts.logger ?? scopedLogger;
  const log = logger('controlplane');
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const ca = await MeshCa.load({ trustDomain, stateDir: opts.stateDir, certFile: opts.caCert, keyFile: opts.caKey });
  const authenticator = new TokenFileAuthenticator(opts.nodeTokens ?? join(opts.stateDir, 'node-tokens.json'));
  if (authenticator.lastError) log.warn(`${authenticator.lastError}; every node is refused until it is fixed`);

  const store = new ConfigStore();
  const index = new AmbientIndex(store, { trustDomain });
  const sources: { start(): Promise<unknown>; close(): void }[] = [];
  if (opts.config.length) sources.push(new ConfigWatcher(opts.config, store, logger('config'), opts.debounceMs, opts.onReload));
  if (opts.clusterWatch) {
    sources.push(new ClusterSource({ socketPath: opts.clusterWatch, store, log: logger('cluster'), statuses: () => index.statuses() }));
  }
  const closeSources = () => {
    for (const s of sources) s.close();
  };
  try {
    // Load before serving, so the first ztunnel to connect gets the whole configuration rather than part of it.
    for (const s of sources) await s.start();
    const server = await ControlPlaneServer.start({
      ca,
      authenticator,
      xdsTypes: xdsTypesOf(ambientXdsSource(index)),
      placement: index,
      status: { policyStatuses: () => index.statuses() },
      listen: opts.listen,
      debugListen: opts.debugListen,
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
