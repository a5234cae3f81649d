// Fuzz of the HBONE server's CONNECT handling over real mTLS + HTTP/2: mutated `:authority`, methods, baggage,
// forwarded and traceparent headers, huge and numerous headers. Every request gets an HTTP status or a stream reset,
// the hook only ever sees a parsed target, nothing throws, and the server still tunnels a valid request afterwards.
// The normal suite sends a few hundred requests; `npm run fuzz` sends more (AMBIT_FUZZ_ITERATIONS).
import assert from 'node:assert/strict';
import type * as http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { dialHbone, openTunnel } from '../../src/hbone/client.js';
import type { HboneRequest } from '../../src/hbone/server.js';
import { destroySession } from '../../src/hbone/session.js';
import { FuzzRandom, fuzzIterations, fuzzSeed } from '../support/fuzz.js';
import { SERVER_ID, type Mesh, type TestServer, type Upstream, dialTarget, mesh, readAll, startServer, upstream } from './fixtures.js';

let m: Mesh;
let echo: Upstream;
let srv: TestServer;
const violations: string[] = [];

before(async () => {
  m = await mesh();
  echo = await upstream();
  srv = await startServer(m.server, {
    onConnect: (req: HboneRequest) => {
      const { host, port } = req.target;
      if (typeof host !== 'string' || host === '' || !Number.isInteger(port) || port < 1 || port > 65535) violations.push(`hook saw target ${JSON.stringify(req.target)} for ${req.authority}`);
      if (!(req.baggage instanceof Map)) violations.push('hook saw baggage that is not a Map');
      // Only the echo server is dialled: a mutated authority must not reach whatever else listens on loopback.
      return req.authority === `127.0.0.1:${echo.port}` ? dialTarget(req) : { status: 503, error: 'fuzz: not dialled' };
    },
  });
});

after(async () => {
  await srv.close();
  await echo.close();
});

const dial = () => dialHbone({ destination: { address: '127.0.0.1', port: srv.port }, certificate: m.client, expectedIdentities: [SERVER_ID] });

const TOKENS = [':', '::', '[', ']', '%', '%25', '@', '/', ',', ';', '=', '"', ' ', '\t', '99999', '0', '-1', 'é', '\u0000', '\r\n', 'for=', 'host='];
const ALPHABET = 'abcxyz0129.:-_[]%,;="/ ';

interface Outcome {
  status?: number;
  reset?: number;
  refusedBeforeSending?: boolean;
}

/** Sends one request and reports the status, or the reset code of a stream that got none. */
function send(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<Outcome> {
  let stream: http2.ClientHttp2Stream;
  try {
    stream = session.request(headers, { endStream: false });
  } catch {
    // Node's client refuses some inputs itself (a CONNECT without :authority, a control character in a value).
    return Promise.resolve({ refusedBeforeSending: true });
  }
  return new Promise((resolve) => {
    stream.on('error', () => {});
    stream.once('response', (h) => {
      resolve({ status: Number(h[':status']) });
      stream.close();
    });
    stream.once('close', () => resolve({ reset: stream.rstCode }));
  });
}

test('malformed CONNECT requests get a status or a reset, never a crash, and the server keeps tunnelling', async (t) => {
  const rand = new FuzzRandom();
  const valid = [`127.0.0.1:${echo.port}`, '[fd00::2]:8080', 'reviews.default.svc.cluster.local:9080', '10.96.0.1:80'];
  const n = fuzzIterations(400);
  let session = await dial();
  const seen = new Map<string, number>();
  try {
    for (let i = 0; i < n; i++) {
      const headers: http2.OutgoingHttpHeaders = {
        ':method': rand.chance(0.9) ? 'CONNECT' : rand.pick(['GET', 'POST', 'connect', 'CONNECTX']),
        ':authority': rand.chance(0.15) ? rand.pick(valid) : rand.mutate(rand.pick(valid), TOKENS, ALPHABET),
      };
      if (headers[':method'] !== 'CONNECT') Object.assign(headers, { ':path': '/', ':scheme': 'https' });
      if (rand.chance(0.5)) headers.baggage = rand.mutate('k8s.namespace.name=default,service.name=reviews%20v1', TOKENS, ALPHABET);
      if (rand.chance(0.5)) headers.forwarded = rand.mutate('for="10.1.2.3:45678";host=reviews.default.svc.cluster.local', TOKENS, ALPHABET);
      if (rand.chance(0.5)) headers.traceparent = rand.mutate('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', TOKENS, ALPHABET);
      if (rand.chance(0.05)) headers['x-huge'] = 'a'.repeat(1 + rand.int(200_000));
      if (rand.chance(0.05)) for (let h = 0; h < 1 + rand.int(300); h++) headers[`x-many-${h}`] = String(h);
      const outcome = await send(session, headers);
      const kind = outcome.refusedBeforeSending ? 'refused by the client' : outcome.status !== undefined ? `status ${outcome.status}` : `reset ${outcome.reset}`;
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
      if (outcome.status !== undefined) {
        assert.ok([200, 400, 503].includes(outcome.status), `seed ${fuzzSeed()} iteration ${i}: status ${outcome.status} for ${JSON.stringify(headers)}`);
        if (outcome.status === 200) assert.equal(headers[':authority'], `127.0.0.1:${echo.port}`, `seed ${fuzzSeed()} iteration ${i}: 200 for another target`);
      }
      // An HTTP/2 protocol error (an oversized header block) may end the whole session: dial again, which also
      // proves the server still accepts connections.
      if (session.destroyed || session.closed) {
        destroySession(session);
        session = await dial();
      }
    }
    t.diagnostic(`outcomes: ${JSON.stringify([...seen])}`);
    assert.deepEqual(violations, []);
    assert.ok((seen.get('status 400') ?? 0) > 0 && (seen.get('status 503') ?? 0) > 0, `outcomes: ${JSON.stringify([...seen])}`);

    // Still serving: a valid tunnel echoes on a new connection, and on the fuzzed one unless a protocol error
    // ended it after its last request.
    const fresh = await dial();
    try {
      for (const s of session.destroyed || session.closed ? [fresh] : [session, fresh]) {
        const tunnel = await openTunnel(s, { target: { address: '127.0.0.1', port: echo.port } });
        tunnel.end('still serving');
        assert.equal((await readAll(tunnel)).toString(), 'still serving');
      }
    } finally {
      destroySession(fresh);
    }
  } finally {
    destroySession(session);
  }
});
