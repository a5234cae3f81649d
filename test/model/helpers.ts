// Shared by the model tests: reading fixture YAML into resources, without the config loader (the translation is
// what is under test here, not file handling).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { Resource } from '../../src/api/types.js';
import { AmbientIndex, type AmbientChange } from '../../src/model/ambient.js';
import { ConfigStore } from '../../src/model/store.js';
import { TYPE_WAYPOINT, type WaypointResource } from '../../src/xds/types.js';

export const FIXTURES = new URL('../../../test/fixtures/model/', import.meta.url);

export function readFixture(name: string): Resource[] {
  const text = readFileSync(new URL(name, FIXTURES), 'utf8');
  return parseYaml(text);
}

export function parseYaml(text: string): Resource[] {
  const out: Resource[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`fixture YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as Resource | null;
    if (value !== null) out.push(value);
  }
  return out;
}

/**
 * A ready waypoint in `shop` as YAML documents: its Gateway (with `gatewayLabels`), its Service at 10.96.0.<octet> and
 * one ready pod at 10.1.0.<octet>, as the waypoint controller and kubelet would leave them.
 */
export function readyWaypoint(name: string, octet: number, gatewayLabels: Record<string, string> = {}): string {
  const managed = `{gateway.istio.io/managed: istio.io-mesh-controller, gateway.networking.k8s.io/gateway-name: ${name}}`;
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: shop, labels: ${JSON.stringify(gatewayLabels)}}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop, labels: ${managed}}
spec: {clusterIP: 10.96.0.${octet}, ports: [{name: mesh, port: 15008}]}
---
apiVersion: v1
kind: Pod
metadata: {name: ${name}-1, namespace: shop, uid: uid-${name}-1, labels: ${managed}}
spec: {serviceAccountName: ${name}, containers: [{name: istio-proxy}]}
status: {podIP: 10.1.0.${octet}, conditions: [{type: Ready, status: "True"}]}
`;
}

/** Namespace `shop` in ambient mode with a ready waypoint `wp` (its Gateway, Service and pod), as YAML documents. */
export const WAYPOINT_MESH = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
${readyWaypoint('wp', 100)}`;

/**
 * An ambient index over `yaml` with a fixed clock, recording every change it emits: its waypoint resources by name,
 * and the waypoint resource names re-sent (upserted) since the start or the last `changes.length = 0`.
 */
export function waypointIndex(yaml: string) {
  const store = new ConfigStore();
  store.apply(parseYaml(yaml));
  const index = new AmbientIndex(store, {}, () => new Date('2026-01-01T00:00:00Z'));
  const changes: AmbientChange[] = [];
  index.onChange((c) => changes.push(c));
  const resource = (name: string) => index.snapshot(TYPE_WAYPOINT).get(name) as WaypointResource | undefined;
  const resent = () => changes.filter((c) => c.typeUrl === TYPE_WAYPOINT).flatMap((c) => [...c.upserted.keys()]).sort();
  return { store, index, changes, resource, resent };
}
