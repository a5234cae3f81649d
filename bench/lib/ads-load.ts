// Child process that plays the ztunnels: it opens one Delta ADS stream per simulated node and reports every response
// to the parent over IPC with the time it arrived. Running the clients in their own process keeps their decoding off
// the control plane's event loop and out of its RSS; both processes read the same monotonic clock
// (process.hrtime = CLOCK_MONOTONIC), so the parent can subtract its own timestamps from these.
import { bytesToIp } from '../../src/common/ip.js';
import { TYPE_ADDRESS } from '../../src/xds/types.js';
import { BenchAdsClient, decodeResource, type Envelope } from './xds-client.js';

/** Parent → child. */
export type LoadCommand =
  | { type: 'start'; target: string; rootPem: string; clients: { token: string; node: string }[] }
  | { type: 'subscribe'; typeUrls: string[] }
  | { type: 'close' };

/** What a small push carried for one Address resource, so the parent can check the change itself arrived. */
export interface AddressDetail {
  name: string;
  ips: string[];
  revision: string;
}

/** One response as a client received it. */
export interface ResponseReport {
  client: number;
  typeUrl: string;
  resources: number;
  removed: number;
  /** Arrival time, ms on the monotonic clock. */
  at: number;
  /** Only for pushes of at most DETAIL_LIMIT resources. */
  details?: AddressDetail[];
}

/** Child → parent. */
export type LoadReport =
  | { type: 'responses'; responses: ResponseReport[] }
  | { type: 'error'; message: string }
  | { type: 'closed'; maxRssKiB: number };

/** Pushes up to this many resources are decoded and described; snapshots are only counted. */
export const DETAIL_LIMIT = 16;

function describe(r: Envelope): AddressDetail[] | undefined {
  if (r.resources.length > DETAIL_LIMIT) return undefined;
  return r.resources.map((res) => {
    const workload = r.typeUrl === TYPE_ADDRESS ? (decodeResource(res).workload as { addresses?: Uint8Array[]; canonicalRevision?: string } | undefined) : undefined;
    return { name: res.name, ips: (workload?.addresses ?? []).map((a) => bytesToIp(a)), revision: workload?.canonicalRevision ?? '' };
  });
}

function report(m: LoadReport): void {
  process.send!(m);
}

// Responses are sent to the parent in one IPC message per event-loop turn: a message per response would cost the
// clients more time than decoding it, and delay the clients whose data is still waiting.
let batch: ResponseReport[] = [];
function reportResponse(r: ResponseReport): void {
  if (batch.length === 0) {
    setImmediate(() => {
      report({ type: 'responses', responses: batch });
      batch = [];
    });
  }
  batch.push(r);
}

const clients: BenchAdsClient[] = [];

process.on('message', (cmd: LoadCommand) => {
  try {
    switch (cmd.type) {
      case 'start':
        cmd.clients.forEach(({ token, node }, i) => {
          clients.push(
            new BenchAdsClient({
              target: cmd.target,
              rootPem: cmd.rootPem,
              token,
              nodeId: `ztunnel~10.0.${i >> 8}.${i & 255}~ztunnel-${node}.istio-system~istio-system.svc.cluster.local`,
              onResponse: (r, at) =>
                reportResponse({
                  client: i,
                  typeUrl: r.typeUrl,
                  resources: r.resources.length,
                  removed: r.removedResources.length,
                  at: Number(at) / 1e6,
                  details: describe(r),
                }),
              onError: (e) => report({ type: 'error', message: e.message }),
            }),
          );
        });
        break;
      case 'subscribe':
        // Like ztunnel: both types on the one stream.
        for (const c of clients) for (const t of cmd.typeUrls) c.subscribe(t);
        break;
      case 'close':
        for (const c of clients.splice(0)) c.close();
        report({ type: 'closed', maxRssKiB: process.resourceUsage().maxRSS });
        process.disconnect();
        break;
    }
  } catch (e) {
    report({ type: 'error', message: `load client: ${(e as Error).stack ?? e}` });
  }
});

// Losing the parent (killed benchmark) must not leave this process behind.
process.on('disconnect', () => process.exit(0));
