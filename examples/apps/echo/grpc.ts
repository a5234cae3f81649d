// gRPC echo (echo.proto) on @grpc/grpc-js. The service definition is built from the .proto at run time with
// protobufjs, so the proto file stays the single source of the wire format; the same definition serves the server
// and the small client helper used by tests and demos.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { LineLog, timestamp } from './log.js';
import { plainAddress, type EchoIdentity } from './server.js';

export interface EchoRequest {
  message: string;
}

export interface EchoResponse {
  message: string;
  pod: string;
  namespace: string;
  node: string;
  serviceAccount: string;
  remoteAddress: string;
  metadata: string[];
}

// Compiled to dist/examples/apps/echo/; the .proto ships next to the sources in examples/apps/echo/.
const PROTO_PATH = fileURLToPath(new URL('../../../../examples/apps/echo/echo.proto', import.meta.url));

let definition: grpc.ServiceDefinition | undefined;

/** grpc-js service definition of ambit.echo.v1.EchoService, loaded once from echo.proto. */
export function echoServiceDefinition(): grpc.ServiceDefinition {
  if (definition) return definition;
  if (!existsSync(PROTO_PATH)) throw new Error(`gRPC echo: proto file not found at ${PROTO_PATH}`);
  const root = protobuf.loadSync(PROTO_PATH);
  const service = root.lookupService('ambit.echo.v1.EchoService');
  const method = service.methods['Echo']!;
  method.resolve();
  const reqType = method.resolvedRequestType!;
  const resType = method.resolvedResponseType!;
  const codec = <T>(type: protobuf.Type) => ({
    // Wrap the encoder's bytes without copying; grpc-js wants a Buffer.
    serialize: (value: T): Buffer => {
      const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes: Buffer): T => type.toObject(type.decode(bytes), { defaults: true, arrays: true }) as T,
  });
  const req = codec<EchoRequest>(reqType);
  const res = codec<EchoResponse>(resType);
  definition = {
    Echo: {
      path: `/${service.fullName.slice(1)}/${method.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
    },
  };
  return definition;
}

export async function startGrpcEcho(
  host: string,
  port: number,
  id: EchoIdentity,
  log: LineLog | undefined,
): Promise<{ port: number; shutdown(graceMs: number): Promise<void> }> {
  const def = echoServiceDefinition();
  const path = def['Echo']!.path;
  const server = new grpc.Server();
  const echo: grpc.handleUnaryCall<EchoRequest, EchoResponse> = (call, callback) => {
    const metadata: string[] = [];
    const all = call.metadata.toJSON();
    for (const key of Object.keys(all).sort()) {
      for (const value of all[key]!) metadata.push(`${key}: ${String(value)}`);
    }
    const peer = peerAddress(call.getPeer());
    callback(null, {
      message: call.request.message,
      pod: id.pod,
      namespace: id.namespace,
      node: id.node,
      serviceAccount: id.serviceAccount,
      remoteAddress: peer,
      metadata,
    });
    log?.line(`${timestamp()} "POST ${path} HTTP/2" grpc-status=0 ${peer}`);
  };
  server.addService(def, { Echo: echo });
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(new Error(`cannot listen for grpc on ${address}: ${err.message}`));
      else resolve(p);
    });
  });
  return {
    port: bound,
    shutdown(graceMs: number): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** grpc-js peers look like "127.0.0.1:5000", "::ffff:127.0.0.1:5000" or "[::1]:5000"; report them as HTTP does. */
function peerAddress(peer: string): string {
  const colon = peer.lastIndexOf(':');
  if (colon < 0) return peer;
  const host = peer.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return `${plainAddress(host)}:${peer.slice(colon + 1)}`;
}

type UnaryEcho = (
  req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<EchoResponse>) => void;

/** A channel to one EchoService; calls on it share its HTTP/2 connection. */
export class EchoGrpcClient {
  private readonly client: grpc.Client;
  private readonly unary: UnaryEcho;

  /** ownConnection: do not share the HTTP/2 connection with other clients of the same address (load tests). */
  constructor(address: string, options: { ownConnection?: boolean } = {}) {
    const Client = grpc.makeGenericClientConstructor(echoServiceDefinition(), 'EchoService');
    const channelOptions = options.ownConnection ? { 'grpc.use_local_subchannel_pool': 1 } : {};
    const client = new Client(address, grpc.credentials.createInsecure(), channelOptions);
    this.client = client;
    this.unary = (client['Echo'] as UnaryEcho).bind(client);
  }

  echo(message: string, metadata: grpc.Metadata, timeoutMs: number): Promise<EchoResponse> {
    return new Promise<EchoResponse>((resolve, reject) => {
      this.unary({ message }, metadata, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res!);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

/** One unary Echo call on a fresh channel; for tests and scripts. */
export async function grpcEcho(
  address: string,
  message: string,
  options: { metadata?: Record<string, string>; timeoutMs?: number } = {},
): Promise<EchoResponse> {
  const client = new EchoGrpcClient(address);
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(options.metadata ?? {})) md.set(k, v);
  try {
    return await client.echo(message, md, options.timeoutMs ?? 5000);
  } finally {
    client.close();
  }
}
