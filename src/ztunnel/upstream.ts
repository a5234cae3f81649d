// Helpers shared by the in-pod listeners: address normalisation, in-pod upstream dials (with ztunnel's mark and,
// inbound, the client's source address), and the telemetry view of a workload.
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { copyBidirectional, type CopyObserver, type CopyResult } from '../hbone/copy.js';
import type { PodNetns } from '../inpod/netns.js';
import { bytesToIp, normalizeIp } from '../common/ip.js';
import type { Service, Workload } from '../xds/types.js';
import type { ConnectionTelemetry, ConnectionTracker, PeerWorkload } from '../telemetry/connection.js';
import { formatAuthority } from '../hbone/headers.js';
import { originalDst } from '../inpod/netns.js';
import type { PodScope } from './pod-scope.js';

/** Ports the proxy itself owns in the pod; a request to them would loop (ztunnel's `illegal_ports`). */
export const RECURSIVE_PORTS: ReadonlySet<number> = new Set([15001, 15006, 15008]);
export const RECURSIVE_CALL = 'attempted recursive call to ourselves';

/**
 * The workload's first address, or with `preferV6` given its first of that family if it has one (ztunnel's
 * pick_workload_destination: the family of the address the application dialed).
 */
export function workloadIp(w: Workload, preferV6?: boolean): string | undefined {
  const { addresses } = w;
  if (preferV6 !== undefined) {
    const length = preferV6 ? 16 : 4;
    for (const a of addresses) if (a.length === length) return bytesToIp(a);
  }
  const first = addresses[0];
  return first ? bytesToIp(first) : undefined;
}

export function peerWorkload(w: Workload, identity?: string): PeerWorkload {
  const p: PeerWorkload = {
    name: w.name,
    namespace: w.namespace,
    workloadName: w.workloadName || w.name,
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    clusterId: w.clusterId,
  };
  if (identity) p.identity = identity;
  return p;
}

export function serviceRef(s: Service): { name: string; namespace: string; hostname: string } {
  return { name: s.name, namespace: s.namespace, hostname: s.hostname };
}

function isErrno(e: unknown, ...codes: string[]): boolean {
  return codes.includes((e as NodeJS.ErrnoException)?.code ?? '');
}

/**
 * Connects from inside the pod netns with ztunnel's mark. With `sourceIp` the socket is IP_TRANSPARENT +
 * IP_FREEBIND and bound to that (foreign) address so the application sees the real client; when the kernel
 * refuses the spoofed bind (no route back, missing capability) we fall back to the pod's own address, as
 * ztunnel does when ENABLE_ORIG_SRC is left unset (best effort).
 */
export async function connectInPod(
  netns: PodNetns,
  ip: string,
  port: number,
  opts: { mark: number; sourceIp?: string; timeoutMs: number },
): Promise<net.Socket> {
  const { mark, timeoutMs } = opts;
  let socket: net.Socket | undefined;
  if (opts.sourceIp) {
    try {
      socket = await netns.connect(ip, port, { mark, transparent: true, freebind: true, bindHost: opts.sourceIp, timeoutMs });
    } catch (e) {
      if (!isErrno(e, 'EADDRNOTAVAIL', 'EINVAL', 'EPERM', 'EACCES', 'EAFNOSUPPORT')) throw e;
    }
  }
  socket ??= await netns.connect(ip, port, { mark, timeoutMs });
  // Half-open: a FIN from the application must not end our write side before the copy has taken over.
  socket.allowHalfOpen = true;
  socket.setNoDelay(true);
  return socket;
}

/** A readable error text: Node's connect errors already name the address (`connect ECONNREFUSED 10.0.0.2:80`). */
export function errorText(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}

/**
 * copyBidirectional for a connection that waited (routing, dialing) before the copy started: a side whose FIN already
 * arrived emitted 'end' before the copy listened for it (Node reads EOF eagerly), so its half-close is forwarded here.
 */
export function relay(a: Duplex, b: Duplex, observer?: CopyObserver): Promise<CopyResult> {
  const done = copyBidirectional(a, b, observer);
  for (const [src, dst] of [[a, b], [b, a]] as const) if (src.readableEnded && !dst.writableEnded && !dst.destroyed) dst.end();
  return done;
}

/**
 * Counts a relay's bytes into a connection's tracker as they are copied (ztunnel's counters move while a connection is
 * open), with `a` the client side: a→b is the request direction.
 */
export function trackerObserver(tracker: ConnectionTracker): CopyObserver {
  return { aToB: (n) => tracker.sent(n), bToA: (n) => tracker.received(n) };
}

/** Where a connection the capture rules redirected to us came from and was going. */
export interface RedirectedEndpoints {
  srcIp: string;
  srcAddr: string;
  dstIp: string;
  dstPort: number;
  dstAddr: string;
}

/**
 * Reads the source and the original destination (SO_ORIGINAL_DST) of a redirected connection. When the kernel has no
 * original destination the failure is reported, the socket destroyed and `undefined` returned.
 */
export function redirectedEndpoints(client: net.Socket, direction: 'inbound' | 'outbound', telemetry: ConnectionTelemetry): RedirectedEndpoints | undefined {
  const srcIp = normalizeIp(client.remoteAddress ?? '') ?? '';
  const srcAddr = formatAuthority(srcIp, client.remotePort ?? 0);
  try {
    const orig = originalDst(client);
    const dstIp = normalizeIp(orig.address) ?? orig.address;
    return { srcIp, srcAddr, dstIp, dstPort: orig.port, dstAddr: formatAuthority(dstIp, orig.port) };
  } catch (e) {
    telemetry.failed({ direction, srcAddr, dstAddr: 'unknown' }, { message: `failed to get original destination: ${errorText(e)}`, flag: '-' });
    client.destroy();
    return undefined;
  }
}

/**
 * Serves one connection the capture rules redirected to a listener (15001, 15006): prepares the socket, reads its
 * endpoints and hands both to `serve`. Never throws: an unexpected failure is logged and closes the connection.
 */
export function serveRedirected(
  scope: PodScope,
  client: net.Socket,
  direction: 'inbound' | 'outbound',
  label: string,
  serve: (client: net.Socket, ends: RedirectedEndpoints) => Promise<void>,
): void {
  client.on('error', () => {}); // the outcome is read from the copy result
  // Before any await: a client that sends FIN while we route must keep its write side open for the reply
  // (otherwise Node ends it on 'end' and the upstream's answer is lost).
  client.allowHalfOpen = true;
  client.setNoDelay(true);
  scope.track(client);
  const ends = redirectedEndpoints(client, direction, scope.telemetry);
  if (!ends) return;
  serve(client, ends).catch((e) => {
    scope.log.error(`${label} connection failed unexpectedly: ${(e as Error).stack ?? e}`);
    client.destroy();
  });
}
