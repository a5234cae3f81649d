// JSON requests to the Kubernetes API with the cluster and credentials of a client-node KubeConfig: the informers'
// lists and the control plane's writes (statuses, a waypoint's objects). client-node's generated clients turn objects
// into its typed models, which drop fields they do not know (an Istio CRD's spec, anything newer than the client),
// turn timestamps into Dates and, for lists of built-in kinds, cannot fill in the items' kind; the mesh model reads
// the objects exactly as the API server sends them, as the watch events already are.
import { createHash } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

/** A request that took longer is given up (a list of every pod of a large cluster takes well under a second). */
const REQUEST_TIMEOUT_MS = 30_000;

/** A failed request: the HTTP status (`statusCode`, as client-node's watch errors have it) and kube's reason. */
export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A KubeConfig from a file, or client-node's default lookup when none is named: $KUBECONFIG, ~/.kube/config, then
 * the in-cluster service account. client-node's last resort, an unauthenticated http://localhost:8080, is refused: a
 * control plane that found no cluster should say so rather than fail every request.
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) {
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new Error(`cannot load the kubeconfig ${path}: ${(err as Error).message}`);
    }
  } else {
    kc.loadFromDefault();
    if (kc.getCurrentContext() === 'loaded-context' && kc.getCurrentCluster()?.server === 'http://localhost:8080') {
      throw new Error('no Kubernetes configuration found: give --kubeconfig PATH, set $KUBECONFIG, create ~/.kube/config, or run in a pod with a service account');
    }
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`${path ?? 'the kubeconfig'}: no current context naming a cluster`);
  return kc;
}

export class KubeClient {
  /** Connections kept open across requests, and what TLS material they were made with. */
  private agent: { agent: Agent; material: string } | undefined;

  constructor(readonly config: KubeConfig) {}

  close(): void {
    this.agent?.agent.destroy();
    this.agent = undefined;
  }

  /** The API server's URL (`https://host:port`, possibly with a path prefix). */
  get server(): string {
    return this.config.getCurrentCluster()!.server.replace(/\/+$/, '');
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /**
   * Sends one request and parses the JSON reply. Credentials are applied per request, so tokens that client-node
   * re-reads (in-cluster token files, exec plugins) stay fresh. A reply other than 2xx throws a KubeApiError with the
   * Status message the server sent.
   */
  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const opts: RequestOptions = {};
    await this.config.applyToHTTPSOptions(opts);
    const url = new URL(this.server + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    opts.method = method;
    opts.headers = { ...opts.headers, accept: 'application/json', ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}) };
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    if (url.protocol === 'https:' && !this.config.getCurrentCluster()!.proxyUrl) opts.agent = this.keptAlive(opts);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req: ClientRequest = send(url, opts, resolve);
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS / 1000}s`)));
      req.on('error', reject);
      req.end(payload);
    });
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const code = res.statusCode ?? 0;
    if (code < 200 || code >= 300) {
      let status: { message?: string; reason?: string } = {};
      try {
        status = JSON.parse(text) as typeof status;
      } catch {
        // Not a Status object (a proxy's error page): the HTTP status says enough.
      }
      throw new KubeApiError(code, status.reason, `${method} ${path}: ${status.message ?? `HTTP ${code}`}`);
    }
    return JSON.parse(text) as T;
  }

  /**
   * client-node gives every request an agent of its own, so each one pays a TLS handshake (about 8 ms with a client
   * certificate: a thousand status writes would take seconds). One keep-alive agent serves them all instead, made
   * again when the TLS material changes (client-node re-reads certificate files on every request).
   */
  private keptAlive(opts: RequestOptions): Agent {
    const tls = { ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized, servername: opts.servername };
    const hash = createHash('sha256');
    for (const v of Object.values(tls)) hash.update(String(v)).update('\0');
    const material = hash.digest('hex');
    if (this.agent?.material !== material) {
      this.agent?.agent.destroy();
      this.agent = { agent: new Agent({ ...tls, keepAlive: true }), material };
    }
    return this.agent.agent;
  }
}
