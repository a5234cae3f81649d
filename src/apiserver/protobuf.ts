// Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), which kubectl 1.32+ sends
// for its typed-client calls (`create namespace|configmap|secret|serviceaccount|service|deployment|token`,
// `auth can-i`) with no JSON fallback. A body is `k8s\0` then a runtime.Unknown whose typeMeta names the kind and
// whose raw bytes are the object's message. It is decoded into the object kube-apiserver would have read from the same
// request in JSON, so the rest of the server sees no difference. Replies stay JSON: kubectl accepts them.
import { fileURLToPath } from 'node:url';
import { isAbsolute, join, resolve } from 'node:path';
import protobuf from 'protobufjs';
import { kubeTime } from '../common/time.js';
import { ApiError, badRequest } from './errors.js';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

/** `<package root>/proto/kubernetes`: this file compiles to dist/src/apiserver/, three levels below the root. */
const PROTO_DIR = resolve(fileURLToPath(import.meta.url), '../../../../proto');
const PROTO_FILES = ['runtime', 'core', 'apps', 'authentication', 'authorization'].map((f) => `kubernetes/${f}.proto`);

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]); // "k8s\0"

const CORE = 'k8s.io.api.core.v1';
/** `apiVersion/kind` → the message of the kinds kubectl sends as protobuf (and a Pod, which `kubectl debug` creates). */
const MESSAGES: Readonly<Record<string, string>> = {
  'v1/Namespace': `${CORE}.Namespace`,
  'v1/ConfigMap': `${CORE}.ConfigMap`,
  'v1/Secret': `${CORE}.Secret`,
  'v1/ServiceAccount': `${CORE}.ServiceAccount`,
  'v1/Service': `${CORE}.Service`,
  'v1/Pod': `${CORE}.Pod`,
  'apps/v1/Deployment': 'k8s.io.api.apps.v1.Deployment',
  'authentication.k8s.io/v1/TokenRequest': 'k8s.io.api.authentication.v1.TokenRequest',
  'authorization.k8s.io/v1/SelfSubjectAccessReview': 'k8s.io.api.authorization.v1.SelfSubjectAccessReview',
};

const TIME = '.k8s.io.apimachinery.pkg.apis.meta.v1.Time';
const QUANTITY = '.k8s.io.apimachinery.pkg.api.resource.Quantity';
const INT_OR_STRING = '.k8s.io.apimachinery.pkg.util.intstr.IntOrString';

/** Plain-object conversion: int64 as numbers, bytes as base64 (their JSON form), only the fields on the wire. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, bytes: String, defaults: false, arrays: false, objects: false };

let cachedRoot: protobuf.Root | undefined;

function root(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(PROTO_DIR, target));
  r.loadSync(PROTO_FILES);
  r.resolveAll();
  cachedRoot = r;
  return r;
}

/** The kinds `decodeProtobufObject` understands, as `apiVersion/kind`. */
export const PROTOBUF_KINDS: readonly string[] = Object.keys(MESSAGES);

/**
 * A protobuf request body → the object as JSON would have carried it: apiVersion and kind from the envelope, zero
 * scalars left out where Go's JSON leaves them out, embedded structs inlined, Time as RFC 3339 (null when zero),
 * Quantity as its string, IntOrString as a number or string, bytes as base64. Throws 415 for a kind it has no message
 * for, 400 for a malformed body or a field it would otherwise silently drop.
 */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw badRequest(`the object provided is unrecognized: protobuf data does not start with the prefix ${JSON.stringify(MAGIC.toString('latin1'))}`);
  }
  const r = root();
  const unknownType = r.lookupType('k8s.io.apimachinery.pkg.runtime.Unknown');
  let envelope: { typeMeta?: { apiVersion?: string; kind?: string }; contentEncoding?: string };
  let raw: Uint8Array;
  try {
    const message = unknownType.decode(body.subarray(MAGIC.length)) as protobuf.Message & { raw?: Uint8Array };
    raw = message.raw ?? new Uint8Array();
    envelope = unknownType.toObject(message, TO_OBJECT);
  } catch (err) {
    throw badRequest(`the object provided is unrecognized: ${(err as Error).message}`);
  }
  const apiVersion = envelope.typeMeta?.apiVersion ?? '';
  const kind = envelope.typeMeta?.kind ?? '';
  if (!kind || !apiVersion) throw badRequest(`the protobuf envelope names no ${kind ? 'apiVersion' : 'kind'} (typeMeta ${JSON.stringify(envelope.typeMeta ?? {})})`);
  // kube-apiserver defines no content encodings; one here would be bytes this decoder cannot read.
  if (envelope.contentEncoding) throw unsupported(`protobuf content encoding ${JSON.stringify(envelope.contentEncoding)} is not supported`);
  const name = MESSAGES[`${apiVersion}/${kind}`];
  if (!name) {
    throw unsupported(
      `Ambit decodes protobuf bodies of ${PROTOBUF_KINDS.map((k) => k.replace(/\/(?=[^/]+$)/, ' ')).join(', ')}, not ${apiVersion} ${kind}; send it as JSON (kubectl apply, or kubectl before 1.32)`,
    );
  }
  const type = r.lookupType(name);
  let object: Record<string, unknown>;
  try {
    const unread = unreadFields(type, raw, '');
    if (unread.length) {
      throw badRequest(`${kind} in protobuf has fields Ambit does not decode (${unread.join(', ')}); send it as JSON (kubectl apply) to keep them`);
    }
    object = toJson(type, type.toObject(type.decode(raw), TO_OBJECT));
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw badRequest(`the object provided is unrecognized: ${(err as Error).message}`);
  }
  return { apiVersion, kind, ...object };
}

function unsupported(detail: string): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format: ${detail}`);
}

/** A message in protobufjs object form → its JSON form (see decodeProtobufObject). */
function toJson(type: protobuf.Type, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const v = value[field.name];
    if (v === undefined) continue;
    if (field.map) {
      const entries = Object.entries(v as Record<string, unknown>).map(([k, e]) => [k, fieldValue(field, e)]);
      if (entries.length) out[field.name] = Object.fromEntries(entries);
    } else if (field.repeated) {
      if ((v as unknown[]).length) out[field.name] = (v as unknown[]).map((e) => fieldValue(field, e));
    } else if (field.options?.['(ambit.inline)']) {
      Object.assign(out, fieldValue(field, v));
    } else if (field.resolvedType || field.options?.['(ambit.keep_zero)'] || !isZero(v)) {
      // Messages on the wire are in the object: Go writes a struct field (`resources: {}`) whenever it is not a nil
      // pointer, as its JSON encoder does.
      out[field.name] = fieldValue(field, v);
    }
  }
  return out;
}

function fieldValue(field: protobuf.Field, v: unknown): unknown {
  const t = field.resolvedType;
  if (!(t instanceof protobuf.Type)) return v;
  const m = v as Record<string, unknown>;
  switch (t.fullName) {
    case TIME:
      // Go writes the zero time as an empty message and reads any other as seconds since the epoch.
      return Object.keys(m).length === 0 ? null : rfc3339((m.seconds as number | undefined) ?? 0);
    case QUANTITY:
      return m.string ?? '0';
    case INT_OR_STRING:
      return m.type === 1 ? (m.strVal ?? '') : (m.intVal ?? 0);
    default:
      return toJson(t, m);
  }
}

function isZero(v: unknown): boolean {
  return v === '' || v === 0 || v === false;
}

/** `2025-01-01T00:00:00Z`: metav1.Time has whole seconds (kube-apiserver drops the nanos of protobuf times, too). */
function rfc3339(seconds: number): string {
  return kubeTime(seconds * 1000);
}

/**
 * Fields of `bytes` (a `type` message) that `type` does not declare and whose value is not zero, as `path#number`.
 * protobufjs skips undeclared fields, and a skipped field would be a silently different object; but Go writes every
 * non-pointer field, zero or not, so undeclared zero fields (an empty status, `paused: false` of a field we leave out)
 * are expected and mean nothing.
 */
function unreadFields(type: protobuf.Type, bytes: Uint8Array, path: string): string[] {
  const found: string[] = [];
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    const wireType = tag & 7;
    const field = type.fieldsById[id];
    if (!field) {
      if (!isZeroValue(reader, wireType)) found.push(`${path || '<root>'}#${id}`);
    } else if (wireType === 2 && field.resolvedType instanceof protobuf.Type && !field.map) {
      found.push(...unreadFields(field.resolvedType, reader.bytes(), `${path ? `${path}.` : ''}${field.name}`));
    } else reader.skipType(wireType);
  }
  return found;
}

/**
 * Whether length-delimited bytes are empty, or a message all of whose fields are zero (an undeclared non-pointer
 * struct such as a Deployment's status). A non-empty string is practically never such a message: its first byte
 * would have to be a tag and every value after it zero.
 */
function isZeroMessage(bytes: Uint8Array): boolean {
  const reader = protobuf.Reader.create(bytes);
  try {
    while (reader.pos < reader.len) if (!isZeroValue(reader, reader.uint32() & 7)) return false;
    return true;
  } catch {
    return false;
  }
}

/** Reads the value of one field and says whether it is zero (0, or empty bytes or an all-zero message). */
function isZeroValue(reader: protobuf.Reader, wireType: number): boolean {
  switch (wireType) {
    case 0:
      return reader.uint64().toString() === '0';
    case 1:
      return reader.fixed64().toString() === '0';
    case 2:
      return isZeroMessage(reader.bytes());
    case 5:
      return reader.fixed32() === 0;
    default:
      reader.skipType(wireType);
      return false;
  }
}
