// In-pod traffic capture: the nftables ruleset and policy routing Istio's CNI agent installs inside an
// ambient pod's network namespace (REDIRECT mode, Istio >= 1.24), so that the node proxy's in-pod
// listeners see every TCP connection and DNS query of the pod. See docs/capture.md.
//
// The tables keep Istio's names (inet istio-ambient-nat / -mangle / -raw): runbooks and habits such as
// `nft list table inet istio-ambient-nat` carry over, and Istio's own CNI never runs in Ambit's pods.
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { netnsPath } from '../inpod/netns.js';

export const ZTUNNEL_OUTBOUND_PORT = 15001;
export const ZTUNNEL_INBOUND_PLAINTEXT_PORT = 15006;
export const ZTUNNEL_INBOUND_PORT = 15008;
export const DNS_CAPTURE_PORT = 15053;
/** SO_MARK on every socket the node proxy owns in a pod netns; such packets bypass capture. */
export const INPOD_MARK = 0x539;
export const INPOD_MASK = 0xfff;
/** Connmark of connections the proxy opened with a spoofed source; replies are routed back locally. */
export const INPOD_TPROXY_MARK = 0x111;
export const INPOD_ROUTE_TABLE = 100;
export const INPOD_RULE_PREF = 32764;
/** Host-side probes (kubelet) are SNATed to these addresses and must reach the app uncaptured. */
export const PROBE_SNAT_IPV4 = '169.254.7.127';
export const PROBE_SNAT_IPV6 = 'fd16:9254:7127:1337:ffff:ffff:ffff:ffff';
export const CAPTURE_TABLES = ['istio-ambient-nat', 'istio-ambient-mangle', 'istio-ambient-raw'] as const;

export interface CaptureOptions {
  /** Redirect DNS (UDP and TCP port 53) to the proxy's DNS port 15053. Default true. */
  dnsCapture?: boolean;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * The nft script (`nft -f`) that atomically replaces the three capture tables. Each table is first
 * added then deleted so the script works whether or not it was installed before (idempotent).
 */
export function captureRuleset(opts: CaptureOptions = {}): string {
  const dnsCapture = opts.dnsCapture ?? true;
  const mark = `meta mark & ${hex(INPOD_MASK)}`;
  const notProxy = `${mark} != ${hex(INPOD_MARK)}`;
  const proxy = `${mark} == ${hex(INPOD_MARK)}`;
  const v4 = { family: 'ip', loopback: '127.0.0.1', probe: PROBE_SNAT_IPV4 };
  const v6 = { family: 'ip6', loopback: '::1', probe: PROBE_SNAT_IPV6 };
  const both = [v4, v6];

  const natPrerouting = [
    // Probes from the node must reach the app directly, not be treated as mesh traffic.
    ...both.map((f) => `meta l4proto tcp ${f.family} saddr ${f.probe} counter accept`),
    // Inbound: everything but HBONE (15008, which the proxy already listens on) goes to the plaintext port.
    ...both.map((f) =>
      `${f.family} daddr != ${f.loopback} tcp dport != ${ZTUNNEL_INBOUND_PORT} ${notProxy} counter redirect to :${ZTUNNEL_INBOUND_PLAINTEXT_PORT}`),
  ];
  const natOutput = [
    ...both.map((f) => `meta l4proto tcp ${f.family} daddr ${f.probe} counter accept`),
    ...(dnsCapture
      ? [
          `oifname != "lo" ${notProxy} udp dport 53 counter redirect to :${DNS_CAPTURE_PORT}`,
          ...both.map((f) => `${f.family} daddr != ${f.loopback} tcp dport 53 ${notProxy} counter redirect to :${DNS_CAPTURE_PORT}`),
        ]
      : []),
    // Replies on connections the proxy opened with a spoofed source must not loop back into it.
    `meta l4proto tcp ${mark} == ${hex(INPOD_TPROXY_MARK)} counter accept`,
    // The app talking to itself via its pod IP stays local.
    ...both.map((f) => `oifname "lo" ${f.family} daddr != ${f.loopback} counter accept`),
    // Outbound: all other TCP leaving the pod goes to the proxy.
    ...both.map((f) => `meta l4proto tcp ${f.family} daddr != ${f.loopback} ${notProxy} counter redirect to :${ZTUNNEL_OUTBOUND_PORT}`),
  ];
  const tables: { name: string; hooks: { chain: string; type: string; hook: string; priority: number; rules: string[] }[] }[] = [
    {
      name: 'istio-ambient-nat',
      hooks: [
        { chain: 'prerouting', type: 'nat', hook: 'prerouting', priority: -100, rules: natPrerouting },
        { chain: 'output', type: 'nat', hook: 'output', priority: -100, rules: natOutput },
      ],
    },
    {
      name: 'istio-ambient-mangle',
      hooks: [
        // A SYN the proxy sent (mark 0x539) tags its connection; the app's replies then get fwmark 0x111
        // (restored in a route-type chain, which re-routes) and follow table 100 back to the proxy.
        { chain: 'prerouting', type: 'filter', hook: 'prerouting', priority: -150,
          rules: [`${proxy} counter ct mark set ct mark & ${hex(~INPOD_MASK >>> 0)} | ${hex(INPOD_TPROXY_MARK)}`] },
        { chain: 'output', type: 'route', hook: 'output', priority: -150,
          rules: [`ct mark & ${hex(INPOD_MASK)} == ${hex(INPOD_TPROXY_MARK)} counter meta mark set ct mark`] },
      ],
    },
  ];
  if (dnsCapture) {
    // Separate conntrack zones for the app's and the proxy's DNS flows, so a reply to one never matches
    // the other's NAT entry (istio/istio#33469).
    tables.push({
      name: 'istio-ambient-raw',
      hooks: [
        { chain: 'prerouting', type: 'filter', hook: 'prerouting', priority: -300,
          rules: [`udp sport 53 ${notProxy} counter ct zone set 1`] },
        { chain: 'output', type: 'filter', hook: 'output', priority: -300,
          rules: [`udp dport 53 ${proxy} counter ct zone set 1`] },
      ],
    });
  }

  const lines: string[] = [];
  for (const name of CAPTURE_TABLES) lines.push(`add table inet ${name}`, `delete table inet ${name}`);
  for (const table of tables) {
    lines.push(`table inet ${table.name} {`);
    for (const h of table.hooks) {
      lines.push(`  chain ${h.chain} {`, `    type ${h.type} hook ${h.hook} priority ${h.priority}; policy accept;`);
      lines.push(`    jump istio-${h.chain}`, '  }');
    }
    for (const h of table.hooks) {
      lines.push(`  chain istio-${h.chain} {`, ...h.rules.map((r) => `    ${r}`), '  }');
    }
    lines.push('}');
  }
  return lines.join('\n') + '\n';
}

// IPv6 policy routing only where the netns has IPv6 (the kernel may be booted without it, or the
// netns may disable it); the IPv6 nft rules are harmless either way.
const IF_IPV6 = '[ -e /proc/sys/net/ipv6/conf/lo/disable_ipv6 ] && [ "$(cat /proc/sys/net/ipv6/conf/lo/disable_ipv6)" = 0 ]';
const RULE = `fwmark ${hex(INPOD_TPROXY_MARK)}/${hex(INPOD_MASK)} pref ${INPOD_RULE_PREF} lookup ${INPOD_ROUTE_TABLE}`;

const INSTALL_SCRIPT = [
  'ip link set lo up',
  'nft -f -',
  `ip -4 route replace local 0.0.0.0/0 dev lo table ${INPOD_ROUTE_TABLE}`,
  `ip -4 rule show pref ${INPOD_RULE_PREF} | grep -q . || ip -4 rule add ${RULE}`,
  `if ${IF_IPV6}; then`,
  `  ip -6 route replace local ::/0 dev lo table ${INPOD_ROUTE_TABLE}`,
  `  ip -6 rule show pref ${INPOD_RULE_PREF} | grep -q . || ip -6 rule add ${RULE}`,
  'fi',
].join('\n');

const REMOVE_SCRIPT = [
  'nft -f -',
  `while ip -4 rule del pref ${INPOD_RULE_PREF} 2>/dev/null; do :; done`,
  `ip -4 route flush table ${INPOD_ROUTE_TABLE} 2>/dev/null || true`,
  `if ${IF_IPV6}; then`,
  `  while ip -6 rule del pref ${INPOD_RULE_PREF} 2>/dev/null; do :; done`,
  `  ip -6 route flush table ${INPOD_ROUTE_TABLE} 2>/dev/null || true`,
  'fi',
].join('\n');

const STATUS_SCRIPT = `nft list tables; echo '--rules--'; ip -4 rule show pref ${INPOD_RULE_PREF}`;

/** Runs a shell script inside the netns (nsenter --net) with `input` on stdin; resolves to stdout. */
async function inNetns(what: string, path: string, script: string, input = ''): Promise<string> {
  try {
    await access(path);
  } catch {
    const err: NodeJS.ErrnoException = new Error(`${what}(${path}): network namespace not found`);
    err.code = 'ENOENT';
    throw err;
  }
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${path}`, 'sh', '-ec', script], (err, stdout, stderr) => {
      if (err) {
        const detail = stderr.trim() || err.message;
        reject(new Error(`${what}(${path}): ${detail}`));
      } else {
        resolve(stdout);
      }
    });
    // If the script fails before reading stdin the write fails with EPIPE; the exit status and stderr
    // above already report the real error.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

/**
 * Installs (or re-installs: idempotent) the capture ruleset, the fwmark rule and table 100 in the
 * netns named `netns` (a name under /run/netns or an absolute path). Needs root, nft, ip, nsenter.
 */
export async function installCapture(netns: string, opts: CaptureOptions = {}): Promise<void> {
  await inNetns('installCapture', netnsPath(netns), INSTALL_SCRIPT, captureRuleset(opts));
}

/** Removes everything installCapture added; a no-op on a netns without capture. */
export async function removeCapture(netns: string): Promise<void> {
  const ruleset = CAPTURE_TABLES.flatMap((t) => [`add table inet ${t}`, `delete table inet ${t}`]).join('\n') + '\n';
  await inNetns('removeCapture', netnsPath(netns), REMOVE_SCRIPT, ruleset);
}

/** True when the capture tables and the fwmark routing rule are present in the netns. */
export async function isCaptured(netns: string): Promise<boolean> {
  const out = await inNetns('isCaptured', netnsPath(netns), STATUS_SCRIPT);
  const [tables = '', rules = ''] = out.split('--rules--');
  const present = new Set(tables.split('\n').map((l) => l.trim()));
  return ['istio-ambient-nat', 'istio-ambient-mangle'].every((t) => present.has(`table inet ${t}`)) &&
    rules.includes(`lookup ${INPOD_ROUTE_TABLE}`);
}
