// Shared loopback fixtures for the HBONE tests: a mesh CA with workload certificates, upstream TCP servers and
// an HBONE server whose hook dials the CONNECT target on loopback.
import * as net from 'node:net';
import { createRootCA, issueWorkloadCertificate, type CertificateAuthority } from '../../src/identity/certs.js';
import type { WorkloadCertificate } from '../../src/identity/workload-cert.js';
import { HboneServer, type HboneDecision, type HboneRequest, type HboneServerOptions, type HboneStreamStats } from '../../src/hbone/server.js';

export const TD = 'cluster.local';
export const SERVER_ID = `spiffe://${TD}/ns/default/sa/server`;
export const CLIENT_ID = `spiffe://${TD}/ns/default/sa/client`;

export interface Mesh {
  ca: CertificateAuthority;
  server: WorkloadCertificate;
  client: WorkloadCertificate;
}

let meshPromise: Promise<Mesh> | undefined;
/** One CA and pair of workload certificates per test file (key generation is the slow part). */
export function mesh(): Promise<Mesh> {
  meshPromise ??= (async () => {
    const ca = await createRootCA({ trustDomain: TD, ttlSeconds: 3600 });
    return {
      ca,
      server: await issueWorkloadCertificate(ca, SERVER_ID, 3600),
      client: await issueWorkloadCertificate(ca, CLIENT_ID, 3600),
    };
  })();
  return meshPromise;
}

export interface Upstream {
  port: number;
  sockets: net.Socket[];
  close(): Promise<void>;
}

/** A loopback TCP server; `onSocket` defaults to echo (with half-close: our end follows theirs). */
export async function upstream(onSocket: (s: net.Socket) => void = (s) => s.pipe(s)): Promise<Upstream> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** The default hook: dial the CONNECT target, which tests always point at loopback. */
export function dialTarget(req: HboneRequest): Promise<HboneDecision> {
  if (req.target.host !== '127.0.0.1') return Promise.resolve({ status: 400, error: `test refuses non-loopback ${req.authority}` });
  return new Promise((resolve) => {
    const s = net.connect({ host: req.target.host, port: req.target.port, allowHalfOpen: true });
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve({ status: 200, upstream: s });
    });
    s.once('error', (e) => resolve({ status: 503, error: `connection failed: ${e.message}` }));
  });
}

export interface TestServer {
  server: HboneServer;
  port: number;
  stats: HboneStreamStats[];
  errors: Error[];
  /** Resolves at the next stream close callback. */
  nextStats(): Promise<HboneStreamStats>;
  close(): Promise<void>;
}

export async function startServer(cert: WorkloadCertificate, opts: Partial<HboneServerOptions> = {}): Promise<TestServer> {
  const stats: HboneStreamStats[] = [];
  const errors: Error[] = [];
  let waiters: Array<(s: HboneStreamStats) => void> = [];
  const server = new HboneServer({
    certificateFor: () => cert,
    onConnect: dialTarget,
    ...opts,
    onStreamClose: (s) => {
      stats.push(s);
      const w = waiters;
      waiters = [];
      for (const f of w) f(s);
      opts.onStreamClose?.(s);
    },
    onConnectionError: (e) => {
      errors.push(e.error);
      opts.onConnectionError?.(e);
    },
  });
  const addr = await server.listen(0, '127.0.0.1');
  return {
    server,
    port: addr.port,
    stats,
    errors,
    nextStats: () => new Promise((r) => waiters.push(r)),
    close: () => server.close(200),
  };
}

export { eventually } from '../support/eventually.js';

/** Reads a stream to its end. */
export function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}
