// A lean Delta ADS client for load generation: one HTTP/2 connection per client (like one ztunnel per node), wildcard
// subscriptions, an ACK for every response, and responses decoded only down to the envelope (resource names and
// bytes) so that a hundred clients in one process can keep up with a 50,000-workload snapshot. Resource bodies are
// decoded on request, for the small pushes whose content a benchmark checks.
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { adsServiceDefinition, messageTypeForUrl, protoRoot, TO_OBJECT } from '../../src/xds/protos.js';

export interface EnvelopeResource {
  name: string;
  version: string;
  /** The packed message (google.protobuf.Any), still encoded. */
  resource?: { type_url: string; value: Uint8Array };
}

export interface Envelope {
  typeUrl: string;
  nonce: string;
  systemVersionInfo: string;
  resources: EnvelopeResource[];
  removedResources: string[];
}

/** The ADS method with the product's request encoding and a response decoder that stops at the envelope. */
function leanAdsService(): grpc.ServiceDefinition {
  const full = adsServiceDefinition();
  const method = full.DeltaAggregatedResources!;
  const response = protoRoot().lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  return {
    DeltaAggregatedResources: { ...method, responseDeserialize: (bytes: Buffer) => response.decode(bytes) as unknown as Envelope },
  };
}

let clientConstructor: grpc.ServiceClientConstructor | undefined;

export interface BenchAdsClientOptions {
  /** `host:port` of the control plane's TLS gRPC port. */
  target: string;
  rootPem: string;
  token: string;
  /** xDS node id, in ztunnel's `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` form. */
  nodeId: string;
  onResponse: (r: Envelope, receivedAtNs: bigint) => void;
  onError: (e: Error) => void;
}

export class BenchAdsClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<object, Envelope>;
  private closing = false;

  constructor(private readonly opts: BenchAdsClientOptions) {
    clientConstructor ??= grpc.makeGenericClientConstructor(leanAdsService(), 'AggregatedDiscoveryService');
    this.client = new clientConstructor(opts.target, grpc.credentials.createSsl(Buffer.from(opts.rootPem)), {
      // The name ztunnel verifies istiod by (the serving certificate carries it).
      'grpc.ssl_target_name_override': 'istiod.istio-system.svc',
      // Without this, grpc-js shares one connection among clients with the same target and options.
      'grpc.use_local_subchannel_pool': 1,
      // A full Address snapshot is tens of megabytes; grpc-js refuses more than 4 MiB by default.
      'grpc.max_receive_message_length': -1,
    });
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${opts.token}`);
    this.call = (this.client as unknown as Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<object, Envelope>>)
      .DeltaAggregatedResources!(md);
    this.call.on('data', (r: Envelope) => {
      const at = process.hrtime.bigint();
      // ACK before handing over, as ztunnel does once it has applied the response.
      this.call.write({ typeUrl: r.typeUrl, responseNonce: r.nonce });
      opts.onResponse(r, at);
    });
    this.call.on('error', (e: grpc.ServiceError) => {
      if (!this.closing) opts.onError(new Error(`ADS client ${opts.nodeId}: ${e.message}`));
    });
  }

  /** Wildcard subscription to a type (an empty subscribe list, as ztunnel sends). */
  subscribe(typeUrl: string): void {
    this.call.write({ node: { id: this.opts.nodeId }, typeUrl });
  }

  close(): void {
    this.closing = true;
    this.call.cancel();
    this.client.close();
  }
}

/** Decodes one packed resource of a small push into its plain-object form. */
export function decodeResource(r: EnvelopeResource): Record<string, unknown> {
  if (!r.resource) throw new Error(`resource ${r.name} has no body`);
  const type: protobuf.Type = messageTypeForUrl(r.resource.type_url);
  return type.toObject(type.decode(r.resource.value), TO_OBJECT);
}
