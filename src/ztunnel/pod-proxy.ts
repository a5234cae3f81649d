// The proxy of one captured pod: listeners inside the pod's netns on 15001 (outbound), 15006 (plaintext inbound),
// 15008 (HBONE) and 15053 (the DNS proxy, src/ztunnel/dns.ts, when DNS capture is on), one HBONE pool for its outbound connections, one connection manager for its inbound ones. ztunnel
// runs one such instance per pod (in-pod mode); the ztunnel process starts and stops them as ZDS adds and deletes pods.
import type * as net from 'node:net';
import { HbonePool } from '../hbone/pool.js';
import { PodNetns } from '../inpod/netns.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';
import type { Workload } from '../xds/types.js';
import { parseHostPort } from '../common/ip.js';
import { ConnectionManager } from './connection-manager.js';
import { OpenConnections } from './open-connections.js';
import { DNS_UPSTREAM_TIMEOUT_MS, DnsProxy } from './dns.js';
import { InboundProxy } from './inbound.js';
import { InboundPlaintextProxy } from './inbound-plaintext.js';
import { OutboundProxy } from './outbound.js';
import { OnDemandResolver } from './on-demand-dns.js';
import { http2Tuning, keepalive, type PodProxyContext, type PodScope } from './pod-scope.js';

export type { PodInfo, PodProxyContext } from './pod-scope.js';

export class PodProxy {
  private readonly listeners: net.Server[] = [];
  private readonly sockets = new Set<{ destroy(): void }>();
  private readonly unsubscribe: (() => void)[] = [];
  private inbound?: InboundProxy;
  private dns?: DnsProxy;
  private closing?: Promise<{ expired: boolean }>;
  private onSocketsClosed?: () => void;

  private constructor(
    readonly scope: PodScope,
    private readonly open: OpenConnections,
  ) {}

  /**
   * Opens the pod's netns and binds the listeners there (bind errors, e.g. a missing netns, reject here and leave
   * nothing behind). Certificates and xDS are waited for lazily, per connection, as ztunnel does.
   */
  static async start(ctx: PodProxyContext): Promise<PodProxy> {
    const netns = PodNetns.open(ctx.pod.netnsPath);
    const identity = ctx.state.identityOf({ trustDomain: ctx.config.trustDomain, namespace: ctx.pod.namespace, serviceAccount: ctx.pod.serviceAccount });
    const { config, state } = ctx;
    const mark = config.packetMark;
    const dnsUpstream = parseHostPort(config.dnsUpstream, 'DNS_UPSTREAM');
    const pool = new HbonePool({
      maxStreamsPerConnection: config.poolMaxStreamsPerConnection,
      idleTimeoutMs: config.poolUnusedReleaseTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      keepalive: keepalive(config),
      tuning: http2Tuning(config),
      // HBONE connections leave from inside the pod (its own address, ztunnel's mark so capture lets them pass).
      createConnection: ({ destination }) =>
        netns.connect(destination.address, destination.port, { mark, timeoutMs: config.connectTimeoutMs }),
    });
    let local: Workload | undefined;
    // One wait for the pod's workload however many connections and DNS queries arrive before xDS names it.
    let waiting: Promise<Workload | undefined> | undefined;
    const log = ctx.log;
    const open = new OpenConnections(ctx.telemetry);
    const proxy: PodProxy = new PodProxy({
      ...ctx,
      telemetry: open,
      log,
      netns,
      identity,
      pool,
      resolver: new OnDemandResolver({ netns, ...dnsUpstream, mark, timeoutMs: DNS_UPSTREAM_TIMEOUT_MS }),
      connections: new ConnectionManager(() => (local ? state.policiesFor(local) : []), log),
      localWorkload: async () => {
        local = state.workloadByName(ctx.pod.namespace, ctx.pod.name);
        if (local) return local;
        waiting ??= state.waitForWorkload(ctx.pod.namespace, ctx.pod.name, config.localWorkloadWaitMs).finally(() => (waiting = undefined));
        local = await waiting;
        return local;
      },
      certificate: (): Promise<WorkloadCertificate> => ctx.secrets.fetch(identity),
      track: (s) => {
        proxy.sockets.add(s);
        s.once('close', () => {
          proxy.sockets.delete(s);
          if (proxy.sockets.size === 0) proxy.onSocketsClosed?.();
        });
      },
    }, open);
    try {
      proxy.bind();
      if (config.dnsCapture) {
        proxy.dns = await DnsProxy.start({
          netns,
          pod: { namespace: ctx.pod.namespace },
          state,
          upstream: dnsUpstream,
          log,
          domain: config.clusterDomain,
          port: config.dnsPort,
          mark,
          metrics: ctx.dnsMetrics,
          localWorkload: () => local ?? proxy.scope.localWorkload(),
        });
      }
    } catch (e) {
      await proxy.close();
      throw e;
    }
    // Keep the cached workload current (policy lists, addresses) and re-check open connections on policy changes.
    proxy.unsubscribe.push(
      state.onChange(() => {
        local = state.workloadByName(ctx.pod.namespace, ctx.pod.name);
      }),
      state.onPolicyChange(() => proxy.scope.connections.reevaluate()),
    );
    log.info(`proxy started for pod ${ctx.pod.namespace}/${ctx.pod.name} in ${netns.path} (identity ${identity})`);
    return proxy;
  }

  private bind(): void {
    const { netns, config } = this.scope;
    const opts = { mark: config.packetMark, reuseport: true };
    const outbound = new OutboundProxy(this.scope);
    const plaintext = new InboundPlaintextProxy(this.scope);
    this.inbound = new InboundProxy(this.scope);
    const inbound = this.inbound;
    for (const [port, handler] of [
      [config.outboundPort, (s: net.Socket) => outbound.handle(s)],
      [config.inboundPlaintextPort, (s: net.Socket) => plaintext.handle(s)],
      [config.inboundPort, (s: net.Socket) => inbound.handle(s)],
    ] as const) {
      const server = netns.listen(port, opts);
      server.on('connection', handler);
      server.on('error', (e) => this.scope.log.error(`listener on port ${port} in ${netns.path} failed: ${e.message}`));
      this.listeners.push(server);
    }
  }

  /** The pod's open connections, in ztunnel's `/config_dump` shape. */
  openConnections(): ReturnType<OpenConnections['dump']> {
    return this.open.dump();
  }

  /** Open inbound connections that policy updates re-check. */
  get trackedConnections(): number {
    return this.scope.connections.size;
  }

  /**
   * Stops the pod's proxy as ztunnel drains: the listeners stop accepting at once (with SO_REUSEPORT a replacement
   * ztunnel's listeners in the same netns take every new connection from then on), open connections get up to
   * `connectionTerminationDeadlineMs` to finish, then whatever is left is reset. The DNS proxy answers until the end,
   * so a pod's lookups never go unanswered while old and new ztunnel overlap. Resolves with whether connections were
   * still open at the deadline.
   */
  close(): Promise<{ expired: boolean }> {
    this.closing ??= (async () => {
      // Not waiting for the close callbacks: a net.Server reports closed only once its accepted connections end.
      for (const l of this.listeners) l.close();
      const grace = this.scope.config.connectionTerminationDeadlineMs;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), grace)));
      // The HBONE pool stays open meanwhile: a connection accepted just before the drain may still need a stream.
      const drained = Promise.all([this.inbound?.close(grace), this.socketsClosed()]).then(() => 'drained' as const);
      const outcome = await Promise.race([drained, deadline]);
      clearTimeout(timer);
      // Every outbound connection is done or about to be reset below: GOAWAY, then close the pool's sessions.
      await this.scope.pool.close(0);
      for (const off of this.unsubscribe.splice(0)) off();
      this.scope.connections.closeAll('pod removed');
      for (const s of this.sockets) s.destroy();
      this.sockets.clear();
      await this.dns?.close();
      this.scope.netns.close();
      this.scope.log.info(`proxy stopped for pod ${this.scope.pod.namespace}/${this.scope.pod.name}`);
      return { expired: outcome === 'expired' };
    })();
    return this.closing;
  }

  /** Resolves once every socket the listeners accepted has closed. */
  private socketsClosed(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.onSocketsClosed = resolve));
  }
}
