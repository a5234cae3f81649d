// L4 authorization as ztunnel evaluates it (istio/ztunnel src/rbac.rs and state.rs assert_rbac): policies are
// compiled once when they arrive over xDS, then evaluated per connection without allocating.
import net from 'node:net';
import type { Authorization, CidrAddress, Match, StringMatch } from '../xds/types.js';
import { parseSpiffeId } from '../identity/spiffe.js';
import type { Logger } from '../telemetry/log.js';

/** The peer as authorization sees it. `srcIdentity` is absent for plaintext (15006) connections. */
export interface RbacConnection {
  srcIp: string;
  dstIp: string;
  dstPort: number; // the real target port, never 15008
  srcIdentity?: string; // full SPIFFE URI
}

type StrMatch = { kind: 'exact' | 'prefix' | 'suffix' | 'presence'; value: string };

interface CompiledMatch {
  empty: boolean;
  namespaces: StrMatch[];
  notNamespaces: StrMatch[];
  principals: StrMatch[];
  notPrincipals: StrMatch[];
  sourceIps: net.BlockList | undefined;
  notSourceIps: net.BlockList | undefined;
  destinationIps: net.BlockList | undefined;
  notDestinationIps: net.BlockList | undefined;
  destinationPorts: number[];
  notDestinationPorts: number[];
  serviceAccounts: { namespace: string; serviceAccount: string }[];
  notServiceAccounts: { namespace: string; serviceAccount: string }[];
}

export interface CompiledPolicy {
  key: string; // namespace/name
  action: 'ALLOW' | 'DENY';
  dryRun: boolean;
  scope: Authorization['scope'];
  namespace: string;
  rules: CompiledMatch[][][]; // rules (OR) -> clauses (AND) -> matches (OR)
}

function compileString(m: StringMatch): StrMatch | undefined {
  if (m.exact !== undefined) return { kind: 'exact', value: m.exact };
  if (m.prefix !== undefined) return { kind: 'prefix', value: m.prefix };
  if (m.suffix !== undefined) return { kind: 'suffix', value: m.suffix };
  if (m.presence !== undefined) return { kind: 'presence', value: '' };
  return undefined; // a StringMatch with no oneof set is dropped, as ztunnel does
}

function compileStrings(list: StringMatch[] | undefined): StrMatch[] {
  const out: StrMatch[] = [];
  for (const m of list ?? []) {
    const c = compileString(m);
    if (c) out.push(c);
  }
  return out;
}

function compileMatch(m: Match): CompiledMatch {
  const c: CompiledMatch = {
    empty: false,
    namespaces: compileStrings(m.namespaces),
    notNamespaces: compileStrings(m.notNamespaces),
    principals: compileStrings(m.principals),
    notPrincipals: compileStrings(m.notPrincipals),
    sourceIps: compileCidrs(m.sourceIps),
    notSourceIps: compileCidrs(m.notSourceIps),
    destinationIps: compileCidrs(m.destinationIps),
    notDestinationIps: compileCidrs(m.notDestinationIps),
    destinationPorts: [...(m.destinationPorts ?? [])],
    notDestinationPorts: [...(m.notDestinationPorts ?? [])],
    serviceAccounts: (m.serviceAccounts ?? []).map((s) => ({ namespace: s.namespace, serviceAccount: s.serviceAccount })),
    notServiceAccounts: (m.notServiceAccounts ?? []).map((s) => ({ namespace: s.namespace, serviceAccount: s.serviceAccount })),
  };
  c.empty =
    c.namespaces.length + c.notNamespaces.length + c.principals.length + c.notPrincipals.length +
      (c.sourceIps ? 1 : 0) + (c.notSourceIps ? 1 : 0) + (c.destinationIps ? 1 : 0) + (c.notDestinationIps ? 1 : 0) +
      c.destinationPorts.length + c.notDestinationPorts.length + c.serviceAccounts.length +
      c.notServiceAccounts.length === 0;
  return c;
}

export function compilePolicy(a: Authorization): CompiledPolicy {
  return {
    key: `${a.namespace}/${a.name}`,
    action: a.action === 'DENY' ? 'DENY' : 'ALLOW',
    dryRun: !!a.dryRun,
    scope: a.scope,
    namespace: a.namespace,
    rules: (a.rules ?? []).map((r) => (r.clauses ?? []).map((cl) => (cl.matches ?? []).map(compileMatch))),
  };
}

function strMatches(m: StrMatch, s: string): boolean {
  switch (m.kind) {
    case 'exact':
      return s === m.value;
    case 'prefix':
      return s.startsWith(m.value);
    case 'suffix':
      return s.endsWith(m.value);
    case 'presence':
      return s.length > 0;
  }
}

function cidrText(c: CidrAddress): { net: string; family: 'ipv4' | 'ipv6'; length: number } | undefined {
  const b = c.address instanceof Uint8Array ? c.address : Uint8Array.from(c.address as ArrayLike<number>);
  if (b.length === 4 && c.length <= 32) return { net: Array.from(b).join('.'), family: 'ipv4', length: c.length };
  if (b.length === 16 && c.length <= 128) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    return { net: groups.join(':'), family: 'ipv6', length: c.length };
  }
  return undefined; // unparsable addresses are skipped, like ztunnel's filter_map on the IpNet conversion
}

/** CIDR list compiled into a node BlockList (containment checks without per-connection parsing of the policy). */
function compileCidrs(list: CidrAddress[] | undefined): net.BlockList | undefined {
  let bl: net.BlockList | undefined;
  for (const a of list ?? []) {
    const c = cidrText(a);
    if (!c) continue;
    bl ??= new net.BlockList();
    bl.addSubnet(c.net, c.length, c.family);
  }
  return bl;
}

function inList(bl: net.BlockList, ip: string): boolean {
  const family = net.isIP(ip);
  return family !== 0 && bl.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

function ipBoth(pos: net.BlockList | undefined, neg: net.BlockList | undefined, ip: string): boolean {
  if (pos && !inList(pos, ip)) return false;
  if (neg && inList(neg, ip)) return false;
  return true;
}

function both<T>(pos: T[], neg: T[], pred: (v: T) => boolean): boolean {
  if (pos.length > 0 && !pos.some(pred)) return false;
  if (neg.length > 0 && neg.some(pred)) return false;
  return true;
}

/** Per-connection facts derived once and reused across all policies. */
interface Facts {
  srcIp: string;
  dstIp: string;
  dstPort: number;
  principal: string | undefined; // identity without spiffe://, undefined when there is none
  namespace: string; // identity namespace, '' when there is none
  serviceAccount: string | undefined;
}

export function connectionFacts(c: RbacConnection): Facts {
  const id = c.srcIdentity ? parseSpiffeId(c.srcIdentity) : undefined;
  return {
    srcIp: c.srcIp,
    dstIp: c.dstIp,
    dstPort: c.dstPort,
    principal: c.srcIdentity?.startsWith('spiffe://') ? c.srcIdentity.slice('spiffe://'.length) : undefined,
    namespace: id?.namespace ?? '',
    serviceAccount: id?.serviceAccount,
  };
}

function matchMatches(m: CompiledMatch, f: Facts): boolean {
  return (
    ipBoth(m.destinationIps, m.notDestinationIps, f.dstIp) &&
    ipBoth(m.sourceIps, m.notSourceIps, f.srcIp) &&
    both(m.destinationPorts, m.notDestinationPorts, (p) => p === f.dstPort) &&
    both(m.serviceAccounts, m.notServiceAccounts, (s) => f.serviceAccount !== undefined && s.namespace === f.namespace && s.serviceAccount === f.serviceAccount) &&
    // Principals assume a spiffe:// prefix; without an identity nothing matches (so notPrincipals passes).
    both(m.principals, m.notPrincipals, (s) => f.principal !== undefined && strMatches(s, f.principal)) &&
    both(m.namespaces, m.notNamespaces, (s) => strMatches(s, f.namespace))
  );
}

export function policyMatches(p: CompiledPolicy, f: Facts): boolean {
  if (p.rules.length === 0) return false;
  for (const rule of p.rules) {
    let ruleMatch = true;
    for (const clause of rule) {
      // A clause with no matches matches everything; empty matches inside a clause are skipped (match nothing).
      let clauseMatch = clause.length === 0;
      for (const m of clause) {
        if (!m.empty && matchMatches(m, f)) {
          clauseMatch = true;
          break;
        }
      }
      if (!clauseMatch) {
        ruleMatch = false;
        break;
      }
    }
    if (ruleMatch) return true;
  }
  return false;
}

/** A dry-run policy's shadow result, as ztunnel logs it. */
export interface DryRunNote {
  message: 'dry-run: deny policy match' | 'dry-run: allow policy match' | 'dry-run: no allow policies match';
  policy?: string;
}

export type RbacDecision =
  | { allowed: true; reason: 'no allow policies' | 'allow policy match'; policy?: string; dryRun: DryRunNote[] }
  | { allowed: false; reason: string; policy?: string; dryRun: DryRunNote[] };

export const DENIED_PREFIX = 'connection closed due to policy rejection: ';
export const NOT_ALLOWED = 'allow policies exist, but none allowed';

/**
 * ztunnel's order: dry-run DENY (only noted) → DENY → dry-run ALLOW (only noted) → no ALLOW ⇒ allow →
 * any ALLOW ⇒ allow → deny. `reason` for a denial is the text after `connection closed due to policy rejection: `.
 */
export function evaluate(policies: Iterable<CompiledPolicy>, conn: RbacConnection): RbacDecision {
  const f = connectionFacts(conn);
  const dryRun: DryRunNote[] = [];
  const allows: CompiledPolicy[] = [];
  let dryRunAllows = 0;
  let dryRunAllowMatched = false;
  for (const p of policies) {
    if (p.action === 'DENY') {
      if (policyMatches(p, f)) {
        if (p.dryRun) dryRun.push({ message: 'dry-run: deny policy match', policy: p.key });
        else return { allowed: false, reason: `explicitly denied by: ${p.key}`, policy: p.key, dryRun };
      }
    } else if (p.dryRun) {
      dryRunAllows++;
      if (policyMatches(p, f)) {
        dryRunAllowMatched = true;
        dryRun.push({ message: 'dry-run: allow policy match', policy: p.key });
      }
    } else {
      allows.push(p);
    }
  }
  if (allows.length === 0 && dryRunAllows > 0 && !dryRunAllowMatched) dryRun.push({ message: 'dry-run: no allow policies match' });
  if (allows.length === 0) return { allowed: true, reason: 'no allow policies', dryRun };
  for (const p of allows) if (policyMatches(p, f)) return { allowed: true, reason: 'allow policy match', policy: p.key, dryRun };
  return { allowed: false, reason: NOT_ALLOWED, dryRun };
}

/** ztunnel's texts for the final step of a decision. */
function outcomeMessage(d: RbacDecision): string {
  if (!d.allowed) return d.policy === undefined ? 'no allow policies matched' : 'deny policy match';
  return d.reason === 'no allow policies' ? 'no allow policies, allow' : 'allow policy match';
}

/**
 * Logs a decision's steps as ztunnel's `authpol_log!` does: at debug, or at info with AUTHZ_POLICY_INFO_LOGGING
 * (`atInfo`). The addresses name the connection, as ztunnel's span context does; nothing is built when the level is off.
 */
export function logDecision(log: Logger, d: RbacDecision, atInfo: boolean, srcAddr: string, dstAddr: string): void {
  const level = atInfo ? 'info' : 'debug';
  if (!log.enabled(level)) return;
  for (const note of d.dryRun) log[level](note.message, { policy: note.policy, 'src.addr': srcAddr, 'dst.addr': dstAddr });
  log[level](outcomeMessage(d), { policy: d.policy, 'src.addr': srcAddr, 'dst.addr': dstAddr });
}
