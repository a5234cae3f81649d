// The waypoint's HBONE listener has the same bounds as ztunnel's (src/hbone/limits.ts), from its settings: the
// per-peer and total caps refuse the excess with a log line and keep serving the admitted connections, and a
// connection left without streams gets GOAWAY after HBONE_IDLE_TIMEOUT.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as http2 from 'node:http2';
import { dialHbone } from '../../src/hbone/client.js';
import { destroySession } from '../../src/hbone/session.js';
import { Harness, WAYPOINT_ID, type StartedWaypoint, eventually } from './harness.js';

let h: Harness;
let capped: StartedWaypoint;
const sessions: http2.ClientHttp2Session[] = [];

before(async () => {
  h = await Harness.start();
  capped = await h.startWaypoint({
    gatewayName: 'capped',
    serviceAccount: 'waypoint',
    podName: 'capped-0',
    flags: { hboneMaxConnections: 2, hboneMaxConnectionsPerPeer: 1, hboneIdleTimeoutMs: 1500 },
  });
});

after(async () => {
  for (const s of sessions) destroySession(s);
  await h?.close();
});

async function dial(sourceHost: number): Promise<http2.ClientHttp2Session> {
  const s = await dialHbone({
    destination: { address: '127.0.0.1', port: capped.ports.hbone },
    certificate: h.clientCert,
    expectedIdentities: [WAYPOINT_ID],
    sourceAddress: h.ip(sourceHost),
    connectTimeoutMs: 5000,
  });
  sessions.push(s);
  return s;
}

test("the waypoint's HBONE listener caps connections per peer and in total, and closes idle ones", async () => {
  const first = await dial(200);
  await assert.rejects(dial(200));
  const second = await dial(201);
  await assert.rejects(dial(202));
  const lines = () => capped.logLines.filter((l) => l.includes('refusing HBONE connection'));
  assert.equal(lines().length, 2, capped.logLines.join(''));
  assert.match(lines()[0]!, new RegExp(`refusing HBONE connection from ${h.ip(200).replaceAll('.', '\\.')}: 1 connections open from this peer, the limit \\(HBONE_MAX_CONNECTIONS_PER_PEER\\)`));
  assert.match(lines()[1]!, /: 2 connections open, the limit \(HBONE_MAX_CONNECTIONS\)/);
  // The admitted ones are still up, until they have been idle for HBONE_IDLE_TIMEOUT.
  assert.ok(!first.closed && !second.closed);
  await eventually('idle connections closed by the waypoint', () => first.closed && second.closed, { timeoutMs: 10_000 });
  await dial(200);
});
