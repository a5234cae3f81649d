// A real Kubernetes API server (src/apiserver) on 127.0.0.1 for tests: an API CA, a serving certificate for
// 127.0.0.1 and an admin client certificate, as the local cluster makes them, and a kubeconfig naming them. It can be
// stopped and started again on the same port, over the same store or a new one (a restart that lost its history).
import { writeFileSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import type { ResourceType } from '../../src/api/kinds.js';
import { ApiServer, type ApiBackend } from '../../src/apiserver/server.js';
import type { ResourceStore } from '../../src/apiserver/store.js';
import { createApiCertificates, kubeconfigFor } from '../../src/apiserver/certificates.js';

export interface TestApiServerOptions {
  store: ResourceStore;
  /** Where the kubeconfig is written. */
  dir: string;
  builtInTypes?: readonly ResourceType[];
  /** What the cluster behind the API does (a TokenReview answered by a token issuer). */
  backend?: ApiBackend;
}

export class TestApiServer {
  server!: ApiServer;
  port = 0;
  store: ResourceStore;
  readonly kubeconfigPath: string;
  private tls!: { cert: string; key: string; clientCA: string };
  private client!: { cert: string; key: string };

  private constructor(private readonly opts: TestApiServerOptions) {
    this.store = opts.store;
    this.kubeconfigPath = join(opts.dir, 'kubeconfig');
  }

  static async start(opts: TestApiServerOptions): Promise<TestApiServer> {
    const t = new TestApiServer(opts);
    const certs = await createApiCertificates(['127.0.0.1'], { admin: { user: 'kubernetes-admin', groups: ['system:masters'] } });
    t.tls = { cert: certs.serving.cert, key: certs.serving.key, clientCA: certs.ca };
    t.client = certs.clients.admin!;
    await t.listen();
    const kubeconfig = kubeconfigFor('test', `https://127.0.0.1:${t.port}`, certs.ca, t.client);
    writeFileSync(t.kubeconfigPath, JSON.stringify(kubeconfig), { mode: 0o600 });
    return t;
  }

  /** Listens (again) on the same port, over `store` when given (a server that lost its history). */
  async listen(store?: ResourceStore): Promise<void> {
    if (store) this.store = store;
    this.server = new ApiServer({ store: this.store, tls: this.tls, port: this.port, builtInTypes: this.opts.builtInTypes, backend: this.opts.backend });
    this.port = await this.server.listen();
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** TLS options of a request as the admin (for tests that speak HTTP themselves). */
  requestOptions(method: string, path: string, headers: Record<string, string> = {}): RequestOptions {
    return { host: '127.0.0.1', port: this.port, method, path, ca: this.tls.clientCA, cert: this.client.cert, key: this.client.key, headers };
  }

  /** One request as the admin: status code and parsed JSON body. */
  async json(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ code: number; body: Record<string, unknown> }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(this.requestOptions(method, path, payload ? { 'content-type': contentType } : {}), (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown> }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }
}
