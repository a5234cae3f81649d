// The kubelet's share of the ztunnel pods' tokens. Istio's ztunnel DaemonSet mounts a projected `istio-token`
// (service account istio-system/ztunnel, audience istio-ca) that ztunnel shows the control plane, which has the API
// server review it and takes the node of the pod it is bound to. Here each node's ztunnel pod object gets that token,
// written to the file the node's ztunnel process reads (--token-file) and refreshed at 80 % of its lifetime, as the
// kubelet does for a pod's projected tokens. The pod objects stand for processes that run anyway
// (component-objects.ts) and are published once the processes exist, so a ztunnel may start before its token: it
// retries its connections to the control plane until the file is there. A pod object published again after a delete,
// or a service account re-created, is a new binding, and its token is written at once: the API server refuses the
// old one from then on.
import { ROOT_NAMESPACE } from '../api/types.js';
import type { ResourceStore } from '../apiserver/store.js';
import { COMPONENT_ANNOTATION } from './component-objects.js';
import type { StateLayout } from './layout.js';
import { ISTIO_TOKEN_REQUEST, ProjectedTokenWriter, type ServiceAccountIssuer } from './tokens.js';

/** The ztunnel pods' service account, as Istio's chart names it (the control plane's trusted node account). */
const ZTUNNEL = 'ztunnel';

export interface ZtunnelTokensOptions {
  issuer: ServiceAccountIssuer;
  store: ResourceStore;
  layout: StateLayout;
  /** The uids of the pods the cluster published for its components: a user's look-alike pod gets no node's token. */
  published: ReadonlySet<string>;
  log: (line: string) => void;
}

export class ZtunnelTokens {
  /** Each node's token writer, and the pod and service account uids its token is bound to. */
  private readonly writers = new Map<string, { binding: string; writer: ProjectedTokenWriter }>();

  constructor(private readonly opts: ZtunnelTokensOptions) {}

  /** Gives every node's ztunnel pod object a token bound to it as it is now (called whenever they are published). */
  sync(): void {
    const { issuer, store, layout, published, log } = this.opts;
    const serviceAccount = store.getObject('', 'ServiceAccount', ROOT_NAMESPACE, ZTUNNEL);
    if (!serviceAccount) return;
    for (const pod of store.listObjects('', 'Pod', ROOT_NAMESPACE)) {
      const uid = pod.metadata.uid!;
      const node = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
      if (pod.metadata.annotations?.[COMPONENT_ANNOTATION] !== ZTUNNEL || !published.has(uid) || !node) continue;
      const binding = `${uid}/${serviceAccount.metadata.uid}`;
      const current = this.writers.get(node);
      if (current?.binding === binding) continue;
      current?.writer.stop();
      const subject = { namespace: ROOT_NAMESPACE, serviceAccount: ZTUNNEL, serviceAccountUid: serviceAccount.metadata.uid, pod: { name: pod.metadata.name, uid }, node };
      // Mode 0600, owned by the user the ztunnel processes run as (the supervisor's): it speaks for every pod of the node.
      const token = { file: layout.ztunnelToken(node), request: ISTIO_TOKEN_REQUEST, owner: process.getuid!() };
      const writer = new ProjectedTokenWriter(issuer, subject, [token], (line) => log(`ztunnel on ${node}: ${line}`));
      this.writers.set(node, { binding, writer });
      // A failed write is retried by the writer; ztunnel keeps retrying meanwhile.
      writer.start().catch((err: Error) => log(`ztunnel on ${node}: cannot write its service account token: ${err.message}`));
    }
  }

  stop(): void {
    for (const { writer } of this.writers.values()) writer.stop();
    this.writers.clear();
  }
}
