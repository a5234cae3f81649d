// Mirrors the cases of istio/ztunnel src/rbac.rs (rbac_empty_policy, rbac_nesting, per-field table) and
// state.rs assert_rbac_logic_deny_allow, against our compiled evaluator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy, evaluate, logDecision, NOT_ALLOWED, type RbacConnection } from '../../src/ztunnel/rbac.js';
import { LogSink } from '../../src/telemetry/log.js';
import type { Authorization, Match } from '../../src/xds/types.js';

function match(m: Partial<Match>): Match {
  return {
    namespaces: [], notNamespaces: [], principals: [], notPrincipals: [], sourceIps: [], notSourceIps: [],
    destinationIps: [], notDestinationIps: [], destinationPorts: [], notDestinationPorts: [], serviceAccounts: [],
    notServiceAccounts: [], ...m,
  };
}

function policy(rules: Match[][][], extra: Partial<Authorization> = {}): Authorization {
  return {
    name: 'p', namespace: 'ns', scope: 'NAMESPACE', action: 'ALLOW', dryRun: false,
    rules: rules.map((clauses) => ({ clauses: clauses.map((matches) => ({ matches })) })), ...extra,
  };
}

const plaintext: RbacConnection = { srcIp: '10.0.0.1', dstIp: '10.0.0.2', dstPort: 8080 };
const tls: RbacConnection = { ...plaintext, srcIdentity: 'spiffe://td/ns/namespace/sa/account' };
const tlsAlt: RbacConnection = { ...plaintext, srcIp: '10.0.1.1', dstPort: 9090, srcIdentity: 'spiffe://td/ns/other/sa/alt' };

function allowedBy(p: Authorization, c: RbacConnection): boolean {
  // A single ALLOW policy: allowed iff it matches.
  return evaluate([compilePolicy(p)], c).allowed;
}

test('empty policies: [] and [[[{}]]] never match, [[]] and [[[]]] match everything', () => {
  assert.equal(allowedBy(policy([]), tls), false);
  assert.equal(allowedBy(policy([[[match({})]]]), tls), false);
  assert.equal(allowedBy(policy([[]]), tls), true);
  assert.equal(allowedBy(policy([[[]]]), plaintext), true);
});

test('nesting: OR of namespaces AND a port clause', () => {
  const p = policy([[[match({ namespaces: [{ exact: 'namespace' }] }), match({ namespaces: [{ exact: 'other' }] })], [match({ destinationPorts: [8080] })]]]);
  assert.equal(allowedBy(p, tls), true);
  assert.equal(allowedBy(p, { ...tls, srcIdentity: 'spiffe://td/ns/other/sa/x' }), true);
  assert.equal(allowedBy(p, { ...tls, srcIdentity: 'spiffe://td/ns/wrong/sa/x' }), false);
  assert.equal(allowedBy(p, { ...tls, dstPort: 1 }), false);
});

const table: [string, Partial<Match>, [boolean, boolean, boolean]][] = [
  // field, match, expected for [plaintext, tls, tlsAlt]
  ['namespaces', { namespaces: [{ exact: 'namespace' }] }, [false, true, false]],
  ['not_namespaces', { notNamespaces: [{ exact: 'namespace' }] }, [true, false, true]],
  ['service_accounts', { serviceAccounts: [{ namespace: 'namespace', serviceAccount: 'account' }] }, [false, true, false]],
  ['not_service_accounts', { notServiceAccounts: [{ namespace: 'namespace', serviceAccount: 'account' }] }, [true, false, true]],
  ['principals', { principals: [{ exact: 'td/ns/namespace/sa/account' }] }, [false, true, false]],
  ['not_principals', { notPrincipals: [{ exact: 'td/ns/namespace/sa/account' }] }, [true, false, true]],
  ['principal presence', { principals: [{ presence: {} }] }, [false, true, true]],
  ['not principal presence (STRICT)', { notPrincipals: [{ presence: {} }] }, [true, false, false]],
  ['principal suffix', { principals: [{ suffix: '/sa/alt' }] }, [false, false, true]],
  ['principal prefix', { principals: [{ prefix: 'td/ns/namespace/' }] }, [false, true, false]],
  ['source_ips', { sourceIps: [{ address: Uint8Array.from([10, 0, 0, 1]), length: 32 }] }, [true, true, false]],
  ['not_source_ips', { notSourceIps: [{ address: Uint8Array.from([10, 0, 0, 1]), length: 32 }] }, [false, false, true]],
  ['cidr_range', { sourceIps: [{ address: Uint8Array.from([10, 0, 0, 0]), length: 24 }] }, [true, true, false]],
  ['destination_ips', { destinationIps: [{ address: Uint8Array.from([10, 0, 0, 2]), length: 32 }] }, [true, true, true]],
  ['not_destination_ips', { notDestinationIps: [{ address: Uint8Array.from([10, 0, 0, 2]), length: 32 }] }, [false, false, false]],
  ['destination_ports', { destinationPorts: [8080] }, [true, true, false]],
  ['not_destination_ports', { notDestinationPorts: [8080] }, [false, false, true]],
];

for (const [name, m, [p, t, a]] of table) {
  test(`field ${name}`, () => {
    const pol = policy([[[match(m)]]]);
    assert.equal(allowedBy(pol, plaintext), p, 'plaintext');
    assert.equal(allowedBy(pol, tls), t, 'tls');
    assert.equal(allowedBy(pol, tlsAlt), a, 'tls alt');
  });
}

test('IPv6 CIDR containment', () => {
  const pol = policy([[[match({ sourceIps: [{ address: Uint8Array.from([0xfd, 0, ...new Array(14).fill(0)]), length: 16 }] })]]]);
  assert.equal(allowedBy(pol, { ...tls, srcIp: 'fd00::1' }), true);
  assert.equal(allowedBy(pol, { ...tls, srcIp: 'fd01::1' }), false);
  assert.equal(allowedBy(pol, tls), false, 'IPv4 source never matches an IPv6 block');
});

test('order: DENY wins, no ALLOW ⇒ allow, unmatched ALLOW ⇒ deny, dry-run has no effect', () => {
  const allowAll = compilePolicy(policy([[]], { name: 'allow-all' }));
  const denyAll = compilePolicy(policy([[]], { name: 'deny-all', action: 'DENY' }));
  const allowNone = compilePolicy(policy([[[match({ namespaces: [{ exact: 'nobody' }] })]]], { name: 'allow-none' }));
  assert.deepEqual(evaluate([], tls).allowed, true);
  assert.equal(evaluate([], tls).reason, 'no allow policies');
  const d = evaluate([allowAll, denyAll], tls);
  assert.equal(d.allowed, false);
  assert.equal(d.reason, 'explicitly denied by: ns/deny-all');
  assert.equal(evaluate([allowNone], tls).reason, NOT_ALLOWED);
  assert.equal(evaluate([allowNone, allowAll], tls).allowed, true);
  const dryDeny = compilePolicy(policy([[]], { name: 'dry-deny', action: 'DENY', dryRun: true }));
  const dryAllowNone = compilePolicy(policy([[[match({ namespaces: [{ exact: 'nobody' }] })]]], { name: 'dry-allow', dryRun: true }));
  const r = evaluate([dryDeny, dryAllowNone], tls);
  assert.equal(r.allowed, true, 'dry-run DENY does not deny, dry-run ALLOW does not count as an ALLOW policy');
  // As ztunnel's assert_rbac: dry-run ALLOWs that exist but do not match are noted when no real ALLOW exists.
  assert.deepEqual(r.dryRun, [{ message: 'dry-run: deny policy match', policy: 'ns/dry-deny' }, { message: 'dry-run: no allow policies match' }]);
});

test('decisions are logged with ztunnel\'s authpol_log texts: at debug, or at info with AUTHZ_POLICY_INFO_LOGGING', () => {
  const lines: string[] = [];
  const sink = new LogSink({ level: 'info', write: (l) => void lines.push(l) });
  const log = sink.logger('inpod');
  const addrs = ['10.0.0.1:4000', '10.0.0.2:8080'] as const;
  const dryDeny = compilePolicy(policy([[]], { name: 'shadow', action: 'DENY', dryRun: true }));
  const dryAllowOther = compilePolicy(policy([[[match({ namespaces: [{ exact: 'nobody' }] })]]], { name: 'shadow-allow', dryRun: true }));
  const allowAll = compilePolicy(policy([[]], { name: 'allow-all' }));
  const deny = compilePolicy(policy([[]], { name: 'deny-all', action: 'DENY' }));

  // Off by default: at info, nothing is written.
  logDecision(log, evaluate([allowAll], tls), false, ...addrs);
  assert.equal(lines.length, 0);

  logDecision(log, evaluate([dryDeny, allowAll], tls), true, ...addrs);
  logDecision(log, evaluate([dryAllowOther], tls), true, ...addrs);
  logDecision(log, evaluate([deny], tls), true, ...addrs);
  logDecision(log, evaluate([compilePolicy(policy([]))], tls), true, ...addrs);
  const shown = lines.map((l) => l.split('\t').slice(1).join('\t').trim());
  assert.deepEqual(shown, [
    'info\tinpod\tdry-run: deny policy match\tpolicy="ns/shadow" src.addr="10.0.0.1:4000" dst.addr="10.0.0.2:8080"',
    'info\tinpod\tallow policy match\tpolicy="ns/allow-all" src.addr="10.0.0.1:4000" dst.addr="10.0.0.2:8080"',
    'info\tinpod\tdry-run: no allow policies match\tsrc.addr="10.0.0.1:4000" dst.addr="10.0.0.2:8080"',
    'info\tinpod\tno allow policies, allow\tsrc.addr="10.0.0.1:4000" dst.addr="10.0.0.2:8080"',
    'info\tinpod\tdeny policy match\tpolicy="ns/deny-all" src.addr="10.0.0.1:4000" dst.addr="10.0.0.2:8080"',
    'info\tinpod\tno allow policies matched\tsrc.addr="10.0.0.1:4000" dst.addr="10.0.0.2:8080"',
  ]);

  // Without the setting the same lines are debug ones.
  lines.length = 0;
  sink.setLevel('debug');
  logDecision(log, evaluate([allowAll], tls), false, ...addrs);
  assert.match(lines[0]!, /\tdebug\tinpod\tallow policy match\tpolicy="ns\/allow-all"/);
});
