// Where the waypoint sends a request or connection: one ready endpoint of the destination Service, chosen by least
// request (Istio's default load balancer for a waypoint's inbound-vip cluster without a DestinationRule), or the
// addressed workload itself;
// reached over HBONE with the waypoint's own identity when the endpoint is in the mesh (its ztunnel then applies L4
// policy to the waypoint's identity), else over plain TCP.
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { bytesToIp } from '../common/ip.js';
import { HboneConnectTimeoutError } from '../hbone/client.js';
import { formatAuthority } from '../hbone/headers.js';
import type { HbonePool } from '../hbone/pool.js';
import type { WorkloadCertificate } from '../identity/workload-cert.js';
import { identityOf, serviceKey } from '../xds/address-state.js';
import type { Service, Workload } from '../xds/types.js';
import type { WaypointState } from './state.js';

export interface UpstreamTarget {
  workload: Workload;
  ip: string;
  /** The endpoint's own port (the Service's target port). */
  port: number;
  /** `ip:port`: Envoy's UPSTREAM_HOST. */
  address: string;
  /** HBONE to the endpoint's ztunnel, or plain TCP to a workload outside the mesh. */
  hbone: boolean;
  /** Requests (or TCP connections) in flight to it: least-request balancing reads it. */
  active: number;
  /**
   * Envoy's UPSTREAM_HOST and UPSTREAM_LOCAL_ADDRESS: an HBONE endpoint is reached through the waypoint's internal
   * `connect_originate` listener, so that is what Istio's waypoint logs.
   */
  upstreamHost: string;
  upstreamLocalAddress: string | undefined;
}

/** Envoy's stream reset reasons for an upstream that failed before its response started and may be retried. */
export type ResetBeforeResponse = 'remote connection failure' | 'connection timeout' | 'connection termination' | 'remote refused stream reset';

/**
 * An upstream attempt failed before anything reached the application, so the request may be retried (Envoy's
 * `reset-before-request`); in the words Envoy puts into a local reply and its response flags.
 */
export class UpstreamConnectError extends Error {
  override name = 'UpstreamConnectError';
  constructor(
    readonly resetReason: ResetBeforeResponse,
    /** Envoy's UPSTREAM_TRANSPORT_FAILURE_REASON; empty when the connection itself was made. */
    readonly transportFailure = '',
    options?: { cause?: unknown },
  ) {
    super(localReplyBody(resetReason, transportFailure, false), options);
  }

  /** The response flag of a request that ends with this failure. */
  get flag(): 'UF' | 'UC' | 'UR' {
    return this.resetReason === 'connection termination' ? 'UC' : this.resetReason === 'remote refused stream reset' ? 'UR' : 'UF';
  }

  /** Envoy's response code details: `upstream_reset_before_response_started{<reason>[,<transport failure>]}`. */
  get details(): string {
    return resetDetails(this.resetReason, this.transportFailure);
  }
}

export function resetDetails(resetReason: string, transportFailure = ''): string {
  return `upstream_reset_before_response_started{${resetReason}${transportFailure ? `,${transportFailure}` : ''}}`;
}

/** Envoy's local reply body for an upstream that failed before answering; `retried` after exhausted retries. */
export function localReplyBody(resetReason: string, transportFailure: string, retried: boolean): string {
  return (
    `upstream connect error or disconnect/reset before headers. ${retried ? 'retried and the latest ' : ''}reset reason: ${resetReason}` +
    (transportFailure ? `, transport failure reason: ${transportFailure}` : '')
  );
}

function workloadIp(w: Workload): string | undefined {
  const a = w.addresses[0];
  return a ? bytesToIp(a) : undefined;
}

function target(w: Workload, port: number): UpstreamTarget | undefined {
  const ip = workloadIp(w);
  if (ip === undefined) return undefined;
  const address = formatAuthority(ip, port);
  const hbone = w.tunnelProtocol === 'HBONE';
  return {
    workload: w,
    ip,
    port,
    address,
    hbone,
    active: 0,
    upstreamHost: hbone ? `envoy://connect_originate/${address}` : address,
    upstreamLocalAddress: hbone ? 'envoy://internal_client_address/' : undefined,
  };
}

export interface UpstreamsOptions {
  state: WaypointState;
  pool: HbonePool;
  certificate: () => Promise<WorkloadCertificate>;
  connectTimeoutMs: number;
}

export class Upstreams {
  /** `service key|port` → the endpoints, rebuilt only after a configuration change. */
  private readonly endpoints = new Map<string, UpstreamTarget[]>();

  constructor(private readonly opts: UpstreamsOptions) {
    opts.state.onChange(() => this.endpoints.clear());
  }

  /**
   * A ready endpoint of `service` for `servicePort` by Istio's default, LEAST_REQUEST: Envoy's power of two choices
   * (two endpoints drawn at random, the one with fewer requests in flight wins). Undefined when there is none.
   * A retry passes the endpoints already `tried`: Istio's retry policy has Envoy's previous_hosts predicate, so another
   * endpoint is chosen while there is one.
   */
  pick(service: Service, servicePort: number, tried?: readonly UpstreamTarget[]): UpstreamTarget | undefined {
    const key = `${serviceKey(service)}|${servicePort}`;
    let list = this.endpoints.get(key);
    if (list === undefined) {
      list = [];
      for (const ep of this.opts.state.endpointsOf(service)) {
        const port = ep.targetPort(servicePort);
        const t = port === undefined ? undefined : target(ep.workload, port);
        if (t) list.push(t);
      }
      this.endpoints.set(key, list);
    }
    if (tried?.length && list.length > 1) {
      const untried = list.filter((t) => !tried.some((x) => x.ip === t.ip && x.port === t.port));
      if (untried.length) list = untried;
    }
    if (list.length <= 1) return list[0];
    const a = list[Math.floor(Math.random() * list.length)]!;
    const b = list[Math.floor(Math.random() * list.length)]!;
    return b.active < a.active ? b : a;
  }

  /** Workload-addressed traffic goes to the workload itself. */
  workload(w: Workload, port: number): UpstreamTarget | undefined {
    return target(w, port);
  }

  /** A byte stream to the endpoint; rejects with UpstreamConnectError. */
  async connect(t: UpstreamTarget): Promise<Duplex> {
    if (t.hbone) {
      try {
        return await this.opts.pool.connect({
          destination: { address: t.ip, port: 15008 },
          certificate: await this.opts.certificate(),
          expectedIdentities: [identityOf(t.workload)],
          target: { address: t.ip, port: t.port },
        });
      } catch (e) {
        const timeout = e instanceof HboneConnectTimeoutError;
        throw new UpstreamConnectError(timeout ? 'connection timeout' : 'remote connection failure', (e as Error).message, { cause: e });
      }
    }
    return new Promise<Duplex>((resolve, reject) => {
      const socket = net.connect({ host: t.ip, port: t.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new UpstreamConnectError('connection timeout', 'connection timeout'));
      }, this.opts.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(socket);
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new UpstreamConnectError('remote connection failure', `delayed connect error: ${e.code === 'ECONNREFUSED' ? 'Connection refused' : e.message}`, { cause: e }));
      });
    });
  }
}
