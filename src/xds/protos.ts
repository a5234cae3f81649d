// Runtime-loaded protobuf definitions of everything the control plane speaks (proto/ at the package root), and the
// gRPC service definitions built from them. Loading the .proto files at runtime keeps one source of truth for field
// numbers; nothing is generated.
import { fileURLToPath } from 'node:url';
import { isAbsolute, join, resolve } from 'node:path';
import protobuf from 'protobufjs';
import type * as grpc from '@grpc/grpc-js';

/** `<package root>/proto`: this file compiles to dist/src/controlplane/, three levels below the root. */
export const PROTO_DIR = resolve(fileURLToPath(import.meta.url), '../../../../proto');

const PROTO_FILES = [
  'envoy/service/discovery/v3/discovery.proto',
  'istio/workload.proto',
  'istio/authorization.proto',
  'istio/ca.proto',
  'ambit/waypoint.proto',
];

/**
 * How decoded messages are turned into plain objects: enums by name (as the model writes them), 64-bit integers as
 * numbers (validity_duration is seconds), absent repeated/map fields as empty, oneofs with their case name.
 */
export const TO_OBJECT: protobuf.IConversionOptions = {
  enums: String,
  longs: Number,
  defaults: false,
  arrays: true,
  objects: true,
  oneofs: true,
};

let cachedRoot: protobuf.Root | undefined;

/** The protobuf root with all of Ambit's messages; loaded once per process. */
export function protoRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const root = new protobuf.Root();
  // Imports inside our files ("envoy/config/core/v3/base.proto") are relative to PROTO_DIR; google/protobuf/* come
  // from protobufjs's bundled copies before this hook is asked.
  root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(PROTO_DIR, target));
  root.loadSync(PROTO_FILES);
  root.resolveAll();
  cachedRoot = root;
  return root;
}

/** The message type named by an xDS type URL (`type.googleapis.com/istio.workload.Address`). */
export function messageTypeForUrl(typeUrl: string): protobuf.Type {
  const slash = typeUrl.lastIndexOf('/');
  const name = slash >= 0 ? typeUrl.slice(slash + 1) : typeUrl;
  try {
    return protoRoot().lookupType(name);
  } catch {
    throw new Error(`no protobuf message ${name} (from type URL ${typeUrl}) in ${PROTO_DIR}`);
  }
}

function encoderFor(type: protobuf.Type): (value: object) => Buffer {
  return (value) => Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish());
}

function decoderFor(type: protobuf.Type): (bytes: Buffer) => any {
  return (bytes) => type.toObject(type.decode(bytes), TO_OBJECT);
}

/** Builds a grpc-js method definition from a protobufjs service method. */
function method(
  service: protobuf.Service,
  name: string,
  responseSerialize?: (value: any) => Buffer,
): grpc.MethodDefinition<any, any> {
  const m = service.methods[name];
  if (!m) throw new Error(`service ${service.fullName} has no method ${name}`);
  m.resolve();
  const req = m.resolvedRequestType!;
  const res = m.resolvedResponseType!;
  return {
    path: `/${service.fullName.replace(/^\./, '')}/${name}`,
    requestStream: !!m.requestStream,
    responseStream: !!m.responseStream,
    requestSerialize: encoderFor(req),
    requestDeserialize: decoderFor(req),
    responseSerialize: responseSerialize ?? encoderFor(res),
    responseDeserialize: decoderFor(res),
  };
}

/**
 * `envoy.service.discovery.v3.AggregatedDiscoveryService`, Delta only. The server writes DeltaDiscoveryResponses it
 * has already encoded (so cached resource bytes are reused across clients); clients get decoded plain objects.
 */
export function adsServiceDefinition(): grpc.ServiceDefinition {
  const svc = protoRoot().lookupService('envoy.service.discovery.v3.AggregatedDiscoveryService');
  return {
    DeltaAggregatedResources: method(svc, 'DeltaAggregatedResources', (encoded: Uint8Array) =>
      Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength),
    ),
  };
}

/**
 * The CreateCertificate request metadata key that names the identity a node proxy asks for on a pod's behalf
 * (istio/ztunnel src/identity/caclient.rs).
 */
export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';

/** `istio.v1.auth.IstioCertificateService`. */
export function caServiceDefinition(): grpc.ServiceDefinition {
  const svc = protoRoot().lookupService('istio.v1.auth.IstioCertificateService');
  return { CreateCertificate: method(svc, 'CreateCertificate') };
}
