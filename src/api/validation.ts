// Validation of one decoded object (a YAML/JSON document) into a typed Resource. Structural rules (what the API
// server and the CRDs reject) live in the zod schemas under ./schemas, one file per API group; warnings for objects
// that are accepted but probably wrong live in ./lint.ts. This file picks the schema by apiVersion/kind, applies
// what kubectl/kube-apiserver do before validation (drop nulls, default the namespace), finds unknown fields as
// kube-apiserver's strict decoding does (./fields.ts) and words zod's issues.
import type { z } from 'zod';
import { isRecord, show } from './schemas/common.js';
import { deploymentSchema, namespaceSchema, nodeSchema, podSchema, serviceAccountSchema, serviceSchema } from './schemas/core.js';
import { endpointSliceSchema } from './schemas/discovery.js';
import { destinationRuleSchema, serviceEntrySchema, virtualServiceSchema, workloadEntrySchema } from './schemas/networking.js';
import { authorizationPolicySchema, peerAuthenticationSchema, requestAuthenticationSchema } from './schemas/security.js';
import { gatewayClassSchema, gatewaySchema, grpcRouteSchema, httpRouteSchema } from './schemas/gateway.js';
import { telemetrySchema } from './schemas/telemetry.js';
import { lint } from './lint.js';
import { formatFieldPath, unknownFieldMessage, unknownFieldPaths } from './fields.js';
import { typeOf, type ResourceType } from './kinds.js';
import { isNamespaced, type Kind, type Resource } from './types.js';

export type { IssuePath, ValidationIssue } from './lint.js';
import type { IssuePath, ValidationIssue } from './lint.js';

export interface ValidationResult {
  /** The typed object: a kind the mesh reads, without errors. */
  resource?: Resource;
  issues: ValidationIssue[];
  /** The registry entry of the object's apiVersion and kind (also for kinds the mesh does not read). */
  type?: ResourceType;
  /** The apiVersion/kind is not one the registry serves (its only issue, an error, says so as kube's REST mapper). */
  unknownKind?: true;
}

/**
 * kube-apiserver's `fieldValidation` for unknown fields: Strict refuses the object (what `kubectl apply` asks for
 * by default), Warn accepts it with a warning per field (the server's default), Ignore drops them in silence.
 */
export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

const KINDS: Record<Kind, z.ZodType> = {
  Namespace: namespaceSchema,
  ServiceAccount: serviceAccountSchema,
  Service: serviceSchema,
  Pod: podSchema,
  Deployment: deploymentSchema,
  Node: nodeSchema,
  EndpointSlice: endpointSliceSchema,
  AuthorizationPolicy: authorizationPolicySchema,
  PeerAuthentication: peerAuthenticationSchema,
  RequestAuthentication: requestAuthenticationSchema,
  DestinationRule: destinationRuleSchema,
  VirtualService: virtualServiceSchema,
  ServiceEntry: serviceEntrySchema,
  WorkloadEntry: workloadEntrySchema,
  Telemetry: telemetrySchema,
  Gateway: gatewaySchema,
  GatewayClass: gatewayClassSchema,
  HTTPRoute: httpRouteSchema,
  GRPCRoute: grpcRouteSchema,
};

/** Kubernetes treats a null field as unset; dropping them lets "key:" with no value mean "absent". */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) if (val !== null) out[k] = withoutNulls(val);
  return out;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

// Turns zod's generic issues into "what was expected, what was found". Schemas that know better set their own
// message; this map only runs for issues without one.
function describe(iss: z.core.$ZodRawIssue): string {
  switch (iss.code) {
    case 'invalid_type':
      return iss.input === undefined ? 'required' : `expected ${TYPE_WORDS[iss.expected] ?? iss.expected}, found ${show(iss.input)}`;
    case 'too_big':
    case 'too_small': {
      const big = iss.code === 'too_big';
      const limit = Number(big ? iss.maximum : iss.minimum);
      const input = iss.input;
      if (iss.origin === 'array') {
        const n = Array.isArray(input) ? input.length : 0;
        return `must have at ${big ? 'most' : 'least'} ${limit} item${limit === 1 ? '' : 's'}, found ${n}`;
      }
      if (iss.origin === 'string') {
        const n = typeof input === 'string' ? input.length : 0;
        return big ? `must be at most ${limit} characters, found ${n}` : limit === 1 ? 'must not be empty' : `must be at least ${limit} characters, found ${n}`;
      }
      return `must be ${big ? 'at most' : 'at least'} ${limit}, found ${show(input)}`;
    }
    case 'invalid_value':
      return iss.values.length === 1
        ? `expected ${JSON.stringify(iss.values[0])}, found ${show(iss.input)}`
        : `expected one of ${iss.values.join(', ')}; found ${show(iss.input)}`;
    case 'invalid_key':
      return iss.issues[0]?.message ?? `invalid key ${show(iss.input)}`;
    case 'invalid_format':
      return `invalid format, found ${show(iss.input)}`;
    default:
      return `invalid value ${show(iss.input)}`;
  }
}

/**
 * Validates one decoded document. Returns the typed resource only for a kind the mesh reads and only when there are
 * no errors; warnings never block. Other kinds of the registry (ConfigMap, Istio's Gateway…) are only checked for
 * unknown fields (`type` says which kind it is). An apiVersion/kind the registry does not serve is an error, as
 * kubectl's REST mapping fails for it.
 */
export function validateResource(raw: unknown, defaultNamespace = 'default', fieldValidation: FieldValidation = 'Warn'): ValidationResult {
  if (!isRecord(raw)) {
    return { issues: [{ path: [], severity: 'error', message: `expected a Kubernetes object (a mapping with apiVersion, kind and metadata), found ${show(raw)}` }] };
  }
  const issues: ValidationIssue[] = [];
  for (const field of ['apiVersion', 'kind'] as const) {
    const v = raw[field];
    if (v === undefined || v === null || v === '') issues.push({ path: [field], severity: 'error', message: 'required' });
    else if (typeof v !== 'string') issues.push({ path: [field], severity: 'error', message: `expected a string, found ${show(v)}` });
  }
  if (issues.length > 0) return { issues };
  const apiVersion = raw.apiVersion as string;
  const kind = raw.kind as string;
  const type = typeOf(apiVersion, kind);
  if (!type) {
    return { issues: [{ path: [], severity: 'error', message: `no matches for kind ${JSON.stringify(kind)} in version ${JSON.stringify(apiVersion)}` }], unknownKind: true };
  }
  // Before nulls are dropped: `selectr: null` is as unknown to kube-apiserver as any other value.
  if (fieldValidation !== 'Ignore') {
    const severity = fieldValidation === 'Strict' ? 'error' : 'warning';
    for (const path of unknownFieldPaths(apiVersion, kind, raw)) {
      issues.push({ path, severity, message: unknownFieldMessage(formatFieldPath(path)), aboutKey: true, unknownField: true });
    }
  }
  if (!type.model) return { issues, type };

  const input = withoutNulls(raw) as Record<string, unknown>;
  const meta = input.metadata;
  if (isRecord(meta)) {
    if (!isNamespaced(kind as Kind)) delete meta.namespace;
    else if (meta.namespace === undefined || meta.namespace === '') meta.namespace = defaultNamespace;
  }

  const parsed = KINDS[kind as Kind].safeParse(input, { reportInput: true, error: describe });
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      const path = iss.path.map((p) => (typeof p === 'number' ? p : String(p)));
      // A key breaking several rules carries one issue per rule, each reported (as kube-apiserver lists each).
      if (iss.code === 'invalid_key') for (const inner of iss.issues) issues.push({ path, severity: 'error', message: inner.message, aboutKey: true });
      else issues.push({ path, severity: 'error', message: iss.message, ...(iss.code === 'custom' && iss.params?.aboutKey ? { aboutKey: true } : {}) });
    }
    return { issues: dedupe(issues), type };
  }
  if (issues.some((i) => i.severity === 'error')) return { issues, type };
  const resource = parsed.data as Resource;
  return { resource, issues: [...issues, ...lint(resource)], type };
}

// A value can break two rules that say the same thing (e.g. a union's branches); report each message once per path.
function dedupe(issues: ValidationIssue[]): ValidationIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path.join('\u0000')}\u0001${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Formats a path the way users read it: `spec.rules[0].when[1].key`, odd keys quoted: `labels["app/x"]`. */
export function formatPath(path: IssuePath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
