// ambit-echo as a real process on loopback: HTTP fields and special paths, raw TCP echo, gRPC echo, the access log,
// bad flags and graceful SIGTERM.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { grpcEcho } from '../../examples/apps/echo/grpc.js';
import { ECHO_BIN, IDENTITY_ENV, run, startEchoProcess, type EchoProcess } from './echo-process.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  localPort: number;
}

interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** One request on its own connection (no agent), so the caller's port identifies it in the echo. */
function request(port: number, path: string, init: RequestInit = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: false };
    const req = http.request(options, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => { body += s; });
      res.on('end', () => {
        resolve({ status: res.statusCode!, headers: res.headers, body, localPort: req.socket!.localPort! });
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Parses Istio-echo style `Key=value` lines; repeated keys collect all values. */
function fields(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    m.set(key, [...(m.get(key) ?? []), line.slice(eq + 1)]);
  }
  return m;
}

describe('ambit-echo', () => {
  let echo: EchoProcess;
  before(async () => {
    echo = await startEchoProcess(['--grpc-port', '0', '--service-version', 'v2']);
  });
  after(() => echo?.kill());

  it('answers in text with the pod identity and what it saw', async () => {
    const r = await request(echo.httpPort, '/some/path?q=1', { headers: { 'X-Demo': 'hello' } });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type']!, /^text\/plain/);
    const f = fields(r.body);
    assert.deepEqual(f.get('Hostname'), [IDENTITY_ENV.POD_NAME]);
    assert.deepEqual(f.get('Namespace'), [IDENTITY_ENV.POD_NAMESPACE]);
    assert.deepEqual(f.get('Node'), [IDENTITY_ENV.NODE_NAME]);
    assert.deepEqual(f.get('ServiceAccount'), [IDENTITY_ENV.SERVICE_ACCOUNT]);
    assert.deepEqual(f.get('ServiceVersion'), ['v2']);
    assert.deepEqual(f.get('ServicePort'), [String(echo.httpPort)]);
    assert.deepEqual(f.get('Method'), ['GET']);
    assert.deepEqual(f.get('URL'), ['/some/path?q=1']);
    assert.deepEqual(f.get('Proto'), ['HTTP/1.1']);
    assert.deepEqual(f.get('IP'), ['127.0.0.1']);
    assert.deepEqual(f.get('RemotePort'), [String(r.localPort)]);
    assert.ok(f.get('RequestHeader')!.includes('X-Demo:hello'), r.body);
    assert.deepEqual(f.get('BodyLength'), ['0']);
    assert.equal(f.get('Body'), undefined);
  });

  it('puts the raw request body last in text mode', async () => {
    const body = 'line one\nline two=2';
    const r = await request(echo.httpPort, '/', { method: 'PUT', body });
    const f = fields(r.body);
    assert.deepEqual(f.get('Method'), ['PUT']);
    assert.deepEqual(f.get('BodyLength'), [String(Buffer.byteLength(body))]);
    assert.equal(r.body.slice(r.body.indexOf('\nBody=') + 6), body + '\n');
  });

  it('answers in JSON for Accept: application/json and for ?format=json', async () => {
    const byAccept = await request(echo.httpPort, '/orders/42', {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'text/plain' },
      body: 'order please',
    });
    assert.equal(byAccept.status, 200);
    assert.equal(byAccept.headers['content-type'], 'application/json');
    const j = JSON.parse(byAccept.body);
    assert.equal(j.pod, IDENTITY_ENV.POD_NAME);
    assert.equal(j.namespace, IDENTITY_ENV.POD_NAMESPACE);
    assert.equal(j.node, IDENTITY_ENV.NODE_NAME);
    assert.equal(j.serviceAccount, IDENTITY_ENV.SERVICE_ACCOUNT);
    assert.equal(j.method, 'POST');
    assert.equal(j.path, '/orders/42');
    assert.equal(j.body, 'order please');
    assert.equal(j.bodyLength, 12);
    assert.equal(j.headers['content-type'], 'text/plain');
    assert.equal(j.remoteAddress, '127.0.0.1');
    assert.equal(j.remotePort, byAccept.localPort);

    const byQuery = await request(echo.httpPort, '/x?format=json&y=2');
    const q = JSON.parse(byQuery.body);
    assert.equal(q.path, '/x');
    assert.equal(q.url, '/x?format=json&y=2');
  });

  it('serves /healthz', async () => {
    const r = await request(echo.httpPort, '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok\n');
  });

  it('returns the status code asked for by /status/NNN and rejects bad codes', async () => {
    const r = await request(echo.httpPort, '/status/503');
    assert.equal(r.status, 503);
    assert.deepEqual(fields(r.body).get('URL'), ['/status/503']);
    const bad = await request(echo.httpPort, '/status/42');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /invalid status code "42" in \/status\/42/);
  });

  it('waits before answering on /delay/MS and rejects bad delays', async () => {
    const t0 = Date.now();
    const r = await request(echo.httpPort, '/delay/200');
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 >= 190, `answered after ${Date.now() - t0}ms`);
    const bad = await request(echo.httpPort, '/delay/soon');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /invalid delay "soon"/);
  });

  it('relays another URL on /forward and names the hop', async () => {
    const url = `http://127.0.0.1:${echo.httpPort}/status/202`;
    const r = await request(echo.httpPort, `/forward?url=${encodeURIComponent(url)}`);
    assert.equal(r.status, 202);
    assert.equal(r.headers['x-ambit-forwarded-by'], `${IDENTITY_ENV.POD_NAMESPACE}/${IDENTITY_ENV.POD_NAME}`);
    assert.deepEqual(fields(r.body).get('URL'), ['/status/202']);

    // A port nobody listens on: grab a free port, then release it.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const failed = await request(echo.httpPort, `/forward?url=http://127.0.0.1:${port}/`);
    assert.equal(failed.status, 502);
    assert.match(failed.body, /upstream connect error calling http:\/\/127\.0\.0\.1:\d+\/: ECONNREFUSED/);

    const bad = await request(echo.httpPort, '/forward?url=ftp://x');
    assert.equal(bad.status, 400);
  });

  it('echoes raw TCP bytes verbatim and closes after the client half-closes', async () => {
    const payload = randomBytes(1024 * 1024 + 7);
    const socket = net.connect(echo.tcpPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise<void>((resolve, reject) => {
      socket.on('end', resolve);
      socket.on('error', reject);
    });
    socket.end(payload);
    await ended;
    assert.ok(Buffer.concat(chunks).equals(payload), 'echoed bytes differ from the bytes sent');
  });

  it('answers gRPC Echo calls with the pod identity and the caller metadata', async () => {
    assert.ok(echo.grpcPort, 'gRPC port was not reported');
    const r = await grpcEcho(`127.0.0.1:${echo.grpcPort}`, 'ping', { metadata: { 'x-trace': 'abc' } });
    assert.equal(r.message, 'ping');
    assert.equal(r.pod, IDENTITY_ENV.POD_NAME);
    assert.equal(r.namespace, IDENTITY_ENV.POD_NAMESPACE);
    assert.equal(r.node, IDENTITY_ENV.NODE_NAME);
    assert.equal(r.serviceAccount, IDENTITY_ENV.SERVICE_ACCOUNT);
    assert.match(r.remoteAddress, /^127\.0\.0\.1:\d+$/);
    assert.ok(r.metadata.includes('x-trace: abc'), JSON.stringify(r.metadata));
  });

  it('logs one access-log line per request to stdout', async () => {
    await request(echo.httpPort, '/status/418?log=check');
    // Lines are flushed on the next turn of the server's event loop.
    for (let i = 0; i < 50 && !echo.output().includes('/status/418?log=check'); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const lines = echo.output().split('\n').filter((l) => l.includes('/status/418?log=check'));
    assert.equal(lines.length, 1, echo.output());
    assert.match(lines[0]!, /^\S+Z "GET \/status\/418\?log=check HTTP\/1\.1" 418 \d+ [\d.]+ms 127\.0\.0\.1:\d+$/);
  });
});

describe('ambit-echo process handling', () => {
  it('reports IPv4 callers of a dual-stack listener as plain IPv4 (HTTP and gRPC)', async (t) => {
    const probe = net.createServer();
    const ipv6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false)).listen(0, '::1', () => probe.close(() => resolve(true)));
    });
    if (!ipv6) {
      t.skip('no IPv6 on loopback');
      return;
    }
    const echo = await startEchoProcess(['--host', '::', '--grpc-port', '0']);
    try {
      const r = JSON.parse((await request(echo.httpPort, '/?format=json')).body);
      assert.equal(r.remoteAddress, '127.0.0.1');
      const g = await grpcEcho(`127.0.0.1:${echo.grpcPort}`, 'v4');
      assert.match(g.remoteAddress, /^127\.0\.0\.1:\d+$/);
    } finally {
      echo.kill();
    }
  });

  it('fails every n-th request with --fail-every and --fail-status, never /healthz', async () => {
    const flaky = await startEchoProcess(['--fail-every', '3', '--fail-status', '502']);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        statuses.push((await request(flaky.httpPort, '/x')).status);
        assert.equal((await request(flaky.httpPort, '/healthz')).status, 200);
      }
      assert.deepEqual(statuses, [200, 200, 502, 200, 200, 502]);
      // The failed answer is still the echo body: who failed is visible.
      assert.deepEqual(fields((await request(flaky.httpPort, '/y')).body).get('Hostname'), [IDENTITY_ENV.POD_NAME]);
    } finally {
      flaky.kill();
    }
    const broken = await startEchoProcess(['--fail-every', '1']);
    try {
      assert.equal((await request(broken.httpPort, '/')).status, 503);
      assert.equal((await request(broken.httpPort, '/status/200')).status, 503);
      assert.equal((await request(broken.httpPort, '/healthz')).status, 200);
    } finally {
      broken.kill();
    }
    const bad = await run(ECHO_BIN, ['--fail-status', '42']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid status "42": want a number from 200 to 599/);
  });

  it('rejects a bad port flag with a clear message', async () => {
    const r = await run(ECHO_BIN, ['--http-port', '70000']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid --http-port "70000": want a port number from 0 to 65535/);
  });

  it('reports a port already in use, naming the listener and address', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const r = await run(ECHO_BIN, ['--host', '127.0.0.1', '--http-port', String(port), '--tcp-port', '0']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot listen for http on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
    } finally {
      busy.close();
    }
  });

  it('drains on SIGTERM: in-flight requests finish, TCP clients see EOF, exit code 0', async () => {
    const echo = await startEchoProcess();
    try {
      const tcp = net.connect(echo.tcpPort, '127.0.0.1');
      await new Promise<void>((resolve, reject) => tcp.once('connect', resolve).once('error', reject));
      const tcpEnded = new Promise<void>((resolve) => tcp.once('end', resolve));
      tcp.on('error', () => { /* the server may reset after the grace period; EOF is what is checked */ });

      const inFlight = request(echo.httpPort, '/delay/400');
      await new Promise((r) => setTimeout(r, 100));
      echo.child.kill('SIGTERM');

      const r = await inFlight;
      assert.equal(r.status, 200);
      assert.equal(r.headers.connection, 'close');
      await tcpEnded;
      tcp.end();
      assert.equal(await echo.exited, 0);
      assert.match(echo.output(), /SIGTERM received, draining/);
      assert.match(echo.output(), /ambit-echo: stopped/);
    } finally {
      echo.kill();
    }
  });
});
