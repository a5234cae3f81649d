// What a ztunnel that subscribes on demand (XDS_ON_DEMAND) is served of istio.workload.Address, as istiod's
// WorkloadGenerator.generateDeltasOndemand serves it: resources answer to `network/IP` of each of their addresses
// (ambientindex.go Lookup), and such a client also holds every workload on its own node (from its NODE_NAME metadata)
// and the workloads of each Service it holds (AdditionalPodSubscriptions).
import { bytesToIp } from '../common/ip.js';
import type { Address } from '../xds/types.js';
import type { OnDemandIndex } from './xds.js';

export const ADDRESS_ON_DEMAND: OnDemandIndex = {
  aliasesOf(value) {
    const { workload, service } = value as Address;
    if (workload) return workload.addresses.map((ip) => `${workload.network}/${bytesToIp(ip)}`);
    if (service) return service.addresses.map((a) => `${a.network}/${bytesToIp(a.address)}`);
    return [];
  },
  implied(value, metadata, names) {
    const { workload } = value as Address;
    if (!workload) return false;
    if (metadata.NODE_NAME && workload.node === metadata.NODE_NAME) return true;
    for (const key in workload.services) if (names.has(key)) return true;
    return false;
  },
};
