// JSON over HTTP over a Unix socket: how the CLI talks to the supervisor and the supervisor to its node agents.
// A Unix socket is a file, so it is reachable from every network namespace of the cluster.
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, unlinkSync } from 'node:fs';

export class RpcError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Handler = (body: unknown, query: URLSearchParams, res: ServerResponse) => Promise<unknown> | unknown;

export async function serveJson(socketPath: string, routes: Record<string, Handler>): Promise<Server> {
  const server = createServer((req, res) => void dispatch(routes, req, res));
  if (existsSync(socketPath)) unlinkSync(socketPath); // A stale socket of a process that is gone.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

async function dispatch(routes: Record<string, Handler>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://local');
  const handler = routes[`${req.method} ${url.pathname}`];
  const reply = (status: number, value: unknown) => {
    if (res.headersSent) return res.end();
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  try {
    if (!handler) throw new RpcError(404, `no such endpoint: ${req.method} ${url.pathname}`);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch (err) {
      throw new RpcError(400, `request body is not JSON: ${(err as Error).message}`);
    }
    reply(200, (await handler(body, url.searchParams, res)) ?? {});
  } catch (err) {
    const status = err instanceof RpcError ? err.status : 500;
    reply(status, { error: err instanceof Error ? err.message : String(err) });
  }
}

export interface CallOptions {
  timeoutMs?: number;
}

/** Calls an endpoint; rejects with the server's error message (RpcError) or the connection error. */
export function call<T = unknown>(socketPath: string, method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      {
        socketPath,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        timeout: options.timeoutMs ?? 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let value: unknown;
          try {
            value = text ? JSON.parse(text) : undefined;
          } catch {
            reject(new RpcError(res.statusCode ?? 500, `bad response from ${socketPath}: ${text.slice(0, 200)}`));
            return;
          }
          if ((res.statusCode ?? 500) >= 400) {
            reject(new RpcError(res.statusCode ?? 500, (value as { error?: string })?.error ?? `HTTP ${res.statusCode}`));
          } else resolve(value as T);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${socketPath} within ${options.timeoutMs ?? 60_000} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

