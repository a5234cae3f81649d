// PATCH bodies as kube-apiserver applies them: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge
// patch for built-in kinds (lists merged by their Go types' patchMergeKey, with kubectl's `$patch`,
// `$setElementOrder` and `$deleteFromPrimitiveList` directives) and server-side apply (here: the applied
// configuration merged like a strategic patch, creating the object when it is missing; managed fields and conflicts
// are not tracked — docs/kubernetes-api.md).

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const APPLY_PATCH = 'application/apply-patch+yaml';

export class PatchError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly causes?: { reason?: string; message: string; field?: string }[],
  ) {
    super(message);
  }
}

export interface PatchContext {
  /** The built-in kind (strategic merge keys); undefined for custom resources, which take no strategic patches. */
  kind?: string;
  manager: string;
  force: boolean;
  apiVersion: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Applies a patch of the given media type to `target` (undefined: the object does not exist, apply creates it). */
export function applyPatch(contentType: string, target: object | undefined, patch: unknown, ctx: PatchContext): object {
  const base = (target === undefined ? {} : structuredClone(target)) as Json;
  switch (contentType) {
    case MERGE_PATCH:
      if (!isObject(patch)) throw new PatchError(400, 'BadRequest', 'error decoding patch: a merge patch must be a JSON object');
      return mergePatch(base, patch) as object;
    case JSON_PATCH:
      if (!Array.isArray(patch)) throw new PatchError(400, 'BadRequest', 'error decoding patch: a JSON patch must be a list of operations');
      return jsonPatch(base, patch) as object;
    case STRATEGIC_MERGE_PATCH:
    case APPLY_PATCH:
      if (!isObject(patch)) throw new PatchError(400, 'BadRequest', 'error decoding patch: the patch must be an object');
      if (contentType === STRATEGIC_MERGE_PATCH && ctx.kind === undefined) {
        throw new PatchError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${JSON_PATCH}, ${MERGE_PATCH}, ${APPLY_PATCH}`);
      }
      return strategicMerge(base, patch, ctx.kind ?? '', []) as object;
    default:
      throw new PatchError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${JSON_PATCH}, ${MERGE_PATCH}, ${APPLY_PATCH}, ${STRATEGIC_MERGE_PATCH}`);
  }
}

/** RFC 7386: objects merge, null deletes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

// ---- RFC 6902 -----------------------------------------------------------------------------------------------------------

function pointer(path: unknown): string[] {
  if (typeof path !== 'string' || (path !== '' && !path.startsWith('/'))) throw new PatchError(422, 'Invalid', `invalid JSON pointer: ${JSON.stringify(path)}`);
  return path === '' ? [] : path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function container(doc: Json, parts: string[], op: string, path: string): { parent: JsonObject | Json[]; key: string } {
  let cur: Json = doc;
  for (const p of parts.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[Number(p)] : isObject(cur) ? cur[p] : undefined;
    if (next === undefined) throw new PatchError(422, 'Invalid', `${op} operation does not apply: doc is missing path: "${path}": missing value`);
    cur = next;
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw new PatchError(422, 'Invalid', `${op} operation does not apply: doc is missing path: "${path}": missing value`);
  return { parent: cur, key: parts[parts.length - 1]! };
}

function getAt(doc: Json, path: string, op: string): Json {
  let cur: Json | undefined = doc;
  for (const p of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : isObject(cur) ? cur[p] : undefined;
    if (cur === undefined) throw new PatchError(422, 'Invalid', `${op} operation does not apply: doc is missing path: "${path}": missing value`);
  }
  return cur;
}

function index(arr: Json[], key: string, path: string, op: string, allowEnd: boolean): number {
  if (key === '-' && allowEnd) return arr.length;
  const i = Number(key);
  if (!/^(0|[1-9]\d*)$/.test(key) || i > arr.length || (!allowEnd && i === arr.length)) {
    throw new PatchError(422, 'Invalid', `${op} operation does not apply: doc is missing path: "${path}": index out of range`);
  }
  return i;
}

function put(doc: Json, path: string, value: Json, op: string): Json {
  const parts = pointer(path);
  if (parts.length === 0) return value;
  const { parent, key } = container(doc, parts, op, path);
  if (Array.isArray(parent)) parent.splice(index(parent, key, path, op, true), 0, value);
  else parent[key] = value;
  return doc;
}

function removeAt(doc: Json, path: string, op: string): Json {
  const parts = pointer(path);
  const { parent, key } = container(doc, parts, op, path);
  if (Array.isArray(parent)) parent.splice(index(parent, key, path, op, false), 1);
  else {
    if (!(key in parent)) throw new PatchError(422, 'Invalid', `${op} operation does not apply: doc is missing path: "${path}": missing value`);
    delete parent[key];
  }
  return doc;
}

export function jsonPatch(doc: Json, operations: unknown[]): Json {
  for (const raw of operations) {
    if (!isObject(raw)) throw new PatchError(400, 'BadRequest', 'error decoding patch: an operation must be an object');
    const op = String(raw.op);
    const path = raw.path as string;
    switch (op) {
      case 'add':
        doc = put(doc, path, structuredClone(raw.value ?? null), op);
        break;
      case 'remove':
        doc = removeAt(doc, path, op);
        break;
      case 'replace':
        getAt(doc, path, op);
        doc = removeAt(doc, path, op);
        doc = put(doc, path, structuredClone(raw.value ?? null), op);
        break;
      case 'move': {
        const value = getAt(doc, raw.from as string, op);
        doc = removeAt(doc, raw.from as string, op);
        doc = put(doc, path, value, op);
        break;
      }
      case 'copy':
        doc = put(doc, path, structuredClone(getAt(doc, raw.from as string, op)), op);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, path, op)) !== JSON.stringify(raw.value)) {
          throw new PatchError(422, 'Invalid', `testing value ${path} failed: test failed`);
        }
        break;
      default:
        throw new PatchError(422, 'Invalid', `Unexpected kind: ${op}`);
    }
  }
  return doc;
}

// ---- strategic merge -------------------------------------------------------------------------------------------------

/**
 * Lists merged by key in the built-in kinds (k8s.io/api `patchStrategy:"merge" patchMergeKey:"…"`), by field name and
 * the field that holds it. Other lists are replaced.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  conditions: 'type',
  ownerReferences: 'uid',
  topologySpreadConstraints: 'topologyKey',
  resourceClaims: 'name',
  secrets: 'name',
};

/** `ports` merges by `containerPort` in containers and by `port` in a Service. */
function mergeKeyOf(field: string, kind: string, path: string[]): string | undefined {
  if (field === 'ports') return kind === 'Service' && path.join('.') === 'spec' ? 'port' : 'containerPort';
  return MERGE_KEYS[field];
}

/** Primitive lists with the merge strategy (finalizers): union instead of replace. */
const MERGED_PRIMITIVE_LISTS = new Set(['finalizers']);

function strategicMerge(target: Json, patch: JsonObject, kind: string, path: string[]): Json {
  if (patch.$patch === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === 'delete') return null;
  const out: JsonObject = isObject(target) ? { ...target } : {};
  const retain = Array.isArray(patch.$retainKeys) ? new Set(patch.$retainKeys as string[]) : undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const doomed = new Set((Array.isArray(v) ? v : []).map((x) => JSON.stringify(x)));
      if (Array.isArray(out[field])) out[field] = (out[field] as Json[]).filter((x) => !doomed.has(JSON.stringify(x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (Array.isArray(v)) {
      const key = mergeKeyOf(k, kind, path);
      const order = patch[`$setElementOrder/${k}`];
      if (key && (v.every(isObject) || v.length === 0)) out[k] = mergeList(Array.isArray(cur) ? cur : [], v as JsonObject[], key, kind, [...path, k], Array.isArray(order) ? order : undefined);
      else if (MERGED_PRIMITIVE_LISTS.has(k) && Array.isArray(cur)) out[k] = [...cur, ...v.filter((x) => !cur.some((c) => JSON.stringify(c) === JSON.stringify(x)))];
      else out[k] = stripDirectives(v);
    } else if (isObject(v)) {
      const merged = strategicMerge(cur ?? null, v, kind, [...path, k]);
      if (merged === null) delete out[k];
      else out[k] = merged;
    } else out[k] = v;
  }
  if (retain) for (const k of Object.keys(out)) if (!retain.has(k)) delete out[k];
  return out;
}

function mergeList(current: Json[], patch: JsonObject[], key: string, kind: string, path: string[], order: Json[] | undefined): Json[] {
  if (patch.some((p) => p.$patch === 'replace')) return patch.filter((p) => p.$patch !== 'replace').map((p) => stripDirectives(p));
  const out = current.map((c) => structuredClone(c));
  for (const p of patch) {
    const id = JSON.stringify(p[key] ?? null);
    const i = out.findIndex((c) => isObject(c) && JSON.stringify(c[key] ?? null) === id);
    if (p.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = strategicMerge(out[i]!, p, kind, path);
    else out.push(stripDirectives(p));
  }
  if (!order) return out;
  // kubectl's $setElementOrder lists the keys in the order the user wrote them; items it does not name follow.
  const rank = new Map(order.map((o, i) => [JSON.stringify(isObject(o) ? (o[key] ?? null) : o), i]));
  return out
    .map((item, i) => ({ item, i, r: rank.get(JSON.stringify(isObject(item) ? (item[key] ?? null) : item)) ?? order.length + i }))
    .sort((a, b) => a.r - b.r)
    .map((x) => x.item);
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}
