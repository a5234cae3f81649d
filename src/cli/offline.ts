// What the control plane would add to configuration read from files, for commands that translate files offline
// (`ambit config`, `ambit analyze`) as if the files had been applied to a running cluster.
import type { Gateway, Resource, Service as KubeService } from '../api/types.js';
import { waypointObjects } from '../controlplane/waypoint-controller.js';
import type { ConfigStore } from '../model/store.js';
import { WAYPOINT_CLASS, isWaypointGateway, waypointGatewayClass, waypointNames } from '../model/waypoints.js';

/**
 * What the control plane adds for waypoints once they run: the built-in GatewayClass, and per waypoint Gateway its
 * Service (as its deployment controller renders it) with a cluster IP, reported ready (`status.addresses`), so
 * Services and workloads naming it bind as they would in a cluster. Objects the files already hold are kept; a
 * Service without a cluster IP gets one, as the cluster would allocate it. The addresses are placeholders from
 * 240.0.0.0/4, which no Service has; they do not appear in a waypoint's resources.
 */
export function deployWaypoints(store: ConfigStore): void {
  const added: Resource[] = [];
  if (store.get(`GatewayClass//${WAYPOINT_CLASS}`) === undefined) {
    added.push({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: WAYPOINT_CLASS }, spec: waypointGatewayClass().spec } as Resource);
  }
  let n = 0;
  for (const g of store.list('Gateway').filter(isWaypointGateway)) {
    const ns = g.metadata.namespace ?? '';
    const svcName = waypointNames(g).deploymentName;
    const placeholder = `240.0.${Math.floor(++n / 256) % 256}.${n % 256}`;
    const existing = store.get(`Service/${ns}/${svcName}`) as KubeService | undefined;
    let vip = existing?.spec.clusterIPs?.[0] ?? existing?.spec.clusterIP;
    if (existing === undefined || !vip || vip === 'None') {
      const svc: KubeService = existing ?? waypointObjects(g, { controlPlaneAddress: '', trustDomain: '', clusterId: '' })[2];
      vip = placeholder;
      added.push({ ...svc, spec: { ...svc.spec, clusterIP: vip, clusterIPs: [vip] } });
    }
    if ((g.status?.addresses?.length ?? 0) === 0) {
      const status: Gateway['status'] = { ...g.status, addresses: [{ type: 'IPAddress', value: vip }, { type: 'Hostname', value: `${svcName}.${ns}.svc.cluster.local` }] };
      added.push({ ...g, status });
    }
  }
  store.apply(added);
}

