// Building blocks shared by the per-group schemas: Kubernetes name/label syntax, ports, object metadata, Istio
// workload selectors and policy target references. Messages say what was expected and what was found, so a user
// can fix the YAML without reading the CRD.
import { z } from 'zod';

export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
// Go's time.ParseDuration syntax, which is what Istio and Gateway API duration fields accept.
const GO_DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Renders a found value for a message: strings quoted, long values cut, containers by type. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A string schema whose extra rule is a function returning the problem, or undefined when the value is fine. */
export function checkedString(check: (s: string) => string | undefined): z.ZodString {
  return z.string().superRefine((s, ctx) => {
    const problem = check(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

export function dns1123LabelProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return `must be at most 63 characters, found ${s.length}`;
  if (!DNS1123_LABEL.test(s)) {
    return `must be a lowercase RFC 1123 label (a-z, 0-9 and '-', starting and ending alphanumeric), found ${show(s)}`;
  }
  return undefined;
}

export function dns1123SubdomainProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 253) return `must be at most 253 characters, found ${s.length}`;
  if (!DNS1123_SUBDOMAIN.test(s)) {
    return `must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', starting and ending alphanumeric), found ${show(s)}`;
  }
  return undefined;
}

function dns1035LabelProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return `must be at most 63 characters, found ${s.length}`;
  if (!DNS1035_LABEL.test(s)) {
    return `must be an RFC 1035 label (a-z, 0-9 and '-', starting with a letter, ending alphanumeric), found ${show(s)}`;
  }
  return undefined;
}

/** Kubernetes "qualified name" (label and annotation keys): optional DNS-subdomain prefix and '/', then a name. */
export function qualifiedNameProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `invalid key ${show(key)}: at most one '/' is allowed`;
  const name = parts[parts.length - 1]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix.length === 0) return `invalid key ${show(key)}: prefix before '/' must not be empty`;
    if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) {
      return `invalid key ${show(key)}: prefix must be a lowercase DNS subdomain of at most 253 characters`;
    }
  }
  if (name.length === 0) return `invalid key ${show(key)}: name part must not be empty`;
  if (name.length > 63) return `invalid key ${show(key)}: name part must be at most 63 characters, found ${name.length}`;
  if (!QUALIFIED_NAME_PART.test(name)) {
    return `invalid key ${show(key)}: name part must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return undefined;
}

export function labelValueProblem(v: string): string | undefined {
  if (v.length > 63) return `invalid label value ${show(v)}: must be at most 63 characters, found ${v.length}`;
  if (!LABEL_VALUE.test(v)) {
    return `invalid label value ${show(v)}: must be empty or alphanumerics, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return undefined;
}

export function durationProblem(s: string): string | undefined {
  return GO_DURATION.test(s) ? undefined : `must be a duration such as "5s" or "100ms", found ${show(s)}`;
}

export const dns1123Label = () => checkedString(dns1123LabelProblem);
export const dns1123Subdomain = () => checkedString(dns1123SubdomainProblem);
export const duration = () => checkedString(durationProblem);
export const nonEmptyString = () => z.string().min(1, { error: 'must not be empty' });

/** Kubernetes label map (metadata.labels, Service selector, Deployment selector): full key and value syntax. */
export const labelMap = () => z.record(checkedString(qualifiedNameProblem), checkedString(labelValueProblem));

const portProblem = (iss: { input?: unknown }) =>
  iss.input === undefined ? undefined : `must be a port number 1-65535, found ${show(iss.input)}`;

/** A TCP/UDP port number, 1-65535. */
export const port = () => z.int({ error: portProblem }).min(1, { error: portProblem }).max(65535, { error: portProblem });

/** Kubernetes IntOrString port reference: a port number or an IANA service name (a container port name). */
export const portOrName = () =>
  z.union([port(), checkedString((s) => (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s) && s.length <= 15 && /[a-z]/.test(s)
    ? undefined
    : `must be a port number 1-65535 or a port name (at most 15 lowercase alphanumerics and '-'), found ${show(s)}`))],
  { error: (iss) => (iss.input === undefined ? undefined : `must be a port number or a port name, found ${show(iss.input)}`) });

export type NameRule = 'dns1123-label' | 'dns1123-subdomain' | 'dns1035-label';

const NAME_RULES: Record<NameRule, (s: string) => string | undefined> = {
  'dns1123-label': dns1123LabelProblem,
  'dns1123-subdomain': dns1123SubdomainProblem,
  'dns1035-label': dns1035LabelProblem,
};

/** ObjectMeta: `name` is required and follows the naming rule Kubernetes applies to that kind. */
export function objectMeta(nameRule: NameRule) {
  return z.looseObject({
    name: checkedString(NAME_RULES[nameRule]),
    namespace: dns1123Label().optional(),
    labels: labelMap().optional(),
    annotations: z.record(checkedString(qualifiedNameProblem), z.string()).optional(),
    uid: z.string().optional(),
    creationTimestamp: z.string().optional(),
    generation: z.int().optional(),
    resourceVersion: z.string().optional(),
    ownerReferences: z
      .array(z.looseObject({ apiVersion: z.string().min(1), kind: z.string().min(1), name: z.string().min(1), uid: z.string().min(1), controller: z.boolean().optional() }))
      .optional(),
  });
}

/** Istio WorkloadSelector. The CRD only forbids wildcards and empty keys and caps values at 63 characters. */
export const workloadSelector = () =>
  z.looseObject({
    matchLabels: z
      .record(
        checkedString((k) => (k.length === 0 ? 'key must not be empty' : k.includes('*') ? 'wildcard not allowed in label key match' : undefined)),
        checkedString((v) =>
          v.includes('*') ? 'wildcard not allowed in label value match' : v.length > 63 ? `must be at most 63 characters, found ${v.length}` : undefined,
        ),
      )
      .optional(),
  });

/** Istio PolicyTargetReference (targetRef / targetRefs entries). */
export const policyTargetReference = () =>
  z.looseObject({
    group: z
      .string()
      .max(253)
      .regex(/^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, { error: (i) => `must be an API group such as "gateway.networking.k8s.io", found ${show(i.input)}` })
      .optional(),
    kind: z
      .string()
      .min(1, { error: 'must not be empty' })
      .max(63)
      .regex(/^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, { error: (i) => `must be a kind such as "Gateway" or "Service", found ${show(i.input)}` }),
    name: z.string().min(1, { error: 'must not be empty' }).max(253),
    namespace: z.string().refine((ns) => ns.length === 0, { error: 'cross namespace referencing is not currently supported' }).optional(),
  });

/** `selector`, `targetRef` and `targetRefs` are one CRD oneof; reported on the second field set. */
export function checkTargetOneOf(spec: unknown, ctx: z.RefinementCtx): void {
  if (!spec || typeof spec !== 'object') return;
  const set = (['selector', 'targetRef', 'targetRefs'] as const).filter((k) => (spec as Record<string, unknown>)[k] !== undefined);
  if (set.length > 1) ctx.addIssue({ code: 'custom', path: [set[1]!], message: 'only one of targetRefs or selector can be set' });
}

/** Runs a refinement even when other parts of the object already failed, so one run reports every problem. */
export const ALWAYS = { when: () => true } as const;
