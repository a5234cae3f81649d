// Shared fixtures for control-plane tests: a throwaway mesh CA and token file, a running control plane on loopback
// ports chosen by the kernel, and a Delta ADS client built on the same .proto files a ztunnel's bytes must match.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { TokenFileAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa, type IdentityPlacement } from '../../src/controlplane/ca.js';
import type { Logger } from '../../src/controlplane/log.js';
import { ControlPlaneServer, type StatusSource } from '../../src/controlplane/server.js';
import { adsServiceDefinition, caServiceDefinition, messageTypeForUrl } from '../../src/xds/protos.js';
import type { XdsChange, XdsSource, XdsType } from '../../src/controlplane/xds.js';

export const TOKENS = { 'token-node-1': 'node-1', 'token-node-2': 'node-2' };

/** A temporary directory removed by the returned cleanup, also when the test fails. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `ambit-cp-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Log lines captured for assertions (and printed when AMBIT_TEST_LOG is set). */
export class CapturedLog implements Logger {
  readonly lines: string[] = [];
  private add(level: string, m: string) {
    this.lines.push(`${level} ${m}`);
    if (process.env.AMBIT_TEST_LOG) process.stderr.write(`${level} ${m}\n`);
  }
  info(m: string) {
    this.add('info', m);
  }
  warn(m: string) {
    this.add('warn', m);
  }
  error(m: string) {
    this.add('error', m);
  }
  has(fragment: string): boolean {
    return this.lines.some((l) => l.includes(fragment));
  }
}

/** An in-memory XdsSource the tests drive by hand. */
export class FakeSource implements XdsSource {
  private readonly data = new Map<string, Map<string, object>>();
  private readonly listeners = new Set<(c: XdsChange) => void>();
  constructor(private readonly types: string[]) {
    for (const t of types) this.data.set(t, new Map());
  }
  typeUrls(): string[] {
    return this.types;
  }
  snapshot(typeUrl: string): Map<string, object> {
    return new Map(this.data.get(typeUrl));
  }
  onChange(l: (c: XdsChange) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(typeUrl: string, upserts: Record<string, object>, removed: string[] = []): void {
    const m = this.data.get(typeUrl)!;
    for (const [k, v] of Object.entries(upserts)) m.set(k, v);
    for (const k of removed) m.delete(k);
    const change = { typeUrl, upserted: new Map(Object.entries(upserts)), removed };
    for (const l of this.listeners) l(change);
  }
}

export interface Fixture {
  server: ControlPlaneServer;
  ca: MeshCa;
  log: CapturedLog;
  dir: string;
  close: () => Promise<void>;
}

export async function startControlPlane(opts: {
  types: XdsType[];
  placement?: IdentityPlacement;
  status?: StatusSource;
  maxWorkloadCertTtlSeconds?: number;
}): Promise<Fixture> {
  const { dir, cleanup } = tempDir('srv');
  try {
    const tokenFile = join(dir, 'node-tokens.json');
    writeFileSync(tokenFile, JSON.stringify(TOKENS));
    const ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
    const log = new CapturedLog();
    const server = await ControlPlaneServer.start({
      ca,
      authenticator: new TokenFileAuthenticator(tokenFile),
      xdsTypes: opts.types,
      placement: opts.placement ?? { identitiesOnNode: () => new Set() },
      status: opts.status,
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      maxWorkloadCertTtlSeconds: opts.maxWorkloadCertTtlSeconds,
      log,
    });
    return {
      server,
      ca,
      log,
      dir,
      close: async () => {
        await server.close();
        cleanup();
      },
    };
  } catch (e) {
    cleanup();
    throw e;
  }
}

const AdsClient = grpc.makeGenericClientConstructor(adsServiceDefinition(), 'AggregatedDiscoveryService');
const CaClient = grpc.makeGenericClientConstructor(caServiceDefinition(), 'IstioCertificateService');

function credentials(rootPem: string): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(rootPem));
}

// Verify the server by the name ztunnel uses for istiod (and keep Node from warning about IP server names).
const CHANNEL_OPTIONS = { 'grpc.ssl_target_name_override': 'istiod.istio-system.svc' };

/** Call metadata carrying `token`; null sends no authorization header at all. */
export function bearer(token: string | null): grpc.Metadata {
  const md = new grpc.Metadata();
  if (token !== null) md.set('authorization', `Bearer ${token}`);
  return md;
}

export interface DecodedResource {
  name: string;
  version: string;
  value: any;
  aliases: string[];
}

export interface DecodedResponse {
  typeUrl: string;
  nonce: string;
  resources: DecodedResource[];
  removedResources: string[];
}

/** One Delta ADS stream, with responses queued so tests can await them in order. */
export class AdsStream {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<any, any>;
  private readonly queue: DecodedResponse[] = [];
  private waiters: ((r: DecodedResponse | Error) => void)[] = [];
  error: grpc.ServiceError | undefined;
  readonly closed: Promise<grpc.ServiceError | undefined>;

  constructor(port: number, rootPem: string, token: string | null) {
    this.client = new AdsClient(`127.0.0.1:${port}`, credentials(rootPem), CHANNEL_OPTIONS);
    this.call = (this.client as any).DeltaAggregatedResources(bearer(token));
    this.call.on('data', (raw: any) => {
      const r: DecodedResponse = {
        typeUrl: raw.typeUrl,
        nonce: raw.nonce,
        removedResources: raw.removedResources,
        // protobufjs's bundled google.protobuf.Any keeps the proto field name `type_url`.
        resources: raw.resources.map(({ name, version, resource, aliases }: any) => {
          assert.equal(resource.type_url, raw.typeUrl, `resource ${name} packed as ${resource.type_url} in a ${raw.typeUrl} response`);
          const type = messageTypeForUrl(resource.type_url);
          return { name, version, aliases: aliases ?? [], value: type.toObject(type.decode(resource.value), { enums: String, oneofs: true }) };
        }),
      };
      const w = this.waiters.shift();
      if (w) w(r);
      else this.queue.push(r);
    });
    this.closed = new Promise((resolve) => {
      this.call.on('error', (e: grpc.ServiceError) => {
        this.error = e;
        for (const w of this.waiters.splice(0)) w(e);
        resolve(e);
      });
      this.call.on('end', () => resolve(undefined));
    });
  }

  send(req: object): void {
    this.call.write(req);
  }

  subscribe(typeUrl: string, extra: object = {}): void {
    this.send({ node: { id: 'ztunnel~172.18.0.2~ztunnel-abc.istio-system~istio-system.svc.cluster.local' }, typeUrl, ...extra });
  }

  /** The next response; rejects after `ms` without one. */
  next(ms = 5000): Promise<DecodedResponse> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no xDS response within ${ms}ms`));
      }, ms);
      const waiter = (r: DecodedResponse | Error) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves true if no response arrives within `ms`. */
  async quiet(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

export interface CaCallResult {
  certChain?: string[];
  error?: grpc.ServiceError;
}

export function createCertificate(port: number, rootPem: string, token: string | null, request: object): Promise<CaCallResult> {
  const client = new CaClient(`127.0.0.1:${port}`, credentials(rootPem), CHANNEL_OPTIONS);
  return new Promise((resolve) => {
    (client as any).CreateCertificate(request, bearer(token), (error: grpc.ServiceError | null, res: any) => {
      client.close();
      resolve(error ? { error } : { certChain: res.certChain });
    });
  });
}
