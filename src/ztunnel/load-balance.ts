// Which endpoint of a Service a connection goes to, as ztunnel's ProxyState::load_balance: endpoints without an address
// (no IP and no hostname) are never chosen; a Service with a locality-aware load balancer (STRICT or FAILOVER, from
// `trafficDistribution: PreferClose`, `networking.istio.io/traffic-distribution` or `internalTrafficPolicy: Local`)
// keeps only the endpoints that share the most of its routing preferences with the source — STRICT only those that
// share all of them — and the choice among the rest is random, weighted by each workload's capacity (default 1). A
// Service with a canary waypoint sends each new connection to one of its waypoints by their weights.
import { capacityOf, type GatewayAddress, type Service, type Workload } from '../xds/types.js';

type LoadBalancing = NonNullable<Service['loadBalancing']>;

/** How well an endpoint matches the source under `lb` (higher is closer); undefined: STRICT excludes it. */
function rank(src: Workload, w: Workload, lb: LoadBalancing): number | undefined {
  const prefs = lb.routingPreference;
  // A NETWORK first preference ranks a same-network endpoint above all others, whatever else matches.
  const networkPreferred = prefs[0] === 'NETWORK';
  let matched = 0;
  let adjust = 0;
  for (const scope of prefs) {
    let matches: boolean;
    switch (scope) {
      case 'REGION':
        matches = (src.locality?.region ?? '') === (w.locality?.region ?? '');
        break;
      case 'ZONE':
        matches = (src.locality?.zone ?? '') === (w.locality?.zone ?? '');
        break;
      case 'SUBZONE':
        matches = (src.locality?.subzone ?? '') === (w.locality?.subzone ?? '');
        break;
      case 'NODE':
        matches = src.node === w.node;
        break;
      case 'CLUSTER':
        matches = src.clusterId === w.clusterId;
        break;
      case 'NETWORK':
        matches = src.network === w.network;
        if (networkPreferred) {
          if (!matches) continue;
          adjust = prefs.length - 1;
        }
        break;
      default:
        matches = false;
    }
    if (!matches) break;
    matched++;
  }
  if (lb.mode === 'STRICT' && matched !== prefs.length) return undefined;
  return matched + adjust;
}

/**
 * One of `candidates` (a Service's endpoints that serve the port) for a connection from `src`, or undefined when none
 * may be chosen. Two passes over the list and no allocation: connections are routed at this rate.
 */
export function loadBalance<C extends { workload: Workload }>(src: Workload, lb: Service['loadBalancing'], candidates: readonly C[], random: () => number = Math.random): C | undefined {
  const ranked = lb !== undefined && (lb.mode === 'STRICT' || lb.mode === 'FAILOVER') ? lb : undefined;
  const rankOf = (w: Workload): number | undefined => (w.addresses.length === 0 && !w.hostname ? undefined : ranked === undefined ? 0 : rank(src, w, ranked));
  let best = -1;
  let total = 0;
  for (const c of candidates) {
    const r = rankOf(c.workload);
    if (r === undefined || r < best) continue;
    if (r > best) {
      best = r;
      total = 0;
    }
    total += capacityOf(c.workload);
  }
  if (total === 0) return undefined;
  let x = random() * total;
  let last: C | undefined;
  for (const c of candidates) {
    if (rankOf(c.workload) !== best) continue;
    last = c;
    x -= capacityOf(c.workload);
    if (x < 0) return c;
  }
  return last;
}

/**
 * ztunnel's sample_weighted_waypoint: one of a Service's weighted waypoints (a canary), drawn in proportion to the
 * weights; undefined when there are none or all weigh 0, and the Service's single waypoint applies.
 */
export function sampleWeightedWaypoint(service: Service, random: () => number = Math.random): GatewayAddress | undefined {
  const list = service.weightedWaypoints;
  if (list === undefined || list.length === 0) return undefined;
  let total = 0;
  for (const w of list) total += w.weight ?? 0;
  if (total === 0) return undefined;
  let x = random() * total;
  for (const w of list) {
    x -= w.weight ?? 0;
    if (x < 0) return w.destination;
  }
  return list[list.length - 1]!.destination;
}
