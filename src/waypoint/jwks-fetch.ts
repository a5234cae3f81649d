// How the waypoint fetches a JWKS (or an OIDC discovery document): like any request it makes, through the mesh when
// the URL's host is a mesh Service (by hostname or VIP: HBONE to one of its endpoints, with the waypoint's identity),
// else directly. HTTPS is verified against the system's roots with the URL's host name. A non-200 answer, a body over
// MAX_JWKS_BYTES or the rule's timeout fails the fetch with a reason for the log.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { MAX_JWKS_BYTES, type JwksFetch } from './http/jwks.js';
import type { WaypointState } from './state.js';
import type { Upstreams } from './upstream.js';

export function meshJwksFetch(state: WaypointState, upstreams: () => Upstreams): JwksFetch {
  return async (url, timeoutMs) => {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    if (!secure && u.protocol !== 'http:') throw new Error(`unsupported scheme in ${url}`);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port) || (secure ? 443 : 80);
    const deadline = AbortSignal.timeout(timeoutMs);
    const service = state.serviceByHostname(host) ?? state.serviceByVip(host);
    let socket: Duplex | undefined;
    if (service !== undefined) {
      const target = upstreams().cluster(service, port)?.pick(undefined, undefined);
      if (target === undefined) throw new Error(`no healthy endpoint of ${service.hostname} for port ${port}`);
      socket = await upstreams().connect(target, secure ? ['http/1.1'] : undefined, host);
      if (secure && !(socket instanceof tls.TLSSocket)) socket = await startTls(socket, host, deadline);
    }
    return get(u, secure, socket, deadline);
  };
}

function startTls(socket: Duplex, servername: string, signal: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({ socket, servername: /^[\d.:]+$/.test(servername) ? undefined : servername, ALPNProtocols: ['http/1.1'] });
    const fail = (e: Error) => {
      t.destroy();
      reject(e);
    };
    signal.addEventListener('abort', () => fail(new Error('timed out')), { once: true });
    t.once('error', fail);
    t.once('secureConnect', () => {
      t.off('error', fail);
      resolve(t);
    });
  });
}

function get(u: URL, secure: boolean, socket: Duplex | undefined, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const options: http.RequestOptions = { method: 'GET', path: u.pathname + u.search, headers: { accept: 'application/json', host: u.host }, signal };
    if (socket !== undefined) options.createConnection = () => socket as never;
    else Object.assign(options, { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || (secure ? 443 : 80), agent: false });
    const req = (secure && socket === undefined ? https : http).request(options, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`${u.href} answered ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_JWKS_BYTES) {
          req.destroy();
          reject(new Error(`${u.href} sent more than ${MAX_JWKS_BYTES} bytes`));
        } else chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('error', (e) => reject(signal.aborted ? new Error(`${u.href} timed out`) : e));
    req.end();
  }).finally(() => socket?.destroy()) as Promise<string>;
}
