// PeerAuthentication in ambient, as istiod does it (pilot/pkg/serviceregistry/ambient/authorization.go and
// policies.go): mTLS itself is always on between ztunnels, so what PeerAuthentication can still change is whether
// plaintext (no peer identity) is accepted. STRICT becomes a DENY on "no identity", expressed either by the one static
// policy every STRICT workload references or by a per-workload policy when port-level modes differ.
import type { MtlsMode, PeerAuthentication } from '../api/types.js';
import type { Authorization, Rule } from '../xds/types.js';
import { emptyMatch } from './authorization.js';

export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';
const CONVERTED_PREFIX = 'converted_peer_authentication_';

export function convertedPeerAuthenticationName(paName: string): string {
  return CONVERTED_PREFIX + paName;
}

/** DENY connections without a peer identity. */
function denyPlaintextMatch(ports?: number[]) {
  const m = emptyMatch();
  m.notPrincipals = [{ presence: {} }];
  if (ports) m.destinationPorts = ports;
  return m;
}

/** The static STRICT policy, pushed whenever any PeerAuthentication exists. */
export function staticStrictPolicy(rootNamespace: string): Authorization {
  return {
    name: STATIC_STRICT_POLICY_NAME,
    namespace: rootNamespace,
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    rules: [{ clauses: [{ matches: [denyPlaintextMatch()] }] }],
    dryRun: false,
  };
}

const modeOf = (m: { mode?: MtlsMode } | undefined): MtlsMode => m?.mode ?? 'UNSET';
const isStrict = (m: { mode?: MtlsMode } | undefined): boolean => modeOf(m) === 'STRICT';
const isUnset = (m: { mode?: MtlsMode } | undefined): boolean => modeOf(m) === 'UNSET';
const isPermissive = (m: { mode?: MtlsMode } | undefined): boolean => modeOf(m) === 'PERMISSIVE';
const isDisable = (m: { mode?: MtlsMode } | undefined): boolean => modeOf(m) === 'DISABLE';

function hasSelectorLabels(pa: PeerAuthentication): boolean {
  const ml = pa.spec.selector?.matchLabels;
  return ml !== undefined && Object.keys(ml).length > 0;
}

function creationTime(pa: PeerAuthentication): number {
  // A missing timestamp is Go's zero time: older than anything.
  const t = pa.metadata.creationTimestamp ? Date.parse(pa.metadata.creationTimestamp) : NaN;
  return Number.isNaN(t) ? -Infinity : t;
}

/** True when `a` wins over `b` under "oldest wins"; ties go to the lower namespace/name for a stable answer. */
function olderThan(a: PeerAuthentication, b: PeerAuthentication): boolean {
  const ta = creationTime(a);
  const tb = creationTime(b);
  if (ta !== tb) return ta < tb;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb;
}

export function oldest(pas: PeerAuthentication[]): PeerAuthentication | undefined {
  let best: PeerAuthentication | undefined;
  for (const p of pas) if (best === undefined || olderThan(p, best)) best = p;
  return best;
}

/** Port-level keys in ascending numeric order (istiod iterates the uint32-keyed map sorted). */
function sortedPorts(pa: PeerAuthentication): [number, { mode?: MtlsMode }][] {
  const out: [number, { mode?: MtlsMode }][] = [];
  for (const [k, v] of Object.entries(pa.spec.portLevelMtls ?? {})) {
    if (!/^[0-9]+$/.test(k)) continue;
    out.push([Number(k), v ?? {}]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/**
 * The policy keys a workload references because of PeerAuthentication, given the PeerAuthentications that apply to
 * it (root-namespace ones without selector, and those of its own namespace that select it or have no selector).
 */
export function peerAuthenticationPolicyKeys(rootNamespace: string, applicable: PeerAuthentication[]): string[] {
  let mesh: PeerAuthentication | undefined;
  let namespace: PeerAuthentication | undefined;
  let workload: PeerAuthentication | undefined;
  for (const pa of applicable) {
    if (!hasSelectorLabels(pa)) {
      if (pa.metadata.namespace === rootNamespace) {
        if (mesh === undefined || olderThan(pa, mesh)) mesh = pa;
      } else if (namespace === undefined || olderThan(pa, namespace)) {
        namespace = pa;
      }
    } else if (pa.metadata.namespace !== rootNamespace) {
      // Selector policies in the root namespace are ignored.
      if (workload === undefined || olderThan(pa, workload)) workload = pa;
    }
  }

  // Inheritance mesh → namespace → workload; UNSET inherits.
  let strict = mesh !== undefined && isStrict(mesh.spec.mtls);
  if (namespace !== undefined && !isUnset(namespace.spec.mtls)) strict = isStrict(namespace.spec.mtls);
  let portLevelKey: string | undefined;
  if (workload !== undefined) {
    const spec = workload.spec;
    if (isStrict(spec.mtls)) strict = true;
    if (isPermissive(spec.mtls) || isDisable(spec.mtls)) strict = false;
    const ports = Object.values(spec.portLevelMtls ?? {});
    if (spec.portLevelMtls !== undefined) {
      const key = `${workload.metadata.namespace}/${convertedPeerAuthenticationName(workload.metadata.name)}`;
      const mode = modeOf(spec.mtls);
      if (mode === 'STRICT') {
        if (ports.some((p) => isPermissive(p) || isDisable(p))) {
          // The converted policy carries the STRICT default itself, with the port exceptions.
          portLevelKey = key;
          strict = false;
        }
      } else if (mode === 'PERMISSIVE' || mode === 'DISABLE') {
        if (ports.some(isStrict)) portLevelKey = key;
      } else if (strict) {
        // UNSET under a STRICT namespace/mesh: only PERMISSIVE ports are exceptions (DISABLE is not looked at here,
        // exactly as istiod does).
        if (ports.some(isPermissive)) {
          portLevelKey = key;
          strict = false;
        }
      } else if (ports.some(isStrict)) {
        portLevelKey = key;
      }
    }
  }
  const keys = new Set<string>();
  if (strict) keys.add(`${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`);
  if (portLevelKey !== undefined) keys.add(portLevelKey);
  return [...keys].sort();
}

/**
 * The converted DENY policy of a workload-selector PeerAuthentication with port-level modes, or undefined when it
 * needs none. `nsPolicy` / `rootPolicy` are the oldest selector-less PeerAuthentications of its namespace and of the
 * root namespace.
 */
export function convertPeerAuthentication(
  rootNamespace: string,
  pa: PeerAuthentication,
  nsPolicy: PeerAuthentication | undefined,
  rootPolicy: PeerAuthentication | undefined,
): Authorization | undefined {
  const spec = pa.spec;
  const ports = sortedPorts(pa);
  if (pa.metadata.namespace === rootNamespace || spec.selector === undefined || ports.length === 0) return undefined;
  const mode = modeOf(spec.mtls);

  const clauses: Rule['clauses'] = [];
  const rules: Rule[] = [];
  if (mode === 'STRICT') clauses.push({ matches: [denyPlaintextMatch()] });

  let foundNonStrictPort = false;
  for (const [port, portMtls] of ports) {
    const portMode = modeOf(portMtls);
    if (portMode === 'STRICT') {
      // Already enforced by a STRICT parent (this policy, or an UNSET one under a STRICT namespace, or under a STRICT
      // mesh with an unset namespace).
      const parentStrict =
        isStrict(spec.mtls) ||
        (isUnset(spec.mtls) && nsPolicy !== undefined && isStrict(nsPolicy.spec.mtls)) ||
        ((nsPolicy === undefined || isUnset(nsPolicy.spec.mtls)) && rootPolicy !== undefined && isStrict(rootPolicy.spec.mtls));
      if (parentStrict) continue;
      // Rules are ORed: one per STRICT port.
      rules.push({ clauses: [{ matches: [denyPlaintextMatch([port])] }] });
    } else if (portMode === 'PERMISSIVE' || portMode === 'DISABLE') {
      if (mode === 'PERMISSIVE' || mode === 'DISABLE') continue;
      if (
        mode === 'UNSET' &&
        ((nsPolicy !== undefined && !isStrict(nsPolicy.spec.mtls)) ||
          (nsPolicy === undefined && rootPolicy !== undefined && !isStrict(rootPolicy.spec.mtls)) ||
          (nsPolicy === undefined && rootPolicy === undefined))
      ) {
        continue;
      }
      foundNonStrictPort = true;
      // Exempt this port from the STRICT default: the deny only applies when the destination is another port.
      const m = emptyMatch();
      m.notDestinationPorts = [port];
      clauses.push({ matches: [m] });
    }
  }

  if (mode === 'STRICT' && !foundNonStrictPort) return undefined;
  if (clauses.length === 0 && rules.length === 0) return undefined;

  const mergeStrict =
    (rootPolicy !== undefined &&
      isStrict(rootPolicy.spec.mtls) &&
      (nsPolicy === undefined || isUnset(nsPolicy.spec.mtls) || isStrict(nsPolicy.spec.mtls))) ||
    (nsPolicy !== undefined && isStrict(nsPolicy.spec.mtls));
  if (mergeStrict && foundNonStrictPort) clauses.push({ matches: [denyPlaintextMatch()] });
  if (clauses.length > 0) rules.push({ clauses });

  return {
    name: convertedPeerAuthenticationName(pa.metadata.name),
    namespace: pa.metadata.namespace ?? '',
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    rules,
    dryRun: false,
  };
}
