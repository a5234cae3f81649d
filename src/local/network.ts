// The cluster network, built from network namespaces only (the host's own namespace is never touched):
//
//   fabric netns: bridge br0 172.18.0.1/24 ── veth n<i> ──┐
//   node-<i> netns: eth0 172.18.0.<i+1>/24, routes to the other nodes' pod CIDRs, ip_forward,
//                   the cluster DNS address on lo, nftables for Service VIPs
//                   └─ veth vp<octet> 10.244.<i>.1/32 ── pod netns: eth0 10.244.<i>.<n>/32, default via 10.244.<i>.1
//
// Pods hang off their node by point-to-point veths (no bridge), so every pod-to-pod packet is routed by a node and
// passes its conntrack: Service DNAT replies are always un-NATed, also between pods of one node.
import { writeFileSync } from 'node:fs';
import {
  CLUSTER_DNS_IP,
  FABRIC_CIDR,
  FABRIC_GATEWAY_IP,
  SERVICE_CIDR,
  nodeIP,
  podCIDR,
  podGatewayIP,
} from './layout.js';
import { PROBE_SNAT_IPV4 } from '../cni/capture.js';
import type { Ledger } from './ledger.js';
import { createNetns, inNetns, ipBatch, nftApply, run } from './sys.js';

const prefixLen = (cidr: string) => cidr.split('/')[1]!;

async function newNetns(path: string, ledger: Ledger): Promise<void> {
  writeFileSync(path, '');
  // Record first: if creation half-succeeds, clean-up still finds (and unmounts) it.
  ledger.netnsCreated(path);
  await createNetns(path);
  await ipBatch(path, ['link set lo up']);
}

function sysctl(netnsPath: string, key: string, value: string): Promise<string> {
  // /proc/sys/net is per network namespace: written from inside the namespace it changes only that namespace.
  return run(inNetns(netnsPath, ['sh', '-c', `echo ${value} > /proc/sys/${key.replaceAll('.', '/')}`]));
}

export async function createFabric(path: string, ledger: Ledger, nodeCount: number): Promise<void> {
  await newNetns(path, ledger);
  await ipBatch(path, [
    'link add br0 type bridge',
    `addr add ${FABRIC_GATEWAY_IP}/${prefixLen(FABRIC_CIDR)} dev br0`,
    'link set br0 up',
  ]);
  await sysctl(path, 'net.ipv4.ip_forward', '1');
  // Replies from cluster-wide components to pods go back through the pod's node.
  const routes: string[] = [];
  for (let i = 1; i <= nodeCount; i++) routes.push(`route add ${podCIDR(i)} via ${nodeIP(i)}`);
  if (routes.length) await ipBatch(path, routes);
}

export async function createNode(path: string, fabricPath: string, ledger: Ledger, index: number, nodeCount: number): Promise<void> {
  await newNetns(path, ledger);
  const uplink = `n${index}`;
  await ipBatch(path, [`link add eth0 type veth peer name ${uplink} netns ${fabricPath}`]);
  await ipBatch(fabricPath, [`link set ${uplink} master br0`, `link set ${uplink} up`]);
  const commands = [
    `addr add ${nodeIP(index)}/${prefixLen(FABRIC_CIDR)} dev eth0`,
    'link set eth0 up',
    `addr add ${CLUSTER_DNS_IP}/32 dev lo`,
    // VIP traffic that no Service rule DNATs is delivered to the node itself, where filter-input rejects it: the
    // client gets "connection refused" at once, as with kube-proxy, instead of "network unreachable". The node's own
    // connections to a VIP leave from its address, as on a Kubernetes node (where the default route picks it): the
    // route's default source would be the VIP itself, to which the endpoint's replies come back, and filter-input
    // rejects what is addressed to a VIP.
    `route add local ${SERVICE_CIDR} dev lo table local src ${nodeIP(index)}`,
  ];
  for (let j = 1; j <= nodeCount; j++) if (j !== index) commands.push(`route add ${podCIDR(j)} via ${nodeIP(j)} dev eth0`);
  await ipBatch(path, commands);
  await sysctl(path, 'net.ipv4.ip_forward', '1');
  await applyServiceRules(path, []);
  await nftApply(path, renderProbeSnat(index));
}

export const PROBE_SNAT_TABLE = 'ambit-probes';

/**
 * Istio's host-probe rule: TCP the node itself opens to its pods (the kubelet's readiness probes, here the node
 * agent's) leaves with source 169.254.7.127, which the in-pod capture rules let through to the app untouched.
 * Istio matches "a local socket exists"; here a locally owned source address says the same, before kube-proxy
 * style masquerading (srcnat) could rewrite a forwarded packet's source to a node address.
 */
export function renderProbeSnat(index: number): string {
  return [
    `table ip ${PROBE_SNAT_TABLE} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat - 1; policy accept;',
    `    ip daddr ${podCIDR(index)} meta l4proto tcp fib saddr type local counter snat ip to ${PROBE_SNAT_IPV4}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Host-side name of a pod's veth: unique per node because pod IPs are. */
export function podVethName(podIP: string): string {
  return `vp${podIP.split('.')[3]}`;
}

export async function createPodNetwork(
  podPath: string,
  nodePath: string,
  ledger: Ledger,
  nodeIndex: number,
  podIP: string,
): Promise<void> {
  await newNetns(podPath, ledger);
  const veth = podVethName(podIP);
  const gateway = podGatewayIP(nodeIndex);
  // A veth left over from a pod whose namespace the kernel is still tearing down would block the name.
  await ipBatch(nodePath, [`link del ${veth}`]).catch(() => undefined);
  await ipBatch(nodePath, [
    `link add ${veth} type veth peer name eth0 netns ${podPath}`,
    `addr add ${gateway}/32 dev ${veth}`,
    `link set ${veth} up`,
    `route add ${podIP}/32 dev ${veth} scope link`,
  ]);
  await ipBatch(podPath, [
    `addr add ${podIP}/32 dev eth0`,
    'link set eth0 up',
    `route add ${gateway} dev eth0 scope link`,
    `route add default via ${gateway} dev eth0 src ${podIP}`,
  ]);
}

export async function removePodNetwork(nodePath: string, podIP: string): Promise<void> {
  // Deleting the node end removes both ends at once, freeing the name before the namespace itself is gone.
  await ipBatch(nodePath, [`link del ${podVethName(podIP)}`]).catch(() => undefined);
}

/** One Service port as the node's load balancer sees it. */
export interface ServiceRule {
  vip: string;
  port: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** Ready endpoints only: the VIP rejects connections when this is empty. */
  endpoints: { ip: string; port: number }[];
}

const MASQUERADE_MARK = '0x4000';
export const SERVICES_TABLE = 'ambit-services';

/**
 * The node's nftables ruleset for Service VIPs, kube-proxy (nftables mode) style: each VIP:port jumps to a chain
 * that picks an endpoint with `numgen random`; a pod reaching itself through its own VIP is masqueraded so the
 * reply comes back through the node; VIP traffic that matched no endpoint is rejected (it is routed to the node
 * itself, see createNode).
 */
export function renderServiceRules(rules: ServiceRule[]): string {
  const lines: string[] = [];
  const dispatch: string[] = [];
  rules.forEach((rule, i) => {
    if (rule.endpoints.length === 0) return;
    const svc = `svc-${i}`;
    dispatch.push(`    ip daddr ${rule.vip} ${rule.protocol} dport ${rule.port} goto ${svc}`);
    const targets = rule.endpoints.map((_, j) => `${j} : goto ${svc}-ep-${j}`).join(', ');
    lines.push(`  chain ${svc} {`, `    numgen random mod ${rule.endpoints.length} vmap { ${targets} }`, '  }');
    rule.endpoints.forEach((ep, j) => {
      lines.push(
        `  chain ${svc}-ep-${j} {`,
        `    ip saddr ${ep.ip} meta mark set meta mark | ${MASQUERADE_MARK}`,
        `    meta l4proto ${rule.protocol} dnat to ${ep.ip}:${ep.port}`,
        '  }',
      );
    });
  });
  const reject = `ip daddr ${SERVICE_CIDR} ip daddr != ${CLUSTER_DNS_IP} reject`;
  return [
    // Create-then-delete makes the replacement atomic whether or not the table existed.
    `table ip ${SERVICES_TABLE}`,
    `delete table ip ${SERVICES_TABLE}`,
    `table ip ${SERVICES_TABLE} {`,
    '  chain services {',
    ...dispatch,
    '  }',
    ...lines,
    '  chain nat-prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    '    jump services',
    '  }',
    '  chain nat-output {',
    '    type nat hook output priority -100; policy accept;',
    '    jump services',
    '  }',
    '  chain nat-postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    meta mark & ${MASQUERADE_MARK} == ${MASQUERADE_MARK} masquerade`,
    '  }',
    '  chain filter-input {',
    '    type filter hook input priority filter; policy accept;',
    `    ${reject}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export function applyServiceRules(nodePath: string, rules: ServiceRule[]): Promise<string> {
  return nftApply(nodePath, renderServiceRules(rules));
}
