// SecretManager against the real CA (ControlPlaneServer over TLS): issuing a pod identity to its node, one CA call
// for concurrent requests, refresh at half-life with onRotate, refusal of another node's identity, and a CA outage:
// the current certificate keeps serving until it expires, then fetches fail with a clear error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenFileAuthenticator } from '../../src/controlplane/auth.js';
import { MeshCa } from '../../src/controlplane/ca.js';
import { ControlPlaneServer } from '../../src/controlplane/server.js';
import { verifyCertificateChain } from '../../src/identity/verify.js';
import type { WorkloadCertificate } from '../../src/identity/workload-cert.js';
import { SecretManager } from '../../src/xds/ca-client.js';
import { CapturedLog } from '../controlplane/helpers.js';
import { RecordingLog, eventually } from '../ztunnel/helpers.js';

const MINE = 'spiffe://cluster.local/ns/demo/sa/echo';
const SHORT_LIVED = 'spiffe://cluster.local/ns/demo/sa/short';
const OTHER_NODE = 'spiffe://cluster.local/ns/demo/sa/elsewhere';

describe('ztunnel SecretManager', () => {
  let dir: string;
  let server: ControlPlaneServer | undefined;
  const serverLog = new CapturedLog();
  const log = new RecordingLog();
  let secrets: SecretManager;
  let shortSecrets: SecretManager;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-zt-certs-'));
    writeFileSync(join(dir, 'node-tokens.json'), JSON.stringify({ 'token-node-1': 'node-1', 'token-node-2': 'node-2' }));
    writeFileSync(join(dir, 'token'), 'token-node-1\n');
    const ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
    server = await ControlPlaneServer.start({
      ca,
      authenticator: new TokenFileAuthenticator(join(dir, 'node-tokens.json')),
      xdsTypes: [],
      placement: { identitiesOnNode: (node) => new Set(node === 'node-1' ? [MINE, SHORT_LIVED] : [OTHER_NODE]) },
      listen: '127.0.0.1:0',
      debugListen: '127.0.0.1:0',
      log: serverLog,
    });
    const common = {
      caAddress: `127.0.0.1:${server.port}`,
      serverName: 'istiod.istio-system.svc',
      rootPem: ca.rootPem,
      tokenFile: join(dir, 'token'),
      initialRetryMs: 100,
      maxRetryMs: 400,
      requestTimeoutMs: 2000,
    };
    secrets = new SecretManager({ ...common, ttlSeconds: 3600, log: log.logger('cert') });
    shortSecrets = new SecretManager({ ...common, ttlSeconds: 6, log: log.logger('cert-short') });
  });

  after(async () => {
    secrets?.close();
    shortSecrets?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fetches a certificate for a pod identity on this node, with one CA call for concurrent requests', async () => {
    const [a, b, c] = await Promise.all([secrets.fetch(MINE), secrets.fetch(MINE), secrets.fetch(MINE)]);
    assert.equal(a.identity, MINE);
    assert.equal(a, b);
    assert.equal(b, c);
    assert.equal(serverLog.lines.filter((l) => l.includes(`issued certificate for ${MINE}`)).length, 1, 'one CSR for three callers');
    verifyCertificateChain(a.chainPem, secrets.rootPems());
    const ttl = (a.notAfter.getTime() - Date.now()) / 1000;
    assert.ok(ttl > 3500 && ttl <= 3600, `requested SECRET_TTL honoured (${ttl}s left)`);
    // Served from cache afterwards.
    assert.equal(await secrets.fetch(MINE), a);
    const dump = secrets.certificates();
    assert.equal(dump[0]?.identity, MINE);
    assert.equal(dump[0]?.state, 'Available');
    assert.equal(new X509Certificate(dump[0]!.certChain[0]!.pem).fingerprint256, new X509Certificate(a.certPem).fingerprint256);
  });

  it("refuses another node's identity with the CA's reason", async () => {
    await assert.rejects(secrets.fetch(OTHER_NODE), (e: Error) => {
      assert.match(e.message, /CA refused or failed certificate for spiffe:\/\/cluster\.local\/ns\/demo\/sa\/elsewhere from the CA at 127\.0\.0\.1:\d+/);
      assert.match(e.message, /PERMISSION_DENIED: node node-1 may not request a certificate for spiffe:\/\/cluster\.local\/ns\/demo\/sa\/elsewhere/);
      return true;
    });
    assert.equal(secrets.certificates().find((c) => c.identity === OTHER_NODE)?.state, 'Unavailable');
  });

  it('refreshes at half-life and tells listeners, while the old certificate stays valid', async () => {
    const rotated: WorkloadCertificate[] = [];
    const off = shortSecrets.onRotate((c) => rotated.push(c));
    shortSecrets.prefetch(SHORT_LIVED);
    const first = await eventually('prefetched certificate', () => shortSecrets.cached(SHORT_LIVED));
    const issuedAt = Date.now();
    const second = await eventually('refresh', () => rotated.find((c) => c !== first), 6000);
    const after = Date.now() - issuedAt;
    // Half of a 6 s life is 3 s (second-granular certificate times make it 2–3 s).
    assert.ok(after >= 1500 && after < 4500, `refreshed after ${after}ms`);
    assert.notEqual(second.certPem, first.certPem);
    assert.equal(shortSecrets.cached(SHORT_LIVED), second);
    assert.ok(!first.isExpired(), 'the old certificate was still valid when replaced: connections using it are unaffected');
    off();
  });

  it('keeps the current certificate while the CA is down, until it expires', async () => {
    const current = await shortSecrets.fetch(SHORT_LIVED);
    await server!.close();
    server = undefined;
    // The next half-life refresh fails; the cached certificate is still handed out.
    await eventually('failed refresh', () => log.has(`failed to fetch certificate`) && log.has('keeping the current certificate'), 8000);
    assert.ok(!current.isExpired());
    assert.equal(await shortSecrets.fetch(SHORT_LIVED), current);
    // Once expired there is nothing valid to serve: fetch asks the CA and fails clearly.
    await eventually('expiry', () => current.isExpired(), 8000);
    await assert.rejects(shortSecrets.fetch(SHORT_LIVED), /CA refused or failed certificate for spiffe:\/\/cluster\.local\/ns\/demo\/sa\/short .*UNAVAILABLE/);
    assert.equal(shortSecrets.certificates()[0]?.state, 'Unavailable');
  });
});

// A pod's first certificate asked for while the CA is down: once the CA is back, the certificate must follow within
// the 5 s back-off cap (plus a margin for a loaded machine), however long the outage, with the default retry back-off
// (before, retries doubled up to 60 s, on top of the gRPC channel's own back-off).
describe('SecretManager after a long CA outage', () => {
  const CERT_BOUND_MS = 5_000 + 3_000;
  let dir: string;
  let ca: MeshCa;
  let server: ControlPlaneServer | undefined;
  const log = new RecordingLog();
  let secrets: SecretManager | undefined;

  const startServer = async (listen: string) => {
    server = await ControlPlaneServer.start({
      ca,
      authenticator: new TokenFileAuthenticator(join(dir, 'node-tokens.json')),
      xdsTypes: [],
      placement: { identitiesOnNode: () => new Set([MINE]) },
      listen,
      debugListen: '127.0.0.1:0',
      log: new CapturedLog(),
    });
    return server.port;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ambit-zt-certs-outage-'));
    writeFileSync(join(dir, 'node-tokens.json'), JSON.stringify({ 'token-node-1': 'node-1' }));
    writeFileSync(join(dir, 'token'), 'token-node-1\n');
    ca = await MeshCa.load({ trustDomain: 'cluster.local', stateDir: dir });
  });

  after(async () => {
    secrets?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('issues the certificate within the back-off cap once the CA is back', async (t) => {
    const port = await startServer('127.0.0.1:0');
    await server!.close();
    server = undefined;
    secrets = new SecretManager({
      caAddress: `127.0.0.1:${port}`,
      serverName: 'istiod.istio-system.svc',
      rootPem: ca.rootPem,
      tokenFile: join(dir, 'token'),
      ttlSeconds: 3600,
      log: log.logger('cert'),
      requestTimeoutMs: 1000, // how long one call waits for a connection; the retry back-off is the default
    });
    secrets.prefetch(MINE);
    await eventually('five failed fetches in a row', () => log.count('failed to fetch certificate') >= 5, 30_000);
    assert.match(log.lines.at(-1)!, /no connection to the CA within 1000ms|UNAVAILABLE/);
    await startServer(`127.0.0.1:${port}`);
    const back = Date.now();
    await eventually('the certificate after the CA is back', () => secrets!.cached(MINE), CERT_BOUND_MS);
    t.diagnostic(`issued ${Date.now() - back}ms after the CA was back`);
  });
});
