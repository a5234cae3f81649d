// PATCH as kube-apiserver does it, over plain JSON values (objects as JSON.parse returns them): JSON merge patch,
// JSON patch, strategic merge patch for the built-in kinds, and a simplified server-side apply with managedFields.
// Clients decide what to send from the server's behaviour (kubectl apply's `$setElementOrder` patches, `kubectl
// patch --type json`, `apply --server-side`), so the semantics follow kube-apiserver and the libraries it runs
// (evanphx/json-patch v4, apimachinery's strategicpatch, structured-merge-diff) rather than the RFCs where they
// differ, and failures carry kube-apiserver's codes, reasons and messages.
//
// Inputs are never mutated: each entry point clones its target once and builds everything else from fresh values.
// Keys are read with Object.hasOwn and written through `put`, so a patch naming `__proto__` stays data.
import { kubeTime } from '../common/time.js';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const APPLY_PATCH = 'application/apply-patch+yaml';

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

/** A failed patch, shaped as the `Status` kube-apiserver replies with. */
export class PatchError extends Error {
  constructor(
    /** HTTP status code. */
    readonly code: number,
    /** `Status.reason`; '' is kube-apiserver's StatusReasonUnknown (errors that are not API errors, sent as 500). */
    readonly reason: string,
    message: string,
    readonly causes?: StatusCause[],
    /**
     * What went wrong in the words of the library kube-apiserver uses, when its reply does not say: a failed JSON
     * patch is answered with a generic message (the library's error goes nowhere), so this is for logs.
     */
    readonly detail?: string,
  ) {
    super(message);
  }
}

// kube-apiserver answers a JSON patch that does not apply with NewGenericServerResponse(422, …), which keeps only
// the generic text for 422; evanphx/json-patch's own message ("testing value /x failed: test failed") is dropped.
const REJECTED = 'the server rejected our request due to an error in our request';

const rejected = (detail: string) => new PatchError(422, 'Invalid', REJECTED, undefined, detail);
const badRequest = (message: string) => new PatchError(400, 'BadRequest', message);
/** Errors apimachinery returns as plain Go errors: kube-apiserver sends them as 500 with an empty reason. */
const internal = (message: string) => new PatchError(500, '', message);

const unsupportedMediaType = (accepted: readonly string[]) =>
  new PatchError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`);

/** The patch types kube-apiserver accepts for built-in kinds, in its order; custom resources lack strategic merge. */
const BUILT_IN_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH];
const CUSTOM_RESOURCE_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH];

// ---------------------------------------------------------------------------------------------------------------
// JSON helpers

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(object: JsonObject, key: string): Json | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function put(object: JsonObject, key: string, value: Json): void {
  if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  else object[key] = value;
}

function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

/** A copy without object members set to null (array elements stay): what a Go struct decoded from the JSON keeps. */
function withoutNullMembers(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutNullMembers);
  if (!isObject(value)) return value;
  const copy: JsonObject = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) put(copy, k, withoutNullMembers(v));
  return copy;
}

/** The JSON type name encoding/json uses in "cannot unmarshal X into …". */
function jsonTypeName(value: Json): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'object';
  return typeof value === 'boolean' ? 'bool' : typeof value;
}

/** Go's `%v` of a decoded JSON value, as apimachinery's error messages print maps and slices. */
function goString(value: Json | undefined): string {
  if (value === null || value === undefined) return '<nil>';
  if (Array.isArray(value)) return `[${value.map(goString).join(' ')}]`;
  if (isObject(value)) {
    const members = Object.keys(value).sort().map((k) => `${k}:${goString(value[k])}`);
    return `map[${members.join(' ')}]`;
  }
  return String(value);
}

/** Go's `%s` of reflect.TypeOf(value) for a decoded JSON value. */
function goTypeName(value: Json | undefined): string {
  if (value === null || value === undefined) return '%!s(<nil>)';
  if (Array.isArray(value)) return '[]interface {}';
  if (typeof value === 'object') return 'map[string]interface {}';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int64' : 'float64';
  return typeof value === 'boolean' ? 'bool' : 'string';
}

// ---------------------------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386)

/**
 * RFC 7386: objects merge member by member, null deletes, anything else (arrays included) replaces. Like
 * evanphx/json-patch, null members inside a value that is added rather than merged are dropped too.
 */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return withoutNullMembers(patch);
  const result = isObject(target) ? structuredClone(target) : {};
  mergeMembers(result, patch);
  return result;
}

function mergeMembers(target: JsonObject, patch: JsonObject): void {
  for (const [key, value] of Object.entries(patch)) {
    const current = own(target, key);
    if (value === null) delete target[key];
    else if (isObject(value) && isObject(current)) mergeMembers(current, value);
    else put(target, key, withoutNullMembers(value));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON patch (RFC 6902), as evanphx/json-patch v4 applies it

/** kube-apiserver refuses longer JSON patches (maxJSONPatchOperations). */
const MAX_JSON_PATCH_OPERATIONS = 10000;
/**
 * What a JSON patch's `copy` operations may add in all, in bytes of JSON (kube-apiserver's JSONPatchMaxCopyBytes,
 * json-patch's AccumulatedCopySizeLimit): without it, a few dozen copies of a member into itself double it each time.
 */
const MAX_JSON_PATCH_COPY_BYTES = 3 * 1024 * 1024;

interface Operation {
  op: string;
  path: string | undefined;
  from: string | undefined;
  value: Json | undefined;
}

/**
 * Applies an RFC 6902 patch (`operations` is the parsed body). Where evanphx/json-patch v4 departs from the RFC,
 * this does too: `replace` of a missing object member adds it, `copy` from a missing member copies null, `test`
 * of a missing member passes for a null value, and negative array indices count from the end.
 */
export function applyJsonPatch(target: JsonObject, operations: Json): JsonObject {
  const decoded = decodeOperations(operations);
  const document: { root: JsonObject | Json[]; copiedBytes: number } = { root: structuredClone(target), copiedBytes: 0 };
  for (const operation of decoded) {
    try {
      applyOperation(document, operation);
    } catch (err) {
      if (err instanceof PointerError) throw rejected(err.message);
      throw err;
    }
  }
  // A whole-document replace may leave an array, which no kind decodes from.
  if (!isObject(document.root)) throw rejected('the patched document is an array, not an object');
  return document.root;
}

function decodeOperations(operations: Json): Operation[] {
  if (operations === null) return [];
  const undecodable = (what: string) => badRequest(`error decoding patch: json: cannot unmarshal ${what}`);
  if (!Array.isArray(operations)) throw undecodable(`${jsonTypeName(operations)} into Go value of type []handlers.jsonPatchOp`);
  const decoded = operations.map((item): Operation => {
    if (item === null) return { op: 'unknown', path: undefined, from: undefined, value: undefined };
    if (!isObject(item)) throw undecodable(`${jsonTypeName(item)} into Go value of type handlers.jsonPatchOp`);
    const text = (field: 'op' | 'path' | 'from'): string | undefined => {
      const value = own(item, field);
      if (value === undefined || value === null) return undefined;
      if (typeof value !== 'string') throw undecodable(`${jsonTypeName(value)} into Go struct field jsonPatchOp.${field} of type string`);
      return value;
    };
    return { op: text('op') ?? 'unknown', path: text('path'), from: text('from'), value: own(item, 'value') };
  });
  if (decoded.length > MAX_JSON_PATCH_OPERATIONS) {
    throw new PatchError(
      413,
      'RequestEntityTooLarge',
      `Request entity too large: The allowed maximum operations in a JSON patch is ${MAX_JSON_PATCH_OPERATIONS}, got ${decoded.length}`,
    );
  }
  return decoded;
}

/** A failed operation, worded as evanphx/json-patch words it. */
class PointerError extends Error {}

const MISSING = 'missing value';
const INVALID_INDEX = 'invalid index referenced';

type Container = JsonObject | Json[];

/** The container a pointer's last token lives in, and that token; undefined when a step on the way is missing. */
function locate(root: Container, pointer: string): { container: Container; key: string } | undefined {
  const tokens = pointer.split('/');
  if (tokens.length < 2) return undefined;
  let container: Container = root;
  for (const token of tokens.slice(1, -1)) {
    let next: Json | undefined;
    if (!Array.isArray(container)) next = own(container, unescapeToken(token));
    else {
      const at = indexIfValid(container, token);
      next = at === undefined ? undefined : container[at];
    }
    if (typeof next !== 'object' || next === null) return undefined;
    container = next;
  }
  return { container, key: unescapeToken(tokens[tokens.length - 1]!) };
}

function unescapeToken(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** Go's strconv.Atoi: an optional sign and decimal digits. */
function parseIndex(key: string): number {
  if (!/^[+-]?[0-9]+$/.test(key)) throw new PointerError(`strconv.Atoi: parsing ${JSON.stringify(key)}: invalid syntax`);
  return Number(key);
}

/** An index into `length` elements, negative counting from the end; undefined when out of range. */
function resolveIndex(index: number, length: number): number | undefined {
  const resolved = index < 0 ? index + length : index;
  return resolved >= 0 && resolved < length ? resolved : undefined;
}

/** The element position `key` names, as v4's partialArray finds it; failures throw its errors. */
function indexOf(array: Json[], key: string): number {
  const index = parseIndex(key);
  const at = resolveIndex(index, array.length);
  if (at === undefined) throw new PointerError(`Unable to access invalid index: ${index}: ${INVALID_INDEX}`);
  return at;
}

function indexIfValid(array: Json[], key: string): number | undefined {
  try {
    return indexOf(array, key);
  } catch (err) {
    if (err instanceof PointerError) return undefined;
    throw err;
  }
}

function addAt(container: Container, key: string, value: Json): void {
  if (!Array.isArray(container)) {
    put(container, key, value);
    return;
  }
  if (key === '-') {
    container.push(value);
    return;
  }
  if (!/^[+-]?[0-9]+$/.test(key)) {
    throw new PointerError(`value was not a proper array index: '${key}': strconv.Atoi: parsing ${JSON.stringify(key)}: invalid syntax`);
  }
  const index = Number(key);
  // Insertion points run from 0 to length, so -1 appends.
  const at = resolveIndex(index, container.length + 1);
  if (at === undefined) throw new PointerError(`Unable to access invalid index: ${index}: ${INVALID_INDEX}`);
  container.splice(at, 0, value);
}

function removeAt(container: Container, key: string): void {
  if (!Array.isArray(container)) {
    if (!Object.hasOwn(container, key)) throw new PointerError(`Unable to remove nonexistent key: ${key}: ${MISSING}`);
    delete container[key];
    return;
  }
  container.splice(indexOf(container, key), 1);
}

/** The value at `key` (undefined for a missing object member, which v4 does not treat as an error). */
function valueAt(container: Container, key: string): Json | undefined {
  return Array.isArray(container) ? container[indexOf(container, key)] : own(container, key);
}

function wrap(prefix: string, action: () => void): void {
  try {
    action();
  } catch (err) {
    if (err instanceof PointerError) throw new PointerError(`${prefix}: ${err.message}`);
    throw err;
  }
}

function applyOperation(document: { root: Container; copiedBytes: number }, operation: Operation): void {
  const { op, path, from } = operation;
  const value = operation.value ?? null;
  const pathOf = (verb: string): string => {
    if (path === undefined) throw new PointerError(`${verb} operation failed to decode path: operation missing path field: ${MISSING}`);
    return path;
  };
  const fromOf = (verb: string): string => {
    if (from === undefined) throw new PointerError(`${verb} operation failed to decode from: operation, missing from field: ${MISSING}`);
    return from;
  };
  switch (op) {
    case 'add': {
      const target = pathOf('add');
      const at = locate(document.root, target);
      if (!at) throw new PointerError(`add operation does not apply: doc is missing path: "${target}": ${MISSING}`);
      wrap(`error in add for path: '${target}'`, () => addAt(at.container, at.key, structuredClone(value)));
      return;
    }
    case 'remove': {
      const target = pathOf('remove');
      const at = locate(document.root, target);
      if (!at) throw new PointerError(`remove operation does not apply: doc is missing path: "${target}": ${MISSING}`);
      wrap(`error in remove for path: '${target}'`, () => removeAt(at.container, at.key));
      return;
    }
    case 'replace': {
      const target = pathOf('replace');
      if (target === '') {
        // v4 swaps in an object or array and silently ignores any other value.
        if (typeof value === 'object' && value !== null) document.root = structuredClone(value);
        return;
      }
      const at = locate(document.root, target);
      if (!at) throw new PointerError(`replace operation does not apply: doc is missing path: ${target}: ${MISSING}`);
      if (Array.isArray(at.container)) {
        const index = indexIfValid(at.container, at.key);
        if (index === undefined) throw new PointerError(`replace operation does not apply: doc is missing key: ${target}: ${MISSING}`);
        at.container[index] = structuredClone(value);
      } else {
        put(at.container, at.key, structuredClone(value));
      }
      return;
    }
    case 'move': {
      const source = fromOf('move');
      const at = locate(document.root, source);
      if (!at) throw new PointerError(`move operation does not apply: doc is missing from path: ${source}: ${MISSING}`);
      let moved: Json | undefined;
      wrap(`error in move for path: '${at.key}'`, () => {
        moved = valueAt(at.container, at.key);
        removeAt(at.container, at.key);
      });
      const target = pathOf('move');
      const to = locate(document.root, target);
      if (!to) throw new PointerError(`move operation does not apply: doc is missing destination path: ${target}: ${MISSING}`);
      wrap(`error in move for path: '${target}'`, () => addAt(to.container, to.key, moved ?? null));
      return;
    }
    case 'copy': {
      const source = fromOf('copy');
      const at = locate(document.root, source);
      if (!at) throw new PointerError(`copy operation does not apply: doc is missing from path: ${source}: ${MISSING}`);
      let copied: Json | undefined;
      wrap(`error in copy for from: '${source}'`, () => (copied = valueAt(at.container, at.key)));
      const target = pathOf('copy');
      const to = locate(document.root, target);
      if (!to) throw new PointerError(`copy operation does not apply: doc is missing destination path: ${target}: ${MISSING}`);
      document.copiedBytes += Buffer.byteLength(JSON.stringify(copied ?? null));
      if (document.copiedBytes > MAX_JSON_PATCH_COPY_BYTES) {
        throw new PointerError(`Unable to complete the copy, the accumulated size increase of copy is ${document.copiedBytes}, exceeding the limit ${MAX_JSON_PATCH_COPY_BYTES}`);
      }
      wrap('error while adding value during copy', () => addAt(to.container, to.key, structuredClone(copied ?? null)));
      return;
    }
    case 'test': {
      const target = pathOf('test');
      const failed = new PointerError(`testing value ${target} failed: test failed`);
      if (target === '') {
        if (!deepEqual(document.root, value)) throw failed;
        return;
      }
      const at = locate(document.root, target);
      if (!at) throw new PointerError(`test operation does not apply: is missing path: ${target}: ${MISSING}`);
      let actual: Json | undefined;
      wrap(`error in test for path: '${target}'`, () => (actual = valueAt(at.container, at.key)));
      // A missing member and null are the same to v4.
      if (!deepEqual(actual ?? null, value)) throw failed;
      return;
    }
    default:
      throw new PointerError(`Unexpected kind: ${op}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Strategic merge patch

/**
 * How a field merges, from the `patchStrategy:"merge" patchMergeKey:"…"` tags of k8s.io/api's Go types. Fields
 * not listed merge as maps when both sides are objects and are replaced otherwise (lists without a strategy
 * replace). `$retainKeys` (the `retainKeys` strategy) needs no entry: the server obeys the directive wherever it is.
 */
interface FieldStrategy {
  /** Lists merge instead of being replaced. */
  readonly merge?: true;
  /** Items of a merged list are objects matched by this field; without it the list holds primitives (a set). */
  readonly mergeKey?: string;
  /** The fields of this object, or of each item of a merged list. */
  readonly fields?: Fields;
}
type Fields = Readonly<Record<string, FieldStrategy>>;

const mergedBy = (mergeKey: string, fields?: Fields): FieldStrategy => ({ merge: true, mergeKey, ...(fields ? { fields } : {}) });
const MERGED_SET: FieldStrategy = { merge: true };
const nested = (fields: Fields): FieldStrategy => ({ fields });

const OBJECT_META = nested({ ownerReferences: mergedBy('uid'), finalizers: MERGED_SET });
const CONDITIONS = mergedBy('type');
const CONTAINER: Fields = {
  ports: mergedBy('containerPort'),
  env: mergedBy('name'),
  volumeMounts: mergedBy('mountPath'),
  volumeDevices: mergedBy('devicePath'),
};
const POD_SPEC = nested({
  containers: mergedBy('name', CONTAINER),
  initContainers: mergedBy('name', CONTAINER),
  ephemeralContainers: mergedBy('name', CONTAINER),
  volumes: mergedBy('name'),
  imagePullSecrets: mergedBy('name'),
  hostAliases: mergedBy('ip'),
  topologySpreadConstraints: mergedBy('topologyKey'),
  schedulingGates: mergedBy('name'),
  resourceClaims: mergedBy('name'),
});
const POD_TEMPLATE = nested({ metadata: OBJECT_META, spec: POD_SPEC });
const WORKLOAD: Fields = { metadata: OBJECT_META, spec: nested({ template: POD_TEMPLATE }), status: nested({ conditions: CONDITIONS }) };
const METADATA_ONLY: Fields = { metadata: OBJECT_META };

/** The built-in kinds Ambit serves, which take strategic merge patches; anything else is a custom resource. */
const KIND_FIELDS: Readonly<Record<string, Fields>> = {
  Pod: {
    metadata: OBJECT_META,
    spec: POD_SPEC,
    status: nested({ conditions: CONDITIONS, hostIPs: mergedBy('ip'), podIPs: mergedBy('ip'), resourceClaimStatuses: mergedBy('name') }),
  },
  Service: { metadata: OBJECT_META, spec: nested({ ports: mergedBy('port') }), status: nested({ conditions: CONDITIONS }) },
  Deployment: WORKLOAD,
  DaemonSet: WORKLOAD,
  Namespace: { metadata: OBJECT_META, status: nested({ conditions: CONDITIONS }) },
  Node: {
    metadata: OBJECT_META,
    spec: nested({ podCIDRs: MERGED_SET }),
    status: nested({ conditions: CONDITIONS, addresses: mergedBy('type') }),
  },
  ServiceAccount: { metadata: OBJECT_META, secrets: mergedBy('name') },
  ConfigMap: METADATA_ONLY,
  Secret: METADATA_ONLY,
  Event: METADATA_ONLY,
  EndpointSlice: METADATA_ONLY,
  Lease: METADATA_ONLY,
  CustomResourceDefinition: METADATA_ONLY,
};

function kindFields(kind: string): Fields | undefined {
  return Object.hasOwn(KIND_FIELDS, kind) ? KIND_FIELDS[kind] : undefined;
}

function fieldOf(fields: Fields | undefined, key: string): FieldStrategy | undefined {
  return fields && Object.hasOwn(fields, key) ? fields[key] : undefined;
}

const DIRECTIVE = '$patch';
const RETAIN_KEYS = '$retainKeys';
const SET_ELEMENT_ORDER = '$setElementOrder';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList';

// The strategicpatch errors kube-apiserver turns into 400 (interpretStrategicMergePatchError), …
const BAD_PRIMITIVE_LIST = 'invalid patch format of primitive list';
const BAD_RETAIN_KEYS = 'invalid patch format of retainKeys';
const BAD_SET_ELEMENT_ORDER = 'invalid patch format of setElementOrder list';
// … and the one it answers with the generic 422.
const noListOfLists = () => rejected('lists of lists are not supported');
const noMergeKey = (item: Json, mergeKey: string) => internal(`map: ${goString(item)} does not contain declared merge key: ${mergeKey}`);
const badArgType = (expected: 'map' | 'slice', actual: Json | undefined) =>
  internal(`expected a ${expected === 'map' ? 'map[string]interface {}' : '[]interface {}'}, but received a ${goTypeName(actual)}`);
const unknownPatchType = (directive: Json, item: JsonObject) => internal(`unknown patch type: ${goString(directive)} in map: ${goString(item)}`);

/**
 * Applies a strategic merge patch to an object of a built-in `kind`, as apimachinery's strategicpatch does on the
 * server: maps merge, lists of a merge strategy merge by their merge key (kept in the order `$setElementOrder`
 * or the patch gives), null deletes, and the `$patch`, `$retainKeys`, `$setElementOrder/…` and
 * `$deleteFromPrimitiveList/…` directives apply. A custom resource's kind gets kube-apiserver's 415.
 */
export function applyStrategicMergePatch(target: JsonObject, patch: Json, kind: string): JsonObject {
  const fields = kindFields(kind);
  if (!fields) throw unsupportedMediaType(CUSTOM_RESOURCE_PATCH_TYPES);
  const result = structuredClone(target);
  // A JSON null decodes to an empty patch.
  if (patch === null) return result;
  if (!isObject(patch)) throw badRequest(`json: cannot unmarshal ${jsonTypeName(patch)} into Go value of type map[string]interface {}`);
  return mergeMap(result, patch, fields);
}

/** A patch value as it lands in the result: without null members, directive keys and items marked `$patch`. */
function patchValueToStore(value: Json): Json | undefined {
  if (Array.isArray(value)) {
    const items: Json[] = [];
    for (const item of value) {
      const kept = patchValueToStore(item);
      if (kept !== undefined) items.push(kept);
    }
    return items;
  }
  if (!isObject(value)) return value;
  if (own(value, DIRECTIVE) != null) return undefined;
  const copy: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null || isDirectiveKey(k)) continue;
    const kept = patchValueToStore(v);
    if (kept !== undefined) put(copy, k, kept);
  }
  return copy;
}

function isDirectiveKey(key: string): boolean {
  return key === DIRECTIVE || key === RETAIN_KEYS || key.startsWith(`${SET_ELEMENT_ORDER}/`) || key.startsWith(`${DELETE_FROM_PRIMITIVE_LIST}/`);
}

function storePatchValue(result: JsonObject, key: string, value: Json): void {
  const kept = patchValueToStore(value);
  if (kept === undefined) delete result[key];
  else put(result, key, kept);
}

/** The field a `$prefix/field` directive names; a malformed one is the 400 `malformed`. */
function directiveField(key: string, prefix: string, malformed: string): string {
  const slash = key.indexOf('/');
  if (slash < 0 || key.slice(0, slash) !== prefix) throw badRequest(malformed);
  return key.slice(slash + 1);
}

/** Merges `patch` into `original` (ours to change) and returns the merged map. */
function mergeMap(original: JsonObject, patch: JsonObject, fields: Fields | undefined): JsonObject {
  const directive = own(patch, DIRECTIVE);
  if (directive !== undefined) {
    // The map becomes the patch itself; nulling the marker drops it like any null member.
    if (directive === 'replace') return patchValueToStore({ ...patch, [DIRECTIVE]: null }) as JsonObject;
    if (directive === 'delete') return {};
    throw unknownPatchType(directive, patch);
  }
  retainKeys(original, patch);
  const handled = applySetElementOrder(original, patch, fields);
  for (const [patchKey, patchValue] of Object.entries(patch)) {
    if (handled.has(patchKey) || patchKey === RETAIN_KEYS) continue;
    const deleteList = patchKey.startsWith(DELETE_FROM_PRIMITIVE_LIST);
    const key = deleteList ? directiveField(patchKey, DELETE_FROM_PRIMITIVE_LIST, BAD_PRIMITIVE_LIST) : patchKey;
    if (patchValue === null) {
      delete original[key];
      continue;
    }
    const current = own(original, key);
    if (current === undefined || current === null || kindOfValue(current) !== kindOfValue(patchValue)) {
      if (!deleteList) storePatchValue(original, key, patchValue);
      continue;
    }
    const field = fieldOf(fields, key);
    if (isObject(current)) {
      put(original, key, mergeMap(current, patchValue as JsonObject, field?.fields));
    } else if (Array.isArray(current)) {
      if (field?.merge || deleteList) put(original, key, mergeList(current, patchValue as Json[], key, field, deleteList));
      else storePatchValue(original, key, patchValue);
    } else {
      put(original, key, patchValue);
    }
  }
  return original;
}

function kindOfValue(value: Json): string {
  return Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
}

/** `$retainKeys`: the map keeps only the listed keys, and the patch may set no others. */
function retainKeys(original: JsonObject, patch: JsonObject): void {
  const keep = own(patch, RETAIN_KEYS);
  if (keep === undefined) return;
  if (!Array.isArray(keep)) throw badRequest(BAD_RETAIN_KEYS);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || k === RETAIN_KEYS || k.startsWith(DELETE_FROM_PRIMITIVE_LIST) || k.startsWith(SET_ELEMENT_ORDER)) continue;
    if (!keep.includes(k)) throw badRequest(BAD_RETAIN_KEYS);
  }
  for (const k of Object.keys(original)) if (!keep.includes(k)) delete original[k];
}

/**
 * `$setElementOrder/<list>`: merges the list with its patch (if any) and orders the result: the items named by
 * the directive in its order, the server's other items placed among them by their live order. Returns the patch
 * keys it consumed.
 */
function applySetElementOrder(original: JsonObject, patch: JsonObject, fields: Fields | undefined): Set<string> {
  const handled = new Set<string>();
  for (const [patchKey, order] of Object.entries(patch)) {
    if (!patchKey.startsWith(SET_ELEMENT_ORDER)) continue;
    handled.add(patchKey);
    if (!Array.isArray(order)) throw badArgType('slice', order);
    const key = directiveField(patchKey, SET_ELEMENT_ORDER, BAD_SET_ELEMENT_ORDER);
    const current = own(original, key);
    const patchList = own(patch, key);
    if (current !== undefined && !Array.isArray(current)) throw badArgType('slice', current);
    if (patchList !== undefined && !Array.isArray(patchList)) throw badArgType('slice', patchList);
    const field = fieldOf(fields, key);
    const mergeKey = field?.mergeKey;
    checkOrderMatchesPatch(patchList ?? [], order, mergeKey);
    let merged: Json[];
    let liveOrder: Json[] | undefined;
    if (current === undefined && patchList === undefined) continue;
    if (patchList === undefined) merged = current!;
    else if (current === undefined) merged = patchValueToStore(patchList) as Json[];
    else merged = field?.merge ? mergeList(current, patchList, key, field, false, (liveOrder = current.slice())) : (patchValueToStore(patchList) as Json[]);
    handled.add(key);
    const itemKind = elementKind(current ?? [], patchList ?? []);
    const identity = identityOf(itemKind === 'object' ? mergeKey : undefined);
    const named = new Set(order.map(identity));
    const inOrder = merged.filter((item) => named.has(identity(item)));
    const serverOnly = merged.filter((item) => !named.has(identity(item)));
    put(original, key, orderItems(inOrder, serverOnly, order, liveOrder ?? current ?? [], identity));
  }
  return handled;
}

/** Every (non-deleting) patch item must appear in `$setElementOrder`, in the same relative order. */
function checkOrderMatchesPatch(patchList: Json[], order: Json[], mergeKey: string | undefined): void {
  if (order.length === 0 || patchList.length === 0) return;
  let items = patchList;
  if (mergeKey) {
    for (const item of patchList) if (!isObject(item)) throw badArgType('map', item);
    items = patchList.filter((item) => own(item as JsonObject, DIRECTIVE) !== 'delete');
  }
  const sameItem = (item: Json, named: Json): boolean => {
    if (!mergeKey) return item === named;
    if (!isObject(item)) throw badArgType('map', item);
    if (!isObject(named)) throw badArgType('map', named);
    if (own(item, mergeKey) === undefined) throw noMergeKey(item, mergeKey);
    if (own(named, mergeKey) === undefined) throw noMergeKey(named, mergeKey);
    return own(item, mergeKey) === own(named, mergeKey);
  };
  let p = 0;
  for (let s = 0; p < items.length && s < order.length; s++) {
    while (p < items.length && isObject(items[p]) && own(items[p] as JsonObject, DIRECTIVE) !== undefined) p++;
    if (p < items.length && sameItem(items[p]!, order[s]!)) p++;
  }
  if (p < items.length) {
    throw internal(`The order in patch list:\n${goString(patchList)}\n doesn't match ${SET_ELEMENT_ORDER} list:\n${goString(order)}\n`);
  }
}

/** The type all items of the lists share ('object' or a primitive type); mixed or nested lists are errors. */
function elementKind(...lists: Json[][]): string {
  let kind: string | undefined;
  for (const list of lists) {
    for (const item of list) {
      const itemKind = kindOfValue(item);
      if (kind === undefined) {
        if (itemKind === 'array') throw noListOfLists();
        kind = itemKind;
      } else if (kind !== itemKind) {
        throw internal(`list element types are not identical: ${goString(lists)}`);
      }
    }
  }
  if (kind === undefined) throw internal('no elements in any of the given slices');
  return kind;
}

/** What identifies a list item: its merge key's value, or the primitive itself. */
function identityOf(mergeKey: string | undefined): (item: Json) => Json | undefined {
  return mergeKey ? (item) => (isObject(item) ? own(item, mergeKey) : undefined) : (item) => item;
}

/**
 * A list merged with the list of a patch: primitives as a set, objects by merge key with `$patch` items applied.
 *
 * strategicpatch deletes and appends in place on the live list's backing array, and `$setElementOrder` then orders
 * server-only items by what that array shows within the live list's length: a deleted item's slot taken by the
 * items after it, the freed slots at the end by appended items. `liveOrder` (a copy of the live list) is rewritten
 * the same way, so the order matches kube-apiserver's.
 */
function mergeList(original: Json[], patch: Json[], name: string, field: FieldStrategy | undefined, deleteList: boolean, liveOrder?: Json[]): Json[] {
  if (original.length === 0 && patch.length === 0) return original;
  const itemKind = elementKind(original, patch);
  if (itemKind !== 'object') {
    if (deleteList) return original.filter((item) => !patch.includes(item));
    const merged = [...new Set([...original, ...patch])];
    const inPatch = new Set(patch);
    const identity = identityOf(undefined);
    return orderItems(merged.filter((item) => inPatch.has(item)), merged.filter((item) => !inPatch.has(item)), patch, original, identity);
  }
  const mergeKey = field?.mergeKey;
  if (!mergeKey) throw internal(`cannot merge lists without merge key for ${name}`);
  const keyOf = (item: Json) => own(item as JsonObject, mergeKey);
  let base = original.slice();
  let liveLength = liveOrder?.length ?? 0;
  let items: JsonObject[] = [];
  let replace = false;
  for (const item of patch as JsonObject[]) {
    const directive = own(item, DIRECTIVE);
    if (directive === undefined) items.push(item);
    else if (directive === 'delete') {
      const keyValue = own(item, mergeKey);
      if (keyValue === undefined) throw noMergeKey(item, mergeKey);
      for (let at = base.findIndex((e) => keyOf(e) === keyValue); at >= 0; at = base.findIndex((e) => keyOf(e) === keyValue)) {
        base.splice(at, 1);
        liveOrder?.copyWithin(at, at + 1, liveLength--);
      }
    } else if (directive === 'replace') replace = true;
    else if (directive === 'merge') throw internal('merging lists cannot yet be specified in the patch');
    else throw unknownPatchType(directive, item);
  }
  if (replace) {
    base = items.map((item) => patchValueToStore(item)).filter((item): item is Json => item !== undefined);
    items = [];
  }
  const serverOrder = base.slice();
  const merged = base;
  for (const item of items) {
    const keyValue = own(item, mergeKey);
    if (keyValue === undefined) throw noMergeKey(item, mergeKey);
    const at = merged.findIndex((existing) => keyOf(existing) === keyValue);
    if (at >= 0) merged[at] = mergeMap(merged[at] as JsonObject, item, field.fields);
    else {
      const added = patchValueToStore(item);
      if (added === undefined) continue;
      merged.push(added);
      if (liveOrder && liveLength < liveOrder.length) liveOrder[liveLength++] = added;
    }
  }
  const identity = identityOf(mergeKey);
  for (const item of [...merged, ...items, ...serverOrder]) if (identity(item) === undefined) throw noMergeKey(item, mergeKey);
  const inPatch = new Set(items.map(identity));
  const inPatchItems = merged.filter((item) => inPatch.has(identity(item)));
  const serverOnly = merged.filter((item) => !inPatch.has(identity(item)));
  return orderItems(inPatchItems, serverOnly, items, serverOrder, identity);
}

/**
 * strategicpatch's final order: the patch's items sorted by `patchOrder`, the server-only items sorted by their
 * live order, then the two interleaved so a server-only item stays before a patch item it preceded live.
 */
function orderItems(
  patchItems: Json[],
  serverOnly: Json[],
  patchOrder: Json[],
  serverOrder: Json[],
  identity: (item: Json) => Json | undefined,
): Json[] {
  const positions = (list: Json[]) => {
    const at = new Map<Json | undefined, number>();
    list.forEach((item, i) => {
      const id = identity(item);
      if (!at.has(id)) at.set(id, i);
    });
    return at;
  };
  const patchPosition = positions(patchOrder);
  const serverPosition = positions(serverOrder);
  const sortBy = (list: Json[], at: Map<Json | undefined, number>) =>
    list
      .map((item, i) => ({ item, rank: at.get(identity(item)) ?? Number.MAX_SAFE_INTEGER, i }))
      .sort((a, b) => a.rank - b.rank || a.i - b.i)
      .map(({ item }) => item);
  const left = sortBy(serverOnly, serverPosition);
  const right = sortBy(patchItems, patchPosition);
  const out: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (j >= right.length) out.push(left[i++]!);
    else if (i >= left.length) out.push(right[j++]!);
    else {
      const l = serverPosition.get(identity(left[i]!));
      const r = serverPosition.get(identity(right[j]!));
      if (l !== undefined && r !== undefined && l < r) out.push(left[i++]!);
      else out.push(right[j++]!);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// managedFields and server-side apply
//
// A simplified structured-merge-diff. Field sets are kept as FieldsV1 paths ("f:spec", "k:{"name":"web"}",
// "v:"x"") and object shapes come from the strategic-merge table above instead of OpenAPI, so:
// - list items are keyed by their patchMergeKey alone (real SSA keys container ports by containerPort+protocol and
//   service ports by port+protocol), lists without a merge strategy are atomic, and kinds outside the table have
//   maps merged and lists atomic;
// - maps are never owned as a whole ("." appears only on list items), except empty ones, which are leaves;
// - items an apply adds to a live list are appended (structured-merge-diff interleaves both orders);
// - a field the applier stops applying is removed unless some manager still owns it or something under it;
// - status is left out of a main-resource write's sets (as kube-apiserver resets it), and only status counts for
//   an Update of the status subresource; nulls in an applied configuration mean "not applied".

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: JsonObject;
  subresource?: string;
}

type FieldPath = readonly string[];
/** A set of field paths, keyed by the JSON of the path. */
type FieldSet = Map<string, FieldPath>;

/** Fields kube-apiserver never records an owner for (stripmeta.go). */
const UNMANAGED_METADATA = new Set(['name', 'namespace', 'creationTimestamp', 'selfLink', 'uid', 'clusterName', 'generation', 'managedFields', 'resourceVersion']);

function addPath(set: FieldSet, path: FieldPath): void {
  set.set(JSON.stringify(path), path);
}

/** The field paths an object sets: its leaves, plus each item of a keyed or set-like list. */
function fieldSetOf(object: JsonObject, fields: Fields | undefined, subresource: string | undefined): FieldSet {
  const set: FieldSet = new Map();
  for (const [key, value] of Object.entries(object)) {
    if (key === 'apiVersion' || key === 'kind' || value === null) continue;
    if ((key === 'status') !== (subresource === 'status')) continue;
    if (key === 'metadata' && isObject(value)) {
      for (const [metaKey, metaValue] of Object.entries(value)) {
        if (metaValue === null || UNMANAGED_METADATA.has(metaKey)) continue;
        addValuePaths(set, ['f:metadata', `f:${metaKey}`], metaValue, fieldOf(fieldOf(fields, 'metadata')?.fields, metaKey));
      }
      continue;
    }
    addValuePaths(set, [`f:${key}`], value, fieldOf(fields, key));
  }
  return set;
}

function addValuePaths(set: FieldSet, path: FieldPath, value: Json, field: FieldStrategy | undefined): void {
  if (isObject(value)) {
    const members = Object.entries(value).filter(([, v]) => v !== null);
    if (members.length === 0) addPath(set, path);
    for (const [k, v] of members) addValuePaths(set, [...path, `f:${k}`], v, fieldOf(field?.fields, k));
    return;
  }
  if (Array.isArray(value) && value.length > 0 && field?.merge) {
    const mergeKey = field.mergeKey;
    if (mergeKey && value.every((item) => isObject(item) && own(item, mergeKey) != null)) {
      for (const item of value as JsonObject[]) {
        const itemPath = [...path, itemKeyElement(mergeKey, own(item, mergeKey)!)];
        addPath(set, itemPath);
        for (const [k, v] of Object.entries(item)) if (v !== null) addValuePaths(set, [...itemPath, `f:${k}`], v, fieldOf(field.fields, k));
      }
      return;
    }
    if (!mergeKey && value.every((item) => !isObject(item) && !Array.isArray(item))) {
      for (const item of value) addPath(set, [...path, `v:${JSON.stringify(item)}`]);
      return;
    }
  }
  addPath(set, path);
}

function itemKeyElement(mergeKey: string, keyValue: Json): string {
  return `k:${JSON.stringify({ [mergeKey]: keyValue })}`;
}

/** Where a path leads in an object, or undefined. */
function valueAtPath(object: Json, path: FieldPath): Json | undefined {
  let value: Json | undefined = object;
  for (const element of path) {
    if (value === undefined) return undefined;
    value = childOf(value, element)?.value;
  }
  return value;
}

/** One step of a path: the value it names and where that value sits. */
function childOf(value: Json, element: string): { value: Json; index: number | string } | undefined {
  const body = element.slice(2);
  if (element.startsWith('f:')) {
    if (!isObject(value) || !Object.hasOwn(value, body)) return undefined;
    return { value: value[body]!, index: body };
  }
  if (!Array.isArray(value)) return undefined;
  let index = -1;
  if (element.startsWith('k:')) {
    const key = JSON.parse(body) as JsonObject;
    index = value.findIndex((item) => isObject(item) && Object.entries(key).every(([k, v]) => own(item, k) === v));
  } else if (element.startsWith('v:')) {
    const wanted = JSON.parse(body) as Json;
    index = value.findIndex((item) => deepEqual(item, wanted));
  } else if (element.startsWith('i:')) {
    index = Number(body) < value.length ? Number(body) : -1;
  }
  return index >= 0 ? { value: value[index]!, index } : undefined;
}

function removePath(object: JsonObject, path: FieldPath): void {
  const parent = valueAtPath(object, path.slice(0, -1));
  const at = parent === undefined ? undefined : childOf(parent, path[path.length - 1]!);
  if (!at) return;
  if (Array.isArray(parent)) parent.splice(at.index as number, 1);
  else delete (parent as JsonObject)[at.index as string];
}

/** A path as structured-merge-diff prints it: `.spec.containers[name="web"].image`. */
function formatPath(path: FieldPath): string {
  return path
    .map((element) => {
      const body = element.slice(2);
      if (element.startsWith('f:')) return `.${body}`;
      if (element.startsWith('k:')) {
        const key = JSON.parse(body) as JsonObject;
        return `[${Object.entries(key).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
      }
      if (element.startsWith('v:')) return `[=${body}]`;
      return `[${body}]`;
    })
    .join('');
}

/** structured-merge-diff's path order: at each level the paths ending there first, then deeper ones; fields, keys, values, indices. */
function comparePaths(a: FieldPath, b: FieldPath): number {
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  if (common === a.length || common === b.length) return a.length - b.length;
  const aEnds = a.length === common + 1;
  const bEnds = b.length === common + 1;
  if (aEnds !== bEnds) return aEnds ? -1 : 1;
  return compareElements(a[common]!, b[common]!);
}

/** Path elements in structured-merge-diff's order: fields, then keys, values and indices, each by text. */
function compareElements(a: string, b: string): number {
  const rank = (element: string) => 'fkvi'.indexOf(element[0]!);
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

function parseFieldsV1(tree: Json | undefined): FieldSet {
  const set: FieldSet = new Map();
  const walk = (node: JsonObject, path: FieldPath) => {
    for (const [key, child] of Object.entries(node)) {
      if (key === '.') addPath(set, path);
      else if (isObject(child) && Object.keys(child).length > 0) walk(child, [...path, key]);
      else addPath(set, [...path, key]);
    }
  };
  if (isObject(tree)) walk(tree, []);
  return set;
}

/** FieldsV1 as structured-merge-diff writes it: "." first where a path is owned and has owned paths under it. */
function toFieldsV1(set: FieldSet): JsonObject {
  interface Node {
    owned: boolean;
    children: Map<string, Node>;
  }
  const root: Node = { owned: false, children: new Map() };
  for (const path of set.values()) {
    let node = root;
    for (const element of path) {
      let child = node.children.get(element);
      if (!child) node.children.set(element, (child = { owned: false, children: new Map() }));
      node = child;
    }
    node.owned = true;
  }
  const write = (node: Node): JsonObject => {
    const out: JsonObject = {};
    if (node.owned && node.children.size > 0) out['.'] = {};
    for (const element of [...node.children.keys()].sort(compareElements)) put(out, element, write(node.children.get(element)!));
    return out;
  };
  return write(root);
}

interface Manager {
  entry: ManagedFieldsEntry;
  /** structured-merge-diff's manager identity: name, operation, subresource, and apiVersion for Update. */
  id: string;
  paths: FieldSet;
}

function managerId(manager: string, operation: string, apiVersion: string, subresource: string | undefined): string {
  return JSON.stringify({
    manager,
    operation,
    ...(operation === 'Update' ? { apiVersion } : {}),
    ...(subresource ? { subresource } : {}),
  });
}

function readManagers(object: JsonObject | undefined): Manager[] {
  const metadata = object && own(object, 'metadata');
  const entries = isObject(metadata) ? own(metadata, 'managedFields') : undefined;
  if (!Array.isArray(entries)) return [];
  return entries.filter(isObject).map((raw) => {
    const text = (key: string) => (typeof own(raw, key) === 'string' ? (own(raw, key) as string) : '');
    const subresource = text('subresource') || undefined;
    const entry: ManagedFieldsEntry = {
      manager: text('manager'),
      operation: text('operation') === 'Apply' ? 'Apply' : 'Update',
      apiVersion: text('apiVersion'),
      time: text('time'),
      fieldsType: 'FieldsV1',
      fieldsV1: isObject(own(raw, 'fieldsV1')) ? (own(raw, 'fieldsV1') as JsonObject) : {},
      ...(subresource ? { subresource } : {}),
    };
    return { entry, id: managerId(entry.manager, entry.operation, entry.apiVersion, subresource), paths: parseFieldsV1(entry.fieldsV1) };
  });
}

/** managedFields as kube-apiserver orders them: Apply before Update, then by time, manager, apiVersion, subresource. */
function writeManagers(managers: Manager[]): ManagedFieldsEntry[] {
  const entries = managers.filter((m) => m.paths.size > 0).map((m) => ({ ...m.entry, fieldsV1: toFieldsV1(m.paths) }));
  const seconds = (time: string) => (time ? Math.floor(Date.parse(time) / 1000) : 0);
  const by = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return entries.sort(
    (p, q) =>
      by(p.operation, q.operation) ||
      seconds(p.time) - seconds(q.time) ||
      by(p.manager, q.manager) ||
      by(p.apiVersion, q.apiVersion) ||
      by(p.subresource ?? '', q.subresource ?? ''),
  );
}

/** What changed between two objects, as structured-merge-diff's Compare reports it. */
function compareObjects(before: JsonObject | undefined, after: JsonObject, fields: Fields | undefined, subresource: string | undefined) {
  const beforePaths = before ? fieldSetOf(before, fields, subresource) : new Map<string, FieldPath>();
  const afterPaths = fieldSetOf(after, fields, subresource);
  const changed: FieldSet = new Map();
  const removed: FieldSet = new Map();
  for (const [key, path] of afterPaths) {
    if (!beforePaths.has(key)) changed.set(key, path);
    else if (isLeafPath(path) && !deepEqual(valueAtPath(before!, path), valueAtPath(after, path))) changed.set(key, path);
  }
  for (const [key, path] of beforePaths) if (!afterPaths.has(key)) removed.set(key, path);
  return { changed, removed };
}

/** List items (k:, v:) are owned for existing; their values are compared through their own fields. */
function isLeafPath(path: FieldPath): boolean {
  return path[path.length - 1]!.startsWith('f:');
}

function without(set: FieldSet, ...remove: FieldSet[]): FieldSet {
  const out: FieldSet = new Map();
  for (const [key, path] of set) if (!remove.some((r) => r.has(key))) out.set(key, path);
  return out;
}

/**
 * Records an Update in managedFields, as kube-apiserver does for create, update and the non-apply patches: the
 * manager (with this apiVersion) gains the fields the write added or changed, every other manager loses them, and
 * fields the write removed lose their owners. With `subresource: 'status'` only status counts; otherwise status
 * is left out. Returns the new managedFields (kube-apiserver's order; managers left with nothing are dropped).
 */
export function updateManagedFields(
  old: JsonObject | undefined,
  next: JsonObject,
  manager: string,
  operation: 'Update',
  apiVersion: string,
  now: Date,
  subresource?: 'status',
): ManagedFieldsEntry[] {
  const kind = own(next, 'kind') ?? (old && own(old, 'kind'));
  const fields = typeof kind === 'string' ? kindFields(kind) : undefined;
  const managers = readManagers(old);
  const { changed, removed } = compareObjects(old, next, fields, subresource);
  const id = managerId(manager, operation, apiVersion, subresource);
  let self = managers.find((m) => m.id === id);
  for (const m of managers) if (m !== self) m.paths = without(m.paths, changed, removed);
  if (changed.size > 0 || removed.size > 0) {
    if (!self) {
      self = { entry: { manager, operation, apiVersion, time: '', fieldsType: 'FieldsV1', fieldsV1: {}, ...(subresource ? { subresource } : {}) }, id, paths: new Map() };
      managers.push(self);
    }
    self.paths = without(new Map([...self.paths, ...changed]), removed);
    self.entry = { ...self.entry, time: kubeTime(now) };
  }
  return writeManagers(managers);
}

export interface ApplyOptions {
  force: boolean;
  /** The apiVersion of the request's URL; the applied configuration must name the same. */
  apiVersion: string;
  now: Date;
}

export interface ApplyResult {
  /** The object to store, with its new managedFields in metadata. */
  object: JsonObject;
  managedFields: ManagedFieldsEntry[];
}

/**
 * Server-side apply (`application/apply-patch+yaml`), simplified as described above: merges the applied
 * configuration into the live object (or creates it from the configuration), removes what this manager applied
 * last time and no longer applies (unless another manager owns it), and records the applied fields as this
 * manager's Apply entry. A field another manager owns whose value the apply would change is a conflict: 409
 * unless `force`, which takes the field over.
 */
export function applyServerSideApply(live: JsonObject | undefined, applied: Json, manager: string, options: ApplyOptions): ApplyResult {
  if (!isObject(applied)) throw badRequest(`error decoding YAML: json: cannot unmarshal ${jsonTypeName(applied)} into Go value of type map[string]interface {}`);
  const appliedVersion = own(applied, 'apiVersion');
  if (appliedVersion !== options.apiVersion) {
    throw badRequest(
      `Incorrect version specified in apply patch. Specified patch version: ${typeof appliedVersion === 'string' ? appliedVersion : ''}, expected: ${options.apiVersion}`,
    );
  }
  const appliedMetadata = own(applied, 'metadata');
  if (isObject(appliedMetadata) && own(appliedMetadata, 'managedFields') != null) throw badRequest('metadata.managedFields must be nil');
  const kind = own(applied, 'kind');
  const fields = typeof kind === 'string' ? kindFields(kind) : undefined;

  const config = withoutNullMembers(applied) as JsonObject;
  const configPaths = fieldSetOf(config, fields, undefined);
  const managers = readManagers(live);
  const id = managerId(manager, 'Apply', options.apiVersion, undefined);
  const previous = managers.find((m) => m.id === id);
  const others = managers.filter((m) => m !== previous);

  const merged = mergeApplied(live ? structuredClone(live) : {}, config, fields);
  if (previous) prune(merged, without(previous.paths, configPaths), [configPaths, ...others.map((m) => m.paths)]);

  const { changed, removed } = compareObjects(live, merged, fields, undefined);
  const conflicts: { manager: Manager; path: FieldPath }[] = [];
  for (const other of others) {
    for (const [key, path] of other.paths) if (changed.has(key)) conflicts.push({ manager: other, path });
  }
  if (conflicts.length > 0 && !options.force) throw conflictError(conflicts);

  for (const other of others) other.paths = without(other.paths, changed, removed);
  const self: Manager = {
    entry: { manager, operation: 'Apply', apiVersion: options.apiVersion, time: kubeTime(options.now), fieldsType: 'FieldsV1', fieldsV1: {} },
    id,
    paths: configPaths,
  };
  const managedFields = writeManagers([...others, self]);
  setManagedFields(merged, managedFields);
  return { object: merged, managedFields };
}

function setManagedFields(object: JsonObject, managedFields: ManagedFieldsEntry[]): void {
  const entries = managedFields.map((entry) => ({ ...entry }) as JsonObject);
  const metadata = own(object, 'metadata');
  if (isObject(metadata)) put(metadata, 'managedFields', entries);
  else put(object, 'metadata', { managedFields: entries });
}

/** The applied configuration merged into the live object (ours to change): maps merge, keyed lists merge by key. */
function mergeApplied(live: JsonObject, config: JsonObject, fields: Fields | undefined): JsonObject {
  for (const [key, value] of Object.entries(config)) {
    const current = own(live, key);
    const field = fieldOf(fields, key);
    if (isObject(value) && isObject(current)) put(live, key, mergeApplied(current, value, field?.fields));
    else if (Array.isArray(value) && Array.isArray(current) && field?.merge) put(live, key, mergeAppliedList(current, value, field));
    else put(live, key, value);
  }
  return live;
}

function mergeAppliedList(live: Json[], applied: Json[], field: FieldStrategy): Json[] {
  const mergeKey = field.mergeKey;
  const merged = live.slice();
  if (!mergeKey) {
    for (const item of applied) if (!merged.some((existing) => deepEqual(existing, item))) merged.push(item);
    return merged;
  }
  const keyed = (items: Json[]) => items.every((item) => isObject(item) && own(item, mergeKey) != null);
  if (!keyed(live) || !keyed(applied)) return applied;
  for (const item of applied as JsonObject[]) {
    const at = merged.findIndex((existing) => own(existing as JsonObject, mergeKey) === own(item, mergeKey));
    if (at >= 0) merged[at] = mergeApplied(merged[at] as JsonObject, item, field.fields);
    else merged.push(item);
  }
  return merged;
}

/**
 * Removes the paths this applier gave up that nobody owns (and nothing under which is owned), then the objects
 * and lists that removal left empty, up to the first one still owned. Shorter paths go first, so a list item
 * leaves whole rather than losing its key field and then no longer being found by it.
 */
function prune(object: JsonObject, givenUp: FieldSet, owners: FieldSet[]): void {
  const ownedPrefixes = new Set<string>();
  for (const owner of owners) {
    for (const path of owner.values()) for (let n = 1; n <= path.length; n++) ownedPrefixes.add(JSON.stringify(path.slice(0, n)));
  }
  for (const path of [...givenUp.values()].sort((a, b) => a.length - b.length)) {
    if (ownedPrefixes.has(JSON.stringify(path))) continue;
    removePath(object, path);
    for (let parent = path.slice(0, -1); parent.length > 0 && !ownedPrefixes.has(JSON.stringify(parent)); parent = parent.slice(0, -1)) {
      const value = valueAtPath(object, parent);
      const empty = Array.isArray(value) ? value.length === 0 : isObject(value) && Object.keys(value).length === 0;
      if (!empty) break;
      removePath(object, parent);
    }
  }
}

/** kube-apiserver's apply conflict (managedfields/internal/conflict.go). */
function conflictError(conflicts: { manager: Manager; path: FieldPath }[]): PatchError {
  const describe = (m: Manager) => {
    let text = JSON.stringify(m.entry.manager);
    if (m.entry.subresource) text += ` with subresource ${JSON.stringify(m.entry.subresource)}`;
    return m.entry.operation === 'Update' ? `${text} using ${m.entry.apiVersion}` : text;
  };
  const sorted = conflicts.slice().sort((a, b) => (a.manager.id < b.manager.id ? -1 : a.manager.id > b.manager.id ? 1 : comparePaths(a.path, b.path)));
  const causes = sorted.map(({ manager, path }) => ({ reason: 'FieldManagerConflict', message: `conflict with ${describe(manager)}`, field: formatPath(path) }));
  if (sorted.length === 1) {
    return new PatchError(409, 'Conflict', `Apply failed with 1 conflict: conflict with ${describe(sorted[0]!.manager)}: ${causes[0]!.field}`, causes);
  }
  const lines: string[] = [];
  let current: Manager | undefined;
  for (const { manager, path } of sorted) {
    if (manager !== current) lines.push(`conflicts with ${describe(manager)}:`);
    current = manager;
    lines.push(`- ${formatPath(path)}`);
  }
  return new PatchError(409, 'Conflict', `Apply failed with ${sorted.length} conflicts: ${lines.join('\n')}`, causes);
}

// ---------------------------------------------------------------------------------------------------------------
// The PATCH verb

export interface PatchContext {
  /** The object's kind: strategic merge and apply take their merge keys from it. */
  kind: string;
  /** The apiVersion of the request's URL. */
  apiVersion: string;
  /** `?fieldManager=`: required for apply; for the other patch types, the manager their Update is recorded for. */
  manager?: string;
  /** `?force=`, when the request has it: apply takes over conflicting fields; other patch types refuse it. */
  force?: boolean;
  now: Date;
}

/**
 * Applies a PATCH body (already parsed; the caller parses YAML for apply) of the given Content-Type to the stored
 * object and returns the object to store, managedFields included. Only apply may create: for the other types the
 * caller answers a missing object with NotFound before calling.
 */
export function applyPatch(contentType: string, target: JsonObject | undefined, body: Json, context: PatchContext): JsonObject {
  // kube-apiserver ignores parameters such as "; charset=utf-8".
  const semicolon = contentType.indexOf(';');
  const patchType = semicolon > 0 ? contentType.slice(0, semicolon) : contentType;
  const accepted = kindFields(context.kind) ? BUILT_IN_PATCH_TYPES : CUSTOM_RESOURCE_PATCH_TYPES;
  if (!accepted.includes(patchType)) throw unsupportedMediaType(accepted);
  if (patchType === APPLY_PATCH) {
    if (!context.manager) {
      throw new PatchError(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch', [
        { reason: 'FieldValueRequired', message: 'Required value: is required for apply patch', field: 'fieldManager' },
      ]);
    }
    return applyServerSideApply(target, body, context.manager, { force: context.force ?? false, apiVersion: context.apiVersion, now: context.now }).object;
  }
  if (context.force !== undefined) {
    throw new PatchError(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch', [
      { reason: 'FieldValueForbidden', message: 'Forbidden: may not be specified for non-apply patch', field: 'force' },
    ]);
  }
  if (!target) throw new Error(`a ${patchType} patch needs an existing object`);
  let patched: JsonObject;
  if (patchType === JSON_PATCH) patched = applyJsonPatch(target, body);
  else if (patchType === STRATEGIC_MERGE_PATCH) patched = applyStrategicMergePatch(target, body, context.kind);
  else {
    if (body === null) throw badRequest('Invalid JSON Patch');
    if (!isObject(body)) throw badRequest(`error decoding patch: json: cannot unmarshal ${jsonTypeName(body)} into Go value of type map[string]interface {}`);
    patched = applyMergePatch(target, body) as JsonObject;
  }
  if (context.manager) setManagedFields(patched, updateManagedFields(target, patched, context.manager, 'Update', context.apiVersion, context.now));
  return patched;
}
