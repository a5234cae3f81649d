// The node agent: one process per node, running inside the node's network namespace (the part of the kubelet the
// local cluster needs from inside the node). It serves the cluster DNS on the node's copy of the cluster DNS
// address and runs HTTP/TCP readiness probes from the node to its pods, as the kubelet does. The supervisor drives
// it over a Unix socket.
//
//   node dist/src/local/node-agent.js --socket PATH --dns-ip IP
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { DnsResponder, DnsServer, type DnsRecords } from './dns.js';
import { RpcError, serveJson } from '../common/rpc.js';

export interface ProbeRequest {
  kind: 'httpGet' | 'tcpSocket';
  host: string;
  port: number;
  path?: string;
  headers?: { name: string; value: string }[];
  timeoutMs: number;
}
export interface ProbeResult {
  ok: boolean;
  message?: string;
}

/** Runs one probe; messages use the kubelet's wording, which users search for. */
function probe(req: ProbeRequest): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const target = `${req.host}:${req.port}`;
    if (req.kind === 'tcpSocket') {
      const socket = connect({ host: req.host, port: req.port });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ ok: false, message: `dial tcp ${target}: i/o timeout` });
      }, req.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ ok: true });
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        resolve({ ok: false, message: `dial tcp ${target}: connect: ${describe(err)}` });
      });
      return;
    }
    const path = req.path ?? '/';
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.31' };
    for (const h of req.headers ?? []) headers[h.name] = h.value;
    const url = `http://${target}${path}`;
    const r = httpRequest({ host: req.host, port: req.port, path, headers, timeout: req.timeoutMs }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? { ok: true } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` });
    });
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', (err) => {
      const why = err.message === 'timeout' ? 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)' : `dial tcp ${target}: connect: ${describe(err)}`;
      resolve({ ok: false, message: `Get "${url}": ${why}` });
    });
    r.end();
  });
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' ? 'connection refused' : code === 'EHOSTUNREACH' ? 'no route to host' : err.message;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { socket: { type: 'string' }, 'dns-ip': { type: 'string' } } });
  if (!values.socket || !values['dns-ip']) throw new Error('usage: node-agent --socket PATH --dns-ip IP');
  const responder = new DnsResponder();
  const dns = new DnsServer(responder);
  await dns.listen(values['dns-ip']);
  await serveJson(values.socket, {
    'GET /healthz': () => ({ ok: true }),
    'PUT /dns': (body) => {
      const records = (body as { records?: DnsRecords })?.records;
      if (!records || typeof records !== 'object') throw new RpcError(400, 'PUT /dns needs {"records": {name: [ip, ...]}}');
      responder.setRecords(records);
      return { names: Object.keys(records).length };
    },
    'POST /probe': (body) => {
      const req = body as ProbeRequest;
      if (!req || (req.kind !== 'httpGet' && req.kind !== 'tcpSocket') || typeof req.host !== 'string' || !Number.isInteger(req.port)) {
        throw new RpcError(400, 'POST /probe needs {"kind": "httpGet"|"tcpSocket", "host", "port", "timeoutMs"}');
      }
      return probe(req);
    },
  });
  process.stdout.write(`node agent ready: dns on ${values['dns-ip']}:53, api on ${values.socket}\n`);
  const stop = () => {
    dns.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`node agent failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
