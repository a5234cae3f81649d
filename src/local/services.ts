// Services on the nodes (kube-proxy's and CoreDNS's part): every Service port becomes nftables load balancing from
// its cluster IP to its ready pods on every node, and every Service a DNS name the node agents answer (a headless one
// resolves to its ready pods). Changes are batched and programmed only when the result differs from the last one.
import { isDeepStrictEqual } from 'node:util';
import type { Pod } from '../api/types.js';
import type { ResourceStore } from '../apiserver/store.js';
import { call } from '../common/rpc.js';
import { serviceFqdn, type DnsRecords } from './dns.js';
import { applyServiceRules, type ServiceRule } from './network.js';
import type { NodeRuntime } from './nodes.js';
import { isPodReady } from './pods.js';

export class ServiceProxy {
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private lastRules: ServiceRule[] | undefined;
  private lastDns: DnsRecords | undefined;
  private stopped = false;

  constructor(
    private readonly store: ResourceStore,
    private readonly nodes: readonly NodeRuntime[],
    private readonly log: (line: string) => void,
  ) {}

  scheduleSync(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.syncing = this.syncing.then(() => this.sync()).catch((err) => this.log(`service sync failed: ${(err as Error).message}`));
    }, 10);
  }

  /** A restarted node agent starts with no DNS records: send them all again. */
  resendDns(): void {
    if (!this.lastDns) return;
    this.lastDns = undefined;
    this.scheduleSync();
  }

  /** Resolves when every change made so far is programmed into the nodes. */
  async settled(): Promise<void> {
    while (this.timer) await new Promise((r) => setTimeout(r, 5));
    await this.syncing;
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async sync(): Promise<void> {
    const rules: ServiceRule[] = [];
    const dns: DnsRecords = {};
    for (const svc of this.store.list('Service')) {
      const ns = svc.metadata.namespace!;
      const pods = svc.spec.selector && Object.keys(svc.spec.selector).length
        ? this.store.list('Pod', ns).filter((p) => p.status?.podIP && Object.entries(svc.spec.selector!).every(([k, v]) => p.metadata.labels?.[k] === v))
        : [];
      const ready = pods.filter(isPodReady);
      const headless = svc.spec.clusterIP === 'None';
      dns[serviceFqdn(svc.metadata.name, ns)] = headless ? ready.map((p) => p.status!.podIP!) : [svc.spec.clusterIP!];
      if (headless) continue;
      for (const port of svc.spec.ports ?? []) {
        const endpoints: ServiceRule['endpoints'] = [];
        for (const p of ready) {
          const target = resolveTargetPort(p, port.targetPort ?? port.port);
          if (target !== undefined) endpoints.push({ ip: p.status!.podIP!, port: target });
        }
        rules.push({ vip: svc.spec.clusterIP!, port: port.port, protocol: (port.protocol ?? 'TCP').toLowerCase() as ServiceRule['protocol'], endpoints });
      }
    }
    if (!isDeepStrictEqual(rules, this.lastRules)) {
      await Promise.all(this.nodes.map((n) => applyServiceRules(n.netnsPath, rules)));
      this.lastRules = rules;
    }
    if (!isDeepStrictEqual(dns, this.lastDns)) {
      await Promise.all(this.nodes.map((n) => call(n.agentSocket, 'PUT', '/dns', { records: dns })));
      this.lastDns = dns;
    }
  }
}

/** A Service port's targetPort on one pod: a number, or a container port name (pods without it are skipped). */
function resolveTargetPort(pod: Pod, target: number | string): number | undefined {
  if (typeof target === 'number') return target;
  if (/^\d+$/.test(target)) return Number(target);
  for (const c of pod.spec.containers) for (const p of c.ports ?? []) if (p.name === target) return p.containerPort;
  return undefined;
}
