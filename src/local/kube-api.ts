// The local cluster's Kubernetes API, as kind's control-plane container serves it: an API CA made per cluster, a
// serving certificate for 127.0.0.1, an admin client certificate (`kubernetes-admin`, group `system:masters`) in the
// kubeconfig the supervisor writes, and the cluster's controllers behind the API (admission, pod logs and exec, token
// review).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { findModelType, parseApiVersion } from '../api/kinds.js';
import { ROOT_NAMESPACE, type Resource } from '../api/types.js';
import { createApiCertificates, kubeconfigFor } from '../apiserver/certificates.js';
import { badRequest } from '../apiserver/errors.js';
import { handleExecUpgrade } from '../apiserver/exec.js';
import { serveLogs } from '../apiserver/logs.js';
import { ApiServer, type ApiBackend } from '../apiserver/server.js';
import type { KubeObject } from '../apiserver/store.js';
import { PodNetns } from '../inpod/index.js';
import type { LocalCluster } from './cluster.js';
import { chooseContainer } from './pods.js';
import { contextName } from './kubeconfig.js';
import { FABRIC_GATEWAY_IP } from './layout.js';

/** kube-apiserver's secure port, where components inside the cluster reach the API. */
export const KUBE_API_FABRIC_PORT = 6443;

export interface KubeApiOptions {
  cluster: LocalCluster;
  clusterName: string;
  kubeconfigPath: string;
  /** Where the control plane's kubeconfig goes (server on the fabric address, istiod's certificate). */
  controlPlaneKubeconfigPath: string;
  log: (line: string) => void;
}

/** Starts the API server on a free loopback port and writes the cluster's kubeconfig; returns the server. */
export async function startKubeApi(opts: KubeApiOptions): Promise<{ server: ApiServer; port: number }> {
  const certs = await createApiCertificates(['127.0.0.1', FABRIC_GATEWAY_IP], {
    admin: { user: 'kubernetes-admin', groups: ['system:masters'] },
    // istiod's identity, as its in-cluster service account token would give it.
    istiod: { user: `system:serviceaccount:${ROOT_NAMESPACE}:istiod`, groups: ['system:serviceaccounts', `system:serviceaccounts:${ROOT_NAMESPACE}`] },
  });
  const { cluster } = opts;
  const backend: ApiBackend = {
    admit: (object, _old, type) =>
      findModelType(object.kind)?.group === parseApiVersion(object.apiVersion).group ? (cluster.admit(object as unknown as Resource) as unknown as KubeObject) : cluster.admitOther(object, type),
    deleted: (object) => {
      if (findModelType(object.kind)?.group === parseApiVersion(object.apiVersion).group) cluster.released(object as unknown as Resource);
    },
    changed: () => void cluster.reconcile(),
    reviewToken: (token, audiences) => cluster.reviewToken(token, audiences),
    requestToken: (serviceAccount, spec, pod) => cluster.requestToken(serviceAccount, spec, pod),
    authenticateToken: async (token) => {
      const review = (await cluster.reviewToken(token, [])) as { authenticated?: boolean; user?: { username: string; groups: string[] } };
      return review.authenticated && review.user ? { username: review.user.username, groups: review.user.groups } : undefined;
    },
  };
  // kubectl logs / exec: the kubelet's errors become kube's 400s (the pod itself was found by the API server).
  const kubelet = <T>(step: () => T): T => {
    try {
      return step();
    } catch (err) {
      throw badRequest((err as Error).message);
    }
  };
  const access = (ns: string, name: string) => kubelet(() => cluster.podAccess(ns, name));
  const pick = (a: ReturnType<typeof access>, pod: string, container: string | undefined) => kubelet(() => chooseContainer(a.containers, pod, container));
  backend.podLog = (req, res, namespace, pod) =>
    serveLogs(req, res, pod.metadata.name, {
      containerLog: (container) => {
        const a = access(namespace, pod.metadata.name);
        const name = pick(a, pod.metadata.name, container);
        return { container: name, ...a.log(name) };
      },
    });
  backend.podExec = (req, socket, head, namespace, pod) =>
    void handleExecUpgrade(req, socket, head, {
      check: (container) => void pick(access(namespace, pod.metadata.name), pod.metadata.name, container),
      spawnExec: ({ command, container }) => {
        const a = access(namespace, pod.metadata.name);
        const run = a.command(pick(a, pod.metadata.name, container), command);
        return spawn(run.argv[0]!, run.argv.slice(1), { env: run.env, cwd: run.cwd, stdio: 'pipe', detached: true });
      },
    });
  const server = new ApiServer({ store: cluster.store, tls: { cert: certs.serving.cert, key: certs.serving.key, clientCA: certs.ca }, backend, log: opts.log });
  const port = await server.listen();
  // The cluster's components (the control plane in the fabric namespace) reach the API at the fabric address, on
  // kube-apiserver's port, through a listener made inside that namespace.
  const fabric = PodNetns.open(cluster.fabricNetns);
  try {
    server.serve(fabric.listen(KUBE_API_FABRIC_PORT, { host: FABRIC_GATEWAY_IP }));
  } finally {
    fabric.close();
  }
  writeFileSync(
    opts.controlPlaneKubeconfigPath,
    stringify(kubeconfigFor(contextName(opts.clusterName), `https://${FABRIC_GATEWAY_IP}:${KUBE_API_FABRIC_PORT}`, certs.ca, certs.clients.istiod!)),
    { mode: 0o600 },
  );
  const kubeconfig = kubeconfigFor(contextName(opts.clusterName), `https://127.0.0.1:${port}`, certs.ca, certs.clients.admin!);
  writeFileSync(opts.kubeconfigPath, stringify(kubeconfig), { mode: 0o600 });
  opts.log(`Kubernetes API listening on https://127.0.0.1:${port} (kubeconfig ${opts.kubeconfigPath})`);
  return { server, port };
}
