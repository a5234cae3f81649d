// Building blocks shared by the per-group schemas: Kubernetes name/label syntax, ports, object metadata, Istio
// workload selectors and policy target references. Messages say what was expected and what was found, so a user
// can fix the YAML without reading the CRD.
import { z } from 'zod';
import {
  TOTAL_ANNOTATION_SIZE_LIMIT_B,
  annotationsSize,
  invalidValue,
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidLabelValue,
  tooLong,
} from '../kube-validation.js';

export { DNS1123_SUBDOMAIN } from '../kube-validation.js';

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

/** What is wrong with a value: one message, several (each reported as its own issue, as kube-apiserver does), or none. */
type Problems = string | string[] | undefined;

/** A string schema whose extra rule is a function returning the value's problems. */
export function checkedString(check: (s: string) => Problems): z.ZodString {
  return z.string().superRefine((s, ctx) => {
    const problems = check(s);
    for (const message of typeof problems === 'string' ? [problems] : problems ?? []) ctx.addIssue({ code: 'custom', message });
  });
}

/** kube-apiserver's field.Required / field.Invalid for each message of a syntax rule. */
const kubeRule = (rule: (s: string) => string[]) => (s: string): string[] => (s.length === 0 ? ['Required value'] : rule(s).map((m) => invalidValue(s, m)));

export const dns1123LabelProblem = kubeRule(isDNS1123Label);
export const dns1123SubdomainProblem = kubeRule(isDNS1123Subdomain);
const dns1035LabelProblem = kubeRule(isDNS1035Label);

/** Label keys: IsQualifiedName, each message about the key. */
export const qualifiedNameProblem = (key: string): string[] => isQualifiedName(key).map((m) => invalidValue(key, m));
/** Annotation keys: IsQualifiedName, except that case does not matter. */
const annotationKeyProblem = (key: string): string[] => isQualifiedName(key.toLowerCase()).map((m) => invalidValue(key, m));
export const labelValueProblem = (v: string): string[] => isValidLabelValue(v).map((m) => invalidValue(v, m));

export function durationProblem(s: string): string | undefined {
  return GO_DURATION.test(s) ? undefined : `must be a duration such as "5s" or "100ms", found ${show(s)}`;
}

export const dns1123Label = () => checkedString(dns1123LabelProblem);
export const dns1123Subdomain = () => checkedString(dns1123SubdomainProblem);
export const duration = () => checkedString(durationProblem);
export const nonEmptyString = () => z.string().min(1, { error: 'must not be empty' });

/** Kubernetes label map (metadata.labels, Service selector, Deployment selector): full key and value syntax. */
export const labelMap = () => z.record(checkedString(qualifiedNameProblem), checkedString(labelValueProblem));

/** An issue about a mapping's key rather than its value (the loader points at the key). */
export const ABOUT_KEY = { aboutKey: true } as const;

/**
 * metadata.annotations: qualified-name keys, and at most 256 KiB of keys and values together. The keys are checked
 * here rather than by the record, which would drop a bad key before the size is counted; kube-apiserver counts all.
 */
export const annotationMap = () =>
  z.record(z.string(), z.string()).superRefine((annotations, ctx) => {
    for (const key of Object.keys(annotations)) {
      for (const message of annotationKeyProblem(key)) ctx.addIssue({ code: 'custom', path: [key], message, params: ABOUT_KEY });
    }
    if (annotationsSize(annotations) > TOTAL_ANNOTATION_SIZE_LIMIT_B) ctx.addIssue({ code: 'custom', message: tooLong(TOTAL_ANNOTATION_SIZE_LIMIT_B) });
  });

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

const NAME_RULES: Record<NameRule, (s: string) => string[]> = {
  'dns1123-label': dns1123LabelProblem,
  'dns1123-subdomain': dns1123SubdomainProblem,
  'dns1035-label': dns1035LabelProblem,
};

/** ObjectMeta: `name` is required and follows the naming rule Kubernetes applies to that kind. */
export function objectMeta(nameRule: NameRule) {
  const rule = NAME_RULES[nameRule];
  return z.looseObject({
    name: checkedString((s) => (s.length === 0 ? 'Required value: name or generateName is required' : rule(s))),
    generateName: z.string().optional(),
    namespace: dns1123Label().optional(),
    labels: labelMap().optional(),
    annotations: annotationMap().optional(),
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

/**
 * Runs a refinement even when other parts of the object already failed, so one run reports every problem; but not
 * when the value itself is missing (it is already reported as required, and the refinement would read its fields).
 */
export const ALWAYS = { when: (payload: { value: unknown }) => payload.value !== undefined && payload.value !== null } as const;
