// Field selectors (`fieldSelector=metadata.name=x,status.phase!=Failed`) as kube-apiserver parses and matches them:
// `=`, `==`, `!=`, comma for AND, `\,` `\=` `\\` escapes, and only the fields each kind declares (others: 400
// `field label not supported: <f>`).
import { badRequest } from './errors.js';
import type { KubeObject } from './store.js';

interface FieldRequirement {
  field: string;
  value: string;
  equal: boolean;
}

export interface FieldSelector {
  requirements: FieldRequirement[];
  matches(o: KubeObject): boolean;
}

type Getter = (o: KubeObject) => string | undefined;

const path =
  (...keys: string[]): Getter =>
  (o) => {
    let v: unknown = o;
    for (const k of keys) v = (v as Record<string, unknown> | undefined)?.[k];
    return v === undefined || v === null ? '' : String(v);
  };

const COMMON: Record<string, Getter> = { 'metadata.name': path('metadata', 'name'), 'metadata.namespace': path('metadata', 'namespace') };

/** The fields each kind can be selected by (`group/kind`), besides metadata.name and metadata.namespace. */
const FIELDS: Record<string, Record<string, Getter>> = {
  '/Pod': {
    'spec.nodeName': path('spec', 'nodeName'),
    'spec.restartPolicy': path('spec', 'restartPolicy'),
    'spec.schedulerName': path('spec', 'schedulerName'),
    'spec.serviceAccountName': path('spec', 'serviceAccountName'),
    'spec.hostNetwork': (o) => String((o.spec as { hostNetwork?: boolean } | undefined)?.hostNetwork === true),
    'status.phase': path('status', 'phase'),
    'status.podIP': path('status', 'podIP'),
    'status.nominatedNodeName': path('status', 'nominatedNodeName'),
  },
  '/Event': Object.fromEntries([
    ...['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map((f) => [`involvedObject.${f}`, path('involvedObject', f)]),
    ['reason', path('reason')],
    ['reportingComponent', path('reportingComponent')],
    ['source', path('source', 'component')],
    ['type', path('type')],
  ]),
  '/Namespace': { 'status.phase': path('status', 'phase') },
  '/Node': { 'spec.unschedulable': (o) => String((o.spec as { unschedulable?: boolean } | undefined)?.unschedulable === true) },
  '/Secret': { type: path('type') },
  'apps/ReplicaSet': { 'status.replicas': path('status', 'replicas') },
};

/** Splits on unescaped commas, then each part on its operator; values keep their escapes resolved. */
export function parseFieldSelector(text: string, group: string, kind: string): FieldSelector {
  const fields = { ...COMMON, ...(FIELDS[`${group}/${kind}`] ?? {}) };
  const requirements: FieldRequirement[] = [];
  for (const part of splitUnescaped(text, ',')) {
    if (part.trim() === '') continue;
    const m = /^(.*?)(!=|==|=)(.*)$/s.exec(part);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
    const field = m[1]!.trim();
    if (!fields[field]) throw badRequest(`field label not supported: ${field}`);
    requirements.push({ field, value: unescape(m[3]!), equal: m[2] !== '!=' });
  }
  return {
    requirements,
    matches: (o) => requirements.every((r) => (fields[r.field]!(o) === r.value) === r.equal),
  };
}

function splitUnescaped(text: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      cur += c + text[++i];
      continue;
    }
    if (c === sep) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unescape(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}
