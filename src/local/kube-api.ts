// The local cluster's Kubernetes API, as kind's control-plane container serves it: an API CA made per cluster, a
// serving certificate for 127.0.0.1, an admin client certificate (`kubernetes-admin`, group `system:masters`) in the
// kubeconfig the supervisor writes, and the cluster's controllers behind the API (admission, pod logs and exec).
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { findModelType, parseApiVersion } from '../api/kinds.js';
import type { Resource } from '../api/types.js';
import { createApiCertificates, kubeconfigFor } from '../apiserver/certificates.js';
import { ApiServer, type ApiBackend } from '../apiserver/server.js';
import type { KubeObject } from '../apiserver/store.js';
import type { LocalCluster } from './cluster.js';
import { contextName } from './kubeconfig.js';

export interface KubeApiOptions {
  cluster: LocalCluster;
  clusterName: string;
  kubeconfigPath: string;
  backend: Pick<ApiBackend, 'podLog' | 'podExec'>;
  log: (line: string) => void;
}

/** Starts the API server on a free loopback port and writes the cluster's kubeconfig; returns the server. */
export async function startKubeApi(opts: KubeApiOptions): Promise<{ server: ApiServer; port: number }> {
  const certs = await createApiCertificates(['127.0.0.1'], { admin: { user: 'kubernetes-admin', groups: ['system:masters'] } });
  const { cluster } = opts;
  const backend: ApiBackend = {
    ...opts.backend,
    admit: (object) => (findModelType(object.kind)?.group === parseApiVersion(object.apiVersion).group ? (cluster.admit(object as unknown as Resource) as unknown as KubeObject) : object),
    deleted: (object) => {
      if (findModelType(object.kind)?.group === parseApiVersion(object.apiVersion).group) cluster.released(object as unknown as Resource);
    },
    changed: () => void cluster.reconcile(),
    reviewToken: (token, audiences) => cluster.reviewToken(token, audiences),
    authenticateToken: async (token) => {
      const review = (await cluster.reviewToken(token, [])) as { authenticated?: boolean; user?: { username: string; groups: string[] } };
      return review.authenticated && review.user ? { username: review.user.username, groups: review.user.groups } : undefined;
    },
  };
  const server = new ApiServer({ store: cluster.store, tls: { cert: certs.serving.cert, key: certs.serving.key, clientCA: certs.ca }, backend, log: opts.log });
  const port = await server.listen();
  const kubeconfig = kubeconfigFor(contextName(opts.clusterName), `https://127.0.0.1:${port}`, certs.ca, certs.clients.admin!);
  writeFileSync(opts.kubeconfigPath, stringify(kubeconfig), { mode: 0o600 });
  opts.log(`Kubernetes API listening on https://127.0.0.1:${port} (kubeconfig ${opts.kubeconfigPath})`);
  return { server, port };
}
