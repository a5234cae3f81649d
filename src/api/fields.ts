// Unknown fields, found as kube-apiserver's strict decoding finds them (`kubectl apply`'s default,
// fieldValidation=Strict): a field the kind's schema does not declare makes the request fail with
// `strict decoding error: unknown field "spec.selectr"`, and nothing is stored. Without it a misspelt field is dropped
// in silence, and a misspelt `selector` turns a workload policy into a namespace-wide one.
//
// Every kind of the registry (./kinds.ts) has a field tree: the built-in kinds' trees are generated from
// @kubernetes/client-node's models (./generated/kube-fields.ts, by scripts/gen-kube-fields.mjs), the custom resources'
// are written from their CRDs (./istio-fields.ts, ./gateway-fields.ts).
import { isRecord } from './schemas/common.js';
import { GATEWAY_API_FIELDS } from './gateway-fields.js';
import { KUBE_KINDS, KUBE_TYPES } from './generated/kube-fields.js';
import { ISTIO_FIELDS } from './istio-fields.js';
import { parseApiVersion, typeOf } from './kinds.js';
import type { IssuePath } from './lint.js';

/**
 * The fields of a group of kinds. A field's type is written as a string: '' a scalar, '*' anything (a free-form
 * value, as `x-kubernetes-preserve-unknown-fields` or Go's `any` make it), '[]T' a list of T, '{}T' a map whose values
 * are T, else the name of one of the table's object types. An object type maps its fields to their types; its key
 * '*', if any, is the type of every field it does not name (an object that preserves unknown fields but still
 * declares some, whose declared fields are checked).
 */
export interface FieldTable {
  /** Kind → the object type of the whole object (custom resources: of everything but apiVersion, kind, metadata). */
  kinds: Readonly<Record<string, string>>;
  types: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

const CUSTOM_TABLES: Readonly<Record<string, FieldTable>> = {
  'security.istio.io': ISTIO_FIELDS,
  'networking.istio.io': ISTIO_FIELDS,
  'telemetry.istio.io': ISTIO_FIELDS,
  'extensions.istio.io': ISTIO_FIELDS,
  'gateway.networking.k8s.io': GATEWAY_API_FIELDS,
};

const OBJECT_META = 'V1ObjectMeta';
/** kube-apiserver keeps at most this many strict decoding errors of a built-in object (sigs.k8s.io/json). */
const MAX_BUILTIN_ERRORS = 100;

/** The field tree of a kind the registry serves; undefined for any other apiVersion/kind. */
export function fieldTree(apiVersion: string, kind: string): { types: FieldTable['types']; root: string; custom: boolean } | undefined {
  const type = typeOf(apiVersion, kind);
  if (!type) return undefined;
  const builtin = KUBE_KINDS[apiVersion]?.[kind];
  if (builtin) return { types: KUBE_TYPES, root: builtin, custom: false };
  const table = CUSTOM_TABLES[type.group];
  const root = table?.kinds[kind];
  return table && root ? { types: table.types, root, custom: true } : undefined;
}

/**
 * The path of every field of `object` its kind does not declare, in kube-apiserver's order: a built-in object's in
 * document order (at most 100, where kube-apiserver stops), a custom resource's metadata fields first, then its
 * others sorted, as apiextensions-apiserver lists them. Throws for a kind the registry does not serve.
 */
export function unknownFieldPaths(apiVersion: string, kind: string, object: unknown): IssuePath[] {
  const tree = fieldTree(apiVersion, kind);
  if (!tree) throw new Error(`no field tree for ${apiVersion} ${kind}: not a kind the registry serves`);
  const out: IssuePath[] = [];
  if (!tree.custom) {
    walk(tree.types, tree.root, object, [], out);
    return out.slice(0, MAX_BUILTIN_ERRORS);
  }
  // A custom resource's apiVersion, kind and metadata are not part of its CRD schema; metadata is decoded as the
  // built-in ObjectMeta.
  if (!isRecord(object)) return out;
  const fields = tree.types[tree.root]!;
  const meta: IssuePath[] = [];
  for (const [key, value] of Object.entries(object)) {
    if (key === 'apiVersion' || key === 'kind') continue;
    if (key === 'metadata') walk(KUBE_TYPES, OBJECT_META, value, [key], meta);
    else if (Object.hasOwn(fields, key)) walk(tree.types, fields[key]!, value, [key], out);
    else out.push([key]);
  }
  const named = out.map((p) => ({ p, s: formatFieldPath(p) }));
  named.sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
  return [...meta, ...named.map((n) => n.p)];
}

/** Every unknown field of `object` as kube-apiserver names it: `spec.selectr`, `spec.template.spec.containers[0].imagePullPolcy`. */
export function unknownFields(apiVersion: string, kind: string, object: unknown): string[] {
  return unknownFieldPaths(apiVersion, kind, object).map(formatFieldPath);
}

/** kube's form of a field path: names joined by dots (map keys too, as they are), list indexes in brackets. */
export function formatFieldPath(path: IssuePath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/** One strict decoding error: `unknown field "spec.selectr"`. */
export function unknownFieldMessage(field: string): string {
  return `unknown field ${JSON.stringify(field)}`;
}

/**
 * kube-apiserver's message (400 BadRequest) for an object with unknown fields under fieldValidation=Strict:
 * `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.selectr"`.
 * The version is the apiVersion's version alone, without its group, as kube-apiserver writes it.
 */
export function strictDecodingError(kind: string, apiVersion: string, fields: readonly string[]): string {
  const { version } = parseApiVersion(apiVersion);
  return `${kind} in version ${JSON.stringify(version)} cannot be handled as a ${kind}: strict decoding error: ${fields.map(unknownFieldMessage).join(', ')}`;
}

function walk(types: FieldTable['types'], type: string, value: unknown, path: IssuePath, out: IssuePath[]): void {
  if (type === '' || type === '*') return;
  if (type.startsWith('[]')) {
    if (Array.isArray(value)) value.forEach((item, i) => walk(types, type.slice(2), item, [...path, i], out));
    return;
  }
  if (type.startsWith('{}')) {
    if (isRecord(value)) for (const [key, item] of Object.entries(value)) walk(types, type.slice(2), item, [...path, key], out);
    return;
  }
  // A value of the wrong shape (a list where an object belongs) is a type error for the schema to report, not an
  // unknown field.
  if (!isRecord(value)) return;
  const fields = types[type];
  if (!fields) throw new Error(`field tree: unknown type ${type}`);
  for (const [key, item] of Object.entries(value)) {
    // Own properties only: a document's `constructor` is an unknown field, not Object's prototype.
    const fieldType = Object.hasOwn(fields, key) ? fields[key] : fields['*'];
    if (fieldType === undefined) out.push([...path, key]);
    else walk(types, fieldType, item, [...path, key], out);
  }
}
